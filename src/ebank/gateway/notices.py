"""Notifications to merchants: after every change of an order or a refund, a signed POST of the
event to the order's notify URL, until the merchant answers HTTP 2xx (issue 6, item 5).

`announce` records the notice (the merchant's log) and appends it to the outbox in the command
that made the change, so a notice exists if and only if the change committed. Background
workers (`deliver_notices`, any number of them) send what is due through the one delivery
mechanism (`notify.delivery`): claimed with a lease, every attempt recorded with its outcome, a
failed one tried again after 15 s, 1 min, 5 min, 30 min, 1 h, 6 h and 24 h, then given up. A
round's notices go out together, on a pool of threads that keep their connections to merchants
open (`Poster`), so that one slow merchant holds up one thread and not the round.

Delivery is at least once: a worker that dies after the merchant took a notice sends it again
after its lease, and a merchant may ask for any notice again (`resend`). Every attempt carries
the same body, so the same event id (`notice_id`): merchants deduplicate by it. The body is
`{"id", "type", "created_at", "data"}`, `data` being the public JSON of the order or refund.
The merchant's log (`notifications_of`) lists each notice with every attempt.
"""

import ipaddress
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPConnection, HTTPException, HTTPSConnection, RemoteDisconnected
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import Connection, bindparam, select

from ebank.core import audit, outbox
from ebank.core.clock import Clock, as_utc
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import outbox_events
from ebank.core.writer import Command, Tx, Writer
from ebank.gateway import signing
from ebank.gateway.tables import (
    notice_deliveries,
    notice_intake,
    notice_messages,
    notices,
    orders,
)
from ebank.ledger.models import reference
from ebank.notify import delivery

# After a failed attempt, wait this long before the next; after the last, give up (31 h 36 min
# after the first attempt).
BACKOFF: tuple[timedelta, ...] = (
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
)
TIMEOUT_SECONDS = 5.0  # to connect, and for each read of the answer
CONCURRENCY = 16  # notices of one round in flight at once
KEPT_PER_THREAD = 64  # connections to merchants a sending thread keeps open
MAX_ANSWER_BYTES = 4096  # of the merchant's answer, read only to keep the connection
AGENT = "ebank-gateway-notify/1"
_SAFE = "/%:@!$&'()*+,;=~-._?"  # kept as they are in a notify URL's path and query
MAX_LOG = 200
# order.<what happened> (paid, held, captured, refunded...), refund.succeeded, refund.rejected.
_EVENT_TYPE = re.compile(r"(order|refund)\.[a-z]{1,17}")
_NOTICE_ID = re.compile(r"N\d{8}(\d{10})")


def notice_id(number: int, created_at: datetime) -> str:
    """The stable id a notice's every attempt carries: N, the business day, its number."""
    return reference("N", number, created_at)


def _link(conn: Connection, event_ids: list[int]) -> None:
    """Note on each new notice the outbox event that carries it, as the delivery takes that
    in: the log then finds its delivery state and attempts."""
    found = conn.execute(
        select(outbox_events.c.id, outbox_events.c.payload).where(outbox_events.c.id.in_(event_ids))
    )
    links = []
    for event_id, text in found:
        try:
            number = _NOTICE_ID.fullmatch(json.loads(text)["id"])
        except (KeyError, TypeError, ValueError):
            continue  # unreadable: the delivery gives it up
        if number is not None:
            links.append({"b_notice": int(number.group(1)), "b_event": event_id})
    if links:
        n = notices.c
        conn.execute(
            notices.update()
            .where(n.id == bindparam("b_notice"), n.event_id.is_(None))
            .values(event_id=bindparam("b_event")),
            links,
        )


NOTICES = delivery.Queue(
    "gateway_notice", (), notice_intake, notice_messages, notice_deliveries,
    backoff=BACKOFF, for_customers=False, plain=("id", "url", "created_at", "merchant_no", "data"),
    on_intake=_link,
)  # fmt: skip


