"""The merchant portal's pages: operators log in with the credit code, password and token;
orders are searched; an entry user asks for a refund and a review user, another person,
approves it; settlements, reconciliation files, notices and reports with charts."""

import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.core.clock import FixedClock, business_date
from ebank.core.writer import Writer
from ebank.gateway import settlement
from ebank.gateway.models import OrderView
from tests.channels.web.operator_support import operator_pages
from tests.channels.web.support import Pages
from tests.corporate.support import CREDIT_CODE, Login, add_operator
from tests.gateway.support import YUAN, GatewayBank, Shop


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock) -> GatewayBank:
    return GatewayBank(writer, engine, clock)


@pytest.fixture
def shop(bank: GatewayBank) -> Shop:
    return bank.merchant()


def entry_user(api: TestClient, bank: GatewayBank, shop: Shop, clock: FixedClock,
               *roles: str) -> tuple[Login, Pages]:  # fmt: skip
    login = add_operator(bank.writer, shop.merchant.customer_id, "entry.li", *(roles or ("maker",)))
    return login, operator_pages(api, clock, "merchant", shop.credit_code, login)


def request_refund(pages: Pages, order: OrderView, amount: str) -> str:
    """The entry user's refund form sent; the page answered."""
    page = pages.get(f"/merchant/orders/{order.trade_no}")
    number = re.search(r'name="out_refund_no" value="([^"]+)"', page.text)
    assert number, page.text
    return pages.submit(f"/merchant/orders/{order.trade_no}",
                        f"/merchant/orders/{order.trade_no}/refunds", amount=amount,
                        reason="退货", out_refund_no=number.group(1)).text  # fmt: skip


