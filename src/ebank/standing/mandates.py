"""Direct debit (代扣): a mandate the customer signs lets one creditor take money from one of
the customer's accounts, up to a maximum per debit, once a month or a year or as often as it
asks, until a date; the customer revokes it whenever they like, effective at once.

The creditor is an enterprise customer of this bank, paid into its settlement account, or a
biller of the bills registry, paid into the biller's settlement account (a biller debits
through `debit` as `Creditor(biller=...)`; no channel offers that yet). Signing takes an SMS code
bound to the creditor, the paying account, the maximum, the frequency and the end date: a code
sent for one mandate signs no other.

**Limits.** A mandate is an agreed, capped standing authority: as at any bank, no factor is
asked per debit, and debits do not use up the customer's e-banking limits (those bound what
the customer does on a channel). The account's tier limits (Type II and III, PBOC 2016
No. 261) bind every outflow of the account whatever its channel, so each debit asks the limits
service as a counter payment (tier limits only) and is counted there. The debit is booked as a
payment of kind "debit" on the channel "counter": bank-side business under a signed mandate,
not an e-channel transaction of the customer's.

A debit is identified by the creditor's reference: the same reference again is the same debit
(its first answer), never a second one. A monthly or yearly mandate allows one debit per
calendar month or year (Asia/Shanghai). A debit refused for any reason (revoked, expired,
above the maximum, period used, insufficient funds, another creditor) writes nothing.
"""

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount, Product, Tier
from ebank.bills import service as bills
from ebank.core import audit
from ebank.core.clock import as_utc, business_date
from ebank.core.crypto import Vault, mask_card, mask_name
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR, display_amount, format_minor
from ebank.core.writer import Command, Idempotency, Tx, fingerprint
from ebank.customers import service as customers
from ebank.customers.models import Kind
from ebank.ledger.models import reference as reference_of
from ebank.limits import service as limits
from ebank.payments import service as payments
from ebank.security import service as security
from ebank.security.service import Checked, CodeIssued
from ebank.standing.models import Creditor, DebitView, MandateRequest, MandateView
from ebank.standing.tables import MANDATE_FREQUENCIES, direct_debit_mandates, direct_debits

CODE_PURPOSE = "mandate"  # of the SMS codes that sign a mandate
DEBIT_CHANNEL = "counter"
MAX_VALIDITY = timedelta(days=3653)  # ten years
SMS_NAME_MAX = 30
REFERENCE_MAX = 64


def _invalid(reason: str) -> EbankError:
    return EbankError("INVALID_INPUT", reason=reason)


def _checked(r: MandateRequest, today: date) -> None:
    if type(r.max_amount) is not int or not 0 < r.max_amount <= MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="a maximum is a positive number of fen")
    if r.frequency not in MANDATE_FREQUENCIES:
        raise _invalid(f"frequency is one of {', '.join(MANDATE_FREQUENCIES)}")
    if type(r.valid_until) is not date or not today <= r.valid_until <= today + MAX_VALIDITY:
        raise _invalid("a mandate is valid until a date from today to ten years ahead")
    if (r.creditor_account is None) == (r.biller is None):
        raise _invalid("name the creditor by its account or a biller's code, not both")


def _creditor(conn: Connection, r: MandateRequest) -> tuple[Creditor, str, CustomerAccount | None]:
    """Who the mandate pays, with the name the customer sees and its account here."""
    if r.biller is not None:
        biller = bills.biller_of(conn, r.biller)
        return Creditor(biller=biller.code), biller.name_zh, None
    try:
        account = accounts.get_account(conn, number=r.creditor_account or "")
    except EbankError:
        raise EbankError("CREDITOR_NOT_ELIGIBLE") from None
    kind, name = customers.holder(conn, account.customer_id)
    if (
        kind != Kind.ENTERPRISE
        or account.tier != Tier.CORPORATE
        or account.product != Product.DEMAND
    ):
        raise EbankError("CREDITOR_NOT_ELIGIBLE")
    if account.customer_id == r.customer_id:
        raise _invalid("a mandate is for another creditor than oneself")
    return Creditor(customer_id=account.customer_id), name, account


