"""Sessions of online and mobile banking (DOMAIN.md §3): a long random token handed over once
and stored only as a hash; the session ends after `session_idle_seconds` without use (5
minutes by default) and `session_absolute_hours` in all (12 hours by default), however busy
it is; a customer sees and ends only their own sessions; start and end are audited.

Every test runs on SQLite and PostgreSQL.
"""

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ebank.core import audit
from ebank.core.clock import FixedClock, as_utc
from ebank.core.errors import EbankError
from ebank.core.settings import Settings, get_settings
from ebank.core.tables import audit_log
from ebank.core.writer import Command, Writer
from ebank.security.devices import device_hash
from ebank.security.sessions import Session, Started, end, end_all, live_sessions, resume, start
from ebank.security.tables import sessions
from tests.support import VAULT, in_one_batch, person

DEVICE = "iPhone15,2-7F3A9C21-55B0-4E0B-9D1E-0A1B2C3D4E5F"
PHONE = device_hash(VAULT, DEVICE)  # the keyed hash its binding keeps too


def idle() -> timedelta:
    return timedelta(seconds=get_settings().session_idle_seconds)


def absolute() -> timedelta:
    return timedelta(hours=get_settings().session_absolute_hours)


def expect(code: str, writer: Writer, command: Any) -> EbankError:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    assert caught.value.code == code
    return caught.value


def row_of(engine: Engine, session_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(sessions).where(sessions.c.id == session_id)).mappings().one()
    return dict(row)


def session_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(sessions)).scalar_one()


def live_ids(engine: Engine, customer: int, clock: FixedClock) -> list[int]:
    with engine.connect() as conn:
        return [s.id for s in live_sessions(conn, customer, now=clock.now())]


# --- the token --------------------------------------------------------------------------------


def test_defaults_are_five_minutes_idle_and_twelve_hours_absolute() -> None:
    fields = Settings.model_fields
    assert fields["session_idle_seconds"].default == 300
    assert fields["session_absolute_hours"].default == 12


def test_token_is_long_random_and_differs_between_sessions(writer: Writer) -> None:
    customer = person(writer, 1)
    first = writer.execute(start(customer_id=customer, channel="online", device_hash=PHONE))
    second = writer.execute(start(customer_id=customer, channel="online", device_hash=PHONE))
    assert isinstance(first, Started)
    for started in (first, second):
        assert len(started.token) >= 40
        assert re.fullmatch(r"[A-Za-z0-9_-]+", started.token)  # safe in a header or cookie
    assert first.token != second.token
    assert first.session.id != second.session.id


def test_database_keeps_only_a_hash_of_the_token_and_of_the_device(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="mobile", device_hash=PHONE))
    row = row_of(engine, started.session.id)
    stored = [str(v) for v in row.values() if v is not None]
    for value in stored:
        assert started.token not in value
        assert DEVICE not in value
    assert row["token_hash"] != started.token
    assert row["device"] == PHONE  # the device's keyed hash, as its binding keeps it
    # Nor does the audit trail keep the token.
    with engine.connect() as conn:
        trail = conn.execute(select(audit_log)).mappings().all()
    for record in trail:
        for value in record.values():
            assert started.token not in str(value)
    # The stored hash still finds the session.
    assert writer.execute(resume(started.token)).id == started.session.id


def test_start_returns_the_session_as_of_now(writer: Writer, clock: FixedClock) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="mobile", device_hash=PHONE))
    assert started.session == Session(
        started.session.id, customer, "mobile", clock.now(), clock.now(), device=PHONE
    )


# --- idle and absolute ends -------------------------------------------------------------------


def test_resume_within_4m59s_keeps_the_session_alive_and_moves_last_seen(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))
    begun = clock.now()
    for _ in range(3):  # 14m57s in all: alive only because each use resets the idle clock
        clock.advance(timedelta(minutes=4, seconds=59))
        session = writer.execute(resume(started.token))
        assert session.id == started.session.id
        assert session.customer_id == customer
        assert session.channel == "online"
        assert session.started_at == begun
        assert session.last_seen_at == clock.now()
        row = row_of(engine, started.session.id)
        assert as_utc(row["last_seen_at"]) == clock.now()
        assert as_utc(row["started_at"]) == begun


