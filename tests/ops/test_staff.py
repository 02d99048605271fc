"""Staff identities, their console logins and their care by admins: usernames, roles, argon2id
passwords and a token (TOTP) with the customers' lockout over the whole login, one session
mechanism for staff and customers, disabling, unlocking, new tokens and roles by an admin who
never acts on their own login, and `ebank staff ...`.

Database tests run on SQLite and PostgreSQL.
"""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from alembic import command as alembic
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ebank.core.clock import FixedClock
from ebank.core.crypto import Vault
from ebank.core.db import make_engine
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.migrations import alembic_config, upgrade
from ebank.ops import staff
from ebank.ops.tables import staff as staff_table
from ebank.security import sessions
from ebank.security.tables import sessions as sessions_table
from tests.support import VAULT, code_of, person, race_two_writers

PASSWORD = "staff2026pass"
WRONG = "wrong2026pass"
ADMIN = "system:admin"  # an admin acting on others' logins in these tests
STEP = 30


pytestmark = pytest.mark.usefixtures("fast_hashing")  # cheap argon2id (tests/conftest.py)


def add(writer: Writer, username: str = "teller1", *roles: str, **changes: object) -> Any:
    """A new staff login (`staff.Enrolled`), or the error refusing it."""
    params = {
        "username": username,
        "name": "柜员 Teller",
        "roles": roles or ("teller",),
        "password": PASSWORD,
        "actor": "system:test",
        **changes,
    }
    try:
        return writer.execute(staff.add(VAULT, **params))  # type: ignore[arg-type]
    except EbankError as exc:
        return exc


def app_of(uri: str) -> pyotp.TOTP:
    """The authenticator app that scanned this URI."""
    return pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])


def code(uri: str, clock: FixedClock, steps: int = 0) -> str:
    """The code the app shows now (or `steps` time steps away)."""
    return app_of(uri).at(clock.now() + timedelta(seconds=STEP * steps))


def next_step(clock: FixedClock) -> None:
    clock.advance(timedelta(seconds=STEP - int(clock.now().timestamp()) % STEP))


def staff_rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(staff_table)).mappings()]


def row_of(engine: Engine, staff_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        query = select(staff_table).where(staff_table.c.id == staff_id)
        return dict(conn.execute(query).mappings().one())


def begin(writer: Writer, username: str = "teller1", password: str = PASSWORD) -> Any:
    return writer.execute(staff.begin_login(username=username, password=password))


def complete(writer: Writer, challenge: Any, given: str) -> Any:
    """Step two's answer, or the error refusing it."""
    try:
        return writer.execute(staff.complete_login(VAULT, challenge=challenge, code=given))
    except EbankError as exc:
        return exc


def log_in(writer: Writer, clock: FixedClock, uri: str, username: str = "teller1") -> Any:
    """Both steps, with the app's code of a fresh time step; the last step's answer."""
    next_step(clock)
    first = begin(writer, username)
    return complete(writer, first.value().token, code(uri, clock)) if first.verdict.ok else first


def raised(checked: Any) -> EbankError:
    with pytest.raises(EbankError) as caught:
        checked.value()
    return caught.value


def expect(code_: str, writer: Writer, command: Any) -> None:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    assert caught.value.code == code_


def audited(engine: Engine, action: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


# -- who they are -------------------------------------------------------------------------------
def test_a_member_of_staff_is_stored_with_an_argon2id_hash_a_sealed_token_and_audited(
    writer, engine
):
    added = add(writer, "Teller1", "teller", "supervisor")
    assert isinstance(added, staff.Enrolled)
    member = added.member
    assert (member.username, member.roles) == ("teller1", ("supervisor", "teller"))
    assert member.actor == f"staff:{member.id}"
    assert (member.has_token, member.disabled, member.permanently_locked) == (True, False, False)
    uri = urlparse(added.otpauth_uri)
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/ebank:staff-teller1")
    secret = parse_qs(uri.query)["secret"][0]
    (row,) = staff_rows(engine)
    assert str(row["secret"]).startswith("$argon2id$")
    assert PASSWORD not in str(row.values()) and secret not in str(row.values())
    assert VAULT.decrypt(str(row["token_seed"]), purpose=staff.SEED_PURPOSE) == secret
    [record] = audited(engine, "staff.add")
    assert (record["actor"], record["subject"]) == ("system:test", f"staff:{member.id}")
    assert PASSWORD not in str(record) and secret not in str(record)


def test_usernames_are_unique_whatever_their_case(writer, engine):
    add(writer, "teller1")
    again = add(writer, " TELLER1 ")
    assert code_of(again) == "STAFF_EXISTS"
    assert len(staff_rows(engine)) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"username": "ab"},
        {"username": "1teller"},
        {"username": "tel ler"},
        {"username": "x" * 33},
        {"username": None},
        {"roles": ()},
        {"roles": ("teller", "god")},
        {"roles": "teller"},
        {"password": "short1"},
        {"password": "lettersonly"},
        {"name": ""},
        {"name": "n" * 101},
        {"name": "a\x00b"},
    ],
)
def test_bad_staff_details_are_refused_and_nothing_is_stored(writer, engine, changes):
    assert code_of(add(writer, **changes)) == "INVALID_INPUT"
    assert staff_rows(engine) == []


