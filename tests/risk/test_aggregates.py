"""Aggregates kept incrementally in time buckets: sliding windows, distinct counts, facts,
two writers on one database, and the purge. SQLite and PostgreSQL."""

from datetime import timedelta

from sqlalchemy import func, select

from ebank.core.writer import Command
from ebank.risk import aggregates, service
from ebank.risk.expr import Aggregate
from ebank.risk.models import Context
from ebank.risk.tables import risk_buckets, risk_facts, risk_members
from tests.risk.conftest import EXT_PAYEE, OTHER_DEVICE, YUAN, World
from tests.support import race_two_writers

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def value(world: World, ctx: Context, fn: str, entity: str, metric: str, span: str) -> int:
    """What a rule would read as fn(entity, "metric", "span") for this context, now."""
    window = aggregates.window(span)
    assert window is not None
    agg = Aggregate(fn, entity, metric, window, span)
    plan = aggregates.Plan((), [agg], ())
    with world.engine.connect() as conn:
        return int(plan.gather(conn, ctx, world.clock.now())[agg.key])


def field(world: World, ctx: Context, name: str) -> object:
    plan = aggregates.Plan([name], (), ())
    with world.engine.connect() as conn:
        return plan.gather(conn, ctx, world.clock.now())[name]


def rows(world: World, table: object) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_windows_slide_with_time_bucket_by_bucket(world):
    ctx = world.ctx(1, amount=10 * YUAN)
    for _ in range(3):
        world.observe(ctx)
    world.observe(ctx, ago=30 * MINUTE)
    assert value(world, ctx, "count", "customer", "payment", "10m") == 3
    assert value(world, ctx, "count", "customer", "payment", "1h") == 4
    assert value(world, ctx, "sum", "customer", "payment", "1h") == 40 * YUAN
    world.clock.advance(9 * MINUTE)
    assert value(world, ctx, "count", "customer", "payment", "10m") == 3  # 9 minutes on
    world.clock.advance(MINUTE)
    assert value(world, ctx, "count", "customer", "payment", "10m") == 0  # 10 minutes on
    assert value(world, ctx, "count", "customer", "payment", "1h") == 4


def test_hour_and_day_windows(world):
    ctx = world.ctx(1, amount=10 * YUAN)
    world.observe(ctx, ago=23 * HOUR)
    world.observe(ctx, ago=25 * HOUR)
    world.observe(ctx, ago=6 * DAY)
    world.observe(ctx, ago=8 * DAY)
    assert value(world, ctx, "count", "customer", "payment", "24h") == 1
    assert value(world, ctx, "count", "customer", "payment", "48h") == 2
    assert value(world, ctx, "count", "customer", "payment", "7d") == 3
    assert value(world, ctx, "count", "customer", "payment", "90d") == 4
    # "1d" is today in Shanghai: the test clock is 10:00 there, so 23 hours ago was yesterday.
    assert value(world, ctx, "count", "customer", "payment", "1d") == 0


def test_money_flows_are_counted_for_payer_account_payee_and_device(world):
    first = world.ctx(1, amount=100 * YUAN, account_id=501, payee="acct:777", payee_is_new=True)
    world.observe(first)
    world.observe(world.ctx(2, amount=50 * YUAN, account_id=502, payee="acct:777"))
    world.observe(world.ctx(2, amount=70 * YUAN, account_id=502, payee="acct:777"))
    payee = world.ctx(3, account_id=777, payee=EXT_PAYEE)  # the payee, paying on
    assert value(world, payee, "sum", "account", "inflow", "24h") == 220 * YUAN
    assert value(world, payee, "count", "account", "inflow", "24h") == 3
    assert value(world, payee, "distinct", "account", "payers", "24h") == 2
    assert value(world, first, "sum", "account", "outflow", "24h") == 100 * YUAN
    assert value(world, first, "distinct", "payee_account", "payers", "24h") == 2
    assert value(world, first, "count", "customer", "new_payee", "24h") == 1
    assert value(world, first, "distinct", "device", "customers", "24h") == 2
    assert value(world, first, "count", "device", "payment", "24h") == 3


