"""The staff console in a real browser: a supervisor logs in with the token, resolves a risk
case held for review, and finds the decision in the audit log, whose chain verifies."""

from playwright.sync_api import Page, expect

from ebank import demo
from ebank.accounts.service import accounts_of
from ebank.core.writer import Writer
from ebank.risk.models import Context
from tests.browser.support import DemoBank, screenshot, token_code
from tests.risk.holds import hold_for_review

SUPERVISOR = "super1"


def held_case(bank: DemoBank) -> int:
    """¥800 from 张三 to 李四 held for review, as risk control holds a payment; the case id."""
    payer, payee = demo.CUSTOMERS[0], demo.CUSTOMERS[1]
    writer = Writer(bank.engine)
    try:
        ids = bank.customer_id(payer.mobile), bank.customer_id(payee.mobile)
        with bank.engine.connect() as conn:
            paying, paid = (accounts_of(conn, customer_id)[0] for customer_id in ids)
        ctx = Context("payment", ids[0], "online", amount=80_000,
                      account_id=paying.ledger_account_id, payee=f"acct:{paid.ledger_account_id}",
                      payee_account_id=paid.ledger_account_id)  # fmt: skip
        return hold_for_review(writer, ctx, paying, paid)[1]
    finally:
        writer.close()


def console_login(page: Page, bank: DemoBank, username: str) -> None:
    page.goto(f"{bank.bank_url}/console/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("登录密码").fill(bank.staff_password)
    page.get_by_role("button", name="下一步").click()
    page.get_by_role("textbox", name="动态口令").fill(token_code(bank.staff_tokens[username]))
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{bank.bank_url}/console/")


def test_a_supervisor_resolves_a_risk_case_and_finds_it_in_the_audit_log(
    page: Page, demo_bank: DemoBank
) -> None:
    case_id = held_case(demo_bank)
    console_login(page, demo_bank, SUPERVISOR)
    page.get_by_role("link", name="风险案件").first.click()
    page.get_by_role("link", name=f"#{case_id}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(str(case_id))
    page.get_by_label("处理结果").select_option("release")
    page.locator("#note").fill("客户电话确认本人操作")
    page.get_by_role("button", name="确认").click()
    expect(page.get_by_role("status")).to_be_visible()
    screenshot(page, "console-risk-case-released")

    page.get_by_role("link", name="审计日志").first.click()
    page.get_by_label("操作", exact=True).fill("risk.case")
    page.get_by_role("button", name="查询").click()
    row = (
        page.locator("tbody tr")
        .filter(has_text=f"risk_case:{case_id}")
        .filter(has_text="risk.case.release")
    )
    expect(row).to_have_count(1)
    page.get_by_role("button", name="校验审计链").click()
    expect(page.locator("main")).to_contain_text("审计链完整")
    screenshot(page, "console-audit-log")
