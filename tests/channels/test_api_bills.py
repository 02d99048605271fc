"""Bill payment through the API: the billers, inquiry, SMS code, pay, the biller's answer in my
history and my receipt. The attacks: a replayed key pays once, a code for another amount
fails, someone else's account and payment are unknown, bad bodies change nothing. SQLite and
PostgreSQL."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.accounts.service import get_account
from ebank.bills import service as bills
from ebank.bills.tables import bill_payments
from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from tests.channels.api_support import (
    ONLINE,
    account_with_money,
    bearer,
    count,
    customer,
    login,
    sms_codes,
)
from tests.support import STAFF, VAULT

API = "/api/v1"
HOME = "0591234567"


class Customer:
    def __init__(self, api: TestClient, engine: Engine, clock: FixedClock, writer: Writer,
                 n: int) -> None:  # fmt: skip
        self.api, self.engine = api, engine
        self.person = customer(writer, n, enrolled=ONLINE)
        self.account = account_with_money(writer, self.person, [5_000_00])
        self.headers = bearer(login(api, clock, self.person))

    def post(self, path: str, body: dict[str, Any], **headers: str) -> Any:
        return self.api.post(f"{API}{path}", json=body, headers={**self.headers, **headers})

    def get(self, path: str, **headers: str) -> Any:
        return self.api.get(f"{API}{path}", headers={**self.headers, **headers})

    def bill(self, number: str = HOME) -> dict[str, Any]:
        found = self.post("/me/bills/inquire", {"biller": "FZPOWER", "number": number})
        assert found.status_code == 200, found.json()
        [bill] = found.json()["bills"]
        return dict(bill)

    def body(self, bill: dict[str, Any], number: str = HOME, **extra: Any) -> dict[str, Any]:
        return {"from_account": self.account, "biller": "FZPOWER", "number": number,
                "bill_id": bill["bill_id"], "amount": bill["amount"], **extra}  # fmt: skip

    def code_for(self, body: dict[str, Any]) -> str:
        sent = self.post("/me/bills/sms-code", body)
        assert sent.status_code == 200, sent.json()
        return sms_codes(self.engine, self.person.id)[-1]

    def pay(self, body: dict[str, Any], key: str, **confirm: Any) -> Any:
        return self.post("/me/bills/pay", {**body, **confirm}, **{"Idempotency-Key": key})

    def balance(self) -> int:
        with self.engine.connect() as conn:
            return get_account(conn, number=self.account).balance


@pytest.fixture
def billers(writer: Writer) -> None:
    for code, name, category in (("FZPOWER", "国网福州供电公司 (模拟)", "electricity"),
                                 ("CMFJ", "中国移动福建公司 (模拟)", "phone")):  # fmt: skip
        writer.execute(
            bills.register_biller(
                code=code, name_zh=name, name_en=f"{code} (simulated)", category=category,
                actor=STAFF,
            )
        )  # fmt: skip


@pytest.fixture
def alice(
    api: TestClient, engine: Engine, clock: FixedClock, writer: Writer, billers: None
) -> Customer:
    return Customer(api, engine, clock, writer, 1)


def test_a_bill_is_looked_up_paid_once_by_code_and_confirmed_with_a_receipt(
    api: TestClient, alice: Customer, writer: Writer
) -> None:
    listed = api.get(f"{API}/billers").json()["billers"]
    assert [(b["code"], b["category"]) for b in listed] == [
        ("FZPOWER", "electricity"), ("CMFJ", "phone"),
    ]  # fmt: skip
    assert listed[1]["topup_amounts"][0] == "10.00" and listed[0]["topup_amounts"] == []
    bill = alice.bill()
    assert (bill["period"], bill["paid"]) == ("2026-10", False)
    body = alice.body(bill)
    made = alice.pay(body, "b-1", method="sms", code=alice.code_for(body))
    assert made.status_code == 201, made.json()
    paid = made.json()
    assert (paid["status"], paid["amount"], paid["number"], paid["failure"]) == (
        "pending_biller", bill["amount"], "******4567", None,
    )  # fmt: skip
    again = alice.pay(body, "b-1", method="sms", code="000000")
    assert (again.status_code, again.json()["payment_id"]) == (201, paid["payment_id"])
    assert bills.deliver_bill_payments(writer, VAULT) == 1
    mine = alice.get(f"/me/bills/payments/{paid['payment_id']}").json()
    assert mine["status"] == "paid" and mine["confirmation"].startswith("FZPOWER")
    receipt = alice.get(f"/me/receipts/{mine['receipt_number']}")
    assert receipt.status_code == 200, receipt.json()
    assert (receipt.json()["reference"], receipt.json()["amount"]) == (
        paid["reference"], bill["amount"],
    )  # fmt: skip
    history = alice.get("/me/bills/payments").json()["payments"]
    assert [p["payment_id"] for p in history] == [paid["payment_id"]]
    assert alice.bill()["paid"] is True
    again_later = alice.pay(alice.body(bill), "b-2", method="sms", code="123456")
    assert (again_later.status_code, again_later.json()["code"]) == (409, "BILL_ALREADY_PAID")
    fen = int(bill["amount"].replace(".", ""))
    assert alice.balance() == 5_000_00 - fen


def test_a_refused_payment_comes_back_and_says_why_in_my_language(
    alice: Customer, writer: Writer
) -> None:
    number = "0591239999"
    body = alice.body(alice.bill(number), number)
    made = alice.pay(body, "b-3", method="sms", code=alice.code_for(body)).json()
    bills.deliver_bill_payments(writer, VAULT)
    mine = alice.get(f"/me/bills/payments/{made['payment_id']}", **{"Accept-Language": "en"})
    shown = mine.json()
    assert (shown["status"], shown["failure"]["code"]) == ("refunded", "BILLER_REFUSED")
    assert "money is back in your account" in shown["failure"]["message"]
    assert alice.balance() == 5_000_00


def test_a_phone_top_up_takes_an_offered_amount_only(alice: Customer) -> None:
    found = alice.post("/me/bills/inquire", {"biller": "CMFJ", "number": "13905910001"})
    assert (found.status_code, found.json()["bills"]) == (200, [])
    body = {"from_account": alice.account, "biller": "CMFJ", "number": "13905910001",
            "amount": "50.00"}  # fmt: skip
    made = alice.pay(body, "t-1", method="sms", code=alice.code_for(body))
    assert (made.status_code, made.json()["number"]) == (201, "139****0001")
    odd = alice.pay({**body, "amount": "15.00"}, "t-2", method="sms", code="123456")
    assert (odd.status_code, odd.json()["code"]) == (422, "TOPUP_AMOUNT_NOT_OFFERED")


def test_a_code_for_another_amount_pays_nothing(alice: Customer, engine: Engine) -> None:
    body = {"from_account": alice.account, "biller": "CMFJ", "number": "13905910001",
            "amount": "50.00"}  # fmt: skip
    code = alice.code_for(body)
    made = alice.pay({**body, "amount": "100.00"}, "t-3", method="sms", code=code)
    assert (made.status_code, made.json()["code"]) == (401, "AUTH_FAILED")
    assert alice.balance() == 5_000_00 and count(engine, bill_payments) == 0


def test_someone_elses_account_and_bill_payments_are_unknown(
    api: TestClient, alice: Customer, engine: Engine, clock: FixedClock, writer: Writer
) -> None:
    body = alice.body(alice.bill())
    made = alice.pay(body, "b-4", method="sms", code=alice.code_for(body)).json()
    mallory = Customer(api, engine, clock, writer, 2)
    stolen = mallory.pay(body, "m-1", method="sms", code="123456")
    assert (stolen.status_code, stolen.json()["code"]) == (404, "ACCOUNT_NOT_FOUND")
    code = mallory.post("/me/bills/sms-code", body)
    assert (code.status_code, code.json()["code"]) == (404, "ACCOUNT_NOT_FOUND")
    seen = mallory.get(f"/me/bills/payments/{made['payment_id']}")
    assert (seen.status_code, seen.json()["code"]) == (404, "PAYMENT_NOT_FOUND")
    assert mallory.get("/me/bills/payments").json()["payments"] == []
    assert count(engine, bill_payments) == 1


def test_bills_need_a_login_except_the_list_of_billers(api: TestClient, billers: None) -> None:
    assert api.get(f"{API}/billers").status_code == 200
    found = api.post(f"{API}/me/bills/inquire", json={"biller": "FZPOWER", "number": HOME})
    assert (found.status_code, found.json()["code"]) == (401, "AUTH_REQUIRED")


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": "1.234"}, 400, "INVALID_AMOUNT"),
        ({"amount": "-5.00"}, 400, "INVALID_AMOUNT"),
        ({"amount": 50}, 400, "INVALID_INPUT"),
        ({"number": "x" * 25}, 400, "INVALID_INPUT"),
        ({"admin": True}, 400, "INVALID_INPUT"),
        ({"biller": "NOPE"}, 404, "BILLER_NOT_FOUND"),
        ({"number": "0591230000"}, 404, "BILL_ACCOUNT_NOT_FOUND"),
        ({"bill_id": "202610DEADBEEF"}, 404, "BILL_NOT_FOUND"),
    ],
)
def test_a_bad_body_is_refused_and_moves_nothing(
    alice: Customer, engine: Engine, change: dict[str, Any], status: int, code: str
) -> None:
    made = alice.pay({**alice.body(alice.bill()), **change}, "b-5", method="sms", code="123456")
    assert (made.status_code, made.json()["code"]) == (status, code), made.json()
    assert alice.balance() == 5_000_00 and count(engine, bill_payments) == 0
