"""Standing orders: transfers to a payee in the book, made once at a date and time or again
and again (daily, weekly on a weekday, monthly on a day of the month), from a start date until
an end date or a number of runs.

Setting one up is confirmed like a transfer of its amount to its payee (`payments.confirm`,
what="transfer"): that one confirmation authorises every run. It is set up only if such a
transfer would be allowed now with that factor (`limits.assess`), so that an order that could
never run is refused at once, not failed month after month. The large-transfer warning, when
the quote shows it, is confirmed at setup (`large_confirmed`) and stands for every run; a run
that crosses it unconfirmed fails with LARGE_TRANSFER_WARNING like any other refusal.

The worker runs each due occurrence in its own writer command (`run_occurrence`): the payee is
resolved and checked again, the limits service authorises the payment with the factor
recorded at setup, and the payments service books it. The occurrence's row, unique per order
and date, is written in the same command: however many workers try, an occurrence is paid
once. An occurrence that fails (insufficient funds, a limit, the payee's account closed) is
recorded with its error code by a second command, the customer is told, and the order goes on
with its next occurrence. Occurrences missed while no worker ran are made late, in order.
"""

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ebank.accounts import service as accounts
from ebank.accounts.tables import customer_accounts
from ebank.core import audit
from ebank.core.clock import as_utc, business_date
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR
from ebank.core.writer import Command, Idempotency, Tx, Writer, fingerprint
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.notify import notices
from ebank.payments import confirm
from ebank.payments import service as payments
from ebank.payments.models import Confirmation, TransferRequest
from ebank.security import certificates
from ebank.security.service import Checked, CodeIssued
from ebank.standing import payees
from ebank.standing.models import (
    MAX_LEAD,
    Occurrence,
    OrderQuote,
    OrderRequest,
    OrderView,
    PayeeView,
    Schedule,
)
from ebank.standing.tables import payees as payees_table
from ebank.standing.tables import standing_occurrences, standing_orders

SWEEP = 500


# -- what an order pays --------------------------------------------------------------------------
def _transfer(conn: Connection, vault: Vault, order: OrderRequest) -> TransferRequest:
    """The order as a transfer to its payee: what every run pays, and what confirms it."""
    if type(order.amount) is not int or not 0 < order.amount <= MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="an order's amount is a positive number of fen")
    entry = payees.in_book(conn, vault, customer_id=order.customer_id, payee_id=order.payee_id)
    return TransferRequest(
        customer_id=order.customer_id, channel=order.channel, from_account=order.from_account,
        payee_account=entry.account, payee_name=entry.name, amount=order.amount,
        payee_bank=entry.bank, memo=order.memo,
    )  # fmt: skip


def _resolve(conn: Connection, vault: Vault, order: OrderRequest) -> Any:
    """Who pays whom, by the payments service's rules: the paying account is the customer's,
    a payee here exists and bears the name in the book."""
    return payments.resolve(conn, _transfer(conn, vault, order))


def _first_run(schedule: Schedule, now: datetime) -> date:
    """The first run date whose time is still to come."""
    schedule = schedule.checked()
    today = business_date(now)
    if schedule.start_on > today + MAX_LEAD:
        raise EbankError("INVALID_INPUT", reason="an order starts within a year")
    if schedule.start_on < today:  # and the search for its first run stays short
        raise EbankError("INVALID_INPUT", reason="an order starts today or later")
    day = schedule.next_date(None)
    while day is not None and schedule.instant(day) <= now:
        day = schedule.next_date(day)
    if day is None:
        raise EbankError("INVALID_INPUT", reason="the order would never run: its time has passed")
    return day


def quote(conn: Connection, vault: Vault, order: OrderRequest, *, now: datetime) -> OrderQuote:
    """What setting the order up will take (the factors a transfer of its amount to its payee
    would need now), and its first run; or why it cannot be set up."""
    found = payments.quote(conn, _transfer(conn, vault, order), now=now)
    first = _first_run(order.schedule, now)
    return OrderQuote(found.kind, found.methods, found.large_warning, order.schedule.instant(first))


