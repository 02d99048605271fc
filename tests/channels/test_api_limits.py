"""Enrolment (签约) and limits through the API (DOMAIN.md §2-§3): my channels and limits, lowering
at will and raising only with a token code up to the bank's maximum, leaving a channel, today's
use by the Shanghai business day, which factor a payment would need, online self-enrolment with
card + PIN + SMS code, counter enrolment by staff, and the bank's parameters under maker-checker.

The attacks: bad amounts change nothing; a wrong or replayed token code raises nothing; someone
else's account is as unknown as none; an unknown card answers like a wrong PIN; an SMS code
works once and only for the channel it was sent for; each side's token is refused on the other
side's endpoints. Every test runs on SQLite and PostgreSQL.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from ebank.accounts.service import open_account
from ebank.cards import service as cards
from ebank.core import audit
from ebank.core.clock import FixedClock
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log
from ebank.core.writer import Command, Writer
from ebank.customers.service import register_individual
from ebank.enrolment import service as enrolment
from ebank.limits import service as limits
from ebank.limits.tables import limit_usage
from ebank.security.tables import credentials
from tests.channels.api_support import (
    STEP,
    Person,
    account_with_money,
    bearer,
    begin,
    count,
    customer,
    login,
    member,
    sms_codes,
    staff_login,
    token_code,
    verify,
)
from tests.support import STAFF, VAULT, person_id

API = "/api/v1"
AMOUNT = re.compile(r"\d+\.\d\d")
CJK = re.compile(r"[\u4e00-\u9fff]")
PIN, WRONG_PIN = "804317", "804318"
NEW_PASSWORD = "Sunrise2026"
MISSING_ACCOUNT = "6217001999999999999"
Headers = dict[str, str]


@dataclass(frozen=True, slots=True)
class Me:
    person: Person
    account: str  # my funded Type I account's number
    headers: Headers


def enrol(writer: Writer, customer_id: int, channel: str = "online", **agreed: int) -> None:
    """Enrol at the counter, through the domain: logging in needs a live enrolment."""
    writer.execute(
        enrolment.enrol_at_counter(customer_id=customer_id, channel=channel, actor=STAFF, **agreed)
    )


def enrolled(writer: Writer, n: int) -> tuple[Person, str]:
    """Person `n` with a token and a funded Type I account, enrolled online at the counter."""
    person = customer(writer, n)
    account = account_with_money(writer, person, [100_000_00])
    enrol(writer, person.id)
    return person, account


def logged_in(api: TestClient, writer: Writer, clock: FixedClock, n: int = 1) -> Me:
    person, account = enrolled(writer, n)
    return Me(person, account, bearer(login(api, clock, person)))


@pytest.fixture
def me(api: TestClient, writer: Writer, clock: FixedClock) -> Me:
    return logged_in(api, writer, clock)


@pytest.fixture
def teller(api: TestClient, writer: Writer) -> Headers:
    member(writer, "teller1", "teller")
    return bearer(staff_login(api, "teller1"))


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def refused(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    body: dict[str, Any] = answer.json()
    return body


def enrolments(api: TestClient, headers: Headers) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = ok(api.get(f"{API}/me/enrolments", headers=headers))[
        "enrolments"
    ]
    return listed


def agreed(api: TestClient, headers: Headers, channel: str = "online") -> tuple[str, str]:
    """My (daily, per-payment) limits on a channel, as the API shows them."""
    [found] = [e for e in enrolments(api, headers) if e["channel"] == channel]
    return found["daily_limit"], found["per_payment_limit"]


def set_limits(
    api: TestClient, headers: Headers, daily: object, per_payment: object, **extra: object
) -> httpx.Response:
    body = {"daily_limit": daily, "per_payment_limit": per_payment, **extra}
    return api.put(f"{API}/me/enrolments/online/limits", headers=headers, json=body)


def fresh_code(person: Person, clock: FixedClock) -> str:
    """A token code of a step the customer has not used yet (login used the current one)."""
    clock.advance(timedelta(seconds=STEP))
    return token_code(person, clock)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def audited(engine: Engine, action: str) -> list[str]:
    """The actors of the audit records of an action, oldest first."""
    with engine.connect() as conn:
        query = select(audit_log.c.actor).where(audit_log.c.action == action)
        return list(conn.execute(query.order_by(audit_log.c.id)).scalars())


# -- my enrolments and limits -------------------------------------------------------------------
def test_my_enrolments_show_decimal_amounts_and_the_banks_maxima_in_channel_order(
    api, writer, clock
):
    other, _ = enrolled(writer, 2)
    enrol(writer, other.id, "sms")
    person, _ = enrolled(writer, 1)
    enrol(writer, person.id, "phone", daily_limit=2_000_00, per_payment_limit=500_00)
    listed = enrolments(api, bearer(login(api, clock, person)))
    assert [e["channel"] for e in listed] == ["online", "phone"]  # not the other's sms
    online, phone = listed
    assert online["assurance"] == phone["assurance"] == "counter"
    assert (online["daily_limit"], online["per_payment_limit"]) == ("1000000.00", "1000000.00")
    assert (online["bank_daily_maximum"], online["bank_per_payment_maximum"]) == (
        "1000000.00",
        "1000000.00",
    )
    assert (phone["daily_limit"], phone["per_payment_limit"]) == ("2000.00", "500.00")
    assert (phone["bank_daily_maximum"], phone["bank_per_payment_maximum"]) == (
        "5000.00",
        "5000.00",
    )
    for entry in listed:
        for field in ("daily_limit", "per_payment_limit", "bank_daily_maximum"):
            assert isinstance(entry[field], str) and AMOUNT.fullmatch(entry[field])


def test_lowering_my_limits_needs_no_factor(api, engine, me):
    lowered = ok(set_limits(api, me.headers, "50000.00", "10000.00"))
    assert (lowered["daily_limit"], lowered["per_payment_limit"]) == ("50000.00", "10000.00")
    assert lowered["bank_daily_maximum"] == "1000000.00"
    assert agreed(api, me.headers) == ("50000.00", "10000.00")
    assert audited(engine, "enrolment.limits") == [f"customer:{me.person.id}"]


def test_raising_a_limit_without_a_token_code_is_403_and_changes_nothing(api, me):
    ok(set_limits(api, me.headers, "50000.00", "10000.00"))
    for daily, per_payment in (("50000.01", "10000.00"), ("50000.00", "10000.01")):
        answer = set_limits(api, me.headers, daily, per_payment)
        body = refused(answer, 403, "STRONGER_FACTOR_REQUIRED")
        assert body["details"]["methods"] == ["token"]
    assert agreed(api, me.headers) == ("50000.00", "10000.00")


def test_raising_a_limit_with_a_token_code_works_and_the_code_works_once(api, clock, me):
    ok(set_limits(api, me.headers, "50000.00", "10000.00"))
    code = fresh_code(me.person, clock)
    raised = ok(set_limits(api, me.headers, "80000.00", "20000.00", token_code=code))
    assert (raised["daily_limit"], raised["per_payment_limit"]) == ("80000.00", "20000.00")
    assert agreed(api, me.headers) == ("80000.00", "20000.00")
    ok(set_limits(api, me.headers, "50000.00", "10000.00"))
    replayed = set_limits(api, me.headers, "80000.00", "20000.00", token_code=code)
    refused(replayed, 401, "AUTH_FAILED")
    wrong = other_code(fresh_code(me.person, clock))
    refused(
        set_limits(api, me.headers, "80000.00", "20000.00", token_code=wrong), 401, "AUTH_FAILED"
    )
    assert agreed(api, me.headers) == ("50000.00", "10000.00")


def test_raising_above_the_banks_maximum_is_422_even_with_a_token_code(api, clock, me):
    ok(set_limits(api, me.headers, "50000.00", "10000.00"))
    for daily, per_payment in (("1000000.01", "10000.00"), ("1000000.00", "1000000.01")):
        answer = set_limits(
            api, me.headers, daily, per_payment, token_code=fresh_code(me.person, clock)
        )
        body = refused(answer, 422, "ABOVE_BANK_MAXIMUM")
        assert body["details"] == {"daily": "1000000.00", "per_payment": "1000000.00"}
    assert agreed(api, me.headers) == ("50000.00", "10000.00")


def test_bad_amounts_and_bodies_are_400_and_change_nothing(api, engine, me):
    for bad, code in (
        ("1.5", "INVALID_AMOUNT"),  # CNY takes exactly two decimals
        ("-1", "INVALID_AMOUNT"),
        ("-1.00", "INVALID_AMOUNT"),
        ("1e3", "INVALID_AMOUNT"),
        ("99999999999999999999.00", "INVALID_AMOUNT"),
        (" 10.00", "INVALID_AMOUNT"),
        ("0.00", "INVALID_INPUT"),  # a limit is positive
        (100, "INVALID_INPUT"),  # an amount is a string, never a number
        (100.0, "INVALID_INPUT"),
        (None, "INVALID_INPUT"),
    ):
        for daily, per_payment in ((bad, "10.00"), ("10.00", bad)):
            answer = set_limits(api, me.headers, daily, per_payment)
            refused(answer, 400, code)
    refused(set_limits(api, me.headers, "10.00", "20.00"), 400, "INVALID_INPUT")  # per > daily
    refused(set_limits(api, me.headers, "10.00", "10.00", currency="USD"), 400, "INVALID_INPUT")
    atm = api.put(
        f"{API}/me/enrolments/atm/limits",
        headers=me.headers,
        json={"daily_limit": "10.00", "per_payment_limit": "10.00"},
    )
    refused(atm, 400, "INVALID_INPUT")
    assert agreed(api, me.headers) == ("1000000.00", "1000000.00")
    assert audited(engine, "enrolment.limits") == []


def test_leaving_a_channel_removes_it_from_my_list(api, writer, engine, clock):
    person, _ = enrolled(writer, 1)
    enrol(writer, person.id, "phone")
    headers = bearer(login(api, clock, person))
    assert ok(api.delete(f"{API}/me/enrolments/phone", headers=headers), 204) is None
    assert [e["channel"] for e in enrolments(api, headers)] == ["online"]
    refused(api.delete(f"{API}/me/enrolments/phone", headers=headers), 403, "NOT_ENROLLED")
    refused(api.delete(f"{API}/me/enrolments/atm", headers=headers), 400, "INVALID_INPUT")
    assert audited(engine, "enrolment.cancel") == [f"customer:{person.id}"]
    with engine.connect() as conn:
        assert [e.channel for e in enrolment.enrolments_of(conn, person.id)] == ["online"]


# -- today's use --------------------------------------------------------------------------------
def pay_others(writer: Writer, person: Person, account: str, amount: int) -> None:
    """A payment to another bank confirmed by SMS code, authorised as a payment service would."""
    payment = limits.Payment(
        customer_id=person.id, channel="online", kind="transfer", from_account=account,
        amount=amount, method="sms",
    )  # fmt: skip
    writer.execute(Command(lambda tx: limits.authorise(tx, payment)))


def test_my_limits_show_todays_use_by_the_shanghai_business_day(api, writer, clock):
    person, account = enrolled(writer, 1)
    other, theirs = enrolled(writer, 2)
    clock.set(datetime(2026, 11, 23, 15, 59, tzinfo=UTC))  # 23:59 on the 23rd in Shanghai
    pay_others(writer, person, account, 100_00)
    clock.set(datetime(2026, 11, 23, 16, 0, 30, tzinfo=UTC))  # UTC's 23rd, Shanghai's 24th
    pay_others(writer, person, account, 1_234_50)
    pay_others(writer, other, theirs, 777_00)
    mine = ok(api.get(f"{API}/me/limits", headers=bearer(login(api, clock, person))))
    assert mine["business_day"] == "2026-11-24"
    assert mine["usage"] == [
        {"scope": scope, "period": "2026-11-24", "amount": "1234.50", "payments": 1}
        for scope in ("channel:online", "method:sms", "others")
    ]
    bank = mine["bank_limits"]
    assert bank["limits.method.sms.daily"] == "20000.00"
    assert bank["limits.tier.III.daily"] == "2000.00"
    assert all(AMOUNT.fullmatch(value) for value in bank.values())


# -- what a payment would need ------------------------------------------------------------------
def assess(
    api: TestClient, me: Me, amount: str, *, payee: str | None = None,
    from_account: str | None = None, headers: Headers | None = None,
) -> httpx.Response:  # fmt: skip
    body = {"from_account": from_account or me.account, "amount": amount, "payee_account": payee}
    return api.post(
        f"{API}/me/payments/assess", headers={**me.headers, **(headers or {})}, json=body
    )


def test_assess_names_the_factors_a_payment_needs_by_payee_and_amount(
    api, writer, engine, clock, me
):
    pocket = writer.execute(open_account(customer_id=me.person.id, tier="II", actor=STAFF)).number
    other, _ = enrolled(writer, 2)
    theirs = writer.execute(open_account(customer_id=other.id, tier="II", actor=STAFF)).number
    for amount, payee, factors, warning in (
        ("900000.00", pocket, [], False),  # my own account: nothing needed
        ("100.00", theirs, ["sms", "token", "certificate"], False),
        ("100.00", None, ["sms", "token", "certificate"], False),  # another bank
        ("20000.00", theirs, ["sms", "token", "certificate"], False),
        ("20000.01", theirs, ["token", "certificate"], False),  # above the SMS daily maximum
        ("50000.00", theirs, ["token", "certificate"], False),
        ("50000.01", theirs, ["certificate"], False),  # an individual above ¥50,000 a day
        ("300000.01", theirs, ["certificate"], True),  # and the large-transfer warning
    ):
        found = ok(assess(api, me, amount, payee=payee))
        assert found == {"factors": factors, "large_warning": warning, "refusal": None}, amount
    assert count(engine, limit_usage) == 0  # asking counts nothing


def test_assess_refuses_a_type_iii_payment_above_2000_a_day_in_the_callers_language(
    api, writer, me
):
    wallet = writer.execute(open_account(customer_id=me.person.id, tier="III", actor=STAFF)).number
    within = ok(assess(api, me, "2000.00", payee=me.account, from_account=wallet))
    assert within == {"factors": [], "large_warning": False, "refusal": None}
    english = ok(
        assess(api, me, "2000.01", payee=me.account, from_account=wallet,
               headers={"Accept-Language": "en"})
    )  # fmt: skip
    assert (english["factors"], english["large_warning"]) == ([], False)
    refusal = english["refusal"]
    assert refusal["code"] == "LIMIT_EXCEEDED"
    assert refusal["details"]["limit"] == "tier_daily"
    assert refusal["details"]["cap"] == "2000.00" and refusal["details"]["tier"] == "III"
    assert "2000.00" in refusal["message"] and not CJK.search(refusal["message"])
    chinese = ok(assess(api, me, "2000.01", payee=me.account, from_account=wallet))["refusal"]
    assert chinese["details"] == refusal["details"] and CJK.search(chinese["message"])


def test_assessing_from_someone_elses_account_answers_like_a_missing_one(api, writer, me):
    _, theirs = enrolled(writer, 2)
    from_theirs = assess(api, me, "100.00", from_account=theirs)
    from_nowhere = assess(api, me, "100.00", from_account=MISSING_ACCOUNT)
    refused(from_theirs, 404, "ACCOUNT_NOT_FOUND")
    assert from_theirs.json() == from_nowhere.json()
    for amount in ("1.5", "0.00", "-1.00", "1e3"):
        refused(assess(api, me, amount), 400, "INVALID_AMOUNT")


# -- online self-enrolment ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cardholder:
    id: int
    mobile: str
    card: str  # the full number, as the customer types it


def cardholder(api: TestClient, writer: Writer, teller: Headers, n: int = 1) -> Cardholder:
    """A registered person with no login password and no enrolment; a teller issued their debit
    card and they typed its PIN on the counter's keypad."""
    mobile = f"139{n:08d}"
    view = writer.execute(
        register_individual(
            VAULT, name=f"客户{n}", id_number=person_id(n), mobile=mobile, actor=STAFF
        )
    )
    account = writer.execute(open_account(customer_id=view.id, tier="I", actor=STAFF))
    issued = api.post(
        f"{API}/staff/customers/{view.id}/cards",
        headers={**teller, "Idempotency-Key": f"card-{n}"},
        json={"kind": "debit", "account_number": account.number},
    )
    pin = api.put(
        f"{API}/staff/customers/{view.id}/credentials/transaction_pin",
        headers=teller,
        json={"secret": PIN},
    )
    ok(pin, 204)
    return Cardholder(view.id, mobile, ok(issued, 201)["number"])


