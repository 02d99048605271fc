"""Transfers through the API: quote, SMS code, confirm; my payments; revocation; the staff's
exceptions queue. The attacks: a replayed key pays once, a code for other details fails,
someone else's payment is unknown, bad amounts change nothing. SQLite and PostgreSQL."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.accounts.service import get_account
from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.ops import approvals
from ebank.payments import service as payments
from tests.channels.api_support import (
    ONLINE,
    Person,
    account_with_money,
    bearer,
    customer,
    login,
    member,
    sms_codes,
    staff_login,
)
from tests.support import VAULT

API = "/api/v1"


class Customer:
    def __init__(self, api: TestClient, engine: Engine, clock: FixedClock, person: Person,
                 account: str) -> None:  # fmt: skip
        self.api, self.engine, self.person, self.account = api, engine, person, account
        self.headers = bearer(login(api, clock, person))

    def body(self, payee: str, amount: str, name: str, **extra: Any) -> dict[str, Any]:
        return {"from_account": self.account, "payee_account": payee, "payee_name": name,
                "amount": amount, **extra}  # fmt: skip

    def post(self, path: str, body: dict[str, Any], **headers: str) -> Any:
        return self.api.post(f"{API}{path}", json=body, headers={**self.headers, **headers})

    def code_for(self, body: dict[str, Any]) -> str:
        sent = self.post("/me/transfers/sms-code", body)
        assert sent.status_code == 200, sent.json()
        return sms_codes(self.engine, self.person.id)[-1]

    def transfer(self, body: dict[str, Any], key: str, **confirm: Any) -> Any:
        return self.post("/me/transfers", {**body, **confirm}, **{"Idempotency-Key": key})


def balance(engine: Engine, number: str) -> int:
    with engine.connect() as conn:
        return get_account(conn, number=number).balance


@pytest.fixture
def alice(api: TestClient, engine: Engine, writer: Writer, clock: FixedClock) -> Customer:
    person = customer(writer, 1, enrolled=ONLINE)
    return Customer(api, engine, clock, person, account_with_money(writer, person, [50_000_00]))


@pytest.fixture
def bob(writer: Writer) -> str:
    return account_with_money(writer, customer(writer, 2), [])


def test_a_transfer_is_quoted_confirmed_by_code_and_made_once(
    alice: Customer, bob: str, engine: Engine
) -> None:
    body = alice.body(bob, "1234.50", "客户2")
    quoted = alice.post("/me/transfers/quote", body)
    assert quoted.status_code == 200, quoted.json()
    assert quoted.json()["factors"][0] == "sms" and quoted.json()["kind"] == "intra"
    code = alice.code_for(body)
    made = alice.transfer(body, "t-1", method="sms", code=code)
    assert made.status_code == 201, made.json()
    payment = made.json()
    assert (payment["status"], payment["amount"], payment["failure"]) == (
        "completed",
        "1234.50",
        None,
    )
    assert payment["payee_account"] != bob and payment["payee_account"].endswith(bob[-4:])
    again = alice.transfer(body, "t-1", method="sms", code=code)
    assert (again.status_code, again.json()["id"]) == (201, payment["id"])
    assert balance(engine, bob) == 1234_50
    listed = alice.api.get(f"{API}/me/payments", headers=alice.headers).json()["payments"]
    assert [p["id"] for p in listed] == [payment["id"]]
    receipt = alice.api.get(f"{API}/me/payments/{payment['id']}/receipt", headers=alice.headers)
    assert receipt.status_code == 200, receipt.json()
    assert receipt.json()["reference"] == payment["reference"]
    checked = alice.api.get(
        f"{API}/receipts/verify", params={"code": receipt.json()["verification_code"]}
    )
    assert (checked.status_code, checked.json()["amount"]) == (200, "1234.50")


def test_a_code_for_another_amount_confirms_nothing(
    alice: Customer, bob: str, engine: Engine
) -> None:
    code = alice.code_for(alice.body(bob, "100.00", "客户2"))
    made = alice.transfer(alice.body(bob, "10000.00", "客户2"), "t-2", method="sms", code=code)
    assert (made.status_code, made.json()["code"]) == (401, "AUTH_FAILED")
    assert balance(engine, bob) == 0


def test_someone_elses_payment_is_unknown_and_cannot_be_revoked(
    api: TestClient, alice: Customer, bob: str, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    body = alice.body(bob, "300.00", "客户2", speed="delayed")
    made = alice.transfer(body, "t-3", method="sms", code=alice.code_for(body)).json()
    mallory = Customer(api, engine, clock, customer(writer, 3, enrolled=ONLINE), alice.account)
    seen = api.get(f"{API}/me/payments/{made['id']}", headers=mallory.headers)
    assert (seen.status_code, seen.json()["code"]) == (404, "PAYMENT_NOT_FOUND")
    revoked = mallory.post(f"/me/payments/{made['id']}/revoke", {})
    assert revoked.status_code == 404
    mine = alice.post(f"/me/payments/{made['id']}/revoke", {})
    assert (mine.status_code, mine.json()["status"], mine.json()["revocable"]) == (
        200, "revoked", False,
    )  # fmt: skip
    assert balance(engine, bob) == 0


def test_a_sent_transfer_cannot_be_revoked(alice: Customer, bob: str) -> None:
    body = alice.body(bob, "10.00", "客户2")
    made = alice.transfer(body, "t-4", method="sms", code=alice.code_for(body)).json()
    revoked = alice.post(f"/me/payments/{made['id']}/revoke", {})
    assert (revoked.status_code, revoked.json()["code"]) == (409, "PAYMENT_NOT_REVOCABLE")


@pytest.mark.parametrize("amount", ["1.234", "-5.00", "1e3", "99999999999999999.00", "abc"])
def test_a_bad_amount_is_a_400_and_moves_nothing(
    alice: Customer, bob: str, engine: Engine, amount: str
) -> None:
    made = alice.transfer(alice.body(bob, amount, "客户2"), "t-5", method="sms", code="123456")
    assert made.status_code == 400, made.json()
    assert balance(engine, bob) == 0 and balance(engine, alice.account) == 50_000_00


def test_a_wrong_payee_name_is_refused_in_the_customers_language(alice: Customer, bob: str) -> None:
    quoted = alice.api.post(
        f"{API}/me/transfers/quote", json=alice.body(bob, "10.00", "李四"),
        headers={**alice.headers, "Accept-Language": "en"},
    )  # fmt: skip
    assert (quoted.status_code, quoted.json()["code"]) == (422, "PAYEE_NAME_MISMATCH")
    assert "payee name does not match" in quoted.json()["message"]


def test_staff_see_failed_transfers_with_their_cause_and_customers_cannot(
    api: TestClient, alice: Customer, bob: str, writer: Writer, clock: FixedClock
) -> None:
    body = alice.body(bob, "20.00", "客户2", speed="normal")
    made = alice.transfer(body, "t-6", method="sms", code=alice.code_for(body)).json()
    member(writer, "teller1", "teller")
    teller = bearer(staff_login(api, "teller1"))
    assert api.get(f"{API}/staff/payments/exceptions", headers=teller).json()["payments"] == []
    request = writer.execute(
        approvals.propose("account.close", {"account": bob}, reason="客户申请", maker="staff:7")
    )
    writer.execute(approvals.approve(request, checker="staff:9"))
    clock.advance(timedelta(hours=2))
    payments.execute_due(writer, VAULT)
    teller = bearer(staff_login(api, "teller1"))  # the first session went idle meanwhile
    queue = api.get(
        f"{API}/staff/payments/exceptions", headers={**teller, "Accept-Language": "en"}
    ).json()["payments"]
    assert [(p["id"], p["status"], p["failure"]["code"]) for p in queue] == [
        (made["id"], "failed", "PAYEE_ACCOUNT_UNAVAILABLE")
    ]
    assert "contact the payee" in queue[0]["failure"]["message"]
    customer_token = bearer(login(api, clock, alice.person))
    refused = api.get(f"{API}/staff/payments/exceptions", headers=customer_token)
    assert refused.status_code == 403
