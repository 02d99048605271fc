"""argon2id stays out of the writer's thread (docs/decisions.md §1): every command that
verifies a password or PIN, or hashes a new one, does it in its `prepare`, before it is
queued, so the process's single writer goes on committing other commands meanwhile.

The proof cannot pass by luck: the hasher is swapped for one that waits, inside the hash,
until another command (a session resumed, as every request does) has committed. Were the hash
run by the writer's thread, that command could never commit and the test would time out.

Every test runs on SQLite and PostgreSQL, with the cheap argon2id of the other security tests.
"""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from sqlalchemy import Engine, select

from ebank.accounts import service as accounts
from ebank.cards import service as cards
from ebank.core.writer import Command, Writer
from ebank.enrolment import service as enrolment
from ebank.ops import staff
from ebank.security import login, sessions
from ebank.security import service as security
from ebank.security.service import Verdict, check_secret, set_secret
from ebank.security.tables import credentials
from tests.channels.api_support import sms_codes
from tests.support import STAFF, VAULT, WAIT, code_of, outcome, person, person_id

PASSWORD = "Sunrise2026"
NEW_PASSWORD = "Moonrise2027"
PIN = "804317"
WRITER_THREAD = "ebank-writer"


class GatedHasher:
    """The cheap argon2id, except that hashing or verifying `secret` notes the thread it runs
    on and then waits for `gate`: as slow as the test likes."""

    def __init__(self, inner: PasswordHasher, secret: str) -> None:
        self.inner = inner
        self.secret = secret
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.threads: list[str] = []

    def _wait(self, secret: str) -> None:
        if secret != self.secret:
            return
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        if not self.gate.wait(WAIT):
            raise TimeoutError("the gate was never opened")

    def check_needs_rehash(self, stored: str) -> bool:
        return self.inner.check_needs_rehash(stored)

    def hash(self, secret: str) -> str:
        self._wait(secret)
        return self.inner.hash(secret)

    def verify(self, stored: str, secret: str) -> bool:
        self._wait(secret)
        return self.inner.verify(stored, secret)


@pytest.fixture(autouse=True)
def cheap() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, type=Argon2Type.ID)


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch, cheap: PasswordHasher) -> None:
    for kind in security.HASHERS:
        monkeypatch.setitem(security.HASHERS, kind, cheap)


def gate(monkeypatch: pytest.MonkeyPatch, cheap: PasswordHasher, secret: str) -> GatedHasher:
    gated = GatedHasher(cheap, secret)
    for kind in security.HASHERS:
        monkeypatch.setitem(security.HASHERS, kind, gated)
    return gated


def with_password(writer: Writer, n: int = 1) -> int:
    """Person `n` with a login password, enrolled online at the counter."""
    customer = person(writer, n)
    writer.execute(
        set_secret(customer_id=customer, kind="login_password", secret=PASSWORD, actor=STAFF)
    )
    writer.execute(enrolment.enrol_at_counter(customer_id=customer, channel="online", actor=STAFF))
    return customer


def card_with_pin(writer: Writer, customer: int) -> str:
    """A debit card of the customer's, with the transaction PIN set; its full number."""
    account = writer.execute(accounts.open_account(customer_id=customer, tier="I", actor=STAFF))
    issued = writer.execute(
        cards.issue_debit_card(
            VAULT, customer_id=customer, account_number=account.number, actor=STAFF
        )
    )
    writer.execute(
        set_secret(customer_id=customer, kind="transaction_pin", secret=PIN, actor=STAFF)
    )
    return issued.number


# -- every command that hashes: (the command, the secret it hashes, what it must answer) ------
@dataclass(frozen=True)
class Case:
    command: Command[Any]
    secret: str
    check: Callable[[Any], bool]


def _check_password(writer: Writer, engine: Engine) -> Case:
    customer = with_password(writer)
    command = check_secret(customer_id=customer, kind="login_password", secret=PASSWORD)
    return Case(command, PASSWORD, lambda verdict: verdict == Verdict(True))


def _check_missing_credential(writer: Writer, engine: Engine) -> Case:
    customer = person(writer, 1)  # no PIN: a decoy is verified all the same
    command = check_secret(customer_id=customer, kind="transaction_pin", secret=PIN)
    return Case(command, PIN, lambda verdict: verdict == Verdict(False))


def _set_password(writer: Writer, engine: Engine) -> Case:
    customer = person(writer, 1)
    command = set_secret(customer_id=customer, kind="login_password", secret=PASSWORD, actor=STAFF)
    return Case(command, PASSWORD, lambda result: result is None)


def _login(writer: Writer, engine: Engine) -> Case:
    with_password(writer)
    command = login.begin(VAULT, login=person_id(1), password=PASSWORD, channel="online")
    return Case(command, PASSWORD, lambda step: step.verdict.ok)


def _login_of_nobody(writer: Writer, engine: Engine) -> Case:
    command = login.begin(VAULT, login=person_id(9), password=PASSWORD, channel="online")
    return Case(command, PASSWORD, lambda step: not step.verdict.ok)


def _staff_login(writer: Writer, engine: Engine) -> Case:
    writer.execute(
        staff.add(
            VAULT, username="teller1", name="T", roles=("teller",), password=PASSWORD, actor="x"
        )
    )
    command = staff.begin_login(username="teller1", password=PASSWORD)
    return Case(command, PASSWORD, lambda step: step.verdict.ok)


