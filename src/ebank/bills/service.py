"""Bill payment (代缴费): the biller registry, bill inquiry, paying a bill or topping up a phone,
and the worker that tells billers.

A bill payment is a payment of kind "bill" (`payments.service.record_payment`): the customer's
money moves to the biller's settlement account at once, in one writer command that also checks
the factor and asks the limits service, so a refusal anywhere undoes it all. Before it moves,
the biller is asked about the bill (in the command's `prepare`, off the writer): a bill already
paid, or an amount other than the bill's, is refused then.

The biller hears of the payment afterwards: `deliver_bill_payments` (the worker) claims the
payments due, calls the biller's adapter outside any transaction with the payment's reference,
and records the answer in a second command: confirmed (the biller's number kept, a receipt
issued), refused (the money goes back to the customer), or unknown (asked again later with
the same reference, which the biller answers without charging twice).
"""

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from ebank.accounts.models import CustomerAccount
from ebank.bills.adapters import ADAPTERS, adapter_for
from ebank.bills.models import (
    CATEGORIES,
    CATEGORY_NAMES,
    Bill,
    Biller,
    BillerReceipt,
    BillerRefusal,
    BillerUnknown,
    BillPaymentRequest,
    BillPaymentView,
    Inquiry,
    PayOutcome,
)
from ebank.bills.tables import bill_attempts, bill_payments
from ebank.bills.tables import billers as billers_table
from ebank.core import audit, outbox
from ebank.core.clock import Clock, as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError, checked_text
from ebank.core.money import MAX_MINOR, format_minor
from ebank.core.writer import Command, Idempotency, Tx, Writer, fingerprint
from ebank.customers import service as customers
from ebank.ledger import service as ledger
from ebank.ledger.models import reference
from ebank.limits import service as limits
from ebank.notify import delivery, notices
from ebank.payments import confirm
from ebank.payments import service as payments
from ebank.payments.models import Confirmation, Quote
from ebank.receipts import service as receipts
from ebank.receipts.models import ReceiptData
from ebank.receipts.pdf import BANK_NAME
from ebank.receipts.tables import receipts as receipts_table
from ebank.security import certificates
from ebank.security.service import Checked, CodeIssued

log = logging.getLogger(__name__)

