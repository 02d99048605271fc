"""Watch lists: police-designated accounts (涉案账户), compromised credentials, sanctioned
parties. Rules ask `on_list("police", payee)`; an entry is an entity key as the aggregates
use it ("acct:17", "ext:<bank>:<hash>", "c:42", "d:<device hash>", "ip:...", "m:7").

Entries are added and removed under maker-checker (`risk.list.add`, `risk.list.remove`).
Adding one of our accounts to the police list also suspends it (DOMAIN.md §2: all
non-counter business stops) in the same transaction. Removing an entry does not reinstate
the account: that is `account.reinstate`, after the customer has been seen at a branch.
"""

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault, mask_card
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.ledger import service as ledger
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.ops import approvals
from ebank.risk.models import LISTS, payee_key
from ebank.risk.rules import approved_request
from ebank.risk.tables import risk_list_entries

_KEY = re.compile(
    r"acct:[1-9]\d{0,18}|ext:[A-Za-z0-9]{1,12}:[0-9a-f]{64}|c:[1-9]\d{0,18}|d:[0-9a-f]{64}"
    r"|ip:[0-9A-Fa-f.:]{2,45}|m:[1-9]\d{0,18}"
)
_SUSPENDABLE = {"active", "dormant", "frozen"}


@dataclass(frozen=True, slots=True)
class ListEntry:
    id: int
    list: str
    key: str
    label: str
    reason: str
    added_by: str
    approved_by: str
    added_at: datetime
    removed_by: str | None
    removed_at: datetime | None


def key_of_account(conn: Connection, vault: Vault, *, number: str, bank: str = "") -> str:
    """The key of an account: ours by its ledger id (ACCOUNT_NOT_FOUND if we have none of
    that number), another bank's by its keyed hash. Our own bank code names ours, as in a
    payment (`payments.canonical`), so that a listing matches the payments to it."""
    if not isinstance(number, str) or not 0 < len(number.strip()) <= 40:
        raise EbankError("INVALID_INPUT", reason="an account number is 1-40 characters")
    if bank and bank != get_settings().bank_code:
        try:
            return payee_key(vault, bank=bank, account_number=number)
        except ValueError:
            raise EbankError(
                "INVALID_INPUT", reason="a bank code is 1-12 letters or digits"
            ) from None
    ledger_id = conn.execute(
        select(ledger_accounts.c.id).where(
            ledger_accounts.c.code == number.strip(), ledger_accounts.c.kind == "customer"
        )
    ).scalar()
    if ledger_id is None:
        raise EbankError("ACCOUNT_NOT_FOUND")
    return payee_key(ledger_account_id=ledger_id)


def label_of_account(number: str, bank: str = "") -> str:
    """How staff see a listed account: masked, with its bank."""
    masked = mask_card("".join(number.split()))
    return f"{bank} {masked}" if bank else masked


def target(
    conn: Connection,
    vault: Vault,
    *,
    account: str | None = None,
    bank: str = "",
    customer_id: int | None = None,
    device_hash: str | None = None,
    ip: str | None = None,
    merchant_id: int | None = None,
) -> tuple[str, str]:
    """(key, label) of exactly one thing to list: an account (ours, or another bank's with its
    bank code), a customer, a device (its keyed hash), an IP address or a merchant."""
    given = [v for v in (account, customer_id, device_hash, ip, merchant_id) if v is not None]
    if len(given) != 1:
        raise EbankError("INVALID_INPUT", reason="name exactly one thing to put on the list")
    if account is not None:
        return key_of_account(conn, vault, number=account, bank=bank), label_of_account(
            account, bank
        )
    if customer_id is not None:
        return f"c:{customer_id}", f"customer {customer_id}"
    if merchant_id is not None:
        return f"m:{merchant_id}", f"merchant {merchant_id}"
    if device_hash is not None:
        if not re.fullmatch(r"[0-9a-f]{64}", device_hash):
            raise EbankError("INVALID_INPUT", reason="a device is named by its 64-hex keyed hash")
        return f"d:{device_hash}", f"device {device_hash[:8]}…"
    try:
        address = str(ipaddress.ip_address(str(ip)))
    except ValueError:
        raise EbankError("INVALID_INPUT", reason="not an IP address") from None
    return f"ip:{address}", address


def _check_add(tx: Tx, params: dict[str, Any]) -> str:
    if set(params) != {"list", "key", "label"}:
        raise EbankError("INVALID_INPUT", reason="a list entry names the list, key and label")
    if params["list"] not in LISTS:
        raise EbankError("INVALID_INPUT", reason=f"a list is one of {LISTS}")
    key, label = params["key"], params["label"]
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise EbankError("INVALID_INPUT", reason="not a risk key (acct:, ext:, c:, d:, ip:, m:)")
    if not isinstance(label, str) or not 0 < len(label) <= 100 or not label.isprintable():
        raise EbankError("INVALID_INPUT", reason="a label is 1-100 printable characters")
    if _live(tx.conn, params["list"], key) is not None:
        raise EbankError("RISK_LIST_ENTRY_EXISTS")
    return f"risk_list:{params['list']}:{key}"


