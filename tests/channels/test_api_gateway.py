"""The merchant gateway's API over HTTP: the signed merchant API through the SDK, the merchant
portal's entry/review refunds, and the staff's onboarding and dispute decisions."""

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.core.clock import FixedClock, business_date
from ebank.core.writer import Writer
from ebank.gateway import merchants, orders, settlement, signing
from ebank.gateway.client import GatewayClient, GatewayError
from tests.channels.api_support import bearer, member, staff_login
from tests.corporate.support import CREDIT_CODE, add_operator, operator_login
from tests.gateway.support import YUAN, Buyer, GatewayBank, Shop
from tests.support import STAFF, VAULT


def _key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


KEY = _key()


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock) -> GatewayBank:
    return GatewayBank(writer, engine, clock)


@pytest.fixture
def shop(bank: GatewayBank) -> Shop:
    made = bank.merchant()
    bank.writer.execute(merchants.add_key(merchant_id=made.id, algorithm="RSA2",
                                          public_key=KEY[1], actor=STAFF))  # fmt: skip
    return made


@pytest.fixture
def client(api: TestClient, shop: Shop, clock: FixedClock) -> GatewayClient:
    return GatewayClient(
        "http://testserver", shop.merchant.merchant_no, KEY[0], signing.gateway_key().public_pem,
        http=api, clock=lambda: clock.now().timestamp(),
    )  # fmt: skip


def new_order(client: GatewayClient, number: str = "A-1", **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"amount": "88.00", "subject": "茶叶",
                              "return_url": "https://shop.example/back",
                              "notify_url": "https://shop.example/notify"}  # fmt: skip
    return client.create_order(out_trade_no=number, **{**fields, **extra})


def pay(bank: GatewayBank, buyer: Buyer, order: dict[str, Any]) -> None:
    token = order["pay_url"].rsplit("/", 1)[1]
    view = bank.writer.execute(orders.pay(VAULT, buyer.payment_by_token(token))).value()
    assert view.status in ("paid", "held", "authorised")


def test_an_order_is_created_queried_and_paid_through_the_signed_api(
    client: GatewayClient, bank: GatewayBank
) -> None:
    order = new_order(client)
    assert order["status"] == "created" and order["amount"] == "88.00"
    assert order["pay_url"].startswith("http://testserver/pay/")
    assert new_order(client)["trade_no"] == order["trade_no"]  # the same order again
    with pytest.raises(GatewayError) as conflict:
        new_order(client, amount="89.00")
    assert (conflict.value.status, conflict.value.code) == (409, "ORDER_CONFLICT")
    pay(bank, bank.buyer(), order)
    assert client.query_order("A-1")["status"] == "paid"


def test_bad_input_is_a_signed_400(client: GatewayClient) -> None:
    for extra in ({"amount": "1.5"}, {"amount": "-1.00"}, {"mode": "later"},
                  {"return_url": "javascript:alert(1)"}):  # fmt: skip
        with pytest.raises(GatewayError) as bad:
            new_order(client, **extra)
        assert bad.value.status == 400


def test_an_unsigned_or_tampered_request_is_refused(api: TestClient, shop: Shop) -> None:
    answer = api.post("/api/v1/gateway/orders", json={"out_trade_no": "X"})
    assert answer.status_code == 401 and answer.json()["code"] == "SIGNATURE_INVALID"
    assert "Ebank-Signature" in answer.headers  # even a refusal is signed by the gateway