def self_begin(
    api: TestClient, card: str, pin: str = PIN, channel: str = "online"
) -> httpx.Response:
    body = {"card_number": card, "pin": pin, "channel": channel}
    return api.post(f"{API}/enrolment/self/begin", json=body)


def self_complete(
    api: TestClient, card: str, code: str, channel: str = "online", password: str = NEW_PASSWORD
) -> httpx.Response:
    body = {"card_number": card, "code": code, "login_password": password, "channel": channel}
    return api.post(f"{API}/enrolment/self/complete", json=body)


def texted(api: TestClient, engine: Engine, holder: Cardholder, channel: str = "online") -> str:
    """Begin self-enrolment with the right PIN; the code the customer's phone shows."""
    assert ok(self_begin(api, holder.card, channel=channel))["sms_sent"] is True
    return sms_codes(engine, holder.id)[-1]


def unknown_card() -> str:
    """A well-formed card number (BIN, Luhn) the bank never issued."""
    return cards.card_number(get_settings().debit_card_bin, 987_654_321)


def has_password(engine: Engine, customer_id: int) -> bool:
    with engine.connect() as conn:
        query = select(func.count()).where(
            credentials.c.customer_id == customer_id, credentials.c.kind == "login_password"
        )
        return bool(conn.execute(query).scalar_one())


