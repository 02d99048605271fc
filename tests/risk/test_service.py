"""Decisions: what is recorded, that a block is recorded even when its command fails, and
that a malformed context is a caller's bug. SQLite and PostgreSQL where a database is used."""

import pytest
from sqlalchemy import func, select

from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx
from ebank.risk import service
from ebank.risk.models import Context
from ebank.risk.tables import risk_buckets, risk_decisions
from tests.risk.conftest import EXT_PAYEE, YUAN, World
from tests.support import code_of, in_one_batch, outcome


def count(world: World, table: object) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_decision_is_recorded_with_its_context_reasons_and_what_the_rules_saw(world):
    customer, account = world.aged()
    ctx = world.ctx(customer, account, amount=60_000 * YUAN, payee_is_new=True, factor="token")
    decision = world.decide(ctx)
    assert (decision.outcome, decision.score) == ("step_up", 40)
    [reason] = decision.reasons
    assert (reason.code, reason.zh, reason.en) == (
        "new_payee_large", "向新收款人大额转账", "A large amount to a new payee",
    )  # fmt: skip
    with world.engine.connect() as conn:
        kept = service.get_decision(conn, decision.id)
    assert (kept.event, kept.customer_id, kept.channel, kept.amount) == (
        "payment", customer, "mobile", 60_000 * YUAN,
    )  # fmt: skip
    assert kept.outcome == "step_up" and kept.hits == ["new_payee_large"]
    assert kept.context["payee"] == EXT_PAYEE and kept.context["factor"] == "token"
    assert kept.evidence["payee_is_new"] is True
    assert kept.evidence['count(customer,"payment","10m")'] == 0
    assert kept.ruleset == "r0.t0"


def test_a_clean_decision_keeps_no_evidence(world):
    customer, _ = world.aged()
    decision = world.decide(world.ctx(customer))
    assert decision.outcome == "allow" and decision.reasons == ()
    with world.engine.connect() as conn:
        assert service.get_decision(conn, decision.id).evidence == {}


def test_a_block_stays_on_record_when_the_command_that_asked_fails(world):
    customer, _ = world.aged()
    ctx = world.ctx(customer)

    def refuse_after_sql(tx: Tx) -> None:
        decision = service.evaluate(tx, ctx)
        service.observe(tx, ctx)  # SQL after the decision: its row is flushed in the savepoint
        raise EbankError("RISK_REJECTED", decision=decision.id)

    def refuse(tx: Tx) -> None:
        raise EbankError("RISK_REJECTED", decision=service.evaluate(tx, ctx).id)

    first, second, fine = in_one_batch(
        world.writer, [Command(refuse_after_sql), Command(refuse), Command(lambda tx: None)]
    )
    assert code_of(first) == code_of(second) == "RISK_REJECTED"
    assert fine is None
    with world.engine.connect() as conn:
        kept = [d.id for d in service.decisions(conn, customer_id=customer)]
    assert sorted(kept) == sorted([first.details["decision"], second.details["decision"]])
    assert count(world, risk_buckets) == 0  # what was observed went with the command


def test_a_failed_command_alone_in_its_batch_still_leaves_its_decision(world):
    customer, _ = world.aged()

    def refuse(tx: Tx) -> None:
        raise EbankError("RISK_REJECTED", decision=service.evaluate(tx, world.ctx(customer)).id)

    assert code_of(outcome(world.writer.submit(Command(refuse)))) == "RISK_REJECTED"
    assert count(world, risk_decisions) == 1


def test_decisions_list_newest_first_by_customer_and_outcome(world):
    customer, _ = world.aged()
    other, _ = world.aged()
    plain = world.decide(world.ctx(customer)).id
    big = world.decide(world.ctx(customer, amount=50_000 * YUAN, payee_is_new=True)).id
    world.decide(world.ctx(other))
    with world.engine.connect() as conn:
        assert [d.id for d in service.decisions(conn, customer_id=customer)] == [big, plain]
        assert [d.id for d in service.decisions(conn, outcome="step_up")] == [big]
        assert [d.id for d in service.decisions(conn, customer_id=customer, before=big)] == [plain]
        with pytest.raises(EbankError) as missing:
            service.get_decision(conn, 10**9)
    assert missing.value.code == "RISK_DECISION_NOT_FOUND"


@pytest.mark.parametrize(
    "bad",
    [
        {"event": "transfer"},
        {"channel": "fax"},
        {"factor": "fingerprint"},
        {"amount": -1},
        {"amount": 1.5},
        {"event": "login", "amount": 5},
        {"event": "payment", "amount": 0},
        {"customer_id": 0},
        {"customer_id": True},
        {"device": "x" * 65},
        {"ip": "10.0.0.1\n"},
    ],
)
def test_a_malformed_context_is_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {"event": "payment", "customer_id": 1, "channel": "online",
                                 "amount": 100} | bad  # fmt: skip
    with pytest.raises(ValueError):
        Context(**fields)  # type: ignore[arg-type]
