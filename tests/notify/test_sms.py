"""SMS delivery: one way to ask for an SMS (sealed in the outbox), a worker that sends each
message once even with two workers racing, retries on the bank's backoff schedule with every
attempt recorded, one-time codes not sent once expired, and the demo inbox that shows what the
phone received with the number masked.

Every test runs on SQLite and PostgreSQL.
"""

import json
import re
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ebank.core import outbox
from ebank.core.clock import FixedClock, as_utc
from ebank.core.errors import EbankError
from ebank.core.tables import outbox_events
from ebank.core.writer import Command, Writer
from ebank.notify import service as notify
from ebank.notify.delivery import ABANDONED, BACKOFF, LEASE, SETTLE
from ebank.notify.service import (
    InboxSender,
    deliver_sms,
    inbox,
    run_delivery_loop,
    send_sms,
)
from ebank.notify.tables import sms_deliveries, sms_inbox, sms_intake, sms_messages
from ebank.security.service import binding_of, check_code, issue_code
from tests.support import VAULT, WAIT, person

MOBILE = "13812345678"  # every `person` gives this number
MASKED = "138****5678"
PAY_100 = binding_of(amount="100.00", payee="6217001000000000001")
PAY_MESSAGE = "转账 ¥100.00 至 6217****0001"


class Recorder:
    """A sender that keeps what it was given, and fails while `failing` is above zero."""

    def __init__(self, failing: int = 0) -> None:
        self.sent: list[dict[str, Any]] = []
        self.failing = failing
        self.calls = 0
        self._lock = threading.Lock()

    def send(self, mobile: str, body: str, *, customer_id: int, kind: str) -> None:
        with self._lock:
            self.calls += 1
            if self.failing:
                self.failing -= 1
                raise ConnectionError("gateway unreachable")
            self.sent.append(
                {"mobile": mobile, "body": body, "customer": customer_id, "kind": kind}
            )


class Crash(BaseException):
    """The worker process dying in the middle of a send."""


class Crashing:
    def send(self, mobile: str, body: str, *, customer_id: int, kind: str) -> None:
        raise Crash


def issue(writer: Writer, customer: int) -> None:
    writer.execute(
        issue_code(
            VAULT, customer_id=customer, purpose="payment", binding=PAY_100, message=PAY_MESSAGE
        )
    )


def alert(writer: Writer, customer: int, body: str = "【ebank】您的账户有一笔变动") -> None:
    writer.execute(
        Command(lambda tx: send_sms(tx, VAULT, customer_id=customer, kind="alert", body=body))
    )


def code_in(body: str) -> str:
    [code] = re.findall(r"(?<!\d)\d{6}(?!\d)", body)
    return code


def attempts(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(sms_deliveries).order_by(sms_deliveries.c.event_id, sms_deliveries.c.attempt)
        )
        return [dict(r) for r in rows.mappings()]


def rows_of(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table)).mappings()]


def phone(engine: Engine, customer: int | None = None) -> list[notify.SmsMessage]:
    with engine.connect() as conn:
        return inbox(conn, VAULT, customer_id=customer)


# -- asking for an SMS ---------------------------------------------------------------------
def test_send_sms_puts_the_body_sealed_in_the_outbox(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    alert(writer, customer, "【ebank】您好")
    [event] = rows_of(engine, outbox_events)
    assert event["topic"] == "sms.send"
    payload = json.loads(event["payload"])
    assert payload["customer"] == customer and payload["kind"] == "alert"
    assert payload["expires_at"] is None
    assert "您好" not in event["payload"]
    assert VAULT.decrypt(payload["body"], purpose="sms.body") == "【ebank】您好"


def test_issue_code_sends_through_send_sms_with_the_codes_expiry(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    issue(writer, customer)
    [event] = rows_of(engine, outbox_events)
    payload = json.loads(event["payload"])
    assert payload["kind"] == "code"
    assert payload["expires_at"] == (clock.now() + timedelta(seconds=300)).isoformat()


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "not a kind"},
        {"kind": "x" * 17},
        {"body": ""},
        {"body": "长" * 501},
        {"body": None},
        {"kind": "code"},  # a one-time code without an expiry
        {"customer_id": "1"},
    ],
)
def test_send_sms_refuses_bad_input_and_emits_nothing(
    writer: Writer, engine: Engine, changes: dict[str, Any]
) -> None:
    customer = person(writer, 1)
    params = {"customer_id": customer, "kind": "alert", "body": "你好"} | changes
    with pytest.raises(EbankError) as caught:
        writer.execute(Command(lambda tx: send_sms(tx, VAULT, **params)))
    assert caught.value.code == "INVALID_INPUT"
    assert rows_of(engine, outbox_events) == []


