"""Statistics of the gateway's payments by channel, payment mode, account type and period
(DOMAIN.md §5), for one merchant (its portal) or the whole bank (management).

Merchants whose volume risk control found fabricated (the rule `merchant_fabricated_volume`
hit a payment to them in the period) are marked, and their money is left out of the bank-wide
figures: fabricated orders are not acquiring volume.
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select

from ebank.core.clock import business_day_bounds
from ebank.core.errors import EbankError
from ebank.gateway.settlement import checked_period
from ebank.gateway.tables import merchants, movements, orders
from ebank.risk.tables import risk_decisions

DIMENSIONS = ("merchant", "channel", "mode", "funding", "day", "month")
PAYMENTS = ("pay", "escrow_in", "capture")  # the buyer's money taken: a payment each
FABRICATED = "merchant_fabricated_volume"
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class Volume:
    count: int  # payments: instant and escrow payments, and each capture
    amount: int  # fen paid
    refunds: int  # fen refunded
    fees: int  # fen of fees taken

    def __add__(self, other: "Volume") -> "Volume":
        return Volume(self.count + other.count, self.amount + other.amount,
                      self.refunds + other.refunds, self.fees + other.fees)  # fmt: skip


NOTHING = Volume(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Group:
    key: tuple[str, ...]  # the values of the report's dimensions, in the order asked
    volume: Volume
    flagged: bool  # the group's merchant was flagged for fabricated volume


@dataclass(frozen=True, slots=True)
class Statistics:
    by: tuple[str, ...]
    groups: tuple[Group, ...]
    totals: Volume  # bank-wide: without flagged merchants; one merchant's: all of its own
    flagged: tuple[str, ...]  # merchant numbers flagged in the period


def _dimensions(by: object) -> tuple[str, ...]:
    if (
        not isinstance(by, list | tuple) or not all(d in DIMENSIONS for d in by)
        or len(set(by)) != len(by) or {"day", "month"} <= set(by)
    ):  # fmt: skip
        raise EbankError(
            "INVALID_INPUT", reason=f"group by distinct ones of {DIMENSIONS}, one period at most"
        )
    return tuple(by)


def flagged_merchants(conn: Connection, since: date, until: date) -> set[int]:
    """The merchants risk control found fabricating volume in the business days `since` to
    `until`: the rule hit (enforced, not in shadow) a payment to them."""
    start, end = business_day_bounds(since)[0], business_day_bounds(until)[1]
    d = risk_decisions.c
    contexts = conn.execute(
        select(d.context).where(
            d.event == "gateway_payment", d.at >= start, d.at < end,
            d.hits.like(f'%"{FABRICATED}"%'),
        )
    ).scalars()  # fmt: skip
    return {json.loads(c)["merchant_id"] for c in contexts} - {None}


def statistics(
    conn: Connection, *, merchant_id: int | None = None, since: date, until: date,
    by: Sequence[str],
) -> Statistics:  # fmt: skip
    """Payments, refunds and fees of the business days `since` to `until` (both included),
    grouped by `by` (any of DIMENSIONS, at most one period), of one merchant or all."""
    checked_period(since, until, MAX_DAYS)
    dims = _dimensions(by)
    m, o = movements.c, orders.c
    query = (
        select(
            m.merchant_id, merchants.c.merchant_no, m.business_date, o.channel, o.mode,
            o.funding, m.kind, func.count().label("n"), func.sum(m.amount).label("amount"),
            func.sum(m.fee).label("fees"),
        )
        .join(orders, o.id == m.order_id)
        .join(merchants, merchants.c.id == m.merchant_id)
        .where(m.business_date >= since, m.business_date <= until)
        .group_by(m.merchant_id, merchants.c.merchant_no, m.business_date, o.channel, o.mode,
                  o.funding, m.kind)
    )  # fmt: skip
    if merchant_id is not None:
        query = query.where(m.merchant_id == merchant_id)
    flagged = flagged_merchants(conn, since, until)
    if merchant_id is not None:
        flagged &= {merchant_id}
    groups: dict[tuple[str, ...], Volume] = defaultdict(lambda: NOTHING)
    owner: dict[tuple[str, ...], int] = {}
    totals = NOTHING
    for r in conn.execute(query).all():
        left_out = merchant_id is None and r.merchant_id in flagged
        if left_out and "merchant" not in dims:
            continue
        key = tuple(_value(r, dim) for dim in dims)
        volume = _volume(r)
        groups[key] += volume
        owner[key] = r.merchant_id
        if not left_out:
            totals += volume
    marked = "merchant" in dims or merchant_id is not None
    return Statistics(
        dims,
        tuple(Group(key, groups[key], marked and owner[key] in flagged) for key in sorted(groups)),
        totals,
        tuple(sorted(conn.execute(
            select(merchants.c.merchant_no).where(merchants.c.id.in_(flagged))
        ).scalars())),
    )  # fmt: skip


def _value(row: Any, dim: str) -> str:
    if dim == "merchant":
        return str(row.merchant_no)
    if dim == "day":
        return row.business_date.isoformat()
    if dim == "month":
        return f"{row.business_date:%Y-%m}"
    return str(getattr(row, dim) or "")


def _volume(row: Any) -> Volume:
    if row.kind in PAYMENTS:
        return Volume(int(row.n), int(row.amount), 0, int(row.fees))
    if row.kind == "refund":
        return Volume(0, 0, int(row.amount), int(row.fees))
    return Volume(0, 0, 0, int(row.fees))  # an escrow release: the fee on the money released
