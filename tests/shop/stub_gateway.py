"""A stand-in for the bank's gateway API, for the merchant SDK's and the example shop's tests.

It checks each request's signature with the merchant's public key exactly as the gateway does
(the same `signing` functions), keeps orders in memory, and signs its answers with the
gateway's key. `tamper` makes it misbehave the ways an attacker in the middle would.
"""

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

import httpx

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.gateway import signing
from ebank.gateway.client import (
    Signer,
    fingerprint,
    request_message,
    response_message,
    verify,
)

BASE_URL = "http://bank.test"
MERCHANT_NO = "M000000001"
ORDER = re.compile(r"/api/v1/gateway/orders/([^/]+)(?:/(close|captures|void|refunds))?")


@dataclass(frozen=True, slots=True)
class Seen:
    """A request the stub accepted: method, the path and query as sent, the body."""

    method: str
    target: str
    body: bytes


@dataclass
class StubGateway:
    """The gateway's API over an httpx transport: `httpx.Client(transport=stub.transport())`."""

    clock: FixedClock
    algorithm: str
    public_key: str  # the merchant's
    seen: list[Seen] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    # None, or how answers go wrong: "unsigned", "body" (changed after signing), "stale",
    # "serial" (another serial), "key" (signed by another key, under that key's serial)
    tamper: str | None = None
    impostor: Signer | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- what the stub does with a request ----------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        try:
            self._authenticate(request, target)
            status, answer = self._route(request.method, target, request.content)
        except EbankError as exc:
            status, answer = exc.status, exc.to_dict("en")
        body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        return self._signed(status, body)

    def _authenticate(self, request: httpx.Request, target: str) -> None:
        headers = request.headers
        timestamp, nonce = headers["Ebank-Timestamp"], headers["Ebank-Nonce"]
        message = request_message(request.method, target, timestamp, nonce, request.content)
        if headers["Ebank-Merchant"] != MERCHANT_NO or not verify(
            self.algorithm, self.public_key, message, headers["Ebank-Signature"]
        ):
            raise EbankError("SIGNATURE_INVALID", reason="it does not verify")
        signing.check_timestamp(timestamp, self.clock.now())
        if nonce in self.nonces:
            raise EbankError("NONCE_REUSED")
        self.nonces.add(nonce)
        self.seen.append(Seen(request.method, target, request.content))

    def _route(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        path = target.split("?", 1)[0]
        if (method, path) == ("POST", "/api/v1/gateway/orders"):
            return self._create(json.loads(body))
        if found := ORDER.fullmatch(path):
            order = self.orders.get(unquote(found[1]))
            if order is None:
                raise EbankError("ORDER_NOT_FOUND")
            if found[2] == "close":
                order["status"] = "closed"
            return 200, {k: v for k, v in order.items() if k != "request"}
        if path.startswith("/api/v1/gateway/reconciliation/"):
            return 200, b"trade_no,amount\r\nT1,12.50\r\n"
        return 200, {"path": path}

    def _create(self, request: dict[str, Any]) -> tuple[int, Any]:
        had = self.orders.get(request["out_trade_no"])
        if had is not None:
            if had["request"] != request:
                raise EbankError("ORDER_CONFLICT")
            return 200, {k: v for k, v in had.items() if k != "request"}
        trade_no = f"T{len(self.orders) + 1:017d}"
        self.orders[request["out_trade_no"]] = order = {
            "trade_no": trade_no, "out_trade_no": request["out_trade_no"],
            "merchant_no": MERCHANT_NO, "mode": request["mode"], "amount": request["amount"],
            "currency": request["currency"], "subject": request["subject"], "status": "created",
            "pay_url": f"{BASE_URL}/pay/token-{trade_no}", "paid_amount": "0.00",
            "refunded_amount": "0.00", "request": request,
        }  # fmt: skip
        return 201, {k: v for k, v in order.items() if k != "request"}

    def _signed(self, status: int, body: bytes) -> httpx.Response:
        headers = signing.signed_headers(body, now=self.clock.now())
        if self.tamper == "unsigned":
            headers = {}
        elif self.tamper == "body":
            body = body.replace(b"created", b"paid") if b"created" in body else body + b" "
        elif self.tamper == "stale":
            headers = signing.signed_headers(body, now=self.clock.now() - signing.NONCES_KEPT)
        elif self.tamper == "serial":
            headers["Ebank-Serial"] = "0" * 64
        elif self.tamper == "key" and self.impostor is not None:
            message = response_message(headers["Ebank-Timestamp"], headers["Ebank-Nonce"], body)
            headers["Ebank-Signature"] = self.impostor.sign(message)
            headers["Ebank-Serial"] = fingerprint("RSA2", self.impostor.public_key)
        return httpx.Response(status, content=body, headers=headers)

    # -- what the gateway does on its own -------------------------------------------------
    def settle(self, out_trade_no: str, status: str) -> dict[str, Any]:
        """The order reaches `status` (the buyer paid, say); its public JSON."""
        order = self.orders[out_trade_no]
        order["status"] = status
        return {k: v for k, v in order.items() if k not in ("request", "pay_url")}

    def notification(self, event_id: str, order: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        """The signed headers and body of a notification about `order`."""
        body = json.dumps({"id": event_id, "merchant_no": order["merchant_no"],
                           "type": f"order.{order['status']}",
                           "created_at": self.clock.now().isoformat(), "data": order},
                          ensure_ascii=False).encode()  # fmt: skip
        return signing.signed_headers(body, now=self.clock.now()), body

    def return_url(self, return_url: str, order: dict[str, Any]) -> str:
        """Where the pay page sends the buyer's browser back, with the signed result."""
        body = json.dumps(order, ensure_ascii=False).encode()
        signed = signing.signed_headers(body, now=self.clock.now())
        fields = {
            "result": base64.urlsafe_b64encode(body).rstrip(b"=").decode(),
            "timestamp": signed["Ebank-Timestamp"], "nonce": signed["Ebank-Nonce"],
            "signature": signed["Ebank-Signature"], "serial": signed["Ebank-Serial"],
        }  # fmt: skip
        return f"{return_url}{'&' if '?' in return_url else '?'}{urlencode(fields)}"
