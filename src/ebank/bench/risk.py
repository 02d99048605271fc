"""`ebank bench risk`: one simulated day of e-banking events scored by the default rules, with
fraud of every typology injected, through the writer (evaluate, then observe what happened).

Customers are set up with 60 days of history (their phone, their network, their usual
payees and amounts). The day's stream is mostly normal behaviour, including the legitimate
oddities that make false positives (a new phone, a big purchase, a late-night payment), plus
fraud scenarios: account takeover from a new device, SIM swap, mule accounts, funnels, scams
with a large amount to a new payee, night-time and unusual amounts, structuring with similar
amounts, velocity, police-listed and compromised parties, merchants brushing (刷单).

Each event is one writer command: `evaluate`, and `observe` unless the decision was review or
block (held and blocked attempts feed no aggregate). Latency is evaluate's own, measured
inside the command. A fraud event counts as caught when its outcome is anything but allow; a
normal event that is not allowed is a false positive.
"""

import argparse
import hashlib
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from ebank.accounts import service as accounts
from ebank.bench.ledger import database_arguments, on_database
from ebank.bench.payments import _id_number
from ebank.core.clock import BUSINESS_TZ, FixedClock
from ebank.core.crypto import Vault
from ebank.core.writer import Command, Tx, Writer
from ebank.customers.service import register_individual
from ebank.risk import lists, service
from ebank.risk.models import Context, Decision, payee_key

ACTOR = "bench"
DAY_START = datetime(2026, 11, 23, tzinfo=BUSINESS_TZ).astimezone(UTC)  # 00:00 Shanghai
MINUTES = 24 * 60
HISTORY_DAYS = 60
YUAN = 100
OTHER_BANK = "999200000025"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    database_arguments(parser)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=50_000, help="normal events in the day")
    parser.add_argument("--frauds", type=int, default=20, help="scenarios of each typology")
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> str:
    if args.customers < 100 or args.events < 1 or args.frauds < 1:
        raise SystemExit("need at least 100 customers, 1 event and 1 fraud of each typology")
    return on_database(args, _bench)


@dataclass(slots=True)
class _Person:
    id: int
    ledger: int
    device: str
    ip: str
    payees: list[tuple[str, int | None]]  # (payee key, ledger id here or None)
    usual: int  # fen


@dataclass(frozen=True, slots=True)
class _Event:
    minute: int
    ctx: Context
    typology: str  # "" for normal behaviour


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _World:
    """The simulated bank: customers, their habits, and a random source."""

    def __init__(self, writer: Writer, clock: FixedClock, vault: Vault, args: argparse.Namespace):
        self.writer, self.clock, self.vault = writer, clock, vault
        self.rng = random.Random(args.seed)  # noqa: S311 (a workload, not a secret)
        self.people: list[_Person] = []
        self.police: list[str] = []  # payee keys on the police list
        self.compromised: list[_Person] = []  # customers on the compromised list
        self.ext = self.opened = 0

    def external(self) -> str:
        self.ext += 1
        return payee_key(self.vault, bank=OTHER_BANK, account_number=f"62220200{self.ext:08d}")

    def open_customers(self, count: int, *, days_ago: int) -> list[tuple[int, int]]:
        """(customer id, ledger account id) of new customers, registered `days_ago`."""
        self.clock.set(DAY_START - timedelta(days=days_ago))
        start, self.opened = self.opened, self.opened + count

        def make(first: int, n: int) -> Command[list[tuple[int, int]]]:
            def fn(tx: Tx) -> list[tuple[int, int]]:
                made = []
                for i in range(first, first + n):
                    view = register_individual(
                        self.vault, name=f"客户{i}", id_number=_id_number(i),
                        mobile=f"139{i % 10**8:08d}", actor=ACTOR,
                    ).fn(tx)  # fmt: skip
                    opened = accounts.open_account(customer_id=view.id, tier="I", actor=ACTOR)
                    made.append((view.id, opened.fn(tx).ledger_account_id))
                return made

            return Command(fn)

        futures = [
            self.writer.submit(make(start + f, min(500, count - f))) for f in range(0, count, 500)
        ]
        return [pair for future in futures for pair in future.result()]

    def setup(self, count: int) -> None:
        for n, (customer, ledger_id) in enumerate(self.open_customers(count, days_ago=400)):
            usual = int(30_000 * math.exp(self.rng.gauss(0, 0.8)))
            person = _Person(customer, ledger_id, _hash(f"phone-{n}"),
                             f"10.{n // 250 % 250}.{n % 250}.{self.rng.randrange(2, 250)}",
                             [], max(usual, 1_000))  # fmt: skip
            self.people.append(person)
        for person in self.people:
            for _ in range(3):
                if self.rng.random() < 0.5:
                    other = self.rng.choice(self.people)
                    person.payees.append((f"acct:{other.ledger}", other.ledger))
                else:
                    person.payees.append((self.external(), None))

    def payment(self, person: _Person, **fields: object) -> Context:
        payee, ledger_id = self.rng.choice(person.payees)
        base = Context(
            "payment", person.id, "mobile", device=person.device, ip=person.ip,
            amount=max(100, int(person.usual * math.exp(self.rng.gauss(0, 0.5)))),
            account_id=person.ledger, payee=payee, payee_account_id=ledger_id,
            factor=self.rng.choice(("token", "sms")),
        )  # fmt: skip
        return replace(base, **fields)  # type: ignore[arg-type]

    def take_aside(self) -> _Person:
        """A customer who does nothing normal today: their phone number or credentials were
        taken, so everything they do today is meant to look risky."""
        return self.people.pop(self.rng.randrange(len(self.people)))

    def to_stranger(self, person: _Person, low: int, high: int, **fields: object) -> Context:
        """A payment of low..high yuan to a payee the person never paid, at another bank."""
        stranger = {"payee": self.external(), "payee_account_id": None, "payee_is_new": True,
                    "amount": self.rng.randrange(low, high) * YUAN}  # fmt: skip
        return self.payment(person, **(stranger | fields))