def test_idle_session_expires_at_exactly_the_idle_limit_not_a_second_before(
    writer: Writer, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))
    clock.advance(idle() - timedelta(seconds=1))  # 299 s: alive
    assert writer.execute(resume(started.token)).last_seen_at == clock.now()
    clock.advance(idle())  # 300 s since that use: over
    expect("SESSION_EXPIRED", writer, resume(started.token))
    # It stays over: a refused resume does not revive it.
    expect("SESSION_EXPIRED", writer, resume(started.token))
    clock.advance(timedelta(seconds=1))
    expect("SESSION_EXPIRED", writer, resume(started.token))


def test_five_minutes_idle_expires_the_session(writer: Writer, clock: FixedClock) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="mobile", device_hash=PHONE))
    assert idle() <= timedelta(minutes=5)
    clock.advance(timedelta(minutes=5))
    expect("SESSION_EXPIRED", writer, resume(started.token))


def test_idle_limit_is_configurable(
    writer: Writer, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))
    monkeypatch.setenv("EBANK_SESSION_IDLE_SECONDS", "120")
    get_settings.cache_clear()
    try:
        assert idle() == timedelta(seconds=120)
        clock.advance(timedelta(seconds=119))
        writer.execute(resume(started.token))
        clock.advance(timedelta(seconds=120))
        expect("SESSION_EXPIRED", writer, resume(started.token))
    finally:
        monkeypatch.delenv("EBANK_SESSION_IDLE_SECONDS")
        get_settings.cache_clear()


def test_activity_every_4_minutes_still_ends_at_the_absolute_limit(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    step = timedelta(minutes=4)
    assert step < idle()  # so only the absolute limit can end it
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))
    begun = clock.now()
    uses = 0
    while clock.now() + step < begun + absolute():
        clock.advance(step)
        writer.execute(resume(started.token))
        uses += 1
    assert uses >= absolute() // step - 1
    assert live_ids(engine, customer, clock) == [started.session.id]
    clock.set(begun + absolute())  # within 4 minutes of the last use, but 12 hours in all
    assert clock.now() - as_utc(row_of(engine, started.session.id)["last_seen_at"]) < idle()
    expect("SESSION_EXPIRED", writer, resume(started.token))
    assert live_ids(engine, customer, clock) == []


def test_busy_session_is_alive_a_second_before_the_absolute_limit(
    writer: Writer, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="mobile"))
    begun = clock.now()
    step = idle() - timedelta(seconds=1)  # the longest pause that keeps it alive
    edge = begun + absolute() - timedelta(seconds=1)
    while clock.now() + step < edge:
        clock.advance(step)
        writer.execute(resume(started.token))
    clock.set(edge)
    assert writer.execute(resume(started.token)).id == started.session.id
    clock.advance(timedelta(seconds=1))
    expect("SESSION_EXPIRED", writer, resume(started.token))


# --- ending sessions --------------------------------------------------------------------------


def test_after_logout_the_token_is_refused(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))
    writer.execute(resume(started.token))
    writer.execute(end(customer_id=customer, session_id=started.session.id))
    expect("SESSION_EXPIRED", writer, resume(started.token))
    row = row_of(engine, started.session.id)
    assert as_utc(row["ended_at"]) == clock.now()
    assert row["end_reason"] == "logout"
    assert live_ids(engine, customer, clock) == []


def test_ending_twice_is_harmless(writer: Writer, engine: Engine, clock: FixedClock) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))
    writer.execute(end(customer_id=customer, session_id=started.session.id))
    ended_at = clock.now()
    clock.advance(timedelta(minutes=1))
    assert writer.execute(end(customer_id=customer, session_id=started.session.id)) is None
    assert (
        writer.execute(end(customer_id=customer, session_id=started.session.id, reason="revoked"))
        is None
    )
    row = row_of(engine, started.session.id)
    assert as_utc(row["ended_at"]) == ended_at  # the first end stands
    assert row["end_reason"] == "logout"
    with engine.connect() as conn:
        ends = conn.execute(
            select(func.count())
            .select_from(audit_log)
            .where(
                audit_log.c.subject == f"session:{started.session.id}",
                audit_log.c.action.like("session.end.%"),
            )
        ).scalar_one()
    assert ends == 1
    expect("SESSION_EXPIRED", writer, resume(started.token))


