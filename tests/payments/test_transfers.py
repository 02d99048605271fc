"""Transfers through the payments service: own accounts, another customer of this bank, another
bank through clearing; real-time and deferred with revocation; the factor the limits service
asks for, checked in the same command that moves the money. SQLite and PostgreSQL."""

from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from sqlalchemy import func, select

from ebank.accounts.models import CustomerAccount
from ebank.cards import service as cards
from ebank.core.errors import EbankError
from ebank.core.tables import outbox_events
from ebank.core.writer import Command
from ebank.payments import service as payments
from ebank.payments.models import Confirmation
from ebank.security import certificates
from ebank.security.service import enroll_token
from tests.payments.support import OTHER_BANK, YUAN, Payer, PaymentsBank, refused
from tests.security.test_certificates import csr_for, new_key, sign_challenge
from tests.support import (
    STAFF,
    VAULT,
    in_one_batch,
    last_sms,
    sound,
    wait_to_resend,
)


# -- this bank, real time -------------------------------------------------------------------------
def test_a_transfer_between_own_accounts_needs_no_factor_and_completes_at_once(
    bank: PaymentsBank, alice: Payer
) -> None:
    savings = bank.account(alice.id, "II", funds=0)
    request = alice.request(savings, 2_000 * YUAN)
    with bank.engine.connect() as conn:
        quote = payments.quote(conn, request, now=bank.clock.now())
    assert (quote.kind, quote.methods, quote.large_warning) == ("own", (), False)
    view = alice.paid(request)
    assert (view.kind, view.status, view.amount, view.revocable) == (
        "own",
        "completed",
        200_000,
        False,
    )
    assert bank.balance(savings) == 2_000 * YUAN
    assert bank.balance(alice.account) == 998_000 * YUAN
    assert view.reference.startswith("P") and len(view.reference) == 19
    sound(bank.engine)


def test_a_transfer_to_another_customer_confirmed_by_sms_code_moves_the_money_once(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 1_234_50)
    with bank.engine.connect() as conn:
        assert payments.quote(conn, request, now=bank.clock.now()).methods[0] == "sms"
    confirmation = alice.sms(request)
    assert "1,234.50" in last_sms(bank.engine) and bank.name_of(bob) in last_sms(bank.engine)
    first = alice.pay(request, confirmation, key="once")
    view = bank.payment(alice.id, first.value())
    assert (view.kind, view.status, view.method) == ("intra", "completed", "sms")
    # The same request again under the same key is the first answer, not a second payment.
    again = alice.pay(request, confirmation, key="once")
    assert again.value() == first.value()
    assert bank.balance(bob) == 1_234_50
    assert bank.events(view.id) == ["completed"]
    # The code is spent: another request with it fails, and moves nothing.
    refused(bank, alice, "AUTH_FAILED", request, confirmation)
    assert bank.balance(bob) == 1_234_50
    sound(bank.engine)


