"""What a customer asks the payments service for, and what they get back."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A transfer as the customer described it, before anything is checked."""

    customer_id: int
    channel: str
    from_account: str  # the paying account's number; it must be the customer's
    payee_account: str
    payee_name: str  # must match the payee account's holder at this bank
    amount: int  # fen
    payee_bank: str | None = None  # another bank's 12-digit code; None: this bank
    currency: str = "CNY"
    speed: str = "realtime"  # realtime | normal (after 2 h) | next_day | delayed (24 h)
    memo: str = ""


@dataclass(frozen=True, slots=True)
class Confirmation:
    """How the customer confirmed it: the factor the limits service asked for, if any."""

    method: str | None = None  # sms | token | certificate | pin
    code: str | None = None  # the SMS or token code, or the PIN
    challenge_id: int | None = None  # certificate: the signing challenge
    signature: str | None = None  # certificate: base64 DER ECDSA over the challenge
    large_confirmed: bool = False  # the customer confirmed the large-transfer warning


@dataclass(frozen=True, slots=True)
class Quote:
    """What confirming a transfer (or a bill payment) will take, shown before the customer
    confirms."""

    kind: str  # own | intra | interbank | bill
    payee_name: str  # as the bank will send it
    methods: tuple[str, ...]  # factors that would let it through, weakest first; () for none
    large_warning: bool
    due_at: datetime  # when it will be sent


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: int
    reference: str
    kind: str
    status: str
    channel: str
    from_account: str
    payee_account: str  # masked
    payee_name: str
    payee_bank: str | None
    amount: int
    currency: str
    speed: str
    memo: str
    method: str | None
    due_at: datetime
    created_at: datetime
    failure_code: str | None
    revocable: bool
