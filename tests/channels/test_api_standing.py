"""The payee book, standing orders and direct-debit mandates through the API, and direct debits
by the enterprise that holds a mandate. The attacks: someone else's payee, order or mandate is
404; a code is good once and for what it was sent for; a debit above the maximum, twice in a
month or after revocation is refused; bad bodies are 400 and change nothing. SQLite and
PostgreSQL."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.accounts.service import get_account, open_account
from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.customers.identity import credit_check_for
from ebank.customers.service import register_enterprise
from ebank.standing import orders
from tests.channels.api_support import (
    ONLINE,
    Person,
    account_with_money,
    bearer,
    customer,
    login,
    sms_codes,
)
from tests.corporate.support import add_operator, operator_login
from tests.support import STAFF, VAULT

API = "/api/v1"
ORDER = {"amount": "100.00", "frequency": "daily", "start_on": "2026-11-24", "time": "09:00",
         "memo": "房租"}  # fmt: skip


class Client:
    def __init__(self, api: TestClient, engine: Engine, customer_id: int, token: str) -> None:
        self.api, self.engine, self.id = api, engine, customer_id
        self.headers = bearer(token)

    def get(self, path: str) -> Any:
        return self.api.get(f"{API}{path}", headers=self.headers)

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        return self.api.post(f"{API}{path}", json=body, headers=headers)

    def delete(self, path: str) -> Any:
        return self.api.delete(f"{API}{path}", headers=self.headers)

    def code(self, path: str, body: dict[str, Any]) -> str:
        sent = self.post(path, body)
        assert sent.status_code == 200, sent.json()
        return sms_codes(self.engine, self.id)[-1]


class Holder(Client):
    def __init__(self, api: TestClient, engine: Engine, clock: FixedClock, person: Person,
                 account: str) -> None:  # fmt: skip
        super().__init__(api, engine, person.id, login(api, clock, person))
        self.clock, self.person, self.account = clock, person, account

    def log_in_again(self) -> None:
        """After the clock moved past the session's idle end."""
        self.headers = bearer(login(self.api, self.clock, self.person))

    def add_payee(self, account: str, name: str, key: str = "p1") -> Any:
        body = {"account": account, "name": name}
        code = self.code("/me/payees/sms-code", body)
        return self.post("/me/payees", {**body, "alias": "房东", "code": code}, key)


def balance(engine: Engine, number: str) -> int:
    with engine.connect() as conn:
        return get_account(conn, number=number).balance


@pytest.fixture
def alice(api: TestClient, engine: Engine, writer: Writer, clock: FixedClock) -> Holder:
    person = customer(writer, 1, enrolled=ONLINE)
    return Holder(api, engine, clock, person, account_with_money(writer, person, [50_000_00]))


@pytest.fixture
def bob(writer: Writer) -> str:
    return account_with_money(writer, customer(writer, 2), [])


def company(
    api: TestClient, engine: Engine, writer: Writer, clock: FixedClock, n: int
) -> tuple[Client, str]:
    """An enterprise with a settlement account, and its cashier logged in to corporate
    banking."""
    first17 = f"91350100MA2{n:06d}"
    credit_code = first17 + credit_check_for(first17)
    found = writer.execute(
        register_enterprise(
            VAULT, name=f"福州水务{n}号", credit_code=credit_code,
            legal_representative="欧阳锋", mobile="15900001111", actor=STAFF,
        )
    )  # fmt: skip
    account = writer.execute(open_account(customer_id=found.id, tier="corporate", actor=STAFF))
    cashier = add_operator(writer, found.id, "cashier", "maker")
    token = operator_login(api, clock, credit_code, cashier)
    return Client(api, engine, found.id, token), account.number


