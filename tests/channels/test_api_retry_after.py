"""A 429 says when to ask again: `Retry-After` holds the seconds an SMS code's interval has
left (CODE_TOO_SOON), or the seconds to the next business day's midnight in Asia/Shanghai
(CODE_DAILY_LIMIT), by the app's clock; every 429 code has a rule, and other errors carry no
such header.

Every test runs on SQLite and PostgreSQL."""

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.channels.api.errors import RETRY_AFTER
from ebank.core.clock import BUSINESS_TZ, FixedClock
from ebank.core.errors import CATALOGUE
from ebank.core.settings import get_settings
from ebank.core.writer import Writer
from tests.channels.api_support import ONLINE, account_with_money, bearer, customer, login

CODE = "/api/v1/me/transfers/sms-code"


def ask_for_a_code(
    api: TestClient, writer: Writer, clock: FixedClock
) -> tuple[dict[str, str], dict[str, str]]:
    """A logged-in customer's headers, and the body that asks for a transfer's SMS code."""
    person = customer(writer, 1, enrolled=ONLINE)
    account = account_with_money(writer, person, [50_000_00])
    bob = account_with_money(writer, customer(writer, 2), [])
    body = {"from_account": account, "payee_account": bob, "payee_name": "客户2", "amount": "10.00"}
    return bearer(login(api, clock, person)), body


def test_every_429_code_has_a_retry_after_rule_and_no_other_code_has_one() -> None:
    too_many = {code for code, kind in CATALOGUE.items() if kind.status == 429}
    assert too_many == set(RETRY_AFTER) == {"CODE_TOO_SOON", "CODE_DAILY_LIMIT"}


def test_a_code_asked_for_too_soon_says_the_seconds_left_in_retry_after(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    me, body = ask_for_a_code(api, writer, clock)
    sent = api.post(CODE, json=body, headers=me)
    assert sent.status_code == 200 and "retry-after" not in sent.headers
    clock.advance(timedelta(seconds=15))
    soon = api.post(CODE, json=body, headers=me)
    assert soon.status_code == 429 and soon.json()["code"] == "CODE_TOO_SOON"
    assert soon.headers["Retry-After"] == "45" and soon.json()["details"] == {"seconds": 45}


def test_the_days_cap_says_the_seconds_to_midnight_in_shanghai_in_retry_after(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(get_settings(), "sms_codes_per_day", 1)
    clock.set(datetime(2026, 11, 23, 23, 57, tzinfo=BUSINESS_TZ))
    me, body = ask_for_a_code(api, writer, clock)
    assert api.post(CODE, json=body, headers=me).status_code == 200
    # 79.5 s before midnight in Shanghai (16:00 UTC): a whole second more, never one too few.
    clock.set(datetime(2026, 11, 23, 23, 58, 40, 500_000, tzinfo=BUSINESS_TZ))
    capped = api.post(CODE, json=body, headers=me)
    assert capped.status_code == 429 and capped.json()["code"] == "CODE_DAILY_LIMIT"
    assert capped.headers["Retry-After"] == "80"
    clock.advance(timedelta(seconds=80))  # the next business day: codes are sent again
    assert api.post(CODE, json=body, headers=me).status_code == 200


def test_an_error_other_than_429_carries_no_retry_after(api: TestClient) -> None:
    refused = api.post(CODE, json={})
    assert refused.status_code == 401 and "retry-after" not in refused.headers
