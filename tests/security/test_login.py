"""A customer's login (`security.login`): the password, then the code the login asks for. A
customer whose token can confirm now (enrolled, not locked) is asked for its code and texted
nothing; anyone else is texted the code at once; a token holder without the token at hand has
the code texted instead (`send_code`), within the limits of every code. Wrong codes of either
factor count on the login's one lockout, with wrong passwords.

Every test runs on SQLite and PostgreSQL.
"""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Writer
from ebank.security import login, sessions
from ebank.security.login import Challenge
from ebank.security.service import Checked, CodeIssued, Verdict
from ebank.security.tables import credentials
from ebank.security.tables import sessions as session_rows
from tests.channels.api_support import (
    BOTH,
    DEVICE,
    ONLINE,
    PASSWORD,
    WRONG,
    Person,
    bind_device,
    count,
    customer,
    sms_codes,
    sms_texts,
    token_code,
)
from tests.security.test_security import code_rows, credential_row, fails, other_than, use_token
from tests.support import VAULT, wait_to_resend

pytestmark = pytest.mark.usefixtures("fast_hashing")


def begun(writer: Writer, person: Person, password: str = PASSWORD, **extra: Any) -> Challenge:
    step = writer.execute(
        login.begin(VAULT, login=person.mobile, password=password, channel="online", **extra)
    )
    return step.value()


def completed(
    writer: Writer, challenge: Challenge, factor: str, code: str, **extra: Any
) -> Checked[sessions.Started]:
    return writer.execute(
        login.complete(VAULT, challenge=challenge.token, factor=factor, code=code, **extra)
    )


def texted(writer: Writer, challenge: Challenge, **extra: Any) -> CodeIssued:
    return writer.execute(login.send_code(VAULT, challenge=challenge.token, **extra))


def failures(engine: Engine, person: Person) -> int:
    return int(credential_row(engine, person.id, "login_password")["failures"])


def refused(checked: Checked[Any]) -> str:
    with pytest.raises(EbankError) as caught:
        checked.value()
    return caught.value.code


