"""Who is asking (DOMAIN.md §3): login passwords and transaction PINs (argon2id), token codes
(TOTP, RFC 6238), one-time SMS codes bound to what they authorise; lockout after 5 consecutive
failures with a warning before the permanent lock; errors that never say which factor failed.

Every database test runs on SQLite and PostgreSQL. Tests of the lockout's counting swap the
module's argon2id hasher for a cheap one (still argon2id): the counting does not depend on the
hash's cost, and the real parameters would make each wrong attempt cost ~0.2 s.
"""

import itertools
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import Engine, select

from ebank.core import audit
from ebank.core.clock import FixedClock, as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command, Writer
from ebank.customers.identity import check_digit_for
from ebank.customers.service import register_individual
from ebank.ops import approvals
from ebank.security.service import (
    HASHERS,
    NewSecret,
    Verdict,
    binding_of,
    check_code,
    check_secret,
    check_token,
    enroll_token,
    issue_code,
    require,
    set_secret,
)
from ebank.security.tables import credentials, one_time_codes
from tests.support import WAIT, in_one_batch, wait_to_resend

VAULT = Vault(bytes(range(32)))
STAFF = "staff:1"
MAKER = "staff:7"
CHECKER = "staff:9"
PASSWORD = "Sunrise2026"
PIN = "804317"
SECRETS = {"login_password": PASSWORD, "transaction_pin": PIN}
WRONG = {"login_password": "Sunset2026", "transaction_pin": "804318"}
HOUR = timedelta(minutes=60)
STEP = 30  # seconds: the TOTP time step

PAY_100 = binding_of(amount="100.00", payee="6217001000000000001")
PAY_10000 = binding_of(amount="10000.00", payee="6217001000000000001")
PAY_100_ELSEWHERE = binding_of(amount="100.00", payee="6217001000000000099")
PAY_MESSAGE = "转账 ¥100.00 至 6217****0001"


# -- helpers ------------------------------------------------------------------------------
_numbers = itertools.count(1)


def new_customer(writer: Writer) -> int:
    n = next(_numbers) % 1000
    first17 = f"11010519491231{n:03d}"
    customer = writer.execute(
        register_individual(
            VAULT,
            name=f"客户{n}",
            id_number=first17 + check_digit_for(first17),
            mobile=f"138{n:08d}",
            actor=STAFF,
        )
    )
    return int(customer.id)


@pytest.fixture
def customer(writer: Writer) -> int:
    return new_customer(writer)


def with_secret(writer: Writer, customer: int, kind: str = "login_password") -> int:
    writer.execute(set_secret(customer_id=customer, kind=kind, secret=SECRETS[kind], actor=STAFF))
    return customer


def attempt(writer: Writer, customer: int, kind: str, secret: str) -> Verdict:
    return writer.execute(check_secret(customer_id=customer, kind=kind, secret=secret))


def wrong_times(writer: Writer, customer: int, kind: str, n: int) -> list[Verdict]:
    return [attempt(writer, customer, kind, WRONG[kind]) for _ in range(n)]


def lock_permanently(writer: Writer, clock: FixedClock, customer: int, kind: str) -> None:
    for _ in range(2):
        assert wrong_times(writer, customer, kind, 5)[-1].locked_until is not None
        clock.advance(HOUR + timedelta(minutes=1))
    assert wrong_times(writer, customer, kind, 5)[-1] == Verdict(False, permanent=True)


def raised(verdict: Verdict) -> EbankError:
    with pytest.raises(EbankError) as caught:
        require(verdict)
    return caught.value


def fails(writer: Writer, command: Command[Any], code: str) -> EbankError:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    assert caught.value.code == code, caught.value
    return caught.value


def credential_row(engine: Engine, customer: int, kind: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(credentials).where(
                    credentials.c.customer_id == customer, credentials.c.kind == kind
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


def code_rows(engine: Engine, customer: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(one_time_codes)
            .where(one_time_codes.c.customer_id == customer)
            .order_by(one_time_codes.c.id)
        )
        return [dict(r) for r in rows.mappings()]


def failed_audits(engine: Engine, customer: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log)
            .where(audit_log.c.subject == f"customer:{customer}", audit_log.c.outcome == "failed")
            .order_by(audit_log.c.id)
        )
        return [dict(r) for r in rows.mappings()]


def assert_audit_intact(engine: Engine) -> None:
    with engine.connect() as conn:
        result = audit.verify(conn)
    assert result.ok, result


# token
def enroll(writer: Writer, customer: int) -> pyotp.TOTP:
    uri = writer.execute(enroll_token(VAULT, customer_id=customer, label="张三", actor=STAFF))
    assert uri.startswith("otpauth://totp/")
    return pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])


