"""Settling merchants' takings: the money the gateway owes a merchant waits in the merchant
pending account (`GL-MERCHANT-SETTLEMENT-CNY`) until it is paid, less the bank's fees, to the
merchant's settlement account.

One settlement takes a set of movements into or out of pending money (payments, escrow
releases, captures, and refunds paid out of pending money) that no settlement took before, and
posts one entry: pending debited by gross - refunds, fee income credited by the fees, the
settlement account credited by the net (debited, when refunds and fees exceed the takings).

When (docs/gateway.md, "Fees and settlement"): T+0 real-time merchants settle each movement as
it happens (`realtime`); the end-of-day job (`end_of_day`) settles T+0 end-of-day merchants'
movements of the business day that ended and earlier, and T+N merchants' movements of business
days at least N calendar days before it. A refund out of pending money is settled with the
takings it was paid from. A settlement the merchant's account cannot take (a negative net
larger than its balance, or an account that is closed or barred) is not booked: its movements
wait for the next run, and the run reports it as an exception.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, or_, select
from sqlalchemy.orm import aliased

from ebank.accounts import service as accounts
from ebank.core import audit
from ebank.core.clock import as_utc, business_date
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx, Writer
from ebank.gateway import merchants as merchant_service
from ebank.gateway.merchants import Merchant
from ebank.gateway.tables import (
    merchants,
    movements,
    orders,
    refunds,
    settlement_items,
    settlements,
)
from ebank.ledger import service as ledger
from ebank.ledger.models import Leg, reference

log = logging.getLogger(__name__)

PENDING = "GL-MERCHANT-SETTLEMENT-CNY"
FEE_INCOME = "GL-FEE-INCOME-CNY"
INTO_PENDING = ("pay", "release", "capture")
SWEEP = 100  # merchants per end-of-day command
MAX_STATEMENT_DAYS = 366


def settles(row: Any) -> bool:
    """Whether a movement moves the merchant's pending money (and so is settled)."""
    return row.kind in INTO_PENDING or (row.kind == "refund" and row.source == "pending")


def is_day(value: object) -> bool:
    """A business day is a date (a datetime is a date too, but not a day)."""
    return isinstance(value, date) and not isinstance(value, datetime)


@dataclass(frozen=True, slots=True)
class Figures:
    """What a set of settled movements comes to, in fen."""

    items: int
    gross: int  # paid in: payments, releases, captures
    refunds: int  # refunded out of pending money
    fees: int
    net: int  # gross - refunds - fees: what the merchant's account gets (or gives back)


def figures_of(rows: list[Any]) -> Figures:
    gross = sum(r.amount for r in rows if r.kind in INTO_PENDING)
    refunded = sum(r.amount for r in rows if r.kind == "refund")
    fees = sum(r.fee for r in rows)
    return Figures(len(rows), gross, refunded, fees, gross - refunded - fees)


@dataclass(frozen=True, slots=True)
class LedgerIds:
    """The ledger accounts one merchant's settlement posts to."""

    pending: int
    fee_income: int
    payee: int  # the merchant's settlement account's ledger account


def legs_of(ids: LedgerIds, f: Figures) -> list[Leg]:
    """The legs of a settlement's entry (none when everything nets to zero)."""
    legs = []
    if f.gross != f.refunds:
        side = "D" if f.gross > f.refunds else "C"
        legs.append(Leg(ids.pending, side, abs(f.gross - f.refunds)))
    if f.fees:
        legs.append(Leg(ids.fee_income, "C", f.fees))
    if f.net:
        legs.append(Leg(ids.payee, "C" if f.net > 0 else "D", abs(f.net)))
    return legs


def settle(tx: Tx, merchant: Merchant, rows: list[Any], *,
           business_day: date | None = None) -> int | None:  # fmt: skip
    """Settle these movements (none settled before) in one entry; the settlement's id, or
    None when there is nothing to settle. The settlement is dated `business_day` (the day the
    end-of-day run is for), else its latest movement's day. The ledger's refusal (an account
    that cannot pay or receive) is raised before anything is written."""
    rows = [r for r in rows if settles(r)]
    if not rows:
        return None
    f = figures_of(rows)
    settlement_id = tx.new_id("gateway_settlements")
    number = reference("S", settlement_id, tx.now)
    payee = accounts.account_by_id(tx.conn, merchant.settlement_account_id).ledger_account_id
    ids = LedgerIds(ledger.account_id_of(tx, PENDING), ledger.account_id_of(tx, FEE_INCOME), payee)
    legs = legs_of(ids, f)
    entry_id = None
    if legs:
        entry_id = ledger.post(tx, legs, kind="settlement", memo=f"商户结算 {number}").id
    tx.conn.execute(
        settlements.insert().values(
            id=settlement_id, settlement_no=number, merchant_id=merchant.id,
            business_date=business_day or max(r.business_date for r in rows),
            cycle=merchant.cycle, items=f.items, gross=f.gross, refunds=f.refunds, fees=f.fees,
            net=f.net, entry_id=entry_id, created_at=tx.now,
        )
    )  # fmt: skip
    tx.conn.execute(
        settlement_items.insert(),
        [{"movement_id": r.id, "settlement_id": settlement_id} for r in rows],
    )
    return settlement_id


