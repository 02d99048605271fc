"""Online banking in a real browser: a customer logs in with the SMS code (texted instead of
asking for the token's), saves a payee,
transfers to them, sees the balance change and downloads the e-receipt; the English switch;
and a form forged on another page is refused."""

from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from ebank import demo
from ebank.accounts.service import accounts_of
from ebank.channels.web import i18n
from tests.browser.support import DemoBank, screenshot

LI_SI = demo.CUSTOMERS[1]
WANG_WU = demo.CUSTOMERS[2]  # logs in for the tests that move no money
AMOUNT = 12_345  # ¥123.45


def bank_login(page: Page, bank: DemoBank, mobile: str) -> None:
    """The password; then, asked for the token's code (every demo person holds a token), "text
    me a code instead" and the code texted to the phone (read from the demo's inbox): the tests
    log the same people in seconds apart, and a token takes each of its codes once."""
    page.goto(f"{bank.bank_url}/bank/")  # no session: to the login page, and back after it
    page.get_by_label("证件号码或手机号").fill(mobile)
    page.get_by_label("登录密码").fill(bank.password)
    page.get_by_role("button", name="下一步").click()
    expect(page.get_by_role("heading", name="动态口令")).to_be_visible()
    asked = datetime.now(UTC)
    page.get_by_role("button", name="改用短信验证码").click()
    page.get_by_role("textbox", name="短信验证码").fill(bank.sms_code(mobile, after=asked))
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{bank.bank_url}/bank/")


def text_me_a_code(page: Page, bank: DemoBank, mobile: str) -> None:
    asked = datetime.now(UTC)
    page.get_by_role("button", name="获取短信验证码").click()
    page.get_by_role("textbox", name="验证码").fill(bank.sms_code(mobile, after=asked))


def account_of(bank: DemoBank, mobile: str) -> str:
    with bank.engine.connect() as conn:
        return accounts_of(conn, bank.customer_id(mobile))[0].number


def balance_shown(page: Page) -> str:
    return page.locator("table.accounts tbody tr").first.locator("td.amount").first.inner_text()


def test_a_customer_transfers_to_a_payee_sees_the_balance_change_and_gets_the_receipt(
    page: Page, demo_bank: DemoBank
) -> None:
    payer = demo.CUSTOMERS[0].mobile
    before = demo_bank.balance(payer)
    bank_login(page, demo_bank, payer)
    i18n.use("zh_CN")
    expect(page.locator("table.accounts")).to_contain_text(i18n.money(before))

    page.get_by_role("link", name="收款人").first.click()
    page.get_by_label("收款账号或卡号").fill(account_of(demo_bank, LI_SI.mobile))
    page.get_by_label("收款人户名").fill(LI_SI.name)
    text_me_a_code(page, demo_bank, payer)
    page.get_by_role("button", name="保存收款人").click()
    expect(page.get_by_role("status")).to_be_visible()

    page.locator("tbody tr").filter(has_text=LI_SI.name).get_by_role("link", name="转账").click()
    page.get_by_label("金额（元）").fill("123.45")
    page.get_by_role("button", name="下一步").click()
    expect(page.locator("main")).to_contain_text("¥123.45")
    page.get_by_role("radio", name="短信验证码").check()
    text_me_a_code(page, demo_bank, payer)
    page.get_by_role("button", name="确认转账").click()
    expect(page.locator("main")).to_contain_text("¥123.45")
    screenshot(page, "bank-transfer-done")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="下载电子回单（PDF）").click()
    receipt = downloading.value
    assert receipt.suggested_filename.endswith(".pdf")
    with open(receipt.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    page.get_by_role("link", name="我的账户").first.click()
    assert demo_bank.balance(payer) == before - AMOUNT
    expect(page.locator("table.accounts")).to_contain_text(i18n.money(before - AMOUNT))
    screenshot(page, "bank-home-after-transfer")


def test_the_english_switch_turns_the_page_to_english_and_back(
    page: Page, demo_bank: DemoBank
) -> None:
    bank_login(page, demo_bank, WANG_WU.mobile)
    expect(page.get_by_role("heading", level=1)).to_have_text("我的账户")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My accounts")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    screenshot(page, "bank-home-english")
    page.get_by_role("link", name="中文").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的账户")


def test_a_form_forged_on_another_page_is_refused_and_changes_nothing(
    page: Page, demo_bank: DemoBank
) -> None:
    bank_login(page, demo_bank, WANG_WU.mobile)
    before = demo_bank.balance(WANG_WU.mobile)
    # A page elsewhere that posts a transfer form to the bank with a guessed token.
    page.set_content(f"""
      <form method="post" action="{demo_bank.bank_url}/bank/logout">
        <input type="hidden" name="csrf" value="guessed">
        <button type="submit">Win a prize</button>
      </form>""")
    page.get_by_role("button", name="Win a prize").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("操作被拒绝")
    screenshot(page, "bank-forged-form-refused")
    page.goto(f"{demo_bank.bank_url}/bank/")
    expect(page).to_have_url(f"{demo_bank.bank_url}/bank/")  # still logged in
    assert demo_bank.balance(WANG_WU.mobile) == before


def test_a_link_from_another_site_opens_the_page_still_signed_in(
    page: Page, demo_bank: DemoBank
) -> None:
    """The browser withholds the SameSite=Strict cookie on a cross-site link; the bank asks
    again from its own page, so the customer lands on the page, still logged in."""
    bank_login(page, demo_bank, WANG_WU.mobile)
    elsewhere = f'<a href="{demo_bank.bank_url}/bank/payments">my payments</a>'
    page.goto(f"data:text/html,{elsewhere}")
    page.get_by_role("link", name="my payments").click()
    expect(page).to_have_url(f"{demo_bank.bank_url}/bank/payments")
    expect(page.get_by_role("heading", level=1)).to_have_text("交易记录")
    page.goto(f"{demo_bank.bank_url}/bank/")
    expect(page).to_have_url(f"{demo_bank.bank_url}/bank/")  # the session lives on


def test_every_page_of_the_nav_opens_without_an_error(page: Page, demo_bank: DemoBank) -> None:
    """Each page of online banking, reached by its link, draws with no console error (a
    policy violation would be one); the newer ones are kept for the tour."""
    bank_login(page, demo_bank, WANG_WU.mobile)
    for link, heading, shot in (
        ("生活缴费", "生活缴费", "bank-bills"),
        ("预约转账", "预约转账", "bank-scheduled"),
        ("电子回单", "电子回单", "bank-receipts"),
        ("消息中心", "消息中心", "bank-messages"),
        ("安全设置", "安全设置", "bank-security"),
        ("银行卡", "我的银行卡", None),
        ("网上支付", "网上支付", None),
    ):
        page.locator("nav.area-nav").get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        if shot:
            screenshot(page, shot)