def test_self_enrolment_end_to_end_gives_the_low_limits_and_a_login(api, writer, engine, teller):
    holder = cardholder(api, writer, teller)
    code = texted(api, engine, holder)
    done = ok(self_complete(api, holder.card, code))
    assert (done["channel"], done["assurance"]) == ("online", "self")
    assert (done["daily_limit"], done["per_payment_limit"]) == ("5000.00", "1000.00")
    assert (done["bank_daily_maximum"], done["bank_per_payment_maximum"]) == ("5000.00", "1000.00")
    started = ok(begin(api, holder.mobile, NEW_PASSWORD, send_sms=True))
    assert started["factors"] == ["sms"]  # no token: the SMS code it is
    session = ok(verify(api, started["challenge"], "sms", sms_codes(engine, holder.id)[-1]))
    headers = bearer(session["token"])
    assert enrolments(api, headers) == [done]
    body = refused(set_limits(api, headers, "5000.01", "1000.00"), 422, "ABOVE_BANK_MAXIMUM")
    assert body["details"] == {"daily": "5000.00", "per_payment": "1000.00"}
    assert audited(engine, "enrolment.self") == [f"customer:{holder.id}"]


def test_an_unknown_card_answers_exactly_like_a_wrong_pin_and_texts_nothing(
    api, writer, engine, teller
):
    holder = cardholder(api, writer, teller)
    unknown, wrong = self_begin(api, unknown_card()), self_begin(api, holder.card, WRONG_PIN)
    refused(unknown, 401, "AUTH_FAILED")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
    assert sms_codes(engine, holder.id) == []
    code = texted(api, engine, holder)
    nobody = self_complete(api, unknown_card(), code)
    mistyped = self_complete(api, holder.card, other_code(code))
    refused(nobody, 401, "AUTH_FAILED")
    assert (nobody.status_code, nobody.json()) == (mistyped.status_code, mistyped.json())
    assert not has_password(engine, holder.id)
    assert ok(api.get(f"{API}/staff/customers/{holder.id}/enrolments", headers=teller)) == {
        "enrolments": []
    }


