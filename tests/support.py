"""Helpers several test modules share."""

import concurrent.futures
import json
import re
import threading
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, select

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount
from ebank.cards import service as cards
from ebank.core import audit
from ebank.core.clock import FixedClock
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import outbox_events
from ebank.core.writer import Command, Tx, Writer
from ebank.customers.identity import check_digit_for
from ebank.customers.service import register_enterprise, register_individual
from ebank.enrolment import service as enrolment
from ebank.ledger import queries
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.limits.tables import limit_usage
from ebank.ops import approvals
from ebank.security import service as security

WAIT = 30  # seconds: far beyond any test's need, short enough to fail a hang
VAULT = Vault(bytes(range(32)))  # a fixed data key: tests never touch a real one
STAFF = "staff:7"
SMS_CODE = re.compile(r"验证码 (\d{6})")  # how every one-time code is worded in its SMS


def person_id(sequence: int, *, region_and_birth: str = "11010519491231") -> str:
    """A valid resident ID: a region, a birth date, a 3-digit sequence and its check digit."""
    first17 = f"{region_and_birth}{sequence:03d}"
    return first17 + check_digit_for(first17)


def person(writer: Writer, n: int = 1) -> int:
    """Register person number `n` (a valid, distinct resident ID); their customer id."""
    view = writer.execute(
        register_individual(
            VAULT, name=f"客户{n}", id_number=person_id(n), mobile="13812345678", actor=STAFF
        )
    )
    return view.id


def outcome(future: "concurrent.futures.Future[Any]") -> Any:
    """The future's result, or its exception as a value."""
    try:
        return future.result(WAIT)
    except Exception as exc:
        return exc


class OneBatch:
    """Hold the writer in a gate command so that what is submitted meanwhile is one batch.

    The default `max_batch` is far larger than any test's queue, so everything queued while
    the gate holds the writer thread is taken as the next single batch.
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self._started = threading.Event()
        self._release = threading.Event()
        self._base = -1

    def _gate(self, tx: Tx) -> str:
        self._base = self.writer.batches  # before the gate's own batch is counted
        self._started.set()
        if not self._release.wait(WAIT):
            raise RuntimeError("gate never released")
        return "gate"

    def __enter__(self) -> "OneBatch":
        self._gate_future = self.writer.submit(Command(self._gate, sql=False))
        assert self._started.wait(WAIT), "the writer never ran the gate"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        assert self._gate_future.result(WAIT) == "gate"

    def batches_after_gate(self) -> int:
        """Batches committed after the gate's; call once every future has been answered."""
        return self.writer.batches - self._base - 1


def in_one_batch(writer: Writer, commands: Sequence[Command[Any]]) -> list[Any]:
    """Run commands in ONE writer batch, in order; each outcome is a result or an error."""
    with OneBatch(writer) as batch:
        futures = [writer.submit(c) for c in commands]
    outcomes = [outcome(f) for f in futures]
    assert batch.batches_after_gate() == 1, "the commands did not share one batch"
    return outcomes


def race_two_writers(
    writer: Writer,
    engine: Any,
    clock: Any,
    mine: Sequence[Command[Any]],
    theirs: Sequence[Command[Any]] | None = None,
) -> list[tuple[Any, Any]]:
    """`writer` runs `mine` while a second writer (its own connection, as another process
    would have) runs `theirs` (the same, unless given), one command at a time, both starting
    together. The outcome pairs, in order; outcomes are results or errors as values."""
    other = Writer(engine, clock=clock)
    sides = (mine, mine if theirs is None else theirs)
    outcomes: dict[int, list[Any]] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def race(n: int) -> None:
        own = (writer, other)[n]
        try:
            start.wait(WAIT)
            outcomes[n] = [outcome(own.submit(c)) for c in sides[n]]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 4)
    finally:
        other.close()
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert failures == []
    return list(zip(outcomes[0], outcomes[1], strict=True))


def code_of(outcome: Any) -> str:
    """An outcome's error code, the name of an exception that is not a domain error, or "ok"."""
    if isinstance(outcome, EbankError):
        return outcome.code
    return type(outcome).__name__ if isinstance(outcome, BaseException) else "ok"


def wait_to_resend(clock: FixedClock) -> None:
    """Move the clock past the interval `security.issue_code` keeps between two SMS codes for
    one purpose, as a customer who asks for another code has waited."""
    clock.advance(timedelta(seconds=get_settings().sms_code_resend_seconds))


