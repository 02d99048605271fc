"""The customer's online-payment API: the settings (on or off, my own daily limit, which cards
may pay online), a year of history in pages, and my word on an escrow order (goods received, or
a dispute). The attacks: another customer's card or order answers like none and stays as it
was; bad bodies change nothing; no session, no answer."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.gateway import orders
from ebank.gateway.tables import card_online_settings
from tests.channels.api_support import bearer, begin, verify
from tests.gateway.support import PASSWORD, YUAN, Buyer, GatewayBank, Shop, Shopper, shopper
from tests.support import last_code

API = "/api/v1"
SETTINGS = f"{API}/me/online-payment"
HISTORY = f"{API}/me/online-payments"
Headers = dict[str, str]


@pytest.fixture
def bank(writer: Writer, engine: Any, clock: FixedClock) -> GatewayBank:
    return GatewayBank(writer, engine, clock)


@pytest.fixture
def shop(bank: GatewayBank) -> Shop:
    return bank.merchant()


def log_in(api: TestClient, bank: GatewayBank, buyer: Shopper) -> Headers:
    """Log in online with the password and the SMS code; the session's bearer header."""
    started = begin(api, buyer.id_number, PASSWORD, send_sms=True)
    assert started.status_code == 200, started.json()
    done = verify(api, started.json()["challenge"], "sms", last_code(bank.engine))
    assert done.status_code == 200, done.json()
    return bearer(done.json()["token"])


@pytest.fixture
def me(api: TestClient, bank: GatewayBank) -> tuple[Shopper, Headers]:
    buyer = shopper(bank, credit_line=5_000 * YUAN)
    return buyer, log_in(api, bank, buyer)


def test_my_settings_start_with_online_payment_on_for_every_card(
    api: TestClient, me: tuple[Shopper, Headers]
) -> None:
    buyer, headers = me
    answer = api.get(SETTINGS, headers=headers)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["enabled"], body["daily_limit"], body["updated_at"]) == (True, None, None)
    cards = {c["id"]: c for c in body["cards"]}
    assert set(cards) == {buyer.debit_card, buyer.credit_card}
    assert cards[buyer.debit_card]["kind"] == "debit" and "*" in cards[buyer.debit_card]["number"]
    assert all(c["online"] and c["status"] == "active" for c in cards.values())


def test_switching_off_and_setting_my_limit_are_kept_and_audited(
    api: TestClient, bank: GatewayBank, shop: Shop, me: tuple[Shopper, Headers]
) -> None:
    buyer, headers = me
    answer = api.put(SETTINGS, headers=headers, json={"enabled": False, "daily_limit": "500.00"})
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["enabled"], answer.json()["daily_limit"]) == (False, "500.00")
    assert api.get(SETTINGS, headers=headers).json()["daily_limit"] == "500.00"
    with pytest.raises(EbankError) as caught:
        buyer.pay(shop.order(20 * YUAN))
    assert caught.value.code == "ONLINE_PAYMENT_DISABLED"
    cleared = api.put(SETTINGS, headers=headers, json={"enabled": True, "daily_limit": None})
    assert (cleared.json()["enabled"], cleared.json()["daily_limit"]) == (True, None)
    assert buyer.paid(shop.order(600 * YUAN)).status == "paid"
    with bank.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.channel)
            .where(audit_log.c.action == "gateway.controls.set")
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(f"customer:{buyer.id}", "online")] * 2


def test_bad_bodies_are_400_and_change_nothing(
    api: TestClient, bank: GatewayBank, me: tuple[Shopper, Headers]
) -> None:
    _, headers = me
    for body in (
        {"enabled": True, "daily_limit": "0.00"}, {"enabled": True, "daily_limit": "-1.00"},
        {"enabled": True, "daily_limit": "12.5"}, {"enabled": True, "daily_limit": 500},
        {"enabled": "false"}, {"enabled": True, "daily_limit": None, "extra": 1}, {},
    ):  # fmt: skip
        answer = api.put(SETTINGS, headers=headers, json=body)
        assert answer.status_code == 400, (body, answer.json())
        assert answer.json()["code"] in ("INVALID_INPUT", "INVALID_AMOUNT")
    assert api.get(SETTINGS, headers=headers).json()["updated_at"] is None


def test_i_bar_and_allow_my_own_card_but_not_someone_elses(
    api: TestClient, bank: GatewayBank, shop: Shop, me: tuple[Shopper, Headers]
) -> None:
    buyer, headers = me
    other = bank.buyer()
    url = f"{SETTINGS}/cards/{buyer.debit_card}"
    answer = api.put(url, headers=headers, json={"enabled": False})
    assert answer.status_code == 200
    assert {c["id"]: c["online"] for c in answer.json()["cards"]}[buyer.debit_card] is False
    order = shop.order(20 * YUAN)
    with pytest.raises(EbankError) as caught:
        buyer.pay(order)
    assert caught.value.code == "CARD_NOT_ALLOWED_ONLINE"
    assert buyer.paid(order, card_id=buyer.credit_card).funding == "credit"
    for card in (other.debit_card, 10**12):
        stranger = api.put(f"{SETTINGS}/cards/{card}", headers=headers, json={"enabled": False})
        assert stranger.status_code == 404 and stranger.json()["code"] == "CARD_NOT_FOUND"
    assert api.put(f"{SETTINGS}/cards/0", headers=headers, json={"enabled": False}).status_code == (
        400
    )
    with bank.engine.connect() as conn:
        barred = conn.execute(select(card_online_settings.c.card_id)).scalars().all()
    assert barred == [buyer.debit_card]
    assert api.put(url, headers=headers, json={"enabled": True}).json()["cards"][0]["online"]


