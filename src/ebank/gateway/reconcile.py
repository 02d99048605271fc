"""Reconciliation: the merchant's daily file of what the gateway did with its money, and the
bank's own proof that orders, movements, ledger entries and settlements agree.

The file's exact layout is in docs/gateway.md, "Reconciliation file". The internal check
(`check`) reports every disagreement as a `Break` naming what disagrees, where, and both
figures; an empty list is a clean bill.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select, true

from ebank.accounts.tables import customer_accounts
from ebank.core.clock import BUSINESS_TZ, as_utc, business_day_bounds
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.sheets import csv_text
from ebank.gateway.orders import ESCROW
from ebank.gateway.settlement import (
    FEE_INCOME,
    INTO_PENDING,
    PENDING,
    LedgerIds,
    figures_of,
    is_day,
    legs_of,
)
from ebank.gateway.tables import (
    MOVEMENT_KINDS,
    merchants,
    movements,
    orders,
    refunds,
    settlement_items,
    settlements,
)
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.ledger.tables import postings

BOM = "\ufeff"
COLUMNS = (
    "trade_no", "out_trade_no", "refund_no", "out_refund_no", "capture_no", "type", "mode",
    "funding", "channel", "source", "amount", "fee", "net", "time",
)  # fmt: skip
SUMMARY = ("summary", "count", "amount", "fee", "net")
PAID_IN = ("pay", "escrow_in", "capture")  # the buyer's money reaching the merchant or escrow
HELD = ("held", "disputed")


def net_of(row: Any) -> int:
    """What a movement changes in what the bank owes the merchant, in fen: takings less their
    fee; minus a refund paid out of the merchant's money; nothing for money in escrow."""
    if row.kind in INTO_PENDING:
        return row.amount - row.fee
    if row.kind == "refund" and row.source != "escrow":
        return -row.amount
    return 0


# -- the merchant's daily file ------------------------------------------------------------
def daily_file(conn: Connection, merchant_id: int, day: date) -> bytes:
    """The merchant's reconciliation file of one business day (Asia/Shanghai): CSV in UTF-8
    with a byte-order mark, CRLF line ends; one line per movement of its money, then the
    day's totals by type (docs/gateway.md)."""
    if not is_day(day):
        raise EbankError("INVALID_INPUT", reason="a reconciliation day is a date")
    m = movements.c
    rows = conn.execute(
        select(
            movements, orders.c.trade_no, orders.c.out_trade_no, orders.c.mode,
            orders.c.funding, orders.c.channel, refunds.c.refund_no, refunds.c.out_refund_no,
        )
        .join(orders, orders.c.id == m.order_id)
        .outerjoin(refunds, refunds.c.id == m.refund_id)
        .where(m.merchant_id == merchant_id, m.business_date == day)
        .order_by(m.id)
    ).all()  # fmt: skip
    lines: list[list[object]] = [list(COLUMNS)]
    totals = {kind: [0, 0, 0, 0] for kind in MOVEMENT_KINDS}  # count, amount, fee, net
    for r in rows:
        net = net_of(r)
        lines.append([
            r.trade_no, r.out_trade_no, r.refund_no, r.out_refund_no, r.capture_no, r.kind,
            r.mode, r.funding, r.channel, r.source, format_minor(r.amount), format_minor(r.fee),
            format_minor(net), f"{as_utc(r.at).astimezone(BUSINESS_TZ):%Y-%m-%d %H:%M:%S}",
        ])  # fmt: skip
        for i, value in enumerate((1, r.amount, r.fee, net)):
            totals[r.kind][i] += value
    lines += [[], list(SUMMARY)]
    for kind, (count, amount, fee, net) in totals.items():
        lines.append([kind, count, format_minor(amount), format_minor(fee), format_minor(net)])
    lines.append([
        "total", len(rows), "", format_minor(sum(t[2] for t in totals.values())),
        format_minor(sum(t[3] for t in totals.values())),
    ])  # fmt: skip
    return (BOM + csv_text(lines)).encode("utf-8")