def _staff_add(writer: Writer, engine: Engine) -> Case:
    command = staff.add(VAULT, username="teller1", name="T", roles=("teller",),
                        password=PASSWORD, actor="x")  # fmt: skip
    return Case(command, PASSWORD, lambda added: added.member.username == "teller1")


def _begin_self_enrolment(writer: Writer, engine: Engine) -> Case:
    card = card_with_pin(writer, person(writer, 1))
    command = enrolment.begin_self_enrolment(VAULT, card_number=card, pin=PIN)
    return Case(command, PIN, lambda step: step.verdict.ok)


def _complete_self_enrolment(writer: Writer, engine: Engine) -> Case:
    customer = person(writer, 1)
    card = card_with_pin(writer, customer)
    writer.execute(enrolment.begin_self_enrolment(VAULT, card_number=card, pin=PIN)).value()
    [code] = sms_codes(engine, customer)
    command = enrolment.complete_self_enrolment(
        VAULT, card_number=card, code=code, login_password=NEW_PASSWORD
    )
    return Case(command, NEW_PASSWORD, lambda step: step.value().channel == "online")


CASES = [
    _check_password, _check_missing_credential, _set_password, _login, _login_of_nobody,
    _staff_login, _staff_add, _begin_self_enrolment, _complete_self_enrolment,
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.strip("_"))
def test_the_writer_commits_other_commands_while_a_secret_is_hashed(
    writer: Writer, engine: Engine, monkeypatch: pytest.MonkeyPatch, cheap: PasswordHasher,
    case: Callable[[Writer, Engine], Case],
) -> None:  # fmt: skip
    other = person(writer, 2)
    started = writer.execute(sessions.start(customer_id=other, channel="online"))
    made = case(writer, engine)
    gated = gate(monkeypatch, cheap, made.secret)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(writer.execute, made.command, WAIT)
        try:
            assert gated.entered.wait(WAIT), "the secret was never hashed"
            # The hash is held open; the writer must still resume someone's session.
            resumed = writer.execute(sessions.resume(started.token), timeout=WAIT)
            assert resumed.id == started.session.id
        finally:
            gated.gate.set()
        result = pending.result(WAIT)
    assert made.check(result), result
    assert gated.threads and WRITER_THREAD not in gated.threads


def test_a_secret_reset_between_prepare_and_record_is_verified_again(
    writer: Writer, engine: Engine, monkeypatch: pytest.MonkeyPatch, cheap: PasswordHasher
) -> None:
    customer = with_password(writer)
    gated = gate(monkeypatch, cheap, PASSWORD)
    with ThreadPoolExecutor(1) as pool:
        command = check_secret(customer_id=customer, kind="login_password", secret=PASSWORD)
        pending = pool.submit(writer.execute, command, WAIT)
        try:
            assert gated.entered.wait(WAIT)  # verified against the old hash: a match
            writer.execute(
                set_secret(
                    customer_id=customer, kind="login_password", secret=NEW_PASSWORD, actor=STAFF
                )
            )
        finally:
            gated.gate.set()
        verdict = pending.result(WAIT)
    # The hash it matched is gone: verified again, in the writer, against the new one.
    assert not verdict.ok and verdict.attempts_left == 4
    assert len(gated.threads) == 2 and gated.threads[1] == WRITER_THREAD
    assert writer.execute(
        check_secret(customer_id=customer, kind="login_password", secret=NEW_PASSWORD)
    ).ok


def test_a_check_composed_without_its_prepare_verifies_in_the_writer_and_is_right(
    writer: Writer, monkeypatch: pytest.MonkeyPatch, cheap: PasswordHasher
) -> None:
    customer = with_password(writer)
    gated = gate(monkeypatch, cheap, PASSWORD)
    gated.gate.set()
    right = check_secret(customer_id=customer, kind="login_password", secret=PASSWORD)
    assert writer.execute(Command(right.fn)) == Verdict(True)
    wrong = check_secret(customer_id=customer, kind="login_password", secret="Sunset2026")
    assert not writer.execute(Command(wrong.fn)).ok
    assert gated.threads == [WRITER_THREAD]


def test_bad_input_is_refused_before_any_hashing_and_counts_nothing(
    writer: Writer, engine: Engine, monkeypatch: pytest.MonkeyPatch, cheap: PasswordHasher
) -> None:
    customer = with_password(writer)
    gated = gate(monkeypatch, cheap, PASSWORD)
    gated.gate.set()
    for command in (
        check_secret(customer_id="1", kind="login_password", secret=PASSWORD),  # type: ignore[arg-type]
        login.begin(VAULT, login=person_id(1), password=PASSWORD, channel="atm"),
        login.begin(VAULT, login="12345", password=PASSWORD, channel="online"),
        set_secret(customer_id=customer, kind="login_password", secret="short1", actor=STAFF),
    ):
        assert code_of(outcome(writer.submit(command))) == "INVALID_INPUT"
    assert gated.threads == []
    with engine.connect() as conn:
        assert conn.execute(select(credentials.c.failures)).scalar_one() == 0
