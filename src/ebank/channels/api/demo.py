"""Demo mode only: the SMS inbox, so that a newcomer can log in and pay without a phone.

The app includes this router only when it serves the demo bank (`ebank demo`); a real bank's
codes go to its SMS gateway and are never shown anywhere.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ebank.channels.api.common import read, vault_of
from ebank.channels.api.schemas import ERRORS
from ebank.notify import service as notify

router = APIRouter(prefix="/api/v1/demo", responses=ERRORS, tags=["demo"])


class SmsOut(BaseModel):
    customer_id: int
    mobile: str
    kind: str
    body: str
    sent_at: datetime


class InboxOut(BaseModel):
    messages: list[SmsOut]


@router.get("/sms", summary="The demo's SMS inbox, newest first")
async def sms_inbox(
    request: Request,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> InboxOut:
    vault = vault_of(request)
    found = await read(
        request, lambda conn: notify.inbox(conn, vault, customer_id=customer_id, limit=limit)
    )
    return InboxOut(
        messages=[
            SmsOut(customer_id=m.customer_id, mobile=m.mobile, kind=m.kind, body=m.body,
                   sent_at=m.sent_at)
            for m in found
        ]
    )  # fmt: skip
