"""Helpers for the API tests: customers and staff set up through the domain, logins through
HTTP, SMS codes read from the outbox as the customer's phone would show them, staff token
codes made from the seed the bank keeps sealed, as their authenticator app would."""

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from ebank.accounts.service import open_account
from ebank.core.clock import FixedClock
from ebank.core.tables import outbox_events
from ebank.core.writer import Writer
from ebank.customers.service import register_individual
from ebank.enrolment.service import enrol_at_counter
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.ops import staff
from ebank.ops.tables import staff as staff_table
from ebank.security import devices
from ebank.security.service import enroll_token, set_secret
from tests.support import SMS_CODE, STAFF, VAULT, person_id

PASSWORD = "good2026pass"
WRONG = "bad2026guess"
STAFF_PASSWORD = "staff2026pass"
DEVICE = "iPhone15,2-7F3A9C21-55B0-4E0B-9D1E-0A1B2C3D4E5F"
DEVICE_NAME = "我的手机"
ONLINE = ("online",)
BOTH = ("online", "mobile")
STEP = 30  # seconds of a token code


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    id_number: str
    mobile: str
    totp: pyotp.TOTP | None


def customer(
    writer: Writer, n: int, *, token: bool = True, enrolled: tuple[str, ...] = ()
) -> Person:
    """Person number `n`, with a login password, (unless told not to) a token, and enrolled at
    the counter on the channels named (logging in needs a live enrolment)."""
    id_number, mobile = person_id(n), f"139{n:08d}"
    view = writer.execute(
        register_individual(VAULT, name=f"客户{n}", id_number=id_number, mobile=mobile, actor=STAFF)
    )
    writer.execute(
        set_secret(customer_id=view.id, kind="login_password", secret=PASSWORD, actor=STAFF)
    )
    for channel in enrolled:
        writer.execute(enrol_at_counter(customer_id=view.id, channel=channel, actor=STAFF))
    totp = None
    if token:
        uri = writer.execute(enroll_token(VAULT, customer_id=view.id, label="t", actor=STAFF))
        totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    return Person(view.id, id_number, mobile, totp)


def bind_device(writer: Writer, person: Person, device: str = DEVICE) -> None:
    """Bind the person's phone through the domain, with the code texted for it."""
    writer.execute(
        devices.begin_binding(VAULT, customer_id=person.id, device=device, label=DEVICE_NAME)
    )
    code = sms_codes(writer.engine, person.id)[-1]
    writer.execute(
        devices.confirm_binding(
            VAULT, customer_id=person.id, device=device, label=DEVICE_NAME, code=code
        )
    ).value()


def account_with_money(writer: Writer, person: Person, deposits: list[int]) -> str:
    """A Type I account of the person's, with these deposits (fen) paid in; its number."""
    account = writer.execute(open_account(customer_id=person.id, tier="I", actor=STAFF))
    chart = writer.execute(ledger.command(ensure_chart))
    for n, amount in enumerate(deposits):
        writer.execute(
            ledger.transfer_command(
                debit=chart["GL-CASH-CNY"], credit=account.ledger_account_id, amount=amount,
                memo=f"deposit {n}", scope="test", key=f"{account.number}-{n}",
            )
        )  # fmt: skip
    return account.number