def test_captures_voids_and_refunds_through_the_signed_api(
    client: GatewayClient, bank: GatewayBank
) -> None:
    buyer = bank.buyer()
    order = new_order(client, "AUTH-1", amount="500.00", mode="authorise")
    pay(bank, buyer, order)
    assert client.capture("AUTH-1", out_capture_no="C1", amount="200.00")["paid_amount"] == "200.00"
    with pytest.raises(GatewayError) as over:
        client.capture("AUTH-1", out_capture_no="C2", amount="300.01")
    assert over.value.code == "CAPTURE_EXCEEDS_AUTHORISATION"
    assert client.void("AUTH-1")["status"] == "paid"
    refund = client.refund("AUTH-1", out_refund_no="RF-1", amount="50.00", reason="少发一件")
    assert refund["status"] == "succeeded"
    assert client.query_refund("RF-1")["amount"] == "50.00"
    with pytest.raises(GatewayError) as too_much:
        client.refund("AUTH-1", out_refund_no="RF-2", amount="150.01", reason="")
    assert too_much.value.code == "REFUND_EXCEEDS_PAID"
    assert buyer.balance() == 100_000 * YUAN - 150 * YUAN


def test_an_unpaid_order_can_be_closed_and_no_other_merchants_order_is_seen(
    client: GatewayClient, bank: GatewayBank
) -> None:
    new_order(client, "C-1")
    assert client.close_order("C-1")["status"] == "closed"
    with pytest.raises(GatewayError) as missing:
        client.query_order("NOT-MINE")
    assert missing.value.status == 404


def test_notices_are_listed_and_resent(client: GatewayClient, bank: GatewayBank) -> None:
    order = new_order(client, "N-1")
    pay(bank, bank.buyer(), order)
    [notice] = client.notifications(order["trade_no"])
    assert notice["type"] == "order.paid" and notice["trade_no"] == order["trade_no"]
    [again] = client.resend_notification(notice["id"])
    assert again["id"] == notice["id"]
    with pytest.raises(GatewayError) as missing:
        client.resend_notification("evt_not_a_notice")
    assert missing.value.status == 404