def test_an_operator_logs_in_and_finds_their_orders_but_not_another_merchants(
    api: TestClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    mine = bank.buyer().paid(shop.order(60 * YUAN, out_trade_no="MINE-1"))
    theirs = bank.buyer().paid(bank.merchant().order(70 * YUAN, out_trade_no="THEIRS-1"))
    _login, pages = entry_user(api, bank, shop, clock)
    home = pages.last
    assert home is not None and home.status_code == 200
    assert mine.trade_no in home.text and "¥60.00" in home.text and "已支付" in home.text
    found = pages.get("/merchant/?number=MINE-1")
    assert mine.trade_no in found.text and theirs.trade_no not in found.text
    today = business_date(clock.now())
    dated = pages.get(f"/merchant/?from={today}&to={today}&status=paid")
    assert mine.trade_no in dated.text and theirs.trade_no not in dated.text
    assert mine.trade_no not in pages.get(f"/merchant/?to={today - timedelta(days=1)}").text
    held = shop.order(80 * YUAN, "escrow", out_trade_no="MINE-2")
    by_mode = pages.get("/merchant/?mode=escrow")
    assert held.trade_no in by_mode.text and mine.trade_no not in by_mode.text
    assert '<option value="escrow" selected>' in by_mode.text
    assert "THEIRS-1" not in pages.get(f"/merchant/?number={theirs.trade_no}").text
    other = pages.get(f"/merchant/orders/{theirs.trade_no}")
    assert other.status_code == 404 and "THEIRS-1" not in other.text
    bad = pages.get("/merchant/?from=2026-13-45")
    assert bad.status_code == 400 and 'id="from-error"' in bad.text


def test_an_operator_of_an_enterprise_that_is_no_merchant_is_refused(
    api: TestClient, bank: GatewayBank, clock: FixedClock
) -> None:
    login = add_operator(bank.writer, bank.enterprise(), "ops.a", "maker")
    pages = operator_pages(api, clock, "merchant", CREDIT_CODE, login)
    assert pages.last is not None and pages.last.status_code == 403
    assert "您无权办理该业务" in pages.last.text


def test_the_entry_user_requests_a_refund_and_only_another_review_user_approves_it(
    api: TestClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    buyer = bank.buyer()
    order = buyer.paid(shop.order(60 * YUAN, out_trade_no="P-1"))
    # The entry user holds both roles: still they cannot approve what they asked for.
    entry, as_entry = entry_user(api, bank, shop, clock, "maker", "checker")
    asked = request_refund(as_entry, order, "60")
    assert "待复核" in asked and as_entry.last is not None
    refund_page = as_entry.last.url.path
    own = as_entry.submit(refund_page, refund_page + "/approve", code=entry.code(clock))
    assert own.status_code == 403 and "复核人与录入人不能是同一人" in own.text
    assert buyer.balance() == 100_000 * YUAN - 60 * YUAN
    review = add_operator(bank.writer, shop.merchant.customer_id, "review.wang", "checker")
    as_review = operator_pages(api, clock, "merchant", shop.credit_code, review)
    queue = as_review.get("/merchant/refunds?status=requested")
    assert refund_page in queue.text
    approved = as_review.submit(refund_page, refund_page + "/approve", code=review.code(clock))
    assert approved.status_code == 200 and "已退款" in approved.text
    assert buyer.balance() == 100_000 * YUAN
    seen = as_review.get(f"/merchant/orders/{order.trade_no}")
    assert re.search(r'id="order-status">已退款<', seen.text)


def test_a_refund_above_what_was_paid_is_refused_beside_the_amount(
    api: TestClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    order = bank.buyer().paid(shop.order(60 * YUAN))
    _login, pages = entry_user(api, bank, shop, clock)
    for amount, status in (("60.01", 409), ("-5", 400), ("1e3", 400)):
        answer = request_refund(pages, order, amount)
        assert pages.last is not None and pages.last.status_code == status, amount
        assert 'id="amount-error"' in answer and f'value="{amount}"' in answer
    assert "退款金额超过可退金额 60.00" in request_refund(pages, order, "60.01")
    assert shop.refresh(order).refunded_amount == 0


def test_a_forged_form_changes_nothing(
    api: TestClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    order = bank.buyer().paid(shop.order(60 * YUAN))
    _login, pages = entry_user(api, bank, shop, clock)
    action = f"/merchant/orders/{order.trade_no}/refunds"
    fields = {"amount": "10.00", "out_refund_no": "F-1"}
    assert pages.client.post(action, data=fields).status_code == 403
    assert pages.client.post(action, data={"csrf": "forged", **fields}).status_code == 403
    with TestClient(api.app) as stranger:  # another visitor's own token is no use here
        token = re.search(r'name="csrf" value="([^"]+)"', stranger.get("/merchant/login").text)
        assert token
        assert pages.client.post(action, data={"csrf": token.group(1), **fields}).status_code == 403
    assert shop.refresh(order).refunded_amount == 0


def test_reports_settlements_reconciliation_and_notices_show_the_merchants_business(
    api: TestClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    order = bank.buyer().paid(shop.order(200 * YUAN, out_trade_no="S-1"))
    today = business_date(clock.now())
    clock.advance(timedelta(days=1))
    settlement.end_of_day(bank.writer, business_day=today)
    _login, pages = entry_user(api, bank, shop, clock)
    report = pages.get(f"/merchant/reports?from={today}&to={today}&by=mode")
    assert report.status_code == 200
    assert 'data-chart="bar" data-source="report-data"' in report.text
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                     report.text)  # fmt: skip
    assert data and json.loads(data.group(1)) == {"labels": ["即时支付"], "series": [
        {"name": "交易金额", "values": ["200.00"]}, {"name": "退款", "values": ["0.00"]},
        {"name": "手续费", "values": ["0.50"]},
    ]}  # fmt: skip
    assert "vendor/echarts/echarts.min.js" in report.text and "static/charts.js" in report.text
    by_day = pages.get(f"/merchant/reports?from={today}&to={today}&by=day")
    assert 'data-chart="line"' in by_day.text
    settled = pages.get(f"/merchant/settlements?from={today}&to={today}")
    assert "¥199.50" in settled.text and order.trade_no in settled.text
    file = pages.get(f"/merchant/reconciliation/file?day={today}")
    assert file.headers["content-type"].startswith("text/csv")
    assert "S-1" in file.content.decode("utf-8-sig")
    log = pages.get("/merchant/notifications")
    notice = re.search(r'action="(/merchant/notifications/[^"]+/resend)"', log.text)
    assert notice and order.trade_no in log.text
    again = pages.submit("/merchant/notifications", notice.group(1))
    assert again.status_code == 200 and "将立即重新发送" in again.text
