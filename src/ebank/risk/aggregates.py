"""What a decision knows beyond its context: aggregates over sliding windows and stored facts.

**Aggregates** are counters in time buckets, kept incrementally: `record` (called through
`service.observe`, in the transaction of the action observed) adds to the bucket of the current
minute, hour and Shanghai day of each (entity, metric) the action touches, and adds members
to the distinct sets. A window is summed over buckets: "24h" is the current hour and the 23
before it, "30m" the current minute and the 29 before it, "7d" today and the 6 days before.
The counters live in the database and every writer adds to them inside its own transaction
(upserts), so several processes keep one truth.

**Facts** are single stored values with a time: a device or a location (the /24 or /48 of an
IP address) first seen for a customer, the first time a customer was seen on any device or
network at all, a phone number changed, an account woken after an idle spell of 30 days or
more.

A decision reads every aggregate and fact its rule set needs with ONE statement (`Plan`), a
UNION ALL of index look-ups, never scanning payment history. `purge` drops buckets no window
reaches any more.
"""

import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection

from ebank.core.clock import BUSINESS_TZ
from ebank.core.writer import Tx
from ebank.risk.expr import BOOL, NUM, STR, Aggregate, ListCheck, Vocabulary
from ebank.risk.models import EVENTS, LISTS, MONEY_EVENTS, Context

MINUTE, HOUR, DAY = 60, 3600, 86400
SHANGHAI_OFFSET = 8 * HOUR  # Asia/Shanghai has no daylight saving: days are buckets
KEPT = {MINUTE: 3 * HOUR, HOUR: 4 * DAY, DAY: 100 * DAY}  # what each resolution keeps
LONGEST = {"m": (MINUTE, 120), "h": (HOUR, 72), "d": (DAY, 90)}
UNKNOWN_DAYS = 36_500  # "never" or "not applicable": as good as a hundred years ago
WAKE_MIN_DAYS = 30  # an idle spell this long, then activity, is remembered as a wake
RECENT_WAKE_DAYS = 30  # how long a wake counts for `*_dormant_days`
BAND = math.log(1.02)  # similar amounts: ~2% wide bands, a band and its two neighbours

ENTITIES = ("customer", "account", "payee_account", "device", "ip", "merchant")
SUMMED = {
    "customer": frozenset((*EVENTS, "similar_amount", "new_payee")),
    "account": frozenset(("inflow", "outflow")),
    "payee_account": frozenset(("inflow", "outflow")),
    "device": frozenset(EVENTS),
    "ip": frozenset(EVENTS),
    "merchant": frozenset(("gateway_payment", "related")),
}
DISTINCT = {
    "customer": frozenset(("payees", "devices", "ips")),
    "account": frozenset(("payers", "payees")),
    "payee_account": frozenset(("payers", "payees")),
    "device": frozenset(("customers",)),
    "ip": frozenset(("customers",)),
    "merchant": frozenset(("buyers",)),
}
_WINDOW = re.compile(r"([1-9][0-9]{0,2})([mhd])")


def window(text: str) -> tuple[int, int] | None:
    """(bucket width, buckets) of a window: minutes up to "120m" (and "1h", "2h"), hours up
    to "72h", Shanghai days up to "90d"."""
    match = _WINDOW.fullmatch(text)
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2)
    if unit == "h" and count <= 2:
        unit, count = "m", count * 60
    res, longest = LONGEST[unit]
    return (res, count) if count <= longest else None


# -- what a decision may read -------------------------------------------------------------------
class Probe(NamedTuple):
    """One look-up of the decision's statement; it answers (a, b, at) or nothing.

    kind: "buckets" (a = count, b = sum), "members" (a = distinct count), "listed" (a > 0 when
    listed), "fact" (a = value, at), "customer" and "opened" (at = created / opened)."""

    kind: str
    entity: str = ""  # an entity (ENTITIES) or a fact's key: "customer_device", ...
    metric: str = ""  # a metric, a fact's name or a list's name
    res: int = 0
    count: int = 0


