"""`ebank bench ledger`: durable transfers through the writer from many concurrent submitters.

Each submitter is an asyncio task with one transfer in flight at a time, as an API request
would have; every transfer carries its own idempotency key. The database is fresh and
temporary (PostgreSQL: a throwaway cluster, unless `--url` names one). At the end the ledger's
invariants are checked and money is shown to be conserved.
"""

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, func, select

from ebank.core.db import make_engine
from ebank.core.errors import EbankError
from ebank.core.pgcluster import PgCluster
from ebank.core.writer import Writer
from ebank.ledger import queries
from ebank.ledger import service as ledger
from ebank.ledger.tables import entries

FUNDING = 10**10  # fen per account: ¥100 million, so random transfers never run dry
SETUP_CHUNK = 1000


def database_arguments(parser: argparse.ArgumentParser) -> None:
    """--db and --url, which every scenario takes: what `on_database` reads."""
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--url", help="an existing, empty PostgreSQL database to use")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    database_arguments(parser)
    parser.add_argument("--transfers", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--submitters", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)


@contextmanager
def temporary_database(db: str, url: str | None) -> Iterator[str]:
    """A fresh, migrated database of the kind asked for, removed afterwards."""
    from ebank.migrations import upgrade

    if url:
        upgrade(url)
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="ebank-bench-") as tmp:
        if db == "sqlite":
            target = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(target)
            yield target
            return
        with PgCluster() as cluster:
            target = cluster.create_database("bench")
            upgrade(target)
            yield target


def on_database(
    args: argparse.Namespace, bench: Callable[[Engine, argparse.Namespace], str]
) -> str:
    """Run a scenario on the fresh database its arguments ask for; its RESULT line."""
    with temporary_database(args.db, args.url) as url:
        engine = make_engine(url, pool_size=4) if args.db == "postgres" else make_engine(url)
        try:
            return bench(engine, args)
        finally:
            engine.dispose()


def run(args: argparse.Namespace) -> str:
    if args.transfers < 1 or args.accounts < 2 or args.submitters < 1:
        raise SystemExit("need at least 1 transfer, 2 accounts and 1 submitter")
    return on_database(args, _bench)


def _bench(engine: Engine, args: argparse.Namespace) -> str:
    writer = Writer(engine)
    try:
        ids = setup_accounts(writer, args.accounts)
        print(
            f"posting {args.transfers} transfers from {args.submitters} submitters ...",
            flush=True,
        )
        batches_before, commands_before = writer.batches, writer.commands
        elapsed, latencies, failed = asyncio.run(_load(writer, ids, args))
        batches = writer.batches - batches_before
        commands = writer.commands - commands_before
    finally:
        writer.close()

    print("verifying the ledger ...", flush=True)
    with engine.connect() as conn:
        problems = queries.check_invariants(conn, check_running=False)
        posted = conn.execute(select(func.count()).select_from(entries)).scalar_one()
    expected = args.transfers - failed + args.accounts  # plus one funding entry per account
    if problems or posted != expected:
        raise SystemExit(f"ledger check failed: {problems[:5]} entries={posted} != {expected}")

    latencies.sort()
    rate = args.transfers / elapsed
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"{args.transfers} transfers in {elapsed:.2f}s, {failed} refused, "
        f"{batches} batches (avg {commands / max(batches, 1):.0f} commands), invariants hold"
    )
    return (
        f"RESULT ledger db={args.db} transfers={args.transfers} transfers_per_s={rate:.0f} "
        f"p50_ms={p50:.2f} p99_ms={p99:.2f}"
    )


def setup_accounts(writer: Writer, n_accounts: int) -> list[int]:
    """`n_accounts` customer accounts of FUNDING each, and their ids."""
    print(f"setting up {n_accounts} funded accounts ...", flush=True)
    funding = writer.execute(
        ledger.command(
            lambda tx: (
                ledger.open_account(
                    tx,
                    code="GL-BENCH-FUNDING",
                    name="bench funding",
                    currency="CNY",
                    kind="internal",
                    normal_side="D",
                    overdraft_allowed=True,
                ).id
            )
        )
    )

    def open_and_fund(first: int, count: int):  # type: ignore[no-untyped-def]
        def fn(tx):  # type: ignore[no-untyped-def]
            ids = []
            for n in range(first, first + count):
                acc = ledger.open_account(
                    tx, code=f"BENCH{n:08d}", name=f"bench {n}", currency="CNY"
                )
                ledger.transfer(tx, debit=funding, credit=acc.id, amount=FUNDING, kind="deposit")
                ids.append(acc.id)
            return ids

        return ledger.command(fn, accounts=(funding,))

    futures = [
        writer.submit(open_and_fund(first, min(SETUP_CHUNK, n_accounts - first)))
        for first in range(0, n_accounts, SETUP_CHUNK)
    ]
    return [i for f in futures for i in f.result()]


async def _load(
    writer: Writer, ids: list[int], args: argparse.Namespace
) -> tuple[float, list[float], int]:
    rng = random.Random(args.seed)  # noqa: S311 (a workload, not a secret)
    per_task, extra = divmod(args.transfers, args.submitters)
    latencies: list[float] = []
    failed = 0
    done = 0

    async def submitter(task: int, count: int) -> None:
        nonlocal failed, done
        for i in range(count):
            debit, credit = rng.sample(ids, 2)
            command = ledger.transfer_command(
                debit=debit, credit=credit, amount=rng.randint(1, 10_000),
                scope="bench", key=f"{task}-{i}",
            )  # fmt: skip
            started = time.perf_counter()
            try:
                await writer.run(command)
            except EbankError:
                failed += 1
            latencies.append(time.perf_counter() - started)
            done += 1

    async def progress() -> None:
        while True:
            await asyncio.sleep(1)
            print(f"  {done} / {args.transfers}", flush=True)

    reporter = asyncio.create_task(progress())
    started = time.perf_counter()
    await asyncio.gather(
        *(submitter(t, per_task + (1 if t < extra else 0)) for t in range(args.submitters))
    )
    elapsed = time.perf_counter() - started
    reporter.cancel()
    return elapsed, latencies, failed
