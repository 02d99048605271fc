"""An answer that means "not now" says when to ask again: a 423, 429 or 503 whose wait the
domain knows carries it in `details.seconds`, and the API repeats it in `Retry-After`, whole
seconds rounded up by the bank's clock. Every 429 code has such a wait (each is raised below
through HTTP); a locked login says the seconds its lock has left; other answers carry no header.

Every test that touches the database runs on SQLite and PostgreSQL."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ebank.channels.api.errors import install
from ebank.core.clock import BUSINESS_TZ, FixedClock
from ebank.core.errors import CATALOGUE, EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Writer
from tests.channels.api_support import (
    ONLINE,
    WRONG,
    account_with_money,
    bearer,
    begin,
    customer,
    login,
)

CODE = "/api/v1/me/transfers/sms-code"


@dataclass(frozen=True, slots=True)
class Refusal:
    answer: httpx.Response
    seconds: int  # the wait the test clock makes it
    again: Callable[[], httpx.Response]  # the same request, asked again


Scenario = Callable[[TestClient, Writer, FixedClock, pytest.MonkeyPatch], Refusal]


def ask_for_a_code(
    api: TestClient, writer: Writer, clock: FixedClock
) -> Callable[[], httpx.Response]:
    """A logged-in customer's request for a transfer's SMS code."""
    person = customer(writer, 1, enrolled=ONLINE)
    account = account_with_money(writer, person, [50_000_00])
    bob = account_with_money(writer, customer(writer, 2), [])
    body = {"from_account": account, "payee_account": bob, "payee_name": "客户2", "amount": "10.00"}
    me = bearer(login(api, clock, person))
    return lambda: api.post(CODE, json=body, headers=me)


def code_too_soon(
    api: TestClient, writer: Writer, clock: FixedClock, _monkeypatch: pytest.MonkeyPatch
) -> Refusal:
    ask = ask_for_a_code(api, writer, clock)
    sent = ask()
    assert sent.status_code == 200 and "retry-after" not in sent.headers
    clock.advance(timedelta(seconds=15.25))  # 44.75 s of the minute's interval left
    return Refusal(ask(), 45, ask)


def code_daily_limit(
    api: TestClient, writer: Writer, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Refusal:
    monkeypatch.setattr(get_settings(), "sms_codes_per_day", 1)
    clock.set(datetime(2026, 11, 23, 23, 57, tzinfo=BUSINESS_TZ))
    ask = ask_for_a_code(api, writer, clock)
    assert ask().status_code == 200
    # 79.5 s before midnight in Shanghai (16:00 UTC), when the business day's cap starts again.
    clock.set(datetime(2026, 11, 23, 23, 58, 40, 500_000, tzinfo=BUSINESS_TZ))
    return Refusal(ask(), 80, ask)


# Every code the catalogue answers 429, and how to meet it through HTTP.
TOO_MANY: dict[str, Scenario] = {
    "CODE_TOO_SOON": code_too_soon,
    "CODE_DAILY_LIMIT": code_daily_limit,
}


def test_every_429_code_in_the_catalogue_is_met_below_with_its_wait() -> None:
    assert {code for code, kind in CATALOGUE.items() if kind.status == 429} == set(TOO_MANY)


@pytest.mark.parametrize("code", sorted(TOO_MANY))
def test_a_429_says_the_seconds_to_wait_in_retry_after_and_details_and_they_are_enough(
    code: str, api: TestClient, writer: Writer, clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    refusal = TOO_MANY[code](api, writer, clock, monkeypatch)
    assert (refusal.answer.status_code, refusal.answer.json()["code"]) == (429, code)
    assert refusal.answer.headers["Retry-After"] == str(refusal.seconds)
    assert refusal.answer.json()["details"]["seconds"] == refusal.seconds
    clock.advance(timedelta(seconds=refusal.seconds - 1))  # under a second left: rounded up
    early = refusal.again()
    assert (early.status_code, early.headers["Retry-After"]) == (429, "1")
    clock.advance(timedelta(seconds=1))
    later = refusal.again()
    assert later.status_code == 200 and "retry-after" not in later.headers


def test_a_locked_login_says_the_seconds_its_lock_has_left_in_retry_after_and_details(
    api: TestClient, writer: Writer, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    *_, locked = [begin(api, person.mobile, WRONG) for _ in range(get_settings().auth_max_failures)]
    lock = get_settings().auth_lock_minutes * 60
    assert (locked.status_code, locked.json()["code"]) == (423, "CREDENTIAL_LOCKED")
    assert locked.headers["Retry-After"] == str(lock)
    details = locked.json()["details"]
    assert details["seconds"] == lock
    assert datetime.fromisoformat(details["until"]) == clock.now() + timedelta(seconds=lock)
    clock.advance(timedelta(seconds=lock - 0.5))
    early = begin(api, person.mobile)  # the right password, half a second early
    assert (early.status_code, early.headers["Retry-After"]) == (423, "1")
    assert early.json()["details"]["seconds"] == 1
    clock.advance(timedelta(seconds=1))
    assert begin(api, person.mobile).status_code == 200


def test_an_error_other_than_423_429_503_carries_no_retry_after(api: TestClient) -> None:
    refused = api.post(CODE, json={})
    assert refused.status_code == 401 and "retry-after" not in refused.headers


@pytest.mark.parametrize(
    "error, header",
    [
        (EbankError("INTERBANK_UNAVAILABLE", seconds=30), "30"),
        (EbankError("INTERBANK_UNAVAILABLE"), None),  # no wait known: none said
        (EbankError("CREDENTIAL_LOCKED_PERMANENTLY"), None),
        (EbankError("INVALID_INPUT", reason="r", seconds=5), None),  # not an answer to wait on
    ],
    ids=lambda value: getattr(value, "code", value),
)
def test_retry_after_is_the_details_seconds_of_a_423_429_or_503_alone(
    error: EbankError, header: str | None
) -> None:
    app = FastAPI()
    install(app)

    @app.get("/refused")
    async def refused() -> None:
        raise error

    answer = TestClient(app).get("/refused")
    assert (answer.status_code, answer.json()["code"]) == (error.status, error.code)
    assert answer.headers.get("Retry-After") == header