# -- logging in: the password, then a token code ------------------------------------------------
def test_the_password_opens_a_challenge_and_the_token_code_then_a_console_session(
    writer, engine, clock
):
    added = add(writer)
    first = begin(writer, "TELLER1")
    challenge = first.value()
    assert challenge.expires_at == clock.now() + timedelta(
        seconds=get_settings().sms_code_ttl_seconds
    )
    with engine.connect() as conn:
        assert conn.execute(select(sessions_table)).first() is None  # the password alone: none
    assert row_of(engine, added.member.id)["challenge_hash"] not in (None, challenge.token)
    done = complete(writer, challenge.token, code(added.otpauth_uri, clock)).value()
    assert done.member.id == added.member.id and done.member.roles == ("teller",)
    assert done.started.session.staff_id == added.member.id
    assert done.started.session.customer_id is None
    assert done.started.session.channel == "console"
    assert writer.execute(sessions.resume(done.started.token)).holder == added.member.actor
    assert row_of(engine, added.member.id)["challenge_hash"] is None


def test_a_wrong_token_code_answers_like_a_wrong_password(writer, clock):
    first, second = add(writer, "teller1"), add(writer, "teller2")
    wrong_password = begin(writer, "teller1", WRONG)
    started = begin(writer, "teller2").value()
    right = code(second.otpauth_uri, clock)
    wrong_code = complete(writer, started.token, f"{(int(right) + 1) % 10**6:06d}")
    assert raised(wrong_password).to_dict() == raised(wrong_code).to_dict()
    assert raised(wrong_code).code == "AUTH_FAILED"
    assert first.member.id != second.member.id


def test_wrong_passwords_and_wrong_codes_count_on_one_lockout(writer, engine, clock):
    added = add(writer)
    assert begin(writer, password=WRONG).verdict.attempts_left == 4
    started = begin(writer).value()
    left = [complete(writer, started.token, "000000").verdict.attempts_left for _ in range(3)]
    assert left == [3, 2, 1]
    assert begin(writer, password=WRONG).verdict.locked_until is not None
    # Locked: the right password and the right code are refused alike.
    assert not begin(writer).verdict.ok
    assert raised(complete(writer, started.token, code(added.otpauth_uri, clock))).code == (
        "CREDENTIAL_LOCKED"
    )
    with engine.connect() as conn:
        assert conn.execute(select(sessions_table)).first() is None
    failed = audited(engine, "staff.login")
    assert [r["outcome"] for r in failed] == ["failed"] * len(failed)
    assert '"factor": "token"' in str([r["detail"] for r in failed])  # the audit knows


