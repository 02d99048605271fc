"""The limits service (DOMAIN.md §2-§3, docs/decisions.md §17): every rule of its docstring,
asked through `assess` (which factor a payment needs) and enforced by `authorise` inside the
command that posts the payment, so that a count exists exactly when money moved.

Money moves in these tests as a real service would move it: one writer command that authorises
the payment and then posts it with the ledger. Every test runs on SQLite and PostgreSQL."""

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount
from ebank.core.clock import FixedClock
from ebank.core.errors import CATALOGUE, EbankError
from ebank.core.writer import Command, Tx, Writer
from ebank.enrolment import service as enrolment
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.limits import service as limits
from ebank.limits.service import Assessment, Payment
from tests import support
from tests.support import (
    STAFF,
    code_of,
    in_one_batch,
    race_two_writers,
    sound,
)

YUAN = 100
CHECKER = "staff:9"
CREDIT_CODE = "91350100M000100Y43"
ONE_TIME = ("sms", "token", "certificate")
DAY = timedelta(days=1)
_CJK = re.compile(r"[\u4e00-\u9fff]")


# -- the bank of these tests --------------------------------------------------------------
class Bank(support.Bank):
    """The common test bank, paying as a payment service would."""

    def assess(self, payment: Payment) -> Assessment:
        with self.engine.connect() as conn:
            return limits.assess(conn, payment, now=self.clock.now())

    def pay(self, payment: Payment) -> Any:
        return self.writer.execute(paying(payment))

    def refused(self, payment: Payment, code: str) -> EbankError:
        """The payment is refused with `code`, and neither money nor any count moved."""
        before = self.usage(payment.customer_id)
        with self.engine.connect() as conn:
            balance = accounts.get_account(conn, number=payment.from_account).balance
        with pytest.raises(EbankError) as caught:
            self.pay(payment)
        assert caught.value.code == code, caught.value
        assert self.usage(payment.customer_id) == before
        with self.engine.connect() as conn:
            assert accounts.get_account(conn, number=payment.from_account).balance == balance
        return caught.value


def paying(payment: Payment, then: Callable[[Tx], None] | None = None) -> Command[Any]:
    """What a payment service does: ask the limits, then post; `then` runs after both."""

    def run(tx: Tx) -> Any:
        limits.authorise(tx, payment)
        source = accounts.get_account(tx.conn, number=payment.from_account)
        credit = _payee_ledger_id(tx, payment.payee_account)
        done = ledger.transfer(
            tx, debit=source.ledger_account_id, credit=credit, amount=payment.amount
        )
        if then is not None:
            then(tx)
        return done

    return Command(run)


def _payee_ledger_id(tx: Tx, payee: str | None) -> int:
    """The payee's account here, or the clearing account for a payee at another bank."""
    if payee is None:
        return ensure_chart(tx)["GL-CLEARING-CNY"]
    return accounts.get_account(tx.conn, number=payee).ledger_account_id


def pay(
    customer: int, source: CustomerAccount, amount: int, method: str | None = None, *,
    to: CustomerAccount | None = None, channel: str = "online", kind: str = "transfer",
    confirmed: bool = False,
) -> Payment:  # fmt: skip
    """A payment of `amount` fen; to another bank unless `to` names an account here."""
    return Payment(
        customer_id=customer, channel=channel, kind=kind, from_account=source.number,
        amount=amount, payee_account=None if to is None else to.number, method=method,
        large_confirmed=confirmed,
    )  # fmt: skip


def over(err: EbankError, limit: str, cap: str, remaining: str | None = None) -> None:
    """A LIMIT_EXCEEDED naming `limit`, with its cap (and what remains) as decimal strings."""
    assert err.code == "LIMIT_EXCEEDED", err
    assert err.details["limit"] == limit
    assert err.details["cap"] == cap
    if remaining is not None:
        assert err.details["remaining"] == remaining
    for amount in (err.details["cap"], err.details["remaining"]):
        assert re.fullmatch(r"\d+\.\d\d", amount), amount
    zh, en = err.message("zh"), err.message("en")
    assert f"¥{cap}" in zh and f"¥{cap}" in en
    assert _CJK.search(zh) and not _CJK.search(en)
    # The wording made for this limit, not the generic one.
    templates = CATALOGUE["LIMIT_EXCEEDED"].variants[limit]
    assert (zh, en) == tuple(t.format(**err.details) for t in templates)


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock) -> Bank:
    return Bank(writer, engine, clock)


