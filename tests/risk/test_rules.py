"""Rules and thresholds as versioned data under maker-checker; shadow mode; the live rule set
each process keeps and refreshes. SQLite and PostgreSQL."""

import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.ops import approvals
from ebank.ops.tables import approval_requests
from ebank.risk import rules, service
from ebank.risk.models import Rule, Thresholds
from ebank.risk.tables import risk_rules
from tests.risk.conftest import YUAN, World
from tests.support import code_of, outcome

MAKER, CHECKER = "staff:1", "staff:2"
BIG_TO_NEW = rules.DEFAULTS["new_payee_large"]


def change(world: World, rule: Rule, *, maker: str = MAKER, checker: str = CHECKER) -> int:
    request = world.writer.execute(rules.propose_rule(rule, reason="调整规则", maker=maker))
    return world.writer.execute(approvals.approve(request, checker=checker))


def tiny_rule(**changes: object) -> Rule:
    base = Rule("tiny_amount", "一分钱测试", "One-fen probing", "amount == 1", 60, "", True, False)
    return replace(base, **changes)


def test_a_rule_change_waits_for_a_second_person_and_the_maker_cannot_approve(world):
    customer, _ = world.aged()
    request = world.writer.execute(rules.propose_rule(tiny_rule(), reason="新型试探", maker=MAKER))
    assert world.decide(world.ctx(customer, amount=1)).outcome == "allow"  # not yet in force
    refused = outcome(world.writer.submit(approvals.approve(request, checker=MAKER)))
    assert code_of(refused) == "SAME_MAKER_AND_CHECKER"
    assert world.decide(world.ctx(customer, amount=1)).outcome == "allow"
    world.writer.execute(approvals.approve(request, checker=CHECKER))
    decision = world.decide(world.ctx(customer, amount=1))
    assert decision.outcome == "delay"
    assert [r.code for r in decision.reasons] == ["tiny_amount"]


def test_an_approved_change_is_a_new_version_naming_author_and_approver_and_is_audited(world):
    assert change(world, replace(BIG_TO_NEW, score=70)) == 1
    assert change(world, replace(BIG_TO_NEW, score=80)) == 2
    with world.engine.connect() as conn:
        history = rules.versions(conn, "new_payee_large")
        audited = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.action == "risk.rule.set"
            )
        ).all()
    assert [(r.version, r.score, r.author, r.approver) for r in history] == [
        (0, 40, "system", ""), (1, 70, MAKER, CHECKER), (2, 80, MAKER, CHECKER),
    ]  # fmt: skip
    assert [actor for actor, _ in audited] == [CHECKER, CHECKER]
    assert json.loads(audited[1][1])["from"]["score"] == 70


def test_a_changed_default_takes_effect_in_the_process_that_approved_it(world):
    customer, _ = world.aged()
    big = world.ctx(customer, amount=50_000 * YUAN, payee_is_new=True)
    assert world.decide(big).outcome == "step_up"
    change(world, replace(BIG_TO_NEW, score=0, outcome="block"))
    assert world.decide(big).outcome == "block"


def test_shadow_mode_logs_what_would_hit_but_does_not_enforce(world):
    customer, _ = world.aged()
    change(world, tiny_rule(shadow=True, outcome="block"))
    decision = world.decide(world.ctx(customer, amount=1))
    assert decision.outcome == "allow" and decision.score == 0
    assert decision.reasons == () and decision.shadow == ("tiny_amount",)
    with world.engine.connect() as conn:
        kept = service.get_decision(conn, decision.id)
    assert kept.shadow == ["tiny_amount"] and kept.hits == []
    assert kept.evidence["amount"] == 1  # what it saw, kept for whoever tunes the rule


def test_a_disabled_rule_is_not_evaluated(world):
    customer, _ = world.aged()
    big = world.ctx(customer, amount=50_000 * YUAN, payee_is_new=True)
    change(world, replace(BIG_TO_NEW, enabled=False))
    decision = world.decide(big)
    assert decision.outcome == "allow" and decision.shadow == ()


