"""The API of the payee book, standing orders and direct-debit mandates, for customers; and of
direct debits, for the enterprise that collects under them.

Each arrangement is confirmed the way its bank page confirms it: a payee by the SMS code sent
for exactly that payee (`/me/payees/sms-code`, then `POST /me/payees`); a standing order like a
transfer of its amount to its payee (`quote`, then `sms-code` or `signing` if the factor asks,
then `POST /me/standing-orders` with the factor: the same body at every step); a mandate by the
SMS code sent for exactly it. A creditor, logged in to corporate banking, debits with
`POST /corporate/direct-debits` under one of the mandates it holds
(`GET /corporate/direct-debits/mandates`); no factor is asked per debit.
"""

import re
from datetime import date, datetime, time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from ebank.channels.api.auth import (
    CustomerPrincipal,
    OperatorSession,
    current_customer,
    current_operator,
)
from ebank.channels.api.common import IdempotencyKey, ObjectId, read, vault_of, write
from ebank.channels.api.errors import language_of
from ebank.channels.api.payments import CodeSentOut, ConfirmationIn, SigningOut
from ebank.channels.api.schemas import ERRORS, MAX_ID, Amount, ErrorOut, In, text
from ebank.core.clock import business_date
from ebank.core.errors import EbankError
from ebank.core.money import format_minor, parse_minor
from ebank.security import sessions
from ebank.standing import mandates, orders, payees
from ebank.standing.models import (
    Creditor,
    DebitView,
    MandateRequest,
    MandateView,
    OrderRequest,
    OrderView,
    PayeeView,
    Schedule,
)

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
Op = Annotated[OperatorSession, Depends(current_operator)]
PAYEES, ORDERS, MANDATES = "customer: payees", "customer: standing orders", "customer: mandates"
CREDITOR = "creditor: direct debits"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
Day = Annotated[str, text(10, 'A business day in Shanghai, "2026-11-30"')]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _today(request: Request) -> date:
    return business_date(request.app.state.clock.now())


def _day(value: str, what: str) -> date:
    try:
        if _DAY.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise EbankError("INVALID_INPUT", reason=f"{what} is a date such as 2026-11-30")


# -- payees ---------------------------------------------------------------------------------------
class PayeeIn(In):
    account: Annotated[str, text(34, "The payee's account or card number")]
    name: Annotated[str, text(100, "The payee's name, as the account is held")]
    bank: Annotated[
        str | None, text(12, "The payee bank's 12-digit code; omit for an account at this bank")
    ] = None


class NewPayeeIn(PayeeIn):
    alias: Annotated[str, text(30, "What I call this payee")] = ""
    code: Annotated[str, text(16, "The SMS code sent for this payee")]


class PayeeOut(BaseModel):
    id: int
    name: str
    account: str = Field(description="Masked")
    bank: str | None
    alias: str
    created_at: datetime

    @classmethod
    def of(cls, view: PayeeView) -> "PayeeOut":
        return cls(
            id=view.id, name=view.name, account=view.account, bank=view.bank, alias=view.alias,
            created_at=view.created_at,
        )  # fmt: skip


class PayeesOut(BaseModel):
    payees: list[PayeeOut]


@router.get("/me/payees", tags=[PAYEES], summary="My payee book")
async def my_payees(request: Request, me: Me) -> PayeesOut:
    views = await read(request, lambda conn: payees.payees_of(conn, me.customer_id))
    return PayeesOut(payees=[PayeeOut.of(v) for v in views])


@router.post("/me/payees/sms-code", tags=[PAYEES],
             summary="Text me a code that adds exactly this payee")  # fmt: skip
async def payee_code(request: Request, me: Me, body: PayeeIn) -> CodeSentOut:
    issued = await write(
        request,
        payees.send_code(
            vault_of(request), customer_id=me.customer_id, account=body.account, name=body.name,
            bank=body.bank,
        ),
    )  # fmt: skip
    return CodeSentOut(sms_sent=True, expires_at=issued.expires_at)


@router.post("/me/payees", tags=[PAYEES], status_code=201,
             summary="Add a payee, with the code sent for it")  # fmt: skip
async def add_payee(request: Request, me: Me, body: NewPayeeIn, key: IdempotencyKey) -> PayeeOut:
    vault = vault_of(request)
    added = await write(
        request,
        payees.add(
            vault, customer_id=me.customer_id, channel=me.channel, account=body.account,
            name=body.name, bank=body.bank, alias=body.alias, code=body.code, idempotency_key=key,
            origin=me.origin,
        ),
    )  # fmt: skip
    payee_id = added.value()
    entry = await read(
        request,
        lambda conn: payees.entry(conn, vault, customer_id=me.customer_id, payee_id=payee_id),
    )
    return PayeeOut.of(entry.view)


