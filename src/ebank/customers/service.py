"""Registering and finding customers. One customer per identity number.

Registration runs in the writer (`sql=True` commands); finding reads any connection. Numbers
are sealed with the bank's `Vault` before they reach the database and masked on the way out.
"""

from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, select

from ebank.core import audit
from ebank.core.clock import as_utc, business_date
from ebank.core.crypto import Vault, mask_id_number, mask_phone
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx
from ebank.customers import identity
from ebank.customers.models import CustomerView, Kind
from ebank.customers.tables import customers

ID_PURPOSE = "customers.id_number"
MOBILE_PURPOSE = "customers.mobile"


def _id_hash(vault: Vault, kind: Kind, number: str) -> str:
    """Per kind: a resident ID and a credit code may be the same eighteen characters."""
    return vault.lookup_hash(number, purpose=f"{ID_PURPOSE}.{kind.value}")


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EbankError("INVALID_INPUT", reason=f"{what} is required")
    value = value.strip()
    if len(value) > 100 or not value.isprintable():
        raise EbankError("INVALID_INPUT", reason=f"{what} is at most 100 printable characters")
    return value


def _register(
    tx: Tx, vault: Vault, *, kind: Kind, name: str, id_number: str, mobile: str,
    legal_representative: str | None, actor: str, channel: str,
) -> CustomerView:  # fmt: skip
    id_hash = _id_hash(vault, kind, id_number)
    taken = tx.conn.execute(select(customers.c.id).where(customers.c.id_number_hash == id_hash))
    if taken.first() is not None:
        raise EbankError("CUSTOMER_EXISTS")
    row = {
        "kind": kind.value,
        "name": name,
        "id_number_sealed": vault.encrypt(id_number, purpose=ID_PURPOSE),
        "id_number_hash": id_hash,
        "mobile_sealed": vault.encrypt(mobile, purpose=MOBILE_PURPOSE),
        "mobile_hash": vault.lookup_hash(mobile, purpose=MOBILE_PURPOSE),
        "legal_representative": legal_representative,
        "created_at": tx.now,
    }
    customer_id = tx.conn.execute(customers.insert().values(row)).inserted_primary_key[0]
    audit.record(
        tx, actor=actor, action="customer.register", subject=f"customer:{customer_id}",
        channel=channel, detail={"kind": kind.value, "id_number": mask_id_number(id_number)},
    )  # fmt: skip
    return _view(vault, {**row, "id": customer_id})


def register_individual(
    vault: Vault, *, name: str, id_number: str, mobile: str, actor: str,
    channel: str = "counter",
) -> Command[CustomerView]:  # fmt: skip
    """Open a customer record for a person, after checking the resident ID and mobile."""

    def run(tx: Tx) -> CustomerView:
        checked = identity.resident_id(id_number, today=business_date(tx.now))
        return _register(
            tx, vault, kind=Kind.INDIVIDUAL, name=_name(name, "a name"),
            id_number=checked.number, mobile=identity.mobile(mobile),
            legal_representative=None, actor=actor, channel=channel,
        )  # fmt: skip

    return Command(run)


def register_enterprise(
    vault: Vault, *, name: str, credit_code: str, legal_representative: str, mobile: str,
    actor: str, channel: str = "counter",
) -> Command[CustomerView]:  # fmt: skip
    """Open a customer record for an enterprise, after checking its credit code."""

    def run(tx: Tx) -> CustomerView:
        return _register(
            tx, vault, kind=Kind.ENTERPRISE, name=_name(name, "a company name"),
            id_number=identity.credit_code(credit_code), mobile=identity.mobile(mobile),
            legal_representative=_name(legal_representative, "the legal representative"),
            actor=actor, channel=channel,
        )  # fmt: skip

    return Command(run)


def set_mobile(tx: Tx, vault: Vault, customer_id: int, mobile: str) -> tuple[str, str]:
    """Record a customer's new mobile number, in the caller's command (which checks who asks
    and audits); the (old, new) numbers masked. The same number again is INVALID_INPUT."""
    number = identity.mobile(mobile)
    query = select(customers.c.mobile_sealed).where(customers.c.id == customer_id)
    sealed = tx.conn.execute(query.with_for_update()).scalar()
    if sealed is None:
        raise EbankError("CUSTOMER_NOT_FOUND")
    old = vault.decrypt(sealed, purpose=MOBILE_PURPOSE)
    if old == number:
        raise EbankError("INVALID_INPUT", reason="that is the number the bank has already")
    tx.conn.execute(
        customers.update()
        .where(customers.c.id == customer_id)
        .values(
            mobile_sealed=vault.encrypt(number, purpose=MOBILE_PURPOSE),
            mobile_hash=vault.lookup_hash(number, purpose=MOBILE_PURPOSE),
        )
    )
    return mask_phone(old), mask_phone(number)