def realtime(tx: Tx, merchant: Merchant, movement_id: int) -> None:
    """Settle a movement at once if the merchant settles T+0 in real time. If the settlement
    account cannot take it now (suspended, closed), the payment still stands: the movement
    waits for the end of day, which carries it over and reports it."""
    if merchant.cycle == "t0_realtime":
        row = tx.conn.execute(select(movements).where(movements.c.id == movement_id)).one()
        try:
            settle(tx, merchant, [row])
        except EbankError as error:  # raised before anything was written
            log.warning("real-time settlement deferred",
                        extra={"merchant": merchant.id, "code": error.code})  # fmt: skip


def _unsettled() -> Any:
    return ~exists().where(settlement_items.c.movement_id == movements.c.id)


def _moves_pending() -> Any:
    m = movements.c
    return or_(m.kind.in_(INTO_PENDING), and_(m.kind == "refund", m.source == "pending"))


def unsettled_of_order(conn: Connection, order_id: int) -> int:
    """How much of an order's money still waits in pending money (refunds out of it taken)."""
    rows = conn.execute(
        select(movements).where(movements.c.order_id == order_id, _unsettled())
    ).all()
    return sum(r.amount if r.kind in INTO_PENDING else -r.amount for r in rows if settles(r))


# -- the end of the day -------------------------------------------------------------------
def cutoff(merchant: Merchant, business_day: date) -> date:
    """The latest business day whose movements the end of `business_day` settles: that day
    itself for T+0 (real-time merchants' leftovers, from before they moved to real time,
    too), N calendar days before it for T+N."""
    if merchant.cycle == "tn":
        return business_day - timedelta(days=merchant.settle_days)
    return business_day


def _due_query(merchant_id: int, last_day: date) -> Any:
    """A merchant's unsettled movements of pending money due by `last_day`: those of that day
    or earlier, and refunds out of pending money whose order's takings are due (a refund is
    settled with the takings it was paid from, so pending money never goes below zero)."""
    m = movements.c
    takings = aliased(movements)
    takings_due = exists().where(
        takings.c.order_id == m.order_id, takings.c.kind.in_(INTO_PENDING),
        takings.c.business_date <= last_day,
    )  # fmt: skip
    return (
        select(movements)
        .where(m.merchant_id == merchant_id, _unsettled(), _moves_pending())
        .where(or_(m.business_date <= last_day, and_(m.kind == "refund", takings_due)))
        .order_by(m.id)
    )


@dataclass(frozen=True, slots=True)
class Carried:
    """A settlement the end-of-day run could not book: its movements wait for the next run."""

    merchant_id: int
    merchant_no: str
    items: int
    net: int  # fen
    code: str  # the ledger's refusal: INSUFFICIENT_FUNDS, ACCOUNT_CLOSED, ...


@dataclass(frozen=True, slots=True)
class EndOfDay:
    """What an end-of-day run (or one chunk of it) did."""

    settled: tuple[int, ...]  # settlement ids
    carried: tuple[Carried, ...]
    last_merchant: int | None  # the chunk's last merchant id; None once every merchant is done

    def __add__(self, other: "EndOfDay") -> "EndOfDay":
        return EndOfDay(
            self.settled + other.settled, self.carried + other.carried, other.last_merchant
        )


def _settle_due(tx: Tx, merchant: Merchant, business_day: date) -> int | Carried | None:
    last_day = cutoff(merchant, business_day)
    due = tx.conn.execute(_due_query(merchant.id, last_day)).all()
    if not due:
        return None
    # Lock the orders first, as a refund does, then read again: a refund deciding whether
    # it may still be paid out of pending money either waits for this settlement or is in it.
    order_ids = sorted({r.order_id for r in due})
    tx.conn.execute(
        select(orders.c.id).where(orders.c.id.in_(order_ids)).order_by(orders.c.id)
        .with_for_update()
    ).all()  # fmt: skip
    due = tx.conn.execute(_due_query(merchant.id, last_day)).all()
    try:
        return settle(tx, merchant, due, business_day=business_day)
    except EbankError as refused:
        f = figures_of(due)
        audit.record(
            tx, actor="system", action="gateway.settlement.carried", subject=merchant.subject,
            outcome="failed",
            detail={"business_day": business_day.isoformat(), "items": f.items, "net": f.net,
                    "code": refused.code},
        )  # fmt: skip
        log.warning("settlement of merchant %s carried over: %s", merchant.merchant_no,
                    refused.code)  # fmt: skip
        return Carried(merchant.id, merchant.merchant_no, f.items, f.net, refused.code)


