"""The clearing house's way into our bank: other banks' credit transfers to our customers, and
returns of the transfers we sent. Not a customer's API: no login; every message is signed with
the secret we share with the house, and the signature is checked before the body is parsed.
"""

from fastapi import APIRouter, Request, Response

from ebank.channels.api.common import vault_of, write
from ebank.clearing import service as clearing
from ebank.clearing.messages import MAX_BYTES, invalid, parse, sign, verify

router = APIRouter(prefix="/api/v1/clearing", tags=["clearing house (inter-bank)"])


async def _body(request: Request) -> bytes:
    """The request body, refused once it passes a message's largest size."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise invalid(f"a message is at most {MAX_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/messages",
    summary="A message from the clearing house: pacs.008 or pacs.004, answered by a pacs.002",
    response_class=Response,
    responses={200: {"description": "pacs.002.001.10", "content": {"application/xml": {}}}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/xml": {"schema": {"type": "string"}}},
        }
    },
)
async def take_message(request: Request) -> Response:
    """Headers `X-Clearing-Timestamp` (Unix seconds) and `X-Clearing-Signature` (hex
    HMAC-SHA256 of the timestamp, a newline and the body) are required: a bad or stale one is
    401 CLEARING_UNAUTHENTICATED. A message we cannot read is 400 CLEARING_MESSAGE_INVALID.
    Otherwise the answer is a signed pacs.002: ACSC (credited, or the return taken) or RJCT
    with its ISO reason; a repeated delivery gets the same answer."""
    settings, clock = request.app.state.settings, request.app.state.clock
    secret = settings.clearing_secret.get_secret_value()
    body = await _body(request)
    verify(secret, body, request.headers, now=clock.now())
    message = parse(body)
    answer = await write(
        request,
        clearing.receive(vault_of(request), message, body.decode(), bank_code=settings.bank_code),
    )
    headers = sign(secret, answer, now=clock.now())
    return Response(answer, media_type="application/xml", headers=headers)
