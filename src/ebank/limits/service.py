"""The limits service: every service that moves a customer's money asks it, in the same
transaction, before it posts (`authorise`), and the pages ask it beforehand which factor a
payment will need (`assess`).

The rules, in the order a refusal is reported (DOMAIN.md §2-§3):
1. Type II accounts: payments to others per day and year; Type III: every outflow;
2. an e-channel payment needs a live enrolment for the channel;
3. a payment to others needs a one-time factor (an internet payment may use the PIN alone);
4. the per-payment and daily limits the customer agreed for the channel, never above the bank's
   current maximum;
5. the daily maximum of the factor that confirmed it (SMS code, token, certificate);
6. an internet payment without certificate: per payment and per day;
7. an individual paying others above a day's threshold needs a certificate;
8. a large day's total to others needs the customer to confirm a warning first.
Payments between the customer's own accounts at this bank are exempt from all but rule 1
(Type III), and counter payments (staff checked the customer's identity) from 2-8.

Counters are per business day (and calendar year for the tiers), keyed by customer. Deciding
holds the customer's row locked, so two concurrent payments are counted one after the other
and cannot both squeeze under one limit.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ebank.accounts import service as accounts
from ebank.core.channels import E_CHANNELS
from ebank.core.clock import business_date
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.writer import Tx
from ebank.customers import service as customers
from ebank.enrolment.service import Enrolment, enrolment_of
from ebank.limits import parameters
from ebank.limits.parameters import METHODS, Limits
from ebank.limits.tables import limit_usage

CHANNELS = (*E_CHANNELS, "counter")
KINDS = ("transfer", "bill", "ecommerce")  # ecommerce: an internet payment through the gateway
ONE_TIME = ("sms", "token", "certificate")
MAX_AMOUNT = 10**15  # far above any payment; keeps sums well inside 64 bits


@dataclass(frozen=True, slots=True)
class Payment:
    """What a money-moving service is about to do, as the limits see it."""

    customer_id: int
    channel: str
    kind: str
    # The paying account's number; None for a credit card, which has no tier and which the
    # caller has checked is the customer's.
    from_account: str | None
    amount: int  # fen, CNY
    payee_account: str | None = None  # an account at this bank, if the payee holds one here
    method: str | None = None  # the factor that confirmed it; None before it is chosen
    large_confirmed: bool = False  # the customer confirmed the large-transfer warning


@dataclass(frozen=True, slots=True)
class Assessment:
    """What a payment would need, asked before the confirmation step."""

    methods: tuple[str, ...]  # the factors that would let it through, weakest first
    large_warning: bool  # the customer must confirm a large-transfer warning
    refusal: EbankError | None  # why no factor would do, if none would


@dataclass(frozen=True, slots=True)
class _Context:
    """Everything a decision reads, loaded once."""

    payment: Payment
    person: bool
    own: bool  # to the customer's own account at this bank
    tier: str
    account_id: int
    enrolment: Enrolment | None
    limits: Limits
    day: str
    year: str
    used: dict[tuple[str, str], int]

    @property
    def tiered(self) -> bool:
        """Whether the account's tier limits this payment (Type II: to others; III: all)."""
        return self.tier == "III" or (self.tier == "II" and not self.own)

    def spent(self, scope: str, period: str | None = None) -> int:
        return self.used.get((scope, period or self.day), 0)


def _money(fen: int) -> str:
    return format_minor(max(fen, 0), "CNY")


def _over(limit: str, cap: int, used: int, **extra: Any) -> EbankError:
    return EbankError(
        "LIMIT_EXCEEDED", limit=limit, cap=_money(cap), remaining=_money(cap - used), **extra
    )


def _factors(channel: str, kind: str) -> tuple[str, ...]:
    """The factors that may confirm a payment to others on a channel, weakest first.

    Online and mobile take a one-time factor, and the PIN alone for an internet payment; phone
    banking has the keypad (PIN) and SMS; SMS banking confirms with a code by reply.
    """
    if channel == "phone":
        return ("pin", "sms")
    if channel == "sms":
        return ("sms",)
    return ("pin", *ONE_TIME) if kind == "ecommerce" else ONE_TIME