def token_code(totp: pyotp.TOTP, clock: FixedClock, steps: int = 0) -> str:
    return totp.generate_otp(int(clock.now().timestamp()) // STEP + steps)


def use_token(writer: Writer, customer: int, code: Any) -> Verdict:
    return writer.execute(check_token(VAULT, customer_id=customer, code=code))


# SMS
def sms_payloads(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox_events.c.payload)
            .where(outbox_events.c.topic == "sms.send")
            .order_by(outbox_events.c.id)
        )
        return [json.loads(p) for p in rows.scalars()]


def sms_bodies(engine: Engine, customer: int) -> list[str]:
    """What the customer's phone shows: the SMS bodies sent to them, oldest first."""
    return [
        VAULT.decrypt(p["body"], purpose="sms.body")
        for p in sms_payloads(engine)
        if p["customer"] == customer
    ]


def code_in(body: str) -> str:
    found = re.findall(r"(?<!\d)\d{6}(?!\d)", body)
    assert len(found) == 1, body
    return found[0]


def send_code(
    writer: Writer,
    engine: Engine,
    customer: int,
    *,
    purpose: str = "payment",
    binding: str = PAY_100,
    message: str = PAY_MESSAGE,
) -> str:
    """Issue a code and receive it by SMS; returns the code."""
    writer.execute(
        issue_code(VAULT, customer_id=customer, purpose=purpose, binding=binding, message=message)
    )
    return code_in(sms_bodies(engine, customer)[-1])


def use_code(
    writer: Writer, customer: int, code: Any, *, purpose: str = "payment", binding: str = PAY_100
) -> Verdict:
    return writer.execute(
        check_code(VAULT, customer_id=customer, purpose=purpose, binding=binding, code=code)
    )


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# -- passwords and PINs -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["login_password", "transaction_pin"])
def test_secrets_are_stored_only_as_argon2id_hashes(writer, engine, customer, kind):
    with_secret(writer, customer, kind)
    row = credential_row(engine, customer, kind)
    assert row["secret"].startswith("$argon2id$")
    for value in row.values():
        assert SECRETS[kind] not in str(value)
    assert attempt(writer, customer, kind, SECRETS[kind]) == Verdict(True)


@pytest.mark.parametrize("kind", ["login_password", "transaction_pin"])
def test_wrong_secrets_count_down_the_attempts_left(writer, customer, kind, fast_hashing):
    with_secret(writer, customer, kind)
    assert attempt(writer, customer, kind, SECRETS[kind]).ok
    verdicts = wrong_times(writer, customer, kind, 4)
    assert [v.ok for v in verdicts] == [False] * 4
    assert [v.attempts_left for v in verdicts] == [4, 3, 2, 1]
    assert not any(v.next_lock_permanent or v.locked_until or v.permanent for v in verdicts)


def test_fifth_failure_locks_for_an_hour_even_against_the_right_password(
    writer, clock, customer, fast_hashing
):
    with_secret(writer, customer)
    fifth = wrong_times(writer, customer, "login_password", 5)[-1]
    assert not fifth.ok and not fifth.permanent
    assert fifth.locked_until == clock.now() + HOUR
    assert raised(fifth).code == "CREDENTIAL_LOCKED"

    refused = attempt(writer, customer, "login_password", PASSWORD)
    assert not refused.ok and refused.locked_until == clock.now() + HOUR
    assert raised(refused).code == "CREDENTIAL_LOCKED"
    clock.advance(timedelta(minutes=59))
    assert not attempt(writer, customer, "login_password", PASSWORD).ok

    clock.advance(timedelta(minutes=1, seconds=1))
    assert attempt(writer, customer, "login_password", PASSWORD) == Verdict(True)


