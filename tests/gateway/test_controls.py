"""What a buyer allows the gateway: online payment on or off, a daily limit of their own
(counted by the Shanghai business day), and which of their cards may pay online; every change
audited. The attacks: someone else's card, bad values, two writers at once."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Command
from ebank.gateway import controls, orders
from ebank.gateway.tables import card_online_settings, online_payment_settings
from tests.gateway.support import YUAN, Buyer, GatewayBank, Shop
from tests.support import VAULT, code_of, race_two_writers

T = TypeVar("T")


def run(bank: GatewayBank, command: Command[T]) -> T:
    return bank.writer.execute(command)


def switch(
    bank: GatewayBank, buyer: Buyer, enabled: bool = True, limit: int | None = None
) -> controls.Controls:
    return run(bank, controls.set_online_payment(customer_id=buyer.id, enabled=enabled,
                                                 daily_limit=limit, channel="online"))  # fmt: skip


def bar(bank: GatewayBank, buyer: Buyer, card: object, enabled: bool = False) -> controls.Controls:
    return run(bank, controls.set_card_online(customer_id=buyer.id, card_id=card,
                                              enabled=enabled, channel="mobile"))  # fmt: skip


def view(bank: GatewayBank, buyer: Buyer) -> controls.Controls:
    with bank.engine.connect() as conn:
        return controls.of(conn, buyer.id)


def refused(code: str, fn: Callable[..., object], *args: object, **kwargs: object) -> EbankError:
    with pytest.raises(EbankError) as caught:
        fn(*args, **kwargs)
    assert caught.value.code == code, caught.value
    return caught.value


def audits(bank: GatewayBank, action: str) -> list[Any]:
    with bank.engine.connect() as conn:
        return conn.execute(
            select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
        ).all()


def test_with_nothing_set_online_payment_is_on_for_every_card(bank: GatewayBank) -> None:
    buyer = bank.buyer(credit_line=5_000 * YUAN)
    seen = view(bank, buyer)
    assert (seen.enabled, seen.daily_limit, seen.updated_at) == (True, None, None)
    assert [(c.card_id, c.kind, c.online) for c in seen.cards] == [
        (buyer.debit_card, "debit", True), (buyer.credit_card, "credit", True),
    ]  # fmt: skip
    assert all("*" in c.masked for c in seen.cards)


def test_switched_off_nothing_pays_online_until_switched_on_again(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    seen = switch(bank, buyer, enabled=False)
    assert seen.enabled is False and seen.updated_at == bank.clock.now()
    order = shop.order(20 * YUAN)
    refused("ONLINE_PAYMENT_DISABLED", buyer.pay, order)
    assert buyer.balance() == 100_000 * YUAN and shop.refresh(order).status == "created"
    switch(bank, buyer, enabled=True)
    assert buyer.paid(order).status == "paid"


def test_the_buyers_own_daily_limit_counts_by_the_business_day(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    bank.clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    assert switch(bank, buyer, limit=300 * YUAN).daily_limit == 300 * YUAN
    buyer.paid(shop.order(200 * YUAN))
    error = refused("LIMIT_EXCEEDED", buyer.pay, shop.order(150 * YUAN))
    assert error.details == {"limit": "online_payment_daily", "cap": "300.00",
                             "remaining": "100.00"}  # fmt: skip
    buyer.paid(shop.order(100 * YUAN))  # exactly up to it
    bank.clock.advance(timedelta(hours=1))  # a new business day
    buyer.paid(shop.order(300 * YUAN))
    switch(bank, buyer, limit=None)  # no limit of my own: the bank's only
    assert buyer.paid(shop.order(900 * YUAN)).status == "paid"


@pytest.mark.parametrize(
    ("enabled", "limit", "channel"),
    [
        (True, 0, "online"), (True, -100, "online"), (True, 10**15, "online"),
        (True, "100.00", "online"), (True, 1.5, "online"), (True, True, "online"),
        ("yes", None, "online"), (1, None, "online"), (True, None, "web"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_and_change_nothing(
    bank: GatewayBank, buyer: Buyer, enabled: object, limit: object, channel: object
) -> None:
    with pytest.raises(EbankError) as caught:
        run(bank, controls.set_online_payment(customer_id=buyer.id, enabled=enabled,
                                              daily_limit=limit, channel=channel))  # fmt: skip
    assert caught.value.code in ("INVALID_INPUT", "INVALID_AMOUNT")
    assert view(bank, buyer).updated_at is None and audits(bank, "gateway.controls.set") == []


def test_a_barred_card_cannot_pay_online_and_is_not_offered(bank: GatewayBank, shop: Shop) -> None:
    buyer = bank.buyer(credit_line=5_000 * YUAN)
    seen = bar(bank, buyer, buyer.debit_card)
    assert [(c.card_id, c.online) for c in seen.cards] == [
        (buyer.debit_card, False), (buyer.credit_card, True),
    ]  # fmt: skip
    order = shop.order(20 * YUAN)
    refused("CARD_NOT_ALLOWED_ONLINE", buyer.pay, order)
    with bank.engine.connect() as conn:
        token = orders.pay_token(VAULT, order.trade_no)
        offered = orders.options(
            conn, token=token, customer_id=buyer.id, channel="online", now=bank.clock.now()
        )
    assert [c.card_id for c in offered] == [buyer.credit_card]
    bar(bank, buyer, buyer.debit_card, enabled=True)
    assert buyer.paid(order).funding == "debit"


def test_someone_elses_card_is_not_found_and_left_alone(bank: GatewayBank, buyer: Buyer) -> None:
    thief = bank.buyer()
    refused("CARD_NOT_FOUND", bar, bank, thief, buyer.debit_card)
    refused("CARD_NOT_FOUND", bar, bank, thief, 10**9)
    refused("CARD_NOT_FOUND", bar, bank, thief, "1")
    with bank.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(card_online_settings)).scalar() == 0
    assert all(c.online for c in view(bank, buyer).cards)


def test_every_change_is_audited_with_what_it_replaced(bank: GatewayBank, buyer: Buyer) -> None:
    switch(bank, buyer, enabled=True, limit=500 * YUAN)
    switch(bank, buyer, enabled=False, limit=None)
    bar(bank, buyer, buyer.debit_card)
    first, second = audits(bank, "gateway.controls.set")
    assert (first.actor, first.channel, first.subject) == (
        f"customer:{buyer.id}", "online", f"customer:{buyer.id}",
    )  # fmt: skip
    assert json.loads(first.detail) == {"enabled": True, "daily_limit": 50_000, "was": None}
    assert json.loads(second.detail) == {
        "enabled": False, "daily_limit": None, "was": {"enabled": True, "daily_limit": 50_000},
    }  # fmt: skip
    [card] = audits(bank, "gateway.controls.card")
    assert card.subject == f"card:{buyer.debit_card}" and card.channel == "mobile"
    assert json.loads(card.detail)["was"] is True and "*" in json.loads(card.detail)["card"]


def test_two_writers_changing_at_once_leave_one_setting(bank: GatewayBank, buyer: Buyer) -> None:
    mine = [controls.set_online_payment(customer_id=buyer.id, enabled=False, daily_limit=None,
                                        channel="online")]  # fmt: skip
    theirs = [controls.set_online_payment(customer_id=buyer.id, enabled=True,
                                          daily_limit=100 * YUAN, channel="mobile")]  # fmt: skip
    [(a, b)] = race_two_writers(bank.writer, bank.engine, bank.clock, mine, theirs)
    assert (code_of(a), code_of(b)) == ("ok", "ok")
    with bank.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(online_payment_settings)).scalar() == 1
    assert len(audits(bank, "gateway.controls.set")) == 2
