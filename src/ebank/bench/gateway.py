"""`ebank bench gateway`: merchant orders created over the signed HTTP API, paid by buyers
with their PIN, and the merchant told over HTTP: create -> pay -> notify, end to end.

The app is served for real by uvicorn on a loopback port, in a thread of this process, with
the notice delivery loop beside it; the buyers' payments go to its writer as the pay page's
would. The merchants' servers run in a process of their own, as they would on their own
machines: each signs its create request with the SDK's `Signer`, checks the gateway's
signature on the answer, and hands the order to its buyer here. A receiver in another process
stands for the merchants' notify URL: it checks each notice's signature, answers "success"
and notes when the notice arrived. A flow's latency runs from its create request being
signed to the receiver getting its `order.paid`; the rate is flows over the wall time from
the first request to the last notice. Each process's CPU time per flow is reported, to set
against `ebank bench gateway-floor`.

A payment always checks the buyer's transaction PIN, hashed as the bank hashes PINs
(`security.HASHERS`, argon2id at a PIN's cost).
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, func, select

from ebank.accounts import service as accounts
from ebank.bench.ledger import database_arguments, on_database
from ebank.bench.payments import _id_number
from ebank.cards import service as cards
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.settings import Settings, get_settings
from ebank.core.writer import Command, Tx, Writer
from ebank.customers.identity import credit_check_for
from ebank.customers.service import register_enterprise, register_individual
from ebank.enrolment.service import enrol_at_counter
from ebank.gateway import fees, merchants, orders, settlement, signing
from ebank.gateway.client import (
    MERCHANT_HEADER,
    NONCE_HEADER,
    SERIAL_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Signer,
    new_nonce,
    request_message,
    response_message,
    verify,
)
from ebank.gateway.models import Payment
from ebank.gateway.notices import start_notice_delivery
from ebank.gateway.tables import notice_deliveries
from ebank.gateway.tables import orders as order_rows
from ebank.ledger import queries
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.security import service as security

ACTOR = "bench"
PIN = "804317"
YUAN = 100
FUNDING = 100_000 * YUAN  # per buyer
# Without a certificate a buyer pays at most ¥1,000 at a time and ¥5,000 a day online
# (limits.uncertified.*); every amount is over ¥100, so that risk control's brushing rule
# (many orders of ¥100 or less from few buyers) never holds a bench payment.
PER_PAYMENT, PER_DAY, LEAST = 1_000 * YUAN, 5_000 * YUAN, 101 * YUAN
CHUNK = 250  # buyers set up per command
ORDERS = "/api/v1/gateway/orders"
NOTICES_WAIT = 60.0  # seconds without a new notice before the rest count as lost


def add_arguments(parser: argparse.ArgumentParser) -> None:
    database_arguments(parser)
    parser.add_argument("--flows", type=int, default=2_000)
    parser.add_argument("--buyers", type=int, default=500)
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument("--submitters", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> str:
    if args.flows < 1 or args.buyers < 1 or args.merchants < 1 or args.submitters < 1:
        raise SystemExit("need at least 1 flow, buyer, merchant and submitter")
    if _largest_amount(args) < LEAST:
        raise SystemExit(
            f"a buyer pays at most ¥{PER_DAY // YUAN:,} a day: give at least one buyer for "
            f"every {PER_DAY // LEAST} flows"
        )
    get_settings().gateway_private_notify = True  # the receiver listens on loopback
    return on_database(args, _bench)


def _largest_amount(args: argparse.Namespace) -> int:
    """The largest order amount that keeps each buyer within the day's limit."""
    per_buyer = -(-args.flows // args.buyers)
    return min(PER_PAYMENT, PER_DAY // per_buyer)


# -- the receiver: the merchants' notify URL, in a process of its own -------------------------
_Arrival = tuple[str, str, str, float, bool]  # notice id, type, out_trade_no, when, signed


async def read_body(receive: Any) -> bytes:
    """The whole body of a request to a bare ASGI app."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


class _Receiver:
    """A bare ASGI app: POST takes a notice and answers "success", noting (notice id, type,
    out_trade_no, arrival on the monotonic clock, signature good); GET answers what it noted,
    from the position given as the query."""

    def __init__(self, gateway_pem: str) -> None:
        self.gateway_pem = gateway_pem
        self.arrivals: list[_Arrival] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        arrived = time.monotonic()
        body = await read_body(receive)
        if scope["method"] == "POST":
            notice_id, kind, out_trade_no, signed = self._read(scope, body)
            self.arrivals.append((notice_id, kind, out_trade_no, arrived, signed))
            answer = b"success"
        else:
            start = int(scope["query_string"] or 0)
            answer = json.dumps(self.arrivals[start:]).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})

    def _read(self, scope: dict[str, Any], body: bytes) -> tuple[str, str, str, bool]:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        message = response_message(
            headers.get(TIMESTAMP_HEADER.lower(), ""), headers.get(NONCE_HEADER.lower(), ""), body
        )
        signed = verify(
            "RSA2", self.gateway_pem, message, headers.get(SIGNATURE_HEADER.lower(), "")
        )
        notice = json.loads(body)
        return notice["id"], notice["type"], notice["data"]["out_trade_no"], signed


def _receive(pipe: Pipe, gateway_pem: str) -> None:
    """The receiver process: serve on a free loopback port, after sending the port up `pipe`."""
    import uvicorn  # here, not above: every `ebank` command imports the bench scenarios

    sock = _listening()
    pipe.send(sock.getsockname()[1])
    config = uvicorn.Config(_Receiver(gateway_pem), log_level="warning", lifespan="off",
                            access_log=False)  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


@contextmanager
def _receiver() -> Iterator[tuple[str, int]]:
    """A receiver process started (spawned: this process has threads); its base URL and
    process id."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_receive, args=(theirs, signing.gateway_key().public_pem), daemon=True
    )
    process.start()
    try:
        if not ours.poll(60):
            raise SystemExit("the notice receiver did not start")
        yield f"http://127.0.0.1:{ours.recv()}", process.pid
    finally:
        process.terminate()
        process.join(10)


@contextmanager
def _served(engine: Engine, writer: Writer, vault: Vault) -> Iterator[tuple[str, int]]:
    """The app under uvicorn on a free loopback port, in a thread, with the notice delivery
    loop beside it on the app's writer (a worker process of its own would wait on SQLite's
    write lock, see docs/performance.md); its host and port."""
    import uvicorn  # here, not above: every `ebank` command imports the bench scenarios

    from ebank.app import create_app

    sock = _listening()
    app = create_app(Settings(demo=False), engine=engine, writer=writer, vault=vault)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    stop_notices = start_notice_delivery(writer)
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise SystemExit("the app did not start")
            time.sleep(0.02)
        yield sock.getsockname()
    finally:
        stop_notices()
        server.should_exit = True
        thread.join(60)
        sock.close()


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the bank, its merchants and buyers -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Merchant:
    number: str
    signer: Signer

    def headers(self, path: str, body: bytes) -> dict[str, str]:
        """The signed headers of a POST of `body` to `path`, as the SDK makes them."""
        timestamp, nonce = str(int(time.time())), new_nonce()
        signature = self.signer.sign(request_message("POST", path, timestamp, nonce, body))
        return {MERCHANT_HEADER: self.number, TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
                SIGNATURE_HEADER: signature, "Content-Type": "application/json"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Buyer:
    customer_id: int
    card_id: int


def _new_private_key() -> str:
    """A fresh RSA-2048 private key (PKCS#8 PEM), as a merchant makes one for its gateway API."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip


def _sign_up(vault: Vault, n: int, public_key: str) -> Command[str]:
    """Merchant `n`: an enterprise with a settlement account, signed up (settled at the end
    of the day, so that its takings stay in merchant pending) with its RSA2 key; its number."""
    credit_code = f"91350100B{n:08d}"
    credit_code += credit_check_for(credit_code)

    def run(tx: Tx) -> str:
        customer = register_enterprise(
            vault, name=f"压测商贸有限公司{n}", credit_code=credit_code,
            legal_representative="欧阳锋", mobile=f"159{n:08d}", actor=ACTOR,
        ).fn(tx).id  # fmt: skip
        account = accounts.open_account(customer_id=customer, tier="corporate", actor=ACTOR)
        merchant = merchants.onboard(
            customer_id=customer, name=f"压测商城{n}", industry="retail",
            settlement_account=account.fn(tx).number, fee_plan="B2C-0.25", cycle="t0_eod",
            actor=ACTOR,
        ).fn(tx)  # fmt: skip
        merchants.add_key(
            merchant_id=merchant.id, algorithm="RSA2", public_key=public_key, actor=ACTOR
        ).fn(tx)
        return merchant.merchant_no

    return Command(run)


def _setup_merchants(writer: Writer, vault: Vault, count: int) -> list[tuple[str, str]]:
    """Merchants signed up, each with a fresh key: their numbers and private keys."""
    writer.execute(Command(fees.ensure_plans))
    made = []
    for n in range(1, count + 1):
        private = _new_private_key()
        public = Signer("RSA2", private).public_key
        made.append((writer.execute(_sign_up(vault, n, public)), private))
    return made


def _setup_buyers(writer: Writer, vault: Vault, count: int) -> list[_Buyer]:
    """People enrolled online at the counter, each with a funded account, its debit card and
    a transaction PIN (hashed once: every buyer's verifies at the same cost)."""
    cash = writer.execute(Command(ensure_chart, sql=False))["GL-CASH-CNY"]
    pin = security.NewSecret("transaction_pin", PIN)
    pin.hashed()

    def make(first: int, n: int) -> Command[list[_Buyer]]:
        def fn(tx: Tx) -> list[_Buyer]:
            made = []
            for i in range(first, first + n):
                customer = register_individual(
                    vault, name=f"买家{i}", id_number=_id_number(i), mobile=f"139{i:08d}",
                    actor=ACTOR,
                ).fn(tx).id  # fmt: skip
                opened = accounts.open_account(customer_id=customer, tier="I", actor=ACTOR).fn(tx)
                ledger.transfer(tx, debit=cash, credit=opened.ledger_account_id, amount=FUNDING)
                enrol_at_counter(customer_id=customer, channel="online", actor=ACTOR).fn(tx)
                security.save_secret(tx, pin, customer_id=customer, actor=ACTOR, channel="counter")
                card = cards.issue_debit_card(
                    vault, customer_id=customer, account_number=opened.number, actor=ACTOR
                ).fn(tx).card  # fmt: skip
                made.append(_Buyer(customer, card.id))
            return made

        return Command(fn)

    futures = [writer.submit(make(f, min(CHUNK, count - f))) for f in range(0, count, CHUNK)]
    return [b for f in futures for b in f.result()]


# -- the load ----------------------------------------------------------------------------------
@dataclass(slots=True)
class _Flows:
    """What happened to each flow, by its out_trade_no. Times are of the monotonic clock,
    which on Linux is the machine's, so the receiver's arrivals compare with them."""

    started: dict[str, float] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)
    paid: dict[str, float] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)


class _Refused(Exception):
    """The gateway refused a merchant's request, or answered without its signature."""


class _Connection:
    """One keep-alive HTTP/1.1 connection to the app, as a merchant's server keeps: just what
    the bench needs. httpx cost about 4 ms of this process's CPU per request, taken from the
    app it measures (see docs/performance.md)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes
                   ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        """The answer's status, headers (lower-case names) and body. A kept connection the
        app closed while it was idle (uvicorn's keep-alive timeout) is opened again, once."""
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = head.encode() + b"\r\n" + body
        reused = self.streams is not None
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(request)
        try:
            status_line = await reader.readline()
        except ConnectionError:
            status_line = b""
        if not status_line:
            self.close()
            if not reused:
                raise ConnectionError("the app closed the connection")
            return await self.post(path, headers, body)
        answer: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer[name.strip().lower()] = value.strip()
        content = await reader.readexactly(int(answer.get("content-length", 0)))
        return int(status_line.split()[1]), answer, content

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def _order_body(out_trade_no: str, amount: int, notify_url: str) -> bytes:
    """The body of a merchant's create-order request."""
    return json.dumps({
        "out_trade_no": out_trade_no, "amount": format_minor(amount, "CNY"), "subject": "压测商品",
        "return_url": "https://shop.example/return", "notify_url": notify_url,
    }, ensure_ascii=False).encode()  # fmt: skip


async def _create(http: _Connection, merchant: _Merchant, body: bytes) -> str:
    """Create an order as the merchant's server does (checking the gateway's signature on
    the answer); the pay token from its pay link."""
    status, h, content = await http.post(ORDERS, merchant.headers(ORDERS, body), body)
    key = signing.gateway_key()
    message = response_message(
        h.get(TIMESTAMP_HEADER.lower(), ""), h.get(NONCE_HEADER.lower(), ""), content
    )
    signature = h.get(SIGNATURE_HEADER.lower(), "")
    if h.get(SERIAL_HEADER.lower()) != key.serial or not verify(
        "RSA2", key.public_pem, message, signature
    ):
        raise _Refused("unsigned answer")
    answer = json.loads(content)
    if status >= 400:
        raise _Refused(answer.get("code", str(status)))
    return str(answer["pay_url"].rsplit("/", 1)[1])


_Made = tuple[int, str, str, int, float, float]
"""An order a merchant made: flow number, out_trade_no, pay token, amount, when its create
request was signed and when the signed answer was checked (monotonic clock)."""


def _merchants(
    pipe: Pipe, app: tuple[str, int], shops: list[tuple[str, str]], notify_url: str,
    args: argparse.Namespace,
) -> None:  # fmt: skip
    """The merchants' process: `args.submitters` servers of the (number, private key) `shops`,
    each keeping one flow in flight. Each signs a create request on its kept connection, sends
    the order made up `pipe` (a `_Made`) for its buyer to pay, and makes the next once the
    pipe answers that order's out_trade_no (paid or refused). Last, it sends what the gateway
    refused and the process's CPU seconds."""
    signed = [_Merchant(number, Signer("RSA2", pem)) for number, pem in shops]
    rng = random.Random(args.seed)  # noqa: S311 (a workload, not a secret)
    numbers = iter(range(args.flows))
    highest = _largest_amount(args)
    refused: Counter[str] = Counter()

    waiting: dict[str, asyncio.Future[None]] = {}

    def answered() -> None:
        while pipe.poll():
            waiting.pop(pipe.recv()).set_result(None)

    async def submitter() -> None:
        http = _Connection(*app)
        try:
            for n in numbers:
                out_trade_no, amount = f"B{n:09d}", rng.randint(LEAST, highest)
                body = _order_body(out_trade_no, amount, notify_url)
                started = time.monotonic()
                try:
                    token = await _create(http, signed[n % len(signed)], body)
                except _Refused as refusal:
                    refused[str(refusal)] += 1
                    continue
                waiting[out_trade_no] = asyncio.get_running_loop().create_future()
                pipe.send((n, out_trade_no, token, amount, started, time.monotonic()))
                await waiting[out_trade_no]
        finally:
            http.close()

    async def load() -> None:
        asyncio.get_running_loop().add_reader(pipe.fileno(), answered)
        await asyncio.gather(*(submitter() for _ in range(args.submitters)))

    asyncio.run(load())
    pipe.send((refused, time.process_time()))


@contextmanager
def _merchants_running(
    app: tuple[str, int], shops: list[tuple[str, str]], notify_url: str,
    args: argparse.Namespace,
) -> Iterator[tuple[Pipe, multiprocessing.process.BaseProcess]]:  # fmt: skip
    """The merchants' process started (spawned); our end of the pipe their orders come up (and
    answers go down), and the process."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_merchants, args=(theirs, app, shops, notify_url, args), daemon=True
    )
    process.start()
    try:
        yield ours, process
    finally:
        process.join(10)
        if process.is_alive():
            process.terminate()


async def _load(
    writer: Writer, vault: Vault, app: tuple[str, int], notify_url: str, people: list[_Buyer],
    shops: list[tuple[str, str]], args: argparse.Namespace,
) -> tuple[_Flows, float]:  # fmt: skip
    """The merchants make orders in their process; here each order's buyer pays it as it
    comes, through the app's writer, as the pay page would. What happened, and the merchants'
    CPU seconds."""
    flows = _Flows()
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[tuple[Counter[str], float]] = loop.create_future()
    paying: set[asyncio.Task[None]] = set()

    async def pay(n: int, out_trade_no: str, token: str, amount: int, started: float,
                  created: float) -> None:  # fmt: skip
        flows.started[out_trade_no], flows.created[out_trade_no] = started, created
        buyer = people[n % len(people)]
        payment = Payment(token=token, customer_id=buyer.customer_id, channel="online",
                          card_id=buyer.card_id, pin=PIN)  # fmt: skip
        try:
            (await writer.run(orders.pay(vault, payment))).value()
        except EbankError as refusal:
            flows.refused[refusal.code] += 1
        else:
            flows.paid[out_trade_no] = time.monotonic()
            flows.amounts[out_trade_no] = amount
        pipe.send(out_trade_no)  # the merchant's server may go on to its next order

    with _merchants_running(app, shops, notify_url, args) as (pipe, process):

        def arrived() -> None:
            while pipe.poll():
                message = pipe.recv()
                if len(message) == 2:  # the merchants are done
                    loop.remove_reader(pipe.fileno())
                    finished.set_result(message)
                    return
                task = loop.create_task(pay(*message))
                paying.add(task)
                task.add_done_callback(paying.discard)

        async def progress() -> None:
            while True:
                await asyncio.sleep(1)
                if not process.is_alive() and not finished.done():
                    finished.set_exception(SystemExit("the merchants' process failed"))
                print(f"  {len(flows.paid)} / {args.flows} paid", flush=True)

        loop.add_reader(pipe.fileno(), arrived)
        reporter = asyncio.create_task(progress())
        try:
            refused, merchants_cpu = await finished
            while paying:
                await asyncio.gather(*paying)
        finally:
            reporter.cancel()
    flows.refused.update(refused)
    return flows, merchants_cpu


def _arrivals(receiver_url: str, expected: int) -> list[_Arrival]:
    """What the receiver noted, once `expected` order.paid notices arrived (or none came for
    NOTICES_WAIT seconds)."""
    noted: list[_Arrival] = []
    paid: set[str] = set()
    last_news, shown = time.monotonic(), 0.0
    with httpx.Client(base_url=receiver_url, timeout=60) as http:
        while len(paid) < expected and time.monotonic() - last_news < NOTICES_WAIT:
            news = [tuple(a) for a in http.get(f"/?{len(noted)}").json()]
            if news:
                last_news = time.monotonic()
                noted += news  # type: ignore[arg-type]
                paid.update(a[2] for a in news if a[1] == "order.paid")
            elif time.monotonic() - shown >= 1:
                shown = time.monotonic()
                print(f"  {len(paid)} / {expected} notified", flush=True)
            time.sleep(0.05)
    return noted


def _percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(values) or [0.0]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return ordered[len(ordered) // 2] * 1000, p99 * 1000


def _bench(engine: Engine, args: argparse.Namespace) -> str:
    vault = Vault(random.Random(args.seed).randbytes(32))  # noqa: S311 (a throwaway bench key)
    writer = Writer(engine)
    try:
        print(f"setting up {args.merchants} merchants and {args.buyers} buyers on {args.db} "
              "...", flush=True)  # fmt: skip
        shops = _setup_merchants(writer, vault, args.merchants)
        people = _setup_buyers(writer, vault, args.buyers)
        with _receiver() as (receiver_url, receiver), _served(engine, writer, vault) as app:
            print(f"running {args.flows} flows (create -> pay -> notify) from "
                  f"{args.submitters} submitters ...", flush=True)  # fmt: skip
            batches, commands = writer.batches, writer.commands
            before = (time.process_time(), cpu_seconds(receiver))
            flows, merchants_cpu = asyncio.run(
                _load(writer, vault, app, f"{receiver_url}/notify", people, shops, args)
            )
            arrivals = _arrivals(receiver_url, len(flows.paid))
            used = {
                "bank": time.process_time() - before[0],
                "merchants": merchants_cpu,
                "receiver": cpu_seconds(receiver) - before[1],
            }
            batches, commands = writer.batches - batches, writer.commands - commands
    finally:
        writer.close()
    print(f"  {commands} writer commands in {batches} batches "
          f"(avg {commands / max(batches, 1):.0f})", flush=True)  # fmt: skip
    return _report(engine, args, flows, arrivals, used)


def cpu_per_flow(used: dict[str, float], flows: int) -> float:
    """Print the CPU each process took per flow; the total, in milliseconds."""
    each = {name: seconds * 1000 / flows for name, seconds in used.items()}
    print("  CPU per flow: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in each.items()))
    return sum(each.values())


def _report(
    engine: Engine, args: argparse.Namespace, flows: _Flows,
    arrivals: list[_Arrival], used: dict[str, float],
) -> str:  # fmt: skip
    """Check that every flow was paid and notified and the books hold; the RESULT line."""
    print("verifying ...", flush=True)
    first: dict[str, float] = {}
    for _, kind, out_trade_no, at, _ in arrivals:
        if kind == "order.paid":
            first.setdefault(out_trade_no, at)
    per_id = Counter(a[0] for a in arrivals)
    duplicates = sum(n - 1 for n in per_id.values())
    unsigned = sum(1 for a in arrivals if not a[4])
    with engine.connect() as conn:
        problems = queries.check_invariants(conn, check_running=False)
        paid_orders, paid_sum = conn.execute(
            select(func.count(), func.coalesce(func.sum(order_rows.c.amount), 0))
            .where(order_rows.c.status == "paid")
        ).one()  # fmt: skip
        pending = queries.get_account(conn, code=settlement.PENDING).balance
        retried = conn.execute(
            select(func.count()).where(notice_deliveries.c.status != "delivered")
        ).scalar_one()
    expected = sum(flows.amounts.values())
    unnotified = set(flows.paid) - set(first)
    failures = [
        *problems[:5],
        *(f"refused: {code} x{n}" for code, n in flows.refused.items()),
        *([f"{paid_orders} orders paid of {args.flows}"] if paid_orders != args.flows else []),
        *([f"paid {int(paid_sum)} != asked {expected}"] if int(paid_sum) != expected else []),
        *([f"merchant pending {pending} != paid {expected}"] if pending != expected else []),
        *([f"{len(unnotified)} flows never notified"] if unnotified else []),
        *([f"{unsigned} notices not signed by the gateway"] if unsigned else []),
    ]  # fmt: skip
    if failures:
        raise SystemExit("check failed: " + "; ".join(failures))
    began = min(flows.started.values())
    elapsed = max(first.values()) - began
    latencies = [first[o] - flows.started[o] for o in flows.paid]
    p50, p99 = _percentiles(latencies)
    for stage, values in (
        ("create (signed HTTP)", [flows.created[o] - flows.started[o] for o in flows.paid]),
        ("pay (PIN, writer)", [flows.paid[o] - flows.created[o] for o in flows.paid]),
        ("notify (after pay)", [first[o] - flows.paid[o] for o in flows.paid]),
    ):
        s50, s99 = _percentiles(values)
        print(f"  {stage:<22} p50 {s50:8.2f} ms  p99 {s99:8.2f} ms")
    print(f"{args.flows} flows in {elapsed:.2f}s: every order paid and notified "
          f"({duplicates} duplicate notices, {retried} failed attempts), "
          "merchant pending equals the payments, invariants hold")  # fmt: skip
    cpu = cpu_per_flow(used, args.flows)
    return (
        f"RESULT gateway db={args.db} flows={args.flows} "
        f"flows_per_s={args.flows / elapsed:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f} "
        f"cpu_ms_per_flow={cpu:.2f}"
    )