def test_a_self_enrolment_code_works_once(api, writer, engine, teller):
    holder = cardholder(api, writer, teller)
    code = texted(api, engine, holder)
    ok(self_complete(api, holder.card, code))
    replayed = self_complete(api, holder.card, code, password="Intruder2026")
    refused(replayed, 401, "AUTH_FAILED")
    refused(begin(api, holder.mobile, "Intruder2026"), 401, "AUTH_FAILED")  # not set by a replay
    assert ok(begin(api, holder.mobile, NEW_PASSWORD))["factors"] == ["sms"]
    assert audited(engine, "enrolment.self") == [f"customer:{holder.id}"]


def test_a_refused_password_spends_no_code(api, writer, engine, teller):
    holder = cardholder(api, writer, teller)
    code = texted(api, engine, holder)
    refused(self_complete(api, holder.card, code, password="short1"), 400, "INVALID_INPUT")
    assert not has_password(engine, holder.id)
    ok(self_complete(api, holder.card, code))


def test_a_code_sent_for_one_channel_does_not_enrol_another(api, writer, engine, teller):
    holder = cardholder(api, writer, teller)
    code = texted(api, engine, holder, "online")
    refused(self_complete(api, holder.card, code, channel="mobile"), 401, "AUTH_FAILED")
    path = f"{API}/staff/customers/{holder.id}/enrolments"
    assert ok(api.get(path, headers=teller)) == {"enrolments": []}
    assert not has_password(engine, holder.id)
    ok(self_complete(api, holder.card, code, channel="online"))  # it still does what it was for
    assert [e["channel"] for e in ok(api.get(path, headers=teller))["enrolments"]] == ["online"]