def test_staff_lockout_is_the_customers_lockout(writer, clock):
    add(writer)
    verdicts = [begin(writer, password=WRONG).verdict for _ in range(5)]
    assert [v.attempts_left for v in verdicts[:4]] == [4, 3, 2, 1]
    assert verdicts[4].locked_until is not None
    assert not begin(writer).verdict.ok  # the right password, while locked
    for _ in range(2):  # the third lock is for good
        clock.advance(timedelta(hours=2))
        for _ in range(5):
            begin(writer, password=WRONG)
    clock.advance(timedelta(days=30))
    assert begin(writer).verdict.permanent


def test_a_right_password_alone_does_not_end_a_run_of_failures_a_completed_login_does(
    writer, clock
):
    added = add(writer)
    for _ in range(4):
        begin(writer, password=WRONG)
    assert begin(writer).verdict.ok  # the password passes, the run goes on
    assert begin(writer, password=WRONG).verdict.locked_until is not None
    clock.advance(timedelta(hours=2))
    for _ in range(4):
        begin(writer, password=WRONG)
    assert log_in(writer, clock, added.otpauth_uri).verdict.ok
    assert begin(writer, password=WRONG).verdict.attempts_left == 4  # a new run


def test_a_token_code_logs_in_once(writer, clock):
    added = add(writer)
    assert log_in(writer, clock, added.otpauth_uri).verdict.ok
    again = begin(writer).value()
    replayed = complete(writer, again.token, code(added.otpauth_uri, clock))
    assert replayed.verdict.attempts_left == 4  # refused, and counted
    clock.advance(timedelta(seconds=STEP))
    assert complete(writer, again.token, code(added.otpauth_uri, clock)).verdict.ok


@pytest.mark.parametrize(("steps", "passes"), [(-2, False), (-1, True), (1, True), (2, False)])
def test_the_codes_of_the_steps_either_side_pass_and_no_others(writer, clock, steps, passes):
    added = add(writer)
    next_step(clock)
    started = begin(writer).value()
    given = code(added.otpauth_uri, clock, steps)
    assert complete(writer, started.token, given).verdict.ok is passes


def test_another_members_token_does_not_complete_my_login(writer, clock):
    add(writer, "teller1")
    theirs = add(writer, "teller2")
    started = begin(writer, "teller1").value()
    assert not complete(writer, started.token, code(theirs.otpauth_uri, clock)).verdict.ok


def test_a_challenge_is_spent_by_its_login_replaced_by_a_newer_one_and_expires(
    writer, engine, clock
):
    added = add(writer)
    older = begin(writer).value()
    newer = begin(writer).value()
    assert code_of(complete(writer, older.token, code(added.otpauth_uri, clock))) == (
        "SESSION_EXPIRED"
    )
    assert complete(writer, newer.token, code(added.otpauth_uri, clock)).verdict.ok
    next_step(clock)  # spent: even a fresh code does not reuse it
    assert code_of(complete(writer, newer.token, code(added.otpauth_uri, clock))) == (
        "SESSION_EXPIRED"
    )
    late = begin(writer).value()
    clock.advance(timedelta(seconds=get_settings().sms_code_ttl_seconds))
    assert code_of(complete(writer, late.token, code(added.otpauth_uri, clock))) == (
        "SESSION_EXPIRED"
    )
    for garbage in ("", "x" * 101, None, 7, "not-a-challenge"):
        assert code_of(complete(writer, garbage, "123456")) == "SESSION_EXPIRED"
    assert row_of(engine, added.member.id)["failures"] == 0  # none of that was a guess


