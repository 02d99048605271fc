"""`ebank bench storage`: the floor the database sets under `ebank bench ledger`.

The rows a batch of ledger transfers writes (one entry, two postings with their running
balances, one idempotency key with its stored answer) are built in advance, outside the timed
part, and then written with the ledger's own bulk statements, one durable commit per `--batch`
transfers, with no ledger logic, no writer and no look-ups at all. Whatever `ebank bench
ledger` adds on top is Python; what this reports is the most the database can take on this
machine with this schema, and the ledger benchmark cannot go faster.
"""

import argparse
import random
import time
from typing import Any

from sqlalchemy import Engine, func, select

from ebank.bench.ledger import FUNDING, database_arguments, on_database, setup_accounts
from ebank.core.clock import SystemClock, business_date
from ebank.core.db import is_sqlite, sqlite_time
from ebank.core.writer import KEY_ROWS, Writer, fingerprint
from ebank.ledger import queries
from ebank.ledger.models import reference
from ebank.ledger.service import ENTRY_ROWS, POSTING_ROWS
from ebank.ledger.tables import entries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    database_arguments(parser)
    parser.add_argument("--transfers", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=256, help="transfers per commit")
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> str:
    if args.transfers < 1 or args.accounts < 2 or args.batch < 1:
        raise SystemExit("need at least 1 transfer, 2 accounts and a batch of 1")
    return on_database(args, _bench)


def _bench(engine: Engine, args: argparse.Namespace) -> str:
    writer = Writer(engine)
    try:
        ids = setup_accounts(writer, args.accounts)
    finally:
        writer.close()
    with engine.connect() as conn:
        first_entry = conn.execute(select(func.max(entries.c.id))).scalar_one() + 1
        batches = _rows(args, ids, first_entry, sqlite=is_sqlite(conn))
        print(f"writing {args.transfers} transfers' rows, {args.batch} per commit ...", flush=True)
        conn.commit()
        started = time.perf_counter()
        for entry_rows, posting_rows, key_rows in batches:
            with conn.begin():
                ENTRY_ROWS.run(conn, entry_rows)
                POSTING_ROWS.run(conn, posting_rows)
                KEY_ROWS.run(conn, key_rows)
        elapsed = time.perf_counter() - started

    print("verifying the ledger ...", flush=True)
    with engine.connect() as conn:
        problems = queries.check_invariants(conn, check_running=False)
        posted = conn.execute(select(func.count()).select_from(entries)).scalar_one()
    if problems or posted != args.transfers + args.accounts:
        raise SystemExit(f"ledger check failed: {problems[:5]} entries={posted}")
    print(
        f"{args.transfers} transfers in {elapsed:.2f}s, {len(batches)} commits "
        f"({elapsed / len(batches) * 1000:.2f} ms each), invariants hold"
    )
    return (
        f"RESULT storage db={args.db} transfers={args.transfers} batch={args.batch} "
        f"transfers_per_s={args.transfers / elapsed:.0f}"
    )


Rows = list[tuple[Any, ...]]


def _rows(
    args: argparse.Namespace, ids: list[int], first_entry: int, *, sqlite: bool
) -> list[tuple[Rows, Rows, Rows]]:
    """Every batch's rows, as the ledger and the writer would have written them."""
    rng = random.Random(args.seed)  # noqa: S311 (a workload, not a secret)
    now = SystemClock().now()
    at = sqlite_time(now) if sqlite else now
    day = business_date(now)
    balances = dict.fromkeys(ids, FUNDING)
    batches = []
    entry_id = first_entry
    for start in range(0, args.transfers, args.batch):
        entry_rows: Rows = []
        posting_rows: Rows = []
        key_rows: Rows = []
        for n in range(start, min(args.transfers, start + args.batch)):
            debit, credit = rng.sample(ids, 2)
            amount = rng.randint(1, 10_000)
            balances[debit] -= amount
            balances[credit] += amount
            entry_rows.append((entry_id, "transfer", "", None, None, at))
            posting_rows.append((entry_id, debit, "D", amount, balances[debit], at))
            posting_rows.append((entry_id, credit, "C", amount, balances[credit], at))
            answer = f'{{"id":{entry_id},"reference":"{reference("E", entry_id, day)}"}}'
            params = fingerprint(op="transfer", debit=debit, credit=credit, amount=amount, memo="")
            key_rows.append(("bench", f"{n % 256}-{n // 256}", params, answer, at))
            entry_id += 1
        batches.append((entry_rows, posting_rows, key_rows))
    return batches