def test_without_a_session_nothing_is_answered(api: TestClient) -> None:
    for method, url in (("GET", SETTINGS), ("PUT", SETTINGS), ("GET", HISTORY),
                        ("POST", f"{HISTORY}/G1/confirm")):  # fmt: skip
        answer = api.request(method, url, json={"enabled": False})
        assert answer.status_code == 401 and answer.json()["code"] == "AUTH_REQUIRED"


def paid_orders(bank: GatewayBank, shop: Shop, buyer: Buyer, *amounts: int) -> list[str]:
    return [buyer.paid(shop.order(a * YUAN)).trade_no for a in amounts]


def test_history_is_mine_newest_first_in_pages_and_a_year_back_at_most(
    api: TestClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    buyer, other = shopper(bank), bank.buyer()
    [oldest] = paid_orders(bank, shop, buyer, 10)
    clock.advance(timedelta(days=367))
    newer = paid_orders(bank, shop, buyer, 20, 30, 40)
    paid_orders(bank, shop, other, 50)
    shop.order(60 * YUAN)  # never paid: no part of anyone's history
    headers = log_in(api, bank, buyer)
    page = api.get(HISTORY, headers=headers, params={"limit": 2})
    assert page.status_code == 200
    first = page.json()["payments"]
    assert [p["trade_no"] for p in first] == newer[:0:-1]
    assert first[0]["merchant_name"] == shop.merchant.name and first[0]["amount"] == "40.00"
    assert first[0]["status"] == "paid" and first[0]["mode"] == "instant"
    rest = api.get(HISTORY, headers=headers, params={"limit": 2, "before": first[-1]["id"]})
    assert [p["trade_no"] for p in rest.json()["payments"]] == [newer[0]]
    assert oldest not in str(rest.json())
    too_far = (clock.now() - timedelta(days=400)).date().isoformat()
    refused = api.get(HISTORY, headers=headers, params={"since": too_far})
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_INPUT"


def escrow_paid(shop: Shop, buyer: Buyer) -> str:
    order = shop.order(500 * YUAN, "escrow")
    assert buyer.paid(order).status == "held"
    return order.trade_no


def test_i_confirm_receipt_of_my_escrow_order_once(
    api: TestClient, bank: GatewayBank, shop: Shop, me: tuple[Shopper, Headers]
) -> None:
    buyer, headers = me
    trade_no = escrow_paid(shop, buyer)
    done = api.post(f"{HISTORY}/{trade_no}/confirm", headers=headers)
    assert done.status_code == 200, done.json()
    assert done.json()["status"] == "paid" and done.json()["trade_no"] == trade_no
    again = api.post(f"{HISTORY}/{trade_no}/confirm", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "ORDER_STATE"
    with bank.engine.connect() as conn:
        [row] = conn.execute(
            select(audit_log.c.actor, audit_log.c.channel)
            .where(audit_log.c.action == "gateway.escrow.confirm")
        ).all()  # fmt: skip
    assert tuple(row) == (f"customer:{buyer.id}", "online")


def test_i_dispute_my_escrow_order_with_a_reason(
    api: TestClient, bank: GatewayBank, shop: Shop, me: tuple[Shopper, Headers]
) -> None:
    buyer, headers = me
    trade_no = escrow_paid(shop, buyer)
    for reason in ("", "   ", "x" * 201):
        bad = api.post(f"{HISTORY}/{trade_no}/dispute", headers=headers, json={"reason": reason})
        assert bad.status_code == 400
    done = api.post(f"{HISTORY}/{trade_no}/dispute", headers=headers, json={"reason": "货不对板"})
    assert done.status_code == 200 and done.json()["status"] == "disputed"


def test_someone_elses_order_is_not_found_and_stays_held(
    api: TestClient, bank: GatewayBank, shop: Shop, me: tuple[Shopper, Headers]
) -> None:
    _, headers = me
    victim = bank.buyer()
    trade_no = escrow_paid(shop, victim)
    for action, body in (("confirm", None), ("dispute", {"reason": "不想要了"})):
        answer = api.post(f"{HISTORY}/{trade_no}/{action}", headers=headers, json=body)
        assert answer.status_code == 404 and answer.json()["code"] == "ORDER_NOT_FOUND"
    unknown = api.post(f"{HISTORY}/G999/confirm", headers=headers)
    assert unknown.status_code == 404
    with bank.engine.connect() as conn:
        assert orders.by_trade_no(conn, trade_no).status == "held"
