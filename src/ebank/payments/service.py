"""Transfers: to the customer's own accounts, to another customer of this bank, and to another
bank through clearing; real-time, or deferred (normal: 2 hours, next day, ATM-style 24 hours)
and revocable until sent.

A transfer is asked for in two steps. `quote` says what confirming it will take (which factor
the limits service requires, whether the large-transfer warning applies) and checks the payee;
`send_code` or `start_signing` prepares the factor; `transfer` then checks the factor, asks the
limits service and moves the money, all in one writer command: a refusal anywhere undoes it
all, so an SMS code is spent only by the payment it confirmed. A failed factor check is the one
answer committed without the payment, because it counts towards the lockout.

What a deferred transfer takes is held at once (a ledger hold) and captured when it is sent
(`execute_due`, run by the worker); revoking releases the hold. An inter-bank transfer is
debited to the clearing account (money in flight); the clearing service then settles it or
returns it (`settle_outgoing`, `return_outgoing`), and marks it unknown meanwhile if the
clearing house's answer was lost (`mark_unknown`).
"""

import re
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount, Product
from ebank.accounts.tables import customer_accounts
from ebank.bills.tables import bill_payments
from ebank.cards.tables import cards
from ebank.core import audit, outbox
from ebank.core.clock import BUSINESS_TZ, as_utc, business_date
from ebank.core.crypto import Vault, mask_card
from ebank.core.errors import EbankError, checked_text
from ebank.core.money import MAX_MINOR
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Idempotency, Tx, Writer, fingerprint
from ebank.customers import service as customers
from ebank.customers.identity import same_name
from ebank.ledger import service as ledger
from ebank.ledger.models import reference
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.limits import service as limits
from ebank.notify import notices
from ebank.payments import confirm
from ebank.payments.models import Confirmation, PaymentView, Quote, TransferRequest
from ebank.payments.tables import SPEEDS, payment_events, payments
from ebank.receipts import service as receipts
from ebank.receipts.models import Receipt, ReceiptData
from ebank.receipts.pdf import BANK_NAME
from ebank.risk import cases as risk_cases
from ebank.risk import service as risk
from ebank.risk.models import BANK_RUN, STRONG_FACTORS, Decision, Origin, payee_key
from ebank.risk.models import Context as RiskContext
from ebank.security import certificates
from ebank.security.service import Checked, CodeIssued

PAYEE_PURPOSE = "payments.payee_account"
NORMAL_DELAY = timedelta(hours=2)  # 普通到账 (PBOC 2016 No. 261)
ATM_DELAY = timedelta(hours=24)  # ATM-style delayed transfers
NEXT_DAY_AT = time(9, 0)  # 次日到账: sent at 09:00 the next business day
# A deferred transfer's hold outlives its due time, so that a worker that was down for a
# while still finds the money set aside (it fails the transfer if the hold ran out).
HOLD_GRACE = timedelta(days=3)
CLEARING = "GL-CLEARING-CNY"
CENTRAL_BANK = "GL-CENTRAL-BANK-CNY"
MEMO_MAX = 60
_MEMOS = {
    "own": "转账 transfer", "intra": "转账 transfer", "interbank": "跨行转账 transfer",
    "bill": "缴费 bill payment", "payroll": "代发工资 payroll", "debit": "代扣 direct debit",
}  # fmt: skip
SWEEP = 500
REVOCABLE = ("scheduled",)
TRANSFER_KINDS = ("own", "intra", "interbank")
REVIEW_FOR = timedelta(days=30)  # how long a payment held for review keeps its money held
CASE_KIND = "payment"  # risk cases about payments held for review
EXCEPTIONS = ("failed", "unknown", "returned")  # what the staff's queue shows
STUCK_BILL_ATTEMPTS = 3  # a bill its biller has not confirmed after as many tries joins it
_BANK_CODE = re.compile(r"[0-9]{12}")
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,34}")
# What another bank's rejection means to the customer (ISO 20022 reason -> our code).
RETURN_REASONS = {
    "AC01": "PAYEE_NOT_FOUND",
    "AC04": "PAYEE_ACCOUNT_UNAVAILABLE",
    "AC06": "PAYEE_ACCOUNT_UNAVAILABLE",
    "BE01": "PAYEE_NAME_MISMATCH",
}