def announce(
    tx: Tx,
    *,
    merchant_id: int,
    merchant_no: str,
    order_id: int,
    notify_url: str,
    event_type: str,
    data: dict[str, Any],
) -> None:
    """Notify the merchant of `event_type` (order.paid, refund.succeeded...) at the order's
    notify URL, in the transaction of the change: the notice is in the merchant's log at once,
    and in the outbox for the delivery. `data` is the public JSON of the order or refund as it
    now stands. The URL was checked when the order was created."""
    if type(merchant_id) is not int or type(order_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a notice names its merchant and order by id")
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise EbankError("INVALID_INPUT", reason="a notice's type is order.<x> or refund.<x>")
    if not isinstance(merchant_no, str):
        raise EbankError("INVALID_INPUT", reason="a notice names its merchant's number")
    if not isinstance(notify_url, str) or not isinstance(data, dict):
        raise EbankError("INVALID_INPUT", reason="a notice has a notify URL and a JSON object")
    number = tx.new_id(notices.name)
    tx.conn.execute(
        notices.insert(),
        dict(id=number, merchant_id=merchant_id, order_id=order_id, type=event_type,
             created_at=tx.now, event_id=None),
    )  # fmt: skip
    payload = {
        "id": notice_id(number, tx.now), "kind": event_type, "expires_at": None,
        "url": notify_url, "created_at": as_utc(tx.now).isoformat(),
        # Whom it is for, inside what is signed: a notice forwarded to another merchant fails.
        "merchant_no": merchant_no,
        "data": json.dumps(data, ensure_ascii=False, sort_keys=True),
    }  # fmt: skip
    outbox.emit(tx, NOTICES.topic, f"merchant:{merchant_id}", payload)


def body_of(message: delivery.Message) -> bytes:
    """The notice as every attempt posts it, byte for byte."""
    body = {
        "id": message.plain["id"],
        "merchant_no": message.plain["merchant_no"],
        "type": message.kind,
        "created_at": message.plain["created_at"],
        "data": json.loads(message.plain["data"]),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# -- sending --------------------------------------------------------------------------------
class NotAcknowledged(Exception):
    """The merchant did not take a notice. The text, kept with the attempt, is the HTTP status
    or the kind of network failure, never what the merchant answered."""


_Origin = tuple[str, str, int]  # scheme, host, port


def _split(url: str) -> tuple[_Origin, str]:
    """Where a notify URL's notices go, and the request target to post to; ValueError if it is
    not an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = quote(parts.path or "/", safe=_SAFE) + (
        "?" + quote(parts.query, safe=_SAFE) if parts.query else ""
    )
    return (parts.scheme, parts.hostname.encode("idna").decode(), port), target


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return not ip.is_global or ip.is_multicast


def literal_refused(host: str) -> bool:
    """Whether a notify URL's host names the bank's own machine or network outright: a
    loopback, private, link-local, reserved or multicast address, or `localhost`. Allowed only
    with `gateway_private_notify` (a demo or tests whose shop is on the same machine)."""
    if get_settings().gateway_private_notify:
        return False
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return _private(name)
    except ValueError:  # a name, not an address: checked when a notice is sent
        return False


def _resolve_public(host: str, port: int) -> None:
    """OSError unless every address `host` resolves to is public (a name can be pointed at
    the bank's own network after the order was made)."""
    if get_settings().gateway_private_notify:
        return
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not found or any(_private(str(info[4][0])) for info in found):
        raise PermissionError("the notify URL's host is not a public address")


class Poster:
    """Posts notices on a pool of threads, each keeping its connections to merchants open from
    one notice to the next, so that a round's notices are in flight together.

    It speaks HTTP/1.1 with the standard library's `http.client`: here httpx managed about
    1,800 bare posts a second per process and 900 signed notices, short of the gateway's 1,000
    flows a second; `http.client` does about 4,700 bare posts a second on one thread.
    """

    def __init__(
        self,
        *,
        timeout: float = TIMEOUT_SECONDS,
        concurrency: int = CONCURRENCY,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.tls = tls or ssl.create_default_context()
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="ebank-notice")
        self._local = threading.local()
        self._open: set[HTTPConnection] = set()  # every thread's, to close them all at the end
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """Post one notice; NotAcknowledged unless the merchant answered 2xx."""
        try:
            status = self._exchange(*_split(url), body, headers)
        except (OSError, HTTPException, ValueError) as exc:  # refused, reset, timed out, bad URL
            raise NotAcknowledged(type(exc).__name__) from None
        if not 200 <= status < 300:
            raise NotAcknowledged(f"HTTP {status}")

    def _exchange(self, origin: _Origin, target: str, body: bytes, headers: dict[str, str]) -> int:
        """The answer's status. A kept connection that the merchant closed while it was idle
        fails at once; it is replaced, once (should the merchant have had the notice after all,
        it deduplicates by its id)."""
        kept: dict[_Origin, HTTPConnection] = self._local.__dict__.setdefault("kept", {})
        conn = kept.pop(origin, None)
        while True:
            reused = conn is not None and conn.sock is not None
            conn = conn or self._connect(origin)
            try:
                conn.request("POST", target, body=body, headers=headers | {"User-Agent": AGENT})
                answer = conn.getresponse()
                answer.read(MAX_ANSWER_BYTES)  # read, so that the connection can serve again
            except (RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._close(conn)
                if not reused:
                    raise
                conn = None
                continue
            except BaseException:
                self._close(conn)
                raise
            if answer.isclosed():
                kept[origin] = conn
                while len(kept) > KEPT_PER_THREAD:
                    self._close(kept.pop(next(iter(kept))))  # the least recently used
            else:
                self._close(conn)  # a long answer: not worth reading to the end
            return answer.status

    def _connect(self, origin: _Origin) -> HTTPConnection:
        scheme, host, port = origin
        _resolve_public(host, port)
        conn = (
            HTTPSConnection(host, port, timeout=self.timeout, context=self.tls)
            if scheme == "https"
            else HTTPConnection(host, port, timeout=self.timeout)
        )
        with self._lock:
            self._open.add(conn)
        return conn

    def _close(self, conn: HTTPConnection) -> None:
        conn.close()
        with self._lock:
            self._open.discard(conn)

    def close(self) -> None:
        self.pool.shutdown()
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()


def _sender(poster: Poster, clock: Clock) -> Callable[[delivery.Message], None]:
    def send(message: delivery.Message) -> None:
        body = body_of(message)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        headers |= signing.signed_headers(body, now=clock.now())
        poster.post(message.plain["url"], body, headers)

    return send


def deliver_notices(writer: Writer, poster: Poster, *, limit: int = delivery.ROUND) -> int:
    """Send the notices that are due, up to `limit`, together; how many were dealt with
    (delivered or failed). Safe to run in several workers at once."""
    send = _sender(poster, writer.clock)
    return delivery.deliver(writer, NOTICES, send, limit=limit, pool=poster.pool)


def run_notice_loop(
    writer: Writer, poster: Poster, stop: threading.Event, poll_seconds: float = 0.5
) -> None:
    """Deliver notices until `stop` is set (a background thread's body)."""
    delivery.run_loop(
        lambda limit: deliver_notices(writer, poster, limit=limit),
        stop, poll_seconds=poll_seconds, what="gateway notice",
    )  # fmt: skip


def start_notice_delivery(writer: Writer, poster: Poster | None = None) -> Callable[[], None]:
    """Deliver notices on a background thread (the worker's, or the demo app's); returns
    `stop`, which ends the loop after its current round."""
    chosen = poster or Poster()
    halt = delivery.start(
        lambda stop: run_notice_loop(writer, chosen, stop), name="ebank-gateway-notices"
    )
    if poster is not None:
        return halt

    def stop() -> None:
        halt()
        chosen.close()

    return stop


# -- the merchant's log and re-sending -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: datetime
    outcome: str  # delivered | retrying | failed
    error: str | None  # the HTTP status or the network failure


@dataclass(frozen=True, slots=True)
class Notice:
    id: str  # the event id every attempt carries
    type: str
    trade_no: str
    state: str  # pending | sending | delivered | failed (given up)
    created_at: datetime
    next_attempt_at: datetime | None  # while pending
    attempts: tuple[Attempt, ...]


def _notices(conn: Connection, *where: Any, limit: int) -> list[Notice]:
    """Notices matching `where`, newest first, with their attempts."""
    n, m, d = notices, notice_messages, notice_deliveries
    rows = conn.execute(
        select(n.c.id, n.c.type, n.c.created_at, n.c.event_id, orders.c.trade_no, m.c.state,
               m.c.due_at)
        .join(orders, orders.c.id == n.c.order_id)
        .outerjoin(m, m.c.event_id == n.c.event_id)
        .where(*where)
        .order_by(n.c.id.desc())
        .limit(limit)
    ).all()  # fmt: skip
    tries: dict[int, list[Attempt]] = {r.event_id: [] for r in rows if r.event_id is not None}
    if tries:
        query = (
            select(d.c.event_id, d.c.attempt, d.c.at, d.c.status, d.c.error)
            .where(d.c.event_id.in_(tries))
            .order_by(d.c.event_id, d.c.attempt)
        )
        for t in conn.execute(query):
            tries[t.event_id].append(Attempt(t.attempt, as_utc(t.at), t.status, t.error))
    found = []
    for row in rows:
        attempts = tuple(tries.get(row.event_id, ()))
        created = as_utc(row.created_at)
        due: datetime | None = None
        if row.state is None:  # not yet taken in by the delivery: due since it was made
            state, due = "pending", created
        elif row.state == "done":
            state = "delivered" if attempts and attempts[-1].outcome == "delivered" else "failed"
        elif row.state == "waiting":
            state, due = "pending", as_utc(row.due_at)
        else:
            state = "sending"
        found.append(
            Notice(notice_id(row.id, created), row.type, row.trade_no, state, created, due,
                   attempts)
        )  # fmt: skip
    return found


def notifications_of(
    conn: Connection, *, merchant_id: int, trade_no: str | None = None, limit: int = 50
) -> list[Notice]:
    """The merchant's notices, newest first, each with its attempts; only one order's when
    `trade_no` is given (another merchant's order has none)."""
    if type(limit) is not int or not 0 < limit <= MAX_LOG:
        raise EbankError("INVALID_INPUT", reason=f"a page of notices is 1-{MAX_LOG}")
    where = [notices.c.merchant_id == merchant_id]
    if trade_no is not None:
        where.append(orders.c.trade_no == trade_no)
    return _notices(conn, *where, limit=limit)


def resend(*, merchant_id: int, event_id: str, actor: str, channel: str) -> Command[Notice]:
    """Send a notice again at the merchant's request, even one delivered already: it is due
    now, as the notice's next attempt (one given up stays given up if that attempt fails too).
    One being sent at this moment is left to that attempt. Another merchant's notice is
    NOTICE_NOT_FOUND, as an unknown one is."""

    def run(tx: Tx) -> Notice:
        parsed = _NOTICE_ID.fullmatch(event_id) if isinstance(event_id, str) else None
        number = int(parsed.group(1)) if parsed else 0
        n, m = notices, notice_messages
        row = tx.conn.execute(
            select(n.c.created_at, n.c.event_id).where(
                n.c.id == number, n.c.merchant_id == merchant_id
            )
        ).first()
        if row is None or notice_id(number, as_utc(row.created_at)) != event_id:
            raise EbankError("NOTICE_NOT_FOUND")
        state = None  # not yet taken in by the delivery: due already
        if row.event_id is not None:
            lock = select(m.c.state).where(m.c.event_id == row.event_id).with_for_update()
            state = tx.conn.execute(lock).scalar_one()
        if state in ("waiting", "done"):
            again = m.update().where(m.c.event_id == row.event_id)
            tx.conn.execute(again.values(state="waiting", due_at=tx.now))
        audit.record(
            tx, actor=actor, action="gateway.notice.resend", subject=f"merchant:{merchant_id}",
            channel=channel, detail={"notice": event_id, "was": state or "new"},
        )  # fmt: skip
        [notice] = _notices(tx.conn, n.c.id == number, limit=1)
        return notice

    return Command(run)