def test_a_login_locked_between_the_steps_does_not_complete(writer, engine, clock):
    added = add(writer)
    started = begin(writer).value()
    for _ in range(5):
        begin(writer, password=WRONG)
    assert raised(complete(writer, started.token, code(added.otpauth_uri, clock))).code == (
        "CREDENTIAL_LOCKED"
    )
    with engine.connect() as conn:
        assert conn.execute(select(sessions_table)).first() is None


def test_a_login_made_before_tokens_logs_in_only_once_it_has_one(writer, engine, clock):
    added = add(writer)
    with engine.begin() as conn:
        conn.execute(update(staff_table).values(token_seed=None))
    with engine.connect() as conn:
        assert not staff.get(conn, added.member.id).has_token
    started = begin(writer).value()
    assert not complete(writer, started.token, code(added.otpauth_uri, clock)).verdict.ok
    renewed = writer.execute(staff.reset_token(VAULT, staff_id=added.member.id, actor=ADMIN))
    assert renewed.member.has_token
    assert log_in(writer, clock, renewed.otpauth_uri).verdict.ok


def test_an_unknown_username_fails_like_a_wrong_password_and_is_audited(writer, engine):
    add(writer)
    unknown = begin(writer, "nobody")
    wrong = begin(writer, password=WRONG)
    assert not unknown.verdict.ok and not wrong.verdict.ok
    assert raised(unknown).to_dict() == raised(wrong).to_dict()
    assert raised(unknown).code == "AUTH_FAILED"
    assert sorted(r["actor"] for r in audited(engine, "staff.login")) == ["anonymous", "staff:1"]


# -- one session mechanism ----------------------------------------------------------------------
def test_sessions_belong_to_exactly_one_customer_or_staff_member(writer, engine):
    member = add(writer).member
    customer = person(writer, 1)
    for kwargs in (
        {"channel": "console"},
        {"customer_id": customer, "staff_id": member.id, "channel": "console"},
        {"customer_id": customer, "channel": "console"},  # the console is staff's
        {"staff_id": member.id, "channel": "online"},  # online banking is customers'
        {"staff_id": 987_654, "channel": "console"},
        {"staff_id": "1", "channel": "console"},
    ):
        with pytest.raises(EbankError) as caught:
            writer.execute(sessions.start(**kwargs))
        assert caught.value.code == "INVALID_INPUT", kwargs
    with engine.connect() as conn:
        assert conn.execute(select(sessions_table)).first() is None


def test_the_database_refuses_a_session_with_two_holders_or_none(writer, engine, clock):
    member = add(writer).member
    customer = person(writer, 1)
    row = {"channel": "console", "device": "", "started_at": clock.now(),
           "last_seen_at": clock.now()}  # fmt: skip
    for n, holders in enumerate(({}, {"customer_id": customer, "staff_id": member.id})):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(sessions_table).values(token_hash=f"h{n}", **row, **holders))


def test_a_holder_ends_only_their_own_session(writer, clock):
    added = add(writer)
    member = added.member
    customer = person(writer, 1)
    staff_session = log_in(writer, clock, added.otpauth_uri).value().started
    customer_session = writer.execute(sessions.start(customer_id=customer, channel="online"))
    for holder, session_id in (
        ({"customer_id": customer}, staff_session.session.id),
        ({"customer_id": member.id}, staff_session.session.id),  # the same number, a customer
        ({"staff_id": member.id}, customer_session.session.id),
    ):
        with pytest.raises(EbankError) as caught:
            writer.execute(sessions.end(session_id=session_id, **holder))
        assert caught.value.code == "SESSION_NOT_FOUND"
    writer.execute(sessions.resume(staff_session.token))
    writer.execute(sessions.resume(customer_session.token))
    writer.execute(sessions.end(staff_id=member.id, session_id=staff_session.session.id))
    with pytest.raises(EbankError):
        writer.execute(sessions.resume(staff_session.token))