def test_a_lock_says_the_seconds_it_has_left_rounded_up(writer, clock, customer, fast_hashing):
    with_secret(writer, customer)
    fifth = wrong_times(writer, customer, "login_password", 5)[-1]
    assert fifth.locked_until is not None
    assert raised(fifth).details == {"until": fifth.locked_until.isoformat(), "seconds": 3600}
    clock.advance(HOUR - timedelta(seconds=1.5))
    refused = attempt(writer, customer, "login_password", PASSWORD)
    assert raised(refused).details["seconds"] == 2  # 1.5 s left: never a second too few
    clock.advance(timedelta(seconds=2))
    assert attempt(writer, customer, "login_password", PASSWORD) == Verdict(True)


def test_the_third_lock_is_permanent_and_survives_time(writer, clock, customer, fast_hashing):
    with_secret(writer, customer, "transaction_pin")
    for _ in range(2):
        *warned, lock = wrong_times(writer, customer, "transaction_pin", 5)
        assert not any(v.next_lock_permanent for v in warned)  # the coming lock is temporary
        assert lock.locked_until is not None and not lock.permanent
        clock.advance(HOUR + timedelta(seconds=1))

    *warned, lock = wrong_times(writer, customer, "transaction_pin", 5)
    assert [v.attempts_left for v in warned] == [4, 3, 2, 1]
    assert all(v.next_lock_permanent for v in warned)  # the customer is warned beforehand
    assert lock == Verdict(False, permanent=True)
    assert raised(lock).code == "CREDENTIAL_LOCKED_PERMANENTLY"

    clock.advance(timedelta(days=30))
    after = attempt(writer, customer, "transaction_pin", PIN)
    assert after == Verdict(False, permanent=True)
    assert raised(after).code == "CREDENTIAL_LOCKED_PERMANENTLY"


def test_a_success_resets_the_failures_and_the_count_of_locks(
    writer, engine, clock, customer, fast_hashing
):
    with_secret(writer, customer)
    wrong_times(writer, customer, "login_password", 3)
    assert attempt(writer, customer, "login_password", PASSWORD).ok
    assert wrong_times(writer, customer, "login_password", 1)[0].attempts_left == 4

    assert attempt(writer, customer, "login_password", PASSWORD).ok
    for _ in range(2):  # two temporary locks: the next would be permanent
        wrong_times(writer, customer, "login_password", 5)
        clock.advance(HOUR + timedelta(seconds=1))
    assert wrong_times(writer, customer, "login_password", 1)[0].next_lock_permanent
    assert attempt(writer, customer, "login_password", PASSWORD).ok
    assert credential_row(engine, customer, "login_password")["locks"] == 0

    *warned, lock = wrong_times(writer, customer, "login_password", 5)
    assert [v.attempts_left for v in warned] == [4, 3, 2, 1]
    assert not any(v.next_lock_permanent for v in warned)
    assert lock.locked_until is not None and not lock.permanent


def test_staff_unlock_under_maker_checker_clears_a_permanent_lock(
    writer, engine, clock, customer, fast_hashing
):
    with_secret(writer, customer)
    lock_permanently(writer, clock, customer, "login_password")

    fails(
        writer,
        approvals.propose(
            "credential.unlock",
            {"customer": customer, "kind": "transaction_pin"},  # never set
            reason="identity checked at the counter",
            maker=MAKER,
        ),
        "INVALID_INPUT",
    )
    request = writer.execute(
        approvals.propose(
            "credential.unlock",
            {"customer": customer, "kind": "login_password"},
            reason="identity checked at the counter",
            maker=MAKER,
        )
    )
    assert attempt(writer, customer, "login_password", PASSWORD).permanent  # only proposed
    fails(writer, approvals.approve(request, checker=MAKER), "SAME_MAKER_AND_CHECKER")
    assert attempt(writer, customer, "login_password", PASSWORD).permanent

    writer.execute(approvals.approve(request, checker=CHECKER))
    row = credential_row(engine, customer, "login_password")
    assert (row["permanently_locked"], row["locks"], row["failures"]) == (False, 0, 0)
    assert row["locked_until"] is None
    assert attempt(writer, customer, "login_password", PASSWORD) == Verdict(True)
    with engine.connect() as conn:
        actions = conn.execute(
            select(audit_log.c.action, audit_log.c.actor).where(
                audit_log.c.action.like("credential.unlock.%")
            )
        ).all()
    assert sorted(actions) == [
        ("credential.unlock.approve", CHECKER),
        ("credential.unlock.propose", MAKER),
    ]
    assert_audit_intact(engine)


