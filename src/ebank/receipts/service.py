"""Issuing receipts inside the payment's own command, fetching them for their owner, and
verifying them for anybody who holds one.

The verification code is a keyed hash (HMAC under the bank's data key) of the receipt's whole
content, written as 16 characters of an alphabet without 0/O/1/I. The bank stores only a keyed
hash of the code. Checking a code finds the receipt by that hash and derives the code again
from what is stored: a receipt whose row was altered (amount, payee, time...) derives another
code and no longer verifies. Nobody without the data key can make a code for a receipt.
"""

import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.core.clock import as_utc, business_date, business_day_bounds
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.writer import Tx
from ebank.ledger.models import reference
from ebank.receipts.models import Receipt, ReceiptData, ReceiptView, masked_view
from ebank.receipts.tables import receipts

log = logging.getLogger(__name__)

ACCOUNT_PURPOSE = "receipts.account"
CONTENT_PURPOSE = "receipts.content"  # the HMAC a code is made of
CODE_PURPOSE = "receipts.code"  # the stored look-up hash of a code
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols, none to misread: no 0 O 1 I
CODE_LENGTH = 16  # 80 bits
MAX_PAGE = 200  # receipts listed at once
# What a person may type: the symbols in either case (ASCII only), and dashes.
_TYPED_CODE = re.compile(f"[{ALPHABET}{ALPHABET.lower()}-]{{{CODE_LENGTH},{CODE_LENGTH + 3}}}")
_NUMBER = re.compile(r"R(\d{8})(\d{10})")
_DATA_COLUMNS = (
    "source", "customer_id", "payer_name", "payee_name", "payee_bank", "amount", "purpose",
    "channel", "reference", "completed_at", "currency", "payer_enterprise", "payee_enterprise",
)  # fmt: skip


def receipt_number(receipt_id: int, issued_at: datetime) -> str:
    """R, the business day of issue, the 10-digit id: derived, like the ledger's references."""
    return reference("R", receipt_id, as_utc(issued_at))


