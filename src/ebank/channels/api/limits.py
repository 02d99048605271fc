"""The API of enrolment (签约) and limits, for customers and for staff at the counter.

Customers see their enrolments with the agreed limits and today's use, lower or (with their
token) raise a limit, leave a channel, and ask before paying which factor a payment will need.
Online self-enrolment runs without a session: card number and PIN, then the SMS code. Staff
enrol customers at the counter and read the bank's parameters; changing one is the
maker-checker action `parameter.set` (POST /api/v1/staff/approvals).
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from ebank.channels.api.auth import CustomerPrincipal, StaffPrincipal, current_customer, staff_role
from ebank.channels.api.common import ObjectId, read, vault_of, write
from ebank.channels.api.errors import language_of
from ebank.channels.api.schemas import ERRORS, Amount, ErrorOut, In, text
from ebank.core.clock import business_date
from ebank.core.money import format_minor, parse_minor
from ebank.enrolment import service as enrolment
from ebank.enrolment.service import Enrolment
from ebank.limits import parameters as limit_parameters
from ebank.limits import service as limits
from ebank.limits.tables import limit_usage
from ebank.ops import parameters, staff

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
Counter = Annotated[StaffPrincipal, Depends(staff_role(*staff.COUNTER))]
Lookup = Annotated[StaffPrincipal, Depends(staff_role(*staff.LOOKUP))]
Channel = Annotated[Literal["online", "mobile", "phone", "sms"], Path()]


def _cny(fen: int) -> str:
    return format_minor(fen, "CNY")


class EnrolmentOut(BaseModel):
    channel: str
    assurance: Literal["counter", "self"] = Field(
        description="counter: identity checked by staff; self: enrolled online (low limits)"
    )
    daily_limit: str
    per_payment_limit: str
    bank_daily_maximum: str = Field(description="The most this enrolment may agree, a day")
    bank_per_payment_maximum: str
    enrolled_at: datetime


class EnrolmentsOut(BaseModel):
    enrolments: list[EnrolmentOut]


def _enrolment_out(
    conn: Connection, enrolled: Enrolment, bank: limit_parameters.Limits | None = None
) -> EnrolmentOut:
    bank = bank or limit_parameters.load(conn)
    top = bank.channel_maximum(enrolled.channel, enrolled.assurance)
    return EnrolmentOut(
        channel=enrolled.channel, assurance=enrolled.assurance,  # type: ignore[arg-type]
        daily_limit=_cny(enrolled.daily_limit), per_payment_limit=_cny(enrolled.per_payment_limit),
        bank_daily_maximum=_cny(top[0]), bank_per_payment_maximum=_cny(top[1]),
        enrolled_at=enrolled.enrolled_at,
    )  # fmt: skip


def _enrolments_out(conn: Connection, customer_id: int) -> EnrolmentsOut:
    held, bank = enrolment.enrolments_of(conn, customer_id), limit_parameters.load(conn)
    return EnrolmentsOut(enrolments=[_enrolment_out(conn, e, bank) for e in held])


# -- the customer's own ------------------------------------------------------------------------
@router.get("/me/enrolments", tags=["customer: limits"], summary="My channels and limits")
async def my_enrolments(request: Request, me: Me) -> EnrolmentsOut:
    return await read(request, lambda conn: _enrolments_out(conn, me.customer_id))


class LimitsIn(In):
    daily_limit: Amount
    per_payment_limit: Amount
    token_code: Annotated[str | None, text(16, "Needed to raise a limit")] = None


@router.put("/me/enrolments/{channel}/limits", tags=["customer: limits"],
            summary="Change my agreed limits on a channel")  # fmt: skip
async def set_my_limits(request: Request, me: Me, channel: Channel, body: LimitsIn) -> EnrolmentOut:
    """Lowering needs nothing more; raising needs a token code, and never passes the bank's
    maximum for how the customer enrolled."""
    done = await write(
        request,
        enrolment.set_limits(
            vault_of(request), customer_id=me.customer_id, channel=channel,
            daily_limit=parse_minor(body.daily_limit), token_code=body.token_code, via=me.channel,
            per_payment_limit=parse_minor(body.per_payment_limit), origin=me.origin,
        ),
    )  # fmt: skip
    changed = done.value()
    return await read(request, lambda conn: _enrolment_out(conn, changed))


@router.delete("/me/enrolments/{channel}", tags=["customer: limits"], status_code=204,
               response_class=Response, summary="Leave a channel (解约)")  # fmt: skip
async def leave_channel(request: Request, me: Me, channel: Channel) -> None:
    await write(
        request,
        enrolment.cancel(
            customer_id=me.customer_id, channel=channel, actor=me.actor, via=me.channel
        ),
    )


class UsageOut(BaseModel):
    scope: str = Field(description='e.g. "channel:online", "method:sms", "others", "account:7"')
    period: str = Field(description="A business day (YYYY-MM-DD) or a year (YYYY)")
    amount: str
    payments: int


class MyLimitsOut(BaseModel):
    business_day: str
    bank_limits: dict[str, str] = Field(description="The bank's limits now, by parameter name")
    usage: list[UsageOut] = Field(description="What has been paid out today and this year")


def _my_limits(conn: Connection, customer_id: int, now: datetime) -> MyLimitsOut:
    day = business_date(now)
    rows = conn.execute(
        select(limit_usage)
        .where(
            limit_usage.c.customer_id == customer_id,
            limit_usage.c.period.in_([day.isoformat(), str(day.year)]),
        )
        .order_by(limit_usage.c.scope, limit_usage.c.period)
    ).mappings()
    bank = parameters.values(conn, "limits.")
    return MyLimitsOut(
        business_day=day.isoformat(),
        bank_limits={name: _cny(value) for name, value in bank.items()},
        usage=[UsageOut(scope=r["scope"], period=r["period"], amount=_cny(r["amount"]),
                        payments=r["payments"]) for r in rows],
    )  # fmt: skip


@router.get("/me/limits", tags=["customer: limits"], summary="The bank's limits and my use")
async def my_limits(request: Request, me: Me) -> MyLimitsOut:
    now = request.app.state.clock.now()
    return await read(request, lambda conn: _my_limits(conn, me.customer_id, now))


class AssessIn(In):
    from_account: Annotated[str, text(32)]
    amount: Amount
    kind: Literal["transfer", "bill", "ecommerce"] = "transfer"
    payee_account: Annotated[str | None, text(34, "The payee's account, if at this bank")] = None


class AssessmentOut(BaseModel):
    factors: list[str] = Field(
        description="Factors that would let it through, weakest first; empty with no refusal: "
        "none needed (own accounts)"
    )
    large_warning: bool = Field(description="The customer must confirm a large-transfer warning")
    refusal: ErrorOut | None = Field(description="Why no factor would let it through")


@router.post("/me/payments/assess", tags=["customer: limits"],
             summary="What a payment would need, before confirming it")  # fmt: skip
async def assess(request: Request, me: Me, body: AssessIn) -> AssessmentOut:
    payment = limits.Payment(
        customer_id=me.customer_id, channel=me.channel, kind=body.kind,
        from_account=body.from_account, amount=parse_minor(body.amount),
        payee_account=body.payee_account,
    )  # fmt: skip
    now = request.app.state.clock.now()
    found = await read(request, lambda conn: limits.assess(conn, payment, now=now))
    lang = language_of(request)
    refusal = None if found.refusal is None else ErrorOut(**found.refusal.to_dict(lang))
    return AssessmentOut(
        factors=list(found.methods), large_warning=found.large_warning, refusal=refusal
    )


# -- online self-enrolment (no session yet) ---------------------------------------------------
class SelfEnrolBeginIn(In):
    card_number: Annotated[str, text(32)]
    pin: Annotated[str, text(16, "The card's 6-digit PIN")]
    channel: Literal["online", "mobile"] = "online"


class CodeSentOut(BaseModel):
    sms_sent: bool
    expires_at: datetime


@router.post("/enrolment/self/begin", tags=["customer: enrolment"],
             summary="Self-enrolment step 1: card and PIN; an SMS code is sent")  # fmt: skip
async def begin_self_enrolment(request: Request, body: SelfEnrolBeginIn) -> CodeSentOut:
    step = await write(
        request,
        enrolment.begin_self_enrolment(
            vault_of(request), card_number=body.card_number, pin=body.pin, channel=body.channel
        ),
    )
    return CodeSentOut(sms_sent=True, expires_at=step.value().expires_at)


class SelfEnrolCompleteIn(In):
    card_number: Annotated[str, text(32)]
    code: Annotated[str, text(16, "The SMS code")]
    login_password: Annotated[str, text(128, "The login password to set")]
    channel: Literal["online", "mobile"] = "online"


@router.post("/enrolment/self/complete", tags=["customer: enrolment"],
             summary="Self-enrolment step 2: the SMS code and a login password")  # fmt: skip
async def complete_self_enrolment(request: Request, body: SelfEnrolCompleteIn) -> EnrolmentOut:
    step = await write(
        request,
        enrolment.complete_self_enrolment(
            vault_of(request), card_number=body.card_number, code=body.code,
            login_password=body.login_password, channel=body.channel,
        ),
    )  # fmt: skip
    enrolled = step.value()
    return await read(request, lambda conn: _enrolment_out(conn, enrolled))


# -- staff at the counter ------------------------------------------------------------------------
class CounterEnrolIn(In):
    daily_limit: Amount | None = None
    per_payment_limit: Amount | None = None


@router.put("/staff/customers/{customer_id}/enrolments/{channel}", tags=["staff: enrolment"],
            summary="Enrol a customer at the counter (or again, to change the limits)")  # fmt: skip
async def enrol_at_counter(
    request: Request, me: Counter, customer_id: ObjectId, channel: Channel, body: CounterEnrolIn
) -> EnrolmentOut:
    """Limits not given are the bank's maximum for the channel."""
    enrolled = await write(
        request,
        enrolment.enrol_at_counter(
            customer_id=customer_id, channel=channel, actor=me.actor,
            daily_limit=None if body.daily_limit is None else parse_minor(body.daily_limit),
            per_payment_limit=None if body.per_payment_limit is None
            else parse_minor(body.per_payment_limit),
        ),
    )  # fmt: skip
    return await read(request, lambda conn: _enrolment_out(conn, enrolled))