def _check(ctx: _Context, method: str | None) -> EbankError | None:
    """The first rule the payment breaks with this factor, or None if it may go."""
    p, lim = ctx.payment, ctx.limits
    amount = p.amount
    if ctx.tiered:  # rule 1 applies everywhere, own accounts and the counter included
        for period, word in ((ctx.day, "daily"), (ctx.year, "yearly")):
            cap, used = (
                lim[f"tier.{ctx.tier}.{word}"],
                ctx.spent(f"account:{ctx.account_id}", period),
            )
            if used + amount > cap:
                return _over(f"tier_{word}", cap, used, tier=ctx.tier)
    if ctx.own or p.channel == "counter":
        return None
    if ctx.enrolment is None:  # rule 2
        return EbankError("NOT_ENROLLED")
    allowed = _factors(p.channel, p.kind)
    if method not in allowed:  # rule 3
        return EbankError("STRONGER_FACTOR_REQUIRED", methods=list(allowed))
    top_daily, top_per_payment = lim.channel_maximum(p.channel, ctx.enrolment.assurance)
    cap = min(ctx.enrolment.per_payment_limit, top_per_payment)  # rule 4
    if amount > cap:
        return _over("channel_per_payment", cap, 0)
    cap, used = min(ctx.enrolment.daily_limit, top_daily), ctx.spent(f"channel:{p.channel}")
    if used + amount > cap:
        return _over("channel_daily", cap, used)
    if method != "pin":  # rule 5
        cap, used = lim[f"method.{method}.daily"], ctx.spent(f"method:{method}")
        if used + amount > cap:
            return _over(f"{method}_daily", cap, used)
    if p.kind == "ecommerce" and method != "certificate":  # rule 6
        cap = lim["uncertified.per_payment"]
        if amount > cap:
            return _over("uncertified_per_payment", cap, 0)
        cap, used = lim["uncertified.daily"], ctx.spent("uncertified")
        if used + amount > cap:
            return _over("uncertified_daily", cap, used)
    threshold, used = lim["certificate_above.daily"], ctx.spent("others")
    if ctx.person and method != "certificate" and used + amount > threshold:  # rule 7
        return EbankError("CERTIFICATE_REQUIRED", threshold=_money(threshold))
    return None


def _large_warning(ctx: _Context) -> EbankError | None:
    """Rule 8: asked last, so that no one confirms a warning for a payment that would fail."""
    p = ctx.payment
    if ctx.own or p.channel == "counter" or p.large_confirmed:
        return None
    threshold = ctx.limits[f"large_warning.{'individual' if ctx.person else 'enterprise'}.daily"]
    if ctx.spent("others") + p.amount > threshold:
        return EbankError("LARGE_TRANSFER_WARNING", threshold=_money(threshold))
    return None


def _scopes(ctx: _Context, method: str | None) -> list[tuple[str, str]]:
    """The counters this payment adds to."""
    p = ctx.payment
    counted: list[tuple[str, str]] = []
    if ctx.tiered:
        counted += [(f"account:{ctx.account_id}", ctx.day), (f"account:{ctx.account_id}", ctx.year)]
    if not ctx.own and p.channel != "counter":
        counted += [(f"channel:{p.channel}", ctx.day), ("others", ctx.day)]
        if method != "pin":
            counted.append((f"method:{method}", ctx.day))
        if p.kind == "ecommerce" and method != "certificate":
            counted.append(("uncertified", ctx.day))
    return counted


