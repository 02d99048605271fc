"""Notifications to merchants: a signed POST to the notify URL that the merchant's SDK verifies,
one stable event id through every attempt and re-send, retries on the merchant schedule (15 s,
1 min, 5 min, 30 min, 1 h, 6 h, 24 h) whatever the failure (an error status, a closed port, an
answer too slow), nothing lost while the endpoint is down for hours, given up after the last
delay, the merchant's log and re-send (never another merchant's notice), two workers that never
send one notice twice, and a round's notices sent together.

The merchant's endpoint is a real HTTP server on 127.0.0.1. Every test runs on SQLite and
PostgreSQL.
"""

import contextlib
import functools
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, select

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command, Writer
from ebank.gateway import notices, orders, signing
from ebank.gateway.client import GatewayClient, SignatureError
from ebank.gateway.models import OrderRequest, OrderView
from ebank.gateway.notices import BACKOFF, Notice, Poster, deliver_notices, notifications_of
from ebank.gateway.tables import notice_messages
from tests.gateway.support import Shop
from tests.support import VAULT, WAIT, code_of, outcome

TIMEOUT = 0.3  # the tests' poster waits this long for an answer (the bank's: 5 s)


# -- the merchant's endpoint -------------------------------------------------------------------
class Endpoint:
    """A merchant's notify URL on 127.0.0.1 (HTTP/1.1, keep-alive): keeps every POST it gets
    and answers as told (`status`, after `delay` seconds); `down()` closes the port and every
    connection, `up()` opens the port again."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.peers: list[int] = []  # the client's port of each POST: one per connection
        self._connections: set[socket.socket] = set()
        self.status, self.delay, self.answer = 200, 0.0, b"success"
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with endpoint._lock:
                    endpoint._connections.add(self.connection)

            def finish(self) -> None:
                with endpoint._lock:
                    endpoint._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with endpoint._lock:
                    endpoint.posts.append((dict(self.headers), body))
                    endpoint.peers.append(self.client_address[1])
                    endpoint.in_flight += 1
                    endpoint.most_in_flight = max(endpoint.most_in_flight, endpoint.in_flight)
                    status, delay, answer = endpoint.status, endpoint.delay, endpoint.answer
                try:
                    time.sleep(delay)
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    self.close_connection = True  # the bank gave up waiting and hung up
                finally:
                    with endpoint._lock:
                        endpoint.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def up(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.posts]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.down()


@pytest.fixture
def poster() -> Iterator[Poster]:
    made = Poster(timeout=TIMEOUT, concurrency=8)
    yield made
    made.close()


@functools.cache
def merchant_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip


def merchant_sdk(clock: FixedClock, merchant_no: str = "M000000001") -> GatewayClient:
    """The merchant's side: the SDK, holding the gateway's public key, checks notifications."""
    return GatewayClient(
        "http://bank.invalid", merchant_no, merchant_pem(), signing.gateway_key().public_pem,
        clock=lambda: clock.now().timestamp(),
    )  # fmt: skip


# -- helpers -----------------------------------------------------------------------------------
def announce(
    writer: Writer, shop: Shop, order: OrderView, url: str, event_type: str = "order.paid"
) -> None:
    writer.execute(
        Command(
            lambda tx: notices.announce(
                tx, merchant_id=shop.id, merchant_no=shop.merchant.merchant_no,
                order_id=order.id, notify_url=url,
                event_type=event_type, data=orders.public(order),
            )
        )
    )  # fmt: skip


def log_of(engine: Engine, shop: Shop, **where: Any) -> list[Notice]:
    with engine.connect() as conn:
        return notifications_of(conn, merchant_id=shop.id, **where)


def states(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(notice_messages.c.state)).scalars())


def schedule_from(start: datetime) -> list[datetime]:
    """When each attempt of a notice that keeps failing is made."""
    times = [start]
    for delay in BACKOFF:
        times.append(times[-1] + delay)
    return times


# -- delivery ----------------------------------------------------------------------------------
def test_a_notice_is_delivered_on_the_first_try_signed_by_the_gateway(
    writer: Writer, engine: Engine, clock: FixedClock, shop: Shop, endpoint: Endpoint,
    poster: Poster,
) -> None:  # fmt: skip
    order = shop.order(12_345)
    announce(writer, shop, order, endpoint.url)
    assert deliver_notices(writer, poster) == 1
    [(headers, body)] = endpoint.posts
    assert merchant_sdk(clock, shop.merchant.merchant_no).verify_notification(headers, body) == {
        "id": log_of(engine, shop)[0].id,
        "merchant_no": shop.merchant.merchant_no,
        "type": "order.paid",
        "created_at": clock.now().isoformat(),
        "data": json.loads(json.dumps(orders.public(order))),
    }
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Ebank-Timestamp"] == str(int(clock.now().timestamp()))
    [notice] = log_of(engine, shop)
    assert (notice.type, notice.trade_no, notice.state) == ("order.paid", order.trade_no,
                                                            "delivered")  # fmt: skip
    assert [(a.number, a.outcome, a.error, a.at) for a in notice.attempts] == [
        (1, "delivered", None, clock.now())
    ]
    assert deliver_notices(writer, poster) == 0, "delivered once: nothing is due any more"
    assert len(endpoint.posts) == 1


def test_a_body_altered_on_the_way_does_not_verify(
    writer: Writer, clock: FixedClock, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    [(headers, body)] = endpoint.posts
    forged = body.replace(b'"order.paid"', b'"order.closed"')
    with pytest.raises(SignatureError):
        merchant_sdk(clock, shop.merchant.merchant_no).verify_notification(headers, forged)


FAILURES = {
    "error status": "NotAcknowledged: HTTP 500",
    "closed port": "NotAcknowledged: ConnectionRefusedError",
    "answer too slow": "NotAcknowledged: TimeoutError",
}


def fail(endpoint: Endpoint, how: str) -> None:
    if how == "error status":
        endpoint.status = 500
    elif how == "closed port":
        endpoint.down()
    else:
        endpoint.delay = TIMEOUT * 3


def mend(endpoint: Endpoint, how: str) -> None:
    endpoint.status, endpoint.delay = 200, 0.0
    if how == "closed port":
        endpoint.up()


@pytest.mark.parametrize("how", list(FAILURES))
def test_a_failing_endpoint_is_retried_on_exactly_the_schedule_until_fixed(
    writer: Writer, engine: Engine, clock: FixedClock, shop: Shop, endpoint: Endpoint,
    poster: Poster, how: str,
) -> None:  # fmt: skip
    start = clock.now()
    announce(writer, shop, shop.order(100), endpoint.url)
    fail(endpoint, how)
    assert deliver_notices(writer, poster) == 1
    for n, delay in enumerate(BACKOFF):
        if n == len(BACKOFF) - 1:
            mend(endpoint, how)  # fixed before the last attempt
        clock.advance(delay - timedelta(seconds=1))
        assert deliver_notices(writer, poster) == 0, "retried before its time"
        clock.advance(timedelta(seconds=1))
        assert deliver_notices(writer, poster) == 1, "not retried on time"
    [notice] = log_of(engine, shop)
    assert notice.state == "delivered"
    assert [a.at for a in notice.attempts] == schedule_from(start)
    assert [a.outcome for a in notice.attempts] == ["retrying"] * len(BACKOFF) + ["delivered"]
    assert [a.error for a in notice.attempts] == [FAILURES[how]] * len(BACKOFF) + [None]
    delivered = [body for _, body in endpoint.posts]
    assert len(set(delivered)) == 1, "every attempt posts the same body"
    assert json.loads(delivered[-1])["id"] == notice.id


def test_the_merchant_schedule_is_15s_1m_5m_30m_1h_6h_24h() -> None:
    assert [d.total_seconds() for d in BACKOFF] == [15, 60, 300, 1800, 3600, 21600, 86400]


def test_a_notice_still_failing_after_the_last_delay_is_given_up(
    writer: Writer, engine: Engine, clock: FixedClock, shop: Shop, endpoint: Endpoint,
    poster: Poster,
) -> None:  # fmt: skip
    start = clock.now()
    endpoint.status = 503
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    for delay in BACKOFF:
        clock.advance(delay)
        assert deliver_notices(writer, poster) == 1
    clock.advance(timedelta(days=7))
    assert deliver_notices(writer, poster) == 0, "tried again after giving up"
    assert len(endpoint.posts) == len(BACKOFF) + 1
    [notice] = log_of(engine, shop)
    assert (notice.state, notice.next_attempt_at) == ("failed", None)
    assert [a.outcome for a in notice.attempts] == ["retrying"] * len(BACKOFF) + ["failed"]
    assert [a.at for a in notice.attempts] == schedule_from(start)
    assert states(engine) == ["done"]


def test_what_the_merchant_answers_is_never_recorded(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    endpoint.status, endpoint.answer = 400, b"stack trace with secrets"
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    [notice] = log_of(engine, shop)
    assert [a.error for a in notice.attempts] == ["NotAcknowledged: HTTP 400"]
    assert notice.state == "pending"


@pytest.mark.parametrize("status", [204, 299])
def test_any_2xx_acknowledges_whatever_the_body(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint, poster: Poster, status: int
) -> None:
    endpoint.status, endpoint.answer = status, b""
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    assert log_of(engine, shop)[0].state == "delivered"


def test_a_redirect_is_not_an_acknowledgement(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    endpoint.status = 302
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    [notice] = log_of(engine, shop)
    assert [a.error for a in notice.attempts] == ["NotAcknowledged: HTTP 302"]


def test_an_endpoint_down_for_hours_gets_every_notice_once_it_is_back(
    writer: Writer, engine: Engine, clock: FixedClock, shop: Shop, endpoint: Endpoint,
    poster: Poster,
) -> None:  # fmt: skip
    step = timedelta(minutes=5)
    endpoint.down()
    for minute in range(0, 5 * 60, 5):  # five hours: refused, then a proxy answering 503
        if minute == 2 * 60:
            endpoint.up()
            endpoint.status = 503
        if minute % 20 == 0:  # a notice every 20 minutes, the first one at once
            announce(writer, shop, shop.order(100 + minute), endpoint.url)
        deliver_notices(writer, poster)
        clock.advance(step)
    announced = {n.id for n in log_of(engine, shop)}
    assert len(announced) == 15
    assert {n.state for n in log_of(engine, shop)} == {"pending"}
    endpoint.status = 200
    for _ in range(12 * 24):  # at most a day more
        deliver_notices(writer, poster)
        if all(n.state == "delivered" for n in log_of(engine, shop)):
            break
        clock.advance(step)
    assert all(n.state == "delivered" for n in log_of(engine, shop)), "a notice was lost"
    by_id: dict[str, set[bytes]] = {}
    for _, body in endpoint.posts:
        by_id.setdefault(json.loads(body)["id"], set()).add(body)
    assert set(by_id) == announced
    assert all(len(bodies) == 1 for bodies in by_id.values()), "an attempt changed the body"
    acknowledged = Counter(a.outcome for n in log_of(engine, shop) for a in n.attempts)
    assert acknowledged["delivered"] == 15, "each delivered exactly once"
    assert acknowledged["failed"] == 0


def test_a_notice_committed_after_a_later_one_was_taken_in_is_still_sent(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    """On PostgreSQL a transaction may commit an event with a lower id after a higher one is
    visible: here the middle event is held back (deleted, then written again as it was)."""
    for amount in (100, 200, 300):
        announce(writer, shop, shop.order(amount), endpoint.url)
    with engine.begin() as conn:
        events = conn.execute(select(outbox_events).order_by(outbox_events.c.id)).mappings()
        late = dict(list(events)[1])
        conn.execute(outbox_events.delete().where(outbox_events.c.id == late["id"]))
    assert deliver_notices(writer, poster) == 2
    with engine.begin() as conn:
        conn.execute(outbox_events.insert().values(late))
    assert deliver_notices(writer, poster) == 1
    assert sorted(body["data"]["amount"] for body in endpoint.bodies()) == [
        "1.00", "2.00", "3.00"
    ]  # fmt: skip


def test_a_rounds_notices_are_sent_together(
    writer: Writer, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    endpoint.delay = TIMEOUT / 2
    for _ in range(8):
        announce(writer, shop, shop.order(100), endpoint.url)
    started = time.monotonic()
    assert deliver_notices(writer, poster) == 8
    assert time.monotonic() - started < 8 * endpoint.delay
    assert endpoint.most_in_flight > 1


def test_a_connection_to_the_merchant_serves_many_notices(
    writer: Writer, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    for _ in range(20):
        announce(writer, shop, shop.order(100), endpoint.url)
        assert deliver_notices(writer, poster) == 1
    assert len(endpoint.posts) == 20
    assert len(set(endpoint.peers)) <= 8, "a connection per sending thread at most"


def test_a_connection_the_merchant_closed_meanwhile_is_replaced_at_once(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint
) -> None:
    poster = Poster(timeout=TIMEOUT, concurrency=1)
    try:
        announce(writer, shop, shop.order(100), endpoint.url)
        deliver_notices(writer, poster)
        endpoint.down()  # a restart: the kept connection is dead
        endpoint.up()
        announce(writer, shop, shop.order(200), endpoint.url)
        assert deliver_notices(writer, poster) == 1
    finally:
        poster.close()
    assert len(set(endpoint.peers)) == 2
    assert [[a.outcome for a in n.attempts] for n in log_of(engine, shop)] == [["delivered"]] * 2


def test_two_workers_never_send_the_same_notice_twice(
    writer: Writer, engine: Engine, clock: FixedClock, shop: Shop, endpoint: Endpoint,
    poster: Poster,
) -> None:  # fmt: skip
    order = shop.order(100)
    for _ in range(30):
        announce(writer, shop, order, endpoint.url)
    other = Writer(engine, clock=clock)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(own: Writer) -> None:
        try:
            start.wait(WAIT)
            for _ in range(30):  # bounded: a bug must not spin for ever
                if not deliver_notices(own, poster, limit=3):
                    break
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in (writer, other)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
    finally:
        other.close()
    assert errors == []
    sent = Counter(body["id"] for body in endpoint.bodies())
    assert len(sent) == 30 and set(sent.values()) == {1}
    assert {(len(n.attempts), n.state) for n in log_of(engine, shop)} == {(1, "delivered")}


# -- announcing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"event_type": "paid"},
        {"event_type": "order.Paid"},
        {"event_type": "payment.paid"},
        {"event_type": "order." + "x" * 18},
        {"merchant_id": "1"},
        {"order_id": None},
        {"notify_url": None},
        {"data": "{}"},
    ],
)
def test_announce_refuses_bad_input_and_emits_nothing(
    writer: Writer, engine: Engine, shop: Shop, changes: dict[str, Any]
) -> None:
    order = shop.order(100)
    params = {
        "merchant_id": shop.id, "merchant_no": shop.merchant.merchant_no, "order_id": order.id,
        "notify_url": "https://shop.example/n",
        "event_type": "order.paid", "data": {"trade_no": order.trade_no},
    } | changes  # fmt: skip
    with pytest.raises(EbankError) as caught:
        writer.execute(Command(lambda tx: notices.announce(tx, **params)))
    assert caught.value.code == "INVALID_INPUT"
    with engine.connect() as conn:
        topics = conn.execute(select(outbox_events.c.topic)).scalars().all()
    assert notices.NOTICES.topic not in topics


def test_a_notice_is_announced_only_if_its_change_commits(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    order = shop.order(100)

    def change_that_fails(tx: Any) -> None:
        notices.announce(
            tx, merchant_id=shop.id, merchant_no=shop.merchant.merchant_no, order_id=order.id,
            notify_url=endpoint.url,
            event_type="order.paid", data=orders.public(order),
        )  # fmt: skip
        raise EbankError("INSUFFICIENT_FUNDS")

    assert code_of(outcome(writer.submit(Command(change_that_fails)))) == "INSUFFICIENT_FUNDS"
    assert deliver_notices(writer, poster) == 0
    assert endpoint.posts == [] and log_of(engine, shop) == []


def test_a_notice_for_an_unknown_order_fails_its_command_and_emits_nothing(
    writer: Writer, engine: Engine, shop: Shop
) -> None:
    def announce_unknown(tx: Any) -> None:
        notices.announce(
            tx, merchant_id=shop.id, merchant_no=shop.merchant.merchant_no, order_id=987_654,
            notify_url="https://shop.example/n",
            event_type="order.paid", data={},
        )  # fmt: skip

    assert code_of(outcome(writer.submit(Command(announce_unknown)))) == "IntegrityError"
    with engine.connect() as conn:
        assert conn.execute(select(outbox_events.c.id)).first() is None


def test_closing_an_order_notifies_its_notify_url(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    request = OrderRequest(
        merchant_id=shop.id, out_trade_no="CLOSE-1", amount=990, mode="instant", subject="茶",
        return_url="https://shop.example/return", notify_url=endpoint.url,
    )  # fmt: skip
    order = writer.execute(orders.create(VAULT, request))
    writer.execute(orders.close(merchant_id=shop.id, out_trade_no="CLOSE-1"))
    assert deliver_notices(writer, poster) == 1
    [body] = endpoint.bodies()
    assert (body["type"], body["data"]["trade_no"]) == ("order.closed", order.trade_no)
    assert body["data"]["status"] == "closed"


# -- the log and re-sending ----------------------------------------------------------------
def test_the_log_lists_the_merchants_notices_newest_first_and_by_order(
    writer: Writer, engine: Engine, clock: FixedClock, bank: Any, shop: Shop,
    endpoint: Endpoint, poster: Poster,
) -> None:  # fmt: skip
    other = bank.merchant()
    first, second, theirs = shop.order(100), shop.order(200), other.order(300)
    announce(writer, shop, first, endpoint.url, "order.held")
    announce(writer, other, theirs, endpoint.url)
    clock.advance(timedelta(seconds=1))
    announce(writer, shop, second, endpoint.url)
    announce(writer, shop, first, endpoint.url, "order.paid")
    waiting = log_of(engine, shop)
    assert [(n.state, n.next_attempt_at, n.attempts) for n in waiting] == [
        ("pending", clock.now(), ()), ("pending", clock.now(), ()),
        ("pending", clock.now() - timedelta(seconds=1), ()),
    ]  # fmt: skip
    deliver_notices(writer, poster)
    listed = log_of(engine, shop)
    assert [n.id for n in listed] == [n.id for n in waiting], "the ids stay the same"
    assert {n.state for n in listed} == {"delivered"}
    assert [(n.trade_no, n.type) for n in listed] == [
        (first.trade_no, "order.paid"), (second.trade_no, "order.paid"),
        (first.trade_no, "order.held"),
    ]  # fmt: skip
    assert len({n.id for n in listed}) == 3
    assert [n.type for n in log_of(engine, shop, trade_no=first.trade_no)] == [
        "order.paid", "order.held"
    ]  # fmt: skip
    assert log_of(engine, shop, trade_no=theirs.trade_no) == []
    assert [n.trade_no for n in log_of(engine, other)] == [theirs.trade_no]
    assert len(log_of(engine, shop, limit=1)) == 1


@pytest.mark.parametrize("limit", [0, 201, "10"])
def test_the_log_refuses_a_bad_page_size(engine: Engine, shop: Shop, limit: Any) -> None:
    with pytest.raises(EbankError) as caught:
        log_of(engine, shop, limit=limit)
    assert caught.value.code == "INVALID_INPUT"


def resend(writer: Writer, shop: Shop, notice_id: str) -> Notice:
    return writer.execute(
        notices.resend(merchant_id=shop.id, event_id=notice_id, actor="operator:1",
                       channel="online")
    )  # fmt: skip


def test_a_given_up_notice_is_sent_again_on_request(
    writer: Writer, engine: Engine, clock: FixedClock, shop: Shop, endpoint: Endpoint,
    poster: Poster,
) -> None:  # fmt: skip
    endpoint.status = 500
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    for delay in BACKOFF:
        clock.advance(delay)
        deliver_notices(writer, poster)
    [given_up] = log_of(engine, shop)
    assert given_up.state == "failed"
    clock.advance(timedelta(days=3))
    endpoint.status = 200
    again = resend(writer, shop, given_up.id)
    assert (again.id, again.state, again.next_attempt_at) == (given_up.id, "pending", clock.now())
    assert deliver_notices(writer, poster) == 1
    [notice] = log_of(engine, shop)
    assert notice.state == "delivered"
    assert notice.attempts[-1].number == len(BACKOFF) + 2
    assert {body["id"] for body in endpoint.bodies()} == {given_up.id}
    with engine.connect() as conn:
        [record] = conn.execute(
            select(audit_log).where(audit_log.c.action == "gateway.notice.resend")
        ).mappings()  # fmt: skip
    assert (record["actor"], record["channel"], record["subject"]) == (
        "operator:1", "online", f"merchant:{shop.id}"
    )  # fmt: skip
    assert json.loads(record["detail"]) == {"notice": given_up.id, "was": "done"}


def test_a_delivered_notice_is_sent_again_on_request_with_the_same_body(
    writer: Writer, engine: Engine, clock: FixedClock, shop: Shop, endpoint: Endpoint,
    poster: Poster,
) -> None:  # fmt: skip
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    [delivered] = log_of(engine, shop)
    assert resend(writer, shop, delivered.id).state == "pending"
    assert deliver_notices(writer, poster) == 1
    first, second = endpoint.posts
    assert first[1] == second[1], "the same body, so the same event id"
    assert first[0]["Ebank-Nonce"] != second[0]["Ebank-Nonce"], "each attempt signed afresh"
    merchant_sdk(clock, shop.merchant.merchant_no).verify_notification(*second)
    [notice] = log_of(engine, shop)
    assert [(a.number, a.outcome) for a in notice.attempts] == [(1, "delivered"),
                                                                (2, "delivered")]  # fmt: skip


def test_a_resend_before_the_first_attempt_sends_the_notice_once(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    announce(writer, shop, shop.order(100), endpoint.url)
    [new] = log_of(engine, shop)
    assert resend(writer, shop, new.id).state == "pending"
    assert deliver_notices(writer, poster) == 1
    assert deliver_notices(writer, poster) == 0
    assert [body["id"] for body in endpoint.bodies()] == [new.id]


def test_a_resend_brings_a_waiting_retry_forward(
    writer: Writer, engine: Engine, clock: FixedClock, shop: Shop, endpoint: Endpoint,
    poster: Poster,
) -> None:  # fmt: skip
    endpoint.status = 500
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    endpoint.status = 200
    [waiting] = log_of(engine, shop)
    assert waiting.next_attempt_at == clock.now() + BACKOFF[0]
    resend(writer, shop, waiting.id)
    assert deliver_notices(writer, poster) == 1
    assert log_of(engine, shop)[0].state == "delivered"


def test_someone_elses_notice_cannot_be_resent_or_seen(
    writer: Writer, engine: Engine, bank: Any, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    other = bank.merchant()
    announce(writer, shop, shop.order(100), endpoint.url)
    deliver_notices(writer, poster)
    [mine] = log_of(engine, shop)
    number = mine.id[9:]
    wrong_day = f"N20200101{number}"
    for who, notice_id in [
        (other, mine.id), (shop, wrong_day), (shop, "N" + "9" * 18), (shop, mine.id.lower()),
        (shop, f" {mine.id}"), (shop, ""), (shop, None),
    ]:  # fmt: skip
        with pytest.raises(EbankError) as caught:
            resend(writer, who, notice_id)  # type: ignore[arg-type]
        assert caught.value.code == "NOTICE_NOT_FOUND"
    assert log_of(engine, other) == []
    assert states(engine) == ["done"]
    assert deliver_notices(writer, poster) == 0 and len(endpoint.posts) == 1
    with engine.connect() as conn:
        resent = select(audit_log.c.id).where(audit_log.c.action == "gateway.notice.resend")
        assert conn.execute(resent).first() is None


# -- the background loop -------------------------------------------------------------------
def test_the_notice_loop_delivers_until_stopped(
    writer: Writer, shop: Shop, endpoint: Endpoint, poster: Poster
) -> None:
    stop = notices.start_notice_delivery(writer, poster)
    try:
        announce(writer, shop, shop.order(100), endpoint.url)
        for _ in range(WAIT * 100):
            if endpoint.posts:
                break
            time.sleep(0.01)
    finally:
        stop()
    assert [body["type"] for body in endpoint.bodies()] == ["order.paid"]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:5432/", "http://[::1]/x", "http://10.0.0.7/", "http://169.254.169.254/",
     "http://localhost:8080/", "http://shop.localhost/", "http://192.168.1.1/notify"],
)  # fmt: skip
def test_a_notify_url_into_the_banks_own_network_is_refused(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setattr(get_settings(), "gateway_private_notify", False)
    with pytest.raises(EbankError) as refused:
        shop.order(100, notify_url=url)
    assert refused.value.code == "INVALID_INPUT"


def test_a_notice_to_a_name_that_resolves_into_the_banks_network_is_not_sent(
    writer: Writer, engine: Engine, shop: Shop, endpoint: Endpoint, poster: Poster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    order = shop.order(100)
    named = endpoint.url.replace("127.0.0.1", "localtest.invalid")
    announce(writer, shop, order, named)
    monkeypatch.setattr(get_settings(), "gateway_private_notify", False)
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(0, 0, 0, "", ("127.0.0.1", 80))]
    )  # the name points at the bank's loopback now
    deliver_notices(writer, poster)
    assert endpoint.posts == []
    [notice] = log_of(engine, shop)
    assert notice.attempts[0].error == "NotAcknowledged: PermissionError"
