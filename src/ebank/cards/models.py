"""Card value types."""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class CardStatus(StrEnum):
    ACTIVE = "active"
    REPORTED_LOST = "reported_lost"  # 挂失: final; the customer gets a replacement card
    FROZEN = "frozen"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Card:
    id: int
    customer_id: int
    kind: str
    masked: str
    ledger_account_id: int
    expires: date
    status: str


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """What the bank hands over once, at issue: the full number is in no other answer."""

    card: Card
    number: str
