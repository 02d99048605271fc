"""The API of bill payment (代缴费), for customers: the billers, bill inquiry, paying a bill or
topping up a phone, and the history of what was paid.

Paying takes the steps a transfer takes: `POST /me/bills/inquire` shows the bills, then after
`sms-code` or `signing` if the factor asks for it, `POST /me/bills/pay` with the factor pays.
The same body goes to every step, so a code or signature made for another account, biller,
number or amount confirms nothing. The money leaves the account at once; the biller is told
afterwards, and the payment's status says what it answered: `pending_biller`, then `paid`
(with the biller's confirmation number and a receipt) or `refunded` (the money is back).
"""

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ebank.bills import service as bills
from ebank.bills.models import Bill, Biller, BillPaymentRequest, BillPaymentView
from ebank.channels.api.auth import CustomerPrincipal, current_customer
from ebank.channels.api.common import (
    Before,
    IdempotencyKey,
    ObjectId,
    PageSize,
    read,
    vault_of,
    write,
)
from ebank.channels.api.errors import language_of
from ebank.channels.api.payments import CodeSentOut, ConfirmationIn, SigningOut
from ebank.channels.api.schemas import ERRORS, Amount, ErrorOut, In, text
from ebank.core.errors import EbankError
from ebank.core.money import format_minor, parse_minor

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
Category = Literal["electricity", "water", "gas", "phone", "cable_tv"]


class BillerOut(BaseModel):
    code: str = Field(description="What to send as `biller`")
    name_zh: str
    name_en: str
    category: Category
    topup_amounts: list[str] = Field(
        description="A phone is topped up by one of these amounts; empty for a biller with bills"
    )

    @classmethod
    def of(cls, biller: Biller) -> "BillerOut":
        return cls(
            code=biller.code, name_zh=biller.name_zh, name_en=biller.name_en,
            category=biller.category,
            topup_amounts=[format_minor(a) for a in biller.topup_amounts],
        )  # fmt: skip


class BillersOut(BaseModel):
    billers: list[BillerOut]


class InquiryIn(In):
    biller: Annotated[str, text(12, "The biller's code")]
    number: Annotated[str, text(24, "My number at the biller (户号), or the mobile number")]


class BillOut(BaseModel):
    bill_id: str = Field(description="What to send as `bill_id` to pay it")
    period: str = Field(description="The month billed, YYYY-MM")
    amount: str = Field(description="Due in full")
    holder: str = Field(description="The account holder at the biller, masked")
    due_date: date
    paid: bool

    @classmethod
    def of(cls, bill: Bill) -> "BillOut":
        return cls(
            bill_id=bill.bill_id, period=bill.period, amount=format_minor(bill.amount),
            holder=bill.holder, due_date=bill.due_date, paid=bill.paid,
        )  # fmt: skip


class InquiryOut(BaseModel):
    biller: BillerOut
    number: str
    bills: list[BillOut] = Field(description="None for a phone: top it up by an amount offered")


class BillIn(In):
    from_account: Annotated[str, text(34, "One of my account numbers")]
    biller: Annotated[str, text(12, "The biller's code")]
    number: Annotated[str, text(24, "My number at the biller (户号), or the mobile number")]
    bill_id: Annotated[str | None, text(40, "The bill paid, from the inquiry; omit to top up")] = (
        None
    )
    amount: Amount

    def request(self, me: CustomerPrincipal) -> BillPaymentRequest:
        return BillPaymentRequest(
            customer_id=me.customer_id, channel=me.channel, from_account=self.from_account,
            biller=self.biller, number=self.number, amount=parse_minor(self.amount),
            bill_id=self.bill_id,
        )  # fmt: skip


class ConfirmedBillIn(ConfirmationIn, BillIn):
    pass


