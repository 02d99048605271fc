"""The API's request and response bodies.

Requests are strict (no coercion: a number is not a string, a string is not a number) and
refuse unknown fields; sizes are bounded here, the rules themselves are the domain's.
Responses carry amounts as decimal strings with the currency's exact digits, and personal
numbers masked: the full card number appears once, in the answer that issues the card.
"""

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ebank.accounts.models import CustomerAccount
from ebank.cards.models import Card, IssuedCard
from ebank.core.money import format_minor
from ebank.core.settings import get_settings
from ebank.customers.models import CustomerView
from ebank.ledger.models import StatementLine
from ebank.ops.approvals import Approval
from ebank.ops.staff import StaffMember
from ebank.security.devices import Device
from ebank.security.sessions import Session, Started

MAX_ID = 2**63 - 1


class In(BaseModel):
    """A request body: strict types, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


def text(limit: int, description: str = "") -> Any:
    return Field(max_length=limit, description=description)


Amount = Annotated[str, text(24, 'An amount in CNY with its exact digits, e.g. "5000.00"')]


# -- errors -----------------------------------------------------------------------------------
class ErrorOut(BaseModel):
    code: str = Field(description="Stable error code (see core/errors.py)")
    message: str = Field(description="In Chinese, or English if Accept-Language prefers it")
    details: dict[str, object]


ERRORS = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "INVALID_INPUT, INVALID_AMOUNT: the request is malformed; nothing was done"),
        (401, "AUTH_REQUIRED, SESSION_EXPIRED, AUTH_FAILED...: log in (again)"),
        (403, "FORBIDDEN: not allowed for this caller or role"),
        (404, "*_NOT_FOUND: no such object, or not yours"),
    )
}


# -- sessions and logins ----------------------------------------------------------------------
DEVICE_NAME = "Mobile only: a name for this device when it is not bound yet; the login binds it"


class LoginIn(In):
    login: Annotated[str, text(32, "Resident ID number or mobile number")]
    password: Annotated[str, text(128)]
    channel: Literal["online", "mobile"] = "online"
    send_sms: bool = Field(
        False, deprecated=True,
        description="Ignored: the bank texts the code when the customer has no usable token "
        "(see `factor`); a token holder asks for it with /auth/login/sms",
    )  # fmt: skip
    device_name: Annotated[str | None, text(30, DEVICE_NAME)] = None


class ChallengeOut(BaseModel):
    challenge: str = Field(description="Pass to /auth/login/verify with a code, once")
    factors: list[Literal["sms", "token"]] = Field(
        description="The second factors the customer can confirm with now"
    )
    factor: Literal["sms", "token"] = Field(
        description="What step 2 asks for: 'token' when the customer's token can confirm (no "
        "SMS was sent; /auth/login/sms texts one instead), otherwise 'sms' (sent)"
    )
    sms_sent: bool
    expires_at: datetime
    binds_device: bool = Field(
        description="This login binds the device: finish it with the SMS code just sent and "
        "the same device_name"
    )


class LoginCodeIn(In):
    challenge: Annotated[str, text(100)]


class VerifyIn(In):
    challenge: Annotated[str, text(100)]
    factor: Literal["sms", "token"]
    code: Annotated[str, text(16, "The 6-digit SMS or token code")]
    device_name: Annotated[str | None, text(30, DEVICE_NAME)] = None


class SessionOut(BaseModel):
    id: int
    channel: str
    started_at: datetime
    last_seen_at: datetime
    current: bool = False

    @classmethod
    def of(cls, session: Session, current_id: int | None = None) -> "SessionOut":
        return cls(
            id=session.id, channel=session.channel, started_at=session.started_at,
            last_seen_at=session.last_seen_at, current=session.id == current_id,
        )  # fmt: skip


class SessionsOut(BaseModel):
    sessions: list[SessionOut]


class DeviceOut(BaseModel):
    id: int
    label: str
    bound_at: datetime
    last_seen_at: datetime

    @classmethod
    def of(cls, device: Device) -> "DeviceOut":
        return cls(id=device.id, label=device.label, bound_at=device.bound_at,
                   last_seen_at=device.last_seen_at)  # fmt: skip


class DevicesOut(BaseModel):
    devices: list[DeviceOut]


class TokenOut(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'; shown once")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    session: SessionOut
    idle_timeout_seconds: int
    expires_at: datetime = Field(description="The absolute end, however active the session")


def handed_over(started: Started) -> dict[str, Any]:
    """The fields of the answer that hands a new session's token over."""
    settings = get_settings()
    session = started.session
    return {
        "token": started.token,
        "session": SessionOut.of(session, session.id),
        "idle_timeout_seconds": settings.session_idle_seconds,
        "expires_at": session.started_at + timedelta(hours=settings.session_absolute_hours),
    }