@pytest.mark.parametrize(
    ("kind", "secret"),
    [
        ("login_password", "Abc1234"),  # 7 characters
        ("login_password", "a1" * 32 + "x"),  # 65 characters
        ("login_password", "abcdefgh"),  # no digit
        ("login_password", "12345678"),  # no letter
        ("login_password", "abcd\n1234"),  # not printable
        ("login_password", 12345678),
        ("transaction_pin", "80431"),
        ("transaction_pin", "8043170"),
        ("transaction_pin", "80431a"),
        ("transaction_pin", "111111"),
        ("transaction_pin", "123456"),
        ("transaction_pin", "654321"),
        ("transaction_pin", "345678"),
        ("transaction_pin", "876543"),
        ("transaction_pin", "８０４３１７"),  # full-width digits
        ("transaction_pin", "٨٠٤٣١٧"),  # Arabic-Indic digits
        ("transaction_pin", 804317),
        ("token", "804317"),  # a token is enrolled, not set
    ],
)
def test_weak_or_malformed_secrets_are_refused(writer, engine, customer, kind, secret):
    fails(
        writer,
        set_secret(customer_id=customer, kind=kind, secret=secret, actor=STAFF),
        "INVALID_INPUT",
    )
    with engine.connect() as conn:
        assert conn.execute(select(credentials.c.id)).first() is None


def test_good_secrets_are_accepted(writer, customer, fast_hashing):
    for kind, secret in [
        ("login_password", "abcdefg1"),  # 8 characters
        ("login_password", "a1" * 32),  # 64 characters
        ("login_password", "春风Spring 2026!"),
        ("transaction_pin", "804317"),
        ("transaction_pin", "112233"),
        ("transaction_pin", "901234"),
    ]:
        writer.execute(set_secret(customer_id=customer, kind=kind, secret=secret, actor=STAFF))
        assert attempt(writer, customer, kind, secret).ok, secret


def test_non_text_secrets_are_refused_without_a_crash(writer, customer, fast_hashing):
    with_secret(writer, customer)
    for bad in (None, 12345678, b"Sunrise2026", "Sunrise2026\x00"):  # 4: no lock
        verdict = attempt(writer, customer, "login_password", bad)
        assert not verdict.ok and verdict.attempts_left is not None, bad
    assert attempt(writer, customer, "login_password", PASSWORD).ok


def test_setting_a_new_secret_clears_failures_and_locks(writer, engine, customer, fast_hashing):
    with_secret(writer, customer)
    assert wrong_times(writer, customer, "login_password", 5)[-1].locked_until is not None
    writer.execute(
        set_secret(customer_id=customer, kind="login_password", secret="Renewed99", actor=STAFF)
    )
    row = credential_row(engine, customer, "login_password")
    assert (row["failures"], row["locks"], row["locked_until"]) == (0, 0, None)
    assert attempt(writer, customer, "login_password", "Renewed99") == Verdict(True)
    old = attempt(writer, customer, "login_password", PASSWORD)
    assert not old.ok and old.attempts_left == 4


def test_a_customer_without_the_credential_gets_a_plain_failed_verdict(writer, engine, customer):
    nobody = customer + 1000
    assert attempt(writer, customer, "login_password", PASSWORD) == Verdict(False)
    assert attempt(writer, customer, "transaction_pin", PIN) == Verdict(False)
    assert attempt(writer, nobody, "login_password", PASSWORD) == Verdict(False)
    assert attempt(writer, customer, "no_such_kind", PASSWORD) == Verdict(False)
    assert use_token(writer, customer, "123456") == Verdict(False)
    assert use_token(writer, nobody, "123456") == Verdict(False)
    assert use_code(writer, customer, "123456") == Verdict(False)
    assert raised(Verdict(False)).code == "AUTH_FAILED"
    with engine.connect() as conn:
        assert conn.execute(select(credentials.c.id)).first() is None


def test_setting_a_secret_for_an_unknown_customer_is_refused(writer, customer):
    nobody = customer + 1000
    fails(
        writer,
        set_secret(customer_id=nobody, kind="login_password", secret=PASSWORD, actor=STAFF),
        "CUSTOMER_NOT_FOUND",
    )
    fails(
        writer,
        enroll_token(VAULT, customer_id=nobody, label="x", actor=STAFF),
        "CUSTOMER_NOT_FOUND",
    )
    fails(
        writer,
        issue_code(VAULT, customer_id=nobody, purpose="payment", binding=PAY_100, message="x"),
        "CUSTOMER_NOT_FOUND",
    )


