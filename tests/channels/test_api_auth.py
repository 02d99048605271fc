"""Logging in through the API (DOMAIN.md §3): a password, then an SMS or token code; one lockout
for the whole login; errors that never say which factor was wrong; sessions that end 5 minutes
idle or 12 hours after they began; customers' and staff's tokens each good only on their side.

Every test runs on SQLite and PostgreSQL.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from ebank.core.settings import get_settings
from ebank.core.tables import audit_log
from ebank.security import service as security
from ebank.security.tables import credentials, login_challenges, sessions
from tests.channels.api_support import (
    DEVICE,
    PASSWORD,
    STAFF_PASSWORD,
    WRONG,
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

ME = "/api/v1/me"


def idle() -> timedelta:
    return timedelta(seconds=get_settings().session_idle_seconds)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def failures_of(engine, customer_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(credentials.c.failures).where(
                credentials.c.customer_id == customer_id, credentials.c.kind == "login_password"
            )
        ).scalar_one()


# -- the two steps ------------------------------------------------------------------------------
def test_password_then_token_code_opens_a_session_whose_token_works(api, writer, clock):
    person = customer(writer, 1)
    started = begin(api, person.id_number)
    assert started.status_code == 200
    body = started.json()
    assert body["factors"] == ["sms", "token"]
    assert body["sms_sent"] is False
    done = verify(api, body["challenge"], "token", token_code(person, clock))
    assert done.status_code == 200, done.json()
    session = done.json()
    assert session["token_type"] == "bearer"
    assert session["session"]["channel"] == "online" and session["session"]["current"]
    assert session["idle_timeout_seconds"] == 300
    me = api.get(ME, headers=bearer(session["token"]))
    assert me.status_code == 200
    assert me.json()["id"] == person.id


def test_password_then_sms_code_by_mobile_number_opens_a_session(api, writer, engine):
    person = customer(writer, 1, token=False)
    started = begin(api, person.mobile, send_sms=True)
    assert started.status_code == 200
    assert started.json()["factors"] == ["sms"]  # no token enrolled: not offered
    assert started.json()["sms_sent"] is True
    (code,) = sms_codes(engine, person.id)
    done = verify(api, started.json()["challenge"], "sms", code)
    assert done.status_code == 200, done.json()
    assert api.get(ME, headers=bearer(done.json()["token"])).json()["id"] == person.id


def test_no_sms_is_sent_unless_asked_nor_after_a_wrong_password(api, writer, engine):
    person = customer(writer, 1)
    assert begin(api, person.mobile).status_code == 200
    assert begin(api, person.mobile, WRONG, send_sms=True).status_code == 401
    assert sms_codes(engine, person.id) == []


def test_wrong_password_wrong_codes_and_unknown_customers_answer_alike(api, writer, engine, clock):
    first, second, third = (customer(writer, n) for n in (1, 2, 3))
    answers = [begin(api, first.mobile, WRONG), begin(api, "13999999999")]
    challenge = begin(api, second.mobile, send_sms=True).json()["challenge"]
    (sms,) = sms_codes(engine, second.id)
    answers.append(verify(api, challenge, "sms", other_code(sms)))
    challenge = begin(api, third.mobile).json()["challenge"]
    answers.append(verify(api, challenge, "token", other_code(token_code(third, clock))))
    assert [a.status_code for a in answers] == [401] * 4
    assert all(a.json() == answers[0].json() for a in answers), [a.json() for a in answers]
    assert answers[0].json()["code"] == "AUTH_FAILED"
    english = api.post(
        "/api/v1/auth/login",
        json={"login": first.mobile, "password": WRONG},
        headers={"Accept-Language": "en"},
    ).json()
    for message in (answers[0].json()["message"], english["message"]):
        for word in ("password", "密码", "token", "口令", "SMS", "短信"):
            assert word not in message, message


class CountingHasher:
    """The hasher in use, counting which hashes it checked passwords against."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.checked: list[str] = []

    def hash(self, secret: str) -> str:
        return self.inner.hash(secret)

    def verify(self, stored: str, secret: str) -> bool:
        self.checked.append(stored)
        return self.inner.verify(stored, secret)