def test_thresholds_are_versioned_data_under_maker_checker(world):
    customer, _ = world.aged()
    big = world.ctx(customer, amount=50_000 * YUAN, payee_is_new=True)  # scores 40
    request = world.writer.execute(
        rules.propose_thresholds(Thresholds(30, 40, 90, 120), reason="收紧", maker=MAKER)
    )
    assert code_of(outcome(world.writer.submit(approvals.approve(request, checker=MAKER)))) == (
        "SAME_MAKER_AND_CHECKER"
    )
    world.writer.execute(approvals.approve(request, checker=CHECKER))
    assert world.decide(big).outcome == "delay"
    with world.engine.connect() as conn:
        now = rules.current_thresholds(conn)
    assert (now.step_up, now.delay, now.review, now.block, now.version) == (30, 40, 90, 120, 1)
    assert (now.author, now.approver) == (MAKER, CHECKER)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"expression": "amount >"}, "unexpected"),
        ({"expression": "__import__('os')"}, "unknown function '__import__'"),
        ({"code": "Bad Code"}, "a rule code"),
        ({"score": 5000}, "a score"),
        ({"score": 0, "outcome": ""}, "scores or forces"),
        ({"outcome": "allow"}, "an outcome"),
        ({"description_zh": ""}, "Chinese description"),
    ],
)
def test_a_bad_rule_is_refused_when_proposed_and_nothing_is_stored(world, changes, reason):
    params = rules.params_of(tiny_rule()) | changes
    refused = outcome(world.writer.submit(
        approvals.propose("risk.rule.set", params, reason="x", maker=MAKER)
    ))  # fmt: skip
    assert code_of(refused) == "INVALID_INPUT"
    assert reason in refused.details["reason"]
    with world.engine.connect() as conn:
        assert approvals.pending(conn) == []


def test_bad_thresholds_are_refused(world):
    for bad in ({"step_up": 50, "delay": 40, "review": 80, "block": 100},
                {"step_up": 0, "delay": 40, "review": 80, "block": 100},
                {"step_up": 40, "delay": 60, "review": 80}):  # fmt: skip
        refused = outcome(world.writer.submit(
            approvals.propose("risk.thresholds.set", bad, reason="x", maker=MAKER)
        ))  # fmt: skip
        assert code_of(refused) == "INVALID_INPUT"


def test_a_stored_rule_that_no_longer_compiles_is_left_out_not_fatal(world):
    customer, _ = world.aged()
    change(world, tiny_rule())
    with world.engine.begin() as conn:  # as if a later release retired a field it uses
        conn.execute(risk_rules.update().values(expression="retired_field > 1"))
    rules._refresh_soon()
    decision = world.decide(world.ctx(customer, amount=50_000 * YUAN, payee_is_new=True))
    assert decision.outcome == "step_up"  # the other rules still decide


def test_another_process_sees_a_change_within_the_refresh_interval(world, monkeypatch):
    customer, _ = world.aged()
    probe = world.ctx(customer, amount=1)
    rules._refresh_soon()
    moments = iter([10.0, 10.5, 11.2])
    monkeypatch.setattr(rules.time, "monotonic", lambda: next(moments))
    assert world.decide(probe).outcome == "allow"  # 10.0: checks the version, keeps the set
    with world.engine.begin() as conn:  # another process approves a rule meanwhile
        request_id = conn.execute(approval_requests.insert().values(
            action="risk.rule.set", subject="risk_rule:tiny_amount", params="{}", reason="x",
            maker=MAKER, made_at=world.clock.now(),
        )).inserted_primary_key[0]  # fmt: skip
        conn.execute(risk_rules.insert().values(
            **(rules.params_of(tiny_rule()) | {"enabled": True, "shadow": False}), version=1,
            author=MAKER, approver=CHECKER, request_id=request_id, created_at=world.clock.now(),
        ))  # fmt: skip
    assert world.decide(probe).outcome == "allow"  # 10.5: cached, not checked yet
    assert world.decide(probe).outcome == "delay"  # 11.2: checked, reloaded


def test_the_live_rules_list_defaults_then_staff_rules(world):
    change(world, tiny_rule())
    change(world, replace(BIG_TO_NEW, score=45))
    with world.engine.connect() as conn:
        live = rules.current_rules(conn)
        with pytest.raises(EbankError) as unknown:
            rules.versions(conn, "no_such_rule")
    assert [r.code for r in live] == [r.code for r in rules.DEFAULT_RULES] + ["tiny_amount"]
    assert next(r for r in live if r.code == "new_payee_large").score == 45
    assert unknown.value.code == "RISK_RULE_NOT_FOUND"