# -- the bank's internal check ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Break:
    """One disagreement: what should agree, where, what it should be and what was found
    (amounts in fen; ledger postings as text)."""

    what: str
    where: str
    expected: int | str
    found: int | str

    def __post_init__(self) -> None:
        for name in ("expected", "found"):  # a SUM is a numeric on PostgreSQL: plain fen
            value = getattr(self, name)
            if not isinstance(value, str):
                object.__setattr__(self, name, int(value))


class _Scope:
    """What a check covers: one business day (its movements, orders and settlements, and the
    balances as they stood at its end), or everything (balances as they stand now)."""

    def __init__(self, day: date | None) -> None:
        if day is not None and not is_day(day):
            raise EbankError("INVALID_INPUT", reason="a reconciliation day is a date")
        self.day = day
        self.end = None if day is None else business_day_bounds(day)[1]

    def movements(self) -> Any:
        return true() if self.day is None else movements.c.business_date == self.day

    def before_end(self, column: Any) -> Any:
        return true() if self.end is None else column < self.end


def check(conn: Connection, day: date | None = None) -> list[Break]:
    """Prove that the gateway's records agree with each other and with the ledger, for one
    business day or (None) for everything; every disagreement found."""
    scope = _Scope(day)
    found: list[Break] = []
    found += _order_totals(conn, scope)
    found += _movement_entries(conn, scope)
    found += _pending_money(conn, scope)
    found += _escrow_money(conn, scope)
    found += _settlement_entries(conn, scope)
    return found


def _sum_if(condition: Any, value: Any) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _in_escrow() -> Any:
    """What movements left in escrow: paid in, less released and refunded out of it."""
    m = movements.c
    return (
        _sum_if(m.kind == "escrow_in", m.amount) - _sum_if(m.kind == "release", m.amount)
        - _sum_if(and_(m.kind == "refund", m.source == "escrow"), m.amount)
    )  # fmt: skip


def _order_totals(conn: Connection, scope: _Scope) -> list[Break]:
    """Each order's paid and refunded totals are what its movements (and the refunds waiting
    for review) say, and escrow keeps exactly the money of held and disputed orders."""
    m = movements.c
    touched = orders.c.id.in_(select(m.order_id).where(scope.movements()))
    if scope.day is None:  # and orders that claim money without any movement
        touched = or_(touched, orders.c.paid_amount > 0, orders.c.refunded_amount > 0)
    waiting = (
        select(refunds.c.order_id, func.sum(refunds.c.amount).label("amount"))
        .where(refunds.c.status == "requested").group_by(refunds.c.order_id).subquery()
    )  # fmt: skip
    rows = conn.execute(
        select(
            orders.c.trade_no, orders.c.status, orders.c.paid_amount, orders.c.refunded_amount,
            merchants.c.merchant_no,
            _sum_if(m.kind.in_(PAID_IN), m.amount).label("paid_in"),
            _sum_if(m.kind == "refund", m.amount).label("refunded"),
            _sum_if(and_(m.kind == "refund", m.source == "escrow"), m.amount).label("from_escrow"),
            _in_escrow().label("in_escrow"),
            func.coalesce(func.max(waiting.c.amount), 0).label("waiting"),
        )
        .select_from(orders)
        .join(merchants, merchants.c.id == orders.c.merchant_id)
        .outerjoin(movements, m.order_id == orders.c.id)
        .outerjoin(waiting, waiting.c.order_id == orders.c.id)
        .where(touched)
        .group_by(orders.c.id, merchants.c.merchant_no)
        .order_by(orders.c.id)
    ).all()  # fmt: skip
    breaks = []
    for r in rows:
        where = f"merchant {r.merchant_no} order {r.trade_no}"
        held = r.paid_amount - r.from_escrow if r.status in HELD else 0
        for what, expected, actual in (
            ("order paid_amount", r.paid_in, r.paid_amount),
            ("order refunded_amount", r.refunded + r.waiting, r.refunded_amount),
            ("order money in escrow", held, r.in_escrow),
        ):
            if expected != actual:
                breaks.append(Break(what, where, expected, actual))
    return breaks


def _described(legs: list[tuple[int, str, int]], codes: dict[int, str]) -> str:
    return "; ".join(f"{side} {codes.get(acc, acc)} {format_minor(amount)}"
                     for acc, side, amount in legs) or "none"  # fmt: skip