def test_changing_another_channels_limits_is_audited_on_the_channel_it_came_through(
    api, writer, engine, clock
):
    person, _ = enrolled(writer, 1)
    enrol(writer, person.id, "phone")
    headers = bearer(login(api, clock, person))  # an online banking session
    body = {"daily_limit": "50.00", "per_payment_limit": "50.00"}
    ok(api.put(f"{API}/me/enrolments/phone/limits", headers=headers, json=body))
    with engine.connect() as conn:
        query = select(audit_log.c.channel, audit_log.c.detail).where(
            audit_log.c.action == "enrolment.limits"
        )
        [(channel, detail)] = conn.execute(query).all()
    assert "phone" in str(detail)  # what changed
    assert channel == "online"  # where it was done from


# -- staff at the counter -----------------------------------------------------------------------
def test_a_teller_enrols_a_customer_at_the_counter_with_limits(api, writer, engine, clock, teller):
    person = customer(writer, 1)
    path = f"{API}/staff/customers/{person.id}/enrolments"
    online = ok(
        api.put(
            f"{path}/online",
            headers=teller,
            json={"daily_limit": "50000.00", "per_payment_limit": "5000.00"},
        )
    )
    assert (online["assurance"], online["daily_limit"], online["per_payment_limit"]) == (
        "counter",
        "50000.00",
        "5000.00",
    )
    phone = ok(api.put(f"{path}/phone", headers=teller, json={}))  # the bank's maximum
    assert (phone["daily_limit"], phone["per_payment_limit"]) == ("5000.00", "5000.00")
    too_high = api.put(f"{path}/phone", headers=teller, json={"daily_limit": "5000.01"})
    refused(too_high, 422, "ABOVE_BANK_MAXIMUM")
    refused(
        api.put(f"{path}/phone", headers=teller, json={"daily_limit": 500}), 400, "INVALID_INPUT"
    )
    listed = ok(api.get(path, headers=teller))["enrolments"]
    assert listed == [online, phone]
    assert enrolments(api, bearer(login(api, clock, person))) == listed  # the customer sees it
    staff_id = ok(api.get(f"{API}/staff/me", headers=teller))["id"]
    assert audited(engine, "enrolment.counter") == [f"staff:{staff_id}"] * 2
    assert ok(api.delete(f"{path}/phone", headers=teller), 204) is None
    assert [e["channel"] for e in ok(api.get(path, headers=teller))["enrolments"]] == ["online"]
    refused(api.delete(f"{path}/phone", headers=teller), 403, "NOT_ENROLLED")
    with engine.connect() as conn:
        assert audit.verify(conn).ok


