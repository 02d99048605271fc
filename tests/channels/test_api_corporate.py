"""Corporate banking over HTTP: staff give an enterprise its operators, operators log in with
their own token, a maker uploads payroll and a checker approves it, employees read payslips."""

import base64
import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.corporate import payroll
from tests.channels.api_support import (
    ONLINE,
    account_with_money,
    bearer,
    customer,
    login,
    member,
    staff_login,
)
from tests.corporate.support import CREDIT_CODE, PASSWORD, add_operator, operator_login
from tests.support import VAULT, Bank

API = "/api/v1"


class Corporate:
    """An enterprise with ¥100,000, a maker and a checker logged in, and an employee who banks
    here and uses online banking."""

    def __init__(self, api: TestClient, writer: Writer, engine: Engine, clock: FixedClock) -> None:
        self.api, self.clock = api, clock
        bank = Bank(writer, engine, clock)
        self.enterprise = bank.enterprise()
        self.account = bank.account(self.enterprise, tier="corporate", funds=100_000_00).number
        self.maker_login = add_operator(writer, self.enterprise, "zhang.maker", "maker")
        self.checker_login = add_operator(writer, self.enterprise, "li.checker", "checker")
        self.maker = bearer(operator_login(api, clock, CREDIT_CODE, self.maker_login))
        self.checker = bearer(operator_login(api, clock, CREDIT_CODE, self.checker_login))
        self.person = customer(writer, 1, enrolled=ONLINE)
        self.salary_account = account_with_money(writer, self.person, [])

    def upload(self, content: bytes, key: str = "u1", **extra: Any) -> Any:
        body = {"account": self.account, "period": "2026-11", "memo": "十一月工资",
                "file_name": "2026-11.csv",
                "content_base64": base64.b64encode(content).decode()} | extra  # fmt: skip
        return self.api.post(
            f"{API}/corporate/payroll", json=body, headers=self.maker | {"Idempotency-Key": key}
        )


@pytest.fixture
def corp(api: TestClient, writer: Writer, engine: Engine, clock: FixedClock) -> Corporate:
    return Corporate(api, writer, engine, clock)