# -- the day's stream ----------------------------------------------------------------------------
def _busy_minute(rng: random.Random) -> int:
    """When people bank: mostly 08:00-23:00, a little at night."""
    if rng.random() < 0.04:
        return rng.randrange(0, 7 * 60)
    return rng.randrange(8 * 60, 23 * 60)


def _normal(world: _World, count: int) -> list[_Event]:
    rng, events = world.rng, []
    for _ in range(count):
        person = rng.choice(world.people)
        minute, roll = _busy_minute(rng), rng.random()
        if roll < 0.30:
            device = _hash(f"newphone-{person.id}") if rng.random() < 0.02 else person.device
            ctx = Context("login", person.id, "mobile", device=device, ip=person.ip,
                          factor="password")  # fmt: skip
        elif roll < 0.85:
            ctx = world.payment(person)
            if rng.random() < 0.12:  # someone new: a plumber, a friend
                ctx = replace(ctx, payee=world.external(), payee_account_id=None,
                              payee_is_new=True, amount=max(100, ctx.amount // 2))  # fmt: skip
            elif rng.random() < 0.01:  # a car, a deposit on a flat
                ctx = world.to_stranger(person, 20_000, 90_000, factor="token")
        elif roll < 0.92:
            ctx = Context("payee_add", person.id, "mobile", device=person.device, ip=person.ip,
                          payee=world.external(), factor="sms")  # fmt: skip
        elif roll < 0.98:
            ctx = Context("gateway_payment", person.id, "gateway", ip=person.ip,
                          amount=rng.randrange(20, 800) * YUAN, account_id=person.ledger,
                          merchant_id=rng.randrange(1, 300), factor="pin")  # fmt: skip
        else:
            ctx = Context("limit_change", person.id, "mobile", device=person.device,
                          ip=person.ip, factor="token")  # fmt: skip
        events.append(_Event(minute, ctx, ""))
    return events


Scenario = Callable[[_World, int], list[_Event]]


def _victim(world: _World) -> _Person:
    return world.rng.choice(world.people)


def _takeover(world: _World, start: int) -> list[_Event]:
    victim, n = world.take_aside(), world.rng.randrange(10**6)
    device, ip = _hash(f"attacker-{n}"), f"203.0.{n % 250}.{n % 200 + 1}"
    login = Context("login", victim.id, "mobile", device=device, ip=ip, factor="password")
    payee = world.external()
    add = Context("payee_add", victim.id, "mobile", device=device, ip=ip, payee=payee,
                  factor="sms")  # fmt: skip
    pay = world.to_stranger(victim, 8_000, 45_000, device=device, ip=ip, payee=payee)
    return [_Event(start, login, ""), _Event(start + 2, add, ""),
            _Event(start + 5, pay, "account takeover")]  # fmt: skip


def _sim_swap(world: _World, start: int) -> list[_Event]:
    victim = world.take_aside()
    change = Context("phone_change", victim.id, "phone")
    pay = world.to_stranger(victim, 5_000, 20_000, factor="sms")
    return [_Event(start, change, ""), _Event(start + 90, pay, "SIM swap")]


def _mule(world: _World, start: int) -> list[_Event]:
    ((customer, ledger_id),) = world.open_customers(1, days_ago=5)
    key = f"acct:{ledger_id}"
    events, total = [], 0
    for k in range(4):
        amount = world.rng.randrange(2_000, 5_000) * YUAN
        total += amount
        payer = _victim(world)
        ctx = world.payment(payer, payee=key, payee_account_id=ledger_id, payee_is_new=True,
                            amount=amount)  # fmt: skip
        events.append(_Event(start + 10 * k, ctx, "mule (money in)"))
    out = Context("payment", customer, "mobile", device=_hash(f"mule-{ledger_id}"),
                  ip="198.51.100.7", amount=total * 9 // 10, account_id=ledger_id,
                  payee=world.external(), payee_is_new=True, factor="sms")  # fmt: skip
    return [*events, _Event(start + 45, out, "mule (money out)")]


def _funnel(world: _World, start: int) -> list[_Event]:
    payee = world.external()
    return [
        _Event(start + 20 * k, world.payment(
            _victim(world), payee=payee, payee_account_id=None, payee_is_new=True,
            amount=world.rng.randrange(1_000, 5_000) * YUAN), "funnel")
        for k in range(12)
    ]  # fmt: skip


def _scam(world: _World, start: int) -> list[_Event]:
    pay = world.to_stranger(_victim(world), 50_000, 300_000)
    return [_Event(start, pay, "new payee, large amount")]


def _unusual(world: _World, start: int) -> list[_Event]:
    victim = _victim(world)
    amount = max(5_000 * YUAN, victim.usual * world.rng.randrange(12, 40))
    return [_Event(start, world.payment(victim, amount=amount), "far above usual")]


def _night(world: _World, start: int) -> list[_Event]:
    pay = world.to_stranger(_victim(world), 20_000, 45_000)
    return [_Event(world.rng.randrange(60, 300), pay, "night, large")]


def _structuring(world: _World, start: int) -> list[_Event]:
    victim = _victim(world)
    return [
        _Event(start + 7 * k, world.to_stranger(victim, 4_950, 5_050), "similar amounts")
        for k in range(5)
    ]  # fmt: skip


def _velocity(world: _World, start: int) -> list[_Event]:
    victim = _victim(world)
    return [
        _Event(start + k, world.payment(victim, amount=world.rng.randrange(300, 2_000) * YUAN),
               "velocity")
        for k in range(8)
    ]  # fmt: skip


def _police(world: _World, start: int) -> list[_Event]:
    payee = world.rng.choice(world.police)
    pay = world.payment(_victim(world), payee=payee, payee_account_id=None, payee_is_new=True)
    return [_Event(start, pay, "police-listed payee")]


def _compromised(world: _World, start: int) -> list[_Event]:
    victim = world.rng.choice(world.compromised)
    return [_Event(start, world.payment(victim), "compromised credentials")]


def _brushing(world: _World, start: int) -> list[_Event]:
    merchant = 1_000 + world.rng.randrange(10**6)
    buyers = [_victim(world) for _ in range(3)]
    return [
        _Event(start + 2 * k, Context(
            "gateway_payment", buyers[k % 3].id, "gateway", ip=buyers[k % 3].ip,
            amount=world.rng.randrange(20, 80) * YUAN, account_id=buyers[k % 3].ledger,
            merchant_id=merchant, buyer_related=k % 3 == 0, factor="pin"), "merchant brushing")
        for k in range(40)
    ]  # fmt: skip


SCENARIOS: tuple[Scenario, ...] = (
    _takeover, _sim_swap, _mule, _funnel, _scam, _unusual, _night, _structuring, _velocity,
    _police, _compromised, _brushing,
)  # fmt: skip


# -- running it ----------------------------------------------------------------------------------
def _history(world: _World) -> None:
    """60 days of habits: each customer's phone and network, payments to their payees."""
    by_day: dict[int, list[Context]] = {}
    for person in world.people:
        login = Context("login", person.id, "mobile", device=person.device, ip=person.ip)
        by_day.setdefault(HISTORY_DAYS, []).append(login)
        for _ in range(world.rng.randrange(6, 16)):
            day = world.rng.randrange(1, HISTORY_DAYS)
            by_day.setdefault(day, []).append(world.payment(person))

    def observe_all(contexts: list[Context]) -> Command[None]:
        def fn(tx: Tx) -> None:
            for ctx in contexts:
                service.observe(tx, ctx)

        return Command(fn)

    for day in sorted(by_day, reverse=True):
        world.clock.set(DAY_START - timedelta(days=day) + timedelta(hours=4))  # noon Shanghai
        world.writer.execute(observe_all(by_day[day]))


def _watch_lists(world: _World, frauds: int) -> None:
    world.police = [world.external() for _ in range(frauds)]
    world.compromised = [world.take_aside() for _ in range(frauds)]

    def fn(tx: Tx) -> None:
        keys = [("police", k) for k in world.police]
        keys += [("compromised", f"c:{p.id}") for p in world.compromised]
        for list_, key in keys:
            lists.add(tx, list_=list_, key=key, label=key[:20], reason="bench", maker=ACTOR,
                      checker="bench:checker")  # fmt: skip

    world.writer.execute(Command(fn))


def _bench(engine: Engine, args: argparse.Namespace) -> str:
    clock = FixedClock(DAY_START)
    vault = Vault(random.Random(args.seed).randbytes(32))  # noqa: S311 (a throwaway bench key)
    writer = Writer(engine, clock=clock)
    try:
        world = _World(writer, clock, vault, args)
        print(f"setting up {args.customers} customers with {HISTORY_DAYS} days of history "
              f"on {args.db} ...", flush=True)  # fmt: skip
        world.setup(args.customers)
        _history(world)
        _watch_lists(world, args.frauds)
        events = [
            event
            for scenario in SCENARIOS
            for _ in range(args.frauds)
            for event in scenario(world, world.rng.randrange(7 * 60, 20 * 60))
        ]
        events += _normal(world, args.events)  # by those the fraud did not take aside
        events.sort(key=lambda e: e.minute)
        assert events[-1].minute < MINUTES, "every scenario ends within the day"
        print(f"scoring {len(events)} events of one day ...", flush=True)
        elapsed, latencies, outcomes = _day(writer, clock, events)
    finally:
        writer.close()
    return _report(events, outcomes, latencies, elapsed)


def _day(
    writer: Writer, clock: FixedClock, events: list[_Event]
) -> tuple[float, list[float], list[Decision]]:
    latencies: list[float] = []

    def decide(ctx: Context) -> Command[Decision]:
        def fn(tx: Tx) -> Decision:
            started = time.perf_counter()
            decision = service.evaluate(tx, ctx)
            latencies.append(time.perf_counter() - started)
            if decision.outcome not in ("review", "block"):
                service.observe(tx, ctx)
            return decision

        return Command(fn)

    outcomes: list[Decision] = []
    started, at, shown = time.perf_counter(), 0, 0
    for minute in range(MINUTES):
        clock.set(DAY_START + timedelta(minutes=minute, seconds=30))
        end = at
        while end < len(events) and events[end].minute == minute:
            end += 1
        futures = [writer.submit(decide(event.ctx)) for event in events[at:end]]
        outcomes += [future.result() for future in futures]
        at = end
        if at * 10 // len(events) > shown:
            shown = at * 10 // len(events)
            print(f"  {at} / {len(events)}", flush=True)
    return time.perf_counter() - started, latencies, outcomes


def _report(
    events: list[_Event], decisions: list[Decision], latencies: list[float], elapsed: float
) -> str:
    pairs = list(zip(events, decisions, strict=True))
    frauds = [(e.typology, d.outcome) for e, d in pairs if e.typology]
    normal = [d.outcome for e, d in pairs if not e.typology]
    blamed = Counter(
        r.code for e, d in pairs if not e.typology and d.outcome != "allow" for r in d.reasons
    )
    caught = [o for _, o in frauds if o != "allow"]
    print(f"{len(frauds)} fraud events, {len(caught)} caught:")
    by_typology: dict[str, Counter[str]] = {}
    for typology, outcome in frauds:
        by_typology.setdefault(typology, Counter())[outcome] += 1
    for typology, counts in by_typology.items():
        total = sum(counts.values())
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"  {typology:<26} {total - counts['allow']:>4} / {total:<4} ({shown})")
    print("caught, by outcome: " + ", ".join(
        f"{o} {n}" for o, n in sorted(Counter(caught).items())))  # fmt: skip
    flagged = Counter(o for o in normal if o != "allow")
    print(f"{len(normal)} normal events, {sum(flagged.values())} not allowed: "
          + ", ".join(f"{o} {n}" for o, n in sorted(flagged.items())))  # fmt: skip
    print("  rules behind them: " + ", ".join(f"{c} {n}" for c, n in blamed.most_common()))
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"{len(events)} decisions in {elapsed:.2f}s; evaluate p50 {p50:.3f} ms, "
          f"p99 {p99:.3f} ms, max {latencies[-1] * 1000:.3f} ms")  # fmt: skip
    return (
        f"RESULT risk decisions_per_s={len(events) / elapsed:.0f} p99_ms={p99:.3f} "
        f"caught={len(caught) / len(frauds):.3f} "
        f"false_positive_rate={sum(flagged.values()) / len(normal):.4f}"
    )