def _binding(r: MandateRequest, creditor: Creditor, payer: CustomerAccount) -> str:
    return security.binding_of(
        purpose=CODE_PURPOSE, account=payer.number, creditor=creditor.label(),
        max_amount=r.max_amount, frequency=r.frequency, valid_until=r.valid_until.isoformat(),
    )  # fmt: skip


def _resolve(
    tx: Tx, r: MandateRequest
) -> tuple[CustomerAccount, Creditor, str, CustomerAccount | None]:
    _checked(r, business_date(tx.now))
    payer = payments.paying_account(tx.conn, r.customer_id, r.account)
    return payer, *_creditor(tx.conn, r)


def send_code(vault: Vault, r: MandateRequest) -> Command[CodeIssued]:
    """Text the customer a code that signs exactly this mandate, naming creditor and maximum."""

    def run(tx: Tx) -> CodeIssued:
        payer, creditor, name, _ = _resolve(tx, r)
        shown = name if len(name) <= SMS_NAME_MAX else name[: SMS_NAME_MAX - 1] + "…"
        return security.issue_code(
            vault, customer_id=r.customer_id, purpose=CODE_PURPOSE,
            binding=_binding(r, creditor, payer),
            message=f"签约代扣：{shown}每次最多扣款{display_amount(r.max_amount)}",
        ).fn(tx)  # fmt: skip

    return Command(run)


def sign(
    vault: Vault, r: MandateRequest, *, code: str, idempotency_key: str
) -> Command[Checked[int]]:
    """Sign the mandate with the code sent for it, once per idempotency key; its id."""

    def run(tx: Tx) -> Checked[int]:
        payer, creditor, _, creditor_account = _resolve(tx, r)
        verdict = security.check_code(
            vault, customer_id=r.customer_id, purpose=CODE_PURPOSE,
            binding=_binding(r, creditor, payer), code=code if isinstance(code, str) else "",
        ).fn(tx)  # fmt: skip
        if not verdict.ok:
            return Checked(verdict)
        mandate_id = tx.new_id("direct_debit_mandates")
        tx.conn.execute(
            direct_debit_mandates.insert().values(
                id=mandate_id, customer_id=r.customer_id, account_id=payer.id,
                creditor_customer_id=creditor.customer_id,
                creditor_account_id=None if creditor_account is None else creditor_account.id,
                biller_code=creditor.biller, max_amount=r.max_amount, currency="CNY",
                frequency=r.frequency, valid_until=r.valid_until, channel=r.channel,
                status="active", created_at=tx.now, revoked_at=None,
            )
        )  # fmt: skip
        audit.record(
            tx, actor=f"customer:{r.customer_id}", action="mandate.sign",
            subject=f"mandate:{mandate_id}", channel=r.channel,
            detail={"creditor": creditor.label(), "max_amount": r.max_amount,
                    "frequency": r.frequency, "valid_until": r.valid_until.isoformat()},
        )  # fmt: skip
        return Checked(verdict, mandate_id)

    asked = fingerprint(
        op="mandate.sign", customer=r.customer_id, channel=r.channel, account=r.account,
        creditor_account=r.creditor_account, biller=r.biller, max_amount=r.max_amount,
        frequency=r.frequency, valid_until=str(r.valid_until),
    )  # fmt: skip
    return Command(
        run,
        idempotency=Idempotency(
            f"customer:{r.customer_id}", idempotency_key, asked, Checked.replayed
        ),
    )


def _locked(tx: Tx, mandate_id: object) -> Any:
    if type(mandate_id) is not int:
        raise _invalid("a mandate id is an integer")
    query = (
        select(direct_debit_mandates)
        .where(direct_debit_mandates.c.id == mandate_id)
        .with_for_update()
    )
    return tx.conn.execute(query).mappings().first()


def revoke(*, customer_id: int, mandate_id: int, channel: str) -> Command[int]:
    """The customer ends the mandate, effective at once: no debit passes after this commits.
    Revoking again changes nothing; someone else's is MANDATE_NOT_FOUND."""

    def run(tx: Tx) -> int:
        row = _locked(tx, mandate_id)
        if row is None or row["customer_id"] != customer_id:
            raise EbankError("MANDATE_NOT_FOUND")
        if row["status"] == "revoked":
            return mandate_id
        tx.conn.execute(
            direct_debit_mandates.update()
            .where(direct_debit_mandates.c.id == mandate_id)
            .values(status="revoked", revoked_at=tx.now)
        )
        audit.record(
            tx, actor=f"customer:{customer_id}", action="mandate.revoke",
            subject=f"mandate:{mandate_id}", channel=channel,
        )  # fmt: skip
        return mandate_id

    return Command(run)