# -- what the customer is told ------------------------------------------------------------
NAMES_A_FACTOR_EN = re.compile(r"password|\bpin\b|token|sms|otp|passcode|certificate", re.I)
NAMES_A_FACTOR_ZH = ("密码", "口令", "短信", "令牌", "动态", "交易", "证书", "U盾")


def assert_names_no_factor(error: EbankError) -> None:
    assert not NAMES_A_FACTOR_EN.search(error.message("en")), error.message("en")
    zh = error.message("zh")
    assert not any(word in zh for word in NAMES_A_FACTOR_ZH), zh


def test_auth_failed_never_says_which_factor_was_wrong(writer, engine, clock, customer):
    with_secret(writer, customer)
    totp = enroll(writer, customer)
    code = send_code(writer, engine, customer)

    by_password = attempt(writer, customer, "login_password", WRONG["login_password"])
    by_token = use_token(writer, customer, other_than(token_code(totp, clock)))
    by_sms = use_code(writer, customer, other_than(code))
    errors = [raised(v) for v in (by_password, by_token, by_sms)]
    assert {e.code for e in errors} == {"AUTH_FAILED"}
    for lang in ("zh", "en"):
        assert len({e.message(lang) for e in errors}) == 1, [e.message(lang) for e in errors]
        assert len({json.dumps(e.to_dict(lang), sort_keys=True) for e in errors}) == 1
    for error in errors:
        assert_names_no_factor(error)
    assert_names_no_factor(raised(Verdict(False, locked_until=clock.now() + HOUR)))
    assert_names_no_factor(raised(Verdict(False, permanent=True)))


def test_a_plain_failure_reads_as_a_sentence(writer, customer):
    """A failure that counted nothing (no such credential, an expired or spent code) must not
    tell the customer "None attempts left"."""
    plain = raised(attempt(writer, customer, "login_password", PASSWORD))
    for lang in ("zh", "en"):
        assert "None" not in plain.message(lang), plain.message(lang)


# -- the token (TOTP) ---------------------------------------------------------------------
def test_a_token_code_for_the_current_step_passes(writer, clock, customer):
    totp = enroll(writer, customer)
    assert use_token(writer, customer, totp.at(clock.now())) == Verdict(True)
    clock.advance(timedelta(seconds=STEP))
    assert use_token(writer, customer, totp.at(clock.now())) == Verdict(True)


def test_a_token_code_one_step_either_side_passes(writer, clock, customer):
    totp = enroll(writer, customer)
    assert use_token(writer, customer, token_code(totp, clock, -1)).ok
    assert use_token(writer, customer, token_code(totp, clock, 0)).ok
    assert use_token(writer, customer, token_code(totp, clock, +1)).ok


@pytest.mark.parametrize("steps", [-2, +2, -10, +10])
def test_a_token_code_two_or_more_steps_away_fails(writer, clock, customer, steps):
    totp = enroll(writer, customer)
    verdict = use_token(writer, customer, token_code(totp, clock, steps))
    assert not verdict.ok and verdict.attempts_left == 4


def test_a_token_code_is_accepted_once(writer, clock, customer):
    totp = enroll(writer, customer)
    code = totp.at(clock.now())
    assert use_token(writer, customer, code).ok
    replay = use_token(writer, customer, code)
    assert not replay.ok and replay.attempts_left == 4  # refused, and counted
    clock.advance(timedelta(seconds=10))  # same step
    assert use_token(writer, customer, code).attempts_left == 3


def test_an_older_token_step_after_a_newer_one_is_refused(writer, clock, customer):
    totp = enroll(writer, customer)
    assert use_token(writer, customer, token_code(totp, clock, +1)).ok
    older = use_token(writer, customer, token_code(totp, clock, 0))
    assert not older.ok and older.attempts_left == 4
    assert not use_token(writer, customer, token_code(totp, clock, -1)).ok