def test_an_unknown_customer_costs_a_password_hash_like_a_known_one(api, writer, monkeypatch):
    person = customer(writer, 1)
    counting = CountingHasher(security._hasher)
    monkeypatch.setattr(security, "_hasher", counting)
    begin(api, person.mobile, WRONG)
    begin(api, "13999999999", WRONG)
    known, unknown = counting.checked
    assert known != unknown  # a decoy, hashed all the same


def test_malformed_logins_are_400_and_count_nothing(api, writer, engine):
    person = customer(writer, 1)
    for body in (
        {"login": "12345", "password": PASSWORD},
        {"login": person.mobile, "password": 12345678},
        {"login": person.mobile},
        {"login": person.mobile, "password": PASSWORD, "channel": "atm"},
        {"login": person.mobile, "password": PASSWORD, "extra": 1},
        {"login": "1" * 10_000, "password": PASSWORD},
    ):
        answer = api.post("/api/v1/auth/login", json=body)
        assert answer.status_code == 400, (body, answer.json())
        assert answer.json()["code"] == "INVALID_INPUT"
    assert failures_of(engine, person.id) == 0
    assert count(engine, login_challenges) == 0


# -- lockout ------------------------------------------------------------------------------------
def test_five_wrong_passwords_lock_with_warnings_before(api, writer, clock):
    person = customer(writer, 1)
    answers = [begin(api, person.mobile, WRONG).json() for _ in range(5)]
    assert [a["code"] for a in answers] == [
        "AUTH_FAILED",
        "AUTH_FAILED",
        "AUTH_FAILED_WARNING",
        "AUTH_FAILED_WARNING",
        "CREDENTIAL_LOCKED",
    ]
    assert [a["details"].get("attempts_left") for a in answers[2:4]] == [2, 1]
    locked = begin(api, person.mobile)  # the right password, now refused
    assert locked.status_code == 423
    assert locked.json()["code"] == "CREDENTIAL_LOCKED"
    clock.advance(timedelta(minutes=get_settings().auth_lock_minutes, seconds=1))
    assert begin(api, person.mobile).status_code == 200


def test_wrong_codes_count_on_the_same_lockout_and_a_right_password_does_not_reset_it(
    api, writer, engine, clock
):
    person = customer(writer, 1)
    for _ in range(3):
        begin(api, person.mobile, WRONG)
    challenge = begin(api, person.mobile).json()["challenge"]
    assert failures_of(engine, person.id) == 3  # the right password settled nothing yet
    code = other_code(token_code(person, clock))
    assert verify(api, challenge, "token", code).json()["code"] == "AUTH_FAILED_WARNING"
    again = begin(api, person.mobile, send_sms=True).json()["challenge"]
    (sms,) = sms_codes(engine, person.id)
    locked = verify(api, again, "sms", other_code(sms))
    assert locked.status_code == 423
    # Locked: neither the right code nor the right password gets in now.
    assert verify(api, again, "sms", sms).json()["code"] == "CREDENTIAL_LOCKED"
    assert begin(api, person.mobile).json()["code"] == "CREDENTIAL_LOCKED"
    with engine.connect() as conn:
        assert conn.execute(select(sessions)).first() is None


def test_a_completed_login_ends_the_run_of_failures(api, writer, engine, clock):
    person = customer(writer, 1)
    for _ in range(4):
        begin(api, person.mobile, WRONG)
    login(api, clock, person)
    assert failures_of(engine, person.id) == 0


def test_failed_logins_are_in_the_audit_chain(api, writer, engine):
    person = customer(writer, 1)
    begin(api, person.mobile, WRONG)
    begin(api, "13999999999", WRONG)
    with engine.connect() as conn:
        failed = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.outcome == "failed")
        ).scalars()
        assert sorted(failed) == ["anonymous", f"customer:{person.id}"]


# -- the challenge ------------------------------------------------------------------------------
def test_a_challenge_completes_once(api, writer, clock):
    person = customer(writer, 1)
    challenge = begin(api, person.mobile).json()["challenge"]
    assert verify(api, challenge, "token", token_code(person, clock)).status_code == 200
    clock.advance(timedelta(seconds=30))
    again = verify(api, challenge, "token", token_code(person, clock))
    assert again.status_code == 401
    assert again.json()["code"] == "SESSION_EXPIRED"


