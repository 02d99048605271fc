"""Transfers under risk control (issue 5, item 6): a block or a step-up refuses and moves
nothing, a delay sends the transfer as a 24-hour delayed one, a review holds the money until
a case is decided, and every decision stays on record. SQLite and PostgreSQL."""

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from ebank.accounts.models import CustomerAccount
from ebank.core.errors import EbankError
from ebank.payments import service as payments
from ebank.payments.models import Confirmation
from ebank.risk import cases, lists, rules
from ebank.risk import service as risk
from ebank.risk.models import Rule
from ebank.security.service import enroll_token
from tests.payments.support import YUAN, Payer, PaymentsBank, refused
from tests.support import STAFF, VAULT, last_sms

FLAGGED = 1234_56  # the amount the test rules single out


def force(bank: PaymentsBank, outcome: str) -> None:
    """A staff rule, approved by a second person, that forces `outcome` on payments of
    FLAGGED fen."""
    rule = Rule(
        "test_flagged_amount", "测试：特定金额", "Test: one amount",
        f'event == "payment" and amount == {FLAGGED}', 0, outcome, True, False,
    )  # fmt: skip
    bank.decide("risk.rule.set", rules.params_of(rule), reason="测试规则")


def decisions(bank: PaymentsBank, customer: int) -> list[str]:
    with bank.engine.connect() as conn:
        return [d.outcome for d in risk.decisions(conn, customer_id=customer)]


def held_case(bank: PaymentsBank, payment_id: int) -> int:
    with bank.engine.connect() as conn:
        [case] = [c for c in cases.queue(conn) if c.subject_id == payment_id]
    assert case.kind == payments.CASE_KIND
    return case.id


def test_an_allowed_transfer_is_scored_and_counted(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 100 * YUAN)
    assert alice.paid(request, alice.sms(request)).status == "completed"
    assert decisions(bank, alice.id) == ["allow"]


def test_a_blocked_transfer_moves_nothing_and_its_decision_stays_on_record(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    force(bank, "block")
    request = alice.request(bob, FLAGGED)
    refused(bank, alice, "RISK_REJECTED", request, alice.sms(request))
    assert bank.balance(bob) == 0
    assert decisions(bank, alice.id) == ["block"]


def test_a_transfer_to_a_police_listed_account_is_blocked(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    with bank.engine.connect() as conn:
        key = lists.key_of_account(conn, VAULT, number=bob.number)
    bank.decide("risk.list.add", {"list": "police", "key": key, "label": "涉案账户"},
                reason="公安机关协查")  # fmt: skip
    request = alice.request(bob, 10 * YUAN)
    refused(bank, alice, "RISK_REJECTED", request, alice.sms(request))


def test_a_step_up_refuses_an_sms_code_and_lets_a_token_through(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    force(bank, "step_up")
    request = alice.request(bob, FLAGGED)
    refused(bank, alice, "RISK_STEP_UP", request, alice.sms(request))
    uri = bank.writer.execute(enroll_token(VAULT, customer_id=alice.id, label="t", actor=STAFF))
    totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    code = totp.generate_otp(int(bank.clock.now().timestamp()) // 30)
    paid = alice.paid(request, Confirmation("token", code), key="with-token")
    assert paid.status == "completed" and bank.balance(bob) == FLAGGED
    assert decisions(bank, alice.id) == ["step_up", "step_up"]


def test_a_delayed_transfer_waits_a_day_and_can_be_revoked(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    force(bank, "delay")
    request = alice.request(bob, FLAGGED)
    view = alice.paid(request, alice.sms(request))
    assert (view.status, view.speed) == ("scheduled", "delayed")
    assert view.due_at == bank.clock.now() + payments.ATM_DELAY
    assert bank.available(alice.account) == 1_000_000 * YUAN - FLAGGED
    bank.writer.execute(payments.revoke(customer_id=alice.id, payment_id=view.id, channel="online"))
    assert bank.available(alice.account) == 1_000_000 * YUAN and bank.balance(bob) == 0


def test_a_transfer_held_for_review_is_sent_when_staff_release_it(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    force(bank, "review")
    request = alice.request(bob, FLAGGED)
    view = alice.paid(request, alice.sms(request))
    assert view.status == "review"
    assert bank.available(alice.account) == 1_000_000 * YUAN - FLAGGED
    assert bank.balance(alice.account) == 1_000_000 * YUAN and bank.balance(bob) == 0
    with pytest.raises(EbankError) as stuck:  # the customer cannot take it back meanwhile
        bank.writer.execute(
            payments.revoke(customer_id=alice.id, payment_id=view.id, channel="online")
        )
    assert stuck.value.code == "PAYMENT_NOT_REVOCABLE"
    bank.clock.advance(timedelta(days=2))
    assert payments.execute_due(bank.writer, VAULT) == 0  # not while under review
    case_id = held_case(bank, view.id)
    bank.writer.execute(
        cases.decide(
            case_id, outcome="release", actor="staff:5", note="已电话核实本人", vault=VAULT
        )
    )
    assert bank.payment(alice.id, view.id).status == "scheduled"
    assert payments.execute_due(bank.writer, VAULT) == 1
    assert bank.payment(alice.id, view.id).status == "completed"
    assert bank.balance(bob) == FLAGGED
    assert bank.balance(alice.account) == 1_000_000 * YUAN - FLAGGED


def test_a_transfer_held_for_review_gives_the_money_back_when_staff_reject_it(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    force(bank, "review")
    request = alice.request(bob, FLAGGED)
    view = alice.paid(request, alice.sms(request))
    case_id = held_case(bank, view.id)
    bank.writer.execute(
        cases.decide(case_id, outcome="reject", actor="staff:5", note="疑似电诈", vault=VAULT)
    )
    after = bank.payment(alice.id, view.id)
    assert (after.status, after.failure_code) == ("failed", "RISK_REJECTED")
    assert bank.available(alice.account) == 1_000_000 * YUAN and bank.balance(bob) == 0
    assert payments.execute_due(bank.writer, VAULT) == 0
    assert "ebank" in last_sms(bank.engine)  # the customer was told