def _confirming(conn: Connection, vault: Vault, order: OrderRequest) -> confirm.Confirming:
    """What confirming the order binds: its payee and amount, as a standing order (预约转账),
    so that its code does not also confirm a one-off transfer of the same."""
    found = payments.confirming(_resolve(conn, vault, order))
    return replace(found, what="standing")


def send_code(vault: Vault, order: OrderRequest) -> Command[CodeIssued]:
    """Text the customer a code for exactly this order's payee and amount."""
    return Command(lambda tx: confirm.send_code(tx, vault, _confirming(tx.conn, vault, order)))


def start_signing(vault: Vault, order: OrderRequest) -> Command[certificates.SigningChallenge]:
    """The bytes the customer's U-key signs to confirm this order."""
    return Command(lambda tx: confirm.start_signing(tx, _confirming(tx.conn, vault, order)))


def create(
    vault: Vault, order: OrderRequest, confirmation: Confirmation, *, idempotency_key: str
) -> Command[Checked[int]]:
    """Set the order up once per idempotency key, confirmed by the factor; its id."""
    pin = confirm.pin_check(order.customer_id, confirmation)

    def run(tx: Tx) -> Checked[int]:
        resolved = _resolve(tx.conn, vault, order)
        schedule = order.schedule
        first = _first_run(schedule, tx.now)
        standing = replace(payments.confirming(resolved), what="standing")
        verdict = confirm.check(tx, vault, standing, confirmation, pin)
        if not verdict.ok:
            return Checked(verdict)
        found = payments.quote(tx.conn, resolved.request, now=tx.now)
        if found.methods and confirmation.method not in found.methods:
            raise EbankError("STRONGER_FACTOR_REQUIRED", methods=list(found.methods))
        order_id = tx.new_id("standing_orders")
        r = resolved.request
        tx.conn.execute(
            standing_orders.insert().values(
                id=order_id, customer_id=r.customer_id, payee_id=order.payee_id,
                from_account_id=resolved.payer.id, amount=r.amount, currency=r.currency,
                memo=r.memo, channel=r.channel, method=confirmation.method,
                large_confirmed=confirmation.large_confirmed, frequency=schedule.frequency,
                day=schedule.day, start_on=schedule.start_on, run_time=schedule.at,
                end_on=schedule.end_on, max_runs=schedule.count, runs=0, status="active",
                next_run_at=schedule.instant(first), created_at=tx.now, ended_at=None,
            )
        )  # fmt: skip
        audit.record(
            tx, actor=f"customer:{r.customer_id}", action="standing_order.create",
            subject=f"standing_order:{order_id}", channel=r.channel,
            detail={"payee": order.payee_id, "amount": r.amount, "frequency": schedule.frequency,
                    "method": confirmation.method},
        )  # fmt: skip
        return Checked(verdict, order_id)

    s = order.schedule
    asked = fingerprint(
        op="standing_order", customer=order.customer_id, channel=order.channel,
        payee=order.payee_id, from_account=order.from_account, amount=order.amount,
        memo=order.memo, frequency=s.frequency, day=s.day, start_on=str(s.start_on),
        at=str(s.at), end_on=str(s.end_on), count=s.count, method=confirmation.method,
        large=confirmation.large_confirmed,
    )  # fmt: skip
    return Command(
        run,
        idempotency=Idempotency(
            f"customer:{order.customer_id}", idempotency_key, asked, Checked.replayed
        ),
        prepare=pin.prepare if confirmation.method == "pin" else None,
    )


def cancel(*, customer_id: int, order_id: int, channel: str) -> Command[int]:
    """Stop an order: no occurrence runs after this. Cancelling an order that has ended
    changes nothing; someone else's is STANDING_ORDER_NOT_FOUND."""

    def run(tx: Tx) -> int:
        row = _locked(tx, order_id)
        if row is None or row["customer_id"] != customer_id:
            raise EbankError("STANDING_ORDER_NOT_FOUND")
        if row["status"] != "active":
            return order_id
        tx.conn.execute(
            standing_orders.update()
            .where(standing_orders.c.id == order_id)
            .values(status="cancelled", next_run_at=None, ended_at=tx.now)
        )
        audit.record(
            tx, actor=f"customer:{customer_id}", action="standing_order.cancel",
            subject=f"standing_order:{order_id}", channel=channel,
        )  # fmt: skip
        return order_id

    return Command(run)