@pytest.fixture
def alice(bank: Bank) -> tuple[int, CustomerAccount]:
    """A person with a funded Type I account, enrolled for online banking at the counter."""
    customer = bank.person()
    account = bank.account(customer)
    bank.enrol(customer)
    return customer, account


# -- own accounts, enrolment, the factor -------------------------------------------------
def test_own_account_transfers_need_no_enrolment_no_factor_and_count_nothing(bank: Bank) -> None:
    customer = bank.person()
    main, savings = bank.account(customer), bank.account(customer, "II", funds=0)
    move = pay(customer, main, 2_000_000 * YUAN, to=savings)
    assert bank.assess(move) == Assessment((), False, None)
    bank.pay(move)
    assert bank.balance(savings) == 2_000_000 * YUAN
    assert bank.usage(customer) == {}


def test_paying_others_without_enrolment_is_not_enrolled(bank: Bank) -> None:
    customer, other = bank.person(), bank.person()
    mine, theirs = bank.account(customer), bank.account(other, funds=0)
    bank.enrol(customer, "mobile")  # enrolled, but on another channel
    payment = pay(customer, mine, 100 * YUAN, "sms", to=theirs)
    found = bank.assess(payment)
    assert found.methods == () and found.refusal is not None
    assert found.refusal.code == "NOT_ENROLLED"
    bank.refused(payment, "NOT_ENROLLED")
    # A cancelled enrolment is no enrolment.
    bank.enrol(customer)
    bank.writer.execute(enrolment.cancel(customer_id=customer, channel="online", actor=STAFF,
                                         via="counter"))  # fmt: skip
    bank.refused(payment, "NOT_ENROLLED")
    assert bank.balance(theirs) == 0


@pytest.mark.parametrize(("kind", "method"), [
    ("transfer", None), ("transfer", "pin"), ("bill", "pin"), ("bill", None),
])  # fmt: skip
def test_paying_others_needs_a_one_time_factor(
    bank: Bank, alice: tuple[int, CustomerAccount], kind: str, method: str | None
) -> None:
    customer, account = alice
    payment = pay(customer, account, 100 * YUAN, method, kind=kind)
    err = bank.refused(payment, "STRONGER_FACTOR_REQUIRED")
    assert err.details == {"methods": list(ONE_TIME)}
    assert bank.assess(payment) == Assessment(ONE_TIME, False, None)
    bank.pay(dataclasses.replace(payment, method="sms"))


