"""The example shop, spoken to over HTTP as a buyer's browser and the bank would, against a
stub gateway that checks the shop's signatures and signs its own answers."""

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.app import create_app
from ebank.cli import build_parser, cmd_shop
from ebank.core.clock import FixedClock
from ebank.core.settings import Settings
from ebank.core.writer import Writer
from ebank.gateway import merchants, orders, returns, signing
from ebank.gateway.client import Signer
from ebank.gateway.notices import NotAcknowledged, Poster, deliver_notices
from ebank.shop.app import PRODUCTS, ShopSettings, create_shop
from tests.gateway.support import GatewayBank
from tests.shop.stub_gateway import BASE_URL, MERCHANT_NO, StubGateway
from tests.support import STAFF, VAULT


@pytest.fixture(scope="module")
def shop_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def stub(clock: FixedClock, shop_key: str) -> StubGateway:
    return StubGateway(clock, "RSA2", Signer("RSA2", shop_key).public_key)


@pytest.fixture
def settings(tmp_path: Path, shop_key: str) -> ShopSettings:
    """The shop's key and the gateway's public key in files, as `make demo` leaves them."""
    (tmp_path / "shop-key.pem").write_text(shop_key)
    (tmp_path / "gateway-public.pem").write_text(signing.gateway_key().public_pem)
    return ShopSettings(gateway_url=BASE_URL, merchant_no=MERCHANT_NO,
                        key_path=tmp_path / "shop-key.pem",
                        gateway_key_path=tmp_path / "gateway-public.pem")  # fmt: skip


@pytest.fixture
def browser(stub: StubGateway, settings: ShopSettings, clock: FixedClock) -> Iterator[TestClient]:
    app = create_shop(settings, http=httpx.Client(transport=stub.transport()),
                      clock=lambda: clock.now().timestamp())  # fmt: skip
    with TestClient(app, follow_redirects=False) as client:
        yield client