@router.delete("/me/payees/{payee_id}", tags=[PAYEES], status_code=204, response_class=Response,
               summary="Remove a payee from my book")  # fmt: skip
async def remove_payee(request: Request, me: Me, payee_id: ObjectId) -> None:
    """Removing again is harmless; a payee my standing orders still pay is 409
    PAYEE_ENTRY_IN_USE; someone else's is 404 PAYEE_ENTRY_NOT_FOUND."""
    await write(
        request, payees.remove(customer_id=me.customer_id, payee_id=payee_id, channel=me.channel)
    )


# -- standing orders ------------------------------------------------------------------------------
class OrderIn(In):
    payee_id: Id
    from_account: Annotated[str, text(34, "One of my account numbers")]
    amount: Amount
    memo: Annotated[str, text(60, "附言: shown to the payee")] = ""
    frequency: Literal["once", "daily", "weekly", "monthly"]
    start_on: Day
    time: Annotated[str, text(5, 'The time of day it runs, in Shanghai: "09:00"')]
    day: Annotated[
        int | None, Field(ge=1, le=31, description="weekly: 1 (Monday)-7; monthly: 1-31, the "
                          "31st runs on a short month's last day")
    ] = None  # fmt: skip
    end_on: Day | None = None
    count: Annotated[int | None, Field(ge=1, le=1000, description="At most this many runs")] = None

    def request(self, me: CustomerPrincipal) -> OrderRequest:
        if not _TIME.fullmatch(self.time):
            raise EbankError("INVALID_INPUT", reason='a time of day is "HH:MM"')
        schedule = Schedule(
            self.frequency, _day(self.start_on, "start_on"), time.fromisoformat(self.time),
            self.day, None if self.end_on is None else _day(self.end_on, "end_on"), self.count,
        )  # fmt: skip
        return OrderRequest(
            customer_id=me.customer_id, channel=me.channel, payee_id=self.payee_id,
            from_account=self.from_account, amount=parse_minor(self.amount), schedule=schedule,
            memo=self.memo,
        )  # fmt: skip


class ConfirmedOrderIn(ConfirmationIn, OrderIn):
    pass


class OrderQuoteOut(BaseModel):
    kind: Literal["own", "intra", "interbank"]
    factors: list[str] = Field(
        description="Factors that would confirm it, weakest first; empty: none is needed"
    )
    large_warning: bool = Field(
        description="A transfer of this amount today would warn: confirm with "
        "large_confirmed=true, which stands for every run"
    )
    first_run_at: datetime


class RunOut(BaseModel):
    due_on: date
    outcome: Literal["paid", "failed"]
    payment_id: int | None = Field(description="The payment under /me/payments, if paid")
    failure: ErrorOut | None = Field(description="Why it was not paid, and what to do")
    ran_at: datetime


class OrderOut(BaseModel):
    id: int
    payee: PayeeOut
    from_account: str
    amount: str
    currency: str
    memo: str
    frequency: str
    start_on: date
    time: str
    day: int | None
    end_on: date | None
    count: int | None
    method: str | None = Field(description="The factor that confirmed it")
    status: Literal["active", "finished", "cancelled"]
    runs: int = Field(description="Runs so far, paid or failed")
    next_run_at: datetime | None
    last_run: RunOut | None
    created_at: datetime

    @classmethod
    def of(cls, view: OrderView, lang: str) -> "OrderOut":
        s, last = view.schedule, view.last
        run = None
        if last is not None:
            failure = None
            if last.failure_code is not None:
                failure = ErrorOut(**EbankError(last.failure_code).to_dict(lang))
            run = RunOut(
                due_on=last.due_on, outcome="failed" if failure else "paid",
                payment_id=last.payment_id, failure=failure, ran_at=last.ran_at,
            )  # fmt: skip
        return cls(
            id=view.id, payee=PayeeOut.of(view.payee), from_account=view.from_account,
            amount=format_minor(view.amount, view.currency), currency=view.currency,
            memo=view.memo, frequency=s.frequency, start_on=s.start_on,
            time=s.at.strftime("%H:%M"), day=s.day, end_on=s.end_on, count=s.count,
            method=view.method, status=view.status, runs=view.runs,
            next_run_at=view.next_run_at, last_run=run, created_at=view.created_at,
        )  # fmt: skip


class OrdersOut(BaseModel):
    orders: list[OrderOut]


@router.post("/me/standing-orders/quote", tags=[ORDERS],
             summary="Step 1: what setting this order up will take")  # fmt: skip
