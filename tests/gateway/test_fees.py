"""Fee plans: how a fee is rounded and bounded, which plans staff may add, and which movements
bear a fee."""

import json
from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from ebank.core.money import MAX_MINOR
from ebank.core.tables import audit_log
from ebank.core.writer import Command
from ebank.gateway import fees, orders
from ebank.gateway.fees import FeePlan
from ebank.gateway.tables import fee_plans
from ebank.ops import approvals
from tests.gateway.support import YUAN
from tests.gateway.test_settlement import refund
from tests.support import STAFF, code_of, outcome

PLAN = FeePlan("T-PLAN", "测试方案", 2500, 0, 0, None)  # 0.25%


@pytest.mark.parametrize(
    "amount, fee",
    [
        (199, 0),  # 0.4975 fen rounds down
        (200, 1),  # 0.5 fen: half up
        (201, 1),
        (5000, 13),  # 12.5 fen: half up
        (10_000, 25),
        (1_000_000_00, 250_000),
    ],
)
def test_the_rate_is_rounded_half_up_to_the_fen(amount, fee):
    assert PLAN.fee_of(amount) == fee


def test_the_fixed_part_is_added_after_rounding():
    plan = replace(PLAN, fixed=100)
    assert plan.fee_of(200) == 101 and plan.fee_of(199) == 100


def test_the_minimum_and_the_maximum_bound_the_fee():
    plan = replace(PLAN, minimum=50, maximum=1000)
    assert plan.fee_of(10_000) == 50  # 25 fen raised to the minimum
    assert plan.fee_of(100_000) == 250
    assert plan.fee_of(1_000_000) == 1000  # 2,500 fen capped


def test_a_fee_is_never_more_than_the_payment():
    assert FeePlan("B2B-FIXED", "¥5", 0, 500, 0, None).fee_of(300) == 300
    assert replace(PLAN, minimum=100).fee_of(40) == 40


@given(
    amount=st.integers(1, MAX_MINOR), rate=st.integers(0, 100_000), fixed=st.integers(0, 10_000),
    minimum=st.integers(0, 10_000), extra=st.none() | st.integers(0, 100_000),
)  # fmt: skip
def test_a_fee_always_lies_between_its_bounds_and_the_payment(amount, rate, fixed, minimum, extra):
    maximum = None if extra is None else minimum + extra
    fee = FeePlan("P", "p", rate, fixed, minimum, maximum).fee_of(amount)
    exact = Fraction(amount * rate, 1_000_000) + fixed
    assert 0 <= fee <= amount
    if maximum is not None:
        assert fee <= maximum
    if fee < amount and (maximum is None or fee < maximum):
        assert fee >= minimum and abs(fee - max(exact, minimum)) <= 0.5


def _made(bank, plan: FeePlan) -> FeePlan:
    """A plan proposed by one officer and approved by another."""
    proposed = bank.writer.execute(fees.propose_plan(plan, reason="新产品", maker=STAFF))
    return bank.writer.execute(approvals.approve(proposed, checker="staff:99"))


def test_staff_add_a_plan_and_it_is_audited(bank):
    made = _made(bank, PLAN)
    assert made == PLAN
    with bank.engine.connect() as conn:
        assert fees.plan(conn, "T-PLAN") == PLAN
        [record] = conn.execute(
            select(audit_log).where(audit_log.c.action == "gateway.fee_plan.add")
        ).mappings()  # fmt: skip
    assert record["actor"] == "staff:99" and record["subject"] == "fee_plan:T-PLAN"
    assert json.loads(record["detail"])["rate_ppm"] == 2500


@pytest.mark.parametrize(
    "bad",
    [
        replace(PLAN, code=""),
        replace(PLAN, code="lower-case"),
        replace(PLAN, code="X" * 25),
        replace(PLAN, code="WITH SPACE"),
        replace(PLAN, name=""),
        replace(PLAN, name="x" * 61),
        replace(PLAN, rate_ppm=-1),
        replace(PLAN, rate_ppm=100_001),
        replace(PLAN, rate_ppm=True),
        replace(PLAN, rate_ppm=2.5),
        replace(PLAN, fixed=-1),
        replace(PLAN, minimum=MAX_MINOR + 1),
        replace(PLAN, minimum=100, maximum=99),
        replace(PLAN, maximum="100"),
    ],
)
def test_a_bad_plan_is_refused_and_nothing_is_added(bank, bad):
    with bank.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(fee_plans)).scalar_one()
    result = outcome(bank.writer.submit(fees.propose_plan(bad, reason="x", maker=STAFF)))
    assert code_of(result) == "INVALID_INPUT"
    with bank.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(fee_plans)).scalar_one() == before


