"""The API of electronic receipts (电子回单): the payer's own receipts, listed or one by one, as
JSON or as the printed PDF, and the public check of a receipt's verification code.

Someone else's receipt answers exactly like one that does not exist. The check needs no
login (whoever holds a receipt may check it) and shows the parties masked.
"""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ebank.channels.api.auth import CustomerPrincipal, current_customer
from ebank.channels.api.common import Before, PageSize, read, vault_of
from ebank.channels.api.schemas import ERRORS
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.receipts import service as receipts
from ebank.receipts.models import VERIFY_PATH, Receipt, ReceiptView
from ebank.receipts.pdf import render_pdf

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
Number = Annotated[str, Path(max_length=32, description="The receipt number, R + day + id")]
PRIVATE = {"Cache-Control": "no-store"}  # personal data: no copy in any cache on the way


class ReceiptViewOut(BaseModel):
    """What a receipt shows to anybody holding it: names and accounts masked."""

    number: str
    amount: str = Field(description="Decimal string with the currency's exact digits")
    currency: str
    amount_in_words: str = Field(description="大写, as printed: 人民币壹佰元整")
    completed_at: datetime
    payer_name: str
    payer_account: str
    payee_name: str
    payee_account: str
    payee_bank: str

    @classmethod
    def of(cls, view: ReceiptView) -> "ReceiptViewOut":
        return cls(
            number=view.number, amount=format_minor(view.amount, view.currency),
            currency=view.currency, amount_in_words=view.amount_in_words,
            completed_at=view.completed_at, payer_name=view.payer_name,
            payer_account=view.payer_account, payee_name=view.payee_name,
            payee_account=view.payee_account, payee_bank=view.payee_bank,
        )  # fmt: skip


class ReceiptOut(ReceiptViewOut):
    """The payer's receipt: what is printed on it."""

    purpose: str
    channel: str
    reference: str = Field(description="The payment's reference")
    verification_code: str = Field(description=f"Anybody may check it at {VERIFY_PATH}")

    @classmethod
    def of_receipt(cls, receipt: Receipt) -> "ReceiptOut":
        return cls(
            **ReceiptViewOut.of(receipt.view).model_dump(), purpose=receipt.purpose,
            channel=receipt.channel, reference=receipt.reference,
            verification_code=receipt.code,
        )  # fmt: skip


class ReceiptsOut(BaseModel):
    receipts: list[ReceiptOut]
    older: int | None = Field(description="Pass as `before` for the next page; null on the last")


async def _mine(request: Request, me: CustomerPrincipal, number: str) -> Receipt:
    vault = vault_of(request)
    return await read(
        request, lambda conn: receipts.receipt_numbered(conn, vault, number, me.customer_id)
    )


@router.get("/me/receipts", tags=["customer: receipts"], summary="My receipts, newest first")
async def my_receipts(
    request: Request,
    response: Response,
    me: Me,
    since: Annotated[date | None, Query(description="First business day, YYYY-MM-DD")] = None,
    until: Annotated[date | None, Query(description="Last business day, included")] = None,
    before: Before = None,
    limit: PageSize = 20,
) -> ReceiptsOut:
    vault = vault_of(request)
    page = await read(
        request,
        lambda conn: receipts.receipts_of(
            conn, vault, me.customer_id, since=since, until=until, before=before, limit=limit
        ),
    )
    response.headers.update(PRIVATE)
    return ReceiptsOut(receipts=[ReceiptOut.of_receipt(r) for r in page.receipts], older=page.older)


# The .pdf route first: the JSON route's {number} would take "R...pdf" as well.
@router.get(
    "/me/receipts/{number}.pdf", tags=["customer: receipts"], response_class=Response,
    summary="My receipt as the printed PDF (电子回单)",
    responses={200: {"content": {"application/pdf": {}}}},
)  # fmt: skip
async def my_receipt_pdf(request: Request, me: Me, number: Number) -> Response:
    receipt = await _mine(request, me, number)
    body = await run_in_threadpool(render_pdf, receipt)
    headers = PRIVATE | {"Content-Disposition": f'inline; filename="{receipt.number}.pdf"'}
    return Response(body, media_type="application/pdf", headers=headers)


@router.get("/me/receipts/{number}", tags=["customer: receipts"], summary="My receipt")
async def my_receipt(request: Request, response: Response, me: Me, number: Number) -> ReceiptOut:
    response.headers.update(PRIVATE)
    return ReceiptOut.of_receipt(await _mine(request, me, number))


@router.get(
    VERIFY_PATH.removeprefix("/api/v1"), tags=["receipts"],
    summary="Check a receipt's verification code (no login)",
)  # fmt: skip
async def verify_receipt(
    request: Request,
    response: Response,
    code: Annotated[str, Query(max_length=64, examples=["7KQ2-MZ4P-XR8D-H3WB"])],
) -> ReceiptViewOut:
    """What the receipt with this code shows, parties masked, if it is genuine and unaltered.

    400 for text that is not 16 letters and digits of the code's alphabet (dashes allowed);
    404 RECEIPT_NOT_FOUND for any other code that names no genuine receipt.
    """
    vault = vault_of(request)
    view = await read(request, lambda conn: receipts.verify(conn, vault, code))
    if view is None:
        raise EbankError("RECEIPT_NOT_FOUND")
    response.headers.update(PRIVATE)
    return ReceiptViewOut.of(view)