def buy(browser: TestClient, product: str, mode: str = "instant") -> httpx.Response:
    return browser.post("/buy", content=f"product={product}&mode={mode}",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip


def bought(browser: TestClient, stub: StubGateway, product: str, mode: str = "instant") -> str:
    """Buy; the shop's order number."""
    assert buy(browser, product, mode).status_code == 303
    return json.loads(stub.seen[-1].body)["out_trade_no"]  # type: ignore[no-any-return]


def test_the_page_sells_three_teas_and_offers_escrow_for_one(browser: TestClient) -> None:
    page = browser.get("/")
    assert page.status_code == 200
    for product in PRODUCTS.values():
        assert product.name in page.text and product.price in page.text
    assert page.text.count('value="escrow"') == 1
    assert "<script" not in page.text


def test_buy_creates_an_instant_order_and_sends_the_browser_to_pay(
    browser: TestClient, stub: StubGateway
) -> None:
    response = buy(browser, "longjing")
    assert response.status_code == 303
    created = json.loads(stub.seen[-1].body)  # the stub verified the shop's signature
    order = stub.orders[created["out_trade_no"]]
    assert response.headers["location"] == order["pay_url"]
    assert (created["amount"], created["mode"], created["currency"]) == ("168.00", "instant", "CNY")
    assert created["return_url"] == "http://testserver/return"
    assert created["notify_url"] == "http://testserver/notify"
    assert created["out_trade_no"] in browser.get("/").text


def test_escrow_is_offered_only_where_the_page_offers_it(
    browser: TestClient, stub: StubGateway
) -> None:
    assert buy(browser, "tieguanyin", "escrow").status_code == 303
    assert json.loads(stub.seen[-1].body)["mode"] == "escrow"
    for product, mode in (("puer", "escrow"), ("tieguanyin", "authorise"), ("gold", "instant")):
        assert buy(browser, product, mode).status_code == 400
    assert len(stub.orders) == 1


def test_a_bank_that_refuses_the_order_is_shown_not_hidden(
    browser: TestClient, stub: StubGateway
) -> None:
    stub.public_key = Signer("RSA2", _other_key()).public_key  # the bank has another key for us
    response = buy(browser, "puer")
    assert response.status_code == 502 and "SIGNATURE_INVALID" in response.text
    assert stub.orders == {}


def _other_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def returning(stub: StubGateway, result: dict[str, object]) -> str:
    """The path and query the pay page sends the buyer back to."""
    url = urlsplit(stub.return_url("http://testserver/return", result))
    return f"{url.path}?{url.query}"


def test_the_return_page_checks_the_result_and_asks_the_bank(
    browser: TestClient, stub: StubGateway
) -> None:
    number = bought(browser, stub, "longjing")
    paid = stub.settle(number, "paid")
    page = browser.get(returning(stub, paid))
    assert page.status_code == 200
    assert stub.seen[-1].method == "GET" and stub.seen[-1].target.endswith(number)  # queried
    assert "The return is not proof of payment" in page.text
    assert "The bank, asked just now: status <strong>paid</strong>" in page.text


def test_a_return_claiming_paid_is_not_believed_over_the_bank(
    browser: TestClient, stub: StubGateway
) -> None:
    number = bought(browser, stub, "puer")
    claim = {**stub.settle(number, "paid")}
    stub.settle(number, "created")  # the bank has no payment (yet)
    page = browser.get(returning(stub, claim))
    assert "status <strong>paid</strong>" in page.text  # what the pay page said
    assert "The bank, asked just now: status <strong>created</strong>" in page.text
    row = page.text.split(f"<code>{number}</code>", 1)[1].split("</tr>", 1)[0]
    assert "<strong>created</strong>" in row  # the order list keeps the bank's word


def test_a_forged_return_is_refused_without_asking_anything(
    browser: TestClient, stub: StubGateway
) -> None:
    number = bought(browser, stub, "longjing")
    path = returning(stub, stub.settle(number, "paid"))
    asked = len(stub.seen)
    forged = path.replace("signature=", "signature=AAAA")
    page = browser.get(forged)
    assert page.status_code == 400 and "Not signed by the bank" in page.text
    assert len(stub.seen) == asked


def test_a_notification_is_verified_recorded_once_and_acknowledged(
    browser: TestClient, stub: StubGateway
) -> None:
    number = bought(browser, stub, "tieguanyin", "escrow")
    headers, body = stub.notification("ev-1", stub.settle(number, "held"))
    for _ in range(2):  # at least once: the repeat is acknowledged and not counted again
        answer = browser.post("/notify", content=body, headers=headers)
        assert (answer.status_code, answer.text) == (200, "success")
    headers, body = stub.notification("ev-2", stub.settle(number, "paid"))
    assert browser.post("/notify", content=body, headers=headers).text == "success"
    row = browser.get("/").text.split(f"<code>{number}</code>", 1)[1].split("</tr>", 1)[0]
    assert "order.held, order.paid" in row and "<strong>paid</strong>" in row


def test_a_forged_notification_is_refused_and_changes_nothing(
    browser: TestClient, stub: StubGateway
) -> None:
    number = bought(browser, stub, "longjing")
    headers, body = stub.notification("ev-1", stub.settle(number, "created"))
    forged = body.replace(b'"status": "created"', b'"status": "paid"')
    answer = browser.post("/notify", content=forged, headers=headers)
    assert (answer.status_code, answer.text) == (401, "fail")
    row = browser.get("/").text.split(f"<code>{number}</code>", 1)[1].split("</tr>", 1)[0]
    assert "<strong>created</strong>" in row and "order." not in row


def test_the_shop_command_serves_on_port_8001_by_default() -> None:
    args = build_parser().parse_args(["shop"])
    assert (args.handler, args.port) == (cmd_shop, 8001)
    assert build_parser().parse_args(["shop", "--port", "9001"]).port == 9001


def test_the_shop_command_says_what_is_missing_instead_of_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EBANK_SHOP_MERCHANT_NO", raising=False)
    assert cmd_shop(build_parser().parse_args(["shop"])) == 2
    monkeypatch.setenv("EBANK_SHOP_MERCHANT_NO", MERCHANT_NO)
    monkeypatch.setenv("EBANK_SHOP_KEY_PATH", str(tmp_path / "missing.pem"))
    assert cmd_shop(build_parser().parse_args(["shop"])) == 2
    assert "EBANK_SHOP_KEY_PATH" in capsys.readouterr().err


# -- the shop at the real gateway --------------------------------------------------------------
class ToShop(Poster):
    """Hands the gateway's notices to the shop app rather than to the network."""

    def __init__(self, browser: TestClient) -> None:
        super().__init__(concurrency=1)
        self.browser = browser

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        answer = self.browser.post(urlsplit(url).path, content=body, headers=headers)
        if not 200 <= answer.status_code < 300:
            raise NotAcknowledged(f"HTTP {answer.status_code}")


def test_a_buyer_pays_the_shop_through_the_gateway(
    writer: Writer, engine: Engine, clock: FixedClock, tmp_path: Path, shop_key: str
) -> None:
    bank = GatewayBank(writer, engine, clock)
    seller = bank.merchant()
    writer.execute(merchants.add_key(merchant_id=seller.id, algorithm="RSA2",
                                     public_key=Signer("RSA2", shop_key).public_key,
                                     actor=STAFF))  # fmt: skip
    buyer = bank.buyer()
    (tmp_path / "shop-key.pem").write_text(shop_key)
    (tmp_path / "gateway-public.pem").write_text(signing.gateway_key().public_pem)
    settings = ShopSettings(
        gateway_url="http://testserver", merchant_no=seller.merchant.merchant_no,
        key_path=tmp_path / "shop-key.pem", gateway_key_path=tmp_path / "gateway-public.pem",
    )  # fmt: skip
    app = create_app(Settings(), engine=engine, writer=writer, clock=clock, vault=VAULT)
    with TestClient(app) as bank_api:
        shop = create_shop(settings, http=bank_api, clock=lambda: clock.now().timestamp())
        with TestClient(shop, follow_redirects=False) as browser:
            sent = buy(browser, "longjing")
            assert sent.status_code == 303
            assert sent.headers["location"].startswith("http://testserver/pay/")
            [number] = shop.state.shop.sales
            with engine.connect() as conn:
                order = orders.get(conn, merchant_id=seller.id, out_trade_no=number)
            assert (order.amount, order.mode) == (168_00, "instant")
            buyer.paid(order)
            poster = ToShop(browser)
            try:
                assert deliver_notices(writer, poster) == 1
            finally:
                poster.close()
            with engine.connect() as conn:
                order = orders.get(conn, merchant_id=seller.id, out_trade_no=number)
            back = urlsplit(returns.signed_return_url(order, now=clock.now()))
            page = browser.get(f"{back.path}?{back.query}")
    said = " ".join(page.text.split())
    assert "The bank, asked just now: status <strong>paid</strong>, 168.00 paid" in said
    row = page.text.split(f"<code>{number}</code>", 1)[1].split("</tr>", 1)[0]
    assert "order.paid" in row and "<strong>paid</strong>" in row
