"""The merchant portal in a real browser: a buyer pays the example shop; the shop's entry user
(录入) asks for a refund in the portal, and its review user (复核), another person on their phone,
approves it with their token; the order shows refunded and the buyer has the money back."""

import re

from playwright.sync_api import Page, expect

from ebank import demo
from ebank.core.money import parse_minor
from ebank.shop.app import PRODUCTS
from tests.browser.support import DemoBank, next_token_code, screenshot, token_code
from tests.browser.test_pay_page_browser import buy, log_in

BUYER = demo.CUSTOMERS[0]
TEA = PRODUCTS["longjing"]
ENTERPRISE = next(c for c in demo.CUSTOMERS if c.kind == "enterprise")
ENTRY, REVIEW = (username for username, _name, _roles in demo.DEMO_OPERATORS)


def paid_order(page: Page, bank: DemoBank) -> None:
    buy(page, bank, TEA)
    log_in(page, bank, BUYER.mobile)
    page.get_by_role("radio", name=re.compile("借记卡")).check()
    page.get_by_role("radio", name=re.compile("仅交易密码")).check()
    page.get_by_role("textbox", name="交易密码").fill(bank.pin)
    page.get_by_role("button", name=re.compile("确认支付")).click()
    expect(page).to_have_url(re.compile(re.escape(f"{bank.shop_url}/return?")))


def merchant_login(page: Page, bank: DemoBank, username: str) -> str:
    """Log in to the portal; the token code spent doing it."""
    page.goto(f"{bank.bank_url}/merchant/login")
    page.get_by_label("统一社会信用代码").fill(ENTERPRISE.id_number)
    page.get_by_label("操作员用户名").fill(username)
    page.get_by_label("登录密码").fill(bank.password)
    page.get_by_role("button", name="下一步").click()
    code = token_code(bank.operator_tokens[username])
    page.get_by_role("textbox", name="动态口令").fill(code)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{bank.bank_url}/merchant/")
    return code


def test_an_entry_user_asks_for_a_refund_and_a_review_user_approves_it(
    page: Page, phone: Page, demo_bank: DemoBank
) -> None:
    paid_order(page, demo_bank)
    before = demo_bank.balance(BUYER.mobile)

    merchant_login(page, demo_bank, ENTRY)
    page.locator("tbody tr").first.get_by_role("link").first.click()
    page.get_by_label("退款金额").fill(TEA.price)
    page.get_by_label("退款原因").fill("买家七天无理由退货")
    page.get_by_role("button", name="提交退款申请").click()
    expect(page.get_by_role("status")).to_be_visible()
    assert demo_bank.balance(BUYER.mobile) == before  # nothing moves before the review
    screenshot(page, "merchant-refund-requested")

    spent = merchant_login(phone, demo_bank, REVIEW)
    phone.get_by_role("link", name="退款").first.click()
    phone.get_by_role("link", name="待我复核的退款").click()
    phone.locator("tbody tr").first.get_by_role("link").first.click()
    code = next_token_code(demo_bank.operator_tokens[REVIEW], spent)
    phone.get_by_role("textbox", name="动态口令").fill(code)
    phone.get_by_role("button", name="审批通过").click()
    expect(phone.get_by_role("status")).to_be_visible()
    screenshot(phone, "merchant-refund-approved-phone")

    assert demo_bank.balance(BUYER.mobile) == before + parse_minor(TEA.price)
    page.reload()
    expect(page.locator("main")).to_contain_text("已退款")
    screenshot(page, "merchant-order-refunded")