def last_sms(engine: Engine) -> str:
    """The text of the latest SMS the bank sent (unsealed from the outbox)."""
    with engine.connect() as conn:
        payload = conn.execute(
            select(outbox_events.c.payload)
            .where(outbox_events.c.topic == "sms.send")
            .order_by(outbox_events.c.id.desc())
        ).scalars().first()  # fmt: skip
    assert payload is not None, "no SMS was sent"
    return VAULT.decrypt(json.loads(payload)["body"], purpose="sms.body")


def last_code(engine: Engine) -> str:
    """The one-time code in the latest SMS."""
    [code] = SMS_CODE.findall(last_sms(engine))
    return code


def sound(engine: Any) -> None:
    """The ledger's invariants hold and the audit chain is intact."""
    with engine.connect() as conn:
        assert queries.check_invariants(conn) == []
        assert audit.verify(conn).ok


class Bank:
    """A bank for tests: its internal accounts, customers with funded accounts, enrolments
    and bank parameters, read back through the services."""

    def __init__(self, writer: Writer, engine: Engine, clock: FixedClock) -> None:
        self.writer, self.engine, self.clock = writer, engine, clock
        self.cash = writer.execute(Command(ensure_chart, sql=False))["GL-CASH-CNY"]
        self._people = 0

    def person(self) -> int:
        self._people += 1
        return person(self.writer, self._people)

    def enterprise(self) -> int:
        return self.writer.execute(
            register_enterprise(
                VAULT, name="福州示例科技有限公司", credit_code="91350100M000100Y43",
                legal_representative="欧阳锋", mobile="15900001111", actor=STAFF,
            )
        ).id  # fmt: skip

    def account(
        self, customer: int, tier: str = "I", funds: int = 500_000_000, currency: str = "CNY"
    ) -> CustomerAccount:
        opened = self.writer.execute(
            accounts.open_account(customer_id=customer, tier=tier, currency=currency, actor=STAFF)
        )
        if funds:
            self.fund(opened, funds)
        return opened

    def fund(self, account: CustomerAccount, amount: int) -> None:
        self.writer.execute(
            ledger.command(
                lambda tx: ledger.transfer(
                    tx, debit=self.cash, credit=account.ledger_account_id, amount=amount
                )
            )
        )

    def enrol(self, customer: int, channel: str = "online", **agreed: int) -> None:
        self.writer.execute(
            enrolment.enrol_at_counter(customer_id=customer, channel=channel, actor=STAFF, **agreed)
        )

    def self_enrol(self, customer: int, account: CustomerAccount) -> None:
        """Enrol online with card + PIN + the SMS code, as the customer would."""
        card = self.writer.execute(
            cards.issue_debit_card(
                VAULT, customer_id=customer, account_number=account.number, actor=STAFF
            )
        ).number
        self.writer.execute(
            security.set_secret(customer_id=customer, kind="transaction_pin", secret="804317",
                                actor=STAFF)
        )  # fmt: skip
        self.writer.execute(
            enrolment.begin_self_enrolment(VAULT, card_number=card, pin="804317")
        ).value()
        code = last_code(self.engine)
        done = self.writer.execute(
            enrolment.complete_self_enrolment(
                VAULT, card_number=card, code=code, login_password="Sunrise2026"
            )
        ).value()
        assert done.assurance == "self"

    def decide(self, action: str, params: dict[str, Any], reason: str = "依规办理") -> None:
        """A maker-checker action, proposed by one member of staff and approved by another."""
        request = self.writer.execute(approvals.propose(action, params, reason=reason, maker=STAFF))
        self.writer.execute(approvals.approve(request, checker="staff:9"))

    def set_parameter(self, name: str, value: int) -> None:
        self.decide("parameter.set", {"name": name, "value": value}, reason="监管新规")

    def balance(self, account: CustomerAccount) -> int:
        with self.engine.connect() as conn:
            return accounts.get_account(conn, number=account.number).balance

    def usage(self, customer: int) -> dict[tuple[str, str], int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(limit_usage.c.scope, limit_usage.c.period, limit_usage.c.amount).where(
                    limit_usage.c.customer_id == customer
                )
            )
            return {(scope, period): amount for scope, period, amount in rows}
