"""Account value types and the tier rules (PBOC 2016 No. 261)."""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Product(StrEnum):
    DEMAND = "demand"  # 活期
    TERM = "term"  # 定期


class Tier(StrEnum):
    I = "I"  # noqa: E741 — the regulation's name: full account, one per person per bank
    II = "II"  # no cash; limited payments to unbound accounts
    III = "III"  # small balance and small payments
    CORPORATE = "corporate"  # an enterprise's settlement account


# A Type III account holds at most ¥2,000 (a default the bank may change).
TYPE_III_CEILING = 200_000


@dataclass(frozen=True, slots=True)
class CustomerAccount:
    id: int
    customer_id: int
    number: str
    ledger_account_id: int
    product: str
    tier: str
    currency: str
    status: str
    balance: int
    available: int
    maturity_date: date | None
    rate_bp: int | None
