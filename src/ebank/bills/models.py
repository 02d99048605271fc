"""Bill payment value types: billers, bills as a biller shows them, what a biller answers when
asked to take a payment, and what the customer asks for and sees."""

from dataclasses import dataclass
from datetime import date, datetime

from ebank.core.crypto import mask_phone

CATEGORIES = ("electricity", "water", "gas", "phone", "cable_tv")
# What a payment is for, on the customer's statement and receipt.
CATEGORY_NAMES = {
    "electricity": "电费", "water": "水费", "gas": "燃气费", "phone": "话费充值",
    "cable_tv": "有线电视费",
}  # fmt: skip
# A phone top-up is for any of these amounts (fen): ¥10, 20, 30, 50, 100, 200, 300, 500.
TOPUP_AMOUNTS = (1_000, 2_000, 3_000, 5_000, 10_000, 20_000, 30_000, 50_000)
STATUSES = ("pending_biller", "paid", "refunded")


@dataclass(frozen=True, slots=True)
class Biller:
    id: int
    code: str
    name_zh: str
    name_en: str
    category: str
    adapter: str
    active: bool
    ledger_account_id: int

    @property
    def has_bills(self) -> bool:
        """Utilities send bills, paid in full; a phone is topped up by a chosen amount."""
        return self.category != "phone"

    @property
    def topup_amounts(self) -> tuple[int, ...]:
        """The amounts a top-up may be; () for a biller with bills."""
        return () if self.has_bills else TOPUP_AMOUNTS

    def mask(self, number: str) -> str:
        """The customer's number here as screens and receipts show it: a mobile number as
        phones are masked, a household's number down to its last four digits."""
        return mask_phone(number) if not self.has_bills else "*" * (len(number) - 4) + number[-4:]


@dataclass(frozen=True, slots=True)
class Bill:
    """A bill as the biller shows it."""

    bill_id: str
    period: str  # YYYY-MM
    amount: int  # fen, due in full
    holder: str  # the account holder's name, masked by the biller
    due_date: date
    paid: bool


# What a biller answers when asked to take a payment: exactly one of three.
@dataclass(frozen=True, slots=True)
class BillerReceipt:
    """It took the payment."""

    confirmation: str  # the biller's number for it


@dataclass(frozen=True, slots=True)
class BillerRefusal:
    """It will never take this payment: the customer gets the money back."""

    code: str  # an error code of ours that tells the customer why (core/errors.py)


@dataclass(frozen=True, slots=True)
class BillerUnknown:
    """No answer (a timeout, a broken connection): ask again with the same reference."""

    reason: str


PayOutcome = BillerReceipt | BillerRefusal | BillerUnknown


@dataclass(frozen=True, slots=True)
class Inquiry:
    """What the customer sees before paying: the bills (none for a phone, which is topped up
    by one of `biller.topup_amounts`)."""

    biller: Biller
    number: str
    bills: tuple[Bill, ...]


@dataclass(frozen=True, slots=True)
class BillPaymentRequest:
    """A bill payment as the customer described it, before anything is checked."""

    customer_id: int
    channel: str
    from_account: str  # the paying account's number; it must be the customer's
    biller: str  # the biller's code
    number: str  # the customer's number at the biller (户号, or the mobile number)
    amount: int  # fen: the bill's amount, or one of TOPUP_AMOUNTS
    bill_id: str | None = None  # the bill paid, from the inquiry; None for a top-up


@dataclass(frozen=True, slots=True)
class BillPaymentView:
    payment_id: int
    reference: str  # the payment's, which the biller was given too
    biller: str
    biller_name_zh: str
    biller_name_en: str
    category: str
    number: str  # masked
    bill_id: str | None
    period: str | None
    amount: int
    status: str  # pending_biller | paid | refunded
    confirmation: str | None
    failure_code: str | None
    receipt_number: str | None
    created_at: datetime
    settled_at: datetime | None
