"""Background jobs: what the worker does on schedule, run here directly."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from ebank.core.tables import idempotency_keys
from ebank.core.writer import Command
from ebank.jobs import forget_old_idempotency_keys, release_expired_holds
from ebank.ledger import queries
from ebank.ledger import service as ledger


def open_funded(writer, code: str, amount: int) -> int:
    def fn(tx):
        cash = ledger.open_account(
            tx, code="GL-CASH", name="cash", currency="CNY", kind="internal",
            normal_side="D", overdraft_allowed=True, exist_ok=True,
        )  # fmt: skip
        acc = ledger.open_account(tx, code=code, name=code, currency="CNY")
        ledger.transfer(tx, debit=cash.id, credit=acc.id, amount=amount)
        return acc.id

    return writer.execute(Command(fn, sql=False))


def hold(writer, account: int, amount: int, minutes: int):
    return writer.execute(
        ledger.command(
            lambda tx: ledger.place_hold(
                tx,
                account_id=account,
                amount=amount,
                expires_at=tx.now + timedelta(minutes=minutes),
            )
        )
    )


def test_the_sweep_releases_expired_holds_only_and_restores_the_available_balance(
    writer, engine, clock
):
    account = open_funded(writer, "A", 100_00)
    short = hold(writer, account, 30_00, minutes=5)
    long = hold(writer, account, 20_00, minutes=60)
    clock.advance(timedelta(minutes=10))
    assert release_expired_holds(writer) == 1
    with engine.connect() as conn:
        assert queries.get_hold(conn, short.id).status == "expired"
        assert queries.get_hold(conn, long.id).status == "pending"
        assert queries.get_account(conn, account_id=account).available == 80_00
        assert queries.check_invariants(conn) == []
    assert release_expired_holds(writer) == 0  # a second sweep finds nothing more


def test_the_sweep_works_through_more_holds_than_one_chunk(writer, engine, clock, monkeypatch):
    monkeypatch.setattr("ebank.jobs.SWEEP_CHUNK", 3)
    account = open_funded(writer, "A", 100_00)
    for _ in range(7):
        hold(writer, account, 1_00, minutes=1)
    clock.advance(timedelta(minutes=2))
    assert release_expired_holds(writer) == 7
    with engine.connect() as conn:
        assert queries.get_account(conn, account_id=account).held == 0


def test_old_idempotency_keys_are_forgotten_and_recent_ones_kept(writer, engine, clock):
    a = open_funded(writer, "A", 100_00)
    b = open_funded(writer, "B", 1)
    first = writer.execute(
        ledger.transfer_command(debit=a, credit=b, amount=1_00, scope="c:1", key="old")
    )
    clock.advance(timedelta(hours=30))
    writer.execute(ledger.transfer_command(debit=a, credit=b, amount=1_00, scope="c:1", key="new"))
    assert forget_old_idempotency_keys(writer, timedelta(hours=24)) == 1
    with engine.connect() as conn:
        keys = conn.execute(select(idempotency_keys.c.key)).scalars().all()
    assert keys == ["new"]
    # Past retention a repeat is a new request: it posts again.
    again = writer.execute(
        ledger.transfer_command(debit=a, credit=b, amount=1_00, scope="c:1", key="old")
    )
    assert again.id != first.id
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one()
    assert count == 2


def test_the_worker_command_starts_and_stops_cleanly(tmp_path: Path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "EBANK_DATABASE_URL": f"sqlite:///{tmp_path / 'ebank.db'}",
        "EBANK_JOBS_PATH": str(tmp_path / "jobs.db"),
    }
    assert subprocess.run(
        [sys.executable, "-m", "ebank.cli", "db", "upgrade"], env=env, capture_output=True,
        timeout=60,
    ).returncode == 0  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "ebank.cli", "worker", "--workers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(2)
        assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
        worker.send_signal(signal.SIGINT)
        out, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, out
    assert (tmp_path / "jobs.db").exists()
