"""Merchants of the e-commerce gateway: staff sign an enterprise up, with its industry, the
account its takings settle to, its fee plan and settlement cycle, and register the public key
its requests are signed with.

A merchant is an enterprise customer of the bank (its unified social credit code is the
business licence number); its users are the enterprise's operators (`corporate.operators`):
entry (录入) is the maker role, review (复核) the checker role.
"""

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, bindparam, select

from ebank.accounts import service as accounts
from ebank.core import audit
from ebank.core.errors import EbankError, checked_text
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.customers.models import Kind
from ebank.gateway import fees
from ebank.gateway.client import fingerprint
from ebank.gateway.tables import CYCLES, KEY_ALGORITHMS, MERCHANT_STATUSES, merchant_keys, merchants

MAX_SETTLE_DAYS = 30


@dataclass(frozen=True, slots=True)
class Merchant:
    id: int
    merchant_no: str
    customer_id: int
    name: str
    industry: str
    settlement_account_id: int
    fee_plan: str
    cycle: str
    settle_days: int
    status: str
    created_at: datetime

    @property
    def subject(self) -> str:
        return f"merchant:{self.id}"


@dataclass(frozen=True, slots=True)
class MerchantKey:
    id: int
    merchant_id: int
    algorithm: str
    public_key: str
    fingerprint: str
    created_at: datetime
    revoked_at: datetime | None


def _view(row: Any) -> Merchant:
    return Merchant(
        row.id, row.merchant_no, row.customer_id, row.name, row.industry,
        row.settlement_account_id, row.fee_plan, row.cycle, row.settle_days, row.status,
        row.created_at,
    )  # fmt: skip


def _key_view(row: Any) -> MerchantKey:
    return MerchantKey(
        row.id, row.merchant_id, row.algorithm, row.public_key, row.fingerprint, row.created_at,
        row.revoked_at,
    )  # fmt: skip


# Built once: every order and every signed request looks its merchant up.
_BY = {
    column: select(merchants).where(merchants.c[column] == bindparam("value"))
    for column in ("id", "merchant_no", "customer_id")
}
_BY_ID_LOCKED = _BY["id"].with_for_update()


def _one(conn: Connection, query: Any, value: object) -> Merchant:
    row = conn.execute(query, {"value": value}).first()
    if row is None:
        raise EbankError("MERCHANT_NOT_FOUND")
    return _view(row)


def get(conn: Connection, merchant_id: int, *, lock: bool = False) -> Merchant:
    return _one(conn, _BY_ID_LOCKED if lock else _BY["id"], merchant_id)


def by_number(conn: Connection, merchant_no: str) -> Merchant:
    return _one(conn, _BY["merchant_no"], merchant_no)


def of_enterprise(conn: Connection, customer_id: int) -> Merchant:
    """The merchant an enterprise is (its operators' portal); MERCHANT_NOT_FOUND if none."""
    return _one(conn, _BY["customer_id"], customer_id)


def listing(conn: Connection, *, limit: int = 200) -> list[Merchant]:
    query = select(merchants).order_by(merchants.c.id).limit(limit)
    return [_view(r) for r in conn.execute(query)]


def _terms(
    tx: Tx, customer_id: int, settlement_account: str, fee_plan: str, cycle: str,
    settle_days: int,
) -> tuple[int, str]:  # fmt: skip
    """Check the commercial terms; the settlement account's id and the plan's code."""
    if not isinstance(settlement_account, str):
        raise EbankError("INVALID_INPUT", reason="the settlement account is an account number")
    account = accounts.get_account(tx.conn, number=settlement_account)
    if account.customer_id != customer_id:
        raise EbankError("ACCOUNT_NOT_FOUND")  # someone else's: as if it did not exist
    if account.product != "demand" or account.status != "active" or account.currency != "CNY":
        raise EbankError("INVALID_INPUT", reason="takings settle to an active CNY demand account")
    plan = fees.plan(tx.conn, fee_plan if isinstance(fee_plan, str) else "").code
    if cycle not in CYCLES:
        raise EbankError("INVALID_INPUT", reason=f"a settlement cycle is one of {CYCLES}")
    days_ok = settle_days == 0 if cycle != "tn" else 1 <= settle_days <= MAX_SETTLE_DAYS
    if type(settle_days) is not int or not days_ok:
        raise EbankError(
            "INVALID_INPUT", reason=f"T+N settles after 1-{MAX_SETTLE_DAYS} days; T+0 after 0"
        )
    return account.id, plan


def onboard(
    *, customer_id: int, name: str, industry: str, settlement_account: str, fee_plan: str,
    cycle: str, settle_days: int = 0, actor: str, channel: str = "counter",
) -> Command[Merchant]:  # fmt: skip
    """Sign an enterprise up as a merchant (商户签约). It has no key yet: `add_key`."""

    def run(tx: Tx) -> Merchant:
        kind, _ = customers.holder(tx.conn, customer_id, lock=True)
        if kind != Kind.ENTERPRISE.value:
            raise EbankError("NOT_AN_ENTERPRISE")
        shown = checked_text(name, "a merchant name", 100)
        sector = checked_text(industry, "an industry", 40)
        account_id, plan = _terms(tx, customer_id, settlement_account, fee_plan, cycle, settle_days)
        if tx.conn.execute(
            select(merchants.c.id).where(merchants.c.customer_id == customer_id)
        ).first():
            raise EbankError("MERCHANT_EXISTS")
        merchant_id = tx.new_id("merchants")
        row = {
            "id": merchant_id, "merchant_no": f"M{merchant_id:09d}", "customer_id": customer_id,
            "name": shown, "industry": sector, "settlement_account_id": account_id,
            "fee_plan": plan, "cycle": cycle, "settle_days": settle_days, "status": "active",
            "created_by": actor, "created_at": tx.now,
        }  # fmt: skip
        tx.conn.execute(merchants.insert().values(row))
        audit.record(
            tx, actor=actor, action="gateway.merchant.onboard", subject=f"merchant:{merchant_id}",
            channel=channel,
            detail={"customer": customer_id, "fee_plan": plan, "cycle": cycle,
                    "settle_days": settle_days},
        )  # fmt: skip
        return _view(SimpleNamespace(**row))

    return Command(run)


