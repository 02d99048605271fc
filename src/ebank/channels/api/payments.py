"""The API of transfers, for customers (online and mobile banking) and the staff's queue of
transfers that failed or whose outcome is not yet known.

A transfer takes two calls, as on the bank's pages: `POST /me/transfers/quote` says which
factor it needs (and checks the payee), then, after `sms-code` or `signing` if the factor asks
for it, `POST /me/transfers` with the factor makes it. The same body goes to every step, so
what the customer confirms is exactly what was quoted: an SMS code or a signature made for
other details does not confirm it.
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ebank.channels.api.auth import CustomerPrincipal, StaffPrincipal, current_customer, staff_role
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
from ebank.channels.api.receipts import ReceiptOut
from ebank.channels.api.schemas import ERRORS, Amount, ErrorOut, In, text
from ebank.core.errors import EbankError
from ebank.core.money import format_minor, parse_minor
from ebank.ops import staff
from ebank.payments import service as payments
from ebank.payments.models import Confirmation, PaymentView, TransferRequest
from ebank.security.certificates import SigningChallenge

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
Lookup = Annotated[StaffPrincipal, Depends(staff_role(*staff.LOOKUP))]


class TransferIn(In):
    from_account: Annotated[str, text(34, "One of my account numbers")]
    payee_account: Annotated[str, text(34, "The payee's account or card number")]
    payee_name: Annotated[str, text(100, "The payee's name, as the account is held")]
    payee_bank: Annotated[
        str | None, text(12, "The payee bank's 12-digit code; omit for an account at this bank")
    ] = None
    amount: Amount
    speed: Literal["realtime", "normal", "next_day", "delayed"] = Field(
        "realtime",
        description="realtime; normal: sent after 2 hours; next_day: at 09:00 the next day; "
        "delayed: after 24 hours. All but realtime can be revoked until sent",
    )
    memo: Annotated[str, text(60, "附言: shown to the payee")] = ""

    def request(self, me: CustomerPrincipal) -> TransferRequest:
        return TransferRequest(
            customer_id=me.customer_id, channel=me.channel, from_account=self.from_account,
            payee_account=self.payee_account, payee_name=self.payee_name,
            payee_bank=self.payee_bank, amount=parse_minor(self.amount), speed=self.speed,
            memo=self.memo,
        )  # fmt: skip


class ConfirmationIn(In):
    """How the customer confirms a payment (a transfer, a bill): the fields every confirmed
    payment's body adds to its details."""

    method: Literal["sms", "token", "certificate"] | None = Field(
        None, description="The factor the quote asked for; omit when it asked for none"
    )
    code: Annotated[str | None, text(16, "The SMS or token code")] = None
    challenge_id: Annotated[int | None, Field(ge=1, le=2**63 - 1)] = None
    signature: Annotated[str | None, text(200, "base64 DER ECDSA over the challenge")] = None
    large_confirmed: bool = Field(
        False, description="I have read the large-transfer warning and confirm"
    )

    def confirmation(self) -> Confirmation:
        return Confirmation(
            method=self.method, code=self.code, challenge_id=self.challenge_id,
            signature=self.signature, large_confirmed=self.large_confirmed,
        )  # fmt: skip


class ConfirmedTransferIn(ConfirmationIn, TransferIn):
    pass


class QuoteOut(BaseModel):
    kind: Literal["own", "intra", "interbank"]
    payee_name: str
    factors: list[str] = Field(
        description="Factors that would confirm it, weakest first; empty: none is needed"
    )
    large_warning: bool = Field(description="Confirm with large_confirmed=true")
    due_at: datetime = Field(description="When it will be sent")


class CodeSentOut(BaseModel):
    sms_sent: bool
    expires_at: datetime


class SigningOut(BaseModel):
    challenge_id: int
    to_sign: str = Field(description="base64 of the exact bytes the USB key signs")
    expires_at: datetime

    @classmethod
    def of(cls, challenge: SigningChallenge) -> "SigningOut":
        return cls(
            challenge_id=challenge.id, to_sign=challenge.to_sign, expires_at=challenge.expires_at
        )


class PaymentOut(BaseModel):
    id: int
    reference: str = Field(description="What to quote to the bank")
    kind: str
    status: Literal[
        "scheduled", "sending", "unknown", "completed", "failed", "revoked", "returned", "review"
    ] = Field(description="review: held by risk control until staff decide (the money is held)")
    channel: str
    from_account: str
    payee_account: str = Field(description="Masked")
    payee_name: str
    payee_bank: str | None
    amount: str
    currency: str
    speed: str
    memo: str
    method: str | None
    due_at: datetime
    created_at: datetime
    failure: ErrorOut | None = Field(
        description="Why it failed or came back, if it did, and what to do about it"
    )
    revocable: bool

    @classmethod
    def of(cls, view: PaymentView, lang: str) -> "PaymentOut":
        failure = None
        if view.failure_code is not None:
            failure = ErrorOut(**EbankError(view.failure_code).to_dict(lang))
        return cls(
            id=view.id, reference=view.reference, kind=view.kind, status=view.status,
            channel=view.channel, from_account=view.from_account,
            payee_account=view.payee_account, payee_name=view.payee_name,
            payee_bank=view.payee_bank, amount=format_minor(view.amount, view.currency),
            currency=view.currency, speed=view.speed, memo=view.memo, method=view.method,
            due_at=view.due_at, created_at=view.created_at, failure=failure,
            revocable=view.revocable,
        )  # fmt: skip