NUMBER_PURPOSE = "bills.number"
LEDGER_PREFIX = "BILLER-"  # the code of a biller's settlement account on the ledger
# A biller's code is capital letters and a number at a biller digits, so the two written
# together name one payee unambiguously: what an SMS code or a signature is bound to.
_CODE = re.compile(r"[A-Z]{2,12}")
_NUMBER = re.compile(r"[0-9]{6,20}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_BILL_ID = re.compile(r"[0-9A-Za-z]{1,40}")
NAME_MAX = 100
# After an unknown outcome, ask the biller again on the delivery schedule notices use
# (delivery.BACKOFF), then every hour until it answers: an unknown outcome is resolved by
# asking, never guessed. A worker holds a payment for `delivery.LEASE` while it asks.
RETRY = delivery.BACKOFF
LEASE = delivery.LEASE
ROUND = delivery.ROUND
POLL_SECONDS = 0.5
ACTOR = "system:bills"
TOPIC = "bill.payment"
# What a biller may say when it refuses; anything else is told to the customer as a refusal.
REFUSALS = (
    "BILL_ACCOUNT_NOT_FOUND", "BILL_NOT_FOUND", "BILL_ALREADY_PAID", "BILL_AMOUNT_MISMATCH",
    "BILLER_REFUSED",
)  # fmt: skip


# -- the registry ------------------------------------------------------------------------------
def _biller(row: Any) -> Biller:
    return Biller(
        row.id, row.code, row.name_zh, row.name_en, row.category, row.adapter, row.active,
        row.ledger_account_id,
    )  # fmt: skip


def _name(value: object, what: str) -> str:
    name = checked_text(value, what, NAME_MAX)
    # It is the payee's name a certificate signs, where "=" would forge a field.
    if "=" in name:
        raise EbankError("INVALID_INPUT", reason=f"{what} is 1-{NAME_MAX} printable characters")
    return name


def register_biller(
    *, code: str, name_zh: str, name_en: str, category: str, adapter: str = "simulated",
    actor: str, channel: str = "console",
) -> Command[Biller]:  # fmt: skip
    """Start collecting for a biller: its row, and its settlement account on the ledger (what
    the bank owes it), opened in the same command."""

    def run(tx: Tx) -> Biller:
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise EbankError("INVALID_INPUT", reason="a biller code is 2-12 capital letters")
        zh, en = _name(name_zh, "a Chinese name"), _name(name_en, "an English name")
        if category not in CATEGORIES:
            raise EbankError("INVALID_INPUT", reason=f"a category is one of {CATEGORIES}")
        if adapter not in ADAPTERS:
            raise EbankError("INVALID_INPUT", reason=f"an adapter is one of {sorted(ADAPTERS)}")
        if tx.conn.execute(select(billers_table.c.id).where(billers_table.c.code == code)).first():
            raise EbankError("BILLER_EXISTS", code=code)
        # Refunds debit it: one may come after the bank has paid the biller what it owed.
        account = ledger.open_account(
            tx, code=LEDGER_PREFIX + code, name=f"代收 {zh}", currency="CNY", kind="internal",
            normal_side="C", overdraft_allowed=True,
        )  # fmt: skip
        biller = Biller(tx.new_id("billers"), code, zh, en, category, adapter, True, account.id)
        tx.conn.execute(
            billers_table.insert().values(
                id=biller.id, code=code, name_zh=zh, name_en=en, category=category,
                adapter=adapter, active=True, ledger_account_id=account.id, created_at=tx.now,
            )
        )  # fmt: skip
        audit.record(
            tx, actor=actor, action="biller.register", subject=f"biller:{code}", channel=channel,
            detail={"category": category, "adapter": adapter},
        )  # fmt: skip
        return biller

    return Command(run)


def billers(conn: Connection) -> list[Biller]:
    """The billers customers can pay, by category and code."""
    query = (
        select(billers_table)
        .where(billers_table.c.active)
        .order_by(billers_table.c.category, billers_table.c.code)
    )
    return [_biller(row) for row in conn.execute(query)]


def biller_of(conn: Connection, code: object) -> Biller:
    """An active biller by its code; BILLER_NOT_FOUND for any other."""
    if not isinstance(code, str):
        raise EbankError("INVALID_INPUT", reason="a biller is named by its code")
    row = conn.execute(select(billers_table).where(billers_table.c.code == code.strip())).first()
    if row is None or not row.active:
        raise EbankError("BILLER_NOT_FOUND")
    return _biller(row)


# -- checking a request ------------------------------------------------------------------------
def _number(biller: Biller, value: object) -> str:
    """The customer's number at the biller, in canonical form."""
    if not isinstance(value, str):
        raise EbankError("INVALID_INPUT", reason="a number at a biller is text")
    number = value.replace(" ", "")
    if biller.has_bills and not _NUMBER.fullmatch(number):
        raise EbankError("INVALID_INPUT", reason="a number at a biller is 6-20 digits")
    if not biller.has_bills and not _MOBILE.fullmatch(number):
        raise EbankError("INVALID_INPUT", reason="a mobile number is 11 digits starting with 1")
    return number


@dataclass(frozen=True, slots=True)
class _Resolved:
    request: BillPaymentRequest  # canonical
    biller: Biller
    payer: CustomerAccount

    @property
    def payee_account(self) -> str:
        """Who is paid, as a factor is bound to it: the biller's code and the number."""
        return self.biller.code + self.request.number


def _resolve(conn: Connection, r: BillPaymentRequest) -> _Resolved:
    """The request checked against the registry and the customer's accounts; the biller is
    asked nothing here."""
    if type(r.amount) is not int or not 0 < r.amount <= MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="an amount is a positive number of fen")
    biller = biller_of(conn, r.biller)
    number = _number(biller, r.number)
    bill_id = r.bill_id
    if biller.has_bills:
        if not isinstance(bill_id, str) or not _BILL_ID.fullmatch(bill_id):
            raise EbankError(
                "INVALID_INPUT", reason="a bill is paid by the bill_id its inquiry gave"
            )
    elif bill_id is not None:
        raise EbankError("INVALID_INPUT", reason="a phone top-up has no bill")
    elif r.amount not in biller.topup_amounts:
        offered = ", ".join(format_minor(a) for a in biller.topup_amounts)
        raise EbankError("TOPUP_AMOUNT_NOT_OFFERED", amounts=offered)
    customers.holder(conn, r.customer_id)
    payer = payments.paying_account(conn, r.customer_id, r.from_account)
    canonical = BillPaymentRequest(
        customer_id=r.customer_id, channel=r.channel, from_account=payer.number,
        biller=biller.code, number=number, amount=r.amount, bill_id=bill_id,
    )  # fmt: skip
    return _Resolved(canonical, biller, payer)