class BillPaymentOut(BaseModel):
    payment_id: int = Field(description="Also the payment's id under /me/payments")
    reference: str = Field(description="What to quote to the bank; the biller was given it too")
    biller: str
    biller_name_zh: str
    biller_name_en: str
    category: Category
    number: str = Field(description="Masked")
    bill_id: str | None
    period: str | None
    amount: str
    status: Literal["pending_biller", "paid", "refunded"] = Field(
        description="pending_biller: paid by you, the biller not yet told or not yet answered; "
        "paid: the biller confirmed; refunded: the biller refused and the money is back"
    )
    confirmation: str | None = Field(description="The biller's number for it, once paid")
    failure: ErrorOut | None = Field(description="Why it was refunded, and what to do")
    receipt_number: str | None = Field(description="The receipt (/me/receipts/...), once paid")
    created_at: datetime
    settled_at: datetime | None

    @classmethod
    def of(cls, view: BillPaymentView, lang: str) -> "BillPaymentOut":
        failure = None
        if view.failure_code is not None:
            failure = ErrorOut(**EbankError(view.failure_code).to_dict(lang))
        return cls(
            payment_id=view.payment_id, reference=view.reference, biller=view.biller,
            biller_name_zh=view.biller_name_zh, biller_name_en=view.biller_name_en,
            category=view.category,
            number=view.number, bill_id=view.bill_id, period=view.period,
            amount=format_minor(view.amount), status=view.status,
            confirmation=view.confirmation, failure=failure,
            receipt_number=view.receipt_number, created_at=view.created_at,
            settled_at=view.settled_at,
        )  # fmt: skip


class BillPaymentsOut(BaseModel):
    payments: list[BillPaymentOut]


@router.get("/billers", tags=["customer: bills"], summary="The billers I can pay (no login)")
async def list_billers(request: Request) -> BillersOut:
    found = await read(request, bills.billers)
    return BillersOut(billers=[BillerOut.of(b) for b in found])


@router.post(
    "/me/bills/inquire",
    tags=["customer: bills"],
    summary="My bills at a biller, by my number there",
)
async def inquire(request: Request, me: Me, body: InquiryIn) -> InquiryOut:
    clock = request.app.state.clock
    found = await read(
        request, lambda conn: bills.inquire(conn, clock, biller=body.biller, number=body.number)
    )
    return InquiryOut(
        biller=BillerOut.of(found.biller), number=found.number,
        bills=[BillOut.of(b) for b in found.bills],
    )  # fmt: skip


@router.post(
    "/me/bills/sms-code",
    tags=["customer: bills"],
    summary="Text me a code for exactly this payment",
)
async def send_code(request: Request, me: Me, body: BillIn) -> CodeSentOut:
    issued = await write(request, bills.send_code(vault_of(request), body.request(me)))
    return CodeSentOut(sms_sent=True, expires_at=issued.expires_at)


@router.post("/me/bills/signing", tags=["customer: bills"],
             summary="What my USB key signs to confirm exactly this payment")  # fmt: skip
async def start_signing(request: Request, me: Me, body: BillIn) -> SigningOut:
    return SigningOut.of(await write(request, bills.start_signing(body.request(me))))


async def _mine(request: Request, me: CustomerPrincipal, payment_id: int) -> BillPaymentOut:
    view = await read(
        request,
        lambda conn: bills.bill_payment_of(conn, customer_id=me.customer_id, payment_id=payment_id),
    )
    return BillPaymentOut.of(view, language_of(request))


@router.post("/me/bills/pay", tags=["customer: bills"], status_code=201,
             summary="Pay the bill or top up the phone, confirmed by the factor")  # fmt: skip
async def pay(
    request: Request, me: Me, body: ConfirmedBillIn, key: IdempotencyKey
) -> BillPaymentOut:
    command = bills.pay(
        vault_of(request), request.app.state.clock, body.request(me), body.confirmation(),
        idempotency_key=key,
    )  # fmt: skip
    made = await write(request, command)
    return await _mine(request, me, made.value())


@router.get(
    "/me/bills/payments", tags=["customer: bills"], summary="My bill payments, newest first"
)
async def my_bill_payments(
    request: Request,
    me: Me,
    before: Before = None,
    limit: PageSize = 50,
) -> BillPaymentsOut:
    views = await read(
        request,
        lambda conn: bills.bill_payments_of(conn, me.customer_id, before_id=before, limit=limit),
    )
    return BillPaymentsOut(payments=[BillPaymentOut.of(v, language_of(request)) for v in views])


@router.get(
    "/me/bills/payments/{payment_id}", tags=["customer: bills"], summary="One of my bill payments"
)
async def my_bill_payment(request: Request, me: Me, payment_id: ObjectId) -> BillPaymentOut:
    return await _mine(request, me, payment_id)