def test_a_plan_code_is_taken_once(bank):
    _made(bank, PLAN)
    again = outcome(bank.writer.submit(
        fees.propose_plan(replace(PLAN, rate_ppm=1), reason="x", maker=STAFF)
    ))  # fmt: skip
    assert code_of(again) == "FEE_PLAN_EXISTS"
    with bank.engine.connect() as conn:
        assert fees.plan(conn, "T-PLAN").rate_ppm == 2500  # a plan is never changed


def test_the_default_plans_are_seeded_once(bank):
    bank.writer.execute(Command(fees.ensure_plans))  # the bank fixture seeded them already
    with bank.engine.connect() as conn:
        codes = [p.code for p in fees.plans(conn)]
    assert sorted(codes) == sorted(p.code for p in fees.DEFAULT_PLANS)


def test_an_unknown_plan_is_not_found(bank):
    with bank.engine.connect() as conn, pytest.raises(Exception) as caught:
        fees.plan(conn, "NO-SUCH")
    assert code_of(caught.value) == "FEE_PLAN_NOT_FOUND"


def test_money_reaching_the_merchant_bears_the_fee_and_refunds_and_escrow_do_not(bank, buyer):
    shop = bank.merchant(fee_plan="B2C-0.30")
    instant = buyer.paid(shop.order(100 * YUAN))
    escrow = buyer.paid(shop.order(200 * YUAN, "escrow"))
    bank.writer.execute(
        orders.confirm_receipt(customer_id=buyer.id, trade_no=escrow.trade_no, channel="online")
    )
    authorised = buyer.paid(shop.order(300 * YUAN, "authorise"))
    for number, amount, final in (("C1", 100 * YUAN, False), ("C2", 50 * YUAN, True)):
        bank.writer.execute(
            orders.capture(merchant_id=shop.id, out_trade_no=authorised.out_trade_no,
                           capture_no=number, amount=amount, final=final)
        )  # fmt: skip
    refund(shop, instant, 40 * YUAN)
    assert [(m.kind, m.amount, m.fee) for m in shop.movements()] == [
        ("pay", 100 * YUAN, 30),
        ("escrow_in", 200 * YUAN, 0),
        ("release", 200 * YUAN, 60),
        ("capture", 100 * YUAN, 30),
        ("capture", 50 * YUAN, 15),
        ("refund", 40 * YUAN, 0),
    ]


def test_a_proposed_plan_is_checked_at_once_and_made_only_when_another_approves(bank):
    proposed = bank.writer.execute(fees.propose_plan(PLAN, reason="新产品", maker="staff:1"))
    with bank.engine.connect() as conn:
        assert PLAN.code not in [p.code for p in fees.plans(conn)]
    bad = outcome(bank.writer.submit(
        fees.propose_plan(replace(PLAN, code="T-OTHER", rate_ppm=100_001), reason="x",
                          maker="staff:1")
    ))  # fmt: skip
    assert code_of(bad) == "INVALID_INPUT"
    own = outcome(bank.writer.submit(approvals.approve(proposed, checker="staff:1")))
    assert code_of(own) == "SAME_MAKER_AND_CHECKER"
    assert bank.writer.execute(approvals.approve(proposed, checker="staff:2")) == PLAN
    with bank.engine.connect() as conn:
        assert fees.plan(conn, PLAN.code) == PLAN
        query = select(fee_plans.c.created_by).where(fee_plans.c.code == PLAN.code)
        maker = conn.execute(query).scalar_one()
    assert maker == "staff:2"
    again = outcome(bank.writer.submit(fees.propose_plan(PLAN, reason="x", maker="staff:1")))
    assert code_of(again) == "FEE_PLAN_EXISTS"
