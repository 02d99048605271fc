"""The clearing house, and the simulated bank behind it: `ebank clearing-house`.

A separate process on loopback, so that inter-bank transfers run for real in the demo and in
tests: two processes, real HTTP, real signatures. It knows two participants, our bank (its
code from `EBANK_BANK_CODE`, reached at `--bank-url`) and the simulated bank "模拟银行 /
Simulated Bank" (`SIM_BANK`), whose few accounts (`SEED_ACCOUNTS`) it keeps in memory.

`POST /messages` takes our messages:
- pacs.008 to the simulated bank: credited there, or rejected by its records (AC01 no such
  account, AC04 closed, AC06 frozen, BE01 name mismatch, AM03 not CNY, AGNT another bank) and
  answered with a pacs.002. A message id seen before gets an answer about the same transfer
  (its current status), never a second credit; the same end-to-end id under a new message id is
  RJCT AM05 and changes nothing.
- pacs.028 status request: 200 and a pacs.002 with the transfer's current status, or, for a
  transfer the house never received, 404 and a pacs.002 without any status ("not known here":
  nothing was applied, so sending the same pacs.008 again is safe). A 404 is never a rejection.

Faults (flags, or `POST /control` at runtime), drawn once per new transfer from one seeded
random generator:
- latency: every answer on /messages waits this long;
- reject: RJCT MS03 even for a good account;
- timeout: the transfer is applied (ACSC), but the answer is held back `hang_seconds`, past
  the client's timeout; a status query then finds the late success;
- pending: answered ACSP, settled `settle_seconds` later; queries see ACSP, then ACSC.

The simulated bank also pays into our bank (`POST /control/send`), returns a transfer it had
credited (`POST /control/return`, a pacs.004), and delivers again what it sent
(`POST /control/redeliver`); `GET /control/transfers` and `GET /control/accounts` show
everything. Every /control call is signed like a message (HMAC over its body, empty for GET).
"""

import asyncio
import itertools
import json
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ebank.clearing.messages import (
    MAX_BYTES,
    PACS_008,
    REJECTED,
    SETTLED,
    CreditTransfer,
    Header,
    PaymentReturn,
    StatusReport,
    StatusRequest,
    parse,
    sign,
    verify,
)
from ebank.core.clock import Clock, SystemClock
from ebank.core.errors import EbankError
from ebank.core.money import format_minor, parse_minor
from ebank.customers.identity import same_name

SIM_BANK = "999200000025"
BANK_INBOUND_PATH = "/api/v1/clearing/messages"  # where a participant takes our messages
PENDING_STATUS = "ACSP"


def _not_authenticated() -> Response:
    return PlainTextResponse("not authenticated", status_code=401)


@dataclass(slots=True)
class SimAccount:
    number: str
    name: str
    status: str  # active | closed | frozen
    balance: int  # fen


# The simulated bank's customers (every run starts from these).
SEED_ACCOUNTS: tuple[SimAccount, ...] = (
    SimAccount("6222020000000001", "李雷", "active", 1_000_000_00),
    SimAccount("6222020000000002", "韩梅梅", "active", 200_000_00),
    SimAccount("6222020000000003", "王五", "closed", 0),
    SimAccount("6222020000000004", "赵六", "frozen", 50_000_00),
)


@dataclass(slots=True)
class Faults:
    """What the house does wrong on purpose. The rates are probabilities per new transfer."""

    latency_ms: int = 0
    reject_rate: float = 0.0
    timeout_rate: float = 0.0
    pending_rate: float = 0.0
    settle_seconds: float = 3.0  # how long a pending transfer takes to settle
    hang_seconds: float = 30.0  # how long a "timed out" answer is held back

    def __post_init__(self) -> None:
        rates = (self.reject_rate, self.timeout_rate, self.pending_rate)
        if any(type(r) not in (int, float) or not 0 <= r <= 1 for r in rates) or sum(rates) > 1:
            raise ValueError("the rates are between 0 and 1 and add up to at most 1")
        if type(self.latency_ms) is not int or not 0 <= self.latency_ms <= 60_000:
            raise ValueError("latency_ms is 0-60000")
        for value in (self.settle_seconds, self.hang_seconds):
            if type(value) not in (int, float) or not 0 <= value <= 3600:
                raise ValueError("settle_seconds and hang_seconds are 0-3600")