def test_the_entry_user_asks_and_the_review_user_approves_a_refund(
    api: TestClient, client: GatewayClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    buyer = bank.buyer()
    order = new_order(client, "P-1", amount="60.00")
    pay(bank, buyer, order)
    entry = add_operator(bank.writer, shop.merchant.customer_id, "entry.li", "maker")
    review = add_operator(bank.writer, shop.merchant.customer_id, "review.wang", "checker")
    as_entry = bearer(operator_login(api, clock, shop.credit_code, entry))
    as_review = bearer(operator_login(api, clock, shop.credit_code, review))
    asked = api.post("/api/v1/merchant/refunds", headers=as_entry, json={
        "out_trade_no": "P-1", "out_refund_no": "PR-1", "amount": "60.00", "reason": "退货",
    })  # fmt: skip
    assert asked.status_code == 200, asked.text
    refund_id = asked.json()["id"]
    # The review user cannot ask; the entry user cannot approve.
    refused = api.post("/api/v1/merchant/refunds", headers=as_review, json={
        "out_trade_no": "P-1", "out_refund_no": "PR-2", "amount": "1.00",
    })  # fmt: skip
    assert refused.status_code == 403
    denied = api.post(f"/api/v1/merchant/refunds/{refund_id}/approve", headers=as_entry,
                      json={"code": entry.code(clock)})  # fmt: skip
    assert denied.status_code == 403 and buyer.balance() == 100_000 * YUAN - 60 * YUAN
    queue = api.get("/api/v1/merchant/refunds?status=requested", headers=as_review).json()
    assert [r["id"] for r in queue] == [refund_id]
    approved = api.post(f"/api/v1/merchant/refunds/{refund_id}/approve", headers=as_review,
                        json={"code": review.code(clock)})  # fmt: skip
    assert approved.json()["status"] == "succeeded" and buyer.balance() == 100_000 * YUAN
    seen = api.get(f"/api/v1/merchant/orders/{order['trade_no']}", headers=as_review).json()
    assert seen["status"] == "refunded" and [e["what"] for e in seen["events"]][-1] == "refunded"
    listed = {mode: api.get(f"/api/v1/merchant/orders?mode={mode}", headers=as_review)
              for mode in ("instant", "escrow", "cash")}  # fmt: skip
    assert [o["trade_no"] for o in listed["instant"].json()] == [order["trade_no"]]
    assert listed["escrow"].json() == [] and listed["cash"].status_code == 400


def test_an_operator_of_an_enterprise_that_is_no_merchant_has_no_portal(
    api: TestClient, bank: GatewayBank, clock: FixedClock
) -> None:
    enterprise = bank.enterprise()
    login = add_operator(bank.writer, enterprise, "ops.a", "maker")
    headers = bearer(operator_login(api, clock, CREDIT_CODE, login))
    assert api.get("/api/v1/merchant/orders", headers=headers).status_code == 403


def test_staff_onboard_a_merchant_and_decide_a_dispute(
    api: TestClient, client: GatewayClient, bank: GatewayBank, clock: FixedClock
) -> None:
    member(bank.writer, "super1", "supervisor")
    supervisor = bearer(staff_login(api, "super1"))
    enterprise = bank.enterprise()
    account = bank.account(enterprise, tier="corporate", funds=0)
    made = api.post("/api/v1/staff/gateway/merchants", headers=supervisor, json={
        "customer_id": enterprise, "name": "<script>alert(1)</script>", "industry": "retail",
        "settlement_account": account.number, "fee_plan": "B2B-FIXED", "cycle": "tn",
        "settle_days": 1})  # fmt: skip
    assert made.status_code == 200, made.text
    assert made.json()["merchant_no"].startswith("M")
    again = api.post("/api/v1/staff/gateway/merchants", headers=supervisor, json={
        "customer_id": enterprise, "name": "x", "industry": "retail",
        "settlement_account": account.number, "fee_plan": "B2B-FIXED", "cycle": "t0_eod",
    })  # fmt: skip
    assert again.status_code == 409
    buyer = bank.buyer()
    order = new_order(client, "E-1", mode="escrow")
    pay(bank, buyer, order)
    bank.writer.execute(orders.dispute(customer_id=buyer.id, trade_no=order["trade_no"],
                                       reason="没收到", channel="online"))  # fmt: skip
    decided = api.post(
        f"/api/v1/staff/gateway/disputes/{order['trade_no']}/decision",
        headers=supervisor,
        json={"outcome": "refund", "note": "物流丢件"},
    )
    assert decided.status_code == 200 and decided.json()["status"] == "refunded"
    assert buyer.balance() == 100_000 * YUAN
    # Orders, movements, ledger and settlements agree.
    assert api.get("/api/v1/staff/gateway/reconciliation", headers=supervisor).json() == []
    today = business_date(clock.now())
    stats = api.get(f"/api/v1/staff/gateway/reports?from={today}&to={today}&by=merchant",
                    headers=supervisor)  # fmt: skip
    assert stats.json()["totals"]["count"] == 1


def test_settlements_reconciliation_files_and_reports(
    api: TestClient, client: GatewayClient, bank: GatewayBank, shop: Shop, clock: FixedClock
) -> None:
    order = new_order(client, "S-1", amount="200.00")
    pay(bank, bank.buyer(), order)
    today = business_date(clock.now())
    clock.advance(timedelta(days=1))
    settlement.end_of_day(bank.writer, business_day=today)
    [settled] = client.settlements(today, today)
    assert (settled["gross"], settled["fees"], settled["net"]) == ("200.00", "0.50", "199.50")
    assert [i["trade_no"] for i in settled["items"]] == [order["trade_no"]]
    file = client.reconciliation(today).decode("utf-8-sig")
    assert order["trade_no"] in file and "S-1" in file
    review = add_operator(bank.writer, shop.merchant.customer_id, "review.wang", "checker")
    headers = bearer(operator_login(api, clock, shop.credit_code, review))
    stats = api.get(f"/api/v1/merchant/reports?from={today}&to={today}&by=mode&by=funding",
                    headers=headers).json()  # fmt: skip
    assert stats["groups"] == [{"key": {"mode": "instant", "funding": "debit"}, "count": 1,
                                "amount": "200.00", "refunds": "0.00", "fees": "0.50",
                                "flagged": False}]  # fmt: skip
    portal_file = api.get(f"/api/v1/merchant/reconciliation/{today}", headers=headers)
    assert portal_file.content.decode("utf-8-sig") == file
