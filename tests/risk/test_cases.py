"""Cases: the queue, the evidence, and what staff decide, proven on the ledger: release lets
the held money proceed, reject returns it, escalation needs another person, a decided case is
final, an account can be suspended from a case. SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from ebank.accounts.models import CustomerAccount
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command
from ebank.ledger import queries
from ebank.ledger import service as ledger
from ebank.notify.notices import set_preferences
from ebank.risk import cases
from ebank.risk.models import Decision
from ebank.risk.tables import risk_case_events
from tests.risk.conftest import YUAN, World
from tests.risk.holds import hold_for_review
from tests.support import STAFF, VAULT, code_of, last_sms, outcome, sound

OFFICER, SENIOR = "staff:11", "staff:12"
AMOUNT = 8_000 * YUAN


class Held:
    def __init__(self, world: World) -> None:
        self.world = world
        self.customer, self.payer = world.aged(funds=10_000 * YUAN)
        _, self.payee = world.aged(funds=0)
        world.observe(world.ctx(self.customer, event="phone_change", amount=0, payee=""),
                      ago=timedelta(hours=3))  # fmt: skip
        ctx = world.ctx(
            self.customer, self.payer, amount=AMOUNT, factor="sms",
            payee=f"acct:{self.payee.ledger_account_id}",
            payee_account_id=self.payee.ledger_account_id,
        )  # fmt: skip
        self.hold, self.case = hold_for_review(world.writer, ctx, self.payer, self.payee)

    def balance(self, account: CustomerAccount) -> tuple[int, int]:
        with self.world.engine.connect() as conn:
            view = queries.get_account(conn, account_id=account.ledger_account_id)
        return view.balance, view.held

    def decide(self, outcome_: str, actor: str = OFFICER, note: str = "核实") -> object:
        command = cases.decide(self.case, outcome=outcome_, actor=actor, note=note, vault=VAULT)
        return outcome(self.world.writer.submit(command))


@pytest.fixture
def held(world) -> Held:
    return Held(world)


def test_a_review_holds_the_money_and_queues_a_case(world, held):
    assert held.balance(held.payer) == (10_000 * YUAN, AMOUNT)
    with world.engine.connect() as conn:
        [queued] = cases.queue(conn)
        decision = cases.case_file(conn, held.case, now=world.clock.now()).decision
    assert (queued.id, queued.status, queued.kind, queued.subject_id) == (
        held.case, "open", "test_hold", held.hold,
    )  # fmt: skip
    assert decision.outcome == "review" and decision.hits == ["sms_after_phone_change"]


def test_release_lets_the_held_money_proceed_and_tells_the_customer(world, held):
    decided = held.decide("release")
    assert decided.status == "released" and decided.decided_at is not None
    assert held.balance(held.payer) == (2_000 * YUAN, 0)
    assert held.balance(held.payee) == (AMOUNT, 0)
    assert "经人工核实已放行" in last_sms(world.engine)
    with world.engine.connect() as conn:
        assert cases.queue(conn) == []
        audited = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "risk.case.release")
        ).scalars().all()  # fmt: skip
        announced = conn.execute(
            select(outbox_events.c.payload).where(outbox_events.c.topic == "risk.case")
        ).scalars().all()  # fmt: skip
    assert audited == [OFFICER]
    assert ['"status": "open"' in p for p in announced] == [True, False]
    assert '"status": "released"' in announced[1]
    sound(world.engine)


def test_reject_returns_the_held_money(world, held):
    assert held.decide("reject").status == "rejected"
    assert held.balance(held.payer) == (10_000 * YUAN, 0)
    assert held.balance(held.payee) == (0, 0)
    assert "未予办理" in last_sms(world.engine)
    sound(world.engine)


def test_a_decided_case_is_final(world, held):
    held.decide("reject")
    again = held.decide("release", actor=SENIOR)
    assert code_of(again) == "RISK_CASE_DECIDED"
    assert again.details["status"] == "rejected"
    assert held.balance(held.payee) == (0, 0)


def test_escalation_passes_the_case_to_someone_else(world, held):
    assert held.decide("escalate").status == "escalated"
    assert code_of(held.decide("escalate", actor=SENIOR)) == "RISK_CASE_ESCALATED"
    assert code_of(held.decide("release")) == "RISK_SAME_REVIEWER"
    assert held.balance(held.payee) == (0, 0)
    with world.engine.connect() as conn:
        assert [c.status for c in cases.queue(conn)] == ["escalated"]
    assert held.decide("release", actor=SENIOR).status == "released"
    assert held.balance(held.payee) == (AMOUNT, 0)
    with world.engine.connect() as conn:
        actions = conn.execute(
            select(risk_case_events.c.action, risk_case_events.c.actor)
            .where(risk_case_events.c.case_id == held.case).order_by(risk_case_events.c.id)
        ).all()  # fmt: skip
    assert [tuple(a) for a in actions] == [
        ("open", cases.SYSTEM), ("escalate", OFFICER), ("release", SENIOR),
    ]  # fmt: skip


def test_a_release_the_ledger_refuses_changes_nothing_and_the_case_stays_open(world, held):
    world.writer.execute(ledger.command(
        lambda tx: ledger.set_status(tx, account_id=held.payee.ledger_account_id,
                                     status="closed")
    ))  # fmt: skip
    assert code_of(held.decide("release")) == "ACCOUNT_CLOSED"
    assert held.balance(held.payer) == (10_000 * YUAN, AMOUNT)
    with world.engine.connect() as conn:
        assert cases.get_case(conn, held.case).status == "open"
    assert held.decide("reject").status == "rejected"  # the way out: give the money back


@pytest.mark.parametrize(
    ("outcome_", "note", "code"),
    [("approve", "x", "INVALID_INPUT"), ("release", "x" * 501, "INVALID_INPUT"),
     ("release", "a\nb\x00", "INVALID_INPUT")],
)  # fmt: skip
def test_bad_decisions_change_nothing(world, held, outcome_, note, code):
    assert code_of(held.decide(outcome_, note=note)) == code
    assert held.balance(held.payer) == (10_000 * YUAN, AMOUNT)


def test_an_unknown_case_is_not_found(world):
    command = cases.decide(10**9, outcome="release", actor=OFFICER, note="", vault=VAULT)
    assert code_of(outcome(world.writer.submit(command))) == "RISK_CASE_NOT_FOUND"


def test_suspending_the_payer_from_a_case_stops_its_e_channel_business(world, held):
    command = cases.suspend_account(held.case, which="payer", actor=OFFICER, note="涉诈",
                                    vault=VAULT)  # fmt: skip
    assert world.writer.execute(command) == "suspended"
    with world.engine.connect() as conn:
        view = queries.get_account(conn, account_id=held.payer.ledger_account_id)
        audited = conn.execute(
            select(audit_log.c.subject).where(audit_log.c.action == "risk.case.suspend")
        ).scalar_one()  # fmt: skip
    assert view.status == "suspended"
    assert audited == f"account:{held.payer.number}"
    assert f"尾号{held.payer.number[-4:]}的账户已暂停非柜面业务" in last_sms(world.engine)
    again = world.writer.execute(cases.suspend_account(
        held.case, which="payer", actor=OFFICER, note="", vault=VAULT))  # fmt: skip
    assert again == "suspended"


def test_suspending_a_payee_elsewhere_is_refused(world):
    customer, payer = world.aged(funds=10_000 * YUAN)
    _, payee = world.aged()
    ctx = world.ctx(customer, payer, amount=AMOUNT)  # to another bank's account
    _, case_id = hold_for_review(world.writer, ctx, payer, payee)
    command = cases.suspend_account(case_id, which="payee", actor=OFFICER, note="", vault=VAULT)
    assert code_of(outcome(world.writer.submit(command))) == "INVALID_INPUT"


def test_an_english_speaking_customer_is_told_in_english(world, held):
    world.writer.execute(set_preferences(
        VAULT, customer_id=held.customer, movement_sms=True, movement_threshold=0,
        locale="en", email=None, actor=STAFF, channel="counter",
    ))  # fmt: skip
    held.decide("release")
    text = last_sms(world.engine)
    assert text.startswith("[ebank] Your payment of CNY 8,000.00") and "released" in text


def test_the_case_file_holds_the_evidence(world, held):
    held.decide("escalate")
    with world.engine.connect() as conn:
        file = cases.case_file(conn, held.case, now=world.clock.now())
    assert file.case.status == "escalated"
    assert file.decision.evidence["hours_since_phone_change"] == 3
    assert [e.action for e in file.events] == ["open", "escalate"]
    assert file.activity['count(customer,"payment","24h")'] == 0  # held, not yet observed
    assert file.activity['distinct(payee_account,"payers","24h")'] == 0
    assert len(file.activity) == 13
    assert [d.id for d in file.recent] == [file.decision.id]


def test_opening_a_case_of_an_unregistered_kind_is_a_programming_error(world):
    customer, _ = world.aged()
    decision = Decision(1, "review", 80, (), ())
    with pytest.raises(ValueError):
        world.writer.execute(Command(lambda tx: cases.open_case(
            tx, decision, kind="nobody", subject_id=1, customer_id=customer)))  # fmt: skip