@dataclass(slots=True)
class Transfer:
    """One credit transfer through the house, either way."""

    direction: str  # to_sim: a participant pays the simulated bank; from_sim: the other way
    sender: str
    msg_id: str
    end_to_end_id: str
    amount: int
    currency: str
    debtor_account: str
    debtor_name: str
    creditor_account: str
    creditor_name: str
    memo: str
    status: str | None  # ACSC | ACSP | RJCT; None: no answer came (from_sim)
    reason: str | None
    xml: bytes  # the pacs.008 as it travelled
    settle_at: float | None = None  # a pending one, on the house's monotonic clock
    returned: str | None = None  # the reason of a pacs.004 that sent it back
    error: str | None = None  # why the last delivery to a participant got no answer

    def view(self) -> dict[str, Any]:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        del shown["xml"], shown["settle_at"]
        return shown | {"amount": format_minor(self.amount, self.currency)}


class ControlError(Exception):
    """A /control request that cannot be done: HTTP status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class House:
    """The house's state and its ASGI app (`app`); one event loop, so no locks."""

    def __init__(
        self,
        *,
        bank_code: str,
        bank_url: str,
        secret: str,
        faults: Faults | None = None,
        seed: int | None = None,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        bank_transport: httpx.AsyncBaseTransport | None = None,
        bank_timeout: float = 10.0,
    ) -> None:
        self.bank_code = bank_code
        self.bank_url = bank_url.rstrip("/")
        self.faults = faults or Faults()
        self.accounts = {a.number: SimAccount(**asdict(a)) for a in SEED_ACCOUNTS}
        self.transfers: dict[tuple[str, str], Transfer] = {}  # (sender, end-to-end id)
        self._by_msg: dict[tuple[str, str], Transfer] = {}  # (sender, message id)
        self._secret = secret
        self._rng = random.Random(seed)  # noqa: S311 (simulated faults, not secrets)
        self._clock = clock or SystemClock()
        self._monotonic = monotonic
        self._bank_transport = bank_transport
        self._bank_timeout = bank_timeout
        # Ids unique to this run, so that a restarted house never repeats one to our bank.
        self._run = self._clock.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(2).upper()
        self._numbers = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/messages", self._messages, methods=["POST"]),
                Route("/control", self._control(self._set_faults), methods=["POST"]),
                Route("/control/send", self._control(self._send), methods=["POST"]),
                Route("/control/redeliver", self._control(self._redeliver), methods=["POST"]),
                Route("/control/return", self._control(self._return), methods=["POST"]),
                Route("/control/transfers", self._control(self._list), methods=["GET"]),
                Route("/control/accounts", self._control(self._accounts), methods=["GET"]),
            ]
        )

    def _id(self, prefix: str) -> str:
        return f"{prefix}{self._run}{next(self._numbers):06d}"

    def _header(self, receiver: str) -> Header:
        return Header(self._id("M"), self._clock.now(), SIM_BANK, receiver)

    # -- messages from participants ----------------------------------------------------------
    async def _signed_body(self, request: Request) -> bytes | None:
        """The request's body if it is signed with the shared secret, else None."""
        body = await request.body()
        try:
            verify(self._secret, body, request.headers, now=self._clock.now())
        except EbankError:
            return None
        return body

    async def _messages(self, request: Request) -> Response:
        body = await self._signed_body(request)
        if body is None:
            return _not_authenticated()
        try:
            message = parse(body)
            if message.header.sender != self.bank_code:
                raise EbankError("CLEARING_MESSAGE_INVALID", reason="unknown participant")
            if not isinstance(message, CreditTransfer | StatusRequest):
                raise EbankError("CLEARING_MESSAGE_INVALID", reason="pacs.008 or pacs.028 only")
        except EbankError as exc:
            return PlainTextResponse(exc.message("en"), status_code=400)
        self._settle_due()
        hang = False
        if isinstance(message, CreditTransfer):
            report, hang = self._take(message)
        else:
            report = self._status(message)
        await asyncio.sleep(self.faults.latency_ms / 1000)
        if hang:
            await asyncio.sleep(self.faults.hang_seconds)
        content = report.to_xml()
        headers = sign(self._secret, content, now=self._clock.now())
        return Response(
            content, status_code=200 if report.known else 404, headers=headers,
            media_type="application/xml",
        )  # fmt: skip

    def _report(self, t: Transfer, *, msg_id: str | None = None, **status: Any) -> StatusReport:
        """A pacs.002 about `t` (its current status unless told otherwise)."""
        status = status or {"status": t.status, "reason": t.reason}
        return StatusReport(
            self._header(t.sender), msg_id or t.msg_id, PACS_008, t.end_to_end_id, **status
        )

    def _take(self, m: CreditTransfer) -> tuple[StatusReport, bool]:
        """Apply a new transfer (or find the one this message id made); its answer, and
        whether to hold the answer back."""
        sender = m.header.sender
        seen = self._by_msg.get((sender, m.header.msg_id))
        if seen is not None:
            return self._report(seen), False
        if (sender, m.end_to_end_id) in self.transfers:
            duplicate = {"status": REJECTED, "reason": "AM05"}
            return self._report(self.transfers[(sender, m.end_to_end_id)],
                                msg_id=m.header.msg_id, **duplicate), False  # fmt: skip
        roll, f = self._rng.random(), self.faults
        reason = "MS03" if roll < f.reject_rate else self._refusal(m)
        status, settle_at, hang = SETTLED, None, False
        if reason is not None:
            status = REJECTED
        elif roll < f.reject_rate + f.timeout_rate:
            hang = True
        elif roll < f.reject_rate + f.timeout_rate + f.pending_rate:
            status, settle_at = PENDING_STATUS, self._monotonic() + f.settle_seconds
        t = Transfer(
            "to_sim", sender, m.header.msg_id, m.end_to_end_id, m.amount, m.currency,
            m.debtor_account, m.debtor_name, m.creditor_account, m.creditor_name, m.remittance,
            status, reason, m.to_xml(), settle_at,
        )  # fmt: skip
        if status == SETTLED:
            self.accounts[t.creditor_account].balance += t.amount
        self.transfers[(sender, t.end_to_end_id)] = self._by_msg[(sender, t.msg_id)] = t
        return self._report(t), hang

    def _refusal(self, m: CreditTransfer) -> str | None:
        """Why the simulated bank cannot take it, by its records; None if it can."""
        if m.creditor_agent != SIM_BANK:
            return "AGNT"
        if m.currency != "CNY":
            return "AM03"
        account = self.accounts.get(m.creditor_account)
        if account is None:
            return "AC01"
        if account.status != "active":
            return "AC04" if account.status == "closed" else "AC06"
        return None if same_name(account.name, m.creditor_name) else "BE01"

    def _status(self, q: StatusRequest) -> StatusReport:
        found = self.transfers.get((q.header.sender, q.end_to_end_id))
        if found is None:  # never received: "not known here", not a rejection
            return StatusReport(
                self._header(q.header.sender), q.original_msg_id, PACS_008, q.end_to_end_id, None
            )
        return self._report(found)

    def _settle_due(self) -> None:
        """Pending transfers whose time has come are settled (lazily, on the next request)."""
        now = self._monotonic()
        for t in self.transfers.values():
            if t.status == PENDING_STATUS and t.settle_at is not None and t.settle_at <= now:
                t.status, t.settle_at = SETTLED, None
                self.accounts[t.creditor_account].balance += t.amount

    # -- control ---------------------------------------------------------------------------
    def _control(
        self, handler: Callable[[dict[str, Any]], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A /control endpoint: signed like a message, JSON in and out."""

        async def endpoint(request: Request) -> Response:
            body = await self._signed_body(request)
            if body is None:
                return _not_authenticated()
            try:
                data = json.loads(body) if body else {}
                if not isinstance(data, dict) or len(body) > MAX_BYTES:
                    raise ControlError(400, "a JSON object is expected")
                self._settle_due()
                return JSONResponse(await handler(data))
            except ValueError as exc:  # bad JSON, bad faults
                return JSONResponse({"error": str(exc)}, status_code=400)
            except EbankError as exc:  # a field the message would not accept
                return JSONResponse({"error": exc.message("en")}, status_code=400)
            except ControlError as exc:
                return JSONResponse({"error": exc.reason}, status_code=exc.status)

        return endpoint

    async def _set_faults(self, data: dict[str, Any]) -> dict[str, Any]:
        unknown = set(data) - {f.name for f in fields(Faults)}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        self.faults = Faults(**(asdict(self.faults) | data))
        return asdict(self.faults)

    async def _list(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        return [t.view() for t in self.transfers.values()]

    async def _accounts(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        return [asdict(a) | {"balance": format_minor(a.balance)} for a in self.accounts.values()]

    async def _send(self, data: dict[str, Any]) -> dict[str, Any]:
        """The simulated bank pays into our bank: debit its customer, deliver a pacs.008."""
        payer = self.accounts.get(str(data.get("from_account")))
        if payer is None or payer.status != "active":
            raise ControlError(422, "from_account is not an active simulated account")
        amount = parse_minor(str(data.get("amount")))
        if amount <= 0 or amount > payer.balance:
            raise ControlError(422, "the amount is not positive or above the payer's balance")
        e2e = self._id("E")
        message = CreditTransfer(
            header=self._header(self.bank_code), instr_id=e2e, end_to_end_id=e2e, tx_id=e2e,
            amount=amount, currency="CNY", debtor_name=payer.name,
            debtor_account=payer.number, debtor_agent=SIM_BANK, creditor_agent=self.bank_code,
            creditor_name=str(data.get("to_name", "")),
            creditor_account=str(data.get("to_account", "")),
            remittance=str(data.get("memo", "")),
        )  # fmt: skip
        payer.balance -= amount
        t = Transfer(
            "from_sim", SIM_BANK, message.header.msg_id, e2e, amount, "CNY", payer.number,
            payer.name, message.creditor_account, message.creditor_name, message.remittance,
            None, None, message.to_xml(),
        )  # fmt: skip
        self.transfers[(SIM_BANK, e2e)] = t
        await self._deliver(t)
        return t.view()

    async def _redeliver(self, data: dict[str, Any]) -> dict[str, Any]:
        """Deliver a pacs.008 of the simulated bank again, byte for byte."""
        t = self.transfers.get((SIM_BANK, str(data.get("end_to_end_id"))))
        if t is None:
            raise ControlError(404, "no such transfer from the simulated bank")
        await self._deliver(t)
        return t.view()

    async def _deliver(self, t: Transfer) -> None:
        """Post a pacs.008 to our bank and note its answer; a rejection refunds the payer."""
        report = await self._post(t.xml, t.end_to_end_id)
        if report is None:
            t.error = "no trustworthy answer from the bank"
            return
        if report.status == REJECTED and t.status != REJECTED:
            self.accounts[t.debtor_account].balance += t.amount
        t.status, t.reason, t.error = report.status, report.reason, None

    async def _return(self, data: dict[str, Any]) -> dict[str, Any]:
        """The simulated bank sends back a transfer it was paid (pacs.004 to the sender)."""
        t = self.transfers.get((self.bank_code, str(data.get("end_to_end_id"))))
        if t is None or t.status != SETTLED or t.returned is not None:
            raise ControlError(409, "no settled, unreturned transfer from the bank by that id")
        message = PaymentReturn(
            self._header(t.sender), self._id("R"), t.msg_id, t.end_to_end_id, t.amount,
            t.currency, str(data.get("reason", "")),
        )  # fmt: skip
        report = await self._post(message.to_xml(), t.end_to_end_id)
        if report is None:
            raise ControlError(502, "no trustworthy answer from the bank")
        if report.status == SETTLED:
            t.returned = message.reason
            self.accounts[t.creditor_account].balance -= t.amount
        return t.view() | {"return_status": report.status, "return_reason": report.reason}

    async def _post(self, body: bytes, end_to_end_id: str) -> StatusReport | None:
        """Post to our bank's inbound endpoint; its signed pacs.002 about this transfer."""
        headers = {"Content-Type": "application/xml"}
        headers |= sign(self._secret, body, now=self._clock.now())
        try:
            async with httpx.AsyncClient(
                transport=self._bank_transport, timeout=self._bank_timeout
            ) as http:
                response = await http.post(
                    self.bank_url + BANK_INBOUND_PATH, content=body, headers=headers
                )
            verify(self._secret, response.content, response.headers, now=self._clock.now())
            report = parse(response.content)
        except (httpx.HTTPError, EbankError):
            return None
        if not isinstance(report, StatusReport) or report.end_to_end_id != end_to_end_id:
            return None
        return report


class HouseControl:
    """Signed calls to a house's /control endpoints, for tests and the demo."""

    def __init__(self, http: httpx.Client, *, secret: str, clock: Clock | None = None) -> None:
        self._http = http
        self._secret = secret
        self._clock = clock or SystemClock()

    def _call(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        body = b"" if data is None else json.dumps(data).encode()
        headers = sign(self._secret, body, now=self._clock.now())
        response = self._http.request(method, path, content=body, headers=headers)
        response.raise_for_status()
        return response.json()

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "/control", changes)  # type: ignore[no-any-return]

    def send(
        self, *, from_account: str, to_account: str, to_name: str, amount: str, memo: str = ""
    ) -> dict[str, Any]:
        data = {"from_account": from_account, "to_account": to_account, "to_name": to_name,
                "amount": amount, "memo": memo}  # fmt: skip
        return self._call("POST", "/control/send", data)  # type: ignore[no-any-return]

    def redeliver(self, end_to_end_id: str) -> dict[str, Any]:
        data = {"end_to_end_id": end_to_end_id}
        return self._call("POST", "/control/redeliver", data)  # type: ignore[no-any-return]

    def return_transfer(self, end_to_end_id: str, reason: str) -> dict[str, Any]:
        data = {"end_to_end_id": end_to_end_id, "reason": reason}
        return self._call("POST", "/control/return", data)  # type: ignore[no-any-return]

    def transfers(self) -> list[dict[str, Any]]:
        return self._call("GET", "/control/transfers")  # type: ignore[no-any-return]

    def accounts(self) -> dict[str, dict[str, Any]]:
        return {a["number"]: a for a in self._call("GET", "/control/accounts")}


def serve(house: House, port: int) -> None:
    """Serve the house on 127.0.0.1:`port` (0: a free one), after printing where."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    print(f"clearing house listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        house.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    uvicorn.Server(config).run(sockets=[sock])