def _code(vault: Vault, receipt_id: int, issued_at: datetime, data: ReceiptData) -> str:
    """The verification code: a keyed hash of everything the receipt says, 16 symbols."""
    content = {name: getattr(data, name) for name in _DATA_COLUMNS}
    content |= {
        "v": 1, "id": receipt_id, "issued_at": as_utc(issued_at).isoformat(),
        "completed_at": as_utc(data.completed_at).isoformat(),
        "payer_account": data.payer_account, "payee_account": data.payee_account,
    }  # fmt: skip
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    bits = int(vault.lookup_hash(blob, purpose=CONTENT_PURPOSE)[: CODE_LENGTH * 5 // 4], 16)
    symbols = [ALPHABET[(bits >> (5 * i)) & 31] for i in reversed(range(CODE_LENGTH))]
    return "-".join("".join(symbols[i : i + 4]) for i in range(0, CODE_LENGTH, 4))


def _code_hash(vault: Vault, code: str) -> str:
    return vault.lookup_hash(code.replace("-", ""), purpose=CODE_PURPOSE)


def _receipt(vault: Vault, receipt_id: int, issued_at: datetime, data: ReceiptData) -> Receipt:
    return Receipt(
        id=receipt_id,
        source=data.source,
        customer_id=data.customer_id,
        view=masked_view(receipt_number(receipt_id, issued_at), data),
        purpose=data.purpose,
        channel=data.channel,
        reference=data.reference,
        issued_at=as_utc(issued_at),
        code=_code(vault, receipt_id, issued_at, data),
    )


def _open(vault: Vault, row: Any) -> Receipt | None:
    """The receipt a row holds; None when its content no longer derives its code."""
    try:
        data = ReceiptData(
            **{name: row[name] for name in _DATA_COLUMNS if name != "completed_at"},
            completed_at=as_utc(row["completed_at"]),
            payer_account=vault.decrypt(row["payer_account_sealed"], purpose=ACCOUNT_PURPOSE),
            payee_account=vault.decrypt(row["payee_account_sealed"], purpose=ACCOUNT_PURPOSE),
        )
    except (ValueError, EbankError):
        return None  # a ciphertext or a value that is not what the bank wrote
    receipt = _receipt(vault, row["id"], row["issued_at"], data)
    if not hmac.compare_digest(_code_hash(vault, receipt.code), row["code_hash"]):
        return None
    return receipt


def _intact(vault: Vault, row: Any) -> Receipt:
    """The receipt a row holds; never one whose code would not verify."""
    receipt = _open(vault, row)
    if receipt is None:
        log.error("receipt %s no longer matches its verification code", row["id"])
        raise EbankError("RECEIPT_UNAVAILABLE")
    return receipt


def _owned(vault: Vault, row: Any, customer_id: int) -> Receipt:
    if row is None or row["customer_id"] != customer_id:
        raise EbankError("RECEIPT_NOT_FOUND")  # someone else's answers like none
    return _intact(vault, row)


def _by_source(conn: Connection, source: str) -> Any:
    return conn.execute(select(receipts).where(receipts.c.source == source)).mappings().first()


def issue_receipt(tx: Tx, vault: Vault, data: ReceiptData) -> Receipt:
    """The receipt of a completed payment, inside the payment's own (SQL) command: one row
    written, no PDF made.

    Idempotent on `data.source`: a second call returns the receipt first issued, unchanged.
    """
    existing = _by_source(tx.conn, data.source)
    if existing is not None:
        return _intact(vault, existing)
    receipt_id = tx.new_id("receipts")
    receipt = _receipt(vault, receipt_id, tx.now, data)
    row = {name: getattr(data, name) for name in _DATA_COLUMNS}
    row |= {
        "id": receipt_id,
        "issued_at": tx.now,
        "payer_account_sealed": vault.encrypt(data.payer_account, purpose=ACCOUNT_PURPOSE),
        "payee_account_sealed": vault.encrypt(data.payee_account, purpose=ACCOUNT_PURPOSE),
        "code_hash": _code_hash(vault, receipt.code),
    }
    tx.conn.execute(receipts.insert().values(row))
    return receipt


def receipt_for(conn: Connection, vault: Vault, source: str, customer_id: int) -> Receipt:
    """The receipt for a payment, for its payer only (RECEIPT_NOT_FOUND for anybody else)."""
    return _owned(vault, _by_source(conn, source), customer_id)


def receipt_numbered(conn: Connection, vault: Vault, number: str, customer_id: int) -> Receipt:
    """The receipt with this number, for its payer only; a number with the wrong day is none."""
    match = _NUMBER.fullmatch(number) if isinstance(number, str) else None
    row = None
    if match is not None:
        query = select(receipts).where(receipts.c.id == int(match[2]))
        row = conn.execute(query).mappings().first()
        if row is not None and f"{business_date(as_utc(row['issued_at'])):%Y%m%d}" != match[1]:
            row = None
    return _owned(vault, row, customer_id)


@dataclass(frozen=True, slots=True)
class ReceiptPage:
    receipts: list[Receipt]
    older: int | None  # pass as `before` for the next page; None on the last one


def receipts_of(
    conn: Connection, vault: Vault, customer_id: int, *, since: date | None = None,
    until: date | None = None, before: int | None = None, limit: int = 20,
) -> ReceiptPage:  # fmt: skip
    """The customer's own receipts, newest first, issued on business days `since` to `until`
    (both included; either open); page with `older`.

    A receipt whose row no longer derives its code is left out (and logged), as every fetch
    refuses it; the page still goes on past it.
    """
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise EbankError("INVALID_INPUT", reason=f"a page is 1 to {MAX_PAGE} receipts")
    query = select(receipts).where(receipts.c.customer_id == customer_id)
    if since is not None:
        query = query.where(receipts.c.issued_at >= business_day_bounds(since)[0])
    if until is not None:
        query = query.where(receipts.c.issued_at < business_day_bounds(until)[1])
    if before is not None:
        query = query.where(receipts.c.id < before)
    rows = conn.execute(query.order_by(receipts.c.id.desc()).limit(limit)).mappings().all()
    kept = []
    for row in rows:
        receipt = _open(vault, row)
        if receipt is None:
            log.error("receipt %s no longer matches its verification code", row["id"])
        else:
            kept.append(receipt)
    return ReceiptPage(kept, rows[-1]["id"] if len(rows) == limit else None)


def normalise_code(typed: object) -> str | None:
    """The 16 symbols of a typed code, any case, with or without its dashes.

    INVALID_INPUT for text that is not 16-19 characters of the alphabet and dashes; None for
    text of the right characters that still is not 16 symbols (it names no receipt).
    """
    if not isinstance(typed, str) or not _TYPED_CODE.fullmatch(typed):
        raise EbankError(
            "INVALID_INPUT", reason=f"a verification code is {CODE_LENGTH} letters and digits"
        )
    symbols = typed.upper().replace("-", "")
    return symbols if len(symbols) == CODE_LENGTH else None


def verify(conn: Connection, vault: Vault, code: str) -> ReceiptView | None:
    """What a receipt shows, masked, if `code` is the code of a receipt whose content still
    derives it; else None. Open to anybody: the code is the proof of holding the receipt."""
    symbols = normalise_code(code)
    if symbols is None:
        return None
    query = select(receipts).where(receipts.c.code_hash == _code_hash(vault, symbols))
    row = conn.execute(query).mappings().first()
    receipt = None if row is None else _open(vault, row)
    return None if receipt is None else receipt.view