# -- delivery --------------------------------------------------------------------------------
def test_a_code_reaches_the_inbox_and_then_works(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    issue(writer, customer)
    assert deliver_sms(writer, VAULT, InboxSender(writer, VAULT)) == 1
    [message] = phone(engine, customer)
    assert message.customer_id == customer and message.kind == "code"
    assert message.mobile == MASKED
    assert PAY_MESSAGE in message.body
    verdict = writer.execute(
        check_code(
            VAULT,
            customer_id=customer,
            purpose="payment",
            binding=PAY_100,
            code=code_in(message.body),
        )
    )
    assert verdict.ok
    [attempt] = attempts(engine)
    assert (attempt["attempt"], attempt["status"], attempt["error"]) == (1, "delivered", None)
    # Delivered once: nothing is due any more.
    assert deliver_sms(writer, VAULT, InboxSender(writer, VAULT)) == 0
    assert len(phone(engine, customer)) == 1


def test_the_sender_gets_the_customers_number_and_the_plain_body_in_event_order(
    writer: Writer,
) -> None:
    first, second = person(writer, 1), person(writer, 2)
    alert(writer, second, "第一条")
    alert(writer, first, "第二条")
    sender = Recorder()
    assert deliver_sms(writer, VAULT, sender) == 2
    assert sender.sent == [
        {"mobile": MOBILE, "body": "第一条", "customer": second, "kind": "alert"},
        {"mobile": MOBILE, "body": "第二条", "customer": first, "kind": "alert"},
    ]


def test_deliver_takes_at_most_limit_messages_in_id_order(writer: Writer) -> None:
    customer = person(writer, 1)
    for n in range(5):
        alert(writer, customer, f"消息{n}")
    sender = Recorder()
    assert deliver_sms(writer, VAULT, sender, limit=2) == 2
    assert [s["body"] for s in sender.sent] == ["消息0", "消息1"]
    assert deliver_sms(writer, VAULT, sender, limit=10) == 3
    assert [s["body"] for s in sender.sent] == [f"消息{n}" for n in range(5)]


def test_a_failing_send_is_retried_on_the_backoff_schedule_then_given_up(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    alert(writer, customer)
    sender = Recorder(failing=100)
    start = clock.now()
    assert deliver_sms(writer, VAULT, sender) == 1
    for delay in BACKOFF:
        clock.advance(delay - timedelta(seconds=1))
        assert deliver_sms(writer, VAULT, sender) == 0, "retried before its time"
        clock.advance(timedelta(seconds=1))
        assert deliver_sms(writer, VAULT, sender) == 1, "not retried on time"
    clock.advance(timedelta(days=1))
    assert deliver_sms(writer, VAULT, sender) == 0, "retried after giving up"
    assert sender.calls == len(BACKOFF) + 1
    recorded = attempts(engine)
    assert [a["attempt"] for a in recorded] == list(range(1, len(BACKOFF) + 2))
    assert [a["status"] for a in recorded] == ["retrying"] * len(BACKOFF) + ["failed"]
    assert all(a["error"] == "ConnectionError: gateway unreachable" for a in recorded)
    expected_at, at = [start], start
    for delay in BACKOFF:
        at += delay
        expected_at.append(at)
    assert [as_utc(a["at"]) for a in recorded] == expected_at
    [message] = rows_of(engine, sms_messages)
    assert message["state"] == "done"


def test_the_default_schedule_is_15s_1m_5m_30m_1h() -> None:
    assert [d.total_seconds() for d in BACKOFF] == [15, 60, 300, 1800, 3600]


def test_a_send_that_failed_once_is_delivered_on_the_retry(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    alert(writer, customer)
    sender = Recorder(failing=1)
    assert deliver_sms(writer, VAULT, sender) == 1
    clock.advance(BACKOFF[0])
    assert deliver_sms(writer, VAULT, sender) == 1
    assert [a["status"] for a in attempts(engine)] == ["retrying", "delivered"]
    assert len(sender.sent) == 1


def test_one_failing_message_does_not_hold_up_the_others(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    alert(writer, customer, "一")
    alert(writer, customer, "二")
    sender = Recorder(failing=1)
    assert deliver_sms(writer, VAULT, sender) == 2
    assert [s["body"] for s in sender.sent] == ["二"]
    assert [a["status"] for a in attempts(engine)] == ["retrying", "delivered"]


def test_an_expired_code_is_not_sent(writer: Writer, engine: Engine, clock: FixedClock) -> None:
    customer = person(writer, 1)
    issue(writer, customer)
    clock.advance(timedelta(seconds=300))
    sender = Recorder()
    assert deliver_sms(writer, VAULT, sender) == 1
    assert sender.calls == 0
    [attempt] = attempts(engine)
    assert (attempt["attempt"], attempt["status"]) == (1, "expired")
    assert deliver_sms(writer, VAULT, sender) == 0


def test_a_code_whose_retry_falls_after_its_validity_is_expired_not_sent(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    issue(writer, customer)  # valid for 300 s; retries at 15 s, 75 s, then 375 s
    sender = Recorder(failing=100)
    for delay in (timedelta(0), BACKOFF[0], BACKOFF[1], BACKOFF[2]):
        clock.advance(delay)
        deliver_sms(writer, VAULT, sender)
    assert sender.calls == 3
    assert [a["status"] for a in attempts(engine)] == ["retrying"] * 3 + ["expired"]


def test_alerts_without_an_expiry_are_sent_however_late(writer: Writer, clock: FixedClock) -> None:
    customer = person(writer, 1)
    alert(writer, customer)
    clock.advance(timedelta(days=3))
    sender = Recorder()
    assert deliver_sms(writer, VAULT, sender) == 1
    assert len(sender.sent) == 1


def test_two_deliverers_racing_send_each_message_once(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customers = [person(writer, n) for n in range(1, 4)]
    bodies = [f"消息{n}" for n in range(30)]
    for n, body in enumerate(bodies):
        alert(writer, customers[n % 3], body)
    sender = Recorder()
    other = Writer(engine, clock=clock)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(own: Writer) -> None:
        try:
            start.wait(WAIT)
            for _ in range(len(bodies)):  # bounded: a bug must not spin for ever
                if not deliver_sms(own, VAULT, sender, limit=3):
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
    assert Counter(s["body"] for s in sender.sent) == Counter(bodies)
    recorded = attempts(engine)
    assert len(recorded) == 30
    assert {(a["attempt"], a["status"]) for a in recorded} == {(1, "delivered")}


def test_a_worker_that_dies_mid_send_is_taken_over_after_the_lease(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    alert(writer, customer)
    with pytest.raises(Crash):
        deliver_sms(writer, VAULT, Crashing())
    sender = Recorder()
    clock.advance(LEASE - timedelta(seconds=1))
    assert deliver_sms(writer, VAULT, sender) == 0, "taken while the lease held"
    clock.advance(timedelta(seconds=1))
    deliver_sms(writer, VAULT, sender)  # records the lost attempt, retries on schedule
    assert [(a["attempt"], a["status"], a["error"]) for a in attempts(engine)] == [
        (1, "retrying", ABANDONED)
    ]
    clock.advance(BACKOFF[0])
    assert deliver_sms(writer, VAULT, sender) == 1
    assert len(sender.sent) == 1
    assert [a["status"] for a in attempts(engine)] == ["retrying", "delivered"]


def test_an_unreadable_event_is_given_up_without_blocking_the_queue(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    writer.execute(
        Command(lambda tx: outbox.emit(tx, "sms.send", "x", {"customer": "nobody", "body": 1}))
    )
    alert(writer, customer, "之后的")
    sender = Recorder()
    deliver_sms(writer, VAULT, sender)
    assert [s["body"] for s in sender.sent] == ["之后的"]
    first, second = attempts(engine)
    assert first["status"] == "failed" and first["error"].startswith("unreadable event")
    assert second["status"] == "delivered"


def test_the_intake_watermark_passes_only_settled_events(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    alert(writer, customer)
    deliver_sms(writer, VAULT, Recorder())
    [intake] = rows_of(engine, sms_intake)
    assert intake["event_id"] == 0  # the event is younger than SETTLE
    clock.advance(SETTLE)
    alert(writer, customer)
    sender = Recorder()
    assert deliver_sms(writer, VAULT, sender) == 1  # only the new one: the first was sent
    [intake] = rows_of(engine, sms_intake)
    [first, second] = rows_of(engine, outbox_events)
    assert intake["event_id"] == first["id"]
    clock.advance(SETTLE)
    deliver_sms(writer, VAULT, sender)
    [intake] = rows_of(engine, sms_intake)
    assert intake["event_id"] == second["id"]


def test_no_body_or_number_is_stored_in_clear(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    issue(writer, customer)
    deliver_sms(writer, VAULT, Recorder(failing=1))
    clock.advance(BACKOFF[0])
    deliver_sms(writer, VAULT, InboxSender(writer, VAULT))
    [message] = phone(engine, customer)
    assert "验证码" in message.body
    for table in (outbox_events, sms_messages, sms_deliveries, sms_intake, sms_inbox):
        for row in rows_of(engine, table):
            for column, value in row.items():
                text = str(value)
                assert "验证码" not in text and "转账" not in text, (table.name, column)
                assert MOBILE not in text, (table.name, column)
    [stored] = rows_of(engine, sms_inbox)
    assert stored["mobile"] == MASKED


def test_the_inbox_sender_logs_without_the_body(
    writer: Writer, caplog: pytest.LogCaptureFixture
) -> None:
    customer = person(writer, 1)
    issue(writer, customer)
    with caplog.at_level("INFO", logger="ebank.notify.service"):
        deliver_sms(writer, VAULT, InboxSender(writer, VAULT))
    [line] = [r for r in caplog.records if r.getMessage() == "sms sent"]
    assert (line.customer, line.mobile, line.kind) == (customer, MASKED, "code")  # type: ignore[attr-defined]
    assert all("验证码" not in str(vars(r)) for r in caplog.records)


def test_the_inbox_lists_a_customers_messages_newest_first(writer: Writer, engine: Engine) -> None:
    mine, theirs = person(writer, 1), person(writer, 2)
    alert(writer, mine, "一")
    alert(writer, theirs, "别人的")
    alert(writer, mine, "二")
    deliver_sms(writer, VAULT, InboxSender(writer, VAULT))
    assert [m.body for m in phone(engine, mine)] == ["二", "一"]
    assert [m.body for m in phone(engine)] == ["二", "别人的", "一"]
    with engine.connect() as conn:
        assert [m.body for m in inbox(conn, VAULT, customer_id=mine, limit=1)] == ["二"]
    assert {m.mobile for m in phone(engine)} == {MASKED}


def test_the_delivery_loop_sends_until_stopped(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    stop = threading.Event()
    sender = Recorder()
    loop = threading.Thread(
        target=run_delivery_loop, args=(writer, VAULT, sender, stop), kwargs={"poll_seconds": 0.01}
    )
    loop.start()
    try:
        alert(writer, customer, "后台发送")
        for _ in range(WAIT * 100):
            if sender.sent:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        loop.join(WAIT)
    assert not loop.is_alive()
    assert [s["body"] for s in sender.sent] == ["后台发送"]


def test_the_delivery_loop_survives_a_failing_round(
    writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds: list[int] = []
    stop = threading.Event()

    def flaky(*args: Any, **kwargs: Any) -> int:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("database went away")
        stop.set()
        return 0

    monkeypatch.setattr(notify, "deliver_sms", flaky)
    run_delivery_loop(writer, VAULT, Recorder(), stop, poll_seconds=0.01)
    assert len(rounds) == 2
