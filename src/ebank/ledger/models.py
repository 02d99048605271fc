"""Ledger value types."""

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from ebank.core.clock import business_date

_REFERENCE = re.compile(r"([EHPW])(\d{8})(\d{10})")


def reference(prefix: str, row_id: int, created_at: datetime | date) -> str:
    """What a customer quotes for an entry (E), hold (H), payment (P) or payroll batch (W):
    kind, business day, number."""
    day = created_at if type(created_at) is date else business_date(created_at)  # type: ignore[arg-type]
    return f"{prefix}{_day_digits(day)}{row_id:010d}"


@functools.lru_cache(maxsize=64)
def _day_digits(day: date) -> str:
    """YYYYMMDD; cached, as `strftime` costs more than the rest of a reference."""
    return f"{day:%Y%m%d}"


def parse_reference(text: str) -> tuple[str, date, int] | None:
    """(prefix, business day, id) of a reference, or None when it is not one."""
    match = _REFERENCE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    prefix, day, number = match.groups()
    try:
        parsed = date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        return None
    return prefix, parsed, int(number)


class Status(StrEnum):
    """What each status forbids is decided in one place: `service._check_status`."""

    ACTIVE = "active"
    DORMANT = "dormant"  # no customer activity for long: receives, pays nothing
    FROZEN = "frozen"  # by staff or a court: receives, pays nothing (只收不付)
    SUSPENDED = "suspended"  # police-designated (涉案): no non-counter business at all
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a journal entry: debit (D) or credit (C) an account by a positive amount."""

    account_id: int
    side: str
    amount: int


@dataclass(frozen=True, slots=True)
class EntryResult:
    id: int
    reference: str


@dataclass(frozen=True, slots=True)
class HoldResult:
    id: int
    reference: str
    remaining: int
    status: str


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    code: str
    name: str
    kind: str
    currency: str
    normal_side: str
    status: str
    credit_line: int
    overdraft_allowed: bool
    balance: int
    held: int
    ceiling: int | None = None

    @property
    def available(self) -> int:
        """What the holder may spend: balance less holds plus any credit line."""
        return self.balance - self.held + self.credit_line


@dataclass(frozen=True, slots=True)
class Posting:
    account_id: int
    account_code: str
    currency: str
    side: str
    amount: int
    balance_after: int


@dataclass(frozen=True, slots=True)
class EntryView:
    id: int
    reference: str
    kind: str
    memo: str
    created_at: datetime
    reverses_id: int | None
    reversed_by_id: int | None
    hold_id: int | None
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True)
class HoldView:
    id: int
    reference: str
    account_id: int
    amount: int
    remaining: int
    status: str
    memo: str
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StatementLine:
    posting_id: int
    entry_id: int
    reference: str
    kind: str
    memo: str
    side: str
    amount: int
    balance_after: int
    posted_at: datetime


@dataclass(frozen=True, slots=True)
class StatementPage:
    lines: tuple[StatementLine, ...]
    next_cursor: str | None