def test_a_challenge_expires_with_its_sms_code(api, writer, engine, clock):
    person = customer(writer, 1)
    challenge = begin(api, person.mobile, send_sms=True).json()["challenge"]
    (sms,) = sms_codes(engine, person.id)
    clock.advance(timedelta(seconds=get_settings().sms_code_ttl_seconds))
    assert verify(api, challenge, "sms", sms).json()["code"] == "SESSION_EXPIRED"


def test_an_sms_code_completes_only_the_login_it_was_sent_for(api, writer, engine):
    person = customer(writer, 1)
    first = begin(api, person.mobile, send_sms=True).json()["challenge"]
    (code,) = sms_codes(engine, person.id)
    second = begin(api, person.mobile).json()["challenge"]  # no new SMS: the code still stands
    assert verify(api, second, "sms", code).json()["code"] == "AUTH_FAILED"
    assert verify(api, first, "sms", code).status_code == 200


def test_someone_elses_challenge_or_garbage_gets_nowhere(api, writer, clock):
    mine, theirs = customer(writer, 1), customer(writer, 2)
    challenge = begin(api, theirs.mobile).json()["challenge"]
    # My token code does not complete their login.
    assert verify(api, challenge, "token", token_code(mine, clock)).status_code == 401
    for garbage in ("", "x", challenge + "x", "令牌" * 10):
        answer = verify(api, garbage, "token", token_code(theirs, clock))
        assert answer.status_code in (400, 401), answer.json()
    assert verify(api, challenge, "token", token_code(theirs, clock)).status_code == 200


# -- the mobile channel -------------------------------------------------------------------------
def test_mobile_login_needs_its_device_and_finishes_on_the_same_one(api, writer, clock):
    person = customer(writer, 1)
    assert begin(api, person.mobile, channel="mobile").json()["code"] == "INVALID_INPUT"
    challenge = begin(api, person.mobile, channel="mobile", device=DEVICE).json()["challenge"]
    code = token_code(person, clock)
    assert verify(api, challenge, "token", code, device="another").status_code == 401
    assert verify(api, challenge, "token", code).status_code == 401
    done = verify(api, challenge, "token", code, device=DEVICE)
    assert done.status_code == 200
    assert done.json()["session"]["channel"] == "mobile"


