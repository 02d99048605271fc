"""When standing orders run: once, daily, weekly on a weekday, monthly on a day of the month
(the 31st on a short month's last day), until an end date. Pure: no database."""

from datetime import UTC, date, datetime, time

import pytest

from ebank.core.errors import EbankError
from ebank.standing.models import Schedule

NINE = time(9, 0)


def dates(schedule: Schedule, n: int) -> list[date]:
    """The first `n` run dates (fewer if the schedule ends)."""
    found: list[date] = []
    day = schedule.next_date(None)
    while day is not None and len(found) < n:
        found.append(day)
        day = schedule.next_date(day)
    return found


def test_the_31st_runs_on_the_last_day_of_a_short_month() -> None:
    monthly = Schedule("monthly", date(2027, 1, 1), NINE, day=31)
    assert dates(monthly, 5) == [
        date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30),
        date(2027, 5, 31),
    ]  # fmt: skip
    leap = Schedule("monthly", date(2028, 2, 1), NINE, day=30)
    assert dates(leap, 2) == [date(2028, 2, 29), date(2028, 3, 30)]


def test_a_monthly_order_starting_after_its_day_first_runs_the_next_month() -> None:
    assert dates(Schedule("monthly", date(2026, 11, 23), NINE, day=5), 2) == [
        date(2026, 12, 5), date(2027, 1, 5),
    ]  # fmt: skip


def test_a_weekly_order_runs_on_its_weekday() -> None:
    fridays = dates(Schedule("weekly", date(2026, 11, 23), NINE, day=5), 3)  # a Monday start
    assert fridays == [date(2026, 11, 27), date(2026, 12, 4), date(2026, 12, 11)]
    assert all(d.isoweekday() == 5 for d in fridays)


def test_a_daily_order_stops_after_its_end_date_and_a_once_runs_once() -> None:
    daily = Schedule("daily", date(2026, 12, 30), NINE, end_on=date(2027, 1, 1))
    assert dates(daily, 10) == [date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1)]
    assert dates(Schedule("once", date(2026, 12, 1), NINE), 10) == [date(2026, 12, 1)]


def test_a_run_is_at_its_time_in_shanghai() -> None:
    schedule = Schedule("once", date(2026, 12, 1), time(8, 30))
    assert schedule.instant(date(2026, 12, 1)) == datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule("hourly", date(2026, 12, 1), NINE),
        Schedule("weekly", date(2026, 12, 1), NINE),
        Schedule("weekly", date(2026, 12, 1), NINE, day=8),
        Schedule("monthly", date(2026, 12, 1), NINE, day=0),
        Schedule("monthly", date(2026, 12, 1), NINE, day=32),
        Schedule("daily", date(2026, 12, 1), NINE, day=3),
        Schedule("daily", date(2026, 12, 1), NINE, end_on=date(2026, 11, 30)),
        Schedule("daily", date(2026, 12, 1), NINE, count=0),
        Schedule("daily", date(2026, 12, 1), NINE, count=1001),
        Schedule("once", date(2026, 12, 1), NINE, count=2),
        Schedule("once", date(2026, 12, 1), time(9, 0, 30)),
        Schedule("once", datetime(2026, 12, 1, 9, 0), NINE),  # type: ignore[arg-type]
    ],
)
def test_a_malformed_schedule_is_refused(schedule: Schedule) -> None:
    with pytest.raises(EbankError) as caught:
        schedule.checked()
    assert caught.value.code == "INVALID_INPUT"
