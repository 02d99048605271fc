"""An enterprise with operators, employees with accounts here, and payroll files, for the
corporate tests (domain and API)."""

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
from fastapi.testclient import TestClient

from ebank.accounts.models import CustomerAccount
from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.corporate import operators
from ebank.corporate.operators import Operator
from ebank.customers.service import register_individual
from tests.support import STAFF, VAULT, Bank, person_id

PASSWORD = "Payroll#2026"
CREDIT_CODE = "91350100M000100Y43"  # Bank.enterprise's
STEP = 30


@dataclass
class Login:
    operator: Operator
    totp: pyotp.TOTP

    def code(self, clock: FixedClock) -> str:
        """A code of this operator's token now; moves the clock on a step so that the next
        code asked for is fresh (each step is accepted once)."""
        code = self.totp.generate_otp(int(clock.now().timestamp()) // STEP)
        clock.advance(timedelta(seconds=STEP))
        return code


def add_operator(writer: Writer, enterprise: int, username: str, *roles: str) -> Login:
    added = writer.execute(
        operators.add(
            VAULT, customer_id=enterprise, username=username, name=username.title(), roles=roles,
            password=PASSWORD, actor=STAFF,
        )
    )  # fmt: skip
    secret = parse_qs(urlparse(added.otpauth_uri).query)["secret"][0]
    return Login(added.operator, pyotp.TOTP(secret))


def employee(bank: Bank, n: int, name: str) -> CustomerAccount:
    """Person `n` (from 100, clear of Bank.person's) named `name`, with an empty account."""
    view = bank.writer.execute(
        register_individual(
            VAULT, name=name, id_number=person_id(100 + n), mobile=f"1370000{n:04d}", actor=STAFF
        )
    )
    return bank.account(view.id, funds=0)


HEADER = ("name", "account", "amount", "note")


def payroll_file(
    rows: list[tuple[str, str, str, str]], *, encoding: str = "utf-8",
    header: tuple[str, ...] = HEADER,
) -> bytes:  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def operator_login(api: TestClient, clock: FixedClock, credit_code: str, login: Login) -> str:
    """Log an operator in through the API, password then token code; the session token."""
    started = api.post(
        "/api/v1/corporate/auth/login",
        json={"credit_code": credit_code, "username": login.operator.username,
              "password": PASSWORD},
    )  # fmt: skip
    assert started.status_code == 200, started.json()
    done = api.post(
        "/api/v1/corporate/auth/login/verify",
        json={"challenge": started.json()["challenge"], "code": login.code(clock)},
    )
    assert done.status_code == 200, done.json()
    return str(done.json()["token"])
