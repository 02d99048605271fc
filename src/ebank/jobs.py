"""Background jobs, run by `ebank worker` (huey, SQLite-backed by default).

Sweeps that keep the ledger's promises on time. Each job is a plain function of a writer,
so tests and operators can run it directly, and a huey periodic task that calls it.
"""

import threading
from datetime import timedelta

from huey import SqliteHuey, crontab

from ebank.core.db import make_engine
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Writer, purge_idempotency_keys
from ebank.ledger import service as ledger

SWEEP_CHUNK = 500

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


def release_expired_holds(writer: Writer) -> int:
    """Give expired holds back to their accounts' available balance; how many were expired."""
    total = 0
    while True:
        done = writer.execute(ledger.command(lambda tx: ledger.expire_holds(tx, limit=SWEEP_CHUNK)))
        total += done
        if done < SWEEP_CHUNK:
            return total


def forget_old_idempotency_keys(writer: Writer, retention: timedelta) -> int:
    """Drop stored idempotent answers past their retention; how many were dropped."""
    return writer.execute(
        Command(lambda tx: purge_idempotency_keys(tx, older_than=tx.now - retention))
    )


@huey.periodic_task(crontab(minute="*"))
def release_expired_holds_every_minute() -> int:
    return release_expired_holds(process_writer())


@huey.periodic_task(crontab(minute="7"))
def forget_old_idempotency_keys_hourly() -> int:
    retention = timedelta(hours=_settings.idempotency_retention_hours)
    return forget_old_idempotency_keys(process_writer(), retention)