def _live(conn: Connection, list_: str, key: str) -> int | None:
    e = risk_list_entries
    return conn.execute(
        select(e.c.id).where(e.c.list == list_, e.c.key == key, e.c.removed_at.is_(None))
    ).scalar()


def add(tx: Tx, *, list_: str, key: str, label: str, reason: str, maker: str, checker: str) -> int:
    """Put a key on a list (the approved change; a trusted feed may call it directly). A
    police-listed account of ours is suspended at once."""
    _check_add(tx, {"list": list_, "key": key, "label": label})
    entry_id = tx.conn.execute(
        risk_list_entries.insert().values(
            list=list_, key=key, label=label, reason=reason[:500], added_by=maker,
            approved_by=checker, added_at=tx.now,
        )
    ).inserted_primary_key[0]  # fmt: skip
    suspended = None
    if list_ == "police" and key.startswith("acct:"):
        account_id = int(key.removeprefix("acct:"))
        if _status(tx, account_id) in _SUSPENDABLE:
            ledger.set_status(tx, account_id=account_id, status="suspended")
            suspended = account_id
    audit.record(
        tx, actor=checker, action="risk.list.add", subject=f"risk_list:{list_}:{key}",
        channel="console",
        detail={"entry": entry_id, "label": label, "maker": maker, "suspended": suspended},
    )  # fmt: skip
    return int(entry_id)


def _status(tx: Tx, account_id: int) -> str | None:
    return tx.conn.execute(
        select(ledger_accounts.c.status).where(ledger_accounts.c.id == account_id)
    ).scalar()


def _approve_add(tx: Tx, params: dict[str, Any], checker: str) -> int:
    request = approved_request(tx, "risk.list.add", params, checker)
    return add(
        tx, list_=params["list"], key=params["key"], label=params["label"],
        reason=request.reason, maker=request.maker, checker=checker,
    )  # fmt: skip


def _check_remove(tx: Tx, params: dict[str, Any]) -> str:
    if set(params) != {"entry"} or type(params["entry"]) is not int:
        raise EbankError("INVALID_INPUT", reason="a removal names the entry by its id")
    entry = get_entry(tx.conn, params["entry"])
    if entry.removed_at is not None:
        raise EbankError("RISK_LIST_ENTRY_NOT_FOUND")
    return f"risk_list:{entry.list}:{entry.key}"


def _approve_remove(tx: Tx, params: dict[str, Any], checker: str) -> int:
    subject = _check_remove(tx, params)
    e = risk_list_entries
    tx.conn.execute(
        e.update().where(e.c.id == params["entry"]).values(removed_by=checker, removed_at=tx.now)
    )
    audit.record(tx, actor=checker, action="risk.list.remove", subject=subject,
                 channel="console", detail={"entry": params["entry"]})  # fmt: skip
    return int(params["entry"])


approvals.register("risk.list.add", _approve_add, subject=_check_add)
approvals.register("risk.list.remove", _approve_remove, subject=_check_remove)


def propose_add(
    list_: str, key: str, label: str, *, reason: str, maker: str, channel: str = "console"
) -> Command[int]:
    """Ask for a key to go on a list; another member of staff approves it."""
    params = {"list": list_, "key": key, "label": label}
    return approvals.propose("risk.list.add", params, reason=reason, maker=maker, channel=channel)


def propose_remove(
    entry_id: int, *, reason: str, maker: str, channel: str = "console"
) -> Command[int]:
    return approvals.propose(
        "risk.list.remove", {"entry": entry_id}, reason=reason, maker=maker, channel=channel
    )


def _entry(row: Any) -> ListEntry:
    return ListEntry(
        row["id"], row["list"], row["key"], row["label"], row["reason"], row["added_by"],
        row["approved_by"], as_utc(row["added_at"]), row["removed_by"],
        None if row["removed_at"] is None else as_utc(row["removed_at"]),
    )  # fmt: skip


def get_entry(conn: Connection, entry_id: int) -> ListEntry:
    row = (
        conn.execute(select(risk_list_entries).where(risk_list_entries.c.id == entry_id))
        .mappings()
        .first()
    )
    if row is None:
        raise EbankError("RISK_LIST_ENTRY_NOT_FOUND")
    return _entry(row)


def entries(
    conn: Connection, list_: str, *, before: int | None = None, limit: int = 50
) -> list[ListEntry]:
    """The live entries of a list, newest first."""
    e = risk_list_entries
    query = (
        select(e).where(e.c.list == list_, e.c.removed_at.is_(None))
        .order_by(e.c.id.desc()).limit(limit)
    )  # fmt: skip
    if before is not None:
        query = query.where(e.c.id < before)
    return [_entry(row) for row in conn.execute(query).mappings()]