def test_similar_amounts_fall_in_neighbouring_bands(world):
    ctx = world.ctx(1)
    for amount in (10_000, 10_150, 9_850, 10_600, 20_000):
        world.observe(world.ctx(1, amount=amount * YUAN // 100))
    near = world.ctx(1, amount=10_000 * YUAN // 100)
    assert value(world, near, "count", "customer", "similar_amount", "24h") == 3
    assert value(world, ctx, "count", "customer", "payment", "24h") == 5


def test_a_device_keeps_its_first_sighting(world):
    login = world.ctx(1, event="login", amount=0, payee="", device=OTHER_DEVICE)
    world.observe(login, ago=10 * DAY)
    world.observe(login, ago=DAY)
    world.observe(login)
    assert field(world, login, "device_age_days") == 10
    assert field(world, login, "device_history_days") == 10
    assert field(world, world.ctx(1, device=""), "device_age_days") == aggregates.UNKNOWN_DAYS
    assert field(world, world.ctx(2, device=OTHER_DEVICE), "device_age_days") == 0


def test_a_phone_change_keeps_its_latest_time(world):
    change = world.ctx(1, event="phone_change", amount=0, payee="", channel="counter")
    ctx = world.ctx(1)
    assert field(world, ctx, "hours_since_phone_change") == aggregates.UNKNOWN_DAYS * 24
    world.observe(change, ago=50 * HOUR)
    world.observe(change, ago=5 * HOUR)
    assert field(world, ctx, "hours_since_phone_change") == 5
    assert field(world, ctx, "days_since_phone_change") == 0


def test_evaluating_changes_no_aggregate(world):
    customer, _ = world.aged()
    world.decide(world.ctx(customer))
    assert rows(world, risk_buckets) == rows(world, risk_members) == rows(world, risk_facts) == 0


def test_two_writers_on_one_database_both_count(world, engine, clock):
    def pay(payer: int) -> Command[None]:
        ctx = world.ctx(payer, amount=YUAN, account_id=payer, payee="acct:999", device="")
        return Command(lambda tx: service.observe(tx, ctx))

    mine = [pay(100 + n) for n in range(25)]
    theirs = [pay(200 + n) for n in range(25)]
    outcomes = race_two_writers(world.writer, engine, clock, mine, theirs)
    assert all(a is None and b is None for a, b in outcomes)
    payee = world.ctx(1, account_id=999)
    assert value(world, payee, "count", "account", "inflow", "24h") == 50
    assert value(world, payee, "sum", "account", "inflow", "24h") == 50 * YUAN
    assert value(world, payee, "distinct", "account", "payers", "24h") == 50


def test_the_purge_drops_only_what_no_window_reaches(world):
    ctx = world.ctx(1, amount=YUAN)
    world.observe(ctx, ago=5 * DAY)  # its minute and hour buckets are past keeping
    world.observe(ctx)
    before = rows(world, risk_buckets) + rows(world, risk_members)
    purged = world.writer.execute(Command(lambda tx: aggregates.purge(tx)))
    assert purged > 0
    assert rows(world, risk_buckets) + rows(world, risk_members) == before - purged
    assert world.writer.execute(Command(lambda tx: aggregates.purge(tx))) == 0
    assert value(world, ctx, "count", "customer", "payment", "7d") == 2
    assert value(world, ctx, "count", "customer", "payment", "10m") == 1
    assert value(world, ctx, "distinct", "customer", "payees", "7d") == 1


def test_the_purge_works_in_chunks(world):
    ctx = world.ctx(1, amount=YUAN)
    for n in range(4):
        world.observe(ctx, ago=5 * DAY + n * HOUR)
    first = world.writer.execute(Command(lambda tx: aggregates.purge(tx, limit=3)))
    assert first == 3
    rest = world.writer.execute(Command(lambda tx: aggregates.purge(tx, limit=1000)))
    assert rest > 0
    assert world.writer.execute(Command(lambda tx: aggregates.purge(tx))) == 0