# -- running occurrences -------------------------------------------------------------------------
def _locked(tx: Tx, order_id: object) -> Any:
    if type(order_id) is not int:
        raise EbankError("INVALID_INPUT", reason="an order id is an integer")
    query = select(standing_orders).where(standing_orders.c.id == order_id).with_for_update()
    return tx.conn.execute(query).mappings().first()


def _schedule(row: Any) -> Schedule:
    return Schedule(
        row["frequency"], row["start_on"], row["run_time"], row["day"], row["end_on"],
        row["max_runs"],
    )  # fmt: skip


def _due(tx: Tx, order_id: int) -> Any:
    """The order's row, locked, if its next occurrence is due now."""
    row = _locked(tx, order_id)
    if row is None or row["status"] != "active" or as_utc(row["next_run_at"]) > tx.now:
        return None
    return row


def _advance(tx: Tx, row: Any, *, payment_id: int | None, failure_code: str | None) -> None:
    """Record the due occurrence's outcome and move the order on to its next one, or end it."""
    due_at = as_utc(row["next_run_at"])
    due_on = business_date(due_at)
    tx.conn.execute(
        standing_occurrences.insert().values(
            order_id=row["id"], due_on=due_on, due_at=due_at, payment_id=payment_id,
            failure_code=failure_code, ran_at=tx.now,
        )
    )  # fmt: skip
    runs = row["runs"] + 1
    schedule = _schedule(row)
    following = None if runs == row["max_runs"] else schedule.next_date(due_on)
    tx.conn.execute(
        standing_orders.update()
        .where(standing_orders.c.id == row["id"])
        .values(
            runs=runs,
            next_run_at=None if following is None else schedule.instant(following),
            status="active" if following is not None else "finished",
            ended_at=None if following is not None else tx.now,
        )
    )


def _request_of(tx: Tx, row: Any) -> OrderRequest:
    """The order as set up, to be resolved again on the day it runs."""
    return OrderRequest(
        customer_id=row["customer_id"], channel=row["channel"], payee_id=row["payee_id"],
        from_account=accounts.account_by_id(tx.conn, row["from_account_id"]).number,
        amount=row["amount"], schedule=_schedule(row), memo=row["memo"],
    )  # fmt: skip


def run_occurrence(vault: Vault, order_id: int) -> Command[bool]:
    """Pay the order's due occurrence: True if this command paid it, False if it was not due
    (not yet, or another worker got there first). A refusal raises, and nothing is written."""

    def run(tx: Tx) -> bool:
        row = _due(tx, order_id)
        if row is None:
            return False
        resolved = _resolve(tx.conn, vault, _request_of(tx, row))
        confirmed = Confirmation(row["method"], large_confirmed=row["large_confirmed"])
        payment_id = payments.pay(tx, vault, resolved, confirmed, present=False)
        _advance(tx, row, payment_id=payment_id, failure_code=None)
        return True

    return Command(run)


def fail_occurrence(
    vault: Vault, order_id: int, due_at: datetime, error: EbankError
) -> Command[bool]:
    """Record that the occurrence due at `due_at` could not be paid, tell the customer why,
    and move the order on. False if it was dealt with meanwhile (paid by another worker)."""

    def run(tx: Tx) -> bool:
        row = _due(tx, order_id)
        if row is None or as_utc(row["next_run_at"]) != as_utc(due_at):
            return False
        _advance(tx, row, payment_id=None, failure_code=error.code)
        entry = payees.entry(
            tx.conn, vault, customer_id=row["customer_id"], payee_id=row["payee_id"]
        )
        notices.scheduled_failed(
            tx, vault, customer_id=row["customer_id"], amount=row["amount"],
            payee_name=entry.name, payee_account=entry.account, due_at=as_utc(due_at),
            reason=error,
        )  # fmt: skip
        audit.record(
            tx, actor="system", action="standing_order.run", subject=f"standing_order:{order_id}",
            outcome="failed", detail={"due_at": as_utc(due_at).isoformat(), "code": error.code},
        )  # fmt: skip
        return True

    return Command(run)


