"""A load-generating child process: its own Writer on a shared database, random transfers.

    python tests/ledger/load_worker.py --url URL --accounts 3,4,5 --transfers N --seed S

Several threads submit idempotent transfers between the given accounts (the key of transfer
number i is "<seed>-<i>" in scope "load"); some are refused for want of money. For every
transfer acknowledged (committed), one line is printed and flushed at once:

    <entry reference> <idempotency key> <debit id> <credit id> <amount>

At the end a summary `DONE ok=<n> INSUFFICIENT_FUNDS=<m> ...` goes to stderr. The exit status is
0 when the only refusals were INSUFFICIENT_FUNDS, 1 for other refusals, 2 for a crash.

The helpers below are what the tests that drive this worker share.
"""

import argparse
import os
import random
import subprocess
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select

from ebank.core.db import make_engine
from ebank.core.errors import EbankError
from ebank.core.writer import Writer
from ebank.ledger import queries as Q
from ebank.ledger import service as L
from ebank.ledger.models import AccountView
from ebank.ledger.tables import entries

SCOPE = "load"
HERE = Path(__file__).resolve()


@dataclass(frozen=True)
class Acked:
    """One acknowledged transfer, as the worker printed it."""

    reference: str
    key: str
    debit: int
    credit: int
    amount: int

    @classmethod
    def parse(cls, line: str) -> "Acked":
        ref, key, debit, credit, amount = line.split()
        return cls(ref, key, int(debit), int(credit), int(amount))


@dataclass(frozen=True)
class LoadBook:
    fund: int  # internal, no floor: the money's source (goes negative by what it gave out)
    customers: tuple[int, ...]
    funded: int  # how much the fund gave the customers


def open_load_accounts(
    writer: Writer, balances: Sequence[int], credit_lines: Sequence[int] = (), prefix: str = "L"
) -> LoadBook:
    """An internal fund and one customer account per opening balance, funded from it."""

    def open_all(tx: object) -> list[AccountView]:
        fund = L.open_account(
            tx,
            code=f"{prefix}-FUND",
            name="fund",
            currency="CNY",
            kind="internal",
            overdraft_allowed=True,
        )
        opened = [fund]
        for i, _ in enumerate(balances):
            line = credit_lines[i] if i < len(credit_lines) else 0
            opened.append(
                L.open_account(
                    tx,
                    code=f"{prefix}-{i:03d}",
                    name=f"customer {i}",
                    currency="CNY",
                    credit_line=line,
                )
            )
        for acc, opening in zip(opened[1:], balances, strict=True):
            if opening:
                L.transfer(tx, debit=fund.id, credit=acc.id, amount=opening)
        return opened

    fund, *customers = writer.execute(L.command(open_all))
    return LoadBook(fund.id, tuple(c.id for c in customers), sum(balances))


def balance_sum(conn: Connection, ids: Sequence[int]) -> int:
    return sum(Q.get_account(conn, account_id=i).balance for i in ids)


def entry_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(entries)).scalar_one()


def assert_sound(engine: Engine, book: LoadBook, extra: Sequence[int] = ()) -> None:
    """Invariants hold, money is conserved, and no bounded balance is below its floor."""
    with engine.connect() as conn:
        assert Q.check_invariants(conn) == []
        views = [Q.get_account(conn, account_id=i) for i in (*book.customers, *extra)]
        assert sum(v.balance for v in views) == book.funded
        assert Q.get_account(conn, account_id=book.fund).balance == -book.funded
        for view in views:
            assert view.balance - view.held >= -view.credit_line, view
            assert view.available >= 0, view


def spawn(
    url: str,
    accounts: Sequence[int],
    *,
    transfers: int,
    seed: int,
    threads: int = 4,
    max_amount: int = 300_00,
) -> subprocess.Popen[str]:
    """Start a worker; read its acknowledgements from its stdout."""
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE),
            "--url",
            url,
            "--accounts",
            ",".join(map(str, accounts)),
            "--transfers",
            str(transfers),
            "--seed",
            str(seed),
            "--threads",
            str(threads),
            "--max-amount",
            str(max_amount),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def post_random_transfers(
    writer: Writer, ids: Sequence[int], *, count: int, seed: int, scope: str, max_amount: int
) -> int:
    """Post `count` random transfers among `ids`, one at a time; how many went through.

    The only refusal accepted is a payer without the money.
    """
    rng = random.Random(seed)
    posted = 0
    for i in range(count):
        payer, payee = rng.sample(list(ids), 2)
        command = L.transfer_command(
            debit=payer, credit=payee, amount=rng.randint(1, max_amount), scope=scope,
            key=f"{scope}-{i}",
        )  # fmt: skip
        try:
            writer.execute(command)
            posted += 1
        except EbankError as exc:
            assert exc.code == "INSUFFICIENT_FUNDS", exc
    return posted


# -- the worker ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--accounts", required=True, help="comma-separated account ids")
    parser.add_argument("--transfers", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-amount", type=int, default=300_00)
    args = parser.parse_args(argv)
    ids = [int(x) for x in args.accounts.split(",")]

    engine = make_engine(args.url)
    writer = Writer(engine)
    lock = threading.Lock()
    counts: Counter[str] = Counter()

    def work(thread_no: int) -> None:
        rng = random.Random(f"{args.seed}-{thread_no}")
        try:
            for i in range(thread_no, args.transfers, args.threads):
                debit, credit = rng.sample(ids, 2)
                amount = rng.randint(1, args.max_amount)
                key = f"{args.seed}-{i}"
                command = L.transfer_command(
                    debit=debit, credit=credit, amount=amount, scope=SCOPE, key=key
                )
                try:
                    result = writer.execute(command)
                except EbankError as exc:
                    with lock:
                        counts[exc.code] += 1
                    continue
                with lock:
                    counts["ok"] += 1
                    sys.stdout.write(f"{result.reference} {key} {debit} {credit} {amount}\n")
                    sys.stdout.flush()
        except BaseException:
            with lock:
                counts["crash"] += 1
                traceback.print_exc()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(args.threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    writer.close()
    engine.dispose()
    print("DONE " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())), file=sys.stderr)
    if counts["crash"]:
        return 2
    return 0 if set(counts) <= {"ok", "INSUFFICIENT_FUNDS"} else 1


if __name__ == "__main__":
    sys.exit(main())