def _codes(conn: Connection, ids: set[int]) -> dict[int, str]:
    query = select(ledger_accounts.c.id, ledger_accounts.c.code)
    return dict(conn.execute(query.where(ledger_accounts.c.id.in_(ids))).all()) if ids else {}


def _internal(conn: Connection) -> dict[str, int]:
    query = select(ledger_accounts.c.code, ledger_accounts.c.id)
    codes = (PENDING, ESCROW, FEE_INCOME)
    return dict(conn.execute(query.where(ledger_accounts.c.code.in_(codes))).all())


def _posted(conn: Connection, entry: Any, scope: Any) -> dict[int, list[tuple[int, str, int]]]:
    """The postings of the entries a query's rows name (`entry` its entry id column)."""
    rows = conn.execute(
        select(postings.c.entry_id, postings.c.account_id, postings.c.side, postings.c.amount)
        .where(postings.c.entry_id.in_(select(entry).where(scope)))
    ).all()  # fmt: skip
    found: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for r in rows:
        found[r.entry_id].append((r.account_id, r.side, r.amount))
    return found


def _payee() -> Any:
    """The ledger account of a merchant's settlement account (join on merchants)."""
    return (
        select(customer_accounts.c.ledger_account_id)
        .where(customer_accounts.c.id == merchants.c.settlement_account_id)
        .scalar_subquery()
    )


def _movement_entries(conn: Connection, scope: _Scope) -> list[Break]:
    """Each movement's entry exists and moves exactly its amount between the accounts its
    kind says (docs/gateway.md, "Fees and settlement")."""
    gl = _internal(conn)
    m = movements.c
    rows = conn.execute(
        select(movements, orders.c.trade_no, orders.c.payer_ledger_account_id.label("payer"),
               merchants.c.merchant_no, _payee().label("payee"))
        .join(orders, orders.c.id == m.order_id)
        .join(merchants, merchants.c.id == m.merchant_id)
        .where(scope.movements()).order_by(m.id)
    ).all()  # fmt: skip
    posted = _posted(conn, m.entry_id, scope.movements())
    pending, escrow = gl.get(PENDING, 0), gl.get(ESCROW, 0)
    mismatched = []
    for r in rows:
        payer = r.payer or 0
        source = {"escrow": escrow, "pending": pending, "settlement": r.payee}.get(r.source, 0)
        debit, credit = {
            "pay": (payer, pending), "escrow_in": (payer, escrow), "release": (escrow, pending),
            "capture": (payer, pending), "refund": (source, payer),
        }[r.kind]  # fmt: skip
        expected = sorted([(debit, "D", r.amount), (credit, "C", r.amount)])
        actual = sorted(posted.get(r.entry_id, []))
        if expected != actual:
            mismatched.append((r, expected, actual))
    codes = _codes(conn, {a for _, e, f in mismatched for a, _, _ in e + f})
    return [
        Break(f"{r.kind} entry", f"merchant {r.merchant_no} order {r.trade_no} movement {r.id}",
              _described(e, codes), _described(f, codes))
        for r, e, f in mismatched
    ]  # fmt: skip


def _settled_by(scope: _Scope) -> Any:
    """Movements settled by the scope's end."""
    return (
        select(settlement_items.c.movement_id)
        .join(settlements, settlements.c.id == settlement_items.c.settlement_id)
        .where(scope.before_end(settlements.c.created_at))
    )


def _balance(conn: Connection, account_id: int | None, scope: _Scope) -> int:
    """A credit-normal internal account's balance at the scope's end."""
    p = postings.c
    return int(conn.execute(
        select(_sum_if(p.side == "C", p.amount) - _sum_if(p.side == "D", p.amount))
        .where(p.account_id == account_id, scope.before_end(p.posted_at))
    ).scalar_one())  # fmt: skip