def _confirming(resolved: _Resolved) -> confirm.Confirming:
    r = resolved.request
    return confirm.Confirming(
        customer_id=r.customer_id, channel=r.channel, what="bill", from_account=r.from_account,
        payee_account=resolved.payee_account, payee_name=resolved.biller.name_zh,
        amount=r.amount,
    )  # fmt: skip


def _limits_payment(resolved: _Resolved, confirmation: Confirmation | None) -> limits.Payment:
    r = resolved.request
    return limits.Payment(
        customer_id=r.customer_id, channel=r.channel, kind="bill", from_account=r.from_account,
        amount=r.amount, method=None if confirmation is None else confirmation.method,
        large_confirmed=confirmation is not None and confirmation.large_confirmed,
    )  # fmt: skip


# -- inquiry and confirmation --------------------------------------------------------------------
def inquire(conn: Connection, clock: Clock, *, biller: str, number: str) -> Inquiry:
    """The bills of the customer's number at the biller, paid ones marked (none for a phone,
    topped up by one of `biller.topup_amounts`). Asks the biller: I/O, so never call it in a
    writer command."""
    found = biller_of(conn, biller)
    canonical = _number(found, number)
    bills = adapter_for(found, conn.engine, clock).inquire(canonical)
    return Inquiry(found, canonical, tuple(bills))


def quote(conn: Connection, request: BillPaymentRequest, *, now: datetime) -> Quote:
    """What confirming this payment will take (the factors the limits service would accept
    now, as for a transfer), or why it cannot be made. The biller is not asked: paying asks
    it again anyway."""
    resolved = _resolve(conn, request)
    found = limits.assess(conn, _limits_payment(resolved, None), now=now)
    if found.refusal is not None:
        raise found.refusal
    return Quote("bill", resolved.biller.name_zh, found.methods, found.large_warning, now)


def send_code(vault: Vault, request: BillPaymentRequest) -> Command[CodeIssued]:
    """Text the customer a code for exactly this payment: this account, biller, number and
    amount."""
    return Command(lambda tx: confirm.send_code(tx, vault, _confirming(_resolve(tx.conn, request))))


def start_signing(request: BillPaymentRequest) -> Command[certificates.SigningChallenge]:
    """The bytes the customer's U-key signs for exactly this payment."""
    return Command(lambda tx: confirm.start_signing(tx, _confirming(_resolve(tx.conn, request))))


# -- paying ------------------------------------------------------------------------------------
def _ask_biller(engine: Engine, clock: Clock, request: BillPaymentRequest) -> Bill | None:
    """The bill as the biller shows it now (None for a top-up, once the number is known to
    the biller); BILL_NOT_FOUND if the number has no such bill."""
    with engine.connect() as conn:
        found = inquire(conn, clock, biller=request.biller, number=request.number)
    if not found.biller.has_bills:
        return None
    for bill in found.bills:
        if bill.bill_id == request.bill_id:
            return bill
    raise EbankError("BILL_NOT_FOUND")


def _paid_here(conn: Connection, biller_id: int, bill_id: str) -> bool:
    """Whether a payment of ours for this bill is with the biller or done (not refunded)."""
    query = select(bill_payments.c.payment_id).where(
        bill_payments.c.biller_id == biller_id,
        bill_payments.c.bill_id == bill_id,
        bill_payments.c.status != "refunded",
    )
    return conn.execute(query).first() is not None