async def quote_order(request: Request, me: Me, body: OrderIn) -> OrderQuoteOut:
    asked, vault, now = body.request(me), vault_of(request), request.app.state.clock.now()
    found = await read(request, lambda conn: orders.quote(conn, vault, asked, now=now))
    return OrderQuoteOut(
        kind=found.kind, factors=list(found.methods), large_warning=found.large_warning,
        first_run_at=found.first_run_at,
    )  # fmt: skip


@router.post("/me/standing-orders/sms-code", tags=[ORDERS],
             summary="Text me a code for exactly this order")  # fmt: skip
async def order_code(request: Request, me: Me, body: OrderIn) -> CodeSentOut:
    issued = await write(request, orders.send_code(vault_of(request), body.request(me)))
    return CodeSentOut(sms_sent=True, expires_at=issued.expires_at)


@router.post("/me/standing-orders/signing", tags=[ORDERS],
             summary="What my USB key signs to confirm exactly this order")  # fmt: skip
async def order_signing(request: Request, me: Me, body: OrderIn) -> SigningOut:
    return SigningOut.of(
        await write(request, orders.start_signing(vault_of(request), body.request(me)))
    )


async def _order(request: Request, me: CustomerPrincipal, order_id: int) -> OrderOut:
    view = await read(
        request,
        lambda conn: orders.order_of(conn, customer_id=me.customer_id, order_id=order_id),
    )
    return OrderOut.of(view, language_of(request))


@router.post("/me/standing-orders", tags=[ORDERS], status_code=201,
             summary="Step 2: set the order up, confirmed by the factor")  # fmt: skip
async def create_order(
    request: Request, me: Me, body: ConfirmedOrderIn, key: IdempotencyKey
) -> OrderOut:
    made = await write(
        request,
        orders.create(
            vault_of(request), body.request(me), body.confirmation(), idempotency_key=key
        ),
    )
    return await _order(request, me, made.value())


@router.get("/me/standing-orders", tags=[ORDERS],
            summary="My standing orders, with their next run and last result")  # fmt: skip
async def my_orders(request: Request, me: Me) -> OrdersOut:
    views = await read(request, lambda conn: orders.orders_of(conn, me.customer_id))
    return OrdersOut(orders=[OrderOut.of(v, language_of(request)) for v in views])


@router.get("/me/standing-orders/{order_id}", tags=[ORDERS], summary="One of my orders")
async def my_order(request: Request, me: Me, order_id: ObjectId) -> OrderOut:
    return await _order(request, me, order_id)


@router.post("/me/standing-orders/{order_id}/cancel", tags=[ORDERS],
             summary="Cancel an order: nothing runs after this")  # fmt: skip
async def cancel_order(request: Request, me: Me, order_id: ObjectId) -> OrderOut:
    await write(
        request, orders.cancel(customer_id=me.customer_id, order_id=order_id, channel=me.channel)
    )
    return await _order(request, me, order_id)


# -- mandates -------------------------------------------------------------------------------------
class MandateIn(In):
    account: Annotated[str, text(34, "My account the creditor debits")]
    creditor_account: Annotated[
        str | None, text(34, "The enterprise's settlement account at this bank; or give biller")
    ] = None
    biller: Annotated[str | None, text(12, "A biller's code (GET /billers); or give "
                                           "creditor_account")] = None  # fmt: skip
    max_amount: Annotated[str, text(24, 'The most one debit may take, e.g. "300.00"')]
    frequency: Literal["any", "monthly", "yearly"] = Field(
        description="monthly, yearly: at most one debit per calendar month or year"
    )
    valid_until: Day

    def request(self, me: CustomerPrincipal) -> MandateRequest:
        return MandateRequest(
            customer_id=me.customer_id, channel=me.channel, account=self.account,
            max_amount=parse_minor(self.max_amount), frequency=self.frequency,
            valid_until=_day(self.valid_until, "valid_until"),
            creditor_account=self.creditor_account, biller=self.biller,
        )  # fmt: skip


class SignMandateIn(MandateIn):
    code: Annotated[str, text(16, "The SMS code sent for this mandate")]


class MandateOut(BaseModel):
    id: int
    account: str = Field(description="The paying account: masked to the creditor")
    debtor_name: str = Field(description="Masked")
    creditor_name: str
    creditor_account: str | None = Field(description="Masked")
    biller: str | None
    max_amount: str
    currency: str
    frequency: Literal["any", "monthly", "yearly"]
    valid_until: date
    status: Literal["active", "revoked", "expired"]
    created_at: datetime
    revoked_at: datetime | None
    last_debit_at: datetime | None

    @classmethod
    def of(cls, v: MandateView) -> "MandateOut":
        return cls(
            id=v.id, account=v.account, debtor_name=v.debtor_name, creditor_name=v.creditor_name,
            creditor_account=v.creditor_account, biller=v.biller,
            max_amount=format_minor(v.max_amount, v.currency), currency=v.currency,
            frequency=v.frequency, valid_until=v.valid_until, status=v.status,
            created_at=v.created_at, revoked_at=v.revoked_at, last_debit_at=v.last_debit_at,
        )  # fmt: skip