def test_risk_staff_may_look_but_not_enrol_and_an_unknown_customer_is_404(api, writer, teller):
    person = customer(writer, 1)
    enrol(writer, person.id)
    member(writer, "risk1", "risk")
    risk = bearer(staff_login(api, "risk1"))
    path = f"{API}/staff/customers/{person.id}/enrolments"
    assert [e["channel"] for e in ok(api.get(path, headers=risk))["enrolments"]] == ["online"]
    refused(api.put(f"{path}/phone", headers=risk, json={}), 403, "FORBIDDEN")
    refused(api.delete(f"{path}/online", headers=risk), 403, "FORBIDDEN")
    missing = f"{API}/staff/customers/{person.id + 1000}/enrolments/online"
    refused(api.put(missing, headers=teller, json={}), 404, "CUSTOMER_NOT_FOUND")
    assert [e["channel"] for e in ok(api.get(path, headers=risk))["enrolments"]] == ["online"]


def test_each_sides_token_is_refused_on_the_other_sides_endpoints(api, writer, engine, me, teller):
    amounts = {"daily_limit": "10.00", "per_payment_limit": "10.00"}
    mine = [
        ("GET", "/me/enrolments", None),
        ("PUT", "/me/enrolments/online/limits", amounts),
        ("DELETE", "/me/enrolments/online", None),
        ("GET", "/me/limits", None),
        ("POST", "/me/payments/assess", {"from_account": me.account, "amount": "1.00"}),
    ]
    staffs = [
        ("PUT", f"/staff/customers/{me.person.id}/enrolments/online", amounts),
        ("GET", f"/staff/customers/{me.person.id}/enrolments", None),
        ("DELETE", f"/staff/customers/{me.person.id}/enrolments/online", None),
        ("GET", "/staff/parameters", None),
    ]
    for (method, path, body), headers, status, code in [
        *((call, {}, 401, "AUTH_REQUIRED") for call in mine + staffs),
        *((call, teller, 403, "FORBIDDEN") for call in mine),
        *((call, me.headers, 403, "FORBIDDEN") for call in staffs),
    ]:
        answer = api.request(method, f"{API}{path}", headers=headers, json=body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), (method, path)
    assert agreed(api, me.headers) == ("1000000.00", "1000000.00")
    assert audited(engine, "enrolment.cancel") == []