# -- administration -----------------------------------------------------------------------------
def test_a_disabled_login_cannot_log_in_and_its_open_sessions_end_at_once(writer, engine, clock):
    added, other = add(writer, "teller1"), add(writer, "teller2")
    tokens = [log_in(writer, clock, added.otpauth_uri).value().started.token for _ in range(2)]
    theirs = log_in(writer, clock, other.otpauth_uri, "teller2").value().started.token
    half_done = begin(writer).value()
    disabled = writer.execute(staff.disable(staff_id=added.member.id, actor=ADMIN))
    assert disabled.disabled
    for token in tokens:
        expect("SESSION_EXPIRED", writer, sessions.resume(token))
    writer.execute(sessions.resume(theirs))  # someone else's session goes on
    with engine.connect() as conn:
        reasons = conn.execute(
            select(sessions_table.c.end_reason).where(sessions_table.c.staff_id == added.member.id)
        ).scalars()
        assert list(reasons) == ["disabled", "disabled"]
    # Neither a login half done nor a new one gets in, and the right password says nothing.
    next_step(clock)
    assert raised(complete(writer, half_done.token, code(added.otpauth_uri, clock))).code == (
        "AUTH_FAILED"
    )
    assert raised(begin(writer)).to_dict() == raised(begin(writer, "nobody")).to_dict()
    assert row_of(engine, added.member.id)["failures"] == 0  # refusing it was no guess
    assert [r["detail"] for r in audited(engine, "staff.disable")] == ['{"sessions_ended": 2}']
    enabled = writer.execute(staff.enable(staff_id=added.member.id, actor=ADMIN))
    assert not enabled.disabled
    assert log_in(writer, clock, added.otpauth_uri).verdict.ok


def test_disabling_races_a_login_and_no_session_survives(writer, engine, clock):
    added = add(writer)
    started = begin(writer).value()
    [(login, disabled)] = race_two_writers(
        writer, engine, clock,
        [staff.complete_login(VAULT, challenge=started.token, code=code(added.otpauth_uri, clock))],
        [staff.disable(staff_id=added.member.id, actor=ADMIN)],
    )  # fmt: skip
    assert code_of(disabled) == "ok"
    if login.verdict.ok:  # the login came first: disabling ended its session
        expect("SESSION_EXPIRED", writer, sessions.resume(login.value().started.token))
    with engine.connect() as conn:
        live = select(sessions_table).where(sessions_table.c.ended_at.is_(None))
        assert conn.execute(live).first() is None


def test_unlock_clears_a_temporary_and_a_permanent_lock(writer, engine, clock):
    added = add(writer)
    for _ in range(5):
        begin(writer, password=WRONG)
    assert begin(writer).verdict.locked_until is not None
    writer.execute(staff.unlock(staff_id=added.member.id, actor=ADMIN))
    assert log_in(writer, clock, added.otpauth_uri).verdict.ok
    for _ in range(3):
        for _ in range(5):
            begin(writer, password=WRONG)
        clock.advance(timedelta(hours=2))
    assert begin(writer).verdict.permanent
    unlocked = writer.execute(staff.unlock(staff_id=added.member.id, actor=ADMIN))
    assert (unlocked.permanently_locked, unlocked.locked_until) == (False, None)
    assert log_in(writer, clock, added.otpauth_uri).verdict.ok
    details = [r["detail"] for r in audited(engine, "staff.unlock")]
    assert details == ['{"was_locked": "temporary"}', '{"was_locked": "permanent"}']


def test_a_new_token_stops_the_old_one_at_once(writer, engine, clock):
    added = add(writer)
    renewed = writer.execute(staff.reset_token(VAULT, staff_id=added.member.id, actor=ADMIN))
    assert renewed.otpauth_uri != added.otpauth_uri
    next_step(clock)
    started = begin(writer).value()
    assert not complete(writer, started.token, code(added.otpauth_uri, clock)).verdict.ok
    assert complete(writer, started.token, code(renewed.otpauth_uri, clock)).verdict.ok
    [record] = audited(engine, "staff.reset_token")
    assert parse_qs(urlparse(renewed.otpauth_uri).query)["secret"][0] not in str(record)


