"""Background jobs, run by `ebank worker` (huey, SQLite-backed by default).

Sweeps that keep the ledger's promises on time, and housekeeping that drops what is spent.
Each job is a plain function of a writer, so tests and operators can run it directly, and a
huey periodic task that calls it.
"""

import threading
from datetime import datetime, timedelta

from huey import SqliteHuey, crontab
from sqlalchemy import ColumnElement, Table, delete, exists, func, or_, select, tuple_

from ebank.core import audit
from ebank.core.clock import SystemClock, as_utc, business_date
from ebank.core.crypto import vault_for
from ebank.core.db import make_engine
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx, Writer, purge_idempotency_keys
from ebank.corporate import payroll
from ebank.gateway import orders as gateway_orders
from ebank.gateway import settlement as gateway_settlement
from ebank.gateway import signing
from ebank.ledger import service as ledger
from ebank.limits.tables import limit_usage
from ebank.payments import service as payments
from ebank.risk import aggregates
from ebank.security.tables import (
    login_challenges,
    one_time_codes,
    payment_signatures,
    sessions,
    signing_challenges,
)
from ebank.standing import orders as standing_orders

SWEEP_CHUNK = 500
# How long spent security rows are kept (docs/security.md, Housekeeping).
SPENT_KEPT = timedelta(days=7)  # login challenges, SMS codes, signing challenges
SESSIONS_KEPT = timedelta(days=90)  # after a session ended
USAGE_DAYS_KEPT = 40  # a day's limit counts; a year's are kept for this year and the last

_settings = get_settings()
_settings.jobs_path.parent.mkdir(parents=True, exist_ok=True)
huey = SqliteHuey("ebank", filename=str(_settings.jobs_path))

_lock = threading.Lock()
_writer: Writer | None = None


def process_writer() -> Writer:
    """The worker process's one writer, made on first use."""
    global _writer
    with _lock:
        if _writer is None:
            _writer = Writer(make_engine(_settings.database_url))
        return _writer


def _in_chunks(writer: Writer, chunk: Command[int]) -> int:
    """Run a command that deals with up to SWEEP_CHUNK rows until one deals with fewer; how
    many rows in all."""
    total = 0
    while True:
        done = writer.execute(chunk)
        total += done
        if done < SWEEP_CHUNK:
            return total


def release_expired_holds(writer: Writer) -> int:
    """Give expired holds back to their accounts' available balance; how many were expired."""
    return _in_chunks(writer, ledger.command(lambda tx: ledger.expire_holds(tx, limit=SWEEP_CHUNK)))


def purge_risk_aggregates(writer: Writer) -> int:
    """Drop the risk counters no window reaches any more; how many rows."""
    return _in_chunks(writer, Command(lambda tx: aggregates.purge(tx, limit=SWEEP_CHUNK)))


def purge_gateway_nonces(writer: Writer) -> int:
    """Forget merchants' request nonces no timestamp window reaches any more; how many."""

    def chunk(tx: Tx) -> int:
        return signing.purge_nonces(tx, older_than=tx.now - signing.NONCES_KEPT, limit=SWEEP_CHUNK)

    return _in_chunks(writer, Command(chunk))


def settle_merchants(writer: Writer, now: datetime) -> gateway_settlement.EndOfDay:
    """The gateway's end of day: settle merchants' takings for the business day that ended
    last before `now` (docs/gateway.md, "Fees and settlement")."""
    day = gateway_settlement.day_ended(now)
    return gateway_settlement.end_of_day(writer, business_day=day)


def forget_old_idempotency_keys(writer: Writer, retention: timedelta) -> int:
    """Drop stored idempotent answers past their retention; how many were dropped."""
    return writer.execute(
        Command(lambda tx: purge_idempotency_keys(tx, older_than=tx.now - retention))
    )


def _spent(table: Table, now: datetime) -> ColumnElement[bool]:
    """A one-time row expired or used more than SPENT_KEPT ago."""
    cutoff = now - SPENT_KEPT
    return or_(table.c.expires_at < cutoff, table.c.used_at < cutoff)


def _purge(writer: Writer, table: Table, where: ColumnElement[bool]) -> int:
    """Delete the rows `where` holds, a chunk per command; how many."""
    key = tuple_(*table.primary_key.columns)
    chunk = select(*table.primary_key.columns).where(where).limit(SWEEP_CHUNK)

    def run(tx: Tx) -> int:
        return int(tx.conn.execute(delete(table).where(key.in_(chunk))).rowcount or 0)

    return _in_chunks(writer, Command(run))


