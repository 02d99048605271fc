"""A customer changes their own login password or transaction PIN: the current one checked as a
login checks it (counted towards the lockout, a failure audited), a new one equal to it or
breaking the rules refused before anything is checked, the customer's other sessions ended by
a new login password (never the one asking), and an alert texted.

Every test runs on SQLite and PostgreSQL."""

from typing import Any

import pytest
from sqlalchemy import Engine, select

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.security import sessions
from ebank.security.service import Checked, change_secret
from tests.security.test_security import (
    PASSWORD,
    PIN,
    SECRETS,
    WRONG,
    attempt,
    credential_row,
    failed_audits,
    new_customer,
    with_secret,
)
from tests.support import VAULT, last_sms

NEW = {"login_password": "Moonrise2027", "transaction_pin": "592604"}
pytestmark = pytest.mark.usefixtures("fast_hashing")


@pytest.fixture
def customer(writer: Writer) -> int:
    return new_customer(writer)


def change(writer: Writer, customer: int, kind: str, current: str, new: str,
           session_id: int | None = None) -> Checked[int]:  # fmt: skip
    return writer.execute(
        change_secret(VAULT, customer_id=customer, kind=kind, current=current, new=new,
                      channel="online", session_id=session_id)
    )  # fmt: skip


def open_sessions(writer: Writer, customer: int, n: int) -> list[int]:
    return [
        writer.execute(sessions.start(customer_id=customer, channel="online")).session.id
        for _ in range(n)
    ]


def live(engine: Engine, clock: FixedClock, customer: int) -> list[int]:
    with engine.connect() as conn:
        return sorted(s.id for s in sessions.live_sessions(conn, customer, now=clock.now()))


def actions(engine: Engine, customer: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.actor).order_by(audit_log.c.id)
        ).all()
    return [(a, who) for a, who in rows if who == f"customer:{customer}"]


def test_a_new_login_password_replaces_the_old_and_ends_the_other_sessions(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    with_secret(writer, customer)
    mine, *_others = open_sessions(writer, customer, 3)
    done = change(writer, customer, "login_password", PASSWORD, NEW["login_password"], mine)
    assert done.value() == 2
    assert live(engine, clock, customer) == [mine]
    assert attempt(writer, customer, "login_password", NEW["login_password"]).ok
    assert not attempt(writer, customer, "login_password", PASSWORD).ok
    done_actions = actions(engine, customer)
    assert ("credential.set.login_password", f"customer:{customer}") in done_actions
    assert [a for a, _ in done_actions].count("session.end.password") == 2
    assert "登录密码已于" in last_sms(engine) and NEW["login_password"] not in last_sms(engine)


def test_a_new_pin_replaces_the_old_and_leaves_every_session(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int
) -> None:
    with_secret(writer, customer, "transaction_pin")
    opened = open_sessions(writer, customer, 2)
    done = change(writer, customer, "transaction_pin", PIN, NEW["transaction_pin"], opened[0])
    assert done.value() == 0
    assert live(engine, clock, customer) == opened
    assert attempt(writer, customer, "transaction_pin", NEW["transaction_pin"]).ok
    assert "交易密码已于" in last_sms(engine)


@pytest.mark.parametrize("kind", ["login_password", "transaction_pin"])
def test_a_wrong_current_secret_counts_towards_the_lockout_and_changes_nothing(
    writer: Writer, engine: Engine, clock: FixedClock, customer: int, kind: str
) -> None:
    with_secret(writer, customer, kind)
    opened = open_sessions(writer, customer, 2)
    done = change(writer, customer, kind, WRONG[kind], NEW[kind], opened[0])
    with pytest.raises(EbankError) as caught:
        done.value()
    assert caught.value.code == "AUTH_FAILED"
    assert credential_row(engine, customer, kind)["failures"] == 1
    assert [r["action"] for r in failed_audits(engine, customer)] == [f"credential.check.{kind}"]
    assert live(engine, clock, customer) == opened
    assert attempt(writer, customer, kind, SECRETS[kind]).ok


def test_a_locked_credential_is_not_changed_even_with_the_right_current_one(
    writer: Writer, engine: Engine, customer: int
) -> None:
    with_secret(writer, customer)
    for _ in range(5):
        change(writer, customer, "login_password", WRONG["login_password"], "Anything123")
    done = change(writer, customer, "login_password", PASSWORD, NEW["login_password"])
    with pytest.raises(EbankError) as caught:
        done.value()
    assert caught.value.code == "CREDENTIAL_LOCKED"
    assert credential_row(engine, customer, "login_password")["locked_until"] is not None


@pytest.mark.parametrize(
    ("kind", "new", "code"),
    [
        ("login_password", PASSWORD, "SECRET_UNCHANGED"),
        ("transaction_pin", PIN, "SECRET_UNCHANGED"),
        ("login_password", "short1", "INVALID_INPUT"),
        ("login_password", "lettersonly", "INVALID_INPUT"),
        ("transaction_pin", "123456", "INVALID_INPUT"),
        ("transaction_pin", "12345a", "INVALID_INPUT"),
        ("token", "123456", "INVALID_INPUT"),
    ],
)
def test_a_new_secret_equal_to_the_current_or_breaking_the_rules_is_refused_uncounted(
    writer: Writer, engine: Engine, customer: int, kind: str, new: Any, code: str
) -> None:
    with_secret(writer, customer, "login_password")
    with_secret(writer, customer, "transaction_pin")
    current = SECRETS.get(kind, PIN)
    before = {k: credential_row(engine, customer, k) for k in SECRETS}
    with pytest.raises(EbankError) as caught:
        change(writer, customer, kind, current, new)
    assert caught.value.code == code
    assert {k: credential_row(engine, customer, k) for k in SECRETS} == before