def test_staff_give_an_enterprise_operators_and_a_person_none(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    member(writer, "teller1", "teller")
    member(writer, "admin1", "admin")
    teller = bearer(staff_login(api, "teller1"))
    enterprise = Bank(writer, engine, clock).enterprise()
    body = {"username": "Wang.Cashier", "name": "王出纳", "roles": ["maker"], "password": PASSWORD}
    path = f"{API}/staff/enterprises/{enterprise}/operators"
    added = api.post(path, json=body, headers=teller)
    assert added.status_code == 201, added.json()
    assert added.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert added.json()["operator"]["username"] == "wang.cashier"
    again = api.post(path, json=body, headers=teller)
    assert (again.status_code, again.json()["code"]) == (409, "OPERATOR_EXISTS")
    person = customer(writer, 1)
    not_one = api.post(f"{API}/staff/enterprises/{person.id}/operators", json=body, headers=teller)
    assert (not_one.status_code, not_one.json()["code"]) == (422, "NOT_AN_ENTERPRISE")
    bad_role = api.post(path, json=body | {"roles": ["admin"]}, headers=teller)
    assert bad_role.status_code == 400
    admin = bearer(staff_login(api, "admin1"))
    assert api.post(path, json=body, headers=admin).status_code == 403  # no customer business
    listed = api.get(path, headers=teller).json()["operators"]
    assert [o["username"] for o in listed] == ["wang.cashier"]


def test_an_operator_logs_in_with_password_and_token_and_only_reaches_corporate_banking(
    corp: Corporate, api: TestClient, writer: Writer, clock: FixedClock
) -> None:
    wrong = api.post(
        f"{API}/corporate/auth/login",
        json={"credit_code": CREDIT_CODE, "username": "zhang.maker", "password": "wrong2026pass"},
    )
    nobody = api.post(
        f"{API}/corporate/auth/login",
        json={"credit_code": "91350100M000200Y43", "username": "zhang.maker", "password": PASSWORD},
    )
    assert (wrong.status_code, wrong.json()["code"]) == (401, "AUTH_FAILED")
    assert (nobody.status_code, nobody.json()["code"]) == (401, "AUTH_FAILED")
    me = api.get(f"{API}/corporate/me", headers=corp.maker).json()
    assert (me["username"], me["roles"], me["customer_id"]) == (
        "zhang.maker",
        ["maker"],
        corp.enterprise,
    )
    assert api.get(f"{API}/me/accounts", headers=corp.maker).status_code == 403
    person = bearer(login(api, clock, corp.person))
    assert api.get(f"{API}/corporate/me", headers=person).status_code == 403
    member(writer, "teller1", "teller")
    teller = bearer(staff_login(api, "teller1"))
    operator_id = corp.maker_login.operator.id
    disabled = api.post(
        f"{API}/staff/enterprises/{corp.enterprise}/operators/{operator_id}/disable",
        headers=teller,
    )
    assert disabled.json()["disabled"] is True
    ended = api.get(f"{API}/corporate/me", headers=corp.maker)
    assert (ended.status_code, ended.json()["code"]) == (401, "SESSION_EXPIRED")


def test_payroll_from_upload_to_payslip(
    corp: Corporate, api: TestClient, writer: Writer, clock: FixedClock
) -> None:
    rows = [("客户1", corp.salary_account, "8500.00", "基本工资"),
            ("客户2", corp.salary_account, "1.00", "")]  # fmt: skip
    out = io.StringIO()
    csv.writer(out).writerows([("姓名", "账号", "金额", "备注"), *rows])
    content = out.getvalue().encode("gb18030")
    uploaded = corp.upload(content)
    assert uploaded.status_code == 201, uploaded.json()
    report = uploaded.json()
    assert (report["status"], report["valid_count"], report["valid_total"]) == (
        "validated", 1, "8500.00",
    )  # fmt: skip
    assert [(r["status"], r["code"]) for r in report["rows"]] == [
        ("pending", None), ("invalid", "PAYROLL_DUPLICATE_ACCOUNT"),
    ]  # fmt: skip
    assert corp.salary_account not in str(report["rows"])  # masked
    batch = report["id"]
    assert corp.upload(content).json() == report  # a retry answers the same
    other = corp.upload(content, period="2026-12")
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_CONFLICT")
    base = f"{API}/corporate/payroll/{batch}"
    early = api.post(f"{base}/approve", json={"code": "123456"}, headers=corp.checker)
    assert (early.status_code, early.json()["code"]) == (409, "PAYROLL_NOT_ALLOWED")
    assert api.post(f"{base}/submit", headers=corp.checker).status_code == 403  # not a maker
    submitted = api.post(f"{base}/submit", headers=corp.maker)
    assert submitted.json()["status"] == "submitted"
    by_maker = api.post(f"{base}/approve", json={"code": "123456"}, headers=corp.maker)
    assert by_maker.status_code == 403
    wrong = api.post(f"{base}/approve", json={"code": "000000"}, headers=corp.checker)
    assert (wrong.status_code, wrong.json()["code"]) == (401, "AUTH_FAILED")
    code = corp.checker_login.code(clock)
    approved = api.post(f"{base}/approve", json={"code": code}, headers=corp.checker)
    assert approved.status_code == 200, approved.json()
    assert (approved.json()["status"], approved.json()["checker"]) == ("approved", "li.checker")
    assert payroll.execute_due(writer, VAULT) == 1
    done = api.get(base, headers=corp.checker).json()
    assert (done["status"], done["paid_count"], done["paid_total"], done["failed_count"]) == (
        "completed", 1, "8500.00", 1,
    )  # fmt: skip
    results = api.get(f"{base}/results.csv?lang=en", headers=corp.maker)
    assert results.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(results.text.lstrip("\ufeff"))))
    assert [(row[0], row[4], row[5]) for row in lines[1:]] == [
        ("2", "paid", ""), ("3", "invalid", "PAYROLL_DUPLICATE_ACCOUNT"),
    ]  # fmt: skip
    receipt = api.get(f"{base}/rows/2/receipt.pdf", headers=corp.maker)
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF")
    unpaid = api.get(f"{base}/rows/3/receipt.pdf", headers=corp.maker)
    assert unpaid.status_code == 404
    employee = bearer(login(api, clock, corp.person))
    [slip] = api.get(f"{API}/me/payslips", headers=employee).json()["payslips"]
    assert (slip["employer"], slip["amount"], slip["note"]) == (
        "福州示例科技有限公司", "8500.00", "基本工资",
    )  # fmt: skip
    assert api.get(f"{API}/corporate/payroll/{batch}", headers=employee).status_code == 403


def test_a_payroll_upload_that_is_not_base64_or_not_ours_is_refused(
    corp: Corporate, api: TestClient
) -> None:
    garbled = corp.upload(b"", content_base64="not base64!")
    assert (garbled.status_code, garbled.json()["code"]) == (400, "PAYROLL_FILE_INVALID")
    theirs = corp.upload(b"name,account,amount\nA,1,1.00\n", key="u2", account="6222000000000000")
    assert (theirs.status_code, theirs.json()["code"]) == (404, "ACCOUNT_NOT_FOUND")
    unknown = api.get(f"{API}/corporate/payroll/999", headers=corp.maker)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "PAYROLL_BATCH_NOT_FOUND")
    assert api.get(f"{API}/corporate/payroll", headers=corp.maker).json() == {"batches": []}