def test_roles_change_and_the_audit_keeps_the_old_and_the_new(writer, engine):
    added = add(writer, "teller1", "teller")
    changed = writer.execute(
        staff.set_roles(staff_id=added.member.id, roles=("risk", "supervisor"), actor=ADMIN)
    )
    assert changed.roles == ("risk", "supervisor")
    with engine.connect() as conn:
        assert staff.get(conn, added.member.id).roles == ("risk", "supervisor")
    [record] = audited(engine, "staff.set_roles")
    assert record["detail"] == '{"after": ["risk", "supervisor"], "before": ["teller"]}'
    for bad in ((), ("god",), "teller", None):
        expect("INVALID_INPUT", writer, staff.set_roles(
            staff_id=added.member.id, roles=bad, actor=ADMIN))  # fmt: skip
    with engine.connect() as conn:
        assert staff.get(conn, added.member.id).roles == ("risk", "supervisor")


def _acts(staff_id: int, actor: str) -> list[Any]:
    return [
        staff.disable(staff_id=staff_id, actor=actor),
        staff.enable(staff_id=staff_id, actor=actor),
        staff.unlock(staff_id=staff_id, actor=actor),
        staff.reset_token(VAULT, staff_id=staff_id, actor=actor),
        staff.set_roles(staff_id=staff_id, roles=("teller",), actor=actor),
    ]


def test_no_admin_acts_on_their_own_login(writer, engine):
    me = add(writer, "admin1", "admin").member
    before = row_of(engine, me.id)
    for command in _acts(me.id, me.actor):
        expect("STAFF_OWN_LOGIN", writer, command)
    assert row_of(engine, me.id) == before
    assert not [r for r in audited(engine, "staff.disable") if r["subject"] == me.actor]


@pytest.mark.parametrize("staff_id", [987_654, "1", None])
def test_acting_on_a_login_that_does_not_exist_is_staff_not_found(writer, staff_id):
    add(writer)
    for command in _acts(staff_id, ADMIN):
        expect("STAFF_NOT_FOUND", writer, command)


def test_every_admin_act_is_audited_with_who_did_it_and_to_whom(writer, engine):
    target = add(writer).member
    admin = add(writer, "admin1", "admin").member
    for command in _acts(target.id, admin.actor):
        writer.execute(command)
    for action in ("disable", "enable", "unlock", "reset_token", "set_roles"):
        [record] = audited(engine, f"staff.{action}")
        assert (record["actor"], record["subject"]) == (admin.actor, target.actor), action
        assert record["channel"] == "console"


# -- the command line ---------------------------------------------------------------------------
def _ebank(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "EBANK_DATABASE_URL": url,
           "EBANK_STAFF_PASSWORD": PASSWORD}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "ebank.cli", "staff", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def _uri_in(out: str) -> str:
    return next(word for word in out.split() if word.startswith("otpauth://"))


