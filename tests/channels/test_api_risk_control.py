"""Risk control in the customer's channel (issue 5, item 6): logins, payee additions, limit
raises and transfers are scored with where they came from, and a block or step-up is the
customer's answer while the decision stays on record."""

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.risk import lists, rules
from ebank.risk import service as risk
from ebank.risk.models import Rule
from ebank.security import devices
from tests.channels.api_support import (
    ONLINE,
    STEP,
    account_with_money,
    bearer,
    begin,
    customer,
    login,
    member,
    sms_codes,
    staff_login,
    text_me,
    token_code,
    verify,
)
from tests.support import VAULT, Bank

API = "/api/v1"
BROWSER = "browser-7f3a9c21"


def force(writer: Writer, engine: Engine, clock: FixedClock, condition: str, outcome: str) -> None:
    """A staff rule, approved by a second person, forcing `outcome` where `condition` holds."""
    rule = Rule("test_forced", "测试规则", "Test rule", condition, 0, outcome, True, False)
    Bank(writer, engine, clock).decide("risk.rule.set", rules.params_of(rule), reason="测试")


def outcomes(engine: Engine, customer_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(d.event, d.outcome) for d in risk.decisions(conn, customer_id=customer_id)]


def test_a_blocked_login_opens_no_session_and_is_on_record(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    force(writer, engine, clock, 'event == "login"', "block")
    clock.advance(timedelta(seconds=STEP))
    started = begin(api, person.mobile)
    done = verify(api, started.json()["challenge"], "token", token_code(person, clock))
    assert (done.status_code, done.json()["code"]) == (422, "RISK_REJECTED")
    assert outcomes(engine, person.id) == [("login", "block")]


def test_a_login_stepped_up_needs_the_token_not_an_sms_code(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    force(writer, engine, clock, 'event == "login"', "step_up")
    challenge = begin(api, person.mobile).json()["challenge"]
    assert text_me(api, challenge).status_code == 200  # the token holder asks for a text
    by_sms = verify(api, challenge, "sms", sms_codes(engine, person.id)[-1])
    assert (by_sms.status_code, by_sms.json()["code"]) == (422, "RISK_STEP_UP")
    assert login(api, clock, person)  # with the token it goes through


def test_a_transfer_is_scored_with_the_device_its_session_was_opened_from(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    payer, payee = customer(writer, 1, enrolled=ONLINE), customer(writer, 2)
    account = account_with_money(writer, payer, [10_000_00])
    to = account_with_money(writer, payee, [])
    me = bearer(login(api, clock, payer, device=BROWSER))
    body = {"from_account": account, "payee_account": to, "payee_name": "客户2",
            "amount": "10.00", "speed": "realtime"}  # fmt: skip
    code = token_code(payer, clock, steps=1)
    clock.advance(timedelta(seconds=STEP))
    made = api.post(
        f"{API}/me/transfers", json={**body, "method": "token", "code": code},
        headers=me | {"Idempotency-Key": "t1"},
    )  # fmt: skip
    assert made.status_code == 201, made.json()
    with engine.connect() as conn:
        [paid, logged_in] = risk.decisions(conn, customer_id=payer.id)
    assert (paid.event, logged_in.event) == ("payment", "login")
    assert paid.context["device"] == devices.device_hash(VAULT, BROWSER) != ""
    assert paid.context["ip"] == "testclient" and paid.context["factor"] == "token"


def test_a_police_listed_account_cannot_be_added_as_a_payee(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    listed = account_with_money(writer, customer(writer, 2), [])
    with engine.connect() as conn:
        key = lists.key_of_account(conn, VAULT, number=listed)
    Bank(writer, engine, clock).decide(
        "risk.list.add", {"list": "police", "key": key, "label": "涉案账户"}, reason="协查"
    )
    me = bearer(login(api, clock, person))
    payee = {"account": listed, "name": "客户2"}
    sent = api.post(f"{API}/me/payees/sms-code", json=payee, headers=me)
    assert sent.status_code == 200, sent.json()
    added = api.post(
        f"{API}/me/payees", json={**payee, "code": sms_codes(engine, person.id)[-1]},
        headers=me | {"Idempotency-Key": "p1"},
    )  # fmt: skip
    assert (added.status_code, added.json()["code"]) == (422, "RISK_REJECTED")
    assert api.get(f"{API}/me/payees", headers=me).json()["payees"] == []


def test_a_limit_raise_risk_control_blocks_changes_nothing(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    force(writer, engine, clock, 'event == "limit_change"', "block")
    me = bearer(login(api, clock, person))
    path = f"{API}/me/enrolments/online/limits"
    lowered = {"daily_limit": "1000.00", "per_payment_limit": "500.00"}
    assert api.put(path, json=lowered, headers=me).status_code == 200  # lowering asks nobody
    before = api.get(f"{API}/me/enrolments", headers=me).json()
    clock.advance(timedelta(seconds=STEP))
    raised = api.put(
        path,
        json={"daily_limit": "200000.00", "per_payment_limit": "50000.00",
              "token_code": token_code(person, clock)},
        headers=me,
    )  # fmt: skip
    assert raised.status_code == 422, raised.json()
    assert raised.json()["code"] == "RISK_REJECTED"
    assert api.get(f"{API}/me/enrolments", headers=me).json() == before
    assert ("limit_change", "block") in outcomes(engine, person.id)


def test_a_teller_changes_a_mobile_number_and_the_old_one_logs_in_no_more(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    member(writer, "teller1", "teller")
    member(writer, "admin1", "admin")
    path = f"{API}/staff/customers/{person.id}/mobile"
    admin = api.put(
        path, json={"mobile": "13912340000"}, headers=bearer(staff_login(api, "admin1"))
    )
    assert admin.status_code == 403
    changed = api.put(
        path, json={"mobile": "13912340000"}, headers=bearer(staff_login(api, "teller1"))
    )
    assert (changed.status_code, changed.json()["mobile_masked"]) == (200, "139****0000")
    assert begin(api, person.mobile).json()["code"] == "AUTH_FAILED"  # the old number names no one
    assert begin(api, "13912340000").status_code == 200
    assert ("phone_change", "allow") in outcomes(engine, person.id)