def purge_spent_security_rows(writer: Writer, now: datetime) -> dict[str, int]:
    """Drop what no check or record needs any more; how many rows of each table.

    Login challenges, SMS codes and signing challenges expired or used more than 7 days ago,
    but never a signing challenge a kept payment signature points at (non-repudiation:
    the signature is the evidence). Sessions ended more than 90 days ago, whether ended by
    their holder or run out. Limit counts of days more than 40 days past and of years before
    last year. The audit chain keeps its own record of every login and check, and this run.
    """
    now = as_utc(now)  # SQLite compares stored UTC times as text
    idle = timedelta(seconds=get_settings().session_idle_seconds)
    session_cutoff = now - SESSIONS_KEPT
    today = business_date(now)
    oldest_day = (today - timedelta(days=USAGE_DAYS_KEPT)).isoformat()
    signed = exists().where(payment_signatures.c.challenge_id == signing_challenges.c.id)
    period = limit_usage.c.period
    plans: list[tuple[Table, ColumnElement[bool]]] = [
        (login_challenges, _spent(login_challenges, now)),
        (one_time_codes, _spent(one_time_codes, now)),
        (signing_challenges, _spent(signing_challenges, now) & ~signed),
        (
            # A session not ended by its holder ran out at most `idle` after its last use.
            sessions,
            or_(
                sessions.c.ended_at < session_cutoff,
                sessions.c.ended_at.is_(None) & (sessions.c.last_seen_at < session_cutoff - idle),
            ),
        ),
        (
            limit_usage,
            or_(
                (func.length(period) == 10) & (period < oldest_day),
                (func.length(period) == 4) & (period < str(today.year - 1)),
            ),
        ),
    ]
    purged = {table.name: _purge(writer, table, where) for table, where in plans}
    if any(purged.values()):

        def record(tx: Tx) -> None:
            audit.record(tx, actor="system", action="security.purge", detail=purged)

        writer.execute(Command(record))
    return purged


@huey.periodic_task(crontab(minute="*"))
def release_expired_holds_every_minute() -> int:
    return release_expired_holds(process_writer())


@huey.periodic_task(crontab(minute="*"))
def send_due_transfers_every_minute() -> int:
    """Deferred transfers (normal, next-day, delayed) whose time has come."""
    return payments.execute_due(process_writer(), vault_for(_settings))


@huey.periodic_task(crontab(minute="*"))
def run_standing_orders_every_minute() -> int:
    """Scheduled and recurring transfers whose occurrence is due."""
    return standing_orders.run_due_orders(process_writer(), vault_for(_settings))


@huey.periodic_task(crontab(minute="*"))
def pay_payroll_every_minute() -> int:
    """The rows of approved payroll batches, each paid once."""
    return payroll.execute_due(process_writer(), vault_for(_settings))


@huey.periodic_task(crontab(minute="*"))
def move_gateway_orders_on_every_minute() -> int:
    """Unpaid orders expire, escrow releases itself, authorisations end with their hold."""
    return _in_chunks(process_writer(), gateway_orders.sweep(limit=SWEEP_CHUNK))


@huey.periodic_task(crontab(minute="5"))
def settle_merchants_hourly() -> int:
    """Hourly rather than once after midnight: a run the worker missed, or a settlement carried
    over for want of money in a merchant's account, is done within the hour once it can be.
    A movement is settled once however often this runs."""
    return len(settle_merchants(process_writer(), SystemClock().now()).settled)


@huey.periodic_task(crontab(minute="7"))
def forget_old_idempotency_keys_hourly() -> int:
    retention = timedelta(hours=_settings.idempotency_retention_hours)
    return forget_old_idempotency_keys(process_writer(), retention)


@huey.periodic_task(crontab(minute="37"))
def purge_risk_aggregates_hourly() -> int:
    return purge_risk_aggregates(process_writer())


@huey.periodic_task(crontab(minute="47"))
def purge_gateway_nonces_hourly() -> int:
    return purge_gateway_nonces(process_writer())


@huey.periodic_task(crontab(minute="23"))
def purge_spent_security_rows_hourly() -> dict[str, int]:
    return purge_spent_security_rows(process_writer(), SystemClock().now())