class MandatesOut(BaseModel):
    mandates: list[MandateOut]


async def _mandate(request: Request, me: CustomerPrincipal, mandate_id: int) -> MandateOut:
    today = _today(request)
    view = await read(
        request,
        lambda conn: mandates.mandate_of(
            conn, customer_id=me.customer_id, mandate_id=mandate_id, today=today
        ),
    )
    return MandateOut.of(view)


@router.post("/me/mandates/sms-code", tags=[MANDATES],
             summary="Text me a code that signs exactly this mandate")  # fmt: skip
async def mandate_code(request: Request, me: Me, body: MandateIn) -> CodeSentOut:
    issued = await write(request, mandates.send_code(vault_of(request), body.request(me)))
    return CodeSentOut(sms_sent=True, expires_at=issued.expires_at)


@router.post("/me/mandates", tags=[MANDATES], status_code=201,
             summary="Sign a direct-debit mandate, with the code sent for it")  # fmt: skip
async def sign_mandate(
    request: Request, me: Me, body: SignMandateIn, key: IdempotencyKey
) -> MandateOut:
    signed = await write(
        request,
        mandates.sign(vault_of(request), body.request(me), code=body.code, idempotency_key=key),
    )
    return await _mandate(request, me, signed.value())


@router.get("/me/mandates", tags=[MANDATES], summary="The mandates I signed")
async def my_mandates(request: Request, me: Me) -> MandatesOut:
    today = _today(request)
    views = await read(
        request, lambda conn: mandates.mandates_of(conn, me.customer_id, today=today)
    )
    return MandatesOut(mandates=[MandateOut.of(v) for v in views])


@router.post("/me/mandates/{mandate_id}/revoke", tags=[MANDATES],
             summary="Revoke a mandate, effective at once")  # fmt: skip
async def revoke_mandate(request: Request, me: Me, mandate_id: ObjectId) -> MandateOut:
    await write(
        request,
        mandates.revoke(customer_id=me.customer_id, mandate_id=mandate_id, channel=me.channel),
    )
    return await _mandate(request, me, mandate_id)


# -- the creditor's side --------------------------------------------------------------------------
def _require_maker(me: OperatorSession) -> None:
    """Collecting money is a maker's business (经办)."""
    if "maker" not in me.operator.roles:
        raise EbankError("FORBIDDEN")


class DebitIn(In):
    mandate_id: Id
    amount: Amount
    reference: Annotated[
        str, text(64, "My reference for this debit (an invoice or bill number); the same "
                  "reference again is the same debit")
    ]  # fmt: skip


class DebitOut(BaseModel):
    id: int
    mandate_id: int
    reference: str
    amount: str
    payment_reference: str = Field(description="The bank's, on the customer's statement")
    created_at: datetime

    @classmethod
    def of(cls, view: DebitView) -> "DebitOut":
        return cls(
            id=view.id, mandate_id=view.mandate_id, reference=view.reference,
            amount=format_minor(view.amount), payment_reference=view.payment_reference,
            created_at=view.created_at,
        )  # fmt: skip


@router.get("/corporate/direct-debits/mandates", tags=[CREDITOR],
            summary="The mandates customers gave us (their accounts masked)")  # fmt: skip
async def mandates_given_to_me(request: Request, me: Op) -> MandatesOut:
    today = _today(request)
    creditor_id = me.operator.customer_id
    views = await read(request, lambda conn: mandates.mandates_for(conn, creditor_id, today=today))
    return MandatesOut(mandates=[MandateOut.of(v) for v in views])


@router.post("/corporate/direct-debits", tags=[CREDITOR], status_code=201,
             summary="Debit a customer's account under a mandate we hold")  # fmt: skip
async def direct_debit(request: Request, me: Op, body: DebitIn, key: IdempotencyKey) -> DebitOut:
    _require_maker(me)
    creditor = Creditor(customer_id=me.operator.customer_id)
    debit_id = await write(
        request,
        mandates.debit(
            vault_of(request), creditor=creditor, mandate_id=body.mandate_id,
            amount=parse_minor(body.amount), reference=body.reference, idempotency_key=key,
            channel=sessions.OPERATOR_CHANNEL,
        ),
    )  # fmt: skip
    view = await read(
        request, lambda conn: mandates.debit_of(conn, creditor=creditor, debit_id=debit_id)
    )
    return DebitOut.of(view)