class StaffLoginIn(In):
    username: Annotated[str, text(64)]
    password: Annotated[str, text(128)]


class StaffOut(BaseModel):
    id: int
    username: str
    name: str
    roles: list[str]

    @classmethod
    def of(cls, member: StaffMember) -> "StaffOut":
        return cls(id=member.id, username=member.username, name=member.name,
                   roles=list(member.roles))  # fmt: skip


class StaffTokenOut(TokenOut):
    staff: StaffOut


# -- customers ----------------------------------------------------------------------------------
class CustomerOut(BaseModel):
    id: int
    kind: Literal["individual", "enterprise"]
    name: str
    id_number_masked: str
    mobile_masked: str
    legal_representative: str | None
    created_at: datetime

    @classmethod
    def of(cls, view: CustomerView) -> "CustomerOut":
        return cls(
            id=view.id, kind=view.kind, name=view.name, id_number_masked=view.id_number_masked,
            mobile_masked=view.mobile_masked, legal_representative=view.legal_representative,
            created_at=view.created_at,
        )  # fmt: skip


class CustomersOut(BaseModel):
    customers: list[CustomerOut]


class IndividualIn(In):
    name: Annotated[str, text(100)]
    id_number: Annotated[str, text(32, "Resident ID (GB 11643), 18 characters")]
    mobile: Annotated[str, text(20)]


class EnterpriseIn(In):
    name: Annotated[str, text(100)]
    credit_code: Annotated[str, text(32, "Unified social credit code (GB 32100)")]
    legal_representative: Annotated[str, text(100)]
    mobile: Annotated[str, text(20)]


class CustomerSearchIn(In):
    """One of: an identity number (with the kind of customer), or a mobile number."""

    id_number: Annotated[str | None, text(32)] = None
    kind: Literal["individual", "enterprise"] = "individual"
    mobile: Annotated[str | None, text(20)] = None

    @model_validator(mode="after")
    def one_key(self) -> "CustomerSearchIn":
        if (self.id_number is None) == (self.mobile is None):
            raise ValueError("give either id_number or mobile")
        return self


# -- accounts -----------------------------------------------------------------------------------
class AccountOut(BaseModel):
    number: str
    product: Literal["demand", "term"]
    tier: Literal["I", "II", "III", "corporate"]
    currency: str
    status: str
    balance: str = Field(examples=["1234.50"])
    available: str = Field(examples=["1234.50"])
    maturity_date: date | None
    rate_bp: int | None = Field(description="Term deposits: the rate in basis points")

    @classmethod
    def of(cls, account: CustomerAccount) -> "AccountOut":
        return cls(
            number=account.number, product=account.product, tier=account.tier,
            currency=account.currency, status=account.status,
            balance=format_minor(account.balance, account.currency),
            available=format_minor(account.available, account.currency),
            maturity_date=account.maturity_date, rate_bp=account.rate_bp,
        )  # fmt: skip


class AccountsOut(BaseModel):
    accounts: list[AccountOut]