def _period(frequency: str, today: date) -> str | None:
    return {"monthly": f"{today:%Y-%m}", "yearly": f"{today:%Y}"}.get(frequency)


def _payee(tx: Tx, row: Any) -> tuple[int, str, str, CustomerAccount | None]:
    """Where a debit goes: (ledger account credited, payee account, payee name, its account
    here if a customer's)."""
    if row["biller_code"] is not None:
        biller = bills.biller_of(tx.conn, row["biller_code"])
        return biller.ledger_account_id, biller.code, biller.name_zh, None
    account = accounts.account_by_id(tx.conn, row["creditor_account_id"])
    _, name = customers.holder(tx.conn, account.customer_id)
    return account.ledger_account_id, account.number, name, account


def debit(
    vault: Vault,
    *,
    creditor: Creditor,
    mandate_id: int,
    amount: int,
    reference: str,
    idempotency_key: str,
    channel: str,
) -> Command[int]:
    """Take `amount` under the mandate, for the creditor's `reference`; the debit's id. Only
    the mandate's creditor may, while it is active and valid, up to its maximum, once per
    period for a monthly or yearly one."""

    def run(tx: Tx) -> int:
        if type(amount) is not int or not 0 < amount <= MAX_MINOR:
            raise EbankError("INVALID_AMOUNT", reason="a debit is a positive number of fen")
        if (
            not isinstance(reference, str)
            or not 0 < len(reference) <= REFERENCE_MAX
            or (not reference.isprintable())
        ):
            raise _invalid(f"a reference is 1-{REFERENCE_MAX} printable characters")
        row = _locked(tx, mandate_id)
        ours = row is not None and (row["creditor_customer_id"], row["biller_code"]) == (
            creditor.customer_id, creditor.biller,
        )  # fmt: skip
        if not ours:
            raise EbankError("MANDATE_NOT_FOUND")
        before = tx.conn.execute(
            select(direct_debits.c.id, direct_debits.c.amount).where(
                direct_debits.c.mandate_id == mandate_id, direct_debits.c.reference == reference
            )
        ).first()
        if before is not None:
            if before.amount != amount:
                raise EbankError("IDEMPOTENCY_CONFLICT", key=reference)
            return int(before.id)
        today = business_date(tx.now)
        if row["status"] == "revoked":
            raise EbankError("MANDATE_REVOKED")
        if row["valid_until"] < today:
            raise EbankError("MANDATE_EXPIRED")
        if amount > row["max_amount"]:
            raise EbankError("MANDATE_AMOUNT_EXCEEDED", max_amount=format_minor(row["max_amount"]))
        period = _period(row["frequency"], today)
        if period is not None:
            used = tx.conn.execute(
                select(direct_debits.c.id).where(
                    direct_debits.c.mandate_id == mandate_id, direct_debits.c.period == period
                )
            ).first()
            if used is not None:
                raise EbankError("MANDATE_PERIOD_USED", period=period)
        number = accounts.account_by_id(tx.conn, row["account_id"]).number
        payer = payments.paying_account(tx.conn, row["customer_id"], number)
        credit, payee_account, payee_name, payee = _payee(tx, row)
        limits.authorise(
            tx,
            limits.Payment(
                customer_id=row["customer_id"], channel=DEBIT_CHANNEL, kind="transfer",
                from_account=payer.number, amount=amount,
                payee_account=None if payee is None else payee.number,
            ),
        )  # fmt: skip
        payment_id = payments.record_payment(
            tx, vault,
            payments.Debit(
                customer_id=row["customer_id"], channel=DEBIT_CHANNEL, kind="debit", payer=payer,
                payee_account=payee_account, payee_name=payee_name, amount=amount, credit=credit,
                payee=payee, memo=f"代扣 {reference}"[: payments.MEMO_MAX], present=False,
            ),
        )  # fmt: skip
        debit_id = tx.new_id("direct_debits")
        tx.conn.execute(
            direct_debits.insert().values(
                id=debit_id, mandate_id=mandate_id, reference=reference, period=period,
                amount=amount, payment_id=payment_id, created_at=tx.now,
            )
        )  # fmt: skip
        audit.record(
            tx, actor=creditor.label(), action="mandate.debit", subject=f"mandate:{mandate_id}",
            channel=channel,
            detail={"amount": amount, "reference": reference, "payment": payment_id},
        )  # fmt: skip
        return debit_id

    asked = fingerprint(op="mandate.debit", mandate=mandate_id, amount=amount, reference=reference)
    return Command(run, idempotency=Idempotency(creditor.label(), idempotency_key, asked))