class PaymentsOut(BaseModel):
    payments: list[PaymentOut]


@router.post("/me/transfers/quote", tags=["customer: transfers"],
             summary="Step 1: what confirming this transfer will take")  # fmt: skip
async def quote(request: Request, me: Me, body: TransferIn) -> QuoteOut:
    asked = body.request(me)
    now = request.app.state.clock.now()
    found = await read(request, lambda conn: payments.quote(conn, asked, now=now))
    return QuoteOut(
        kind=found.kind, payee_name=found.payee_name, factors=list(found.methods),
        large_warning=found.large_warning, due_at=found.due_at,
    )  # fmt: skip


@router.post("/me/transfers/sms-code", tags=["customer: transfers"],
             summary="Text me a code for exactly this transfer")  # fmt: skip
async def send_code(request: Request, me: Me, body: TransferIn) -> CodeSentOut:
    issued = await write(request, payments.send_code(vault_of(request), body.request(me)))
    return CodeSentOut(sms_sent=True, expires_at=issued.expires_at)


@router.post("/me/transfers/signing", tags=["customer: transfers"],
             summary="What my USB key signs to confirm exactly this transfer")  # fmt: skip
async def start_signing(request: Request, me: Me, body: TransferIn) -> SigningOut:
    return SigningOut.of(await write(request, payments.start_signing(body.request(me))))


@router.post("/me/transfers", tags=["customer: transfers"], status_code=201,
             summary="Step 2: make the transfer, confirmed by the factor")  # fmt: skip
async def make_transfer(
    request: Request, me: Me, body: ConfirmedTransferIn, key: IdempotencyKey
) -> PaymentOut:
    made = await write(
        request,
        payments.transfer(
            vault_of(request),
            body.request(me),
            body.confirmation(),
            idempotency_key=key,
            origin=me.origin,
        ),
    )
    payment_id = made.value()
    view = await read(
        request,
        lambda conn: payments.payment_of(conn, customer_id=me.customer_id, payment_id=payment_id),
    )
    return PaymentOut.of(view, language_of(request))


@router.get("/me/payments", tags=["customer: transfers"], summary="My payments, newest first")
async def my_payments(
    request: Request,
    me: Me,
    before: Before = None,
    limit: PageSize = 50,
) -> PaymentsOut:
    views = await read(
        request,
        lambda conn: payments.payments_of(conn, me.customer_id, before_id=before, limit=limit),
    )
    return PaymentsOut(payments=[PaymentOut.of(v, language_of(request)) for v in views])


@router.get("/me/payments/{payment_id}", tags=["customer: transfers"], summary="One payment")
async def my_payment(request: Request, me: Me, payment_id: ObjectId) -> PaymentOut:
    view = await read(
        request,
        lambda conn: payments.payment_of(conn, customer_id=me.customer_id, payment_id=payment_id),
    )
    return PaymentOut.of(view, language_of(request))


@router.get("/me/payments/{payment_id}/receipt", tags=["customer: transfers"],
            summary="The electronic receipt (电子回单) of a completed payment")  # fmt: skip
async def my_payment_receipt(request: Request, me: Me, payment_id: ObjectId) -> ReceiptOut:
    vault = vault_of(request)
    receipt = await read(
        request,
        lambda conn: payments.receipt_of(
            conn, vault, customer_id=me.customer_id, payment_id=payment_id
        ),
    )
    return ReceiptOut.of_receipt(receipt)


@router.post("/me/payments/{payment_id}/revoke", tags=["customer: transfers"],
             summary="Call back a deferred transfer not yet sent")  # fmt: skip
async def revoke(request: Request, me: Me, payment_id: ObjectId) -> PaymentOut:
    await write(
        request,
        payments.revoke(customer_id=me.customer_id, payment_id=payment_id, channel=me.channel),
    )
    return await my_payment(request, me, payment_id)


@router.get("/staff/payments/exceptions", tags=["staff: payments"],
            summary="Transfers that failed, came back, or whose outcome is unknown")  # fmt: skip
async def exceptions(
    request: Request, me: Lookup, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> PaymentsOut:
    views = await read(request, lambda conn: payments.exceptions(conn, limit=limit))
    return PaymentsOut(payments=[PaymentOut.of(v, language_of(request)) for v in views])
