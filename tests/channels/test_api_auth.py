"""Logging in through the API (DOMAIN.md §3): a password, then the token's code from a customer
who has a usable token (texted nothing unless they ask for the SMS code instead), the SMS code
from anyone else; one lockout for the whole login; errors that never say which factor was
wrong; sessions that end 5 minutes idle or 12 hours after they began; customers' and staff's
tokens each good only on their side.

Every test runs on SQLite and PostgreSQL.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from ebank.core.settings import get_settings
from ebank.core.tables import audit_log
from ebank.enrolment import service as enrolment
from ebank.security import devices
from ebank.security import service as security
from ebank.security.tables import credentials, login_challenges, sessions
from ebank.security.tables import devices as device_rows
from tests.channels.api_support import (
    BOTH,
    DEVICE,
    ONLINE,
    PASSWORD,
    STAFF_PASSWORD,
    WRONG,
    bearer,
    begin,
    bind_device,
    count,
    customer,
    login,
    member,
    sms_codes,
    sms_texts,
    staff_begin,
    staff_code,
    staff_login,
    staff_verify,
    text_me,
    token_code,
    verify,
)
from tests.support import STAFF, VAULT, wait_to_resend

ME = "/api/v1/me"


def idle() -> timedelta:
    return timedelta(seconds=get_settings().session_idle_seconds)


def bound_here(engine, person, device: str) -> bool:
    with engine.connect() as conn:
        return devices.is_bound(conn, VAULT, person.id, device)


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
    person = customer(writer, 1, enrolled=ONLINE)
    started = begin(api, person.id_number)
    assert started.status_code == 200
    body = started.json()
    assert (body["factors"], body["factor"], body["sms_sent"]) == (["sms", "token"], "token", False)
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
    person = customer(writer, 1, token=False, enrolled=ONLINE)
    started = begin(api, person.mobile)
    assert started.status_code == 200
    assert started.json()["factors"] == ["sms"]  # no token enrolled: not offered
    assert (started.json()["factor"], started.json()["sms_sent"]) == ("sms", True)
    (code,) = sms_codes(engine, person.id)
    done = verify(api, started.json()["challenge"], "sms", code)
    assert done.status_code == 200, done.json()
    assert api.get(ME, headers=bearer(done.json()["token"])).json()["id"] == person.id


def test_a_token_holder_is_texted_nothing_even_by_an_app_that_still_asks(api, writer, engine):
    person = customer(writer, 1, enrolled=ONLINE)
    started = begin(api, person.mobile, send_sms=True)  # deprecated, and ignored
    assert (started.json()["factor"], started.json()["sms_sent"]) == ("token", False)
    assert sms_codes(engine, person.id) == []


def test_no_sms_is_sent_after_a_wrong_password(api, writer, engine):
    person = customer(writer, 1, token=False, enrolled=ONLINE)
    assert begin(api, person.mobile, WRONG).status_code == 401
    assert sms_codes(engine, person.id) == []


def test_wrong_password_wrong_codes_and_unknown_customers_answer_alike(api, writer, engine, clock):
    first, second, third = (customer(writer, n, enrolled=ONLINE) for n in (1, 2, 3))
    answers = [begin(api, first.mobile, WRONG), begin(api, "13999999999")]
    challenge = begin(api, second.mobile).json()["challenge"]
    assert text_me(api, challenge).status_code == 200
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
    person = customer(writer, 1, enrolled=ONLINE)
    counting = CountingHasher(security.HASHERS["login_password"])
    monkeypatch.setitem(security.HASHERS, "login_password", counting)
    begin(api, person.mobile, WRONG)
    begin(api, "13999999999", WRONG)
    known, unknown = counting.checked
    assert known != unknown  # a decoy, hashed all the same


def test_malformed_logins_are_400_and_count_nothing(api, writer, engine):
    person = customer(writer, 1, enrolled=ONLINE)
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
    person = customer(writer, 1, enrolled=ONLINE)
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
    person = customer(writer, 1, enrolled=ONLINE)
    for _ in range(3):
        begin(api, person.mobile, WRONG)
    challenge = begin(api, person.mobile).json()["challenge"]
    assert failures_of(engine, person.id) == 3  # the right password settled nothing yet
    code = other_code(token_code(person, clock))
    assert verify(api, challenge, "token", code).json()["code"] == "AUTH_FAILED_WARNING"
    again = begin(api, person.mobile).json()["challenge"]
    assert text_me(api, again).status_code == 200  # asking counts nothing
    (sms,) = sms_codes(engine, person.id)
    locked = verify(api, again, "sms", other_code(sms))
    assert locked.status_code == 423
    # Locked: neither the right code nor the right password gets in now.
    assert verify(api, again, "sms", sms).json()["code"] == "CREDENTIAL_LOCKED"
    assert begin(api, person.mobile).json()["code"] == "CREDENTIAL_LOCKED"
    with engine.connect() as conn:
        assert conn.execute(select(sessions)).first() is None


def test_a_completed_login_ends_the_run_of_failures(api, writer, engine, clock):
    person = customer(writer, 1, enrolled=ONLINE)
    for _ in range(4):
        begin(api, person.mobile, WRONG)
    login(api, clock, person)
    assert failures_of(engine, person.id) == 0


def test_failed_logins_are_in_the_audit_chain(api, writer, engine):
    person = customer(writer, 1, enrolled=ONLINE)
    begin(api, person.mobile, WRONG)
    begin(api, "13999999999", WRONG)
    with engine.connect() as conn:
        failed = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.outcome == "failed")
        ).scalars()
        assert sorted(failed) == ["anonymous", f"customer:{person.id}"]


# -- the challenge ------------------------------------------------------------------------------
def test_a_challenge_completes_once(api, writer, clock):
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begin(api, person.mobile).json()["challenge"]
    assert verify(api, challenge, "token", token_code(person, clock)).status_code == 200
    clock.advance(timedelta(seconds=30))
    again = verify(api, challenge, "token", token_code(person, clock))
    assert again.status_code == 401
    assert again.json()["code"] == "SESSION_EXPIRED"


def test_a_challenge_expires_with_its_sms_code(api, writer, engine, clock):
    person = customer(writer, 1, token=False, enrolled=ONLINE)
    challenge = begin(api, person.mobile).json()["challenge"]
    (sms,) = sms_codes(engine, person.id)
    clock.advance(timedelta(seconds=get_settings().sms_code_ttl_seconds))
    assert verify(api, challenge, "sms", sms).json()["code"] == "SESSION_EXPIRED"


def test_an_sms_code_completes_only_the_login_it_was_sent_for(api, writer, engine):
    person = customer(writer, 1, enrolled=ONLINE)
    first = begin(api, person.mobile).json()["challenge"]
    assert text_me(api, first).status_code == 200
    (code,) = sms_codes(engine, person.id)
    second = begin(api, person.mobile).json()["challenge"]  # no new SMS: the code still stands
    assert verify(api, second, "sms", code).json()["code"] == "AUTH_FAILED"
    assert verify(api, first, "sms", code).status_code == 200


def test_someone_elses_challenge_or_garbage_gets_nowhere(api, writer, clock):
    mine, theirs = customer(writer, 1, enrolled=ONLINE), customer(writer, 2, enrolled=ONLINE)
    challenge = begin(api, theirs.mobile).json()["challenge"]
    # My token code does not complete their login.
    assert verify(api, challenge, "token", token_code(mine, clock)).status_code == 401
    for garbage in ("", "x", challenge + "x", "令牌" * 10):
        answer = verify(api, garbage, "token", token_code(theirs, clock))
        assert answer.status_code in (400, 401), answer.json()
    assert verify(api, challenge, "token", token_code(theirs, clock)).status_code == 200


# -- text me the code instead -------------------------------------------------------------------
def test_a_token_holder_without_the_token_has_the_code_texted_and_logs_in_with_it(
    api, writer, engine, clock
):
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begin(api, person.mobile).json()["challenge"]
    sent = text_me(api, challenge)
    assert sent.status_code == 200, sent.json()
    assert sent.json() == {
        "sms_sent": True,
        "expires_at": (clock.now() + timedelta(seconds=300)).isoformat().replace("+00:00", "Z"),
    }
    (code,) = sms_codes(engine, person.id)
    done = verify(api, challenge, "sms", code)
    assert done.status_code == 200, done.json()
    assert api.get(ME, headers=bearer(done.json()["token"])).json()["id"] == person.id


def test_texting_the_login_code_again_within_the_interval_is_429_with_retry_after(
    api, writer, engine, clock
):
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begin(api, person.mobile).json()["challenge"]
    assert text_me(api, challenge).status_code == 200
    again = text_me(api, challenge)
    assert (again.status_code, again.json()["code"]) == (429, "CODE_TOO_SOON")
    assert again.headers["Retry-After"] == str(get_settings().sms_code_resend_seconds)
    wait_to_resend(clock)
    assert text_me(api, challenge).status_code == 200
    assert len(sms_codes(engine, person.id)) == 2


def test_the_login_code_is_texted_only_for_a_live_login_from_its_device(api, writer, engine, clock):
    person = customer(writer, 1, enrolled=BOTH)
    bind_device(writer, person)
    before = sms_texts(engine, person.id)
    garbage = text_me(api, "not-a-challenge")
    assert (garbage.status_code, garbage.json()["code"]) == (401, "SESSION_EXPIRED")
    malformed = api.post("/api/v1/auth/login/sms", json={"challenge": 12345})
    assert malformed.status_code == 400
    challenge = begin(api, person.mobile, channel="mobile", device=DEVICE).json()["challenge"]
    assert text_me(api, challenge, device="another").json()["code"] == "SESSION_EXPIRED"
    assert text_me(api, challenge).json()["code"] == "SESSION_EXPIRED"  # no device at all
    wait_to_resend(clock)  # after the first phone's binding code
    binding = begin(api, person.mobile, channel="mobile", device="new", device_name="新手机")
    texted = sms_texts(engine, person.id)
    refused = text_me(api, binding.json()["challenge"], device="new")
    assert (refused.status_code, refused.json()["code"]) == (403, "DEVICE_NOT_BOUND")
    assert sms_texts(engine, person.id) == texted == [*before, texted[-1]]


# -- enrolment -----------------------------------------------------------------------------------
def test_a_login_needs_an_enrolment_for_its_channel_said_only_after_the_right_password(
    api, writer, engine
):
    person = customer(writer, 1)  # a password and a token, but no enrolment
    wrong = begin(api, person.mobile, WRONG)
    assert (wrong.status_code, wrong.json()["code"]) == (401, "AUTH_FAILED")
    right = begin(api, person.mobile)
    assert (right.status_code, right.json()["code"]) == (403, "NOT_ENROLLED")
    assert sms_codes(engine, person.id) == [] and count(engine, login_challenges) == 0
    assert failures_of(engine, person.id) == 1  # the wrong one counted; the refusal did not
    online = customer(writer, 2, enrolled=ONLINE)
    mobile = begin(api, online.mobile, channel="mobile", device=DEVICE)
    assert mobile.json()["code"] == "NOT_ENROLLED"  # enrolled online, not on mobile


def test_an_enrolment_ended_between_the_two_steps_stops_the_login(api, writer, engine, clock):
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begin(api, person.mobile).json()["challenge"]
    writer.execute(
        enrolment.cancel(customer_id=person.id, channel="online", actor=STAFF, via="counter")
    )
    done = verify(api, challenge, "token", token_code(person, clock))
    assert (done.status_code, done.json()["code"]) == (403, "NOT_ENROLLED")
    assert count(engine, sessions) == 0


# -- the mobile channel and its devices ---------------------------------------------------------
def test_mobile_login_needs_its_device_and_finishes_on_the_same_one(api, writer, clock):
    person = customer(writer, 1, enrolled=BOTH)
    bind_device(writer, person)
    assert begin(api, person.mobile, channel="mobile").json()["code"] == "INVALID_INPUT"
    started = begin(api, person.mobile, channel="mobile", device=DEVICE).json()
    assert (started["factors"], started["binds_device"]) == (["sms", "token"], False)
    code = token_code(person, clock)
    assert verify(api, started["challenge"], "token", code, device="another").status_code == 401
    assert verify(api, started["challenge"], "token", code).status_code == 401
    done = verify(api, started["challenge"], "token", code, device=DEVICE)
    assert done.status_code == 200
    assert done.json()["session"]["channel"] == "mobile"


def test_an_unbound_phone_is_told_to_bind_only_after_the_right_password(api, writer, engine):
    person = customer(writer, 1, enrolled=BOTH)
    wrong = begin(api, person.mobile, WRONG, channel="mobile", device=DEVICE)
    assert (wrong.status_code, wrong.json()["code"]) == (401, "AUTH_FAILED")
    right = begin(api, person.mobile, channel="mobile", device=DEVICE)
    assert (right.status_code, right.json()["code"]) == (403, "DEVICE_NOT_BOUND")
    assert sms_codes(engine, person.id) == [] and count(engine, login_challenges) == 0


def test_the_first_login_on_a_new_phone_binds_it_with_the_sms_code(api, writer, engine, clock):
    person = customer(writer, 1, enrolled=BOTH)
    started = begin(api, person.mobile, channel="mobile", device=DEVICE, device_name="新手机")
    assert started.status_code == 200, started.json()
    body = started.json()
    assert (body["factors"], body["sms_sent"], body["binds_device"]) == (["sms"], True, True)
    [text] = sms_texts(engine, person.id)
    assert "绑定手机银行新设备“新手机”" in text
    (code,) = sms_codes(engine, person.id)
    done = verify(api, body["challenge"], "sms", code, device=DEVICE, device_name="新手机")
    assert done.status_code == 200, done.json()
    token = done.json()["token"]
    [device] = api.get(f"{ME}/devices", headers=bearer(token)).json()["devices"]
    assert device["label"] == "新手机"
    assert "已绑定新设备“新手机”" in sms_texts(engine, person.id)[-1]  # the alert
    # Bound now: the next login is an ordinary one, and the token will do.
    again = begin(api, person.mobile, channel="mobile", device=DEVICE, device_name="新手机").json()
    assert (again["factors"], again["binds_device"]) == (["sms", "token"], False)
    finished = verify(api, again["challenge"], "token", token_code(person, clock), device=DEVICE)
    assert finished.status_code == 200
    assert len(sms_texts(engine, person.id)) == 2  # no login alert from a device just bound


def test_a_binding_login_takes_the_sms_code_and_its_device_name_and_nothing_else(
    api, writer, engine, clock
):
    person = customer(writer, 1, enrolled=BOTH)
    challenge = begin(
        api, person.mobile, channel="mobile", device=DEVICE, device_name="新手机"
    ).json()["challenge"]
    (code,) = sms_codes(engine, person.id)
    token = verify(api, challenge, "token", token_code(person, clock), device=DEVICE,
                   device_name="新手机")  # fmt: skip
    assert (token.status_code, token.json()["code"]) == (400, "INVALID_INPUT")
    unnamed = verify(api, challenge, "sms", code, device=DEVICE)
    assert (unnamed.status_code, unnamed.json()["code"]) == (403, "DEVICE_NOT_BOUND")
    wrong = verify(api, challenge, "sms", other_code(code), device=DEVICE, device_name="新手机")
    assert wrong.json()["code"] == "AUTH_FAILED"
    assert failures_of(engine, person.id) == 1  # counted on the login's one lockout
    assert not bound_here(engine, person, DEVICE) and count(engine, sessions) == 0
    elsewhere = verify(api, challenge, "sms", code, device="another", device_name="新手机")
    assert elsewhere.json()["code"] == "SESSION_EXPIRED"
    done = verify(api, challenge, "sms", code, device=DEVICE, device_name="新手机")
    assert done.status_code == 200
    assert bound_here(engine, person, DEVICE)


def test_a_code_sent_to_bind_one_phone_binds_no_other(api, writer, engine, clock):
    person = customer(writer, 1, enrolled=BOTH)
    begin(api, person.mobile, channel="mobile", device=DEVICE, device_name="新手机")
    (code,) = sms_codes(engine, person.id)
    wait_to_resend(clock)
    other = begin(
        api, person.mobile, channel="mobile", device="another-phone", device_name="旧手机"
    )
    assert other.json()["binds_device"] is True
    done = verify(api, other.json()["challenge"], "sms", code, device="another-phone",
                  device_name="旧手机")  # fmt: skip
    assert done.json()["code"] == "AUTH_FAILED"
    assert not bound_here(engine, person, "another-phone")


def test_a_login_locked_between_the_steps_binds_nothing(api, writer, engine):
    person = customer(writer, 1, enrolled=BOTH)
    challenge = begin(
        api, person.mobile, channel="mobile", device=DEVICE, device_name="新手机"
    ).json()["challenge"]
    (code,) = sms_codes(engine, person.id)
    for _ in range(5):
        begin(api, person.mobile, WRONG)
    done = verify(api, challenge, "sms", code, device=DEVICE, device_name="新手机")
    assert (done.status_code, done.json()["code"]) == (423, "CREDENTIAL_LOCKED")
    assert not bound_here(engine, person, DEVICE) and count(engine, sessions) == 0


def test_a_phone_unbound_between_the_steps_cannot_finish_its_login(api, writer, engine, clock):
    person = customer(writer, 1, enrolled=BOTH)
    bind_device(writer, person)
    challenge = begin(api, person.mobile, channel="mobile", device=DEVICE).json()["challenge"]
    with engine.connect() as conn:
        [device] = devices.devices_of(conn, person.id)
    writer.execute(
        devices.unbind(customer_id=person.id, device_id=device.id, actor=STAFF, channel="counter")
    )
    done = verify(api, challenge, "token", token_code(person, clock), device=DEVICE)
    assert (done.status_code, done.json()["code"]) == (403, "DEVICE_NOT_BOUND")
    assert count(engine, sessions) == 0


def test_binding_stops_at_the_device_limit(api, writer, engine, monkeypatch):
    person = customer(writer, 1, enrolled=BOTH)
    monkeypatch.setenv("EBANK_MAX_BOUND_DEVICES", "1")
    get_settings.cache_clear()
    try:
        bind_device(writer, person)
        full = begin(api, person.mobile, channel="mobile", device="phone-2", device_name="二号")
        assert (full.status_code, full.json()["code"]) == (422, "TOO_MANY_DEVICES")
    finally:
        monkeypatch.delenv("EBANK_MAX_BOUND_DEVICES")
        get_settings.cache_clear()
    assert len(sms_codes(engine, person.id)) == 1  # the first binding's code, no other


def test_a_device_name_is_for_the_mobile_app_and_must_be_a_plain_name(api, writer, engine):
    person = customer(writer, 1, enrolled=BOTH)
    online = begin(api, person.mobile, device_name="浏览器")
    assert (online.status_code, online.json()["code"]) == (400, "INVALID_INPUT")
    for name in ("客服4001234567", "", "x" * 31):
        answer = begin(api, person.mobile, channel="mobile", device=DEVICE, device_name=name)
        assert answer.status_code == 400, (name, answer.json())
    assert sms_codes(engine, person.id) == []


# -- logins noted by device ---------------------------------------------------------------------
def test_the_first_login_from_a_browser_texts_an_alert_and_later_ones_do_not(
    api, writer, engine, clock
):
    person = customer(writer, 1, enrolled=ONLINE)
    login(api, clock, person, device="browser-1")
    [alert] = sms_texts(engine, person.id)
    assert "网上银行" in alert and "新设备登录" in alert
    login(api, clock, person, device="browser-1")
    login(api, clock, person)  # a browser that keeps no id: nothing to note
    assert len(sms_texts(engine, person.id)) == 1
    login(api, clock, person, device="browser-2")
    assert len(sms_texts(engine, person.id)) == 2


def test_a_login_that_fails_its_second_factor_notes_no_device(api, writer, engine, clock):
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begin(api, person.mobile, device="browser-1").json()["challenge"]
    code = other_code(token_code(person, clock))
    wrong = verify(api, challenge, "token", code, device="browser-1")
    assert wrong.status_code == 401
    assert count(engine, device_rows) == 0 and sms_texts(engine, person.id) == []


# -- sessions -----------------------------------------------------------------------------------
def test_no_token_or_a_bad_one_is_401(api, writer, clock):
    person = customer(writer, 1, enrolled=ONLINE)
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
    person = customer(writer, 1, enrolled=ONLINE)
    token = login(api, clock, person)
    clock.advance(idle() - timedelta(seconds=1))
    assert api.get(ME, headers=bearer(token)).status_code == 200
    clock.advance(idle())
    expired = api.get(ME, headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json()["code"] == "SESSION_EXPIRED"


def test_a_busy_session_ends_twelve_hours_after_it_began(api, writer, clock):
    person = customer(writer, 1, enrolled=ONLINE)
    token = login(api, clock, person)
    began = clock.now()
    end = began + timedelta(hours=get_settings().session_absolute_hours)
    while clock.now() + timedelta(minutes=4) < end:
        clock.advance(timedelta(minutes=4))
        assert api.get(ME, headers=bearer(token)).status_code == 200
    clock.set(end)
    assert api.get(ME, headers=bearer(token)).json()["code"] == "SESSION_EXPIRED"


def test_logout_ends_the_session(api, writer, clock):
    person = customer(writer, 1, enrolled=ONLINE)
    token = login(api, clock, person)
    assert api.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert api.get(ME, headers=bearer(token)).status_code == 401


# -- staff --------------------------------------------------------------------------------------
def test_staff_log_in_and_see_their_roles(api, writer):
    staff_id = member(writer, "teller1", "teller")
    started = staff_begin(api, "Teller1 ")
    assert started.status_code == 200 and "token" not in started.json()
    done = staff_verify(api, started.json()["challenge"], staff_code(api, "teller1"))
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
    person = customer(writer, 1, enrolled=ONLINE)
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
    person = customer(writer, 1, enrolled=ONLINE)
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