def _pending_money(conn: Connection, scope: _Scope) -> list[Break]:
    """Pending money, per merchant (its share: what its movements' and settlements' entries
    put there) and overall (the account's balance), is its unsettled movements' net."""
    pending = _internal(conn).get(PENDING)
    m, p, s = movements.c, postings.c, settlements.c
    into = or_(m.kind.in_(INTO_PENDING), and_(m.kind == "refund", m.source == "pending"))
    signed = case((m.kind == "refund", -m.amount), else_=m.amount)
    unsettled = dict(conn.execute(
        select(m.merchant_id, func.sum(signed))
        .where(into, scope.before_end(m.at), m.id.not_in(_settled_by(scope)))
        .group_by(m.merchant_id)
    ).all())  # fmt: skip
    share = _sum_if(p.side == "C", p.amount) - _sum_if(p.side == "D", p.amount)
    shares: dict[int, int] = defaultdict(int)
    for owner, entry in ((m.merchant_id, m.entry_id), (s.merchant_id, s.entry_id)):
        for merchant_id, amount in conn.execute(
            select(owner, share).select_from(postings.join(owner.table, p.entry_id == entry))
            .where(p.account_id == pending, scope.before_end(p.posted_at)).group_by(owner)
        ).all():  # fmt: skip
            shares[merchant_id] += amount
    numbers = dict(conn.execute(select(merchants.c.id, merchants.c.merchant_no)).all())
    breaks = [
        Break("merchant pending money", f"merchant {numbers[i]}", unsettled.get(i, 0),
              shares.get(i, 0))
        for i in sorted(set(unsettled) | set(shares))
        if unsettled.get(i, 0) != shares.get(i, 0)
    ]  # fmt: skip
    expected, balance = sum(unsettled.values()), _balance(conn, pending, scope)
    if expected != balance:
        breaks.append(Break("pending account balance", PENDING, expected, balance))
    return breaks


def _escrow_money(conn: Connection, scope: _Scope) -> list[Break]:
    """The escrow account holds exactly what buyers paid into escrow, less what was released
    to merchants or refunded from it (per order, that is the held and disputed orders'
    money: `_order_totals`)."""
    held = conn.execute(select(_in_escrow()).where(scope.before_end(movements.c.at))).scalar_one()
    balance = _balance(conn, _internal(conn).get(ESCROW), scope)
    return [] if held == balance else [Break("escrow account balance", ESCROW, held, balance)]


def _settlement_entries(conn: Connection, scope: _Scope) -> list[Break]:
    """Each settlement's figures are its items', and its entry posts exactly those."""
    gl = _internal(conn)
    s = settlements.c
    in_scope = true() if scope.day is None else s.business_date == scope.day
    heads = conn.execute(
        select(settlements, merchants.c.merchant_no, _payee().label("payee"))
        .join(merchants, merchants.c.id == s.merchant_id).where(in_scope).order_by(s.id)
    ).all()  # fmt: skip
    items: dict[int, list[Any]] = defaultdict(list)
    for r in conn.execute(
        select(settlement_items.c.settlement_id, movements)
        .join(movements, movements.c.id == settlement_items.c.movement_id)
        .join(settlements, s.id == settlement_items.c.settlement_id).where(in_scope)
    ).all():  # fmt: skip
        items[r.settlement_id].append(r)
    posted = _posted(conn, s.entry_id, in_scope)
    breaks: list[Break] = []
    for h in heads:
        where = f"merchant {h.merchant_no} settlement {h.settlement_no}"
        f = figures_of(items[h.id])
        for name in ("items", "gross", "refunds", "fees", "net"):
            expected_figure, recorded = getattr(f, name), getattr(h, name)
            if expected_figure != recorded:
                breaks.append(Break(f"settlement {name}", where, expected_figure, recorded))
        ids = LedgerIds(gl.get(PENDING, 0), gl.get(FEE_INCOME, 0), h.payee)
        expected = sorted((leg.account_id, leg.side, leg.amount) for leg in legs_of(ids, f))
        actual = sorted(posted.get(h.entry_id, [])) if h.entry_id is not None else []
        if expected != actual:
            codes = _codes(conn, {a for a, _, _ in expected + actual})
            breaks.append(Break("settlement entry", where, _described(expected, codes),
                                _described(actual, codes)))  # fmt: skip
    return breaks