def member(writer: Writer, username: str, *roles: str) -> int:
    """A member of staff with these roles (and a token); their id."""
    added = writer.execute(
        staff.add(
            VAULT, username=username, name=username.title(), roles=roles,
            password=STAFF_PASSWORD, actor="system:test",
        )
    )  # fmt: skip
    return added.member.id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_code(person: Person, clock: FixedClock, steps: int = 0) -> str:
    assert person.totp is not None
    return person.totp.generate_otp(int(clock.now().timestamp()) // STEP + steps)


def sms_texts(engine: Engine, customer_id: int, kind: str | None = None) -> list[str]:
    """The SMS messages sent to the customer (of one kind: "code", "alert"), oldest first."""
    with engine.connect() as conn:
        payloads = conn.execute(
            select(outbox_events.c.payload)
            .where(outbox_events.c.topic == "sms.send")
            .order_by(outbox_events.c.id)
        ).scalars()
        bodies = [json.loads(p) for p in payloads]
    return [
        VAULT.decrypt(body["body"], purpose="sms.body")
        for body in bodies
        if body["customer"] == customer_id and kind in (None, body["kind"])
    ]


def sms_codes(engine: Engine, customer_id: int) -> list[str]:
    """The codes in the SMS messages sent to the customer, oldest first."""
    texts = sms_texts(engine, customer_id, "code")
    return [SMS_CODE.findall(text)[0] for text in texts]


def begin(
    api: TestClient, login: str, password: str = PASSWORD, *, device: str = "", **extra: Any
) -> httpx.Response:
    headers = {"X-Device-ID": device} if device else {}
    body = {"login": login, "password": password, **extra}
    return api.post("/api/v1/auth/login", json=body, headers=headers)


def text_me(api: TestClient, challenge: str, *, device: str = "") -> httpx.Response:
    """A token holder without the token at hand asks for the login's SMS code instead."""
    headers = {"X-Device-ID": device} if device else {}
    return api.post("/api/v1/auth/login/sms", json={"challenge": challenge}, headers=headers)


def verify(
    api: TestClient, challenge: str, factor: str, code: str, *, device: str = "", **extra: Any
) -> httpx.Response:
    headers = {"X-Device-ID": device} if device else {}
    body = {"challenge": challenge, "factor": factor, "code": code, **extra}
    return api.post("/api/v1/auth/login/verify", json=body, headers=headers)


def login(api: TestClient, clock: FixedClock, person: Person, **extra: Any) -> str:
    """Log in with password and token; the session token. Moves the clock to a fresh step."""
    clock.advance(timedelta(seconds=STEP - int(clock.now().timestamp()) % STEP))
    started = begin(api, person.mobile, **extra)
    assert started.status_code == 200, started.json()
    device = extra.get("device", "")
    done = verify(
        api, started.json()["challenge"], "token", token_code(person, clock), device=device
    )
    assert done.status_code == 200, done.json()
    return str(done.json()["token"])


def staff_code(api: TestClient, username: str) -> str:
    """A fresh code of the staff member's token, as their app shows it now. Moves the app's
    clock to the next step if this one's code was used already (each is accepted once)."""
    state = api.app.state  # type: ignore[attr-defined]
    with state.engine.connect() as conn:
        row = conn.execute(
            select(staff_table.c.token_seed, staff_table.c.last_step).where(
                staff_table.c.username == username
            )
        ).one()
    while row.last_step is not None and row.last_step >= state.clock.now().timestamp() // STEP:
        state.clock.advance(timedelta(seconds=STEP - int(state.clock.now().timestamp()) % STEP))
    step = int(state.clock.now().timestamp()) // STEP
    seed = VAULT.decrypt(row.token_seed, purpose=staff.SEED_PURPOSE)
    return pyotp.TOTP(seed).generate_otp(step)


def staff_begin(api: TestClient, username: str, password: str = STAFF_PASSWORD) -> httpx.Response:
    body = {"username": username, "password": password}
    return api.post("/api/v1/staff/auth/login", json=body)


def staff_verify(api: TestClient, challenge: str, code: str) -> httpx.Response:
    body = {"challenge": challenge, "code": code}
    return api.post("/api/v1/staff/auth/login/verify", json=body)


def staff_login(api: TestClient, username: str) -> str:
    """Log a member of staff in with password and token code; the session token."""
    started = staff_begin(api, username)
    assert started.status_code == 200, started.json()
    done = staff_verify(api, started.json()["challenge"], staff_code(api, username))
    assert done.status_code == 200, done.json()
    return str(done.json()["token"])


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