def test_a_code_issued_for_one_amount_or_payee_does_not_confirm_another(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    carol = bank.account(bank.person(), funds=0)
    small = alice.request(bob, 100 * YUAN)
    confirmation = alice.sms(small)
    refused(bank, alice, "AUTH_FAILED", replace(small, amount=10_000 * YUAN), confirmation)
    other_payee = alice.request(carol, 100 * YUAN)
    refused(bank, alice, "AUTH_FAILED", other_payee, confirmation)
    assert bank.balance(bob) == bank.balance(carol) == 0


def test_a_failed_code_is_not_kept_as_the_answer_to_its_idempotency_key(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 100 * YUAN)
    good = alice.sms(request)
    wrong = Confirmation("sms", "000000" if good.code != "000000" else "111111")
    with pytest.raises(EbankError) as caught:
        alice.pay(request, wrong, key="retry").value()
    assert caught.value.code == "AUTH_FAILED"
    assert alice.paid(request, good, key="retry").status == "completed"


def test_a_refusal_after_the_code_leaves_the_code_usable(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 500 * YUAN)
    confirmation = alice.sms(request)
    bank.decide("account.freeze", {"account": alice.account.number})
    refused(bank, alice, "ACCOUNT_FROZEN", request, confirmation)
    bank.decide("account.unfreeze", {"account": alice.account.number})
    assert alice.paid(request, confirmation).status == "completed"


def test_the_factor_the_limits_service_requires_is_enforced(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 100 * YUAN)
    refused(bank, alice, "STRONGER_FACTOR_REQUIRED", request)
    # SMS codes carry at most ¥20,000 a day: a larger transfer needs the token.
    large = alice.request(bob, 30_000 * YUAN)
    with pytest.raises(EbankError) as caught:
        alice.pay(large, alice.sms(large), key="big").value()
    assert caught.value.code == "LIMIT_EXCEEDED"
    uri = bank.writer.execute(enroll_token(VAULT, customer_id=alice.id, label="a", actor=STAFF))
    totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    code = totp.at(bank.clock.now())
    assert alice.paid(large, Confirmation("token", code), key="big2").method == "token"
    assert bank.balance(bob) == 30_000 * YUAN


def test_a_certificate_signature_confirms_exactly_the_payment_signed(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    bank.clock.advance(timedelta(days=31))  # Bob's account is no new one (risk control)
    key = new_key()
    bank.writer.execute(
        certificates.issue_certificate(
            VAULT, customer_id=alice.id, csr_pem=csr_for(key), actor=STAFF
        )
    )
    request = alice.request(bob, 60_000 * YUAN)  # above ¥50,000 a day: a certificate
    with bank.engine.connect() as conn:
        assert payments.quote(conn, request, now=bank.clock.now()).methods == ("certificate",)
    challenge = bank.writer.execute(payments.start_signing(request))
    signature = sign_challenge(key, challenge)
    confirm = Confirmation("certificate", challenge_id=challenge.id, signature=signature)
    other = bank.account(bank.person(), funds=0)
    refused(bank, alice, "AUTH_FAILED", alice.request(other, 60_000 * YUAN), confirm)
    # That attempt spent the challenge: sign a fresh one.
    challenge = bank.writer.execute(payments.start_signing(request))
    confirm = Confirmation(
        "certificate", challenge_id=challenge.id, signature=sign_challenge(key, challenge)
    )
    assert alice.paid(request, confirm).status == "completed"
    assert bank.balance(bob) == 60_000 * YUAN


def test_the_payee_name_must_match_the_account_and_the_payee_must_exist(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    wrong = alice.request(bob, 100 * YUAN, payee_name="李四")
    with bank.engine.connect() as conn, pytest.raises(EbankError) as caught:
        payments.quote(conn, wrong, now=bank.clock.now())
    assert caught.value.code == "PAYEE_NAME_MISMATCH"
    refused(bank, alice, "PAYEE_NAME_MISMATCH", wrong)
    nobody = alice.request("6217001999999999999", 100 * YUAN, payee_name="王五")
    refused(bank, alice, "PAYEE_NOT_FOUND", nobody)
    spaced = alice.request(bob, 100 * YUAN, payee_name=" ".join(bank.name_of(bob)))
    assert alice.paid(spaced, alice.sms(spaced)).status == "completed"


def test_nobody_pays_from_someone_elses_account(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    mallory = Payer(bank)
    theft = replace(mallory.request(bob, 100 * YUAN), from_account=alice.account.number)
    with pytest.raises(EbankError) as caught:
        mallory.pay(theft).value()
    assert caught.value.code == "ACCOUNT_NOT_FOUND"
    with bank.engine.connect() as conn, pytest.raises(EbankError):
        payments.quote(conn, theft, now=bank.clock.now())
    with pytest.raises(EbankError):
        bank.writer.execute(payments.send_code(VAULT, theft))
    assert bank.balance(alice.account) == 1_000_000 * YUAN


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": 0}, "INVALID_AMOUNT"),
        ({"amount": -100}, "INVALID_AMOUNT"),
        ({"amount": 10**16}, "INVALID_AMOUNT"),
        ({"amount": 1.5}, "INVALID_AMOUNT"),
        ({"currency": "USD"}, "UNKNOWN_CURRENCY"),
        ({"speed": "warp"}, "INVALID_INPUT"),
        ({"payee_name": "张三\nnonce=1"}, "INVALID_INPUT"),
        ({"payee_name": "a=b"}, "INVALID_INPUT"),
        ({"payee_account": "6217-0010"}, "INVALID_INPUT"),
        ({"memo": "x" * 61}, "INVALID_INPUT"),
        ({"payee_bank": "12345"}, "INVALID_INPUT"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount, change: dict[str, object], code: str
) -> None:
    refused(bank, alice, code, replace(alice.request(bob, 100 * YUAN), **change))  # type: ignore[arg-type]


def test_a_card_reported_lost_stops_payments_from_its_account(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    card = bank.writer.execute(
        cards.issue_debit_card(
            VAULT, customer_id=alice.id, account_number=alice.account.number, actor=STAFF
        )
    )
    bank.writer.execute(
        cards.report_lost(VAULT, customer_id=alice.id, card_id=card.card.id, channel="online")
    )
    refused(bank, alice, "CARD_REPORTED_LOST", alice.request(bob, 100 * YUAN))


def test_a_term_deposit_cannot_pay(bank: PaymentsBank, alice: Payer, bob: CustomerAccount) -> None:
    from ebank.accounts import service as accounts

    term = bank.writer.execute(
        accounts.open_account(
            customer_id=alice.id, product="term", tier="I", term_months=12, rate_bp=175, actor=STAFF
        )
    )
    request = replace(alice.request(bob, 100 * YUAN), from_account=term.number)
    with pytest.raises(EbankError) as caught:
        alice.pay(request).value()
    assert caught.value.code == "NOT_A_PAYMENT_ACCOUNT"


# -- deferred transfers -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("speed", "after"),
    [("normal", timedelta(hours=2)), ("delayed", timedelta(hours=24))],
)
def test_a_deferred_transfer_holds_the_money_and_sends_it_when_due(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount, speed: str, after: timedelta
) -> None:
    request = alice.request(bob, 800 * YUAN, speed=speed)
    view = alice.paid(request, alice.sms(request))
    assert (view.status, view.revocable, view.due_at) == (
        "scheduled",
        True,
        bank.clock.now() + after,
    )
    assert bank.balance(alice.account) == 1_000_000 * YUAN
    assert bank.available(alice.account) == 999_200 * YUAN
    bank.clock.advance(after - timedelta(seconds=1))
    assert payments.execute_due(bank.writer, VAULT) == 0
    bank.clock.advance(timedelta(seconds=1))
    assert payments.execute_due(bank.writer, VAULT) == 1
    assert bank.payment(alice.id, view.id).status == "completed"
    assert bank.balance(bob) == 800 * YUAN
    assert bank.balance(alice.account) == bank.available(alice.account) == 999_200 * YUAN
    assert payments.execute_due(bank.writer, VAULT) == 0  # sent once
    assert bank.events(view.id) == ["scheduled", "completed"]
    sound(bank.engine)


def test_a_next_day_transfer_is_due_at_nine_the_next_business_day(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 100 * YUAN, speed="next_day")
    view = alice.paid(request, alice.sms(request))
    local = view.due_at.astimezone(payments.BUSINESS_TZ)
    today = bank.clock.now().astimezone(payments.BUSINESS_TZ).date()
    assert (local.date(), local.hour, local.minute) == (today + timedelta(days=1), 9, 0)


def test_revoking_a_next_day_transfer_releases_its_hold_and_it_is_never_sent(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 300 * YUAN, speed="next_day")
    view = alice.paid(request, alice.sms(request))
    revoke = payments.revoke(customer_id=alice.id, payment_id=view.id, channel="online")
    assert bank.writer.execute(revoke) == view.id
    assert bank.available(alice.account) == 1_000_000 * YUAN
    assert bank.payment(alice.id, view.id).status == "revoked"
    bank.clock.advance(timedelta(days=2))
    assert payments.execute_due(bank.writer, VAULT) == 0
    assert bank.balance(bob) == 0
    sound(bank.engine)


def test_two_concurrent_revocations_act_once(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 300 * YUAN, speed="delayed")
    view = alice.paid(request, alice.sms(request))
    revoke = payments.revoke(customer_id=alice.id, payment_id=view.id, channel="online")
    outcomes = in_one_batch(bank.writer, [revoke, revoke])
    assert outcomes == [view.id, view.id]
    assert bank.events(view.id) == ["scheduled", "revoked"]
    assert bank.available(alice.account) == 1_000_000 * YUAN
    sound(bank.engine)


def test_a_sent_transfer_or_someone_elses_cannot_be_revoked(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 100 * YUAN)
    sent = alice.paid(request, alice.sms(request))
    revoke = payments.revoke(customer_id=alice.id, payment_id=sent.id, channel="online")
    with pytest.raises(EbankError) as caught:
        bank.writer.execute(revoke)
    assert caught.value.code == "PAYMENT_NOT_REVOCABLE"
    wait_to_resend(bank.clock)
    later = alice.request(bob, 100 * YUAN, speed="delayed")
    pending = alice.paid(later, alice.sms(later), key="k2")
    mallory = bank.person()
    theirs = payments.revoke(customer_id=mallory, payment_id=pending.id, channel="online")
    with pytest.raises(EbankError) as caught:
        bank.writer.execute(theirs)
    assert caught.value.code == "PAYMENT_NOT_FOUND"
    with bank.engine.connect() as conn, pytest.raises(EbankError):
        payments.payment_of(conn, customer_id=mallory, payment_id=pending.id)
    assert bank.payment(alice.id, pending.id).status == "scheduled"


def test_a_due_transfer_whose_payee_closed_its_account_fails_and_gives_the_hold_back(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 100 * YUAN, speed="normal")
    view = alice.paid(request, alice.sms(request))
    bank.decide("account.close", {"account": bob.number})
    bank.clock.advance(timedelta(hours=3))
    assert payments.execute_due(bank.writer, VAULT) == 0
    failed = bank.payment(alice.id, view.id)
    assert (failed.status, failed.failure_code) == ("failed", "PAYEE_ACCOUNT_UNAVAILABLE")
    assert bank.available(alice.account) == bank.balance(alice.account) == 1_000_000 * YUAN
    with bank.engine.connect() as conn:
        assert [p.id for p in payments.exceptions(conn)] == [view.id]
    sound(bank.engine)


# -- another bank -------------------------------------------------------------------------------
def test_an_interbank_transfer_waits_in_the_clearing_account_until_settled(
    bank: PaymentsBank, alice: Payer, clearing: None
) -> None:
    request = alice.request("6222020200112233", 5_000 * YUAN, payee_name="赵六",
                            payee_bank=OTHER_BANK)  # fmt: skip
    view = alice.paid(request, alice.sms(request))
    assert (view.kind, view.status, view.payee_bank) == ("interbank", "sending", OTHER_BANK)
    assert view.payee_account == "622202******2233"
    assert bank.ledger_balance(payments.CLEARING) == -5_000 * YUAN  # owed to the house
    with bank.engine.connect() as conn:
        assert [p.id for p in payments.exceptions(conn)] == []
    for _ in range(2):
        bank.writer.execute(Command(lambda tx: payments.mark_unknown(tx, view.id)))
    with bank.engine.connect() as conn:
        assert [p.id for p in payments.exceptions(conn)] == [view.id]
    for _ in range(2):  # settling twice settles once
        bank.writer.execute(Command(lambda tx: payments.settle_outgoing(tx, VAULT, view.id)))
    assert bank.payment(alice.id, view.id).status == "completed"
    assert bank.ledger_balance(payments.CLEARING) == 0
    assert bank.ledger_balance(payments.CENTRAL_BANK) == -5_000 * YUAN
    assert bank.events(view.id) == ["sending", "unknown", "completed"]
    sound(bank.engine)


@pytest.mark.parametrize("settled_first", [False, True])
def test_an_interbank_transfer_the_other_bank_rejects_comes_back_to_the_payer(
    bank: PaymentsBank, alice: Payer, clearing: None, settled_first: bool
) -> None:
    request = alice.request("6222020200112233", 5_000 * YUAN, payee_name="赵六",
                            payee_bank=OTHER_BANK)  # fmt: skip
    view = alice.paid(request, alice.sms(request))
    if settled_first:  # a pacs.004 return after settlement
        bank.writer.execute(Command(lambda tx: payments.settle_outgoing(tx, VAULT, view.id)))
    for _ in range(2):
        bank.writer.execute(
            Command(lambda tx: payments.return_outgoing(tx, VAULT, view.id, reason="BE01"))
        )
    back = bank.payment(alice.id, view.id)
    assert (back.status, back.failure_code) == ("returned", "PAYEE_NAME_MISMATCH")
    assert bank.balance(alice.account) == 1_000_000 * YUAN
    assert bank.ledger_balance(payments.CLEARING) == bank.ledger_balance(payments.CENTRAL_BANK) == 0
    with bank.engine.connect() as conn:
        assert [p.id for p in payments.exceptions(conn)] == [view.id]
    sound(bank.engine)


def test_interbank_transfers_are_unavailable_without_a_clearing_house(
    bank: PaymentsBank, alice: Payer
) -> None:
    request = alice.request("6222020200112233", 100 * YUAN, payee_name="赵六",
                            payee_bank=OTHER_BANK)  # fmt: skip
    refused(bank, alice, "INTERBANK_UNAVAILABLE", request)


def test_every_status_change_is_announced_through_the_outbox(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 100 * YUAN, speed="delayed")
    view = alice.paid(request, alice.sms(request))
    bank.writer.execute(payments.revoke(customer_id=alice.id, payment_id=view.id, channel="online"))
    with bank.engine.connect() as conn:
        announced = conn.execute(
            select(func.count()).where(
                outbox_events.c.topic == "payment.status", outbox_events.c.key == str(view.id)
            )
        ).scalar()
    assert announced == 2


def test_a_completed_transfer_has_a_receipt_that_verifies_and_only_its_payer_sees(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    from ebank.receipts import service as receipts

    request = alice.request(bob, 1_234_50, memo="房租")
    view = alice.paid(request, alice.sms(request))
    with bank.engine.connect() as conn:
        receipt = payments.receipt_of(conn, VAULT, customer_id=alice.id, payment_id=view.id)
        checked = receipts.verify(conn, VAULT, receipt.code)
        with pytest.raises(EbankError) as caught:
            payments.receipt_of(conn, VAULT, customer_id=bob.customer_id, payment_id=view.id)
    assert caught.value.code == "RECEIPT_NOT_FOUND"
    assert (receipt.reference, receipt.purpose) == (view.reference, "房租")
    assert checked is not None and checked.amount == 1_234_50
    assert checked.amount_in_words == "人民币壹仟贰佰叁拾肆元伍角整"
    assert bob.number not in (checked.payee_account, checked.payer_account)


def test_a_deferred_transfer_has_its_receipt_only_once_sent(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    request = alice.request(bob, 100 * YUAN, speed="normal")
    view = alice.paid(request, alice.sms(request))
    with bank.engine.connect() as conn, pytest.raises(EbankError):
        payments.receipt_of(conn, VAULT, customer_id=alice.id, payment_id=view.id)
    bank.clock.advance(timedelta(hours=2))
    payments.execute_due(bank.writer, VAULT)
    with bank.engine.connect() as conn:
        receipt = payments.receipt_of(conn, VAULT, customer_id=alice.id, payment_id=view.id)
    assert receipt.view.amount == 100 * YUAN


def test_both_ends_get_the_movement_sms_with_their_balance(
    bank: PaymentsBank, alice: Payer, bob: CustomerAccount
) -> None:
    from tests.channels.api_support import sms_texts

    request = alice.request(bob, 1_234_50, memo="房租")
    alice.paid(request, alice.sms(request))
    [out] = [t for t in sms_texts(bank.engine, alice.id) if "余额" in t]
    [came_in] = sms_texts(bank.engine, bob.customer_id)
    assert "转出" in out and "1,234.50" in out and "998,765.50" in out and "房租" in out
    assert "转入" in came_in and "余额1,234.50" in came_in.replace("人民币", "")


def test_a_returned_interbank_transfer_tells_the_payer_why(
    bank: PaymentsBank, alice: Payer, clearing: None
) -> None:
    from tests.channels.api_support import sms_texts

    request = alice.request("6222020200112233", 500 * YUAN, payee_name="赵六",
                            payee_bank=OTHER_BANK)  # fmt: skip
    view = alice.paid(request, alice.sms(request))
    bank.writer.execute(
        Command(lambda tx: payments.return_outgoing(tx, VAULT, view.id, reason="AC04"))
    )
    texts = sms_texts(bank.engine, alice.id)
    assert any("退回" in t and "500.00" in t for t in texts), texts