@router.get("/staff/customers/{customer_id}/enrolments", tags=["staff: enrolment"],
            summary="A customer's channels and limits")  # fmt: skip
async def customer_enrolments(request: Request, me: Lookup, customer_id: ObjectId) -> EnrolmentsOut:
    return await read(request, lambda conn: _enrolments_out(conn, customer_id))


@router.delete("/staff/customers/{customer_id}/enrolments/{channel}", tags=["staff: enrolment"],
               status_code=204, response_class=Response, summary="End an enrolment")  # fmt: skip
async def cancel_enrolment(
    request: Request, me: Counter, customer_id: ObjectId, channel: Channel
) -> None:
    await write(
        request,
        enrolment.cancel(customer_id=customer_id, channel=channel, actor=me.actor, via="counter"),
    )


class ParameterOut(BaseModel):
    name: str
    value: int = Field(description="an integer in the parameter's unit")
    default: int
    meaning: str
    unit: parameters.Unit = Field(description="fen (an amount of CNY) or days")


class ParametersOut(BaseModel):
    parameters: list[ParameterOut]


def _parameters(conn: Connection) -> ParametersOut:
    now = parameters.values(conn, "")
    return ParametersOut(parameters=[
        ParameterOut(name=p.name, value=now[p.name], default=p.default, meaning=p.meaning,
                     unit=p.unit)
        for p in parameters.defined()
    ])  # fmt: skip


@router.get("/staff/parameters", tags=["staff: parameters"],
            summary="The bank's parameters; change one with the action parameter.set")  # fmt: skip
async def bank_parameters(request: Request, me: Lookup) -> ParametersOut:
    return await read(request, _parameters)
