"""What the gateway answers with: orders, refunds and the pay page's view of an order."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as the merchant asked for it, before anything is checked."""

    merchant_id: int
    out_trade_no: str
    amount: int  # fen
    mode: str  # instant | escrow | authorise
    subject: str
    return_url: str
    notify_url: str
    currency: str = "CNY"
    expire_minutes: int = 30  # the buyer must pay within this
    confirm_days: int = 10  # escrow: released to the merchant this long after payment
    auth_days: int = 7  # authorise: how long the hold on the buyer's account lasts


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    trade_no: str
    merchant_id: int
    merchant_no: str
    out_trade_no: str
    mode: str
    amount: int
    currency: str
    subject: str
    status: str
    return_url: str
    notify_url: str
    expires_at: datetime
    paid_amount: int  # fen that reached the merchant (or escrow)
    refunded_amount: int  # fen refunded, or asked for and waiting for review
    funding: str | None  # debit | credit, once paid
    buyer_id: int | None
    paid_at: datetime | None
    release_at: datetime | None  # escrow: released then; authorise: the hold ends then
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RefundView:
    id: int
    refund_no: str
    order_id: int
    trade_no: str
    out_trade_no: str
    out_refund_no: str
    amount: int
    reason: str
    status: str  # requested | rejected | succeeded
    requested_by: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class Checkout:
    """What the pay page shows before the buyer logs in."""

    trade_no: str
    merchant_name: str
    subject: str
    amount: int
    currency: str
    mode: str
    status: str
    expires_at: datetime
    return_url: str


@dataclass(frozen=True, slots=True)
class PayCard:
    """A card the buyer may pay with, and the factors the limits would accept for it."""

    card_id: int
    kind: str  # debit | credit
    masked: str
    methods: tuple[str, ...]  # "pin" alone is enough when it is listed; () when refused
    refusal: str | None  # the error code when no factor would do


@dataclass(frozen=True, slots=True)
class Payment:
    """How the buyer pays an order: the card, the transaction PIN, and the factor the limits
    asked for on top (None where the PIN alone is enough)."""

    token: str
    customer_id: int
    channel: str  # online | mobile
    card_id: int
    pin: str
    method: str | None = None  # sms | token | certificate
    code: str | None = None
    challenge_id: int | None = None
    signature: str | None = None