# -- the bank's parameters ----------------------------------------------------------------------
def parameters_of(api: TestClient, headers: Headers) -> dict[str, dict[str, Any]]:
    listed = ok(api.get(f"{API}/staff/parameters", headers=headers))["parameters"]
    assert [p["name"] for p in listed] == sorted(p["name"] for p in listed)
    return {p["name"]: p for p in listed}


def test_staff_read_the_banks_parameters_as_the_customer_sees_them(api, me, teller):
    found = parameters_of(api, teller)
    sms = found["limits.method.sms.daily"]
    assert (sms["value"], sms["default"]) == (2_000_000, 2_000_000)
    assert "SMS" in sms["meaning"]
    assert sms["unit"] == found["cards.credit_line.alone_max"]["unit"] == "fen"
    assert found["complaints.due_days"]["unit"] == "days"
    shown = ok(api.get(f"{API}/me/limits", headers=me.headers))["bank_limits"]
    assert set(shown) == {name for name in found if name.startswith("limits.")}
    for name, amount in shown.items():
        assert amount == f"{found[name]['value'] // 100}.{found[name]['value'] % 100:02d}"


def test_a_parameter_changed_by_maker_and_checker_changes_what_is_shown(api, writer, me):
    member(writer, "teller1", "teller")
    member(writer, "super1", "supervisor")
    maker, checker = bearer(staff_login(api, "teller1")), bearer(staff_login(api, "super1"))
    name = "limits.channel.online.daily"
    body = {
        "action": "parameter.set",
        "params": {"name": name, "value": 500_000_00},
        "reason": "监管新规",
    }

    def shown() -> tuple[str, int, str]:
        bank = ok(api.get(f"{API}/me/limits", headers=me.headers))["bank_limits"][name]
        [online] = enrolments(api, me.headers)
        return bank, parameters_of(api, checker)[name]["value"], online["bank_daily_maximum"]

    request = ok(
        api.post(f"{API}/staff/approvals", headers={**maker, "Idempotency-Key": "p1"}, json=body),
        201,
    )
    assert shown() == ("1000000.00", 1_000_000_00, "1000000.00")  # nothing while pending
    own = api.post(f"{API}/staff/approvals/{request['id']}/approve", headers=maker, json={})
    refused(own, 403, "FORBIDDEN")  # a teller proposes, never decides
    approved = ok(
        api.post(f"{API}/staff/approvals/{request['id']}/approve", headers=checker, json={})
    )
    assert approved["status"] == "approved"
    assert shown() == ("500000.00", 500_000_00, "500000.00")
    assert parameters_of(api, checker)[name]["default"] == 1_000_000_00


