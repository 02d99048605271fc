"""Limits on one-time SMS codes (security.issue_code, security.check_code): no new code for a
purpose within a minute of the last, at most 10 codes a customer a business day (Asia/Shanghai)
over every purpose, and at most 15 wrong guesses a business day at all of them together, after
which no code passes and none is sent. Every sender goes through issue_code, so these hold for
all of them. The numbers are settings (EBANK_SMS_*).

Every test runs on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from ebank.core.clock import BUSINESS_TZ, FixedClock
from ebank.core.errors import CATALOGUE
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Writer
from ebank.security import service as security
from ebank.security.service import CodeIssued, issue_code
from tests.security.test_security import (
    PAY_100,
    PAY_MESSAGE,
    VAULT,
    code_rows,
    fails,
    new_customer,
    other_than,
    raised,
    send_code,
    use_code,
)
from tests.support import code_of, in_one_batch

MINUTE = timedelta(seconds=60)


@pytest.fixture
def customer(writer: Writer) -> int:
    return new_customer(writer)


def issue(customer: int, purpose: str = "payment") -> Command[CodeIssued]:
    return issue_code(
        VAULT, customer_id=customer, purpose=purpose, binding=PAY_100, message=PAY_MESSAGE
    )


def shanghai(clock: FixedClock, hour: int, minute: int, second: int = 0) -> None:
    """Set the clock to a time of the day it shows, in the bank's zone."""
    day = clock.now().astimezone(BUSINESS_TZ).date()
    clock.set(datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=BUSINESS_TZ))


def next_business_day(clock: FixedClock) -> datetime:
    day = clock.now().astimezone(BUSINESS_TZ).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)


def spend_a_code(writer: Writer, engine: Engine, clock: FixedClock, customer: int) -> None:
    """A code sent, then guessed wrong until it is spent; the clock past the interval."""
    code = send_code(writer, engine, customer)
    for _ in range(get_settings().auth_max_failures):
        assert not use_code(writer, customer, other_than(code)).ok
    clock.advance(MINUTE)


def test_the_limits_are_settings_with_the_briefed_defaults() -> None:
    settings = get_settings()
    assert settings.sms_code_resend_seconds == 60
    assert settings.sms_codes_per_day == 10
    assert settings.sms_code_failures_per_day == 3 * settings.auth_max_failures


def test_both_refusals_are_http_429() -> None:
    assert CATALOGUE["CODE_TOO_SOON"].status == 429
    assert CATALOGUE["CODE_DAILY_LIMIT"].status == 429


