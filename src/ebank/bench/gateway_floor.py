"""`ebank bench gateway-floor`: the least CPU a create -> pay -> notify flow costs on this
machine, with none of ebank's logic in its path; what `ebank bench gateway` is measured against.

Every flow does only what issue 6 makes each one do, the cheapest way Python offers:
- the merchant signs its request with the SDK's `Signer` (RSA-2048) and checks the gateway's
  signature on the answer (the gateway bench's own merchant code);
- the bank is a bare ASGI app under uvicorn: it checks the timestamp and the signature (keys
  loaded once), keeps the nonce and the order through a group-commit writer on raw `sqlite3`
  (WAL, synchronous=FULL, as ebank runs it), and signs its answer;
- the buyer's transaction PIN is verified at the bank's PIN cost (`security.HASHERS`, in a
  worker thread), and the payment is one writer command: the order paid, the buyer's account
  debited if it can pay, the merchant's credited, two postings, an audit row and the notice;
- a sender signs the notice and POSTs it to the gateway bench's receiver on a kept connection,
  and the attempt is recorded.

Nothing is looked up that is not needed, nothing is validated beyond the signature, and each
table has one index at most. The bank, the merchants and the receiver run in processes of
their own, so the flow can use every core. Each process's CPU time is read at the end: the
RESULT line says what a flow costs in CPU and so how many cores a rate of 1,000 flows a
second would take, whatever the code on top.
"""

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import queue
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from http.client import HTTPConnection
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ebank.bench.gateway import (
    ORDERS,
    PIN,
    _arrivals,
    _listening,
    _merchants_running,
    _new_private_key,
    _percentiles,
    _receiver,
    cpu_per_flow,
    cpu_seconds,
    read_body,
)
from ebank.gateway import signing
from ebank.gateway.client import MERCHANT_HEADER, Signer, request_message
from ebank.security.service import HASHERS

FUNDING = 10**12  # fen per buyer: ten million flows of ¥1,000 at most would not spend it
TARGET = 1_000  # flows per second (issue 6)

_SCHEMA = """
CREATE TABLE orders (id INTEGER PRIMARY KEY, merchant TEXT, out_trade_no TEXT, amount INTEGER,
  status TEXT, buyer INTEGER, token TEXT, UNIQUE (merchant, out_trade_no));
CREATE TABLE nonces (merchant TEXT, nonce TEXT, PRIMARY KEY (merchant, nonce));
CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER);
CREATE TABLE postings (id INTEGER PRIMARY KEY, account INTEGER, amount INTEGER);
CREATE TABLE notices (id INTEGER PRIMARY KEY, order_id INTEGER, body BLOB, attempts INTEGER,
  status TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY, action TEXT, subject INTEGER);
"""
MERCHANT_ACCOUNT = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument("--submitters", type=int, default=64)
    parser.add_argument("--buyers", type=int, default=1_000)
    parser.add_argument("--senders", type=int, default=8, help="notice sender threads")
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> str:
    if min(args.flows, args.merchants, args.submitters, args.buyers, args.senders) < 1:
        raise SystemExit("need at least 1 flow, merchant, submitter, buyer and sender")
    return _bench(args)