# -- the OpenAPI document -----------------------------------------------------------------------
def test_the_openapi_document_lists_the_enrolment_and_limits_endpoints(api):
    document = api.get(f"{API}/openapi.json").json()
    paths = document["paths"]
    for path, method, scheme in (
        ("/api/v1/me/enrolments", "get", "customer"),
        ("/api/v1/me/enrolments/{channel}/limits", "put", "customer"),
        ("/api/v1/me/enrolments/{channel}", "delete", "customer"),
        ("/api/v1/me/limits", "get", "customer"),
        ("/api/v1/me/payments/assess", "post", "customer"),
        ("/api/v1/enrolment/self/begin", "post", None),
        ("/api/v1/enrolment/self/complete", "post", None),
        ("/api/v1/staff/customers/{customer_id}/enrolments/{channel}", "put", "staff"),
        ("/api/v1/staff/customers/{customer_id}/enrolments", "get", "staff"),
        ("/api/v1/staff/customers/{customer_id}/enrolments/{channel}", "delete", "staff"),
        ("/api/v1/staff/parameters", "get", "staff"),
    ):
        operation = paths.get(path, {}).get(method)
        assert operation is not None, (method, path)
        assert operation.get("security") == (None if scheme is None else [{scheme: []}]), path


def test_the_approvals_endpoint_documents_the_parameter_change(api):
    paths = api.get(f"{API}/openapi.json").json()["paths"]
    assert "parameter.set" in paths["/api/v1/staff/approvals"]["post"]["description"]