def test_customer_cannot_end_someone_elses_session(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    owner = person(writer, 1)
    other = person(writer, 2)
    started = writer.execute(start(customer_id=owner, channel="mobile", device_hash=PHONE))
    error = expect(
        "SESSION_NOT_FOUND", writer, end(customer_id=other, session_id=started.session.id)
    )
    # Someone else's session looks exactly like one that does not exist.
    missing = expect(
        "SESSION_NOT_FOUND", writer, end(customer_id=other, session_id=started.session.id + 999)
    )
    assert str(error) == str(missing)
    assert row_of(engine, started.session.id)["ended_at"] is None
    assert writer.execute(resume(started.token)).id == started.session.id
    assert live_ids(engine, owner, clock) == [started.session.id]
    assert live_ids(engine, other, clock) == []


def test_end_all_ends_the_live_sessions_of_one_holder_from_one_device_and_no_others(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    mine, theirs = person(writer, 1), person(writer, 2)
    other_phone = device_hash(VAULT, "another phone")
    from_phone = [writer.execute(start(customer_id=mine, channel="mobile", device_hash=PHONE))
                  for _ in range(2)]  # fmt: skip
    logged_out = writer.execute(start(customer_id=mine, channel="mobile", device_hash=PHONE))
    writer.execute(end(customer_id=mine, session_id=logged_out.session.id))
    elsewhere = writer.execute(start(customer_id=mine, channel="mobile", device_hash=other_phone))
    browser = writer.execute(start(customer_id=mine, channel="online"))
    # A shared phone: the other customer's session from it is theirs alone.
    shared = writer.execute(start(customer_id=theirs, channel="mobile", device_hash=PHONE))

    def run(tx: Any) -> int:
        return end_all(tx, customer_id=mine, device_hash=PHONE, reason="unbound",
                       actor=f"customer:{mine}", channel="mobile")  # fmt: skip

    assert writer.execute(Command(run)) == 2
    for started in from_phone:
        expect("SESSION_EXPIRED", writer, resume(started.token))
        assert row_of(engine, started.session.id)["end_reason"] == "unbound"
    assert row_of(engine, logged_out.session.id)["end_reason"] == "logout"  # its first end stands
    for started in (elsewhere, browser, shared):
        assert writer.execute(resume(started.token)).id == started.session.id
    with engine.connect() as conn:
        ends = conn.execute(
            select(audit_log.c.actor, audit_log.c.subject).where(
                audit_log.c.action == "session.end.unbound"
            )
        ).all()
    expected = [(f"customer:{mine}", f"session:{s.session.id}") for s in from_phone]
    assert sorted(ends) == sorted(expected)
    assert writer.execute(Command(run)) == 0  # nothing left to end


@pytest.mark.parametrize(
    "holder",
    [{"device_hash": ""}, {"staff_id": 1}, {"customer_id": None}],
    ids=["empty device", "two holders", "no holder"],
)
def test_end_all_needs_one_holder_and_a_device_hash_if_any(
    writer: Writer, engine: Engine, clock: FixedClock, holder: dict[str, Any]
) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))  # no device: ""
    kwargs = {"customer_id": customer, **holder}

    def run(tx: Any) -> int:
        return end_all(tx, reason="unbound", actor="x", channel="mobile", **kwargs)

    expect("INVALID_INPUT", writer, Command(run))
    assert live_ids(engine, customer, clock) == [started.session.id]


def test_garbage_tokens_are_expired_without_a_crash(writer: Writer) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))
    real = started.token
    garbage: list[Any] = [
        "",
        None,
        "garbage",
        " ",
        "x" * 101,
        "x" * 100_000,
        real + "x",
        real[:-1],
        real.upper() if real.upper() != real else real.lower(),
        " " + real,
        hashlib.sha256(real.encode()).hexdigest(),  # the stored hash is not a token
        "令牌令牌",
        "\x00" + real[1:],
        "' OR '1'='1",
        123,
        b"bytes",
        real.encode(),
        ["list"],
    ]
    for token in garbage:
        expect("SESSION_EXPIRED", writer, resume(token))
    # The writer and the real session are unharmed.
    assert writer.execute(resume(real)).id == started.session.id


# --- invalid starts ---------------------------------------------------------------------------