def pay(
    vault: Vault,
    clock: Clock,
    request: BillPaymentRequest,
    confirmation: Confirmation,
    *,
    idempotency_key: str,
) -> Command[Checked[int]]:
    """Pay the bill (or top up the phone) once per idempotency key: the biller is asked about
    the bill first, off the writer; then one command checks the factor, asks the limits
    service and moves the money. Its answer is the payment's id (`bill_payment_of`)."""
    pin = confirm.pin_check(request.customer_id, confirmation)
    asked: list[Bill | EbankError | None] = []

    def prepare(engine: Engine) -> None:
        if confirmation.method == "pin":
            pin.prepare(engine)
        try:
            asked[:] = [_ask_biller(engine, clock, request)]
        except EbankError as error:  # told only if the command runs: a repeat gets its answer
            asked[:] = [error]

    def run(tx: Tx) -> Checked[int]:
        resolved = _resolve(tx.conn, request)
        r, biller = resolved.request, resolved.biller
        # Not prepared (composed into another command): ask now, correct but slow.
        answer = asked[0] if asked else _ask_biller(tx.conn.engine, clock, request)
        if isinstance(answer, EbankError):
            raise answer
        if answer is not None:
            if answer.paid or _paid_here(tx.conn, biller.id, answer.bill_id):
                raise EbankError("BILL_ALREADY_PAID")
            if answer.amount != r.amount:
                raise EbankError("BILL_AMOUNT_MISMATCH", due=format_minor(answer.amount))
        verdict = confirm.check(tx, vault, _confirming(resolved), confirmation, pin)
        if not verdict.ok:
            return Checked(verdict)
        limits.authorise(tx, _limits_payment(resolved, confirmation))
        memo = CATEGORY_NAMES[biller.category] + ("" if answer is None else f" {answer.period}")
        payment_id = payments.record_payment(
            tx, vault,
            payments.Debit(
                customer_id=r.customer_id, channel=r.channel, kind="bill", payer=resolved.payer,
                payee_account=resolved.payee_account, payee_name=biller.name_zh,
                amount=r.amount, credit=biller.ledger_account_id, memo=memo,
                method=confirmation.method, receipt=False,
            ),
        )  # fmt: skip
        tx.conn.execute(
            bill_payments.insert().values(
                payment_id=payment_id, customer_id=r.customer_id, biller_id=biller.id,
                number_sealed=vault.encrypt(r.number, purpose=NUMBER_PURPOSE),
                number_masked=biller.mask(r.number),
                bill_id=None if answer is None else answer.bill_id,
                period=None if answer is None else answer.period, amount=r.amount,
                status="pending_biller", attempts=0, next_attempt_at=tx.now, created_at=tx.now,
            )
        )  # fmt: skip
        outbox.emit(tx, TOPIC, str(payment_id), {"status": "pending_biller", "biller": biller.code})
        return Checked(verdict, payment_id)

    key = fingerprint(
        op="bill", customer=request.customer_id, channel=request.channel,
        from_account=request.from_account, biller=request.biller, number=request.number,
        bill_id=request.bill_id, amount=request.amount, method=confirmation.method,
        large=confirmation.large_confirmed,
    )  # fmt: skip
    return Command(
        run,
        idempotency=Idempotency(
            f"customer:{request.customer_id}", idempotency_key, key, Checked.replayed
        ),
        prepare=prepare,
        prefetch=(notices.prefetch(request.customer_id),),
    )


# -- telling the biller ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Claim:
    payment_id: int
    attempt: int
    biller: Biller
    number_sealed: str
    bill_id: str | None
    amount: int
    reference: str