def change_terms(
    *, merchant_id: int, fee_plan: str, cycle: str, settle_days: int, actor: str,
    channel: str = "counter",
) -> Command[Merchant]:  # fmt: skip
    """Move a merchant to another fee plan or settlement cycle, from its next payment on."""

    def run(tx: Tx) -> Merchant:
        m = get(tx.conn, merchant_id, lock=True)
        account = accounts.account_by_id(tx.conn, m.settlement_account_id)
        _, plan = _terms(tx, m.customer_id, account.number, fee_plan, cycle, settle_days)
        tx.conn.execute(
            merchants.update().where(merchants.c.id == m.id)
            .values(fee_plan=plan, cycle=cycle, settle_days=settle_days)
        )  # fmt: skip
        audit.record(
            tx, actor=actor, action="gateway.merchant.terms", subject=m.subject, channel=channel,
            detail={"fee_plan": plan, "cycle": cycle, "settle_days": settle_days},
        )  # fmt: skip
        return get(tx.conn, m.id)

    return Command(run)


def set_status(*, merchant_id: int, status: str, actor: str, channel: str) -> Command[Merchant]:
    """Suspend a merchant (its signed requests are refused and its orders cannot be paid),
    reinstate it, or close it for good."""

    def run(tx: Tx) -> Merchant:
        if status not in MERCHANT_STATUSES:
            raise EbankError("INVALID_INPUT", reason=f"a status is one of {MERCHANT_STATUSES}")
        m = get(tx.conn, merchant_id, lock=True)
        if m.status == "closed":
            raise EbankError("MERCHANT_CLOSED")
        tx.conn.execute(merchants.update().where(merchants.c.id == m.id).values(status=status))
        audit.record(
            tx, actor=actor, action=f"gateway.merchant.{status}", subject=m.subject,
            channel=channel, detail={"was": m.status},
        )  # fmt: skip
        return get(tx.conn, m.id)

    return Command(run)


def add_key(
    *, merchant_id: int, algorithm: str, public_key: str, actor: str, channel: str = "counter"
) -> Command[MerchantKey]:
    """Register the public key the merchant signs with. The newest unrevoked key verifies its
    requests, so a merchant rolls its key over by registering the new one."""

    def run(tx: Tx) -> MerchantKey:
        m = get(tx.conn, merchant_id, lock=True)
        if algorithm not in KEY_ALGORITHMS:
            raise EbankError("INVALID_INPUT", reason=f"a key algorithm is one of {KEY_ALGORITHMS}")
        if not isinstance(public_key, str) or len(public_key) > 4096:
            raise EbankError("INVALID_INPUT", reason="a public key is text")
        try:
            key_print = fingerprint(algorithm, public_key)
        except ValueError as exc:
            raise EbankError("INVALID_INPUT", reason=str(exc)) from None
        row = {
            "merchant_id": m.id, "algorithm": algorithm, "public_key": public_key.strip(),
            "fingerprint": key_print, "created_by": actor,
            "created_at": tx.now, "revoked_at": None,
        }  # fmt: skip
        key_id = tx.conn.execute(merchant_keys.insert().values(row)).inserted_primary_key[0]
        audit.record(
            tx, actor=actor, action="gateway.merchant.key", subject=m.subject, channel=channel,
            detail={"algorithm": algorithm, "fingerprint": row["fingerprint"]},
        )  # fmt: skip
        return _key_view(SimpleNamespace(**row, id=key_id))

    return Command(run)


def revoke_key(*, merchant_id: int, key_id: int, actor: str, channel: str) -> Command[None]:
    def run(tx: Tx) -> None:
        k = merchant_keys.c
        done = tx.conn.execute(
            merchant_keys.update()
            .where(k.id == key_id, k.merchant_id == merchant_id, k.revoked_at.is_(None))
            .values(revoked_at=tx.now)
        )
        if done.rowcount != 1:
            raise EbankError("NOT_FOUND")
        audit.record(
            tx, actor=actor, action="gateway.merchant.key_revoke",
            subject=f"merchant:{merchant_id}", channel=channel, detail={"key": key_id},
        )  # fmt: skip

    return Command(run)


def current_key(conn: Connection, merchant_id: int) -> MerchantKey | None:
    """The key that verifies the merchant's requests: its newest unrevoked one."""
    row = conn.execute(_CURRENT_KEY, {"merchant_id": merchant_id}).first()
    return None if row is None else _key_view(row)


_CURRENT_KEY = (
    select(merchant_keys)
    .where(merchant_keys.c.merchant_id == bindparam("merchant_id"))
    .where(merchant_keys.c.revoked_at.is_(None))
    .order_by(merchant_keys.c.id.desc())
    .limit(1)
)


def keys_of(conn: Connection, merchant_id: int) -> list[MerchantKey]:
    k = merchant_keys.c
    query = select(merchant_keys).where(k.merchant_id == merchant_id).order_by(k.id)
    return [_key_view(r) for r in conn.execute(query)]
