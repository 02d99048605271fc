"""What customers ask for and see: payees, standing orders and their schedules, mandates and
debits."""

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ebank.core.clock import BUSINESS_TZ, as_utc
from ebank.core.errors import EbankError
from ebank.standing.tables import FREQUENCIES

MAX_RUNS = 1000
MAX_LEAD = timedelta(days=366)  # how far ahead an order may start


def _invalid(reason: str) -> EbankError:
    return EbankError("INVALID_INPUT", reason=reason)


def _month_day(day: int, on_or_after: date) -> date:
    """The first date on or after `on_or_after` that is day `day` of its month, or the last
    day of a month too short for it (the 31st runs on 30 April and 28 February)."""
    year, month = on_or_after.year, on_or_after.month
    while True:
        candidate = date(year, month, min(day, calendar.monthrange(year, month)[1]))
        if candidate >= on_or_after:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When an order runs, in the bank's time zone: at `at` on `start_on` only (once), or every
    day, every week on ISO weekday `day` (1 = Monday), or every month on day `day`; from
    `start_on`, until `end_on` (inclusive) and at most `count` times, when given."""

    frequency: str
    start_on: date
    at: time
    day: int | None = None
    end_on: date | None = None
    count: int | None = None

    def checked(self) -> "Schedule":
        """The schedule, or INVALID_INPUT saying what is wrong with it."""
        if self.frequency not in FREQUENCIES:
            raise _invalid(f"frequency is one of {', '.join(FREQUENCIES)}")
        if type(self.start_on) is not date or not isinstance(self.at, time):
            raise _invalid("a schedule starts on a date, at a time of day")
        if self.at.tzinfo is not None or self.at.second or self.at.microsecond:
            raise _invalid("a time of day is a local hour and minute")
        days = {"weekly": (1, 7), "monthly": (1, 31)}.get(self.frequency)
        if days is None and self.day is not None:
            raise _invalid(f"a {self.frequency} order has no day")
        if days is not None and (type(self.day) is not int or not days[0] <= self.day <= days[1]):
            raise _invalid(f"a {self.frequency} order runs on a day {days[0]}-{days[1]}")
        if self.end_on is not None and (
            type(self.end_on) is not date or self.end_on < self.start_on
        ):
            raise _invalid("an end date is on or after the start date")
        if self.count is not None and (
            type(self.count) is not int or not 0 < self.count <= MAX_RUNS
        ):
            raise _invalid(f"a count is 1-{MAX_RUNS}")
        if self.frequency == "once" and (self.end_on is not None or self.count is not None):
            raise _invalid("an order made once has no end date or count")
        return self

    def next_date(self, after: date | None) -> date | None:
        """The first run date from the start that comes after `after` (None: the first of
        all); None when the schedule has no more (by its end date; counting is the order's)."""
        earliest = self.start_on if after is None else max(self.start_on, after + timedelta(1))
        if self.frequency == "once":
            found = self.start_on if after is None else None
        elif self.frequency == "daily":
            found = earliest
        elif self.frequency == "weekly":
            assert self.day is not None
            found = earliest + timedelta((self.day - earliest.isoweekday()) % 7)
        else:
            assert self.day is not None
            found = _month_day(self.day, earliest)
        if found is None or (self.end_on is not None and found > self.end_on):
            return None
        return found

    def instant(self, day: date) -> datetime:
        """The UTC instant of the run on `day`."""
        return as_utc(datetime.combine(day, self.at, tzinfo=BUSINESS_TZ))


@dataclass(frozen=True, slots=True)
class PayeeView:
    id: int
    name: str
    account: str  # masked
    bank: str | None  # None: this bank
    alias: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A standing order as the customer described it."""

    customer_id: int
    channel: str
    payee_id: int
    from_account: str  # one of the customer's account numbers
    amount: int  # fen
    schedule: Schedule
    memo: str = ""


@dataclass(frozen=True, slots=True)
class Occurrence:
    """How one run went: its payment, or why there was none."""

    due_on: date
    payment_id: int | None
    failure_code: str | None
    ran_at: datetime


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    payee: PayeeView
    from_account: str
    amount: int
    currency: str
    memo: str
    schedule: Schedule
    method: str | None
    status: str  # active | finished | cancelled
    runs: int
    next_run_at: datetime | None
    last: Occurrence | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderQuote:
    """What setting an order up will take: the factors a transfer of its amount to its payee
    would need now, and its first run."""

    kind: str  # own | intra | interbank
    methods: tuple[str, ...]
    large_warning: bool
    first_run_at: datetime


@dataclass(frozen=True, slots=True)
class Creditor:
    """Who may debit under a mandate: an enterprise customer of this bank, or a biller."""

    customer_id: int | None = None
    biller: str | None = None

    def label(self) -> str:
        return f"customer:{self.customer_id}" if self.biller is None else f"biller:{self.biller}"


@dataclass(frozen=True, slots=True)
class MandateRequest:
    """A direct-debit mandate as the customer described it. The creditor is named by its
    settlement account number here, or by a biller's code."""

    customer_id: int
    channel: str
    account: str  # the customer's paying account
    max_amount: int  # fen, per debit
    frequency: str  # any | monthly | yearly
    valid_until: date
    creditor_account: str | None = None
    biller: str | None = None


@dataclass(frozen=True, slots=True)
class MandateView:
    id: int
    account: str  # the paying account: in full to its holder, masked to the creditor
    debtor_name: str  # masked
    creditor_name: str
    creditor_account: str | None  # masked
    biller: str | None
    max_amount: int
    currency: str
    frequency: str
    valid_until: date
    status: str  # active | revoked | expired
    created_at: datetime
    revoked_at: datetime | None
    last_debit_at: datetime | None


@dataclass(frozen=True, slots=True)
class DebitView:
    id: int
    mandate_id: int
    reference: str  # the creditor's
    amount: int
    payment_id: int
    payment_reference: str  # the bank's, as the customer's statement shows it
    created_at: datetime