def test_five_token_failures_lock_the_token(writer, clock, customer):
    totp = enroll(writer, customer)
    verdicts = [use_token(writer, customer, other_than(totp.at(clock.now()))) for _ in range(5)]
    assert [v.attempts_left for v in verdicts[:4]] == [4, 3, 2, 1]
    assert verdicts[-1].locked_until == clock.now() + HOUR
    assert raised(verdicts[-1]).code == "CREDENTIAL_LOCKED"
    refused = use_token(writer, customer, totp.at(clock.now()))
    assert not refused.ok and refused.locked_until is not None

    clock.advance(HOUR + timedelta(seconds=STEP))
    assert use_token(writer, customer, totp.at(clock.now())) == Verdict(True)


def test_enrolling_again_replaces_the_token(writer, clock, customer):
    old = enroll(writer, customer)
    new = enroll(writer, customer)
    assert old.secret != new.secret
    stale = use_token(writer, customer, old.at(clock.now()))
    assert not stale.ok and stale.attempts_left == 4
    assert use_token(writer, customer, new.at(clock.now())) == Verdict(True)


def test_the_token_secret_is_stored_sealed(writer, engine, clock, customer):
    totp = enroll(writer, customer)
    row = credential_row(engine, customer, "token")
    for value in row.values():
        assert totp.secret not in str(value)
    assert VAULT.decrypt(row["secret"], purpose="security.token") == totp.secret


def test_malformed_token_codes_are_refused_without_a_crash(writer, clock, customer):
    totp = enroll(writer, customer)
    right = totp.at(clock.now())
    full_width = right.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for bad in ("", right[:5], right + "0", "abcdef", f" {right[:5]}", full_width, None):
        assert not use_token(writer, customer, bad).ok, bad
        assert use_token(writer, customer, right).ok  # a success in between: no lock
        clock.advance(timedelta(seconds=STEP))
        right = totp.at(clock.now())
        full_width = right.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


# -- one-time SMS codes -------------------------------------------------------------------
def test_the_sms_code_arrives_sealed_and_names_what_it_authorises(writer, engine, customer):
    issued = writer.execute(
        issue_code(
            VAULT, customer_id=customer, purpose="payment", binding=PAY_100, message=PAY_MESSAGE
        )
    )
    [payload] = sms_payloads(engine)
    assert payload["customer"] == customer
    [body] = sms_bodies(engine, customer)
    assert PAY_MESSAGE in body
    code = code_in(body)
    assert code not in json.dumps(payload)
    assert as_utc(issued.expires_at) == writer.clock.now() + timedelta(seconds=300)
    assert use_code(writer, customer, code) == Verdict(True)


def test_malformed_sms_codes_are_refused_without_a_crash(writer, engine, customer):
    code = send_code(writer, engine, customer)
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for bad in (None, int(code), f" {code}", full_width):
        verdict = use_code(writer, customer, bad)
        assert isinstance(verdict, Verdict) and not verdict.ok, bad
    assert use_code(writer, customer, code) == Verdict(True)


def test_an_sms_code_is_accepted_once(writer, engine, customer):
    code = send_code(writer, engine, customer)
    assert use_code(writer, customer, code) == Verdict(True)
    again = use_code(writer, customer, code)
    assert not again.ok
    assert raised(again).code == "AUTH_FAILED"


def test_an_sms_code_is_bound_to_the_amount_and_payee(writer, engine, customer):
    code = send_code(writer, engine, customer)
    bigger = use_code(writer, customer, code, binding=PAY_10000)
    assert not bigger.ok and bigger.attempts_left == 4  # refused and counted
    elsewhere = use_code(writer, customer, code, binding=PAY_100_ELSEWHERE)
    assert not elsewhere.ok and elsewhere.attempts_left == 3
    assert use_code(writer, customer, code) == Verdict(True)


def test_an_sms_code_expires_after_five_minutes(writer, engine, clock, customer):
    code = send_code(writer, engine, customer)
    clock.advance(timedelta(seconds=299))
    assert use_code(writer, customer, code) == Verdict(True)

    code = send_code(writer, engine, customer)
    clock.advance(timedelta(seconds=301))
    assert not use_code(writer, customer, code).ok


def test_an_sms_code_is_spent_after_five_wrong_tries(writer, engine, customer):
    code = send_code(writer, engine, customer)
    verdicts = [use_code(writer, customer, other_than(code)) for _ in range(5)]
    assert [v.ok for v in verdicts] == [False] * 5
    assert [v.attempts_left for v in verdicts] == [4, 3, 2, 1, 0]
    assert not use_code(writer, customer, code).ok
    assert code_rows(engine, customer)[0]["used_at"] is None  # refused, not used


