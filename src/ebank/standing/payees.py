"""The payee book (收款人名册): the people and accounts a customer pays again and again.

Adding a payee takes a one-time SMS code bound to exactly that payee (account, bank and
name), as a bank asks before a new payee can be paid from a saved entry. The details are
checked by the payments service's own rules, so that every payee in the book can be paid;
whether the account exists and bears that name is checked when it is paid, every time.
Someone else's payee, or one removed, is PAYEE_ENTRY_NOT_FOUND. `created_at` stays: risk asks
whether a payee is new.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault, mask_card
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Idempotency, Tx, fingerprint
from ebank.customers import service as customers
from ebank.payments import service as payments
from ebank.payments.models import TransferRequest
from ebank.risk import service as risk
from ebank.risk.models import BANK_RUN, Origin
from ebank.risk.models import Context as RiskContext
from ebank.security import service as security
from ebank.security.service import Checked, CodeIssued
from ebank.standing.models import PayeeView
from ebank.standing.tables import payees, standing_orders

CODE_PURPOSE = "payee"  # of the SMS codes that add a payee
ALIAS_MAX = 30
SMS_NAME_MAX = 30  # a payee's name as the SMS shows it, so that the message stays short


@dataclass(frozen=True, slots=True)
class Entry:
    """A payee with the account in full, for the services that pay it."""

    id: int
    customer_id: int
    name: str
    account: str
    bank: str | None
    removed: bool
    view: PayeeView


def _details(customer_id: int, account: str, name: str, bank: str | None) -> TransferRequest:
    """The payee's details in canonical form (spaces out of the account, this bank's own code
    as None), by the rules a transfer to it will meet: those of a one-fen transfer."""
    return payments.canonical(
        TransferRequest(
            customer_id=customer_id, channel="online", from_account="-", payee_account=account,
            payee_name=name, amount=1, payee_bank=bank,
        )
    )  # fmt: skip


def _binding(d: TransferRequest) -> str:
    return security.binding_of(
        purpose=CODE_PURPOSE, payee_account=d.payee_account, payee_bank=d.payee_bank,
        payee_name=d.payee_name,
    )  # fmt: skip


def _alias(alias: object) -> str:
    if not isinstance(alias, str) or len(alias.strip()) > ALIAS_MAX or not alias.isprintable():
        raise EbankError("INVALID_INPUT", reason=f"an alias is at most {ALIAS_MAX} characters")
    return alias.strip()


def send_code(
    vault: Vault, *, customer_id: int, account: str, name: str, bank: str | None = None
) -> Command[CodeIssued]:
    """Text the customer a code that adds exactly this payee, naming it."""

    def run(tx: Tx) -> CodeIssued:
        d = _details(customer_id, account, name, bank)
        shown = d.payee_name if len(d.payee_name) <= SMS_NAME_MAX else d.payee_name[:29] + "…"
        return security.issue_code(
            vault, customer_id=customer_id, purpose=CODE_PURPOSE, binding=_binding(d),
            message=f"添加收款人{shown}({mask_card(d.payee_account)})",
        ).fn(tx)  # fmt: skip

    return Command(run)


def add(
    vault: Vault,
    *,
    customer_id: int,
    channel: str,
    account: str,
    name: str,
    bank: str | None = None,
    alias: str = "",
    code: str,
    idempotency_key: str,
    origin: Origin = BANK_RUN,
) -> Command[Checked[int]]:
    """Add a payee with the code sent for it, once per idempotency key; its id. A payee
    already in the book (same account and bank) is PAYEE_ENTRY_EXISTS, and spends no code.
    Risk control is asked once the code passed: a block or a hold for review refuses the
    payee (RISK_REJECTED); its other outcomes let it in, since payments to it are scored
    again, and a new payee is a signal there."""

    def run(tx: Tx) -> Checked[int]:
        d = _details(customer_id, account, name, bank)
        shown_alias = _alias(alias)
        customers.holder(tx.conn, customer_id, lock=True)  # one add at a time per customer
        account_hash = vault.lookup_hash(d.payee_account, purpose=payments.PAYEE_PURPOSE)
        same_bank = (
            payees.c.bank.is_(None) if d.payee_bank is None else payees.c.bank == d.payee_bank
        )
        there = tx.conn.execute(
            select(payees.c.id).where(
                payees.c.customer_id == customer_id, payees.c.account_hash == account_hash,
                same_bank, payees.c.removed_at.is_(None),
            )
        ).first()  # fmt: skip
        if there is not None:
            raise EbankError("PAYEE_ENTRY_EXISTS")
        verdict = security.check_code(
            vault, customer_id=customer_id, purpose=CODE_PURPOSE, binding=_binding(d),
            code=code if isinstance(code, str) else "",
        ).fn(tx)  # fmt: skip
        if not verdict.ok:
            return Checked(verdict)
        seen = RiskContext(
            event="payee_add", customer_id=customer_id, channel=channel, device=origin.device,
            ip=origin.ip, payee=payments.payee_risk_key(tx.conn, vault, d.payee_account,
                                                        d.payee_bank),
            payee_is_new=True, factor="sms",
        )  # fmt: skip
        risk.admit(tx, seen)
        payee_id = tx.new_id("payees")
        masked = mask_card(d.payee_account)
        tx.conn.execute(
            payees.insert().values(
                id=payee_id, customer_id=customer_id, name=d.payee_name,
                account_sealed=vault.encrypt(d.payee_account, purpose=payments.PAYEE_PURPOSE),
                account_hash=account_hash, account_masked=masked, bank=d.payee_bank,
                alias=shown_alias, created_at=tx.now, removed_at=None,
            )
        )  # fmt: skip
        audit.record(
            tx, actor=f"customer:{customer_id}", action="payee.add", subject=f"payee:{payee_id}",
            channel=channel, detail={"account": masked, "bank": d.payee_bank},
        )  # fmt: skip
        risk.observe(tx, seen)
        return Checked(verdict, payee_id)

    asked = fingerprint(
        op="payee.add", customer=customer_id, account=account, name=name, bank=bank, alias=alias,
    )  # fmt: skip
    return Command(
        run,
        idempotency=Idempotency(
            f"customer:{customer_id}", idempotency_key, asked, Checked.replayed
        ),
    )


def _row(conn: Connection, payee_id: object, *, lock: bool = False) -> Any:
    if type(payee_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a payee id is an integer")
    query = select(payees).where(payees.c.id == payee_id)
    return conn.execute(query.with_for_update() if lock else query).mappings().first()


def remove(*, customer_id: int, payee_id: int, channel: str) -> Command[None]:
    """Take a payee out of the book. Removing it again changes nothing; a payee that standing
    orders still pay is PAYEE_ENTRY_IN_USE (the customer cancels them first)."""

    def run(tx: Tx) -> None:
        row = _row(tx.conn, payee_id, lock=True)
        if row is None or row["customer_id"] != customer_id:
            raise EbankError("PAYEE_ENTRY_NOT_FOUND")
        if row["removed_at"] is not None:
            return
        paying = tx.conn.execute(
            select(standing_orders.c.id).where(
                standing_orders.c.payee_id == payee_id, standing_orders.c.status == "active"
            )
        ).first()
        if paying is not None:
            raise EbankError("PAYEE_ENTRY_IN_USE")
        tx.conn.execute(payees.update().where(payees.c.id == payee_id).values(removed_at=tx.now))
        audit.record(
            tx, actor=f"customer:{customer_id}", action="payee.remove",
            subject=f"payee:{payee_id}", channel=channel,
        )  # fmt: skip

    return Command(run)


def view_of(row: Any) -> PayeeView:
    return PayeeView(
        row["id"], row["name"], row["account_masked"], row["bank"], row["alias"],
        as_utc(row["created_at"]),
    )  # fmt: skip


def payees_of(conn: Connection, customer_id: int) -> list[PayeeView]:
    """The customer's payee book, in the order the payees were added."""
    rows = conn.execute(
        select(payees)
        .where(payees.c.customer_id == customer_id, payees.c.removed_at.is_(None))
        .order_by(payees.c.id)
    ).mappings()
    return [view_of(row) for row in rows]


def entry(conn: Connection, vault: Vault, *, customer_id: int, payee_id: int) -> Entry:
    """One of the customer's payees, removed ones included (an order's history shows them);
    someone else's is PAYEE_ENTRY_NOT_FOUND."""
    row = _row(conn, payee_id)
    if row is None or row["customer_id"] != customer_id:
        raise EbankError("PAYEE_ENTRY_NOT_FOUND")
    return Entry(
        row["id"], row["customer_id"], row["name"],
        vault.decrypt(row["account_sealed"], purpose=payments.PAYEE_PURPOSE), row["bank"],
        row["removed_at"] is not None, view_of(row),
    )  # fmt: skip


def in_book(conn: Connection, vault: Vault, *, customer_id: int, payee_id: int) -> Entry:
    """One of the customer's payees that is still in the book, to pay or to choose: a removed
    one is PAYEE_ENTRY_NOT_FOUND, as someone else's is."""
    found = entry(conn, vault, customer_id=customer_id, payee_id=payee_id)
    if found.removed:
        raise EbankError("PAYEE_ENTRY_NOT_FOUND")
    return found