# -- reading -------------------------------------------------------------------------------------
def _views(conn: Connection, today: date, *where: Any, for_creditor: bool) -> list[MandateView]:
    m = direct_debit_mandates
    last = (
        select(direct_debits.c.mandate_id, func.max(direct_debits.c.created_at).label("at"))
        .group_by(direct_debits.c.mandate_id)
        .subquery()
    )
    rows = conn.execute(
        select(m, last.c.at.label("last_debit_at"))
        .select_from(m.outerjoin(last, last.c.mandate_id == m.c.id))
        .where(*where)
        .order_by(m.c.id)
    ).mappings().all()  # fmt: skip
    views = []
    for row in rows:
        account = accounts.account_by_id(conn, row["account_id"]).number
        _, debtor = customers.holder(conn, row["customer_id"])
        creditor_name, creditor_account = row["biller_code"], None
        if row["creditor_account_id"] is not None:
            found = accounts.account_by_id(conn, row["creditor_account_id"])
            creditor_name = customers.holder(conn, found.customer_id)[1]
            creditor_account = mask_card(found.number)
        status = row["status"]
        if status == "active" and row["valid_until"] < today:
            status = "expired"
        views.append(
            MandateView(
                row["id"], mask_card(account) if for_creditor else account, mask_name(debtor),
                creditor_name, creditor_account, row["biller_code"], row["max_amount"],
                row["currency"], row["frequency"], row["valid_until"], status,
                as_utc(row["created_at"]),
                None if row["revoked_at"] is None else as_utc(row["revoked_at"]),
                None if row["last_debit_at"] is None else as_utc(row["last_debit_at"]),
            )
        )  # fmt: skip
    return views


def mandates_of(conn: Connection, customer_id: int, *, today: date) -> list[MandateView]:
    """The mandates the customer signed, oldest first."""
    return _views(
        conn, today, direct_debit_mandates.c.customer_id == customer_id, for_creditor=False
    )


def mandate_of(conn: Connection, *, customer_id: int, mandate_id: int, today: date) -> MandateView:
    """One of the customer's mandates; someone else's is MANDATE_NOT_FOUND."""
    found = _views(
        conn, today, direct_debit_mandates.c.customer_id == customer_id,
        direct_debit_mandates.c.id == mandate_id, for_creditor=False,
    )  # fmt: skip
    if not found:
        raise EbankError("MANDATE_NOT_FOUND")
    return found[0]


def mandates_for(conn: Connection, creditor_customer_id: int, *, today: date) -> list[MandateView]:
    """The mandates customers gave this creditor, oldest first, their accounts masked."""
    return _views(
        conn, today, direct_debit_mandates.c.creditor_customer_id == creditor_customer_id,
        for_creditor=True,
    )  # fmt: skip


def debit_of(conn: Connection, *, creditor: Creditor, debit_id: int) -> DebitView:
    """One of the creditor's debits; another's is MANDATE_NOT_FOUND."""
    m = direct_debit_mandates
    row = conn.execute(
        select(direct_debits, m.c.creditor_customer_id, m.c.biller_code)
        .join(m, m.c.id == direct_debits.c.mandate_id)
        .where(direct_debits.c.id == debit_id)
    ).mappings().first()  # fmt: skip
    if row is None or (row["creditor_customer_id"], row["biller_code"]) != (
        creditor.customer_id, creditor.biller,
    ):  # fmt: skip
        raise EbankError("MANDATE_NOT_FOUND")
    created = as_utc(row["created_at"])
    return DebitView(
        row["id"], row["mandate_id"], row["reference"], row["amount"], row["payment_id"],
        reference_of("P", row["payment_id"], created), created,
    )  # fmt: skip