def _claim(tx: Tx, limit: int) -> list[_Claim]:
    """Take up to `limit` payments due for their biller, for this worker alone until LEASE."""
    t = bill_payments
    rows = tx.conn.execute(
        select(t)
        .where(t.c.status == "pending_biller", t.c.next_attempt_at <= tx.now)
        .order_by(t.c.next_attempt_at, t.c.payment_id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's writers take turns
    ).all()
    if not rows:
        return []
    ids = [row.payment_id for row in rows]
    tx.conn.execute(
        t.update()
        .where(t.c.payment_id.in_(ids))
        .values(attempts=t.c.attempts + 1, next_attempt_at=tx.now + LEASE)
    )
    found = tx.conn.execute(
        select(billers_table).where(billers_table.c.id.in_({r.biller_id for r in rows}))
    )
    by_id = {row.id: _biller(row) for row in found}
    return [
        _Claim(
            row.payment_id,
            row.attempts + 1,
            by_id[row.biller_id],
            row.number_sealed,
            row.bill_id,
            row.amount,
            reference("P", row.payment_id, as_utc(row.created_at)),
        )
        for row in rows
    ]


def _ask_to_pay(writer: Writer, vault: Vault, claim: _Claim) -> PayOutcome:
    """The biller's answer; no answer at all (an error, a timeout) is an unknown outcome."""
    try:
        adapter = adapter_for(claim.biller, writer.engine, writer.clock)
        number = vault.decrypt(claim.number_sealed, purpose=NUMBER_PURPOSE)
        return adapter.pay(claim.bill_id, number, claim.amount, claim.reference)
    except Exception as exc:
        log.warning("biller did not answer", extra={"payment": claim.payment_id,
                                                    "error": type(exc).__name__})  # fmt: skip
        return BillerUnknown(type(exc).__name__)


def _confirmed(tx: Tx, vault: Vault, row: Any, biller: Biller) -> int:
    """What a payment the biller confirmed gets: its receipt (the id is returned) and a
    notice to the customer that it is done."""
    paid = payments.payment_of(tx.conn, customer_id=row.customer_id, payment_id=row.payment_id)
    kind, name = customers.holder(tx.conn, row.customer_id)
    payee_account = biller.code + vault.decrypt(row.number_sealed, purpose=NUMBER_PURPOSE)
    purpose = CATEGORY_NAMES[biller.category] + (f" {row.period}" if row.period else "")
    notices.payment_result(
        tx, vault, customer_id=row.customer_id, amount=row.amount, payee_name=biller.name_zh,
        payee_account=payee_account,
    )  # fmt: skip
    return receipts.issue_receipt(
        tx, vault,
        ReceiptData(
            source=f"payment:{row.payment_id}", customer_id=row.customer_id, payer_name=name,
            payer_account=paid.from_account, payee_name=biller.name_zh,
            payee_account=payee_account, payee_bank=BANK_NAME, amount=row.amount,
            purpose=f"{purpose} 户号 {row.number_masked}", channel=paid.channel,
            reference=paid.reference, completed_at=tx.now,
            payer_enterprise=kind == "enterprise", payee_enterprise=True,
        ),
    ).id  # fmt: skip


def _settle(vault: Vault, claim: _Claim, outcome: PayOutcome) -> Command[None]:
    """Record the biller's answer to this worker's attempt, unless another worker has claimed
    the payment since (this one's lease ran out)."""

    def run(tx: Tx) -> None:
        t = bill_payments
        row = tx.conn.execute(
            select(t).where(t.c.payment_id == claim.payment_id).with_for_update()
        ).one()
        if row.status != "pending_biller" or row.attempts != claim.attempt:
            log.warning("biller's answer after the lease", extra={"payment": claim.payment_id})
            return
        change: dict[str, Any]
        if isinstance(outcome, BillerReceipt):
            kind, detail = "confirmed", outcome.confirmation[:40]
            change = {"status": "paid", "confirmation": detail,
                      "receipt_id": _confirmed(tx, vault, row, claim.biller)}  # fmt: skip
        elif isinstance(outcome, BillerRefusal):
            code = outcome.code if outcome.code in REFUSALS else "BILLER_REFUSED"
            kind, detail = "refused", code
            payments.return_payment(tx, vault, claim.payment_id, code=code)
            change = {"status": "refunded", "failure_code": code}
        else:
            kind, detail = "unknown", outcome.reason[:200]
            wait = RETRY[min(claim.attempt, len(RETRY)) - 1]
            change = {"next_attempt_at": tx.now + wait}
        tx.conn.execute(
            bill_attempts.insert().values(
                payment_id=claim.payment_id, attempt=claim.attempt, outcome=kind, detail=detail,
                at=tx.now,
            )
        )  # fmt: skip
        if kind != "unknown":
            change["settled_at"] = tx.now
            outbox.emit(tx, TOPIC, str(claim.payment_id), {"status": change["status"]})
            audit.record(
                tx, actor=ACTOR, action=f"bill.{change['status']}",
                subject=f"payment:{claim.payment_id}",
                detail={"biller": claim.biller.code, "attempt": claim.attempt, "answer": detail},
            )  # fmt: skip
        tx.conn.execute(t.update().where(t.c.payment_id == claim.payment_id).values(**change))

    return Command(run)


def deliver_bill_payments(writer: Writer, vault: Vault, *, limit: int = ROUND) -> int:
    """Tell billers of the payments due, up to `limit`, and record what each answered; how
    many were asked. Safe to run in several workers at once."""
    claims = writer.execute(Command(lambda tx: _claim(tx, limit)))
    settling = [writer.submit(_settle(vault, c, _ask_to_pay(writer, vault, c))) for c in claims]
    for claim, future in zip(claims, settling, strict=True):
        try:
            future.result()
        except EbankError as error:  # asked again once the lease ends
            log.error("bill payment not settled",
                      extra={"payment": claim.payment_id, "code": error.code})  # fmt: skip
    return len(claims)


def start_bill_delivery(writer: Writer, vault: Vault) -> Callable[[], None]:
    """Tell billers on a background thread (the worker's, or the demo app's); returns `stop`,
    which ends the loop after its current round."""

    def body(stop: threading.Event) -> None:
        delivery.run_loop(
            lambda limit: deliver_bill_payments(writer, vault, limit=limit), stop,
            poll_seconds=POLL_SECONDS, what="bill",
        )  # fmt: skip

    return delivery.start(body, name="ebank-bills")


# -- reading -----------------------------------------------------------------------------------
def _select() -> Any:
    return select(
        bill_payments, billers_table.c.code, billers_table.c.name_zh, billers_table.c.name_en,
        billers_table.c.category, receipts_table.c.issued_at.label("receipt_issued_at"),
    ).select_from(
        bill_payments.join(billers_table, billers_table.c.id == bill_payments.c.biller_id)
        .outerjoin(receipts_table, receipts_table.c.id == bill_payments.c.receipt_id)
    )  # fmt: skip


def _view(row: Any) -> BillPaymentView:
    created = as_utc(row.created_at)
    receipt = None
    if row.receipt_id is not None:
        receipt = receipts.receipt_number(row.receipt_id, row.receipt_issued_at)
    return BillPaymentView(
        row.payment_id, reference("P", row.payment_id, created), row.code, row.name_zh,
        row.name_en, row.category, row.number_masked, row.bill_id, row.period, row.amount,
        row.status, row.confirmation, row.failure_code, receipt, created,
        None if row.settled_at is None else as_utc(row.settled_at),
    )  # fmt: skip


def bill_payment_of(conn: Connection, *, customer_id: int, payment_id: int) -> BillPaymentView:
    """One of the customer's bill payments; someone else's is PAYMENT_NOT_FOUND."""
    row = conn.execute(_select().where(bill_payments.c.payment_id == payment_id)).first()
    if row is None or row.customer_id != customer_id:
        raise EbankError("PAYMENT_NOT_FOUND")
    return _view(row)


def bill_payments_of(
    conn: Connection, customer_id: int, *, before_id: int | None = None, limit: int = 50
) -> list[BillPaymentView]:
    """The customer's bill payments, newest first; page with the last id seen."""
    query = _select().where(bill_payments.c.customer_id == customer_id)
    if before_id is not None:
        query = query.where(bill_payments.c.payment_id < before_id)
    rows = conn.execute(query.order_by(bill_payments.c.payment_id.desc()).limit(limit))
    return [_view(row) for row in rows]