def settle_due(*, business_day: date, after: int = 0, limit: int = SWEEP) -> Command[EndOfDay]:
    """The end of `business_day` for up to `limit` merchants with ids above `after`: settle
    what each is due (module docstring). Running it again settles nothing twice: a movement
    is settled once (the settlement items' primary key guarantees it besides)."""

    def run(tx: Tx) -> EndOfDay:
        if not is_day(business_day):
            raise EbankError("INVALID_INPUT", reason="a business day is a date")
        ids = list(tx.conn.execute(
            select(merchants.c.id).where(merchants.c.id > after)
            .order_by(merchants.c.id).limit(limit)
        ).scalars())  # fmt: skip
        settled: list[int] = []
        carried: list[Carried] = []
        for merchant_id in ids:
            merchant = merchant_service.get(tx.conn, merchant_id, lock=True)
            outcome = _settle_due(tx, merchant, business_day)
            if isinstance(outcome, Carried):
                carried.append(outcome)
            elif outcome is not None:
                settled.append(outcome)
        last = ids[-1] if len(ids) == limit else None
        return EndOfDay(tuple(settled), tuple(carried), last)

    return Command(run)


def day_ended(now: datetime) -> date:
    """The business day that ended last before `now`: the one an end-of-day run is for."""
    return business_date(now) - timedelta(days=1)


def end_of_day(writer: Writer, *, business_day: date, chunk: int = SWEEP) -> EndOfDay:
    """Settle every merchant for the end of `business_day`, `chunk` merchants per command."""
    done = EndOfDay((), (), 0)
    while done.last_merchant is not None:
        done += writer.execute(
            settle_due(business_day=business_day, after=done.last_merchant, limit=chunk)
        )
    return done


# -- statements ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StatementItem:
    """One movement a settlement took."""

    movement_id: int
    trade_no: str
    out_trade_no: str
    kind: str  # pay | release | capture | refund
    refund_no: str | None
    out_refund_no: str | None
    amount: int
    fee: int
    business_date: date
    at: datetime


@dataclass(frozen=True, slots=True)
class SettlementView:
    id: int
    settlement_no: str
    merchant_id: int
    business_date: date
    cycle: str
    gross: int
    refunds: int
    fees: int
    net: int
    entry: str | None  # the ledger entry's reference; None when it netted to nothing
    created_at: datetime
    items: tuple[StatementItem, ...]


def checked_period(since: date, until: date, longest: int) -> None:
    """A period of whole business days, both ends included, of at most `longest` days."""
    if not (is_day(since) and is_day(until)):
        raise EbankError("INVALID_INPUT", reason="a period is two dates")
    if not 0 <= (until - since).days < longest:
        raise EbankError(
            "INVALID_INPUT", reason=f"a period runs forward and spans at most {longest} days"
        )


def statement(conn: Connection, merchant_id: int, since: date, until: date) -> list[SettlementView]:
    """A merchant's settlements of the business days `since` to `until` (both included),
    oldest first, each with the movements it took."""
    checked_period(since, until, MAX_STATEMENT_DAYS)
    s = settlements.c
    heads = conn.execute(
        select(settlements)
        .where(s.merchant_id == merchant_id, s.business_date >= since, s.business_date <= until)
        .order_by(s.id)
    ).all()  # fmt: skip
    if not heads:
        return []
    lines = conn.execute(
        select(
            settlement_items.c.settlement_id, movements, orders.c.trade_no,
            orders.c.out_trade_no, refunds.c.refund_no, refunds.c.out_refund_no,
        )
        .join(movements, movements.c.id == settlement_items.c.movement_id)
        .join(orders, orders.c.id == movements.c.order_id)
        .outerjoin(refunds, refunds.c.id == movements.c.refund_id)
        .join(settlements, settlements.c.id == settlement_items.c.settlement_id)
        .where(s.merchant_id == merchant_id, s.business_date >= since, s.business_date <= until)
        .order_by(movements.c.id)
    ).all()  # fmt: skip
    by_settlement: dict[int, list[StatementItem]] = {h.id: [] for h in heads}
    for r in lines:
        by_settlement[r.settlement_id].append(
            StatementItem(
                r.id, r.trade_no, r.out_trade_no, r.kind, r.refund_no, r.out_refund_no,
                r.amount, r.fee, r.business_date, as_utc(r.at),
            )
        )  # fmt: skip
    return [
        SettlementView(
            h.id, h.settlement_no, h.merchant_id, h.business_date, h.cycle, h.gross, h.refunds,
            h.fees, h.net,
            None if h.entry_id is None else reference("E", h.entry_id, as_utc(h.created_at)),
            as_utc(h.created_at), tuple(by_settlement[h.id]),
        )
        for h in heads
    ]  # fmt: skip