def test_the_pin_alone_is_enough_only_for_an_internet_payment(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    shopping = pay(customer, account, 100 * YUAN, kind="ecommerce")
    assert bank.assess(shopping) == Assessment(("pin", *ONE_TIME), False, None)
    err = bank.refused(shopping, "STRONGER_FACTOR_REQUIRED")
    assert err.details == {"methods": ["pin", *ONE_TIME]}
    bank.pay(dataclasses.replace(shopping, method="pin"))
    assert bank.usage(customer)[("uncertified", "2026-11-23")] == 100 * YUAN


# -- the agreed limits --------------------------------------------------------------------
def test_the_agreed_per_payment_and_daily_limits_hold(bank: Bank) -> None:
    customer = bank.person()
    account = bank.account(customer)
    bank.enrol(customer, daily_limit=2_500 * YUAN, per_payment_limit=1_000 * YUAN)
    over(bank.refused(pay(customer, account, 1_000 * YUAN + 1, "sms"), "LIMIT_EXCEEDED"),
         "channel_per_payment", "1000.00")  # fmt: skip
    bank.pay(pay(customer, account, 1_000 * YUAN, "sms"))
    bank.pay(pay(customer, account, 1_000 * YUAN, "sms"))
    third = pay(customer, account, 1_000 * YUAN, "certificate")
    over(bank.refused(third, "LIMIT_EXCEEDED"), "channel_daily", "2500.00", "500.00")
    found = bank.assess(third)
    assert found.methods == () and found.refusal is not None
    assert found.refusal.details["limit"] == "channel_daily"
    bank.pay(pay(customer, account, 500 * YUAN, "sms"))
    over(bank.refused(pay(customer, account, 1, "token"), "LIMIT_EXCEEDED"),
         "channel_daily", "2500.00", "0.00")  # fmt: skip
    assert bank.usage(customer)[("channel:online", "2026-11-23")] == 2_500 * YUAN


def test_a_lowered_bank_maximum_caps_an_older_higher_agreement(bank: Bank) -> None:
    customer = bank.person()
    account = bank.account(customer)
    bank.enrol(customer)  # agreed at the maximum of the day: ¥1,000,000 both
    bank.set_parameter("limits.channel.online.per_payment", 8_000 * YUAN)
    bank.set_parameter("limits.channel.online.daily", 30_000 * YUAN)
    over(bank.refused(pay(customer, account, 8_000 * YUAN + 1, "token"), "LIMIT_EXCEEDED"),
         "channel_per_payment", "8000.00")  # fmt: skip
    for _ in range(3):
        bank.pay(pay(customer, account, 8_000 * YUAN, "token"))
    over(bank.refused(pay(customer, account, 8_000 * YUAN, "token"), "LIMIT_EXCEEDED"),
         "channel_daily", "30000.00", "6000.00")  # fmt: skip


def test_a_self_enrolled_customer_is_capped_by_todays_self_enrolment_maximum(bank: Bank) -> None:
    customer = bank.person()
    account = bank.account(customer)
    bank.self_enrol(customer, account)  # agreed ¥5,000 a day, ¥1,000 a payment
    bank.set_parameter("limits.self_enrolled.per_payment", 500 * YUAN)
    bank.set_parameter("limits.self_enrolled.daily", 2_000 * YUAN)
    over(bank.refused(pay(customer, account, 500 * YUAN + 1, "token"), "LIMIT_EXCEEDED"),
         "channel_per_payment", "500.00")  # fmt: skip
    for _ in range(4):
        bank.pay(pay(customer, account, 500 * YUAN, "sms"))
    over(bank.refused(pay(customer, account, 1, "certificate"), "LIMIT_EXCEEDED"),
         "channel_daily", "2000.00", "0.00")  # fmt: skip


# -- the factors' daily maxima ------------------------------------------------------------
def test_sms_codes_carry_at_most_20000_a_day_across_payments(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    bank.pay(pay(customer, account, 15_000 * YUAN, "sms"))
    six = pay(customer, account, 6_000 * YUAN, "sms")
    over(bank.refused(six, "LIMIT_EXCEEDED"), "sms_daily", "20000.00", "5000.00")
    assert bank.assess(dataclasses.replace(six, method=None)) == Assessment(
        ("token", "certificate"), False, None
    )
    bank.pay(pay(customer, account, 5_000 * YUAN, "sms"))
    over(bank.refused(pay(customer, account, 1, "sms"), "LIMIT_EXCEEDED"),
         "sms_daily", "20000.00", "0.00")  # fmt: skip
    bank.pay(pay(customer, account, 1, "token"))
    usage = bank.usage(customer)
    assert usage[("method:sms", "2026-11-23")] == 20_000 * YUAN
    assert usage[("method:token", "2026-11-23")] == 1
    assert usage[("others", "2026-11-23")] == 20_000 * YUAN + 1


def test_the_token_carries_at_most_1000000_a_day(bank: Bank) -> None:
    # The channel maximum is raised so that the token's own maximum is the one that binds.
    bank.set_parameter("limits.channel.online.daily", 2_000_000 * YUAN)
    bank.set_parameter("limits.channel.online.per_payment", 2_000_000 * YUAN)
    company = bank.enterprise()
    account = bank.account(company, "corporate")
    bank.enrol(company)
    bank.pay(pay(company, account, 600_000 * YUAN, "token"))
    bank.pay(pay(company, account, 400_000 * YUAN, "token"))
    over(bank.refused(pay(company, account, 1, "token"), "LIMIT_EXCEEDED"),
         "token_daily", "1000000.00", "0.00")  # fmt: skip


def test_the_certificate_carries_at_most_500000_a_day(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    bank.pay(pay(customer, account, 500_000 * YUAN, "certificate", confirmed=True))
    over(bank.refused(pay(customer, account, 1, "certificate", confirmed=True), "LIMIT_EXCEEDED"),
         "certificate_daily", "500000.00", "0.00")  # fmt: skip


# -- internet payments without certificate ------------------------------------------------
@pytest.mark.parametrize("method", ["pin", "sms", "token"])
def test_an_internet_payment_without_certificate_is_at_most_1000_each_and_5000_a_day(
    bank: Bank, alice: tuple[int, CustomerAccount], method: str
) -> None:
    customer, account = alice

    def shop(amount: int, how: str | None = method) -> Payment:
        return pay(customer, account, amount, how, kind="ecommerce")

    over(bank.refused(shop(1_000 * YUAN + 1), "LIMIT_EXCEEDED"),
         "uncertified_per_payment", "1000.00")  # fmt: skip
    assert bank.assess(shop(1_000 * YUAN + 1, None)).methods == ("certificate",)
    bank.pay(shop(1_000 * YUAN + 1, "certificate"))  # the certificate lifts it
    for _ in range(4):
        bank.pay(shop(1_000 * YUAN))
    bank.pay(shop(1_000 * YUAN, "pin"))
    over(bank.refused(shop(1), "LIMIT_EXCEEDED"), "uncertified_daily", "5000.00", "0.00")
    bank.pay(shop(1, "certificate"))
    assert bank.usage(customer)[("uncertified", "2026-11-23")] == 5_000 * YUAN


def test_a_transfer_is_not_an_internet_payment(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    bank.pay(pay(customer, account, 8_000 * YUAN, "sms"))  # above ¥5,000, no certificate
    assert ("uncertified", "2026-11-23") not in bank.usage(customer)


# -- certificate above a day's threshold --------------------------------------------------
def test_an_individual_needs_a_certificate_above_50000_a_day_to_others(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    bank.pay(pay(customer, account, 50_000 * YUAN, "token"))
    err = bank.refused(pay(customer, account, 1, "token"), "CERTIFICATE_REQUIRED")
    assert err.details == {"threshold": "50000.00"}
    assert "¥50000.00" in err.message("zh") and "¥50000.00" in err.message("en")
    assert bank.assess(pay(customer, account, 1)) == Assessment(("certificate",), False, None)
    bank.pay(pay(customer, account, 1, "certificate"))


def test_own_transfers_do_not_count_towards_the_certificate_threshold(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    savings = bank.account(customer, "II", funds=0)
    bank.pay(pay(customer, account, 100_000 * YUAN, to=savings))
    bank.pay(pay(customer, account, 50_000 * YUAN, "token"))


def test_an_enterprise_needs_no_certificate_above_50000(bank: Bank) -> None:
    company = bank.enterprise()
    account = bank.account(company, "corporate")
    bank.enrol(company)
    payment = pay(company, account, 60_000 * YUAN)
    assert bank.assess(payment) == Assessment(("token", "certificate"), False, None)
    bank.pay(dataclasses.replace(payment, method="token"))


# -- the large-transfer warning -----------------------------------------------------------
def test_an_individual_confirms_a_warning_above_300000_a_day(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    first = pay(customer, account, 300_000 * YUAN, "certificate")
    assert bank.assess(first) == Assessment(("certificate",), False, None)
    bank.pay(first)
    second = pay(customer, account, 1, "certificate")
    assert bank.assess(second) == Assessment(("certificate",), True, None)
    err = bank.refused(second, "LARGE_TRANSFER_WARNING")
    assert err.details == {"threshold": "300000.00"}
    assert "¥300000.00" in err.message("zh") and "¥300000.00" in err.message("en")
    bank.pay(dataclasses.replace(second, large_confirmed=True))


def test_an_enterprise_confirms_a_warning_above_1000000_a_day(bank: Bank) -> None:
    bank.set_parameter("limits.channel.online.daily", 2_000_000 * YUAN)
    bank.set_parameter("limits.channel.online.per_payment", 2_000_000 * YUAN)
    company = bank.enterprise()
    account = bank.account(company, "corporate")
    bank.enrol(company)
    bank.pay(pay(company, account, 1_000_000 * YUAN, "token"))  # not above: no warning
    err = bank.refused(pay(company, account, 1, "certificate"), "LARGE_TRANSFER_WARNING")
    assert err.details == {"threshold": "1000000.00"}
    bank.pay(pay(company, account, 1, "certificate", confirmed=True))


def test_the_warning_is_not_raised_for_a_payment_that_would_fail_anyway(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    too_much = pay(customer, account, 500_000 * YUAN + 1, "certificate")
    over(bank.refused(too_much, "LIMIT_EXCEEDED"), "certificate_daily", "500000.00")
    found = bank.assess(dataclasses.replace(too_much, method=None))
    assert found.methods == () and not found.large_warning
    assert found.refusal is not None and found.refusal.details["limit"] == "certificate_daily"
    over(bank.refused(pay(customer, account, 300_000 * YUAN + 1, "sms"), "LIMIT_EXCEEDED"),
         "sms_daily", "20000.00")  # fmt: skip


def test_own_transfers_never_raise_the_warning(bank: Bank) -> None:
    customer = bank.person()
    main, savings = bank.account(customer), bank.account(customer, "II", funds=0)
    bank.pay(pay(customer, main, 1_000_000 * YUAN, to=savings))


# -- account tiers ------------------------------------------------------------------------
def test_type_ii_pays_others_at_most_10000_a_day_on_every_channel(bank: Bank) -> None:
    customer = bank.person()
    main, wallet = bank.account(customer), bank.account(customer, "II", funds=50_000 * YUAN)
    bank.enrol(customer)
    bank.pay(pay(customer, wallet, 10_000 * YUAN, "sms"))
    err = bank.refused(pay(customer, wallet, 1, "token"), "LIMIT_EXCEEDED")
    over(err, "tier_daily", "10000.00", "0.00")
    assert err.details["tier"] == "II"
    assert "II类账户" in err.message("zh") and "Type II account" in err.message("en")
    bank.refused(pay(customer, wallet, 1, channel="counter"), "LIMIT_EXCEEDED")
    bank.pay(pay(customer, wallet, 5_000 * YUAN, to=main))  # to the customer's own account
    assert bank.balance(main) == 5_000_000 * YUAN + 5_000 * YUAN


def test_own_transfers_from_type_ii_leave_its_limit_to_others_untouched(bank: Bank) -> None:
    customer = bank.person()
    main, wallet = bank.account(customer), bank.account(customer, "II", funds=50_000 * YUAN)
    bank.enrol(customer)
    bank.pay(pay(customer, wallet, 15_000 * YUAN, to=main))
    bank.pay(pay(customer, wallet, 10_000 * YUAN, "sms"))


def test_type_ii_pays_others_at_most_200000_a_year_counted_from_1_january(
    bank: Bank, clock: FixedClock
) -> None:
    customer = bank.person()
    wallet = bank.account(customer, "II", funds=300_000 * YUAN)
    for _ in range(20):
        bank.pay(pay(customer, wallet, 10_000 * YUAN, channel="counter"))
        clock.advance(DAY)
    err = bank.refused(pay(customer, wallet, 1, channel="counter"), "LIMIT_EXCEEDED")
    over(err, "tier_yearly", "200000.00", "0.00")
    assert "II类账户的年累计限额" in err.message("zh") and "this year" in err.message("en")
    clock.set(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Shanghai
    bank.refused(pay(customer, wallet, 1, channel="counter"), "LIMIT_EXCEEDED")
    clock.set(datetime(2026, 12, 31, 16, 0, tzinfo=UTC))  # 1 January 2027 in Shanghai
    bank.pay(pay(customer, wallet, 10_000 * YUAN, channel="counter"))
    assert bank.usage(customer)[(f"account:{wallet.ledger_account_id}", "2027")] == 10_000 * YUAN


def test_type_iii_pays_at_most_2000_a_day_including_to_own_accounts(
    bank: Bank, clock: FixedClock
) -> None:
    customer = bank.person()
    main, pocket = bank.account(customer), bank.account(customer, "III", funds=2_000 * YUAN)
    bank.pay(pay(customer, pocket, 1_500 * YUAN, to=main))
    bank.fund(pocket, 1_500 * YUAN)
    err = bank.refused(pay(customer, pocket, 500 * YUAN + 1, to=main), "LIMIT_EXCEEDED")
    over(err, "tier_daily", "2000.00", "500.00")
    assert err.details["tier"] == "III"
    bank.refused(pay(customer, pocket, 500 * YUAN + 1, channel="counter"), "LIMIT_EXCEEDED")
    bank.pay(pay(customer, pocket, 500 * YUAN, channel="counter"))
    clock.advance(DAY)
    bank.pay(pay(customer, pocket, 1_500 * YUAN, to=main))


def test_type_iii_pays_at_most_50000_a_year(bank: Bank, clock: FixedClock) -> None:
    customer = bank.person()
    main, pocket = bank.account(customer), bank.account(customer, "III", funds=0)
    for _ in range(25):
        bank.fund(pocket, 2_000 * YUAN)
        bank.pay(pay(customer, pocket, 2_000 * YUAN, to=main))
        clock.advance(DAY)
    bank.fund(pocket, 2_000 * YUAN)
    over(bank.refused(pay(customer, pocket, 1, to=main), "LIMIT_EXCEEDED"),
         "tier_yearly", "50000.00", "0.00")  # fmt: skip


# -- the business day ---------------------------------------------------------------------
def test_daily_counters_start_again_at_midnight_in_shanghai(
    bank: Bank, clock: FixedClock, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    bank.pay(pay(customer, account, 20_000 * YUAN, "sms"))
    clock.set(datetime(2026, 11, 23, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Shanghai
    over(bank.refused(pay(customer, account, 1, "sms"), "LIMIT_EXCEEDED"), "sms_daily", "20000.00")
    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))  # UTC's 23 November, Shanghai's 24th
    bank.pay(pay(customer, account, 20_000 * YUAN, "sms"))
    usage = bank.usage(customer)
    assert usage[("method:sms", "2026-11-23")] == usage[("method:sms", "2026-11-24")]


# -- the counter --------------------------------------------------------------------------
def test_counter_payments_skip_the_e_banking_rules(bank: Bank) -> None:
    customer = bank.person()  # not enrolled for anything
    account = bank.account(customer)
    at_counter = pay(customer, account, 2_000_000 * YUAN, channel="counter")
    assert bank.assess(at_counter) == Assessment((), False, None)
    bank.pay(at_counter)
    assert bank.usage(customer) == {}
    # Nor do they count towards the e-channel ones.
    bank.enrol(customer)
    bank.pay(pay(customer, account, 50_000 * YUAN, "token"))


# -- bad input and other people's accounts ------------------------------------------------
def test_someone_elses_account_is_account_not_found(bank: Bank) -> None:
    thief, victim = bank.person(), bank.person()
    bank.account(thief)
    theirs = bank.account(victim)
    bank.enrol(thief)
    bank.enrol(victim)
    stolen = pay(thief, theirs, 100 * YUAN, "sms")
    bank.refused(stolen, "ACCOUNT_NOT_FOUND")
    with pytest.raises(EbankError) as caught:
        bank.assess(stolen)
    assert caught.value.code == "ACCOUNT_NOT_FOUND"
    for number in ("6200000000000000000", "GL-CASH-CNY", ""):
        with pytest.raises(EbankError) as caught:
            bank.pay(dataclasses.replace(stolen, from_account=number))
        assert caught.value.code == "ACCOUNT_NOT_FOUND"
    assert bank.usage(thief) == {} and bank.usage(victim) == {}
    assert bank.balance(theirs) == 5_000_000 * YUAN


def test_paying_someone_elses_account_here_is_a_payment_to_others(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    other = bank.account(bank.person(), funds=0)
    to_other = pay(customer, account, 100 * YUAN, to=other)
    assert bank.assess(to_other).methods == ONE_TIME
    bank.refused(to_other, "STRONGER_FACTOR_REQUIRED")
    bank.pay(dataclasses.replace(to_other, method="sms"))
    assert bank.balance(other) == 100 * YUAN


@pytest.mark.parametrize("amount", [0, -1, -100 * YUAN, True, False, 1.0, 100.5, "100",
                                    None, 10**15 + 1, 10**30])  # fmt: skip
def test_a_bad_amount_is_invalid_amount_and_counts_nothing(
    bank: Bank, alice: tuple[int, CustomerAccount], amount: Any
) -> None:
    customer, account = alice
    payment = pay(customer, account, amount, "sms")
    bank.refused(payment, "INVALID_AMOUNT")
    with pytest.raises(EbankError) as caught:
        bank.assess(payment)
    assert caught.value.code == "INVALID_AMOUNT"
    assert bank.usage(customer) == {}


@pytest.mark.parametrize(
    "change",
    [
        {"channel": "atm"},
        {"channel": "ONLINE"},
        {"kind": "loan"},
        {"method": "password"},
        {"method": "login_password"},
        {"customer_id": "1"},
        {"from_account": 17},
    ],
    ids=repr,
)
def test_a_bad_channel_kind_factor_or_id_is_invalid_input(
    bank: Bank, alice: tuple[int, CustomerAccount], change: dict[str, Any]
) -> None:
    customer, account = alice
    payment = dataclasses.replace(pay(customer, account, 100 * YUAN, "sms"), **change)
    for attempt in (lambda: bank.assess(payment), lambda: bank.pay(payment)):
        with pytest.raises(EbankError) as caught:
            attempt()
        assert caught.value.code == "INVALID_INPUT"
    assert bank.usage(customer) == {}
    assert bank.balance(account) == 5_000_000 * YUAN


def test_an_unknown_customer_is_customer_not_found(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    _, account = alice
    with pytest.raises(EbankError) as caught:
        bank.assess(pay(999, account, 100 * YUAN, "sms"))
    assert caught.value.code == "CUSTOMER_NOT_FOUND"


def test_an_account_in_another_currency_is_refused(bank: Bank) -> None:
    customer = bank.person()
    dollars = bank.account(customer, "II", funds=0, currency="USD")
    bank.enrol(customer)
    with pytest.raises(EbankError) as caught:
        bank.assess(pay(customer, dollars, 100, "sms"))
    assert caught.value.code == "INVALID_INPUT"


# -- messages -----------------------------------------------------------------------------
def test_each_refusal_says_which_limit_and_what_lifts_it(
    bank: Bank, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    bank.pay(pay(customer, account, 19_000 * YUAN, "sms"))
    sms = bank.refused(pay(customer, account, 2_000 * YUAN, "sms"), "LIMIT_EXCEEDED")
    assert sms.message("zh") == (
        "超过短信验证码的日累计限额 ¥20000.00（今日还可 ¥1000.00）；请改用动态口令或数字证书"
    )
    assert sms.message("en") == (
        "Above the daily limit for SMS codes (¥20000.00; ¥1000.00 left today): use your token "
        "or certificate"
    )
    assert sms.to_dict("en")["details"] == {
        "limit": "sms_daily", "cap": "20000.00", "remaining": "1000.00",
    }  # fmt: skip
    shop = bank.refused(pay(customer, account, 1_500 * YUAN, "pin", kind="ecommerce"),
                        "LIMIT_EXCEEDED")  # fmt: skip
    assert "未使用数字证书" in shop.message("zh") and "¥1000.00" in shop.message("zh")
    assert "without a certificate" in shop.message("en")
    bank.enrol(customer, daily_limit=20_000 * YUAN, per_payment_limit=5_000 * YUAN)
    per = bank.refused(pay(customer, account, 6_000 * YUAN, "token"), "LIMIT_EXCEEDED")
    assert "单笔限额 ¥5000.00" in per.message("zh") and "raise the limit with your token" in (
        per.message("en")
    )


def test_every_limit_the_service_names_has_its_own_wording() -> None:
    """The limits refused in the tests above, each checked by `over`, are all the variants."""
    assert set(CATALOGUE["LIMIT_EXCEEDED"].variants) == {
        "channel_per_payment", "channel_daily", "sms_daily", "token_daily", "certificate_daily",
        "uncertified_per_payment", "uncertified_daily", "tier_daily", "tier_yearly",
    }  # fmt: skip


# -- a count exists exactly when money moved ----------------------------------------------
def test_a_posting_that_fails_takes_its_count_back(bank: Bank) -> None:
    customer = bank.person()
    account = bank.account(customer, funds=100 * YUAN)
    bank.enrol(customer)
    bank.refused(pay(customer, account, 200 * YUAN, "sms"), "INSUFFICIENT_FUNDS")
    assert bank.usage(customer) == {}


@pytest.mark.parametrize("failure", [EbankError("ACCOUNT_FROZEN"), RuntimeError("crash")])
def test_a_command_that_fails_after_authorising_counts_nothing(
    bank: Bank, alice: tuple[int, CustomerAccount], failure: Exception
) -> None:
    customer, account = alice
    payment = pay(customer, account, 15_000 * YUAN, "sms")

    def fail(tx: Tx) -> None:
        raise failure

    with pytest.raises(type(failure)):
        bank.writer.execute(paying(payment, then=fail))
    assert bank.usage(customer) == {}
    assert bank.balance(account) == 5_000_000 * YUAN
    bank.pay(payment)  # the whole day's SMS allowance is still there
    bank.pay(pay(customer, account, 5_000 * YUAN, "sms"))


# -- concurrency --------------------------------------------------------------------------
def _exactly_the_limit_passes(bank: Bank, customer: int, account: CustomerAccount) -> None:
    usage = bank.usage(customer)
    assert usage[("method:sms", "2026-11-23")] == 20_000 * YUAN
    assert bank.balance(account) == 5_000_000 * YUAN - 20_000 * YUAN
    sound(bank.engine)


def test_two_writers_racing_pass_exactly_the_daily_limit(
    bank: Bank, writer: Writer, engine: Engine, clock: FixedClock,
    alice: tuple[int, CustomerAccount],
) -> None:  # fmt: skip
    customer, account = alice
    commands = [paying(pay(customer, account, 4_000 * YUAN, "sms")) for _ in range(5)]
    outcomes = [o for pair in race_two_writers(writer, engine, clock, commands) for o in pair]
    codes = sorted(code_of(o) for o in outcomes)
    assert codes == ["LIMIT_EXCEEDED"] * 5 + ["ok"] * 5, outcomes
    _exactly_the_limit_passes(bank, customer, account)


def test_many_payments_in_one_batch_pass_exactly_the_daily_limit(
    bank: Bank, writer: Writer, alice: tuple[int, CustomerAccount]
) -> None:
    customer, account = alice
    commands = [paying(pay(customer, account, 4_000 * YUAN, "sms")) for _ in range(8)]
    codes = [code_of(o) for o in in_one_batch(writer, commands)]
    assert codes == ["ok"] * 5 + ["LIMIT_EXCEEDED"] * 3
    _exactly_the_limit_passes(bank, customer, account)
