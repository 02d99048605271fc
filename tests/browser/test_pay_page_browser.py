"""The pay page (收银台) in a real browser: a buyer comes from the example shop, logs in with
an SMS code (texted instead of the token's), pays with a card and the PIN, and is back at the
shop, which the bank's signed notification and query tell that the order is paid. And the page
fits a phone's screen, where the buyer logs in with the token."""

import re
import time
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from ebank import demo
from ebank.core.crypto import mask_name
from ebank.core.money import parse_minor
from ebank.shop.app import PRODUCTS, Product
from tests.browser.support import WAIT, DemoBank, screenshot

ZHANG_SAN = demo.CUSTOMERS[0]  # logs in with his mobile number, 13800138001
TEA = PRODUCTS["longjing"]  # ¥168.00, paid at once (no escrow)


def buy(page: Page, bank: DemoBank, product: Product) -> None:
    """At the shop, buy `product`; the shop sends the browser on to the bank's pay page."""
    page.goto(bank.shop_url)
    offer = page.locator(".products li").filter(has_text=product.name)
    offer.get_by_role("button", name="立即购买").click()
    expect(page).to_have_url(re.compile(re.escape(f"{bank.bank_url}/pay/")))
    expect(page.locator(".order .amount")).to_have_text(f"¥{product.price}")


def log_in(page: Page, bank: DemoBank, mobile: str, *, token: bool = False) -> None:
    """The pay page's login: mobile number and password, then (every demo person holds a
    token) the code the customer's token shows with `token`, or else "text me a code instead"
    and the code texted to the phone."""
    page.get_by_label("证件号码或手机号").fill(mobile)
    page.get_by_label("登录密码").fill(bank.password)
    page.get_by_role("button", name="下一步").click()
    expect(page.get_by_role("heading", name="验证身份")).to_be_visible()
    if token:
        code = bank.token_code(bank.customer_id(mobile))
    else:
        asked = datetime.now(UTC)
        page.get_by_role("button", name="改用短信验证码").click()
        code = bank.sms_code(mobile, after=asked)
    page.get_by_role("textbox", name="动态口令" if token else "短信验证码").fill(code)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="选择银行卡并确认")).to_be_visible()


def test_a_customer_pays_a_shop_order_and_the_shop_sees_it_paid(
    page: Page, demo_bank: DemoBank
) -> None:
    before = demo_bank.balance(ZHANG_SAN.mobile)
    buy(page, demo_bank, TEA)
    expect(page.locator(".order .subject")).to_have_text(TEA.name)
    log_in(page, demo_bank, ZHANG_SAN.mobile)

    expect(page.locator(".payer strong")).to_have_text(mask_name(ZHANG_SAN.name))
    card = page.get_by_role("radio", name=re.compile("借记卡"))
    card.check()
    page.get_by_role("radio", name=re.compile("仅交易密码")).check()
    page.get_by_role("textbox", name="交易密码").fill(demo_bank.pin)
    screenshot(page, "pay-page-confirm")
    page.get_by_role("button", name=re.compile("确认支付")).click()

    expect(page).to_have_url(re.compile(re.escape(f"{demo_bank.shop_url}/return?")))
    back = page.locator(".notice.returned")
    expect(back).to_contain_text("您已从银行返回")
    signed = re.compile(r"订单 (TEA\w+)，状态\s+paid。")
    expect(back).to_contain_text(signed)  # what the pay page's signed return said
    expect(back).to_contain_text(f"状态 paid，已付 {TEA.price} 元")  # the shop's own query
    found = signed.search(back.inner_text())
    assert found is not None
    sale = page.locator("tbody tr").filter(has_text=found.group(1))
    expect(sale).to_contain_text("paid")
    assert demo_bank.balance(ZHANG_SAN.mobile) == before - parse_minor(TEA.price)

    # The bank's signed notification reaches the shop on a thread of its own: look again.
    deadline = time.monotonic() + WAIT
    while "order.paid" not in sale.inner_text():
        assert time.monotonic() < deadline, "the shop was never notified"
        page.wait_for_timeout(200)
        page.reload()
    screenshot(page, "pay-page-paid-back-at-shop")


def test_the_pay_page_fits_a_phone_screen_at_each_step(phone: Page, demo_bank: DemoBank) -> None:
    buy(phone, demo_bank, TEA)
    assert _scroll_width(phone) <= 375, "the login step scrolls sideways"
    log_in(phone, demo_bank, ZHANG_SAN.mobile, token=True)
    assert _scroll_width(phone) <= 375, "the card step scrolls sideways"
    screenshot(phone, "pay-page-phone")


def _scroll_width(page: Page) -> int:
    """How wide the page is laid out once it has loaded: measured mid-load, a fresh-clone
    run once saw the inputs two pixels past the screen, which no finished page showed."""
    page.wait_for_load_state("load")
    return int(page.evaluate("document.documentElement.scrollWidth"))
