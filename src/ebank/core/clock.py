"""Injectable time: UTC instants for storage, the business day in the bank's zone."""

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from ebank.core.errors import EbankError

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to, for tests and replays."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock.set needs a timezone-aware instant")
        with self._lock:
            self._now = instant.astimezone(UTC)


def business_date(instant: datetime, tz: ZoneInfo = BUSINESS_TZ) -> date:
    """The bank's business day an instant falls in (limits and statements count by it)."""
    return instant.astimezone(tz).date()


def business_day_bounds(day: date, tz: ZoneInfo = BUSINESS_TZ) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a business day; a day at the calendar's very ends
    (0001-01-01, 9999-12-31) has none, and is bad input."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    try:
        return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
    except OverflowError:
        raise EbankError("INVALID_INPUT", reason="a date between the years 1 and 9999") from None


def as_utc(value: datetime) -> datetime:
    """Normalise a stored timestamp: SQLite hands back naive datetimes that are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