class OpenAccountIn(In):
    product: Literal["demand", "term"] = "demand"
    tier: Literal["I", "II", "III", "corporate"]
    currency: Annotated[str, text(3)] = "CNY"
    term_months: Annotated[int | None, Field(ge=1, le=600)] = None
    rate_bp: Annotated[int | None, Field(ge=0, le=10_000)] = None


class StatementLineOut(BaseModel):
    reference: str = Field(examples=["E202611230000001234"])
    kind: str
    memo: str
    side: Literal["D", "C"] = Field(description="C: money in; D: money out")
    amount: str
    balance_after: str
    posted_at: datetime

    @classmethod
    def of(cls, line: StatementLine, currency: str) -> "StatementLineOut":
        return cls(
            reference=line.reference, kind=line.kind, memo=line.memo, side=line.side,
            amount=format_minor(line.amount, currency),
            balance_after=format_minor(line.balance_after, currency), posted_at=line.posted_at,
        )  # fmt: skip


class StatementOut(BaseModel):
    account: str
    currency: str
    lines: list[StatementLineOut]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page")


# -- cards --------------------------------------------------------------------------------------
class CardOut(BaseModel):
    id: int
    kind: Literal["debit", "credit"]
    masked_number: str = Field(examples=["621799******0016"])
    expires: date
    status: Literal["active", "reported_lost", "frozen", "closed"]

    @classmethod
    def of(cls, card: Card) -> "CardOut":
        return cls(
            id=card.id, kind=card.kind, masked_number=card.masked, expires=card.expires,
            status=card.status,
        )  # fmt: skip


class CardsOut(BaseModel):
    cards: list[CardOut]


class IssueDebitCardIn(In):
    kind: Literal["debit"]
    account_number: Annotated[str, text(32, "The customer's active demand account")]


class IssueCreditCardIn(In):
    kind: Literal["credit"]
    credit_line: Annotated[str, text(24, 'The limit in CNY, e.g. "50000.00"')]


IssueCardIn = Annotated[IssueDebitCardIn | IssueCreditCardIn, Field(discriminator="kind")]


class IssuedCardOut(BaseModel):
    card: CardOut
    number: str = Field(description="The full number: shown in this answer only")

    @classmethod
    def of(cls, issued: IssuedCard) -> "IssuedCardOut":
        return cls(card=CardOut.of(issued.card), number=issued.number)


class CustomerFileOut(BaseModel):
    """What a teller sees of a customer: the record, the accounts, the cards (masked)."""

    customer: CustomerOut
    accounts: list[AccountOut]
    cards: list[CardOut]


# -- credentials --------------------------------------------------------------------------------
class SecretIn(In):
    secret: Annotated[str, text(128, "The new login password or transaction PIN")]


class TokenEnrolledOut(BaseModel):
    otpauth_uri: str = Field(description="For the authenticator app's QR code; shown once")


# -- maker-checker ------------------------------------------------------------------------------
ParamValue = Annotated[str, text(64)] | Annotated[int, Field(ge=0, le=MAX_ID)]


class ProposalIn(In):
    action: Annotated[str, text(64, "e.g. account.freeze, card.close, credential.unlock")]
    params: Annotated[
        dict[Annotated[str, text(32)], ParamValue],
        Field(max_length=8, description='e.g. {"account": "6217..."}, {"card": 12}'),
    ]
    reason: Annotated[str, text(500)]


class DecisionIn(In):
    note: Annotated[str, text(500)] = ""


class ApprovalOut(BaseModel):
    id: int
    action: str
    subject: str
    params: dict[str, str | int]
    reason: str
    maker: str
    made_at: datetime
    status: Literal["pending", "approved", "rejected"]
    checker: str | None
    note: str | None

    @classmethod
    def of(cls, approval: Approval) -> "ApprovalOut":
        return cls(
            id=approval.id, action=approval.action, subject=approval.subject,
            params=approval.params, reason=approval.reason, maker=approval.maker,
            made_at=approval.made_at, status=approval.status,
            checker=approval.checker, note=approval.note,
        )  # fmt: skip


class ApprovalsOut(BaseModel):
    approvals: list[ApprovalOut]