def test_a_newer_sms_code_supersedes_the_older(writer, engine, clock, customer):
    older = send_code(writer, engine, customer)
    wait_to_resend(clock)
    newer = send_code(writer, engine, customer)
    if older != newer:  # one chance in a million that they are the same digits
        assert not use_code(writer, customer, older).ok
    assert use_code(writer, customer, newer) == Verdict(True)
    assert not use_code(writer, customer, older).ok


def test_an_sms_code_works_only_for_its_purpose(writer, engine, customer):
    code = send_code(writer, engine, customer, purpose="payment")
    assert not use_code(writer, customer, code, purpose="add_payee").ok
    assert use_code(writer, customer, code, purpose="payment").ok

    code = send_code(writer, engine, customer, purpose="add_payee", message="添加收款人")
    assert not use_code(writer, customer, code, purpose="payment").ok
    assert use_code(writer, customer, code, purpose="add_payee").ok


def test_another_customer_cannot_use_my_sms_code(writer, engine, customer):
    stranger = new_customer(writer)
    send_code(writer, engine, stranger)  # the stranger has a code of their own
    code = send_code(writer, engine, customer)
    assert not use_code(writer, stranger, code).ok
    assert use_code(writer, customer, code) == Verdict(True)


def test_the_sms_code_is_stored_only_hashed(writer, engine, customer):
    code = send_code(writer, engine, customer)
    [row] = code_rows(engine, customer)
    for column, value in row.items():
        assert code not in str(value), column
    assert row["binding"] == PAY_100


# -- concurrency --------------------------------------------------------------------------
def test_two_checks_of_one_sms_code_in_one_batch_accept_exactly_one(writer, engine, customer):
    code = send_code(writer, engine, customer)
    outcomes = in_one_batch(
        writer,
        [
            check_code(VAULT, customer_id=customer, purpose="payment", binding=PAY_100, code=code)
            for _ in range(2)
        ],
    )
    assert all(isinstance(o, Verdict) for o in outcomes), outcomes
    assert sorted(o.ok for o in outcomes) == [False, True]


def test_two_token_checks_of_one_code_in_one_batch_accept_exactly_one(writer, clock, customer):
    totp = enroll(writer, customer)
    code = totp.at(clock.now())
    outcomes = in_one_batch(
        writer, [check_token(VAULT, customer_id=customer, code=code) for _ in range(2)]
    )
    assert sorted(o.ok for o in outcomes) == [False, True]


def test_concurrent_wrong_passwords_are_counted_exactly(
    writer, engine, clock, customer, fast_hashing
):
    with_secret(writer, customer)
    second = Writer(engine, clock=clock)  # another process's writer on the same database
    start = threading.Barrier(10)

    def try_wrong(i: int) -> Verdict:
        start.wait(WAIT)
        w = writer if i % 2 else second
        return w.execute(
            check_secret(customer_id=customer, kind="login_password", secret=f"Wrong{i:04d}"),
            timeout=WAIT,
        )

    try:
        with ThreadPoolExecutor(10) as pool:
            verdicts = list(pool.map(try_wrong, range(10)))
    finally:
        second.close()
    assert not any(v.ok for v in verdicts)
    counted = sorted(v.attempts_left for v in verdicts if v.attempts_left is not None)
    assert counted == [1, 2, 3, 4]
    locked = [v for v in verdicts if v.locked_until is not None]
    assert len(locked) == 6
    assert {v.locked_until for v in locked} == {clock.now() + HOUR}
    row = credential_row(engine, customer, "login_password")
    assert (row["locks"], row["failures"], row["permanently_locked"]) == (1, 0, False)
    assert len(failed_audits(engine, customer)) == 10
    assert attempt(writer, customer, "login_password", PASSWORD).locked_until is not None


# -- audit --------------------------------------------------------------------------------
def _fail_password(writer, engine, clock, customer):
    with_secret(writer, customer)
    return attempt(writer, customer, "login_password", WRONG["login_password"])


def _fail_pin(writer, engine, clock, customer):
    with_secret(writer, customer, "transaction_pin")
    return attempt(writer, customer, "transaction_pin", WRONG["transaction_pin"])


