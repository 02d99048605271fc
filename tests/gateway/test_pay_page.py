"""The pay page end to end over HTTP, as the buyer's browser sees it: the order, the login
(password, then the SMS code, or a token holder's token code unless they have the SMS code
texted instead), a card and the PIN (and an SMS code where the buyer picks one),
then back to the shop with a result the shop can verify with the gateway's public key.

The attacks: a wrong PIN counts and pays nothing; a form without the page's own token, or with
another order's cookie, does nothing; someone else's card, a barred card, online payment
switched off and the buyer's own daily limit are refused in words; an expired, closed or paid
order cannot be paid; hostile names are shown as text; the page cannot be framed, runs no
inline script or style, and keeps its state in a cookie the page's script cannot read.
"""

import base64
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from ebank.app import create_app
from ebank.core.clock import FixedClock
from ebank.core.errors import checked_text
from ebank.core.settings import Settings
from ebank.core.writer import Writer
from ebank.gateway import controls, orders, returns, signing
from ebank.gateway.client import GatewayClient, SignatureError
from ebank.gateway.models import OrderView
from ebank.gateway.tables import merchants as merchant_rows
from ebank.security.tables import credentials, login_challenges, sessions
from tests.channels.api_support import sms_texts
from tests.gateway.support import PASSWORD, PIN, YUAN, GatewayBank, Shop, Shopper, shopper
from tests.security.test_security import credential_row, enroll, other_than, token_code
from tests.support import VAULT, last_code, wait_to_resend

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
BASE = "https://testserver"
START = 100_000 * YUAN  # what a test buyer has


@pytest.fixture
def client(
    engine: Engine,
    writer: Writer,
    clock: FixedClock,
    fast_hashing: None,
) -> Iterator[TestClient]:
    app = create_app(Settings(), engine=engine, writer=writer, clock=clock, vault=VAULT)
    with TestClient(app, base_url=BASE, follow_redirects=False) as test_client:
        yield test_client


@functools.cache
def merchant_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def verified_return(location: str, merchant_no: str) -> dict:
    """The result on the return URL, as the shop's SDK checks it with the gateway's key."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    with GatewayClient(BASE, merchant_no, merchant_key(), signing.gateway_key().public_pem) as sdk:
        return sdk.verify_return(params)


class Browser:
    """The buyer's browser on the pay page of one order."""

    def __init__(self, client: TestClient, bank: GatewayBank, order: OrderView) -> None:
        self.client, self.bank, self.order = client, bank, order
        self.path = f"/pay/{orders.pay_token(VAULT, order.trade_no)}"
        self.html = ""

    def open(self) -> httpx.Response:
        response = self.client.get(self.path)
        self.html = response.text
        return response

    def csrf(self) -> str:
        return CSRF.findall(self.html)[0]

    def send(self, step: str, csrf: str | None = None, **fields: str) -> httpx.Response:
        """Post a form of the page (with the page's token unless given); follow a redirect
        back to the page, not one to the shop."""
        data = {"csrf": self.csrf() if csrf is None else csrf, **fields}
        response = self.client.post(f"{self.path}/{step}", data=data)
        if response.status_code == 303 and response.headers["location"] == self.path:
            return self.open()
        self.html = response.text
        return response

    def log_in(self, buyer: "Shopper") -> httpx.Response:
        self.open()
        asked = self.send("login", login=buyer.id_number, password=PASSWORD)
        assert asked.status_code == 200 and 'name="code"' in asked.text, asked.text
        done = self.send("verify", code=last_code(self.bank.engine))
        assert done.status_code == 200 and "付款人" in done.text, done.text
        return done

    def pay(self, card: int, pin: str = PIN, **extra: str) -> httpx.Response:
        return self.send("confirm", card=str(card), method=extra.pop("method", "pin"), pin=pin,
                         **extra)  # fmt: skip