def test_a_payee_is_added_with_its_code_and_an_order_to_it_runs(
    alice: Holder, bob: str, engine: Engine, writer: Writer, clock: FixedClock
) -> None:
    added = alice.add_payee(bob, "客户2")
    assert added.status_code == 201, added.json()
    payee = added.json()
    assert (payee["name"], payee["alias"], payee["bank"]) == ("客户2", "房东", None)
    assert payee["account"] != bob and payee["account"].endswith(bob[-4:])
    assert alice.get("/me/payees").json()["payees"] == [payee]
    body = {**ORDER, "payee_id": payee["id"], "from_account": alice.account}
    quoted = alice.post("/me/standing-orders/quote", body)
    assert quoted.status_code == 200, quoted.json()
    assert (quoted.json()["kind"], quoted.json()["factors"][0]) == ("intra", "sms")
    code = alice.code("/me/standing-orders/sms-code", body)
    made = alice.post("/me/standing-orders", {**body, "method": "sms", "code": code}, "o1")
    assert made.status_code == 201, made.json()
    order = made.json()
    assert (order["status"], order["amount"], order["time"], order["last_run"]) == (
        "active", "100.00", "09:00", None,
    )  # fmt: skip
    again = alice.post("/me/standing-orders", {**body, "method": "sms", "code": code}, "o1")
    assert (again.status_code, again.json()["id"]) == (201, order["id"])
    clock.advance(timedelta(days=1))  # 10:00 on the 24th: the 09:00 run is due
    assert orders.run_due_orders(writer, VAULT) == 1
    alice.log_in_again()
    ran = alice.get(f"/me/standing-orders/{order['id']}").json()
    assert (ran["runs"], ran["last_run"]["outcome"], ran["last_run"]["due_on"]) == (
        1, "paid", "2026-11-24",
    )  # fmt: skip
    assert balance(engine, bob) == 100_00
    cancelled = alice.post(f"/me/standing-orders/{order['id']}/cancel", {})
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert alice.delete(f"/me/payees/{payee['id']}").status_code == 204
    assert alice.get("/me/payees").json()["payees"] == []


def test_a_payee_code_is_good_once_and_for_that_payee_only(alice: Holder, bob: str) -> None:
    body = {"account": bob, "name": "客户2"}
    code = alice.code("/me/payees/sms-code", body)
    other = alice.post("/me/payees", {"account": bob, "name": "李四", "code": code}, "p1")
    assert (other.status_code, other.json()["code"]) == (401, "AUTH_FAILED")
    assert alice.post("/me/payees", {**body, "code": code}, "p2").status_code == 201
    [payee] = alice.get("/me/payees").json()["payees"]
    assert alice.delete(f"/me/payees/{payee['id']}").status_code == 204
    replayed = alice.post("/me/payees", {**body, "code": code}, "p3")
    assert (replayed.status_code, replayed.json()["code"]) == (401, "AUTH_FAILED")


def test_someone_elses_payee_order_and_mandate_are_not_found(
    api: TestClient, alice: Holder, bob: str, engine: Engine, writer: Writer, clock: FixedClock
) -> None:
    payee = alice.add_payee(bob, "客户2").json()
    body = {**ORDER, "payee_id": payee["id"], "from_account": alice.account}
    code = alice.code("/me/standing-orders/sms-code", body)
    order = alice.post("/me/standing-orders", {**body, "method": "sms", "code": code}, "o1").json()
    _, settlement = company(api, engine, writer, alice.clock, 1)
    mandate_body = {"account": alice.account, "creditor_account": settlement,
                    "max_amount": "300.00", "frequency": "monthly",
                    "valid_until": "2027-12-31"}  # fmt: skip
    code = alice.code("/me/mandates/sms-code", mandate_body)
    mandate = alice.post("/me/mandates", {**mandate_body, "code": code}, "m1").json()
    mallory = Holder(api, engine, clock, customer(writer, 3, enrolled=ONLINE), alice.account)
    attempts = [
        (mallory.delete(f"/me/payees/{payee['id']}"), "PAYEE_ENTRY_NOT_FOUND"),
        (mallory.get(f"/me/standing-orders/{order['id']}"), "STANDING_ORDER_NOT_FOUND"),
        (mallory.post(f"/me/standing-orders/{order['id']}/cancel", {}),
         "STANDING_ORDER_NOT_FOUND"),
        (mallory.post(f"/me/mandates/{mandate['id']}/revoke", {}), "MANDATE_NOT_FOUND"),
        (mallory.post("/me/standing-orders/quote", body), "PAYEE_ENTRY_NOT_FOUND"),
    ]  # fmt: skip
    assert [(r.status_code, r.json()["code"]) for r, _ in attempts] == [
        (404, expected) for _, expected in attempts
    ]
    assert alice.get(f"/me/standing-orders/{order['id']}").json()["status"] == "active"
    assert alice.get("/me/mandates").json()["mandates"][0]["status"] == "active"
    assert [p["id"] for p in alice.get("/me/payees").json()["payees"]] == [payee["id"]]