class Facts:
    """The decision's view of one context: the context, the time, what the probes found."""

    __slots__ = ("ctx", "local", "now", "rows", "slot")

    def __init__(
        self, ctx: Context, now: datetime, rows: list[Any], slot: dict[Probe, int]
    ) -> None:
        self.ctx, self.now, self.rows, self.slot = ctx, now, rows, slot
        self.local = now.astimezone(BUSINESS_TZ)

    def row(self, probe: Probe) -> tuple[Any, Any, Any] | None:
        return self.rows[self.slot[probe]]  # type: ignore[no-any-return]

    def days_since(self, probe: Probe, *, missing: int = UNKNOWN_DAYS) -> int:
        row = self.row(probe)
        return missing if row is None else _days(self.now, row[2])


def _instant(value: Any) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands back text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _days(now: datetime, at: Any) -> int:
    return max(0, int((now - _instant(at)).total_seconds() // DAY))


_CUSTOMER_SINCE = Probe("customer", "customer")
_ACCOUNT_OPENED = Probe("opened", "account")
_PAYEE_OPENED = Probe("opened", "payee_account")
_ACCOUNT_WOKE = Probe("fact", "account", "woke")
_PAYEE_WOKE = Probe("fact", "payee_account", "woke")
_DEVICE_SEEN = Probe("fact", "customer_device", "first")
_LOCATION_SEEN = Probe("fact", "customer_location", "first")
_ANY_DEVICE = Probe("fact", "customer", "first_device")
_ANY_NETWORK = Probe("fact", "customer", "first_network")
_PHONE_CHANGED = Probe("fact", "customer", "phone")
_PAID_90D = Probe("buckets", "customer", "payment", DAY, 90)
_PAID_TODAY = Probe("buckets", "customer", "payment", DAY, 1)


def _dormant(facts: Facts, probe: Probe) -> int:
    woke = facts.row(probe)
    if woke is None or _days(facts.now, woke[2]) > RECENT_WAKE_DAYS:
        return 0
    return int(woke[0])


def _seen_days(facts: Facts, probe: Probe, present: bool) -> int:
    """Days since first seen; 0 for a first sighting now; UNKNOWN_DAYS when not given."""
    return facts.days_since(probe, missing=0) if present else UNKNOWN_DAYS


def _usual(facts: Facts) -> tuple[int, int]:
    """(payments, their total) in the 90 Shanghai days before today."""
    before = facts.row(_PAID_90D) or (0, 0, None)
    today = facts.row(_PAID_TODAY) or (0, 0, None)
    return int(before[0]) - int(today[0]), int(before[1]) - int(today[1])


def _usual_amount(facts: Facts) -> int:
    count, total = _usual(facts)
    return total // count if count > 0 else 0


@dataclass(frozen=True, slots=True)
class Field:
    type: str
    probes: tuple[Probe, ...]
    compute: Callable[[Facts], Any]
    meaning: str  # for docs/risk.md and the staff console


def _ctx(type_: str, get: Callable[[Context], Any], meaning: str) -> Field:
    return Field(type_, (), lambda f: get(f.ctx), meaning)


# fmt: off
FIELDS: dict[str, Field] = {
    "event": _ctx(STR, lambda c: c.event, "what is attempted: " + ", ".join(EVENTS)),
    "channel": _ctx(STR, lambda c: c.channel, "online, mobile, phone, sms, counter, atm, ..."),
    "factor": _ctx(STR, lambda c: c.factor, 'what confirms it: "sms", "token", ... or ""'),
    "amount": _ctx(NUM, lambda c: c.amount, "the amount in fen (0 for events without one)"),
    "payee_is_new": _ctx(BOOL, lambda c: c.payee_is_new, "not in the payee book, never paid"),
    "buyer_related": _ctx(BOOL, lambda c: c.buyer_related, "gateway: buyer linked to merchant"),
    "has_device": _ctx(BOOL, lambda c: c.device != "", "the device is known"),
    "has_ip": _ctx(BOOL, lambda c: c.ip != "", "the IP address is known"),
    "has_payee": _ctx(BOOL, lambda c: c.payee != "", "there is a payee account"),
    "payee_at_bank": _ctx(BOOL, lambda c: c.payee_account_id is not None, "payee banks here"),
    "hour": Field(NUM, (), lambda f: f.local.hour, "hour of the day, Shanghai, 0-23"),
    "weekday": Field(NUM, (), lambda f: f.local.isoweekday(), "1 Monday ... 7 Sunday"),
    "customer_age_days": Field(
        NUM, (_CUSTOMER_SINCE,), lambda f: f.days_since(_CUSTOMER_SINCE),
        "days since the customer's record was opened",
    ),
    "account_age_days": Field(
        NUM, (_ACCOUNT_OPENED,), lambda f: f.days_since(_ACCOUNT_OPENED),
        "days since the paying account was opened (36500 when not a customer account)",
    ),
    "payee_account_age_days": Field(
        NUM, (_PAYEE_OPENED,), lambda f: f.days_since(_PAYEE_OPENED),
        "days since the payee's account here was opened (36500 elsewhere)",
    ),
    "account_dormant_days": Field(
        NUM, (_ACCOUNT_WOKE,), lambda f: _dormant(f, _ACCOUNT_WOKE),
        "idle days before the paying account woke up within the last 30 days, else 0",
    ),
    "payee_account_dormant_days": Field(
        NUM, (_PAYEE_WOKE,), lambda f: _dormant(f, _PAYEE_WOKE),
        "the same for the payee's account here",
    ),
    "device_age_days": Field(
        NUM, (_DEVICE_SEEN,), lambda f: _seen_days(f, _DEVICE_SEEN, f.ctx.device != ""),
        "days since the customer first used this device (0: first time; 36500: no device)",
    ),
    "location_age_days": Field(
        NUM, (_LOCATION_SEEN,), lambda f: _seen_days(f, _LOCATION_SEEN, _prefix(f.ctx.ip) != ""),
        "days since the customer first came from this network (/24, /48) (0: first time)",
    ),
    "device_history_days": Field(
        NUM, (_ANY_DEVICE,), lambda f: f.days_since(_ANY_DEVICE, missing=0),
        "days since the customer was first seen on any device (0: never): a new device only "
        "means something for a customer with a history of others",
    ),
    "location_history_days": Field(
        NUM, (_ANY_NETWORK,), lambda f: f.days_since(_ANY_NETWORK, missing=0),
        "days since the customer was first seen from any network (0: never)",
    ),
    "days_since_phone_change": Field(
        NUM, (_PHONE_CHANGED,), lambda f: f.days_since(_PHONE_CHANGED),
        "days since the customer's mobile number changed (36500: never)",
    ),
    "hours_since_phone_change": Field(
        NUM, (_PHONE_CHANGED,), lambda f: _hours_since(f, _PHONE_CHANGED),
        "hours since the customer's mobile number changed (876000: never)",
    ),
    "customer_usual_amount": Field(
        NUM, (_PAID_90D, _PAID_TODAY), _usual_amount,
        "the customer's average payment (fen) over the 90 days before today",
    ),
    "customer_usual_count": Field(
        NUM, (_PAID_90D, _PAID_TODAY), lambda f: _usual(f)[0],
        "how many payments that average is made of",
    ),
}
# fmt: on


def _hours_since(facts: Facts, probe: Probe) -> int:
    row = facts.row(probe)
    if row is None:
        return UNKNOWN_DAYS * 24
    return max(0, int((facts.now - _instant(row[2])).total_seconds() // HOUR))


VOCABULARY = Vocabulary(
    fields={name: f.type for name, f in FIELDS.items()},
    entities={**{e: e for e in ENTITIES}, "payee": "payee_account"},
    summed=SUMMED,
    distinct=DISTINCT,
    lists=frozenset(LISTS),
    window=window,
)


# -- keys ---------------------------------------------------------------------------------------
def _prefix(ip: str) -> str:
    """An address's network as a location: its /24 (IPv4) or /48 (IPv6); "" if not an IP."""
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts):
        return f"{parts[0]}.{parts[1]}.{parts[2]}.0/24"  # the common case, without ipaddress
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def keys(ctx: Context) -> dict[str, str]:
    """The entity keys of a context; "" for what it does not have (matches nothing)."""
    customer = "" if ctx.customer_id is None else f"c:{ctx.customer_id}"
    prefix = _prefix(ctx.ip) if ctx.ip else ""
    return {
        "customer": customer,
        "account": "" if ctx.account_id is None else f"acct:{ctx.account_id}",
        "payee_account": ctx.payee,
        "device": f"d:{ctx.device}" if ctx.device else "",
        "ip": f"ip:{ctx.ip}" if ctx.ip else "",
        "merchant": "" if ctx.merchant_id is None else f"m:{ctx.merchant_id}",
        "customer_device": f"{customer}|d:{ctx.device}" if customer and ctx.device else "",
        "customer_location": f"{customer}|l:{prefix}" if customer and prefix else "",
    }


def band(amount: int) -> int:
    """The ~2%-wide band of an amount, for "similar amounts"."""
    return int(math.log(max(amount, 1)) / BAND)


def cursors(now: datetime) -> dict[int, int]:
    """The current bucket of each resolution (days are Shanghai days)."""
    seconds = int(now.timestamp())
    return {MINUTE: seconds // MINUTE, HOUR: seconds // HOUR,
            DAY: (seconds + SHANGHAI_OFFSET) // DAY}  # fmt: skip


# -- the one statement a decision runs ----------------------------------------------------------
class Plan:
    """The probes a rule set needs, as one UNION ALL statement built once per rule set, and
    where each field, aggregate and list check finds its answer."""

    def __init__(
        self, fields: Iterable[str], aggregates: Iterable[Aggregate], lists: Iterable[ListCheck]
    ) -> None:
        names = sorted(set(fields))
        wanted: dict[Probe, None] = {}
        for name in names:
            wanted.update(dict.fromkeys(FIELDS[name].probes))
        aggs = [(a, _aggregate_probe(a)) for a in aggregates]
        checks = [(c, Probe("listed", c.entity, c.list)) for c in lists]
        wanted.update(dict.fromkeys(p for _, p in aggs + checks))  # type: ignore[operator]
        self.probes = tuple(wanted)
        self.slot = {probe: n for n, probe in enumerate(self.probes)}
        self.fields = tuple((name, FIELDS[name].compute) for name in names)
        self.aggregates = tuple((a.key, self.slot[p], 1 if a.fn == "sum" else 0) for a, p in aggs)
        self.lists = tuple((c.key, self.slot[p]) for c, p in checks)
        # What the rules saw, by the name they were written with (the decision's evidence).
        self.labels = {a.key: a.label for a, _ in aggs} | {c.key: c.label for c, _ in checks}
        self._sql: dict[bool, str] = {}

    def sql(self, sqlite: bool) -> str:
        if sqlite not in self._sql:
            parts = [_probe_sql(n, p, sqlite) for n, p in enumerate(self.probes)]
            text = " UNION ALL ".join(parts)
            self._sql[sqlite] = text if sqlite else text.replace("?", "%s")
        return self._sql[sqlite]

    def gather(self, conn: Connection, ctx: Context, now: datetime) -> dict[str, Any]:
        """The environment the rules run on: fields, aggregates and list checks by name."""
        rows: list[Any] = [None] * len(self.probes)
        if self.probes:
            # On the driver's own cursor: SQLAlchemy's result layer costs more than the query
            # (about 55 of 100 µs on SQLite), and this is every decision's hot path.
            driver = conn.connection.driver_connection
            assert driver is not None
            sql = self.sql(conn.dialect.name == "sqlite")
            for slot, a, b, at in driver.execute(sql, _params(self.probes, ctx, now)):
                rows[slot] = (a, b, at)
        facts = Facts(ctx, now, rows, self.slot)
        env: dict[str, Any] = {name: compute(facts) for name, compute in self.fields}
        for key, slot, column in self.aggregates:
            row = rows[slot]
            env[key] = 0 if row is None else int(row[column])
        for key, slot in self.lists:
            row = rows[slot]
            env[key] = row is not None and row[0] > 0
        return env


def _aggregate_probe(agg: Aggregate) -> Probe:
    return Probe("members" if agg.fn == "distinct" else "buckets", agg.entity, agg.metric,
                 *agg.window)  # fmt: skip


def _probe_sql(slot: int, probe: Probe, sqlite: bool) -> str:
    """One part of the UNION ALL: (slot, a, b, at). Only our own constants are written into
    the text (slots, resolutions); every value from a context is a parameter."""
    null_time = "NULL" if sqlite else "CAST(NULL AS TIMESTAMP WITH TIME ZONE)"
    if probe.kind == "buckets":
        metric = "metric IN (?, ?, ?)" if probe.metric == "similar_amount" else "metric = ?"
        return (
            f"SELECT {slot}, CAST(COALESCE(SUM(n), 0) AS BIGINT), "
            f"CAST(COALESCE(SUM(total), 0) AS BIGINT), {null_time} FROM risk_buckets "
            f"WHERE entity = ? AND {metric} AND res = {probe.res} AND bucket > ?"
        )
    if probe.kind == "members":
        return (
            f"SELECT {slot}, COUNT(DISTINCT member), 0, {null_time} FROM risk_members "
            f"WHERE entity = ? AND metric = ? AND res = {probe.res} AND bucket > ?"
        )
    if probe.kind == "listed":
        return (
            f"SELECT {slot}, COUNT(*), 0, {null_time} FROM risk_list_entries "
            "WHERE list = ? AND key = ? AND removed_at IS NULL"
        )
    if probe.kind == "fact":
        return f"SELECT {slot}, value, 0, at FROM risk_facts WHERE entity = ? AND fact = ?"
    if probe.kind == "customer":
        return f"SELECT {slot}, 0, 0, created_at FROM customers WHERE id = ?"
    return f"SELECT {slot}, 0, 0, opened_at FROM customer_accounts WHERE ledger_account_id = ?"


def _params(probes: tuple[Probe, ...], ctx: Context, now: datetime) -> tuple[Any, ...]:
    key = keys(ctx)
    current = cursors(now)
    similar = band(ctx.amount)
    params: list[Any] = []
    for probe in probes:
        kind = probe.kind
        if kind == "buckets" and probe.metric == "similar_amount":
            params += (key[probe.entity], *(f"~{b}" for b in (similar - 1, similar, similar + 1)),
                       current[probe.res] - probe.count)  # fmt: skip
        elif kind in ("buckets", "members"):
            params += (key[probe.entity], probe.metric, current[probe.res] - probe.count)
        elif kind == "listed":
            params += (probe.metric, key[probe.entity])
        elif kind == "fact":
            params += (key[probe.entity], probe.metric)
        elif kind == "customer":
            params.append(ctx.customer_id or 0)
        else:
            params.append((ctx.account_id if probe.entity == "account" else ctx.payee_account_id)
                          or 0)  # fmt: skip
    return tuple(params)


# -- observing: keeping the counters ------------------------------------------------------------
_UPSERT_BUCKETS = (
    "INSERT INTO risk_buckets (entity, metric, res, bucket, n, total) {values} "
    "ON CONFLICT (entity, metric, res, bucket) DO UPDATE SET "
    "n = risk_buckets.n + excluded.n, total = risk_buckets.total + excluded.total"
)
_INSERT_MEMBERS = (
    "INSERT INTO risk_members (entity, metric, res, bucket, member) {values} "
    "ON CONFLICT (entity, metric, res, bucket, member) DO NOTHING"
)
# A "first..." fact keeps its first time; the others take the latest.
_UPSERT_FACTS = (
    "INSERT INTO risk_facts (entity, fact, value, at) {values} "
    "ON CONFLICT (entity, fact) DO UPDATE SET value = excluded.value, at = excluded.at "
    "WHERE excluded.fact NOT IN ('first', 'first_device', 'first_network')"
)
_PG_VALUES = {
    _UPSERT_BUCKETS: "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::int[], "
    "%s::bigint[], %s::bigint[], %s::bigint[])",
    _INSERT_MEMBERS: "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::int[], "
    "%s::bigint[], %s::varchar[])",
    _UPSERT_FACTS: "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::bigint[], "
    "%s::timestamptz[])",
}
_LAST_POSTING = (
    "SELECT posted_at FROM ledger_postings WHERE account_id = {mark} AND posted_at < {mark} "
    "ORDER BY id DESC LIMIT 1"
)


def _write(tx: Tx, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """Many rows in one round trip; sorted, so that two writers lock rows in one order."""
    if not rows:
        return
    rows.sort()
    if tx.sqlite:
        marks = ", ".join("?" for _ in rows[0])
        tx.conn.exec_driver_sql(statement.format(values=f"VALUES ({marks})"), rows)
    else:
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        tx.conn.exec_driver_sql(statement.format(values=_PG_VALUES[statement]), columns)


def record(tx: Tx, ctx: Context) -> None:
    """Add what happened to the counters and facts (see the module's docstring)."""
    key = keys(ctx)
    amount = ctx.amount
    counters: dict[tuple[str, str], list[int]] = {}
    members: set[tuple[str, str, str]] = set()

    def count(entity: str, metric: str) -> None:
        if entity:
            cell = counters.setdefault((entity, metric), [0, 0])
            cell[0] += 1
            cell[1] += amount

    def member(entity: str, metric: str, value: str) -> None:
        if entity and value:
            members.add((entity, metric, value))

    customer, account, payee = key["customer"], key["account"], key["payee_account"]
    for entity in (customer, key["device"], key["ip"]):
        count(entity, ctx.event)
    member(key["device"], "customers", customer)
    member(key["ip"], "customers", customer)
    member(customer, "devices", key["device"])
    member(customer, "ips", key["ip"])
    if ctx.event in MONEY_EVENTS:
        count(customer, f"~{band(amount)}")
        if ctx.payee_is_new:
            count(customer, "new_payee")
        count(account, "outflow")
        count(payee, "inflow")
        member(customer, "payees", payee)
        member(account, "payees", payee)
        member(payee, "payers", customer or account)
    if ctx.event == "gateway_payment":
        count(key["merchant"], "gateway_payment")
        if ctx.buyer_related:
            count(key["merchant"], "related")
        member(key["merchant"], "buyers", customer or account)

    current = cursors(tx.now)
    _write(tx, _UPSERT_BUCKETS, [
        (entity, metric, res, bucket, n, total)
        for (entity, metric), (n, total) in counters.items() for res, bucket in current.items()
    ])  # fmt: skip
    _write(tx, _INSERT_MEMBERS, [
        (entity, metric, res, bucket, value)
        for entity, metric, value in members for res, bucket in current.items()
    ])  # fmt: skip
    _write(tx, _UPSERT_FACTS, _facts(tx, ctx, key))


def _facts(tx: Tx, ctx: Context, key: dict[str, str]) -> list[tuple[Any, ...]]:
    now = tx.now_param
    rows: list[tuple[Any, ...]] = [
        (key[k], "first", 0, now) for k in ("customer_device", "customer_location") if key[k]
    ]
    if key["customer_device"]:
        rows.append((key["customer"], "first_device", 0, now))
    if key["customer_location"]:
        rows.append((key["customer"], "first_network", 0, now))
    if ctx.event == "phone_change" and key["customer"]:
        rows.append((key["customer"], "phone", 0, now))
    if ctx.event in MONEY_EVENTS and ctx.payee_account_id is not None:
        # Money coming in wakes an idle account (the first step of a dormant mule).
        idle = _idle_days(tx, ctx.payee_account_id)
        if idle >= WAKE_MIN_DAYS:
            rows.append((f"acct:{ctx.payee_account_id}", "woke", idle, now))
    return rows


def _idle_days(tx: Tx, account_id: int) -> int:
    """Days between the account's latest posting before this batch and now (0: none)."""
    mark = "?" if tx.sqlite else "%s"
    last = tx.conn.exec_driver_sql(
        _LAST_POSTING.format(mark=mark), (account_id, tx.now_param)
    ).scalar()
    return 0 if last is None else _days(tx.now, last)


_PURGE = {
    table: f"DELETE FROM {table} WHERE ({key}) IN "
    f"(SELECT {key} FROM {table} WHERE res = {{mark}} AND bucket < {{mark}} LIMIT {{mark}})"
    for table, key in (
        ("risk_buckets", "entity, metric, res, bucket"),
        ("risk_members", "entity, metric, res, bucket, member"),
    )
}


def purge(tx: Tx, *, limit: int = 5000) -> int:
    """Delete up to `limit` buckets and members that no window reaches any more; how many.
    For the hourly job: call it (one command each) until it returns less than `limit`. The
    (res, bucket) index finds the old rows without reading the rest."""
    current = cursors(tx.now)
    mark = "?" if tx.sqlite else "%s"
    done = 0
    for statement in _PURGE.values():
        for res, kept in KEPT.items():
            if done < limit:
                deleted = tx.conn.exec_driver_sql(
                    statement.format(mark=mark), (res, current[res] - kept // res, limit - done)
                )
                done += int(deleted.rowcount or 0)
    return done