# -- sessions -----------------------------------------------------------------------------------
def test_no_token_or_a_bad_one_is_401(api, writer, clock):
    person = customer(writer, 1)
    token = login(api, clock, person)
    missing = api.get(ME)
    assert missing.status_code == 401 and missing.json()["code"] == "AUTH_REQUIRED"
    for headers in (
        bearer("not-a-token"),
        bearer(token + "x"),
        {"Authorization": f"Basic {token}"},
        {"Authorization": token},
    ):
        answer = api.get(ME, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["code"] in ("AUTH_REQUIRED", "SESSION_EXPIRED")
    assert api.get(ME, headers=bearer(token)).status_code == 200


def test_a_session_idle_for_five_minutes_is_401(api, writer, clock):
    person = customer(writer, 1)
    token = login(api, clock, person)
    clock.advance(idle() - timedelta(seconds=1))
    assert api.get(ME, headers=bearer(token)).status_code == 200
    clock.advance(idle())
    expired = api.get(ME, headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json()["code"] == "SESSION_EXPIRED"


def test_a_busy_session_ends_twelve_hours_after_it_began(api, writer, clock):
    person = customer(writer, 1)
    token = login(api, clock, person)
    began = clock.now()
    end = began + timedelta(hours=get_settings().session_absolute_hours)
    while clock.now() + timedelta(minutes=4) < end:
        clock.advance(timedelta(minutes=4))
        assert api.get(ME, headers=bearer(token)).status_code == 200
    clock.set(end)
    assert api.get(ME, headers=bearer(token)).json()["code"] == "SESSION_EXPIRED"


def test_logout_ends_the_session(api, writer, clock):
    person = customer(writer, 1)
    token = login(api, clock, person)
    assert api.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert api.get(ME, headers=bearer(token)).status_code == 401


# -- staff --------------------------------------------------------------------------------------
def test_staff_log_in_and_see_their_roles(api, writer):
    staff_id = member(writer, "teller1", "teller")
    done = api.post(
        "/api/v1/staff/auth/login", json={"username": "Teller1 ", "password": STAFF_PASSWORD}
    )
    assert done.status_code == 200
    assert done.json()["staff"] == {
        "id": staff_id,
        "username": "teller1",
        "name": "Teller1",
        "roles": ["teller"],
    }
    assert done.json()["session"]["channel"] == "console"
    me = api.get("/api/v1/staff/me", headers=bearer(done.json()["token"]))
    assert me.json()["id"] == staff_id


def test_staff_wrong_password_and_unknown_username_answer_alike_and_lock_after_five(api, writer):
    member(writer, "teller1", "teller")

    def attempt(username: str, password: str = WRONG):
        body = {"username": username, "password": password}
        return api.post("/api/v1/staff/auth/login", json=body)

    assert attempt("teller1").json() == attempt("nobody").json() == attempt("x").json()
    codes = [attempt("teller1").json()["code"] for _ in range(4)]
    assert codes == [
        "AUTH_FAILED",
        "AUTH_FAILED_WARNING",
        "AUTH_FAILED_WARNING",
        "CREDENTIAL_LOCKED",
    ]
    assert attempt("teller1", STAFF_PASSWORD).status_code == 423


def test_staff_sessions_end_after_idle_and_on_logout(api, writer, clock):
    member(writer, "teller1", "teller")
    token = staff_login(api, "teller1")
    clock.advance(idle())
    assert api.get("/api/v1/staff/me", headers=bearer(token)).status_code == 401
    token = staff_login(api, "teller1")
    assert api.post("/api/v1/staff/auth/logout", headers=bearer(token)).status_code == 204
    assert api.get("/api/v1/staff/me", headers=bearer(token)).status_code == 401


def test_customer_tokens_are_refused_by_staff_endpoints_and_staff_tokens_by_customers(
    api, writer, engine, clock
):
    person = customer(writer, 1)
    member(writer, "super1", "supervisor", "teller", "risk")
    customer_token, staff_token = login(api, clock, person), staff_login(api, "super1")
    for path in (
        "/api/v1/staff/me",
        "/api/v1/staff/approvals",
        f"/api/v1/staff/customers/{person.id}",
    ):
        answer = api.get(path, headers=bearer(customer_token))
        assert answer.status_code == 403 and answer.json()["code"] == "FORBIDDEN", path
    registered = api.post(
        "/api/v1/staff/customers/individuals",
        headers={**bearer(customer_token), "Idempotency-Key": "k"},
        json={"name": "x", "id_number": person.id_number, "mobile": person.mobile},
    )
    assert registered.status_code == 403
    for path in (ME, "/api/v1/me/accounts", "/api/v1/me/sessions"):
        answer = api.get(path, headers=bearer(staff_token))
        assert answer.status_code == 403 and answer.json()["code"] == "FORBIDDEN", path
    assert api.post("/api/v1/auth/logout", headers=bearer(staff_token)).status_code == 403


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [
        (("teller",), {"counter", "lookup", "maker"}),
        (("supervisor",), {"counter", "lookup", "maker", "checker"}),
        (("risk",), {"lookup", "maker", "checker"}),
        (("admin",), set()),
    ],
)
def test_each_role_does_only_its_own_work(api, writer, roles, allowed):
    person = customer(writer, 1)
    member(writer, "someone", *roles)
    headers = {**bearer(staff_login(api, "someone")), "Idempotency-Key": "k1"}
    attempts = {
        "counter": api.post(
            f"/api/v1/staff/customers/{person.id}/accounts", headers=headers, json={"tier": "II"}
        ),
        "lookup": api.get(f"/api/v1/staff/customers/{person.id}", headers=headers),
        "maker": api.get("/api/v1/staff/approvals", headers=headers),
        "checker": api.post("/api/v1/staff/approvals/999/approve", headers=headers, json={}),
    }
    done = {name for name, answer in attempts.items() if answer.status_code != 403}
    assert done == allowed, {n: a.json() for n, a in attempts.items()}
    for name in set(attempts) - allowed:
        assert attempts[name].json()["code"] == "FORBIDDEN"