def run_due_orders(writer: Writer, vault: Vault, *, limit: int = SWEEP) -> int:
    """Run every occurrence due now, each in its own command; how many were paid. Failures
    are recorded and told to the customer. Sweeps again while it gets anywhere, so that the
    occurrences an order missed while no worker ran are made, oldest first."""
    paid = 0
    while True:
        now = writer.clock.now()
        with writer.engine.connect() as conn:
            due = conn.execute(
                select(standing_orders.c.id, standing_orders.c.next_run_at)
                .where(standing_orders.c.status == "active", standing_orders.c.next_run_at <= now)
                .order_by(standing_orders.c.next_run_at, standing_orders.c.id)
                .limit(limit)
            ).all()  # fmt: skip
        futures = [(oid, at, writer.submit(run_occurrence(vault, oid))) for oid, at in due]
        moved = 0
        for order_id, due_at, future in futures:
            try:
                done = future.result()
                paid += done
            except EbankError as error:
                done = writer.execute(fail_occurrence(vault, order_id, due_at, error))
            moved += done
        if not moved:
            return paid


# -- reading -------------------------------------------------------------------------------------
def _view(row: Any, payee: PayeeView, last: Occurrence | None) -> OrderView:
    return OrderView(
        row["id"], payee, row["from_number"], row["amount"], row["currency"], row["memo"],
        _schedule(row), row["method"], row["status"], row["runs"],
        None if row["next_run_at"] is None else as_utc(row["next_run_at"]), last,
        as_utc(row["created_at"]),
    )  # fmt: skip


def _occurrence(row: Any) -> Occurrence:
    return Occurrence(row.due_on, row.payment_id, row.failure_code, as_utc(row.ran_at))


def _views(conn: Connection, customer_id: int, *where: Any) -> list[OrderView]:
    rows = conn.execute(
        select(standing_orders, ledger_accounts.c.code.label("from_number"))
        .select_from(
            standing_orders.join(
                customer_accounts, customer_accounts.c.id == standing_orders.c.from_account_id
            )
            .join(ledger_accounts, ledger_accounts.c.id == customer_accounts.c.ledger_account_id)
        )
        .where(standing_orders.c.customer_id == customer_id, *where)
        .order_by(standing_orders.c.id)
    ).mappings().all()  # fmt: skip
    ids = [row["id"] for row in rows]
    latest = (
        select(func.max(standing_occurrences.c.id))
        .where(standing_occurrences.c.order_id.in_(ids))
        .group_by(standing_occurrences.c.order_id)
    )
    last = {
        o.order_id: _occurrence(o)
        for o in conn.execute(
            select(standing_occurrences).where(standing_occurrences.c.id.in_(latest))
        )
    }
    book = {
        row["id"]: payees.view_of(row)
        for row in conn.execute(
            select(payees_table).where(payees_table.c.id.in_({row["payee_id"] for row in rows}))
        ).mappings()
    }
    return [_view(row, book[row["payee_id"]], last.get(row["id"])) for row in rows]


def orders_of(conn: Connection, customer_id: int) -> list[OrderView]:
    """The customer's standing orders, oldest first, with their next run and last result."""
    return _views(conn, customer_id)


def order_of(conn: Connection, *, customer_id: int, order_id: int) -> OrderView:
    """One of the customer's orders; someone else's is STANDING_ORDER_NOT_FOUND."""
    found = _views(conn, customer_id, standing_orders.c.id == order_id)
    if not found:
        raise EbankError("STANDING_ORDER_NOT_FOUND")
    return found[0]


def occurrences_of(
    conn: Connection, *, customer_id: int, order_id: int, limit: int = 100
) -> list[Occurrence]:
    """The runs of one of the customer's orders, newest first, up to `limit`; someone else's
    order is STANDING_ORDER_NOT_FOUND."""
    owner = conn.execute(
        select(standing_orders.c.customer_id).where(standing_orders.c.id == order_id)
    ).scalar()
    if owner != customer_id:
        raise EbankError("STANDING_ORDER_NOT_FOUND")
    rows = conn.execute(
        select(standing_occurrences)
        .where(standing_occurrences.c.order_id == order_id)
        .order_by(standing_occurrences.c.due_on.desc())
        .limit(limit)
    )
    return [_occurrence(row) for row in rows]