def test_a_creditor_debits_a_mandate_once_per_key_and_period_up_to_its_maximum(
    api: TestClient, alice: Holder, engine: Engine, writer: Writer
) -> None:
    water, settlement = company(api, engine, writer, alice.clock, 1)
    body = {"account": alice.account, "creditor_account": settlement, "max_amount": "300.00",
            "frequency": "monthly", "valid_until": "2027-12-31"}  # fmt: skip
    code = alice.code("/me/mandates/sms-code", body)
    wrong = alice.post("/me/mandates", {**body, "max_amount": "3000.00", "code": code}, "m0")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "AUTH_FAILED")
    signed = alice.post("/me/mandates", {**body, "code": code}, "m1")
    assert signed.status_code == 201, signed.json()
    mandate = signed.json()
    assert (mandate["status"], mandate["creditor_name"], mandate["max_amount"]) == (
        "active", "福州水务1号", "300.00",
    )  # fmt: skip
    [held] = water.get("/corporate/direct-debits/mandates").json()["mandates"]
    assert held["id"] == mandate["id"] and held["account"] != alice.account
    debit = {"mandate_id": mandate["id"], "amount": "120.50", "reference": "2026-11 水费"}
    too_much = water.post("/corporate/direct-debits", {**debit, "amount": "300.01"}, "d0")
    assert (too_much.status_code, too_much.json()["code"]) == (422, "MANDATE_AMOUNT_EXCEEDED")
    made = water.post("/corporate/direct-debits", debit, "d1")
    assert made.status_code == 201, made.json()
    assert water.post("/corporate/direct-debits", debit, "d1").json() == made.json()
    conflict = water.post("/corporate/direct-debits", {**debit, "amount": "1.00"}, "d1")
    assert (conflict.status_code, conflict.json()["code"]) == (409, "IDEMPOTENCY_CONFLICT")
    twice = water.post("/corporate/direct-debits", {**debit, "reference": "again"}, "d2")
    assert (twice.status_code, twice.json()["code"]) == (409, "MANDATE_PERIOD_USED")
    gas, _ = company(api, engine, writer, alice.clock, 2)
    theirs = gas.post("/corporate/direct-debits", {**debit, "reference": "gas"}, "d3")
    assert (theirs.status_code, theirs.json()["code"]) == (404, "MANDATE_NOT_FOUND")
    revoked = alice.post(f"/me/mandates/{mandate['id']}/revoke", {})
    assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
    after = water.post("/corporate/direct-debits", {**debit, "reference": "after"}, "d4")
    assert (after.status_code, after.json()["code"]) == (422, "MANDATE_REVOKED")
    assert balance(engine, settlement) == 120_50
    assert balance(engine, alice.account) == 50_000_00 - 120_50


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("/me/standing-orders", {"start_on": "2026-02-30"}),
        ("/me/standing-orders", {"time": "9:00"}),
        ("/me/standing-orders", {"amount": "1.5"}),
        ("/me/standing-orders", {"day": 3}),
        ("/me/standing-orders", {"payee_id": "1"}),
        ("/me/standing-orders", {"surprise": True}),
        ("/me/mandates", {"valid_until": "31/12/2027"}),
        ("/me/mandates", {"max_amount": "-1.00"}),
        ("/me/mandates", {"frequency": "weekly"}),
    ],
)
def test_a_malformed_body_is_a_400_and_creates_nothing(
    alice: Holder, bob: str, path: str, change: dict[str, Any]
) -> None:
    payee = alice.add_payee(bob, "客户2").json()
    bodies = {
        "/me/standing-orders": {**ORDER, "payee_id": payee["id"], "from_account": alice.account,
                                "method": "sms", "code": "123456"},
        "/me/mandates": {"account": alice.account, "creditor_account": bob, "code": "123456",
                         "max_amount": "300.00", "frequency": "monthly",
                         "valid_until": "2027-12-31"},
    }  # fmt: skip
    made = alice.post(path, {**bodies[path], **change}, "bad")
    assert made.status_code == 400, made.json()
    assert alice.get("/me/standing-orders").json()["orders"] == []
    assert alice.get("/me/mandates").json()["mandates"] == []
