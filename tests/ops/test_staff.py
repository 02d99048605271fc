"""Staff identities and their console sessions: usernames, roles, argon2id passwords with the
customers' lockout, one session mechanism for staff and customers, and `ebank staff add`.

Database tests run on SQLite and PostgreSQL.
"""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from ebank.core.db import make_engine
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.ops import staff
from ebank.ops.tables import staff as staff_table
from ebank.security import service as security
from ebank.security import sessions
from ebank.security.tables import sessions as sessions_table
from tests.support import code_of, person

PASSWORD = "staff2026pass"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, type=Argon2Type.ID)
    monkeypatch.setattr(security, "_hasher", cheap)


def add(writer: Writer, username: str = "teller1", *roles: str, **changes: object) -> object:
    params = {
        "username": username,
        "name": "柜员 Teller",
        "roles": roles or ("teller",),
        "password": PASSWORD,
        "actor": "system:test",
        **changes,
    }
    try:
        return writer.execute(staff.add(**params))  # type: ignore[arg-type]
    except EbankError as exc:
        return exc


def staff_rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(staff_table)).mappings()]


def log_in(writer: Writer, username: str = "teller1", password: str = PASSWORD) -> object:
    return writer.execute(staff.login(username=username, password=password))


# -- who they are -------------------------------------------------------------------------------
def test_a_member_of_staff_is_stored_with_an_argon2id_hash_and_the_addition_audited(writer, engine):
    added = add(writer, "Teller1", "teller", "supervisor")
    assert isinstance(added, staff.StaffMember)
    assert (added.username, added.roles) == ("teller1", ("supervisor", "teller"))
    assert added.actor == f"staff:{added.id}"
    (row,) = staff_rows(engine)
    assert str(row["secret"]).startswith("$argon2id$")
    assert PASSWORD not in str(row.values())
    with engine.connect() as conn:
        record = (
            conn.execute(select(audit_log).where(audit_log.c.action == "staff.add"))
            .mappings()
            .one()
        )
    assert (record["actor"], record["subject"]) == ("system:test", f"staff:{added.id}")
    assert PASSWORD not in str(dict(record))


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


# -- logging in ---------------------------------------------------------------------------------
def test_the_right_password_opens_a_console_session(writer):
    member = add(writer)
    checked = log_in(writer, "TELLER1")
    done = checked.value()
    assert done.member == member
    assert done.started.session.staff_id == member.id
    assert done.started.session.customer_id is None
    assert done.started.session.channel == "console"
    assert writer.execute(sessions.resume(done.started.token)).holder == f"staff:{member.id}"


def test_staff_lockout_is_the_customers_lockout(writer, clock):
    add(writer)
    verdicts = [log_in(writer, password="wrong2026pass").verdict for _ in range(5)]
    assert [v.attempts_left for v in verdicts[:4]] == [4, 3, 2, 1]
    assert verdicts[4].locked_until is not None
    assert not log_in(writer).verdict.ok  # the right password, while locked
    for _ in range(2):  # the third lock is for good
        clock.advance(timedelta(hours=2))
        for _ in range(5):
            log_in(writer, password="wrong2026pass")
    clock.advance(timedelta(days=30))
    assert log_in(writer).verdict.permanent


def test_an_unknown_username_fails_like_a_wrong_password_and_is_audited(writer, engine):
    add(writer)
    unknown = log_in(writer, "nobody")
    wrong = log_in(writer, password="wrong2026pass")
    assert not unknown.verdict.ok and not wrong.verdict.ok
    assert code_of(_raised(unknown)) == code_of(_raised(wrong)) == "AUTH_FAILED"
    with engine.connect() as conn:
        failed = conn.execute(
            select(audit_log.c.actor).where(
                audit_log.c.action == "staff.login", audit_log.c.outcome == "failed"
            )
        ).scalars()
        assert sorted(failed) == ["anonymous", "staff:1"]


def _raised(checked: object) -> EbankError:
    with pytest.raises(EbankError) as caught:
        checked.value()  # type: ignore[attr-defined]
    return caught.value


# -- one session mechanism ----------------------------------------------------------------------
def test_sessions_belong_to_exactly_one_customer_or_staff_member(writer, engine):
    member = add(writer)
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
    member = add(writer)
    customer = person(writer, 1)
    row = {"channel": "console", "device": "", "started_at": clock.now(),
           "last_seen_at": clock.now()}  # fmt: skip
    for n, holders in enumerate(({}, {"customer_id": customer, "staff_id": member.id})):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(sessions_table).values(token_hash=f"h{n}", **row, **holders))


def test_a_holder_ends_only_their_own_session(writer):
    member = add(writer)
    customer = person(writer, 1)
    staff_session = log_in(writer).value().started
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


# -- the command line ---------------------------------------------------------------------------
def test_ebank_staff_add_reads_the_password_from_the_environment(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ebank.db'}"

    def ebank_staff_add(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "EBANK_DATABASE_URL": url,
               "EBANK_STAFF_PASSWORD": PASSWORD}  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "ebank.cli", "staff", "add", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip

    done = ebank_staff_add("--username", "super1", "--name", "主管 Li", "--role", "supervisor",
                           "--role", "risk")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "super1" in done.stdout and "risk, supervisor" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    again = ebank_staff_add("--username", "SUPER1", "--name", "x", "--role", "teller")
    assert again.returncode == 1 and "already taken" in again.stderr
    assert ebank_staff_add("--username", "u2", "--name", "x", "--role", "god").returncode == 2
    engine = make_engine(url)
    writer = Writer(engine)
    try:
        done_login = writer.execute(staff.login(username="super1", password=PASSWORD)).value()
        assert done_login.member.roles == ("risk", "supervisor")
    finally:
        writer.close()
        engine.dispose()
