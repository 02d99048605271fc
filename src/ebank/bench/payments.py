"""`ebank bench payments`: transfers to other customers of this bank through the payments
service, each confirmed by the payer's token code: the factor check, the limits service (with
its per-customer counters under the customer's row lock), the ledger, the payment record and
its event, the outbox and the audit chain, in one writer command per transfer.

Customers are enrolled online at the counter and hold a token. A token code confirms one
payment per 30-second step per customer (replay protection), so the benchmark runs in rounds
on a virtual clock: in each round every customer pays once, then the clock moves on a step.
Submitters are asyncio tasks, each with one transfer in flight, as API requests would have.
"""

import argparse
import asyncio
import random
import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
from sqlalchemy import Engine, func, select

from ebank.accounts import service as accounts
from ebank.bench.ledger import database_arguments, on_database
from ebank.core.clock import FixedClock
from ebank.core.crypto import Vault
from ebank.core.tables import outbox_events
from ebank.core.writer import Command, Tx, Writer
from ebank.customers.identity import check_digit_for
from ebank.customers.service import register_individual
from ebank.enrolment.service import enrol_at_counter
from ebank.ledger import queries
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.payments import service as payments
from ebank.payments.models import Confirmation, TransferRequest
from ebank.payments.tables import payments as payment_rows
from ebank.security.service import enroll_token

FUNDING = 10**8  # fen per customer: ¥1 million
STEP = timedelta(seconds=30)
ACTOR = "bench"
# 09:00 in Shanghai: far from midnight, so the rounds stay in one business day.
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    database_arguments(parser)
    parser.add_argument("--transfers", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--submitters", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> str:
    if args.transfers < 1 or args.customers < 2 or args.submitters < 1:
        raise SystemExit("need at least 1 transfer, 2 customers and 1 submitter")
    return on_database(args, _bench)


class _Customer:
    __slots__ = ("account", "id", "name", "totp")

    def __init__(self, customer_id: int, name: str, account: str, totp: pyotp.TOTP) -> None:
        self.id, self.name, self.account, self.totp = customer_id, name, account, totp


def _id_number(n: int) -> str:
    """A valid, distinct resident ID for customer `n`: 999 a birthday, then the next day."""
    born = date(1960, 1, 1) + timedelta(days=n // 999)
    first17 = f"110105{born:%Y%m%d}{n % 999 + 1:03d}"
    return first17 + check_digit_for(first17)


def _setup(writer: Writer, vault: Vault, count: int) -> list[_Customer]:
    """Customers with a funded account, an online enrolment and a token, many per command."""
    cash = writer.execute(Command(ensure_chart, sql=False))["GL-CASH-CNY"]

    def make(first: int, n: int) -> Command[list[_Customer]]:
        def fn(tx: Tx) -> list[_Customer]:
            made = []
            for i in range(first, first + n):
                name = f"客户{i}"
                view = register_individual(
                    vault, name=name, id_number=_id_number(i), mobile=f"139{i:08d}", actor=ACTOR
                ).fn(tx)
                opened = accounts.open_account(customer_id=view.id, tier="I", actor=ACTOR).fn(tx)
                ledger.transfer(tx, debit=cash, credit=opened.ledger_account_id, amount=FUNDING)
                enrol_at_counter(customer_id=view.id, channel="online", actor=ACTOR).fn(tx)
                uri = enroll_token(vault, customer_id=view.id, label=name, actor=ACTOR).fn(tx)
                secret = parse_qs(urlparse(uri).query)["secret"][0]
                made.append(_Customer(view.id, name, opened.number, pyotp.TOTP(secret)))
            return made

        return Command(fn)

    futures = [writer.submit(make(f, min(500, count - f))) for f in range(0, count, 500)]
    return [c for f in futures for c in f.result()]


def _bench(engine: Engine, args: argparse.Namespace) -> str:
    clock = FixedClock(START)
    vault = Vault(random.Random(args.seed).randbytes(32))  # noqa: S311 (a throwaway bench key)
    writer = Writer(engine, clock=clock)
    try:
        print(f"setting up {args.customers} customers on {args.db} ...", flush=True)
        people = _setup(writer, vault, args.customers)
        print(
            f"making {args.transfers} token-confirmed transfers from {args.submitters} "
            "submitters ...",
            flush=True,
        )
        elapsed, latencies, refused = asyncio.run(_load(writer, vault, clock, people, args))
    finally:
        writer.close()

    print("verifying ...", flush=True)
    with engine.connect() as conn:
        problems = queries.check_invariants(conn, check_running=False)
        made = conn.execute(select(func.count()).select_from(payment_rows)).scalar_one()
        announced = conn.execute(
            select(func.count()).where(outbox_events.c.topic == "payment.status")
        ).scalar_one()
    expected = args.transfers - refused
    if problems or made != expected or announced != expected:
        raise SystemExit(f"check failed: {problems[:5]} payments={made} != {expected}")
    latencies.sort()
    rate = args.transfers / elapsed
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"{args.transfers} transfers in {elapsed:.2f}s, {refused} refused, invariants hold")
    return (
        f"RESULT payments db={args.db} transfers={args.transfers} transfers_per_s={rate:.0f} "
        f"p50_ms={p50:.2f} p99_ms={p99:.2f}"
    )


async def _load(
    writer: Writer, vault: Vault, clock: FixedClock, people: list[_Customer],
    args: argparse.Namespace,
) -> tuple[float, list[float], int]:  # fmt: skip
    rng = random.Random(args.seed)  # noqa: S311 (a workload, not a secret)
    latencies: list[float] = []
    refused = 0
    done = 0

    async def pay(payer: _Customer, n: int) -> None:
        nonlocal refused, done
        payee = people[rng.randrange(len(people))]
        while payee is payer:
            payee = people[rng.randrange(len(people))]
        request = TransferRequest(
            customer_id=payer.id, channel="online", from_account=payer.account,
            payee_account=payee.account, payee_name=payee.name, amount=rng.randint(1, 10_000),
        )  # fmt: skip
        code = payer.totp.at(clock.now())
        command = payments.transfer(
            vault, request, Confirmation("token", code), idempotency_key=f"bench-{n}"
        )
        started = time.perf_counter()
        if not (await writer.run(command)).verdict.ok:
            refused += 1
        latencies.append(time.perf_counter() - started)
        done += 1

    async def round_of(payers: list[_Customer], first: int) -> None:
        queue = iter(enumerate(payers, first))

        async def submitter() -> None:
            for n, payer in queue:
                await pay(payer, n)

        await asyncio.gather(*(submitter() for _ in range(min(args.submitters, len(payers)))))

    async def progress() -> None:
        while True:
            await asyncio.sleep(1)
            print(f"  {done} / {args.transfers}", flush=True)

    reporter = asyncio.create_task(progress())
    started = time.perf_counter()
    for first in range(0, args.transfers, len(people)):
        count = min(len(people), args.transfers - first)
        await round_of(people[:count], first)
        clock.advance(STEP)  # a fresh token step for everyone
    elapsed = time.perf_counter() - started
    reporter.cancel()
    return elapsed, latencies, refused