def test_ebank_staff_add_prints_the_token_once_and_its_login_works(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ebank.db'}"
    done = _ebank(tmp_path, url, "add", "--username", "super1", "--name", "主管 Li", "--role",
                  "supervisor", "--role", "risk")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "super1" in done.stdout and "risk, supervisor" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    uri = _uri_in(done.stdout)
    assert uri.startswith("otpauth://totp/ebank:staff-super1?")
    assert parse_qs(urlparse(uri).query)["secret"][0] in done.stdout.replace(uri, "")
    again = _ebank(tmp_path, url, "add", "--username", "SUPER1", "--name", "x", "--role", "teller")
    assert again.returncode == 1 and "already taken" in again.stderr
    assert "otpauth://" not in again.stdout
    bad = _ebank(tmp_path, url, "add", "--username", "u2", "--name", "x", "--role", "god")
    assert bad.returncode == 2
    vault = Vault.from_text((tmp_path / "var" / "data.key").read_text())
    engine = make_engine(url)
    writer = Writer(engine)
    try:
        started = writer.execute(staff.begin_login(username="super1", password=PASSWORD))
        totp_code = app_of(uri).now()
        done_login = writer.execute(
            staff.complete_login(vault, challenge=started.value().token, code=totp_code)
        ).value()
        assert done_login.member.roles == ("risk", "supervisor")
    finally:
        writer.close()
        engine.dispose()


def test_ebank_staff_disable_enable_unlock_and_reset_token_act_as_cli(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ebank.db'}"
    added = _ebank(tmp_path, url, "add", "--username", "teller1", "--name", "T", "--role", "teller")
    assert added.returncode == 0, added.stderr
    engine = make_engine(url)
    writer = Writer(engine)

    def state() -> staff.StaffMember:
        with engine.connect() as conn:
            found = staff.find(conn, "teller1")
        assert found is not None
        return found

    try:
        for _ in range(5):
            writer.execute(staff.begin_login(username="teller1", password=WRONG))
        assert state().locked_until is not None
        unlocked = _ebank(tmp_path, url, "unlock", "--username", "teller1")
        assert unlocked.returncode == 0 and "unlocked" in unlocked.stdout, unlocked.stderr
        assert (state().locked_until, state().permanently_locked) == (None, False)
        assert _ebank(tmp_path, url, "disable", "--username", "teller1").returncode == 0
        assert state().disabled
        assert _ebank(tmp_path, url, "enable", "--username", "teller1").returncode == 0
        assert not state().disabled
        renewed = _ebank(tmp_path, url, "reset-token", "--username", "teller1")
        assert renewed.returncode == 0, renewed.stderr
        assert _uri_in(renewed.stdout) != _uri_in(added.stdout)
        nobody = _ebank(tmp_path, url, "disable", "--username", "nobody")
        assert nobody.returncode == 1 and "No such staff login" in nobody.stderr
        with engine.connect() as conn:
            acts = conn.execute(
                select(audit_log.c.action, audit_log.c.actor, audit_log.c.channel).where(
                    audit_log.c.action.in_(
                        ["staff.unlock", "staff.disable", "staff.enable", "staff.reset_token"]
                    )
                )
            ).all()
        assert sorted(acts) == sorted(
            (f"staff.{a}", "cli", "cli") for a in ("unlock", "disable", "enable", "reset_token")
        )
    finally:
        writer.close()
        engine.dispose()


# -- the migration that brought staff tokens --------------------------------------------------
def test_upgrading_keeps_staff_and_ends_the_sessions_opened_without_a_token_or_a_device_hash(
    db_url, writer, engine, clock
):
    """Staff sessions point at the staff table: SQLite must alter it without copying it."""
    added = add(writer)
    customer = person(writer, 1)
    console = writer.execute(sessions.start(staff_id=added.member.id, channel="console"))
    phone = writer.execute(
        sessions.start(customer_id=customer, channel="mobile", device_hash="a" * 64)
    )
    browser = writer.execute(sessions.start(customer_id=customer, channel="online"))
    logged_out = writer.execute(sessions.start(customer_id=customer, channel="online"))
    writer.execute(sessions.end(customer_id=customer, session_id=logged_out.session.id))
    alembic.downgrade(alembic_config(db_url), "0014")
    upgrade(db_url)
    with engine.connect() as conn:
        reasons = dict(conn.execute(select(sessions_table.c.id, sessions_table.c.end_reason)).all())
        assert staff.get(conn, added.member.id).username == "teller1"
    assert reasons == {
        console.session.id: "upgrade", phone.session.id: "upgrade", browser.session.id: None,
        logged_out.session.id: "logout",
    }  # fmt: skip
    assert not row_of(engine, added.member.id)["token_seed"]  # the old login needs a new token