# -- the bank --------------------------------------------------------------------------------
class _GroupCommit:
    """One thread writing for the process: it takes every command queued, runs them in one
    transaction and commits once; a command that fails changes nothing and fails alone."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "wal_autocheckpoint=10000"):
            self.db.execute(f"PRAGMA {pragma}")
        self.jobs: queue.SimpleQueue[tuple[Callable[[sqlite3.Connection], Any], Any]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._loop, name="floor-writer", daemon=True).start()

    def submit(self, command: Callable[[sqlite3.Connection], Any], done: Any) -> None:
        """Queue `command`; `done(ok, result or error)` is called after the commit."""
        self.jobs.put((command, done))

    async def run(self, command: Callable[[sqlite3.Connection], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(ok: bool, value: Any) -> None:
            settle = future.set_result if ok else future.set_exception
            loop.call_soon_threadsafe(settle, value)

        self.submit(command, done)
        return await future

    def _loop(self) -> None:
        while True:
            batch = [self.jobs.get()]
            while not self.jobs.empty():
                batch.append(self.jobs.get())
            self.db.execute("BEGIN IMMEDIATE")
            outcomes = []
            for command, _ in batch:
                self.db.execute("SAVEPOINT command")
                try:
                    outcomes.append((True, command(self.db)))
                    self.db.execute("RELEASE command")
                except sqlite3.Error as error:
                    self.db.execute("ROLLBACK TO command")
                    self.db.execute("RELEASE command")
                    outcomes.append((False, error))
            self.db.execute("COMMIT")
            for (_, done), (ok, value) in zip(batch, outcomes, strict=True):
                done(ok, value)


class _Bank:
    """The bare gateway: create an order over signed HTTP, let its buyer pay, tell the
    merchant."""

    def __init__(
        self, path: str, merchant_keys: dict[str, str], notify_port: int,
        args: argparse.Namespace,
    ) -> None:  # fmt: skip
        self.writer = _GroupCommit(path)
        self.buyers = args.buyers
        self.keys = {
            number: serialization.load_pem_public_key(pem.encode())
            for number, pem in merchant_keys.items()
        }
        self.pin_hash = HASHERS["transaction_pin"].hash(PIN)
        self.notices: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()
        self.paying: set[asyncio.Task[None]] = set()
        self.created = 0
        for _ in range(args.senders):
            threading.Thread(target=self._send, args=(notify_port,), daemon=True).start()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        status, answer = 404, b'{"code":"NOT_FOUND"}'
        if scope["method"] == "POST" and scope["path"] == ORDERS:
            status, answer = await self._create(scope, body)
        headers = signing.signed_headers(answer, now=datetime.now(UTC))
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})

    async def _create(self, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
        h = {name.decode(): value.decode() for name, value in scope["headers"]}
        merchant, stamp = h.get(MERCHANT_HEADER.lower(), ""), h.get("ebank-timestamp", "")
        nonce, signature = h.get("ebank-nonce", ""), h.get("ebank-signature", "")
        key = self.keys.get(merchant)
        if key is None or not stamp.isdigit() or abs(int(stamp) - time.time()) > 300:
            return 401, b'{"code":"SIGNATURE_INVALID"}'
        try:
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(
                base64.b64decode(signature), request_message("POST", ORDERS, stamp, nonce, body),
                padding.PKCS1v15(), hashes.SHA256(),
            )  # fmt: skip
        except Exception:
            return 401, b'{"code":"SIGNATURE_INVALID"}'
        order = json.loads(body)
        amount = int(Decimal(order["amount"]) * 100)
        token = secrets.token_urlsafe(24)

        def create(db: sqlite3.Connection) -> int:
            db.execute("INSERT INTO nonces VALUES (?, ?)", (merchant, nonce))
            cursor = db.execute(
                "INSERT INTO orders (merchant, out_trade_no, amount, status, token) "
                "VALUES (?, ?, ?, 'created', ?)", (merchant, order["out_trade_no"], amount, token),
            )  # fmt: skip
            return int(cursor.lastrowid or 0)

        try:
            order_id = await self.writer.run(create)
        except sqlite3.IntegrityError:
            return 409, b'{"code":"DUPLICATE"}'
        self.created += 1
        buyer = 1 + self.created % self.buyers
        # The buyer pays on the pay page: here, at once, as the gateway bench's buyers do.
        task = asyncio.create_task(self._pay(order_id, buyer, amount, order))
        self.paying.add(task)
        task.add_done_callback(self.paying.discard)
        answer = {"trade_no": order_id, "pay_url": f"http://bank/pay/{token}", "status": "created"}
        return 200, json.dumps(answer).encode()

    async def _pay(self, order_id: int, buyer: int, amount: int, order: dict[str, Any]) -> None:
        verified = await asyncio.to_thread(HASHERS["transaction_pin"].verify, self.pin_hash, PIN)
        assert verified
        notice = json.dumps({
            "id": f"N{order_id}", "type": "order.paid",
            "data": {"out_trade_no": order["out_trade_no"], "amount": order["amount"]},
        }).encode()  # fmt: skip

        def pay(db: sqlite3.Connection) -> int:
            debited = db.execute(
                "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?",
                (amount, buyer, amount),
            )  # fmt: skip
            if debited.rowcount != 1:
                raise sqlite3.IntegrityError("insufficient funds")
            db.execute(
                "UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, MERCHANT_ACCOUNT)
            )
            db.executemany(
                "INSERT INTO postings (account, amount) VALUES (?, ?)",
                [(buyer, -amount), (MERCHANT_ACCOUNT, amount)],
            )  # fmt: skip
            db.execute(
                "UPDATE orders SET status = 'paid', buyer = ? WHERE id = ? AND status = 'created'",
                (buyer, order_id),
            )  # fmt: skip
            db.execute("INSERT INTO audit (action, subject) VALUES ('pay', ?)", (order_id,))
            cursor = db.execute(
                "INSERT INTO notices (order_id, body, attempts, status) VALUES (?, ?, 0, 'due')",
                (order_id, notice),
            )  # fmt: skip
            return int(cursor.lastrowid or 0)

        self.notices.put((await self.writer.run(pay), notice))

    def _send(self, port: int) -> None:
        """A sender thread: sign each notice, POST it, record the attempt."""
        conn = HTTPConnection("127.0.0.1", port)
        while True:
            notice_id, body = self.notices.get()
            headers = signing.signed_headers(body, now=datetime.now(UTC))
            conn.request("POST", "/notify", body=body,
                         headers=headers | {"Content-Type": "application/json"})  # fmt: skip
            answer = conn.getresponse()
            delivered = answer.read() == b"success"

            def record(db: sqlite3.Connection, i: int = notice_id, ok: bool = delivered) -> None:
                db.execute(
                    "UPDATE notices SET attempts = attempts + 1, status = ? WHERE id = ?",
                    ("delivered" if ok else "due", i),
                )  # fmt: skip

            self.writer.submit(record, lambda _ok, _value: None)


def _serve_bank(
    pipe: Pipe, path: str, merchant_keys: dict[str, str], notify_port: int,
    args: argparse.Namespace,
) -> None:  # fmt: skip
    """The bank's process: serve on a free loopback port, after sending the port up `pipe`."""
    import uvicorn  # here, not above: every `ebank` command imports the bench scenarios

    sock = _listening()
    bank = _Bank(path, merchant_keys, notify_port, args)
    pipe.send(sock.getsockname()[1])
    config = uvicorn.Config(bank, log_level="warning", lifespan="off", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def _set_up(path: str, buyers: int) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        db.executemany(
            "INSERT INTO accounts VALUES (?, ?)",
            [(MERCHANT_ACCOUNT, 0), *((i, FUNDING) for i in range(1, buyers + 1))],
        )  # fmt: skip


# -- the run ---------------------------------------------------------------------------------
def _bench(args: argparse.Namespace) -> str:
    signing.gateway_key()  # made now, if it is not there, so that every process loads one key
    context = multiprocessing.get_context("spawn")  # this process may have threads
    shops = [(f"M{n:03d}", _new_private_key()) for n in range(args.merchants)]
    public = {number: Signer("RSA2", pem).public_key for number, pem in shops}
    with tempfile.TemporaryDirectory(prefix="ebank-floor-") as tmp, _receiver() as (url, rpid):
        path = str(Path(tmp) / "floor.db")
        _set_up(path, args.buyers)
        ours, theirs = context.Pipe()
        bank = context.Process(
            target=_serve_bank, daemon=True,
            args=(theirs, path, public, int(url.rsplit(":", 1)[1]), args),
        )  # fmt: skip
        bank.start()
        try:
            if not ours.poll(60):
                raise SystemExit("the bank did not start")
            app = ("127.0.0.1", ours.recv())
            print(f"running {args.flows} flows (create -> pay -> notify) from "
                  f"{args.submitters} submitters ...", flush=True)  # fmt: skip
            before = {"bank": cpu_seconds(bank.pid or 0), "receiver": cpu_seconds(rpid)}
            started: dict[str, float] = {}
            with _merchants_running(app, shops, f"{url}/notify", args) as (made, merchants):
                while True:  # the bank's buyer pays each order at once: go on to the next
                    if not made.poll(1):
                        if not merchants.is_alive():
                            raise SystemExit("the merchants' process failed")
                        continue
                    message = made.recv()
                    if len(message) == 2:  # the merchants are done
                        refused, merchants_cpu = message
                        break
                    started[message[1]] = message[4]
                    made.send(message[1])
            if refused:
                raise SystemExit(f"refused: {dict(refused)}")
            arrivals = _arrivals(url, args.flows)
            _recorded(path, args.flows)
            used = {
                "bank": cpu_seconds(bank.pid or 0) - before["bank"],
                "merchants": merchants_cpu,
                "receiver": cpu_seconds(rpid) - before["receiver"],
            }
        finally:
            bank.terminate()
            bank.join(10)
        return _report(path, args, started, arrivals, used)


def _recorded(path: str, flows: int) -> None:
    """Wait (a few seconds at most) for the senders' last attempts to be committed."""
    deadline = time.monotonic() + 10
    with closing(sqlite3.connect(path)) as db:
        while time.monotonic() < deadline:
            query = "SELECT count(*) FROM notices WHERE status = 'delivered'"
            if db.execute(query).fetchone()[0] >= flows:
                return
            time.sleep(0.05)


def _report(
    path: str, args: argparse.Namespace, started: dict[str, float],
    arrivals: list[Any], used: dict[str, float],
) -> str:  # fmt: skip
    first: dict[str, float] = {}
    for _, kind, out_trade_no, at, signed in arrivals:
        if kind == "order.paid" and signed:
            first.setdefault(out_trade_no, at)
    with closing(sqlite3.connect(path)) as db:
        paid, delivered = db.execute(
            "SELECT (SELECT count(*) FROM orders WHERE status = 'paid'), "
            "(SELECT count(*) FROM notices WHERE status = 'delivered')"
        ).fetchone()
        books = db.execute("SELECT sum(balance) FROM accounts").fetchone()[0]
    if len(first) != args.flows or paid != args.flows or books != args.buyers * FUNDING:
        raise SystemExit(
            f"check failed: {len(first)} notified, {paid} paid, of {args.flows}; "
            f"books {books} != {args.buyers * FUNDING}"
        )
    elapsed = max(first.values()) - min(started.values())
    p50, p99 = _percentiles([first[o] - started[o] for o in first])
    cpu = cpu_per_flow(used, args.flows)
    print(f"{args.flows} flows in {elapsed:.2f}s: every order paid and notified "
          f"({delivered} notices recorded delivered), the books balance; "
          f"{TARGET:,} flows/s would take {cpu * TARGET / 1000:.2f} cores "
          f"of this machine's {os.cpu_count()}")  # fmt: skip
    return (
        f"RESULT gateway-floor flows={args.flows} flows_per_s={args.flows / elapsed:.0f} "
        f"p50_ms={p50:.2f} p99_ms={p99:.2f} cpu_ms_per_flow={cpu:.3f} "
        f"cores_at_{TARGET}_per_s={cpu * TARGET / 1000:.2f}"
    )
