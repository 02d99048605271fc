"""What a buyer allows the gateway (DOMAIN.md §5, as BOC offers it): online payment on or off,
a daily limit of their own below the bank's, and which of their cards may pay online. With no
setting recorded, online payment is on for every card, within the bank's limits only.

The customer changes these with their session alone, as they may lower a limit: each only
narrows what the bank's limits (`ebank.limits`) allow, and those still apply on top. Every
change is audited with what it replaced.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from ebank.cards import service as cards
from ebank.core import audit
from ebank.core.channels import E_CHANNELS
from ebank.core.clock import as_utc, business_date
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR, format_minor
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.gateway.tables import card_online_settings, online_payment_settings, orders

CHANNELS = (*E_CHANNELS, "counter")  # where a customer may change their controls


@dataclass(frozen=True, slots=True)
class CardControl:
    """One of the customer's cards, and whether it may pay online."""

    card_id: int
    kind: str  # debit | credit
    masked: str
    status: str  # the card's own: a card reported lost or closed pays nothing anyway
    online: bool


@dataclass(frozen=True, slots=True)
class Controls:
    """What the customer allows the gateway."""

    customer_id: int
    enabled: bool
    daily_limit: int | None  # fen; None: the bank's limits only
    cards: tuple[CardControl, ...]
    updated_at: datetime | None  # None: never changed


# Built once: every payment reads both.
_SETTINGS = select(online_payment_settings).where(
    online_payment_settings.c.customer_id == bindparam("customer_id")
)
_CARD_ENABLED = select(card_online_settings.c.enabled).where(
    card_online_settings.c.card_id == bindparam("card_id")
)


def settings_row(conn: Connection, customer_id: int) -> Any:
    return conn.execute(_SETTINGS, {"customer_id": customer_id}).first()


def card_allowed(conn: Connection, card_id: int) -> bool:
    row = conn.execute(_CARD_ENABLED, {"card_id": card_id}).first()
    return row is None or bool(row.enabled)


def paid_today(conn: Connection, customer_id: int, now: datetime) -> int:
    """What the buyer has paid online since the business day began."""
    day = business_date(now)
    since = now - timedelta(days=1)
    rows = conn.execute(
        select(orders.c.amount, orders.c.paid_at)
        .where(orders.c.buyer_id == customer_id, orders.c.paid_at >= since)
    )  # fmt: skip
    return sum(amount for amount, at in rows if business_date(as_utc(at)) == day)


def check(conn: Connection, customer_id: int, amount: int, now: datetime) -> None:
    """The buyer's own controls: online payment switched on, within their own daily limit."""
    controls = settings_row(conn, customer_id)
    if controls is None:
        return
    if not controls.enabled:
        raise EbankError("ONLINE_PAYMENT_DISABLED")
    if controls.daily_limit is not None:
        used = paid_today(conn, customer_id, now)
        if used + amount > controls.daily_limit:
            raise EbankError(
                "LIMIT_EXCEEDED", limit="online_payment_daily",
                cap=format_minor(controls.daily_limit, "CNY"),
                remaining=format_minor(max(controls.daily_limit - used, 0), "CNY"),
            )  # fmt: skip


# -- reading and changing them -------------------------------------------------------------
def of(conn: Connection, customer_id: int) -> Controls:
    """The customer's controls, with every card of theirs."""
    customers.holder(conn, customer_id)
    row = settings_row(conn, customer_id)
    held = cards.cards_of(conn, customer_id)
    barred = set(
        conn.execute(
            select(card_online_settings.c.card_id).where(
                card_online_settings.c.card_id.in_([c.id for c in held]),
                card_online_settings.c.enabled == 0,
            )
        ).scalars()
    )
    return Controls(
        customer_id, row is None or bool(row.enabled), None if row is None else row.daily_limit,
        tuple(CardControl(c.id, c.kind, c.masked, c.status, c.id not in barred) for c in held),
        None if row is None else as_utc(row.updated_at),
    )  # fmt: skip


def _checked(customer_id: object, channel: object, enabled: object) -> None:
    if type(customer_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a customer id is an integer")
    if channel not in CHANNELS:
        raise EbankError("INVALID_INPUT", reason=f"a channel is one of {CHANNELS}")
    if type(enabled) is not bool:
        raise EbankError("INVALID_INPUT", reason="enabled is true or false")


def _put(tx: Tx, table: Table, key: str, value: int, columns: dict[str, Any]) -> None:
    """Write the row of `key` = `value`: update it, or insert it the first time."""
    done = tx.conn.execute(table.update().where(table.c[key] == value).values(columns))
    if not done.rowcount:
        tx.conn.execute(table.insert().values({key: value, **columns}))


def set_online_payment(
    *, customer_id: int, enabled: bool, daily_limit: int | None, channel: str
) -> Command[Controls]:
    """Switch online payment on or off, and set (or clear, with None) the customer's own daily
    limit for it."""

    def run(tx: Tx) -> Controls:
        _checked(customer_id, channel, enabled)
        if daily_limit is not None and (
            type(daily_limit) is not int or not 0 < daily_limit <= MAX_MINOR
        ):
            raise EbankError("INVALID_AMOUNT", reason="a daily limit is a positive amount or none")
        customers.holder(tx.conn, customer_id, lock=True)  # one change at a time
        was = settings_row(tx.conn, customer_id)
        _put(
            tx, online_payment_settings, "customer_id", customer_id,
            {"enabled": int(enabled), "daily_limit": daily_limit, "updated_at": tx.now},
        )  # fmt: skip
        audit.record(
            tx, actor=f"customer:{customer_id}", action="gateway.controls.set",
            subject=f"customer:{customer_id}", channel=channel,
            detail={
                "enabled": enabled, "daily_limit": daily_limit,
                "was": None if was is None else {"enabled": bool(was.enabled),
                                                 "daily_limit": was.daily_limit},
            },
        )  # fmt: skip
        return of(tx.conn, customer_id)

    return Command(run)


def set_card_online(
    *, customer_id: int, card_id: int, enabled: bool, channel: str
) -> Command[Controls]:
    """Allow or bar one of the customer's cards for online payment. Someone else's card is
    CARD_NOT_FOUND, as if it did not exist."""

    def run(tx: Tx) -> Controls:
        _checked(customer_id, channel, enabled)
        if type(card_id) is not int:
            raise EbankError("CARD_NOT_FOUND")
        card = cards.get_card(tx.conn, card_id)
        if card.customer_id != customer_id:
            raise EbankError("CARD_NOT_FOUND")
        customers.holder(tx.conn, customer_id, lock=True)
        was = card_allowed(tx.conn, card_id)
        _put(
            tx, card_online_settings, "card_id", card_id,
            {"enabled": int(enabled), "updated_at": tx.now},
        )  # fmt: skip
        audit.record(
            tx, actor=f"customer:{customer_id}", action="gateway.controls.card",
            subject=f"card:{card_id}", channel=channel,
            detail={"card": card.masked, "enabled": enabled, "was": was},
        )  # fmt: skip
        return of(tx.conn, customer_id)

    return Command(run)