# -- the interval between two codes ---------------------------------------------------------
def test_a_second_code_for_a_purpose_within_a_minute_says_how_long_to_wait(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    first = send_code(writer, engine, customer)
    clock.advance(timedelta(seconds=20, milliseconds=500))
    refused = fails(writer, issue(customer), "CODE_TOO_SOON")
    assert refused.details == {"seconds": 40}
    assert "40" in refused.message("zh") and "40" in refused.message("en")
    assert len(code_rows(engine, customer)) == 1  # nothing sent, nothing superseded
    assert use_code(writer, customer, first).ok


def test_a_code_for_a_purpose_is_sent_again_once_the_minute_is_over(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    send_code(writer, engine, customer)
    clock.advance(MINUTE - timedelta(seconds=1))
    assert fails(writer, issue(customer), "CODE_TOO_SOON").details == {"seconds": 1}
    clock.advance(timedelta(seconds=1))
    assert writer.execute(issue(customer)).id > 0


def test_the_interval_is_per_purpose(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    send_code(writer, engine, customer, purpose="payment")
    assert writer.execute(issue(customer, "payee")).id > 0
    fails(writer, issue(customer, "payee"), "CODE_TOO_SOON")


def test_the_interval_holds_across_midnight(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    shanghai(clock, 23, 59, 50)
    send_code(writer, engine, customer)
    clock.advance(timedelta(seconds=20))  # 00:00:10, the next business day
    assert fails(writer, issue(customer), "CODE_TOO_SOON").details == {"seconds": 40}


def test_two_codes_for_a_purpose_in_one_batch_send_one(
    writer: Writer, engine: Engine, customer: int
) -> None:
    outcomes = in_one_batch(writer, [issue(customer), issue(customer)])
    assert [code_of(o) for o in outcomes] == ["ok", "CODE_TOO_SOON"]
    assert len(code_rows(engine, customer)) == 1


# -- the day's codes ------------------------------------------------------------------------
def test_the_eleventh_code_of_a_business_day_is_refused_until_the_next(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    shanghai(clock, 8, 0)
    for _ in range(10):
        send_code(writer, engine, customer)
        clock.advance(MINUTE)
    refused = fails(writer, issue(customer, "login"), "CODE_DAILY_LIMIT")  # every purpose
    assert "明天" in refused.message("zh") and "tomorrow" in refused.message("en")
    assert refused.details == {"seconds": 15 * 3600 + 50 * 60}  # from 08:10 to midnight
    assert len(code_rows(engine, customer)) == 10
    clock.set(next_business_day(clock) - timedelta(seconds=0.25))  # 23:59:59.75 in Shanghai
    assert fails(writer, issue(customer), "CODE_DAILY_LIMIT").details == {"seconds": 1}
    clock.advance(timedelta(seconds=0.25))
    assert writer.execute(issue(customer)).id > 0


def test_the_business_day_is_shanghais_not_utcs(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    shanghai(clock, 7, 0)  # 23:00 UTC the day before: one UTC day, two business days
    for _ in range(10):
        send_code(writer, engine, customer)
        clock.advance(MINUTE)
    shanghai(clock, 23, 0)  # 15:00 UTC: another UTC day, the same business day
    fails(writer, issue(customer), "CODE_DAILY_LIMIT")


def test_a_lower_daily_cap_set_by_the_bank_holds(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(get_settings(), "sms_codes_per_day", 2)
    monkeypatch.setattr(get_settings(), "sms_code_resend_seconds", 0)
    send_code(writer, engine, customer)
    send_code(writer, engine, customer)
    fails(writer, issue(customer), "CODE_DAILY_LIMIT")


# -- the day's wrong guesses ----------------------------------------------------------------
def test_wrong_guesses_at_the_days_codes_count_together(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    spend_a_code(writer, engine, clock, customer)
    spend_a_code(writer, engine, clock, customer)
    code = send_code(writer, engine, customer)
    verdicts = [use_code(writer, customer, other_than(code)) for _ in range(4)]
    assert [v.attempts_left for v in verdicts] == [4, 3, 2, 1]
    last = use_code(writer, customer, other_than(code))
    assert last.attempts_left == 0  # the 15th wrong guess of the day
    clock.advance(MINUTE)
    fails(writer, issue(customer, "login"), "CODE_DAILY_LIMIT")  # a new code would not help


def test_once_the_days_guesses_are_spent_even_the_right_code_fails_until_tomorrow(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(get_settings(), "sms_code_failures_per_day", 7)
    spend_a_code(writer, engine, clock, customer)
    code = send_code(writer, engine, customer, purpose="payee")
    first = use_code(writer, customer, other_than(code), purpose="payee")
    assert first.attempts_left == 1  # the day's 6th of 7, not the code's 1st of 5
    assert use_code(writer, customer, other_than(code), purpose="payee").attempts_left == 0
    refused = use_code(writer, customer, code, purpose="payee")
    assert not refused.ok
    assert refused.locked_until == next_business_day(clock)
    locked = raised(refused)
    assert locked.code == "CREDENTIAL_LOCKED"
    assert locked.details["seconds"] == 13 * 3600 + 59 * 60  # from 10:01 to midnight
    assert code_rows(engine, customer)[-1]["attempts"] == 2  # the refusal counted nothing

    clock.set(next_business_day(clock))
    code = send_code(writer, engine, customer, purpose="payee")
    assert use_code(writer, customer, code, purpose="payee").ok


def test_right_codes_do_not_count_towards_the_days_guesses(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(get_settings(), "sms_code_failures_per_day", 1)
    for _ in range(3):
        assert use_code(writer, customer, send_code(writer, engine, customer)).ok
        clock.advance(MINUTE)


# -- the counting query ---------------------------------------------------------------------
def test_the_days_codes_are_counted_through_the_customers_index(
    engine: Engine, clock: FixedClock, customer: int
) -> None:
    """Read by the customer's id in ix_one_time_codes_customer_purpose, as the writer's
    connection plans it (on PostgreSQL, sequential scans off)."""
    with engine.connect() as conn:
        compiled = security.codes_since(customer, clock.now()).compile(conn)
        if engine.dialect.name == "sqlite":
            explain = "EXPLAIN QUERY PLAN "
            params: Any = tuple(compiled.params[name] for name in compiled.positiontup or ())
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            explain, params = "EXPLAIN ", compiled.params
        plan = conn.exec_driver_sql(explain + str(compiled), params).all()
    assert "ix_one_time_codes_customer_purpose" in " ".join(str(row) for row in plan)