def _fail_locked(writer, engine, clock, customer):
    with_secret(writer, customer)
    wrong_times(writer, customer, "login_password", 5)
    before = len(failed_audits(engine, customer))
    verdict = attempt(writer, customer, "login_password", PASSWORD)
    assert len(failed_audits(engine, customer)) == before + 1
    return verdict


def _fail_token(writer, engine, clock, customer):
    totp = enroll(writer, customer)
    return use_token(writer, customer, other_than(totp.at(clock.now())))


def _fail_token_replay(writer, engine, clock, customer):
    totp = enroll(writer, customer)
    assert use_token(writer, customer, totp.at(clock.now())).ok
    return use_token(writer, customer, totp.at(clock.now()))


def _fail_sms_code(writer, engine, clock, customer):
    return use_code(writer, customer, other_than(send_code(writer, engine, customer)))


def _fail_sms_binding(writer, engine, clock, customer):
    return use_code(writer, customer, send_code(writer, engine, customer), binding=PAY_10000)


def _fail_sms_expired(writer, engine, clock, customer):
    code = send_code(writer, engine, customer)
    clock.advance(timedelta(seconds=301))
    return use_code(writer, customer, code)


def _fail_without_password(writer, engine, clock, customer):
    return attempt(writer, customer, "login_password", PASSWORD)


def _fail_without_token(writer, engine, clock, customer):
    return use_token(writer, customer, "123456")


@pytest.mark.parametrize(
    "failure",
    [
        _fail_password,
        _fail_pin,
        _fail_locked,
        _fail_token,
        _fail_token_replay,
        _fail_sms_code,
        _fail_sms_binding,
        _fail_sms_expired,
        _fail_without_password,
        _fail_without_token,
    ],
    ids=lambda f: f.__name__.removeprefix("_fail_"),
)
def test_every_failed_check_is_audited_as_failed(
    writer, engine, clock, customer, fast_hashing, failure
):
    verdict = failure(writer, engine, clock, customer)
    assert not verdict.ok
    records = failed_audits(engine, customer)
    assert records, "a failed check left no audit record"
    assert all(r["actor"] == f"customer:{customer}" for r in records)
    assert_audit_intact(engine)


def test_a_successful_check_is_not_audited_as_failed(writer, engine, clock, customer):
    with_secret(writer, customer)
    totp = enroll(writer, customer)
    assert attempt(writer, customer, "login_password", PASSWORD).ok
    assert use_token(writer, customer, totp.at(clock.now())).ok
    assert use_code(writer, customer, send_code(writer, engine, customer)).ok
    assert failed_audits(engine, customer) == []
    assert_audit_intact(engine)


# -- what a secret costs to check ------------------------------------------------------------------
def test_a_pin_is_hashed_at_a_pins_cost_and_a_login_password_at_the_recommended_one() -> None:
    pin = extract_parameters(NewSecret("transaction_pin", PIN).hashed())
    password = extract_parameters(NewSecret("login_password", PASSWORD).hashed())
    recommended = PasswordHasher()
    assert (password.time_cost, password.memory_cost) == (
        recommended.time_cost, recommended.memory_cost,
    )  # fmt: skip
    assert (pin.time_cost, pin.memory_cost, pin.parallelism) == (1, 256, 1)


def test_a_pin_hashed_dearer_before_is_renewed_at_its_next_good_check_only(
    writer: Writer, engine: Engine, customer: int
) -> None:
    with_secret(writer, customer, "transaction_pin")
    dearer = PasswordHasher(time_cost=2, memory_cost=128, parallelism=1).hash(PIN)
    with engine.begin() as conn:  # a PIN stored before the bank hashed PINs as it does now
        conn.execute(
            credentials.update()
            .where(credentials.c.customer_id == customer)
            .where(credentials.c.kind == "transaction_pin")
            .values(secret=dearer)
        )
    assert not attempt(writer, customer, "transaction_pin", "000001").ok
    assert credential_row(engine, customer, "transaction_pin")["secret"] == dearer
    assert attempt(writer, customer, "transaction_pin", PIN).ok
    renewed = credential_row(engine, customer, "transaction_pin")["secret"]
    assert extract_parameters(renewed).memory_cost == HASHERS["transaction_pin"].memory_cost
    assert attempt(writer, customer, "transaction_pin", PIN).ok  # the renewed hash checks
