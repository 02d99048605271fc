"""Online banking's records: the customer's e-receipts (电子回单), with their numbers and
verification codes and the printed PDF, and the message centre (消息中心), what the bank told
them, read or not.

The receipts are `receipts.receipts_of`'s, as the API lists them; each links the PDF of the
payment it is for. The messages are `notify.messages`', written out in the page's language.
Someone else's receipt is never listed, and marking someone else's message read is refused as
one that does not exist.
"""

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from ebank.channels.api.common import ObjectId, read, vault_of, write
from ebank.channels.web import i18n
from ebank.channels.web.area import SignedIn, typed_id, typed_range, with_query
from ebank.channels.web.bank import BANK
from ebank.core.errors import EbankError
from ebank.notify import messages
from ebank.receipts import service as receipts
from ebank.receipts.models import VERIFY_PATH, Receipt

router = APIRouter(prefix=BANK.prefix, include_in_schema=False)

PAGE = 20
RANGE_FIELDS = ("from", "to")


# -- e-receipts ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Row:
    receipt: Receipt
    pdf: str | None  # the printed receipt, for a payment's (the page's own download route)


def _row(me: SignedIn, receipt: Receipt) -> Row:
    kind, _sep, payment_id = receipt.source.partition(":")
    return Row(
        receipt, me.url("bank_receipt", payment_id=payment_id) if kind == "payment" else None
    )


@router.get("/receipts", name="bank_receipts")
async def receipt_list(request: Request) -> Response:
    me = await BANK.signed_in(request)
    typed = {name: request.query_params.get(name, "")[:10] for name in RANGE_FIELDS}
    before = typed_id(request.query_params.get("before"))
    customer_id, vault = me.customer_id, vault_of(request)
    context = {"values": typed, "rows": [], "older": None, "paged": before is not None,
               "verify_path": VERIFY_PATH}  # fmt: skip
    try:
        since, until = typed_range(typed["from"], typed["to"])
    except EbankError as error:
        return me.render("bank/receipts.html", error=error, fields=RANGE_FIELDS, **context)

    def mine(conn: Connection) -> receipts.ReceiptPage:
        return receipts.receipts_of(
            conn, vault, customer_id, since=since, until=until, before=before, limit=PAGE
        )

    page = await read(request, mine)
    query = {name: value for name, value in typed.items() if value}
    here = me.url("bank_receipts")
    context |= {
        "rows": [_row(me, r) for r in page.receipts], "newest": with_query(here, **query),
        "older": None if page.older is None else with_query(here, **query, before=str(page.older)),
    }  # fmt: skip
    return me.render("bank/receipts.html", **context)


# -- the message centre ----------------------------------------------------------------------
async def _messages_page(me: SignedIn, before: int | None, **context: object) -> Response:
    customer_id = me.customer_id
    locale = "zh-CN" if i18n.language() == "zh" else "en"

    def both(conn: Connection) -> tuple[list[messages.Message], int]:
        listed = messages.messages_of(conn, customer_id, locale=locale, before=before, limit=PAGE)
        return listed, messages.unread(conn, customer_id)

    listed, unread = await read(me.request, both)
    older = listed[-1].id if len(listed) == PAGE else None
    shown = f"{messages.UNREAD_COUNTED - 1}+" if unread >= messages.UNREAD_COUNTED else unread
    return me.render("bank/messages.html", messages=listed, unread=shown, older=older,
                     before=before, **context)  # fmt: skip


@router.get("/messages", name="bank_messages")
async def message_centre(request: Request) -> Response:
    me = await BANK.signed_in(request)
    return await _messages_page(me, typed_id(request.query_params.get("before")))


async def _mark_read(request: Request, message_id: int | None) -> Response:
    """One message read, or all; back to the page the form was on."""
    me, form = await BANK.submitted(request)
    before = typed_id(form.get("before"))
    try:
        await write(request, messages.mark_read(customer_id=me.customer_id, message_id=message_id))
    except EbankError as error:
        return await _messages_page(me, before, error=error)
    query = "" if before is None else f"before={before}"
    return me.redirect("bank_messages", query=query)


@router.post("/messages/read", name="bank_messages_read")
async def mark_all_read(request: Request) -> Response:
    return await _mark_read(request, None)


@router.post("/messages/{message_id}/read", name="bank_message_read")
async def mark_one_read(request: Request, message_id: ObjectId) -> Response:
    return await _mark_read(request, message_id)