def _view(vault: Vault, row: Any) -> CustomerView:
    return CustomerView(
        row["id"], row["kind"], row["name"],
        mask_id_number(vault.decrypt(row["id_number_sealed"], purpose=ID_PURPOSE)),
        mask_phone(vault.decrypt(row["mobile_sealed"], purpose=MOBILE_PURPOSE)),
        row["legal_representative"], as_utc(row["created_at"]),
    )  # fmt: skip


def holder(conn: Connection, customer_id: object, *, lock: bool = False) -> Any:
    """The (kind, name) of a customer that other domains act for; CUSTOMER_NOT_FOUND if none.

    `lock` holds the customer's row to the end of the transaction, to serialise decisions
    that depend on what the customer already has.
    """
    if type(customer_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a customer id is an integer")
    row = conn.execute(_HOLDER_LOCKED if lock else _HOLDER, {"id": customer_id}).first()
    if row is None:
        raise EbankError("CUSTOMER_NOT_FOUND")
    return row


# Built once: every payment asks, and building costs more than running.
_HOLDER = select(customers.c.kind, customers.c.name).where(customers.c.id == bindparam("id"))
_HOLDER_LOCKED = _HOLDER.with_for_update()


def get_customer(conn: Connection, vault: Vault, customer_id: int) -> CustomerView:
    row = conn.execute(select(customers).where(customers.c.id == customer_id)).mappings().first()
    if row is None:
        raise EbankError("CUSTOMER_NOT_FOUND")
    return _view(vault, row)


def find_by_id_number(
    conn: Connection, vault: Vault, kind: Kind, id_number: str, *, today: date
) -> CustomerView | None:
    """The individual holding a resident ID, or the enterprise holding a credit code."""
    if kind == Kind.INDIVIDUAL:
        number = identity.resident_id(id_number, today=today).number
    else:
        number = identity.credit_code(id_number)
    query = select(customers).where(
        customers.c.id_number_hash == _id_hash(vault, kind, number),
        customers.c.kind == kind.value,
    )
    row = conn.execute(query).mappings().first()
    return None if row is None else _view(vault, row)


def find_by_mobile(conn: Connection, vault: Vault, mobile: str) -> list[CustomerView]:
    """Customers giving this mobile number (a family may share one)."""
    digest = vault.lookup_hash(identity.mobile(mobile), purpose=MOBILE_PURPOSE)
    rows = conn.execute(
        select(customers).where(customers.c.mobile_hash == digest).order_by(customers.c.id)
    ).mappings()
    return [_view(vault, row) for row in rows]


REVEALABLE = {
    "id_number": ("id_number_sealed", ID_PURPOSE),
    "mobile": ("mobile_sealed", MOBILE_PURPOSE),
}


def reveal(
    vault: Vault, *, customer_id: int, what: str, reason: str, actor: str,
    channel: str = "console",
) -> Command[str]:  # fmt: skip
    """A customer's full identity or mobile number (`what`), for the member of staff who must
    read it out or check it against a document. Screens show numbers masked; every reveal is
    audited with who, whose, which number and why, so that curiosity leaves a trace."""

    def run(tx: Tx) -> str:
        if what not in REVEALABLE:
            raise EbankError("INVALID_INPUT", reason=f"one of {sorted(REVEALABLE)} is revealed")
        why = _name(reason, "a reason")
        column, purpose = REVEALABLE[what]
        holder(tx.conn, customer_id)
        sealed = tx.conn.execute(
            select(customers.c[column]).where(customers.c.id == customer_id)
        ).scalar_one()
        audit.record(
            tx, actor=actor, action="customer.reveal", subject=f"customer:{customer_id}",
            channel=channel, detail={"what": what, "reason": why},
        )  # fmt: skip
        return vault.decrypt(sealed, purpose=purpose)

    return Command(run)