# -- what the password step asks for -------------------------------------------------------
def test_a_token_holder_is_asked_for_the_token_and_texted_nothing(
    writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begun(writer, person)
    assert (challenge.factor, challenge.factors) == ("token", ("sms", "token"))
    assert challenge.sms_sent is False
    assert code_rows(engine, person.id) == [] and sms_texts(engine, person.id) == []


def test_a_customer_without_a_token_is_texted_the_code_at_once_and_logs_in_with_it(
    writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False, enrolled=ONLINE)
    challenge = begun(writer, person)
    assert (challenge.factor, challenge.factors, challenge.sms_sent) == ("sms", ("sms",), True)
    [text] = sms_texts(engine, person.id)
    assert "登录网上银行" in text
    [row] = code_rows(engine, person.id)
    assert row["purpose"] == "login"
    done = completed(writer, challenge, "sms", sms_codes(engine, person.id)[-1])
    assert done.value().session.customer_id == person.id


def test_a_locked_token_is_not_asked_for_until_its_lock_ends(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    for _ in range(get_settings().auth_max_failures):
        use_token(writer, person.id, other_than(token_code(person, clock)))
    assert credential_row(engine, person.id, "token")["locked_until"] is not None
    challenge = begun(writer, person)
    assert (challenge.factor, challenge.factors) == ("sms", ("sms",))
    assert len(sms_codes(engine, person.id)) == 1
    clock.advance(timedelta(minutes=get_settings().auth_lock_minutes))
    assert begun(writer, person).factor == "token"
    assert len(sms_codes(engine, person.id)) == 1  # no second text


def test_a_token_locked_for_good_is_not_asked_for(writer: Writer, engine: Engine) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    with engine.begin() as conn:
        conn.execute(
            credentials.update()
            .where(credentials.c.customer_id == person.id, credentials.c.kind == "token")
            .values(permanently_locked=True)
        )
    assert begun(writer, person).factor == "sms"
    assert len(sms_codes(engine, person.id)) == 1


# -- the second step ------------------------------------------------------------------------
def test_a_token_code_completes_the_login_and_ends_the_run_of_failures(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    assert not writer.execute(
        login.begin(VAULT, login=person.mobile, password=WRONG, channel="online")
    ).verdict.ok
    challenge = begun(writer, person)
    assert failures(engine, person) == 1  # the right password settles nothing yet
    done = completed(writer, challenge, "token", token_code(person, clock))
    assert done.value().session.customer_id == person.id
    assert failures(engine, person) == 0
    assert code_rows(engine, person.id) == []


def test_a_wrong_token_code_counts_with_the_wrong_passwords_and_opens_nothing(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begun(writer, person)
    wrong = completed(writer, challenge, "token", other_than(token_code(person, clock)))
    assert refused(wrong) == "AUTH_FAILED"
    assert failures(engine, person) == 1
    # A code nobody texted fails and counts alike: asking for the token sent none.
    assert refused(completed(writer, challenge, "sms", "123456")) == "AUTH_FAILED"
    assert failures(engine, person) == 2 and count(engine, session_rows) == 0
    # Still the login's: the right code completes it.
    assert completed(writer, challenge, "token", token_code(person, clock)).verdict.ok


def test_wrong_token_codes_lock_the_login_like_wrong_passwords(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    for _ in range(3):
        writer.execute(login.begin(VAULT, login=person.mobile, password=WRONG, channel="online"))
    challenge = begun(writer, person)
    wrong = other_than(token_code(person, clock))
    verdicts = [completed(writer, challenge, "token", wrong).verdict for _ in range(2)]
    assert verdicts[0] == Verdict(False, attempts_left=1, next_lock_permanent=False)
    assert verdicts[1].locked_until is not None
    assert refused(completed(writer, challenge, "token", token_code(person, clock))) == (
        "CREDENTIAL_LOCKED"
    )


# -- "text me instead" ---------------------------------------------------------------------
def test_a_token_holder_without_the_token_at_hand_is_texted_the_code_and_logs_in_with_it(
    writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begun(writer, person)
    issued = texted(writer, challenge)
    [text] = sms_texts(engine, person.id)
    assert "登录网上银行" in text
    [row] = code_rows(engine, person.id)
    assert (row["id"], row["purpose"]) == (issued.id, "login")
    assert failures(engine, person) == 0  # asking is not a guess
    done = completed(writer, challenge, "sms", sms_codes(engine, person.id)[-1])
    assert done.value().session.customer_id == person.id
    assert failures(engine, person) == 0


def test_a_code_texted_for_one_login_completes_no_other(writer: Writer, engine: Engine) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    first, second = begun(writer, person), begun(writer, person)
    texted(writer, first)
    [code] = sms_codes(engine, person.id)
    assert refused(completed(writer, second, "sms", code)) == "AUTH_FAILED"
    assert completed(writer, first, "sms", code).verdict.ok


def test_texting_instead_again_within_the_interval_is_refused_then_sent(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begun(writer, person)
    texted(writer, challenge)
    clock.advance(timedelta(seconds=20))
    again = fails(writer, login.send_code(VAULT, challenge=challenge.token), "CODE_TOO_SOON")
    assert again.details == {"seconds": get_settings().sms_code_resend_seconds - 20}
    assert len(code_rows(engine, person.id)) == 1
    wait_to_resend(clock)
    texted(writer, challenge)
    first, newest = sms_codes(engine, person.id)
    assert refused(completed(writer, challenge, "sms", first)) == "AUTH_FAILED"  # superseded
    assert completed(writer, challenge, "sms", newest).verdict.ok


def test_texting_instead_stops_at_the_days_cap(
    writer: Writer, engine: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "sms_codes_per_day", 1)
    person = customer(writer, 1, enrolled=ONLINE)
    challenge = begun(writer, person)
    texted(writer, challenge)
    wait_to_resend(clock)
    fails(writer, login.send_code(VAULT, challenge=challenge.token), "CODE_DAILY_LIMIT")
    assert len(code_rows(engine, person.id)) == 1
    assert begun(writer, person).factor == "token"  # the token still logs in: no SMS needed


def test_only_a_live_challenge_has_its_code_texted(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    for garbage in ("", "x" * 101, "not-a-challenge"):
        fails(writer, login.send_code(VAULT, challenge=garbage), "SESSION_EXPIRED")
    spent = begun(writer, person)
    assert completed(writer, spent, "token", token_code(person, clock)).verdict.ok
    fails(writer, login.send_code(VAULT, challenge=spent.token), "SESSION_EXPIRED")
    expired = begun(writer, person)
    clock.advance(timedelta(seconds=get_settings().sms_code_ttl_seconds))
    fails(writer, login.send_code(VAULT, challenge=expired.token), "SESSION_EXPIRED")
    assert code_rows(engine, person.id) == []


def test_a_code_is_texted_only_to_the_device_that_began_the_login_and_never_to_bind_one(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=BOTH)
    bind_device(writer, person)
    mobile = writer.execute(
        login.begin(VAULT, login=person.mobile, password=PASSWORD, channel="mobile",
                    device=DEVICE)
    ).value()  # fmt: skip
    elsewhere = login.send_code(VAULT, challenge=mobile.token, device="another-phone")
    fails(writer, elsewhere, "SESSION_EXPIRED")
    wait_to_resend(clock)  # after the first phone's binding code
    binding = writer.execute(
        login.begin(VAULT, login=person.mobile, password=PASSWORD, channel="mobile",
                    device="new-phone", device_name="新手机")
    ).value()  # fmt: skip
    assert binding.binds_device
    before = code_rows(engine, person.id)
    again = login.send_code(VAULT, challenge=binding.token, device="new-phone")
    fails(writer, again, "DEVICE_NOT_BOUND")
    assert code_rows(engine, person.id) == before
    texted(writer, mobile, device=DEVICE)
    assert code_rows(engine, person.id)[-1]["purpose"] == "login"
