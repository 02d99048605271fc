"""Management KPIs (DOMAIN.md §9) over a period of business days (Asia/Shanghai), computed
from the tables as they stand: nothing is kept aside for them, so they never disagree with
the records, and each figure's docstring says exactly what it counts.

What ebank records bounds what it can count: the counter's cash business (deposits and
withdrawals at a teller's window) is not kept here, so the counter's transactions are the
payments taken on the counter channel (direct debits under a signed mandate). The e-channel
substitution rate is therefore an upper bound until the core banking system's counter
figures are joined to it.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    func,
    or_,
    select,
    union,
)

from ebank.cards.tables import cards
from ebank.core.channels import E_CHANNELS
from ebank.core.clock import BUSINESS_TZ, business_day_bounds
from ebank.enrolment.tables import channel_enrolments
from ebank.gateway import reports
from ebank.gateway.settlement import checked_period
from ebank.gateway.tables import MERCHANT_STATUSES, merchants
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.ledger.tables import postings
from ebank.payments.tables import payment_events, payments
from ebank.security.tables import sessions

COUNTER = "counter"
LONGEST = 366  # days a dashboard period may span
FEE_INCOME = "GL-FEE-INCOME-CNY"


@dataclass(frozen=True, slots=True)
class Flow:
    """Transactions of one channel on one business day."""

    day: date
    channel: str
    count: int
    amount: int  # fen


@dataclass(frozen=True, slots=True)
class Rate:
    part: int
    whole: int

    @property
    def percent(self) -> float | None:
        """For display only (a ratio, never money); None when there is nothing to divide."""
        return None if self.whole == 0 else round(100 * self.part / self.whole, 2)


@dataclass(frozen=True, slots=True)
class CardFigures:
    in_issue: int
    active: int
    deposits: int  # fen

    @property
    def dormant(self) -> int:
        return self.in_issue - self.active

    @property
    def active_rate(self) -> Rate:
        return Rate(self.active, self.in_issue)


@dataclass(frozen=True, slots=True)
class ChannelUse:
    channel: str
    enrolled: int
    active: int


@dataclass(frozen=True, slots=True)
class MerchantFigures:
    by_industry: dict[str, int]  # merchants not closed, per industry
    by_status: dict[str, int]
    inactive: int  # active merchants that took no payment in the period
    payments: int  # acquiring volume: payments taken, without flagged merchants
    amount: int  # fen
    flagged: tuple[str, ...]  # merchant numbers flagged for fabricated volume in the period


@dataclass(frozen=True, slots=True)
class Dashboard:
    since: date
    until: date
    flows: list[Flow]
    substitution: Rate
    cards: CardFigures
    channels: list[ChannelUse]
    fees_by_day: dict[date, int]  # fen
    fees_booked: int  # fen
    merchants: MerchantFigures


def _bounds(since: date, until: date) -> tuple[Any, Any]:
    checked_period(since, until, LONGEST)
    return business_day_bounds(since)[0], business_day_bounds(until)[1]


def _business_day(conn: Connection, column: Any) -> ColumnElement[Any]:
    """The business day of a stored UTC time, in SQL. Asia/Shanghai has kept UTC+8 without
    summer time since 1991, so SQLite's fixed shift is exact."""
    if conn.dialect.name == "sqlite":
        return func.date(column, "+8 hours")
    return func.date(func.timezone(str(BUSINESS_TZ), column))


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def transactions(conn: Connection, since: date, until: date) -> list[Flow]:
    """Transactions per channel and business day: the customers' payments (transfers, bill
    payments, payroll, direct debits) that completed in the period, dated by their completion,
    on the channel they were made on; and the payments buyers made through the merchant
    gateway (instant, escrow and each capture) on the channel they paid on, without the
    merchants flagged for fabricated volume (DOMAIN.md §5). CNY only; a payment later
    returned by the payee's bank still counts, as the customer did make it."""
    start, end = _bounds(since, until)
    day = _business_day(conn, payment_events.c.at)
    rows = conn.execute(
        select(day.label("day"), payments.c.channel, func.count(), func.sum(payments.c.amount))
        .join(payments, payments.c.id == payment_events.c.payment_id)
        .where(
            payment_events.c.status == "completed", payment_events.c.at >= start,
            payment_events.c.at < end, payments.c.currency == "CNY",
        )
        .group_by(day, payments.c.channel)
    )  # fmt: skip
    found: dict[tuple[date, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for when, channel, count, amount in rows:
        found[_as_date(when), channel] = (int(count), int(amount))
    gateway = reports.statistics(conn, since=since, until=until, by=("channel", "day"))
    for group in gateway.groups:
        channel, when = group.key
        if group.volume.count:
            count, amount = found[date.fromisoformat(when), channel]
            found[date.fromisoformat(when), channel] = (
                count + group.volume.count,
                amount + group.volume.amount,
            )
    return [Flow(d, c, n, a) for (d, c), (n, a) in sorted(found.items())]


def substitution_rate(flows: list[Flow]) -> Rate:
    """电子渠道替代率 (DOMAIN.md §9): transactions on the electronic channels (online, mobile,
    phone, SMS, corporate online banking and the gateway's payments, which buyers make in
    online or mobile banking) over all transactions, the counter's included. By count, as the
    banks' reports give it. See the module's note on what the counter's count holds."""
    everything = sum(f.count for f in flows)
    return Rate(sum(f.count for f in flows if f.channel != COUNTER), everything)


def card_figures(conn: Connection, since: date, until: date) -> CardFigures:
    """活卡率 (DOMAIN.md §9, target 96.5%-98.5%): of the cards in issue at the period's end
    (issued before it and not closed now; a card closed since is left out), those whose
    account moved in the period (any posting: money in or out, by any channel). DOMAIN.md
    names no window: the dashboard's period is the window. Dormant cards are the rest.
    Card deposits: what the accounts behind the debit cards in issue hold now, each account
    once however many cards it has."""
    start, end = _bounds(since, until)
    in_issue = and_(cards.c.issued_at < end, cards.c.status != "closed")
    total = conn.execute(select(func.count()).select_from(cards).where(in_issue)).scalar_one()
    moved = select(postings.c.id).where(
        postings.c.account_id == cards.c.ledger_account_id,
        postings.c.posted_at >= start, postings.c.posted_at < end,
    )  # fmt: skip
    active = conn.execute(
        select(func.count()).select_from(cards).where(in_issue, moved.exists())
    ).scalar_one()
    latest = (
        select(postings.c.balance_after)
        .where(postings.c.account_id == ledger_accounts.c.id)
        .order_by(postings.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    debit_accounts = select(cards.c.ledger_account_id).where(in_issue, cards.c.kind == "debit")
    deposits = conn.execute(
        select(func.coalesce(func.sum(latest), 0)).where(ledger_accounts.c.id.in_(debit_accounts))
    ).scalar_one()
    return CardFigures(int(total), int(active), int(deposits))


def channel_use(conn: Connection, since: date, until: date) -> list[ChannelUse]:
    """Per channel a customer enrols for: customers enrolled at the period's end (enrolled
    before it, not cancelled by then), and of them the active ones: who logged in on the
    channel (a session started) or made a payment on it in the period — mobile banking
    "opened" against "activated and used" (DOMAIN.md §9)."""
    start, end = _bounds(since, until)
    e = channel_enrolments.c
    live = and_(e.enrolled_at < end, or_(e.cancelled_at.is_(None), e.cancelled_at >= end))
    enrolled = dict(
        conn.execute(select(e.channel, func.count()).where(live).group_by(e.channel)).all()
    )
    used = union(
        select(sessions.c.customer_id.label("customer_id"), sessions.c.channel.label("channel"))
        .where(sessions.c.started_at >= start, sessions.c.started_at < end,
               sessions.c.customer_id.is_not(None)),
        select(payments.c.customer_id, payments.c.channel)
        .where(payments.c.created_at >= start, payments.c.created_at < end),
    ).subquery()  # fmt: skip
    active = dict(
        conn.execute(
            select(e.channel, func.count())
            .join(used, and_(used.c.customer_id == e.customer_id, used.c.channel == e.channel))
            .where(live)
            .group_by(e.channel)
        ).all()
    )
    return [ChannelUse(c, int(enrolled.get(c, 0)), int(active.get(c, 0))) for c in E_CHANNELS]


def fees_booked(conn: Connection, since: date, until: date) -> int:
    """Fee income booked in the period: what was credited to the fee income account (the
    gateway's fees reach it as its merchants are settled), net of any debit to it."""
    start, end = _bounds(since, until)
    signed = func.sum(case((postings.c.side == "C", postings.c.amount), else_=-postings.c.amount))
    total = conn.execute(
        select(func.coalesce(signed, 0))
        .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
        .where(ledger_accounts.c.code == FEE_INCOME, postings.c.posted_at >= start,
               postings.c.posted_at < end)
    ).scalar_one()  # fmt: skip
    return int(total)


def merchant_figures(conn: Connection, since: date, until: date) -> MerchantFigures:
    """特约商户 (DOMAIN.md §9): merchants by industry (the type the bank records for each,
    closed ones left out) and by status; inactive ones: active merchants that took no payment
    in the period; acquiring volume: the payments they took, without merchants flagged for
    fabricated volume (DOMAIN.md §5)."""
    checked_period(since, until, LONGEST)
    m = merchants.c
    by_industry = dict(
        conn.execute(
            select(m.industry, func.count()).where(m.status != "closed").group_by(m.industry)
        ).all()
    )
    counted = dict(conn.execute(select(m.status, func.count()).group_by(m.status)).all())
    stats = reports.statistics(conn, since=since, until=until, by=("merchant",))
    took = {g.key[0] for g in stats.groups if g.volume.count}
    active = conn.execute(select(m.merchant_no).where(m.status == "active")).scalars()
    return MerchantFigures(
        {k: int(v) for k, v in sorted(by_industry.items())},
        {s: int(counted.get(s, 0)) for s in MERCHANT_STATUSES},
        sum(1 for number in active if number not in took),
        stats.totals.count, stats.totals.amount, stats.flagged,
    )  # fmt: skip


def fees_by_day(conn: Connection, since: date, until: date) -> dict[date, int]:
    """Fee income earned per business day: the gateway's fees, taken as money reaches a
    merchant (DOMAIN.md §5; the only fees ebank charges), without flagged merchants. Every day
    of the period is present, a day without fees as 0."""
    stats = reports.statistics(conn, since=since, until=until, by=("day",))
    earned = {date.fromisoformat(g.key[0]): g.volume.fees for g in stats.groups}
    days = (until - since).days + 1
    return {d: earned.get(d, 0) for d in (since + timedelta(days=i) for i in range(days))}


def dashboard(conn: Connection, since: date, until: date) -> Dashboard:
    """Every figure of the management dashboard for the business days `since` to `until`."""
    flows = transactions(conn, since, until)
    return Dashboard(
        since, until, flows, substitution_rate(flows), card_figures(conn, since, until),
        channel_use(conn, since, until), fees_by_day(conn, since, until),
        fees_booked(conn, since, until), merchant_figures(conn, since, until),
    )  # fmt: skip