# -- checking and resolving a request ------------------------------------------------------------
def canonical(r: TransferRequest) -> TransferRequest:
    """The request in canonical form, or INVALID_INPUT; nothing read yet."""
    if type(r.amount) is not int or not 0 < r.amount <= MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="a transfer amount is a positive number of fen")
    if r.currency != "CNY":
        raise EbankError("UNKNOWN_CURRENCY", currency=str(r.currency)[:8])
    if r.speed not in SPEEDS:
        raise EbankError("INVALID_INPUT", reason=f"speed is one of {', '.join(SPEEDS)}")
    payee_account = checked_text(r.payee_account, "a payee account", 34).replace(" ", "")
    if not _ACCOUNT.fullmatch(payee_account):
        raise EbankError("INVALID_INPUT", reason="a payee account is 1-34 letters and digits")
    name = checked_text(r.payee_name, "a payee name", certificates.MAX_PAYEE_NAME)
    if "=" in name:  # it would forge a field of the message a certificate signs
        raise EbankError("INVALID_INPUT", reason="a payee name has no '='")
    bank = r.payee_bank
    if bank is not None:
        bank = checked_text(bank, "a bank code", 12)
        if not _BANK_CODE.fullmatch(bank):
            raise EbankError("INVALID_INPUT", reason="a bank code is 12 digits")
        if bank == get_settings().bank_code:
            bank = None
    return TransferRequest(
        customer_id=r.customer_id, channel=r.channel,
        from_account=checked_text(r.from_account, "an account number", 34),
        payee_account=payee_account, payee_name=name, amount=r.amount, payee_bank=bank,
        currency=r.currency, speed=r.speed,
        memo=checked_text(r.memo, "a memo", MEMO_MAX, empty=True),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Resolved:
    request: TransferRequest
    kind: str
    payer: CustomerAccount
    payee: CustomerAccount | None  # an account at this bank


def paying_account(conn: Connection, customer_id: int, number: str) -> CustomerAccount:
    """The customer's own demand account that may pay now (every kind of payment asks):
    someone else's is ACCOUNT_NOT_FOUND, never 403; a card reported lost stops its account."""
    try:
        account = accounts.get_account(conn, number=number)
    except EbankError:
        account = None
    if account is None or account.customer_id != customer_id:
        raise EbankError("ACCOUNT_NOT_FOUND")
    if account.product != Product.DEMAND:
        raise EbankError("NOT_A_PAYMENT_ACCOUNT")
    lost = conn.execute(
        select(cards.c.id).where(
            cards.c.ledger_account_id == account.ledger_account_id,
            cards.c.status == "reported_lost",
        )
    ).first()
    if lost is not None:
        raise EbankError("CARD_REPORTED_LOST")
    return account


def resolve(conn: Connection, request: TransferRequest) -> Resolved:
    """Who pays whom: the payer's account must be theirs, a payee at this bank must exist and
    bear the name given (the name check is the customer's protection against a typo)."""
    r = canonical(request)
    customers.holder(conn, r.customer_id)
    payer = paying_account(conn, r.customer_id, r.from_account)
    if r.payee_bank is not None:
        if not get_settings().clearing_url:
            raise EbankError("INTERBANK_UNAVAILABLE")
        return Resolved(r, "interbank", payer, None)
    try:
        payee = accounts.get_account(conn, number=r.payee_account)
    except EbankError:
        raise EbankError("PAYEE_NOT_FOUND") from None
    if payee.id == payer.id:
        raise EbankError("INVALID_INPUT", reason="the payee account is the paying account")
    if payee.customer_id == r.customer_id:
        if r.speed != "realtime":
            raise EbankError("INVALID_INPUT", reason="a transfer between own accounts is real-time")
        return Resolved(r, "own", payer, payee)
    _, holder_name = customers.holder(conn, payee.customer_id)
    if not same_name(holder_name, r.payee_name):
        raise EbankError("PAYEE_NAME_MISMATCH")
    return Resolved(r, "intra", payer, payee)


def limits_payment(resolved: Resolved, confirmation: Confirmation | None) -> limits.Payment:
    r = resolved.request
    return limits.Payment(
        customer_id=r.customer_id, channel=r.channel, kind="transfer",
        from_account=resolved.payer.number, amount=r.amount,
        payee_account=None if resolved.payee is None else resolved.payee.number,
        method=None if confirmation is None else confirmation.method,
        large_confirmed=confirmation is not None and confirmation.large_confirmed,
    )  # fmt: skip


def _due(speed: str, now: datetime) -> datetime:
    if speed == "normal":
        return now + NORMAL_DELAY
    if speed == "delayed":
        return now + ATM_DELAY
    if speed == "next_day":
        local_day = business_date(now) + timedelta(days=1)
        return as_utc(datetime.combine(local_day, NEXT_DAY_AT, tzinfo=BUSINESS_TZ))
    return now


def quote(conn: Connection, request: TransferRequest, *, now: datetime) -> Quote:
    """What confirming this transfer will take, or why it cannot be made."""
    resolved = resolve(conn, request)
    found = limits.assess(conn, limits_payment(resolved, None), now=now)
    if found.refusal is not None:
        raise found.refusal
    return Quote(
        resolved.kind, resolved.request.payee_name, found.methods, found.large_warning,
        _due(resolved.request.speed, now),
    )  # fmt: skip


def confirming(resolved: Resolved) -> confirm.Confirming:
    r = resolved.request
    return confirm.Confirming(
        customer_id=r.customer_id, channel=r.channel, what="transfer",
        from_account=r.from_account, payee_account=r.payee_account, payee_name=r.payee_name,
        amount=r.amount, currency=r.currency, payee_bank=r.payee_bank,
    )  # fmt: skip


def send_code(vault: Vault, request: TransferRequest) -> Command[CodeIssued]:
    """Text the customer a code for exactly this transfer, saying what it is for."""
    return Command(lambda tx: confirm.send_code(tx, vault, confirming(resolve(tx.conn, request))))


def start_signing(request: TransferRequest) -> Command[certificates.SigningChallenge]:
    """The bytes the customer's U-key signs for exactly this transfer."""
    return Command(lambda tx: confirm.start_signing(tx, confirming(resolve(tx.conn, request))))


# -- making a transfer ---------------------------------------------------------------------------
def payee_refused(error: EbankError, payee: CustomerAccount | None) -> EbankError:
    """A ledger refusal about the payee's account says only that it cannot take the money:
    its status and tier are the payee's business."""
    if payee is not None and error.details.get("account") == payee.number:
        return EbankError("PAYEE_ACCOUNT_UNAVAILABLE")
    return error


def _event(
    tx: Tx, payment_id: int, status: str, actor: str, *, failure_code: str | None = None,
    entry_id: int | None = None,
) -> None:  # fmt: skip
    """Append the event of a payment entering `status`, and announce it."""
    tx.conn.execute(
        payment_events.insert().values(
            payment_id=payment_id, status=status, failure_code=failure_code, entry_id=entry_id,
            actor=actor, at=tx.now,
        )
    )  # fmt: skip
    outbox.emit(tx, "payment.status", str(payment_id), {"status": status, "failure": failure_code})


def _record(tx: Tx, payment_id: int, status: str, actor: str, **change: Any) -> None:
    """Move a payment to `status`: the cached row and an appended event, announced."""
    tx.conn.execute(
        payments.update().where(payments.c.id == payment_id).values(status=status, **change)
    )
    _event(
        tx, payment_id, status, actor, failure_code=change.get("failure_code"),
        entry_id=change.get("entry_id"),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Debit:
    """A payment out of a customer's account, already checked and authorised by its service
    (transfer, bill, payroll row, direct debit): what `record_payment` books."""

    customer_id: int
    channel: str
    kind: str  # one of tables.KINDS
    payer: CustomerAccount
    payee_account: str  # as the customer named it (sealed at rest)
    payee_name: str
    amount: int
    credit: int  # the ledger account credited: the payee's, a biller's, or the clearing account
    payee: CustomerAccount | None = None  # the payee's account at this bank, if any
    payee_bank: str | None = None
    speed: str = "realtime"
    memo: str = ""
    method: str | None = None
    currency: str = "CNY"
    # False when completion is not yet final and the caller issues the receipt itself later
    # (a bill: when the biller confirms it).
    receipt: bool = True
    origin: Origin = BANK_RUN
    # Whether the customer is confirming it now (not a standing order's run, not a creditor's
    # debit): only then can risk control ask for a stronger factor.
    present: bool = True


def payee_risk_key(conn: Connection, vault: Vault, account: str, bank: str | None) -> str:
    """How risk control names a payee's account (`risk.models.payee_key`): one here by its
    ledger id; another bank's, or a number we do not have, by a keyed hash."""
    if bank is None:
        try:
            return payee_key(
                ledger_account_id=accounts.get_account(conn, number=account).ledger_account_id
            )
        except EbankError:
            bank = get_settings().bank_code
    return payee_key(vault, bank=bank, account_number=account)


def _screen(tx: Tx, vault: Vault, debit: Debit) -> tuple[Decision, RiskContext]:
    """Ask risk control about a payment about to be booked. A block refuses it
    (RISK_REJECTED); a step-up refuses one confirmed with less than a token or a certificate
    (RISK_STEP_UP) when the customer is there to confirm again, and lets a run or a debit
    made without them go; the decision is on record either way (`risk.service`). Delay and
    review are for `record_payment` to honour."""
    if debit.payee_bank is None:
        payee = payee_key(ledger_account_id=debit.credit)
    else:
        payee = payee_key(vault, bank=debit.payee_bank, account_number=debit.payee_account)
    paid_before = tx.conn.execute(
        select(payments.c.id).where(
            payments.c.customer_id == debit.customer_id,
            payments.c.payee_account_hash
            == vault.lookup_hash(debit.payee_account, purpose=PAYEE_PURPOSE),
            payments.c.status.in_(("completed", "sending")),
        ).limit(1)
    ).first()  # fmt: skip
    seen = RiskContext(
        event="payment", customer_id=debit.customer_id, channel=debit.channel,
        device=debit.origin.device, ip=debit.origin.ip, amount=debit.amount,
        account_id=debit.payer.ledger_account_id, payee=payee,
        payee_account_id=debit.credit if debit.payee_bank is None else None,
        payee_is_new=debit.kind != "own" and paid_before is None, factor=debit.method or "",
    )  # fmt: skip
    decision = risk.evaluate(tx, seen)
    if decision.outcome == "block":
        raise EbankError("RISK_REJECTED")
    if decision.outcome == "step_up" and debit.present and debit.method not in STRONG_FACTORS:
        raise EbankError("RISK_STEP_UP")
    return decision, seen


def record_payment(tx: Tx, vault: Vault, debit: Debit) -> int:
    """Book a payment: its row, the money posted (or, deferred, held until due), its first
    event, announced and audited. The caller has checked the factor and asked the limits; a
    ledger refusal about the payee's account says only that it cannot take the money.

    Risk control is asked first (`_screen`): a transfer it delays is sent as a 24-hour
    delayed one; one it holds for review waits, its money held, in status `review` until a
    case decides it (`risk.cases`). Other payments it would delay go ahead, and one it would
    hold is refused (RISK_REJECTED): only a transfer can wait."""
    decision, seen = _screen(tx, vault, debit)
    transfer = debit.kind in TRANSFER_KINDS
    review = decision.outcome == "review"
    if review and not transfer:
        raise EbankError("RISK_REJECTED")
    speed = debit.speed
    if decision.outcome == "delay" and transfer and speed == "realtime":
        speed = "delayed"
    payment_id = tx.new_id("payments")
    due_at = _due(speed, tx.now)
    payer = debit.payer.ledger_account_id
    hold_id = entry_id = None
    if due_at > tx.now or review:
        until = max(due_at, tx.now + REVIEW_FOR) if review else due_at
        hold_id = ledger.place_hold(
            tx, account_id=payer, amount=debit.amount, expires_at=until + HOLD_GRACE,
            memo=f"待发 {reference('P', payment_id, tx.now)}",
        ).id  # fmt: skip
        status = "review" if review else "scheduled"
    else:
        try:
            entry_id = ledger.transfer(
                tx, debit=payer, credit=debit.credit, amount=debit.amount,
                memo=debit.memo or _MEMOS[debit.kind],
            ).id  # fmt: skip
        except EbankError as error:
            raise payee_refused(error, debit.payee) from None
        status = "sending" if debit.credit == ledger.account_id_of(tx, CLEARING) else "completed"
    row = dict(
        id=payment_id, customer_id=debit.customer_id, channel=debit.channel,
        kind=debit.kind, from_account_id=debit.payer.id,
        payee_account_sealed=vault.encrypt(debit.payee_account, purpose=PAYEE_PURPOSE),
        payee_account_hash=vault.lookup_hash(debit.payee_account, purpose=PAYEE_PURPOSE),
        payee_account_masked=mask_card(debit.payee_account), payee_name=debit.payee_name,
        payee_bank=debit.payee_bank,
        payee_account_id=None if debit.payee is None else debit.payee.id,
        amount=debit.amount, currency=debit.currency, speed=speed, memo=debit.memo,
        method=debit.method, status=status, due_at=due_at, hold_id=hold_id,
        entry_id=entry_id, created_at=tx.now,
    )  # fmt: skip
    tx.conn.execute(payments.insert().values(row))
    actor = f"customer:{debit.customer_id}"
    _event(tx, payment_id, status, actor, entry_id=entry_id)
    if entry_id is not None:
        _tell_moved(tx, vault, debit.payer, debit.payee, debit.amount, debit.memo)
    if status == "completed" and debit.receipt:
        _issue_receipt(tx, vault, row, debit.payer, debit.payee)
    audit.record(
        tx, actor=actor, action=f"payment.{debit.kind}", subject=f"payment:{payment_id}",
        channel=debit.channel,
        detail={"amount": debit.amount, "speed": speed, "method": debit.method,
                "status": status, "risk": decision.id},
    )  # fmt: skip
    if review:  # not counted: a case decides whether it happens
        risk_cases.open_case(
            tx, decision, kind=CASE_KIND, subject_id=payment_id, customer_id=debit.customer_id
        )
    else:
        risk.observe(tx, seen)
    return payment_id


def pay(
    tx: Tx, vault: Vault, resolved: Resolved, confirmation: Confirmation,
    origin: Origin = BANK_RUN, *, present: bool = True,
) -> int:  # fmt: skip
    """Ask the limits and book a resolved transfer whose factor was checked now (`present`)
    or when a standing order was set up; its payment id."""
    r, payee = resolved.request, resolved.payee
    limits.authorise(tx, limits_payment(resolved, confirmation))
    credit = ledger.account_id_of(tx, CLEARING) if payee is None else payee.ledger_account_id
    return record_payment(
        tx, vault,
        Debit(
            customer_id=r.customer_id, channel=r.channel, kind=resolved.kind,
            payer=resolved.payer, payee_account=r.payee_account, payee_name=r.payee_name,
            amount=r.amount, credit=credit, payee=payee, payee_bank=r.payee_bank,
            speed=r.speed, memo=r.memo, method=confirmation.method, currency=r.currency,
            origin=origin, present=present,
        ),
    )  # fmt: skip


def transfer(
    vault: Vault,
    request: TransferRequest,
    confirmation: Confirmation,
    *,
    idempotency_key: str,
    origin: Origin = BANK_RUN,
) -> Command[Checked[int]]:
    """Make the transfer once per idempotency key: check the factor, ask the limits service
    and risk control, move or hold the money. Its answer is the payment's id (`payment_of`
    shows it)."""
    pin = confirm.pin_check(request.customer_id, confirmation)

    def run(tx: Tx) -> Checked[int]:
        resolved = resolve(tx.conn, request)
        verdict = confirm.check(tx, vault, confirming(resolved), confirmation, pin)
        if not verdict.ok:
            return Checked(verdict)
        return Checked(verdict, pay(tx, vault, resolved, confirmation, origin))

    key = fingerprint(
        op="transfer", customer=request.customer_id, channel=request.channel,
        from_account=request.from_account, payee_account=request.payee_account,
        payee_name=request.payee_name, payee_bank=request.payee_bank, amount=request.amount,
        currency=request.currency, speed=request.speed, memo=request.memo,
        method=confirmation.method, large=confirmation.large_confirmed,
    )  # fmt: skip
    return Command(
        run,
        idempotency=Idempotency(
            f"customer:{request.customer_id}", idempotency_key, key, Checked.replayed
        ),
        prepare=pin.prepare if confirmation.method == "pin" else None,
        prefetch=(notices.prefetch(request.customer_id),),
    )


def _issue_receipt(
    tx: Tx, vault: Vault, row: Any, payer: CustomerAccount, payee: CustomerAccount | None
) -> None:
    """The payment's electronic receipt (电子回单), as the payment (`row`) stands at completion,
    from the payer's account to the payee's here (None: another bank or a biller)."""
    payer_kind, payer_name = customers.holder(tx.conn, row["customer_id"])
    payee_enterprise = (
        payee is not None and customers.holder(tx.conn, payee.customer_id)[0] == "enterprise"
    )
    receipts.issue_receipt(
        tx, vault,
        ReceiptData(
            source=f"payment:{row['id']}", customer_id=row["customer_id"],
            payer_name=payer_name, payer_account=payer.number, payee_name=row["payee_name"],
            payee_account=vault.decrypt(row["payee_account_sealed"], purpose=PAYEE_PURPOSE),
            payee_bank=row["payee_bank"] or BANK_NAME, amount=row["amount"],
            purpose=row["memo"] or _MEMOS[row["kind"]], channel=row["channel"],
            reference=reference("P", row["id"], as_utc(row["created_at"])),
            completed_at=tx.now, currency=row["currency"],
            payer_enterprise=payer_kind == "enterprise", payee_enterprise=payee_enterprise,
        ),
    )  # fmt: skip


def _tell_result(tx: Tx, vault: Vault, row: Any, failure: EbankError | None) -> None:
    notices.payment_result(
        tx, vault, customer_id=row["customer_id"], amount=row["amount"],
        payee_name=row["payee_name"],
        payee_account=vault.decrypt(row["payee_account_sealed"], purpose=PAYEE_PURPOSE),
        failure=failure,
    )  # fmt: skip


def receipt_of(conn: Connection, vault: Vault, *, customer_id: int, payment_id: int) -> Receipt:
    """A completed payment's receipt, for its payer only."""
    return receipts.receipt_for(conn, vault, f"payment:{payment_id}", customer_id)


def _tell_movement(
    tx: Tx, vault: Vault, customer_id: int, account: CustomerAccount, amount: int,
    direction: str, memo: str,
) -> None:  # fmt: skip
    """The account movement SMS (动账通知), with the balance the entry left."""
    notices.account_movement(
        tx, vault, customer_id=customer_id, account_number=account.number, amount=amount,
        direction=direction, balance=ledger.balance_in(tx, account.ledger_account_id), memo=memo,
        at=tx.now,
    )  # fmt: skip


def _tell_moved(tx: Tx, vault: Vault, payer: CustomerAccount, payee: CustomerAccount | None,
                amount: int, memo: str) -> None:  # fmt: skip
    """Both ends of money that moved between accounts here (a payee elsewhere is its bank's)."""
    _tell_movement(tx, vault, payer.customer_id, payer, amount, "out", memo)
    if payee is not None:
        _tell_movement(tx, vault, payee.customer_id, payee, amount, "in", memo)


# -- after it was made ---------------------------------------------------------------------------
def _locked(tx: Tx, payment_id: int) -> Any:
    row = (
        tx.conn.execute(select(payments).where(payments.c.id == payment_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        raise EbankError("PAYMENT_NOT_FOUND")
    return row


def revoke(*, customer_id: int, payment_id: int, channel: str) -> Command[int]:
    """Call back a deferred transfer that has not been sent: its hold is released. Revoking
    one already revoked changes nothing; one already sent cannot be called back."""

    def run(tx: Tx) -> int:
        if type(payment_id) is not int:
            raise EbankError("INVALID_INPUT", reason="a payment id is an integer")
        row = _locked(tx, payment_id)
        if row["customer_id"] != customer_id:
            raise EbankError("PAYMENT_NOT_FOUND")
        if row["status"] == "revoked":
            return payment_id
        if row["status"] not in REVOCABLE:
            raise EbankError("PAYMENT_NOT_REVOCABLE", status=row["status"])
        ledger.release_hold(tx, hold_id=row["hold_id"])
        actor = f"customer:{customer_id}"
        _record(tx, payment_id, "revoked", actor)
        audit.record(
            tx, actor=actor, action="payment.revoke", subject=f"payment:{payment_id}",
            channel=channel,
        )  # fmt: skip
        return payment_id

    return Command(run)


def _release_reviewed(tx: Tx, payment_id: int, actor: str) -> None:
    """Risk control let a held transfer go: it is due now, and the next sweep
    (`execute_due`) sends it from its hold."""
    row = _locked(tx, payment_id)
    if row["status"] == "review":
        _record(tx, payment_id, "scheduled", actor, due_at=tx.now)


def _reject_reviewed(tx: Tx, payment_id: int, actor: str) -> None:
    """Risk control stopped a held transfer: its money is available again. The case tells
    the customer."""
    row = _locked(tx, payment_id)
    if row["status"] == "review":
        _release(tx, row["hold_id"])
        _record(tx, payment_id, "failed", actor, failure_code="RISK_REJECTED")


def _release(tx: Tx, hold_id: int) -> None:
    """Give a deferred payment's held money back, unless its hold ran out on its own."""
    try:
        ledger.release_hold(tx, hold_id=hold_id)
    except EbankError as error:
        if error.code != "HOLD_NOT_PENDING":
            raise


risk_cases.register(CASE_KIND, release=_release_reviewed, reject=_reject_reviewed)


def _send_scheduled(vault: Vault, payment_id: int) -> Command[bool]:
    """Capture a due transfer's hold to its payee; False when it is no longer due."""

    def run(tx: Tx) -> bool:
        row = _locked(tx, payment_id)
        if row["status"] != "scheduled" or as_utc(row["due_at"]) > tx.now:
            return False
        payee = None
        if row["payee_account_id"] is not None:
            payee = accounts.account_by_id(tx.conn, row["payee_account_id"])
            credit = payee.ledger_account_id
        else:
            credit = ledger.account_id_of(tx, CLEARING)
        try:
            entry = ledger.capture_hold(
                tx, hold_id=row["hold_id"], to=[(credit, row["amount"])], final=True,
                memo=row["memo"] or _MEMOS[row["kind"]],
            )  # fmt: skip
        except EbankError as error:
            raise payee_refused(error, payee) from None
        status = "sending" if payee is None else "completed"
        _record(tx, payment_id, status, "system", entry_id=entry.id)
        payer = accounts.account_by_id(tx.conn, row["from_account_id"])
        _tell_moved(tx, vault, payer, payee, row["amount"], row["memo"])
        if status == "completed":
            _issue_receipt(tx, vault, row, payer, payee)
        return True

    return Command(run)


def _fail_scheduled(vault: Vault, payment_id: int, code: str) -> Command[None]:
    """A due transfer that could not be sent: its hold goes back, the customer is told why."""

    def run(tx: Tx) -> None:
        row = _locked(tx, payment_id)
        if row["status"] != "scheduled":
            return
        _release(tx, row["hold_id"])
        _record(tx, payment_id, "failed", "system", failure_code=code)
        _tell_result(tx, vault, row, EbankError(code))

    return Command(run)


def execute_due(writer: Writer, vault: Vault, *, limit: int = SWEEP) -> int:
    """Send the deferred transfers whose time has come; how many went. Each is its own command,
    so one that fails (the payee's account closed meanwhile) is failed alone."""
    now = writer.clock.now()
    with writer.engine.connect() as conn:
        due = conn.execute(
            select(payments.c.id)
            .where(payments.c.status == "scheduled", payments.c.due_at <= now)
            .order_by(payments.c.due_at, payments.c.id)
            .limit(limit)
        ).scalars().all()  # fmt: skip
    futures = [(pid, writer.submit(_send_scheduled(vault, pid))) for pid in due]
    sent = 0
    for pid, future in futures:
        try:
            sent += future.result()
        except EbankError as error:
            writer.execute(_fail_scheduled(vault, pid, error.code))
    return sent


# -- the clearing service's side of an inter-bank transfer --------------------------------------
def settle_outgoing(tx: Tx, vault: Vault, payment_id: int) -> None:
    """The other bank took it: the house settled it out of our reserve account at the central
    bank, so what the clearing account owed is paid. Again changes nothing."""
    row = _locked(tx, payment_id)
    if row["status"] == "completed":
        return
    if row["kind"] != "interbank" or row["status"] not in ("sending", "unknown"):
        raise EbankError("INVALID_STATUS_CHANGE", from_status=row["status"], to_status="completed")
    entry = ledger.transfer(
        tx, debit=ledger.account_id_of(tx, CLEARING), credit=ledger.account_id_of(tx, CENTRAL_BANK),
        amount=row["amount"], memo=f"清算 {reference('P', payment_id, row['created_at'])}",
        kind="clearing",
    )  # fmt: skip
    _record(tx, payment_id, "completed", "clearing", entry_id=entry.id)
    payer = accounts.account_by_id(tx.conn, row["from_account_id"])
    _issue_receipt(tx, vault, row, payer, None)


def return_payment(
    tx: Tx, vault: Vault, payment_id: int, *, code: str, reason: str | None = None
) -> None:
    """Give a payment's money back to the payer, with the error code that says why (a biller
    or another bank refused it): the entry that paid is reversed, or, for an inter-bank
    transfer already settled, the money comes back from the reserve. Again changes nothing."""
    row = _locked(tx, payment_id)
    if row["status"] == "returned":
        return
    returnable = (
        ("sending", "unknown", "completed") if row["kind"] == "interbank" else ("completed",)
    )
    if row["status"] not in returnable:
        raise EbankError("INVALID_STATUS_CHANGE", from_status=row["status"], to_status="returned")
    memo = f"退回 {reference('P', payment_id, row['created_at'])}"
    if row["kind"] == "interbank" and row["status"] == "completed":
        payer = accounts.account_by_id(tx.conn, row["from_account_id"])
        entry = ledger.transfer(
            tx, debit=ledger.account_id_of(tx, CENTRAL_BANK), credit=payer.ledger_account_id,
            amount=row["amount"], memo=memo, kind="return",
        )  # fmt: skip
    else:
        entry = ledger.reverse(tx, entry_id=row["entry_id"], memo=memo)
    _record(tx, payment_id, "returned", "system", failure_code=code, entry_id=entry.id)
    payer = accounts.account_by_id(tx.conn, row["from_account_id"])
    _tell_movement(tx, vault, row["customer_id"], payer, row["amount"], "in", memo)
    if reason is None:
        _tell_result(tx, vault, row, EbankError(code))
    else:  # another bank's ISO reason: the customer is told it came back, and why
        notices.payment_returned(
            tx, vault, customer_id=row["customer_id"], amount=row["amount"],
            payee_name=row["payee_name"],
            payee_account=vault.decrypt(row["payee_account_sealed"], purpose=PAYEE_PURPOSE),
            sent_at=as_utc(row["created_at"]), reason=reason, account_number=payer.number,
        )  # fmt: skip


def return_outgoing(tx: Tx, vault: Vault, payment_id: int, *, reason: str) -> None:
    """Another bank refused or returned an inter-bank transfer (ISO 20022 reason code)."""
    code = RETURN_REASONS.get(reason, "PAYEE_BANK_REJECTED")
    return_payment(tx, vault, payment_id, code=code, reason=reason)


def mark_unknown(tx: Tx, payment_id: int) -> None:
    """The clearing house's answer was lost: staff see it in the exceptions queue until a
    status query settles or returns it. Again changes nothing."""
    row = _locked(tx, payment_id)
    if row["status"] == "unknown":
        return
    if row["status"] != "sending":
        raise EbankError("INVALID_STATUS_CHANGE", from_status=row["status"], to_status="unknown")
    _record(tx, payment_id, "unknown", "clearing")


# -- reading -----------------------------------------------------------------------------------
def _select() -> Any:
    return select(payments, ledger_accounts.c.code.label("from_number")).select_from(
        payments.join(customer_accounts, customer_accounts.c.id == payments.c.from_account_id)
        .join(ledger_accounts, ledger_accounts.c.id == customer_accounts.c.ledger_account_id)
    )  # fmt: skip


def _view(row: Any) -> PaymentView:
    created = as_utc(row["created_at"])
    return PaymentView(
        row["id"], reference("P", row["id"], created), row["kind"], row["status"],
        row["channel"], row["from_number"], row["payee_account_masked"], row["payee_name"],
        row["payee_bank"], row["amount"], row["currency"], row["speed"], row["memo"],
        row["method"], as_utc(row["due_at"]), created, row["failure_code"],
        row["status"] in REVOCABLE,
    )  # fmt: skip


def payment_of(conn: Connection, *, customer_id: int, payment_id: int) -> PaymentView:
    """One of the customer's payments; someone else's is PAYMENT_NOT_FOUND."""
    row = conn.execute(_select().where(payments.c.id == payment_id)).mappings().first()
    if row is None or row["customer_id"] != customer_id:
        raise EbankError("PAYMENT_NOT_FOUND")
    return _view(row)


def payments_of(
    conn: Connection, customer_id: int, *, before_id: int | None = None, limit: int = 50
) -> list[PaymentView]:
    """The customer's payments, newest first; page with the last id seen."""
    query = _select().where(payments.c.customer_id == customer_id)
    if before_id is not None:
        query = query.where(payments.c.id < before_id)
    rows = conn.execute(query.order_by(payments.c.id.desc()).limit(limit)).mappings()
    return [_view(row) for row in rows]


def exceptions(conn: Connection, *, limit: int = 200) -> list[PaymentView]:
    """The staff's queue: every transfer that failed after it was accepted, came back from
    another bank, or whose outcome is not yet known, and every bill payment its biller has not
    confirmed after `STUCK_BILL_ATTEMPTS` tries (its cause BILLER_UNAVAILABLE), oldest first."""
    stuck = select(bill_payments.c.payment_id).where(
        bill_payments.c.status == "pending_biller",
        bill_payments.c.attempts >= STUCK_BILL_ATTEMPTS,
    )
    rows = conn.execute(
        _select()
        .where(or_(payments.c.status.in_(EXCEPTIONS), payments.c.id.in_(stuck)))
        .order_by(payments.c.id)
        .limit(limit)
    ).mappings()
    return [
        _view(row) if row["status"] in EXCEPTIONS
        else replace(_view(row), failure_code="BILLER_UNAVAILABLE")
        for row in rows
    ]  # fmt: skip