def _context(conn: Connection, p: Payment, now: datetime, *, lock: bool) -> _Context:
    if type(p.amount) is not int or not 0 < p.amount <= MAX_AMOUNT:
        raise EbankError("INVALID_AMOUNT", reason="a payment is a positive amount")
    if p.channel not in CHANNELS or p.kind not in KINDS:
        raise EbankError("INVALID_INPUT", reason=f"channels {CHANNELS}, kinds {KINDS}")
    if p.method is not None and p.method not in METHODS:
        raise EbankError("INVALID_INPUT", reason=f"a factor is one of {METHODS}")
    holder = customers.holder(conn, p.customer_id, lock=lock)
    tier, account_id = "I", 0  # a credit card
    if p.from_account is not None:
        account = accounts.get_account(conn, number=p.from_account)
        if account.customer_id != p.customer_id:
            raise EbankError("ACCOUNT_NOT_FOUND")  # someone else's is as unknown as none
        if account.currency != "CNY":
            raise EbankError("INVALID_INPUT", reason="e-channel payments are in CNY")
        tier, account_id = account.tier, account.ledger_account_id
    own = False
    if p.payee_account is not None:
        try:
            own = accounts.get_account(conn, number=p.payee_account).customer_id == p.customer_id
        except EbankError:
            own = False  # not an account here: a payment to others
    day = business_date(now)
    enrolment = None if p.channel == "counter" else enrolment_of(conn, p.customer_id, p.channel)
    return _Context(
        p, holder.kind == "individual", own, tier, account_id, enrolment,
        parameters.load(conn), day.isoformat(), str(day.year), _usage(conn, p.customer_id, day),
    )  # fmt: skip


# Built once: building a statement per payment costs more than running it.
_USAGE = select(limit_usage.c.scope, limit_usage.c.period, limit_usage.c.amount).where(
    limit_usage.c.customer_id == bindparam("customer_id"),
    limit_usage.c.period.in_((bindparam("day"), bindparam("year"))),
)


def _count_statement(dialect: str) -> Any:
    """Add a payment to a counter, creating it on the period's first payment: one statement,
    run once for all of a payment's counters."""
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    new = insert(limit_usage).values(
        customer_id=bindparam("customer_id"), scope=bindparam("scope"),
        period=bindparam("period"), amount=bindparam("amount"), payments=1,
    )  # fmt: skip
    return new.on_conflict_do_update(
        index_elements=[limit_usage.c.customer_id, limit_usage.c.scope, limit_usage.c.period],
        set_={
            "amount": limit_usage.c.amount + new.excluded.amount,
            "payments": limit_usage.c.payments + 1,
        },
    )


_COUNT = {dialect: _count_statement(dialect) for dialect in ("sqlite", "postgresql")}


def _usage(conn: Connection, customer_id: int, day: date) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        _USAGE, {"customer_id": customer_id, "day": day.isoformat(), "year": str(day.year)}
    )
    return {(scope, period): amount for scope, period, amount in rows}


def assess(conn: Connection, payment: Payment, *, now: datetime) -> Assessment:
    """Which factors would let the payment through now (none needed: an empty tuple), and
    whether it needs the large-transfer warning; or why nothing would let it through."""
    ctx = _context(conn, payment, now, lock=False)
    refusal = _check(ctx, None)
    if refusal is None:
        return Assessment((), _large_warning(ctx) is not None, None)
    passing = []
    for method in METHODS:
        error = _check(ctx, method)
        if error is None:
            passing.append(method)
        elif error.code != "STRONGER_FACTOR_REQUIRED":
            refusal = error  # the strongest factor's reason is the one worth telling
    if not passing:
        return Assessment((), False, refusal)
    return Assessment(tuple(passing), _large_warning(ctx) is not None, None)


def authorise(tx: Tx, payment: Payment) -> None:
    """Allow the payment and count it, or raise the error that says which limit stops it and
    what would allow it. Call it inside the command that posts the payment: if the posting
    fails, the command's undo takes the count back with it."""
    ctx = _context(tx.conn, payment, tx.now, lock=True)
    error = _check(ctx, payment.method) or _large_warning(ctx)
    if error is not None:
        raise error
    counts = [
        {"customer_id": payment.customer_id, "scope": scope, "period": period,
         "amount": payment.amount}
        for scope, period in _scopes(ctx, payment.method)
    ]  # fmt: skip
    if counts:
        tx.conn.execute(_COUNT[tx.conn.dialect.name], counts)