def test_channel_other_than_online_or_mobile_is_invalid_input(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    for channel in ("phone", "sms", "counter", "", "Online", "ONLINE", " online", None):
        expect("INVALID_INPUT", writer, start(customer_id=customer, channel=channel))
    assert session_count(engine) == 0


@pytest.mark.parametrize("given", [DEVICE, "g" * 64, PHONE.upper(), PHONE[:-1], " " + PHONE, None])
def test_a_device_is_named_by_its_keyed_hash_and_nothing_else(
    writer: Writer, engine: Engine, given: Any
) -> None:
    customer = person(writer, 1)
    expect(
        "INVALID_INPUT", writer, start(customer_id=customer, channel="mobile", device_hash=given)
    )
    assert session_count(engine) == 0
    writer.execute(start(customer_id=customer, channel="mobile", device_hash=PHONE))
    assert session_count(engine) == 1


def test_unknown_customer_is_customer_not_found(writer: Writer, engine: Engine) -> None:
    person(writer, 1)
    expect("CUSTOMER_NOT_FOUND", writer, start(customer_id=987_654, channel="online"))
    assert session_count(engine) == 0


# --- listing ----------------------------------------------------------------------------------


def test_live_sessions_lists_only_live_sessions_of_that_customer_newest_first(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    mine = person(writer, 1)
    theirs = person(writer, 2)
    gone_idle = writer.execute(start(customer_id=mine, channel="online"))
    other = writer.execute(start(customer_id=theirs, channel="online"))
    clock.advance(timedelta(minutes=3))
    logged_out = writer.execute(start(customer_id=mine, channel="mobile"))
    writer.execute(end(customer_id=mine, session_id=logged_out.session.id))
    clock.advance(idle() - timedelta(minutes=3))  # `gone_idle`, `other`: idle the limit
    older = writer.execute(start(customer_id=mine, channel="mobile", device_hash=PHONE))
    clock.advance(timedelta(seconds=10))
    newer = writer.execute(start(customer_id=mine, channel="online"))
    clock.advance(timedelta(seconds=10))
    assert idle() > timedelta(seconds=20)

    with engine.connect() as conn:
        listed = live_sessions(conn, mine, now=clock.now())
    assert listed == [newer.session, older.session]
    assert gone_idle.session.id not in {s.id for s in listed}
    assert other.session.id not in {s.id for s in listed}
    assert live_ids(engine, theirs, clock) == []  # `other` was idle the limit too

    # A use moves last_seen_at in the listing, and idle ones drop out as time passes.
    writer.execute(resume(older.token))
    with engine.connect() as conn:
        listed = live_sessions(conn, mine, now=clock.now())
    assert [s.id for s in listed] == [newer.session.id, older.session.id]
    assert listed[1].last_seen_at == clock.now()
    clock.advance(idle() - timedelta(seconds=5))  # newer idle the limit + 5 s; older not yet
    assert live_ids(engine, mine, clock) == [older.session.id]


# --- audit and batching -----------------------------------------------------------------------


def test_start_and_end_are_audited(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="mobile", device_hash=PHONE))
    writer.execute(resume(started.token))
    writer.execute(end(customer_id=customer, session_id=started.session.id, reason="revoked"))
    with engine.connect() as conn:
        trail = (
            conn.execute(
                select(audit_log)
                .where(audit_log.c.subject == f"session:{started.session.id}")
                .order_by(audit_log.c.id)
            )
            .mappings()
            .all()
        )
        verification = audit.verify(conn)
    assert [(r["action"], r["actor"], r["channel"], r["outcome"]) for r in trail] == [
        ("session.start", f"customer:{customer}", "mobile", "ok"),
        ("session.end.revoked", f"customer:{customer}", "mobile", "ok"),
    ]
    assert verification.ok, verification.reason


def test_two_resumes_of_one_token_in_one_batch_both_succeed(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    started = writer.execute(start(customer_id=customer, channel="online"))
    clock.advance(timedelta(minutes=2))
    first, second = in_one_batch(writer, [resume(started.token), resume(started.token)])
    assert isinstance(first, Session), first
    assert isinstance(second, Session), second
    assert first.id == second.id == started.session.id
    assert first.last_seen_at == second.last_seen_at == clock.now()
    assert as_utc(row_of(engine, started.session.id)["last_seen_at"]) == clock.now()
