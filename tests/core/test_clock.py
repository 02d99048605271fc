"""Time: UTC instants for storage, the business day in Asia/Shanghai, a clock tests can move."""

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ebank.core.clock import (
    BUSINESS_TZ,
    FixedClock,
    SystemClock,
    as_utc,
    business_date,
    business_day_bounds,
)


def test_business_zone_is_shanghai() -> None:
    assert ZoneInfo("Asia/Shanghai") == BUSINESS_TZ


def test_business_date_is_the_shanghai_date() -> None:
    assert business_date(datetime(2026, 11, 22, 16, 30, tzinfo=UTC)) == date(2026, 11, 23)
    assert business_date(datetime(2026, 11, 22, 15, 59, 59, 999999, tzinfo=UTC)) == date(
        2026, 11, 22
    )
    assert business_date(datetime(2026, 11, 22, 16, 0, tzinfo=UTC)) == date(2026, 11, 23)
    # The same instant written in another zone falls on the same business day.
    new_york = datetime(2026, 11, 22, 11, 30, tzinfo=ZoneInfo("America/New_York"))
    assert business_date(new_york) == date(2026, 11, 23)


def test_business_day_bounds_run_from_16h_utc_the_day_before() -> None:
    start, end = business_day_bounds(date(2026, 11, 23))
    assert start == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)


def test_business_day_bounds_contain_exactly_the_instants_of_that_day() -> None:
    day = date(2026, 12, 31)
    start, end = business_day_bounds(day)
    assert business_date(start) == day
    assert business_date(end - timedelta(microseconds=1)) == day
    assert business_date(end) == date(2027, 1, 1)
    assert business_date(start - timedelta(microseconds=1)) == date(2026, 12, 30)
    # Consecutive days tile time with neither gap nor overlap.
    assert business_day_bounds(date(2027, 1, 1))[0] == end


def test_fixed_clock_stands_still_until_moved() -> None:
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    clock = FixedClock(start)
    assert clock.now() == start
    assert clock.now() == start
    assert clock.advance(timedelta(minutes=90)) == start + timedelta(minutes=90)
    assert clock.now() == start + timedelta(minutes=90)
    later = datetime(2027, 1, 1, tzinfo=UTC)
    clock.set(later)
    assert clock.now() == later


def test_fixed_clock_reports_utc_whatever_zone_it_was_given() -> None:
    shanghai_ten = datetime(2026, 11, 23, 10, 0, tzinfo=BUSINESS_TZ)
    clock = FixedClock(shanghai_ten)
    assert clock.now() == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=8))))
    assert clock.now() == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)


def test_fixed_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 11, 23, 2, 0))


def test_fixed_clock_set_refuses_a_naive_instant() -> None:
    # A naive instant would be read in the host's local zone and silently shift the clock.
    clock = FixedClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 11, 24, 2, 0))
    assert clock.now() == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_system_clock_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_as_utc_reads_naive_as_utc_and_converts_aware() -> None:
    naive = datetime(2026, 11, 23, 2, 0, 0, 123456)
    assert as_utc(naive) == datetime(2026, 11, 23, 2, 0, 0, 123456, tzinfo=UTC)
    assert as_utc(naive).tzinfo is UTC
    aware = datetime(2026, 11, 23, 10, 0, tzinfo=BUSINESS_TZ)
    assert as_utc(aware) == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert as_utc(aware).utcoffset() == timedelta(0)
    assert as_utc(aware).hour == 2
