"""kill -9 in the middle of a load: every acknowledged transfer survives, nothing half-written.

The worker (load_worker.py) acknowledges a transfer only after its batch has committed; the
process is then killed without warning, mid-batch. A fresh engine (for SQLite: recovery from
the WAL) must find every acknowledged entry, a sound ledger and the same total of money, and
a new writer must carry on.
"""

import os
import queue
import signal
import threading
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy.engine import make_url

from ebank.core.db import make_engine
from ebank.core.writer import Writer
from ebank.ledger import queries as Q
from ebank.ledger import service as L
from tests.ledger.load_worker import (
    SCOPE,
    Acked,
    LoadBook,
    assert_sound,
    entry_count,
    open_load_accounts,
    post_random_transfers,
    spawn,
)

ACKS_BEFORE_KILL = 200


def lines_of(stream: IO[str]) -> "queue.Queue[str | None]":
    """The stream's lines as they come, None at its end (read on a thread: no blocking)."""
    found: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            found.put(line)
        found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return found


def kill_mid_load(db_url: str, book: LoadBook, seed: int) -> list[Acked]:
    """Run a worker until it has acknowledged enough, SIGKILL it; what it acknowledged."""
    proc = spawn(db_url, book.customers, transfers=1_000_000, seed=seed, threads=8)
    acked: list[Acked] = []
    lines = lines_of(proc.stdout)
    try:
        while len(acked) < ACKS_BEFORE_KILL:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                pytest.fail("the worker stopped acknowledging transfers")
            if line is None:
                pytest.fail(f"the worker ended early: {proc.stderr.read()}")
            acked.append(Acked.parse(line))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    # Whatever it printed before dying was acknowledged too; a torn last line was not.
    while (line := lines.get(timeout=30)) is not None:
        if line.endswith("\n"):
            acked.append(Acked.parse(line))
    proc.stdout.close()
    proc.stderr.close()
    return acked


@pytest.mark.slow
def test_acknowledged_transfers_survive_kill_9_and_the_ledger_carries_on(db_url, clock):
    setup_engine = make_engine(db_url)
    setup = Writer(setup_engine, clock=clock)
    book = open_load_accounts(setup, [1_000_00] * 4 + [50_00] * 6, prefix="K")
    setup.close()
    with setup_engine.connect() as conn:
        before = entry_count(conn)
    setup_engine.dispose()

    acked: list[Acked] = []
    for seed in (7, 8):  # killed twice: the second worker starts on the first's wreckage
        acked += kill_mid_load(db_url, book, seed)
        if db_url.startswith("sqlite"):
            wal = Path(make_url(db_url).database + "-wal")
            assert wal.exists() and wal.stat().st_size > 0, "nothing left for recovery to do"

        engine = make_engine(db_url)  # a fresh start: SQLite replays its WAL here
        try:
            with engine.connect() as conn:
                for ack in acked:
                    entry = Q.get_entry(conn, reference=ack.reference)
                    assert [(p.account_id, p.side, p.amount) for p in entry.postings] == [
                        (ack.debit, "D", ack.amount),
                        (ack.credit, "C", ack.amount),
                    ]
                committed = entry_count(conn) - before
            # Batches committed after the last line we read may exist; nothing else may.
            assert committed >= len(acked)
            assert_sound(engine, book)
        finally:
            engine.dispose()

    engine = make_engine(db_url)
    writer = Writer(engine, clock=clock)
    try:
        # A repeat of an acknowledged request is answered from its first result.
        for ack in acked[:: len(acked) // 20]:
            again = writer.execute(
                L.transfer_command(
                    debit=ack.debit, credit=ack.credit, amount=ack.amount, scope=SCOPE, key=ack.key
                )
            )
            assert again.reference == ack.reference
        with engine.connect() as conn:
            assert entry_count(conn) - before == committed
        # And new work goes through.
        posted = post_random_transfers(
            writer, book.customers, count=50, seed=1, scope="after-crash", max_amount=50_00
        )
        assert posted > 25
        writer.close()
        with engine.connect() as conn:
            assert entry_count(conn) - before == committed + posted
        assert_sound(engine, book)
    finally:
        writer.close()
        engine.dispose()