@pytest.fixture
def me(bank: GatewayBank) -> Shopper:
    return shopper(bank)


# -- the happy paths ----------------------------------------------------------------------
def test_the_page_shows_the_order_and_asks_the_buyer_to_log_in(
    client: TestClient, bank: GatewayBank, shop: Shop
) -> None:
    order = shop.order(200 * YUAN, subject="一盒龙井茶")
    page = Browser(client, bank, order)
    shown = page.open()
    assert shown.status_code == 200
    text = shown.text
    for fact in (shop.merchant.name, "一盒龙井茶", "¥200.00", order.trade_no, "即时支付"):
        assert fact in text
    assert '<label for="login">' in text and '<label for="password">' in text
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in text


def test_a_small_payment_with_the_pin_alone_goes_back_to_the_shop_signed(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    order = shop.order(200 * YUAN)
    page = Browser(client, bank, order)
    chosen = page.log_in(me)
    assert "仅交易密码" in chosen.text and "621799" in chosen.text  # the debit card, masked
    answer = page.pay(me.debit_card)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("https://shop.example/return?")
    result = verified_return(location, shop.merchant.merchant_no)
    assert result["trade_no"] == order.trade_no and result["status"] == "paid"
    assert result["amount"] == "200.00" and result["out_trade_no"] == order.out_trade_no
    assert shop.refresh(order).status == "paid" and me.balance() == START - 200 * YUAN
    # The page's session ends with the payment, and its cookie is dropped.
    with bank.engine.connect() as conn:
        [ended] = conn.execute(
            select(sessions.c.ended_at).where(sessions.c.customer_id == me.id)
        ).scalars().all()  # fmt: skip
    assert ended is not None
    assert (
        "ebank_pay=" in answer.headers["set-cookie"] and "Max-Age=0" in answer.headers["set-cookie"]
    )


def test_an_sms_code_confirms_a_payment_above_the_default_pin_alone_limit(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    # The ¥1,000 / ¥5,000 rule is a bank parameter: this bank allows more without a certificate.
    bank.set_parameter("limits.uncertified.per_payment", 5_000 * YUAN)
    bank.set_parameter("limits.uncertified.daily", 20_000 * YUAN)
    order = shop.order(3_000 * YUAN)
    page = Browser(client, bank, order)
    chosen = page.log_in(me)
    assert "交易密码 + 短信验证码" in chosen.text
    sent = page.send("code", card=str(me.debit_card), method="sms", pin="")
    assert sent.status_code == 200 and "验证码已发送" in sent.text
    texted = sms_texts(bank.engine, me.id, "code")[-1]
    assert shop.merchant.name in texted and "3,000.00" in texted  # what the code confirms
    answer = page.pay(me.debit_card, method="sms", code=last_code(bank.engine))
    assert answer.status_code == 303, answer.text
    assert verified_return(answer.headers["location"], shop.merchant.merchant_no)["status"] == (
        "paid"
    )
    assert me.balance() == START - 3_000 * YUAN


def test_an_sms_code_for_another_order_confirms_nothing(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper, clock: FixedClock
) -> None:
    first, second = shop.order(300 * YUAN), shop.order(400 * YUAN)
    page = Browser(client, bank, first)
    page.log_in(me)
    page.send("code", card=str(me.debit_card), method="sms", pin="")
    code = last_code(bank.engine)
    wait_to_resend(clock)  # the second order's login texts a code too
    other = Browser(client, bank, second)
    other.log_in(me)
    refused = other.pay(me.debit_card, method="sms", code=code)
    assert refused.status_code == 401 and "验证码有误" in refused.text
    assert shop.refresh(second).status == "created" and me.balance() == START


def test_above_the_uncertified_limit_the_page_explains_it_cannot_take_a_certificate(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    order = shop.order(1_000 * YUAN + 1)
    page = Browser(client, bank, order)
    shown = page.log_in(me)
    assert "数字证书（U盾）签名" in shown.text and "本页面不支持证书签名" in shown.text
    assert "确认支付" not in shown.text  # nothing to pay with
    refused = page.pay(me.debit_card)
    assert refused.status_code == 422 and "未使用数字证书的网上支付单笔不超过" in refused.text
    assert me.balance() == START


def test_a_card_no_factor_would_let_through_is_shown_with_the_reason(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    bank.set_parameter("limits.channel.online.per_payment", 100 * YUAN)
    shown = Browser(client, bank, shop.order(200 * YUAN)).log_in(me)
    assert "本笔支付超过该卡可用的支付限额" in shown.text and "{" not in shown.text
    assert "您没有可以支付本订单的银行卡" in shown.text and "确认支付" not in shown.text


def test_a_credit_card_pays_too(client: TestClient, bank: GatewayBank, shop: Shop) -> None:
    buyer = shopper(bank, credit_line=5_000 * YUAN)
    order = shop.order(300 * YUAN)
    page = Browser(client, bank, order)
    assert "信用卡" in page.log_in(buyer).text
    answer = page.pay(buyer.credit_card)
    assert verified_return(answer.headers["location"], shop.merchant.merchant_no)["funding"] == (
        "credit"
    )
    assert buyer.balance() == START


def test_a_buyer_who_is_not_the_one_logged_in_logs_out_and_starts_again(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    page = Browser(client, bank, shop.order(20 * YUAN))
    page.log_in(me)
    again = page.send("logout")
    assert again.status_code == 200 and '<label for="password">' in again.text
    with bank.engine.connect() as conn:
        assert conn.execute(select(sessions.c.ended_at)).scalar_one() is not None


# -- the login's second step --------------------------------------------------------------
TEXT_ME = "动态口令不在身边？改用短信验证码"


def test_a_buyer_without_a_token_is_texted_the_code_and_offered_none(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    page = Browser(client, bank, shop.order(20 * YUAN))
    page.open()
    asked = page.send("login", login=me.id_number, password=PASSWORD)
    assert '<label for="code">短信验证码' in asked.text and TEXT_ME not in asked.text
    assert len(sms_texts(bank.engine, me.id)) == 1


def test_a_buyer_with_a_token_is_asked_for_its_code_texted_nothing_and_wrong_codes_count(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper, clock: FixedClock
) -> None:
    totp = enroll(bank.writer, me.id)
    page = Browser(client, bank, shop.order(20 * YUAN))
    page.open()
    asked = page.send("login", login=me.id_number, password=PASSWORD)
    assert '<label for="code">动态口令' in asked.text and TEXT_ME in asked.text
    wrong = page.send("verify", code=other_than(token_code(totp, clock)))
    assert wrong.status_code == 401 and 'id="code-error"' in wrong.text
    assert credential_row(bank.engine, me.id, "login_password")["failures"] == 1
    chosen = page.send("verify", code=token_code(totp, clock))
    assert chosen.status_code == 200 and "付款人" in chosen.text
    assert sms_texts(bank.engine, me.id) == []


def test_a_buyer_without_the_token_at_hand_has_the_code_texted_once_and_logs_in_with_it(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    enroll(bank.writer, me.id)
    page = Browser(client, bank, shop.order(20 * YUAN))
    page.open()
    page.send("login", login=me.id_number, password=PASSWORD)
    csrf = page.csrf()
    texted = page.send("login/sms")
    assert texted.status_code == 200
    assert '<label for="code">短信验证码' in texted.text and TEXT_ME not in texted.text
    again = page.send("login/sms", csrf=csrf)  # a double click
    assert again.status_code == 429 and "验证码已发送，请 60 秒后再重新获取" in again.text
    assert len(sms_texts(bank.engine, me.id)) == 1
    chosen = page.send("verify", code=last_code(bank.engine))
    assert chosen.status_code == 200 and "付款人" in chosen.text


# -- refusals -----------------------------------------------------------------------------
def test_a_wrong_password_is_refused_in_words_beside_the_field(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    page = Browser(client, bank, shop.order(20 * YUAN))
    page.open()
    refused = page.send("login", login=me.id_number, password="wrong2026pass")
    assert refused.status_code == 401
    assert 'id="password-error"' in refused.text and "登录信息或验证码有误" in refused.text
    assert "Traceback" not in refused.text
    assert f'value="{me.id_number}"' in refused.text  # the login typed is kept, not the secret
    missing = page.send("login", login="", password="x")
    assert missing.status_code == 400 and 'id="login-error"' in missing.text


def test_a_wrong_pin_is_refused_counted_and_pays_nothing(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    order = shop.order(20 * YUAN)
    page = Browser(client, bank, order)
    page.log_in(me)
    refused = page.pay(me.debit_card, pin="000000")
    assert refused.status_code == 401 and "登录信息或验证码有误" in refused.text
    assert 'id="secret-error"' in refused.text
    with bank.engine.connect() as conn:
        failures = conn.execute(
            select(credentials.c.failures).where(
                credentials.c.customer_id == me.id, credentials.c.kind == "transaction_pin"
            )
        ).scalar_one()
    assert failures == 1
    assert shop.refresh(order).status == "created" and me.balance() == START
    assert page.pay(me.debit_card).status_code == 303  # the buyer may try again


def test_a_form_without_the_pages_token_does_nothing(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    order = shop.order(20 * YUAN)
    page = Browser(client, bank, order)
    page.open()
    for csrf in ("", "forged-token"):
        refused = page.send("login", csrf=csrf, login=me.id_number, password=PASSWORD)
        assert refused.status_code == 403 and "页面已过期" in refused.text
    with bank.engine.connect() as conn:
        assert conn.execute(select(login_challenges)).first() is None
    assert sms_texts(bank.engine, me.id) == []
    page.log_in(me)
    forged = page.pay(me.debit_card, csrf="forged-token")
    assert forged.status_code == 403 and "页面已过期" in forged.text
    assert shop.refresh(order).status == "created" and me.balance() == START


def test_the_pages_cookie_serves_its_own_order_only(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    first, second = shop.order(20 * YUAN), shop.order(30 * YUAN)
    page = Browser(client, bank, first)
    page.open()
    [cookie] = [c for c in client.cookies.jar if c.name == "ebank_pay"]
    other = f"/pay/{orders.pay_token(VAULT, second.trade_no)}"
    refused = client.post(
        f"{other}/login", data={"csrf": page.csrf(), "login": me.id_number, "password": PASSWORD},
        headers={"Cookie": f"ebank_pay={cookie.value}"},
    )  # fmt: skip
    assert refused.status_code == 403 and "页面已过期" in refused.text
    with bank.engine.connect() as conn:
        assert conn.execute(select(login_challenges)).first() is None


def test_a_visit_idle_past_the_session_time_starts_again(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper, clock: FixedClock
) -> None:
    page = Browser(client, bank, shop.order(20 * YUAN))
    page.log_in(me)
    clock.advance(timedelta(seconds=300))
    assert '<label for="password">' in page.open().text
    assert page.pay(me.debit_card).status_code == 401  # the session behind it is gone too
    assert me.balance() == START


def test_an_expired_order_says_so_and_cannot_be_paid(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper, clock: FixedClock
) -> None:
    order = shop.order(20 * YUAN, expire_minutes=15)
    page = Browser(client, bank, order)
    page.log_in(me)
    clock.advance(timedelta(minutes=15))
    shown = page.open()
    assert shown.status_code == 409 and "订单已过支付期限" in shown.text
    assert "确认支付" not in shown.text and 'name="password"' not in shown.text
    back = client.get(f"{page.path}/back")  # the link every step has
    assert back.status_code == 303 and f'href="{page.path}/back"' in shown.text
    assert verified_return(back.headers["location"], shop.merchant.merchant_no) == {
        **orders.public(shop.refresh(order)), "status": "created",
    }  # fmt: skip
    assert page.pay(me.debit_card, csrf="x").status_code == 409
    assert me.balance() == START


@pytest.mark.parametrize("ending", ["closed", "paid"])
def test_a_closed_or_paid_order_says_so(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper, ending: str
) -> None:
    order = shop.order(20 * YUAN)
    if ending == "closed":
        bank.writer.execute(orders.close(merchant_id=shop.id, out_trade_no=order.out_trade_no))
    else:
        me.paid(order)
    shown = Browser(client, bank, order).open()
    assert shown.status_code == 409
    assert ("商户已关闭该订单" if ending == "closed" else "该订单已付款") in shown.text


def test_an_unknown_pay_link_is_a_page_saying_so(client: TestClient) -> None:
    unknown = "/pay/" + "0" * 64
    for path in (unknown, "/pay/short", f"{unknown}/back", f"{unknown}/confirm"):
        response = client.post(path) if path.endswith("confirm") else client.get(path)
        assert response.status_code == 404 and "订单不存在" in response.text
        assert response.headers["content-type"].startswith("text/html")


def test_someone_elses_card_is_refused_as_unknown(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    victim = bank.buyer()
    order = shop.order(20 * YUAN)
    page = Browser(client, bank, order)
    page.log_in(me)
    assert f'value="{victim.debit_card}"' not in page.html
    refused = page.pay(victim.debit_card)
    assert refused.status_code == 404 and 'id="card-error"' in refused.text
    assert "卡片不存在" in refused.text
    assert victim.balance() == START and shop.refresh(order).status == "created"
    refused = page.send("code", card=str(victim.debit_card), method="sms", pin="")
    assert refused.status_code == 404 and sms_texts(bank.engine, victim.id) == []


def test_online_payment_switched_off_is_said_and_refused(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    bank.writer.execute(
        controls.set_online_payment(
            customer_id=me.id, enabled=False, daily_limit=None, channel="online"
        )
    )
    order = shop.order(20 * YUAN)
    page = Browser(client, bank, order)
    assert "您已关闭网上支付功能" in page.log_in(me).text
    refused = page.pay(me.debit_card)
    assert refused.status_code == 403 and "您已关闭网上支付功能" in refused.text
    assert me.balance() == START and shop.refresh(order).status == "created"


def test_a_card_barred_from_online_payment_is_not_offered_and_refused(
    client: TestClient, bank: GatewayBank, shop: Shop
) -> None:
    buyer = shopper(bank, credit_line=5_000 * YUAN)
    bank.writer.execute(controls.set_card_online(customer_id=buyer.id, card_id=buyer.debit_card,
                                                 enabled=False, channel="online"))  # fmt: skip
    order = shop.order(20 * YUAN)
    page = Browser(client, bank, order)
    shown = page.log_in(buyer)
    assert (
        f'value="{buyer.debit_card}" disabled' in shown.text and "该卡未开通网上支付" in shown.text
    )
    assert f'value="{buyer.credit_card}" checked' in shown.text
    refused = page.pay(buyer.debit_card)
    assert refused.status_code == 403 and "该卡未开通网上支付" in refused.text
    assert buyer.balance() == START and shop.refresh(order).status == "created"


def test_the_buyers_own_daily_limit_is_kept(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    bank.writer.execute(
        controls.set_online_payment(
            customer_id=me.id, enabled=True, daily_limit=300 * YUAN, channel="online"
        )
    )
    me.paid(shop.order(200 * YUAN))
    order = shop.order(150 * YUAN)
    page = Browser(client, bank, order)
    assert "今日还可支付 ¥100.00" in page.log_in(me).text
    refused = page.pay(me.debit_card)
    assert refused.status_code == 422 and "超过限额 ¥300.00" in refused.text
    assert shop.refresh(order).status == "created"


# -- what the page is made of -------------------------------------------------------------
def test_hostile_names_are_shown_as_text(client: TestClient, bank: GatewayBank) -> None:
    hostile = "<script>alert(1)</script>"
    assert checked_text(hostile, "a merchant name", 100) == hostile  # onboarding takes it
    shop = bank.merchant()
    with bank.engine.begin() as conn:  # as if signed up under that name
        conn.execute(
            merchant_rows.update().where(merchant_rows.c.id == shop.id).values(name=hostile)
        )
    order = shop.order(20 * YUAN, subject='"><img src=x onerror=alert(2)>')
    text = Browser(client, bank, order).open().text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in text
    assert "<script" not in text and "<img" not in text


def test_the_page_cannot_be_framed_runs_no_inline_code_and_hides_its_cookie(
    client: TestClient, bank: GatewayBank, shop: Shop, me: Shopper
) -> None:
    page = Browser(client, bank, shop.order(20 * YUAN))
    shown = page.open()
    headers = shown.headers
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "script-src" not in policy
    assert "form-action 'self' https://shop.example" in policy  # the payment's redirect
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    cookie = headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=strict", f"Path={page.path}"):
        assert flag.lower() in cookie.lower()
    for html in (shown.text, page.log_in(me).text):
        assert "<script" not in html and "style=" not in html and "<style" not in html
        assert html.count('name="csrf"') == html.count("<form")  # a token in every form
        for field in re.findall(r'<input id="([a-z]+)"', html):
            assert f'<label for="{field}">' in html  # a label on every input


def test_the_pages_cookie_is_sealed(client: TestClient, bank: GatewayBank, shop: Shop) -> None:
    page = Browser(client, bank, shop.order(20 * YUAN))
    page.open()
    [cookie] = [c for c in client.cookies.jar if c.name == "ebank_pay"]
    assert page.csrf() not in cookie.value  # the state is encrypted, not merely signed
    client.cookies.clear()
    altered = cookie.value[:-6] + ("A" if cookie.value[-6] != "A" else "B") + cookie.value[-5:]
    forged = client.post(
        f"{page.path}/login", data={"csrf": page.csrf(), "login": "x", "password": "y"},
        headers={"Cookie": f"ebank_pay={altered}"},
    )  # fmt: skip
    assert forged.status_code == 403 and "页面已过期" in forged.text


# -- the signed return ------------------------------------------------------------------------
def test_the_return_url_keeps_the_shops_query_but_not_fields_that_imitate_ours(
    bank: GatewayBank, shop: Shop
) -> None:
    order = shop.order(20 * YUAN)
    view = replace(order, return_url="https://shop.example/back?id=A%201&signature=forged&x#top")
    url = returns.signed_return_url(view, now=bank.clock.now())
    parts = urlsplit(url)
    assert parts.fragment == "top" and parts.query.startswith("id=A%201&x&result=")
    assert parts.query.count("signature=") == 1
    result = verified_return(url, shop.merchant.merchant_no)
    assert result["trade_no"] == order.trade_no and result["status"] == "created"
    body = base64.urlsafe_b64decode(parse_qs(parts.query)["result"][0] + "==")
    assert json.loads(body) == orders.public(view)
    tampered = url.replace("result=", "result=e30")  # another result under the same signature
    with pytest.raises(SignatureError):
        verified_return(tampered, shop.merchant.merchant_no)


def test_the_back_link_stops_redirecting_an_hour_after_the_order_ended(
    client: TestClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    order = shop.order(20 * YUAN, expire_minutes=15)
    path = f"/pay/{orders.pay_token(VAULT, order.trade_no)}/back"
    assert client.get(path).status_code == 303
    clock.advance(timedelta(minutes=15) + timedelta(hours=1))
    assert client.get(path).status_code == 404  # no longer a redirect from the bank's address
