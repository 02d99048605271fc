"""The merchant gateway's signed API: who signed a request, and the gateway's signature on
every answer.

    call: SignedCall = Depends(signed_merchant)

checks the merchant's signature over the raw body (and the path with its query), the
timestamp window, that the merchant is active, and records the nonce so that the request
cannot be replayed. `SignedResponses` signs everything under /api/v1/gateway/, errors
included, over the exact bytes sent (see `ebank.app`). docs/gateway.md, "Signing".
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ebank.channels.api.common import read, write
from ebank.core.clock import SystemClock
from ebank.core.errors import EbankError
from ebank.gateway import signing
from ebank.gateway.client import MERCHANT_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

GATEWAY_PREFIX = "/api/v1/gateway/"


@dataclass(frozen=True, slots=True)
class SignedCall:
    """A request whose merchant's signature verified: who it is, and the bytes it signed."""

    merchant_id: int
    merchant_no: str
    customer_id: int
    body: bytes

    def json(self) -> dict[str, Any]:
        """The signed body as a JSON object; INVALID_INPUT otherwise."""
        try:
            value = json.loads(self.body)
        except ValueError:
            raise EbankError("INVALID_INPUT", reason="the body is not JSON") from None
        if not isinstance(value, dict):
            raise EbankError("INVALID_INPUT", reason="the body is a JSON object")
        return value


def request_target(scope: Scope) -> str:
    """The path and query exactly as the client sent them: what the merchant signed."""
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return (path + b"?" + query if query else path).decode("latin-1")


async def signed_merchant(request: Request) -> SignedCall:
    """The merchant that signed this request (401 SIGNATURE_INVALID, TIMESTAMP_STALE or
    NONCE_REUSED; 403 MERCHANT_SUSPENDED)."""
    body = await request.body()
    headers = request.headers
    signed = signing.SignedRequest(
        method=request.method, target=request_target(request.scope), body=body,
        merchant_no=headers.get(MERCHANT_HEADER, ""), timestamp=headers.get(TIMESTAMP_HEADER, ""),
        nonce=headers.get(NONCE_HEADER, ""), signature=headers.get(SIGNATURE_HEADER, ""),
    )  # fmt: skip
    now = request.app.state.clock.now()
    caller = await read(request, lambda conn: signing.authenticate(conn, signed, now=now))
    await write(request, signing.remember_nonce(caller.merchant_id, signed.nonce))
    return SignedCall(caller.merchant_id, caller.merchant_no, caller.customer_id, body)


def _now(scope: Scope) -> datetime:
    """The app's clock (a test's fixed one), or the system's before the app has started."""
    clock = getattr(scope["app"].state, "clock", None) if "app" in scope else None
    return (clock or SystemClock()).now()


class SignedResponses:
    """Signs every answer under /api/v1/gateway/ with the gateway's key.

    The body is held until its last part, so the signature covers exactly the bytes sent; it
    sits outside the framework's error middleware (see `ebank.app`), so a 401 from
    `signed_merchant` and a 500 are signed like any answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GATEWAY_PREFIX):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        parts: list[bytes] = []

        async def send_signed(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(parts)
            headers = MutableHeaders(scope=start)
            for name, value in signing.signed_headers(body, now=_now(scope)).items():
                headers[name] = value
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_signed)
