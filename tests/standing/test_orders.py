"""Standing orders: set up with the factor a transfer of their amount would need, run by the
worker once per occurrence however many workers try, failures recorded and told, missed runs
made late; cancelled by their owner only. SQLite and PostgreSQL."""

from dataclasses import replace
from datetime import date, time, timedelta

import pytest
from sqlalchemy import select

from ebank.accounts.models import CustomerAccount
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.payments.models import Confirmation
from ebank.security.service import Checked
from ebank.standing import orders, payees
from ebank.standing.models import OrderRequest, OrderView, Schedule
from tests.channels.api_support import sms_texts
from tests.standing.conftest import YUAN, Holder, StandingBank
from tests.support import VAULT, in_one_batch, last_code, race_two_writers, sound, wait_to_resend

NINE = time(9, 0)
TODAY = date(2026, 11, 23)  # the clock fixture's day, a Monday; it is 10:00 in Shanghai
TOMORROW = TODAY + timedelta(days=1)


def daily(start: date = TOMORROW, **extra: object) -> Schedule:
    return Schedule("daily", start, NINE, **extra)  # type: ignore[arg-type]


def request(holder: Holder, payee_id: int, amount: int, schedule: Schedule) -> OrderRequest:
    return OrderRequest(
        customer_id=holder.id, channel="online", payee_id=payee_id,
        from_account=holder.account.number, amount=amount, schedule=schedule, memo="房租",
    )  # fmt: skip


def sms(bank: StandingBank, asked: OrderRequest) -> Confirmation:
    bank.writer.execute(orders.send_code(VAULT, asked))
    return Confirmation("sms", last_code(bank.engine))


def create(bank: StandingBank, asked: OrderRequest, confirmation: Confirmation,
           key: str = "o1") -> Checked[int]:  # fmt: skip
    return bank.writer.execute(orders.create(VAULT, asked, confirmation, idempotency_key=key))


def set_up(bank: StandingBank, holder: Holder, to: CustomerAccount, amount: int,
           schedule: Schedule) -> int:  # fmt: skip
    """An order from the holder to `to` (added as a payee), confirmed by SMS; its id."""
    asked = request(holder, holder.add_payee(to), amount, schedule)
    return create(bank, asked, sms(bank, asked), key=f"order-{to.number}").value()


def view(bank: StandingBank, holder: Holder, order_id: int) -> OrderView:
    with bank.engine.connect() as conn:
        return orders.order_of(conn, customer_id=holder.id, order_id=order_id)


def run(bank: StandingBank) -> int:
    return orders.run_due_orders(bank.writer, VAULT)


def refused(bank: StandingBank, holder: Holder, code: str, asked: OrderRequest,
            confirmation: Confirmation | None = None) -> None:  # fmt: skip
    """Setting the order up is refused with `code`, and the holder has no order."""
    with pytest.raises(EbankError) as caught:
        create(bank, asked, confirmation or Confirmation(), key=f"refused-{code}").value()
    assert caught.value.code == code, caught.value
    with bank.engine.connect() as conn:
        assert orders.orders_of(conn, holder.id) == []


# -- running ------------------------------------------------------------------------------------
def test_a_monthly_order_on_the_31st_pays_on_each_months_last_day_once(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    order_id = set_up(bank, alice, bob, 1_000 * YUAN, Schedule("monthly", TODAY, NINE, day=31))
    first = view(bank, alice, order_id)
    assert (first.status, first.method, first.runs, first.last) == ("active", "sms", 0, None)
    assert first.next_run_at is not None
    assert first.next_run_at.astimezone(orders.payments.BUSINESS_TZ).date() == date(2026, 11, 30)
    assert run(bank) == 0
    for year, month, day in ((2026, 11, 30), (2026, 12, 31), (2027, 1, 31), (2027, 2, 28)):
        bank.at(year, month, day, 8, 59)
        assert run(bank) == 0
        bank.at(year, month, day, 9, 0)
        assert run(bank) == 1
        assert run(bank) == 0  # paid once
    assert [d for d, _, _ in bank.occurrences(order_id)] == [
        "2026-11-30", "2026-12-31", "2027-01-31", "2027-02-28",
    ]  # fmt: skip
    paid = bank.payments_of(alice.id)
    assert [(p.kind, p.status, p.method, p.amount) for p in paid] == [
        ("intra", "completed", "sms", 1_000 * YUAN)
    ] * 4
    assert bank.balance(bob) == 4_000 * YUAN
    last = view(bank, alice, order_id)
    assert last.runs == 4 and last.last is not None and last.last.payment_id == paid[0].id
    sound(bank.engine)


def test_two_workers_on_one_occurrence_pay_it_once(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    order_id = set_up(bank, alice, bob, 100 * YUAN, daily())
    bank.at(2026, 11, 24, 9, 0)
    [pair] = race_two_writers(
        bank.writer, bank.engine, bank.clock, [orders.run_occurrence(VAULT, order_id)]
    )
    assert sorted(pair) == [False, True]
    bank.at(2026, 11, 25, 9, 0)
    twice = [orders.run_occurrence(VAULT, order_id)] * 2
    assert in_one_batch(bank.writer, twice) == [True, False]
    assert bank.balance(bob) == 200 * YUAN
    assert [d for d, _, _ in bank.occurrences(order_id)] == ["2026-11-24", "2026-11-25"]
    sound(bank.engine)


def test_a_failed_occurrence_is_recorded_told_and_the_order_goes_on(
    bank: StandingBank, bob: CustomerAccount
) -> None:
    poor = Holder(bank, funds=100 * YUAN)
    order_id = set_up(bank, poor, bob, 500 * YUAN, daily())
    bank.at(2026, 11, 24, 9, 0)
    assert run(bank) == 0
    assert bank.occurrences(order_id) == [("2026-11-24", None, "INSUFFICIENT_FUNDS")]
    [told] = sms_texts(bank.engine, poor.id, "scheduled")
    assert "500.00" in told and bob.number[-4:] in told
    assert bank.balance(poor.account) == 100 * YUAN and bank.payments_of(poor.id) == []
    failed = view(bank, poor, order_id)
    assert failed.status == "active" and failed.last is not None
    assert failed.last.failure_code == "INSUFFICIENT_FUNDS"
    assert run(bank) == 0  # a failure is recorded once, and told once
    assert len(sms_texts(bank.engine, poor.id, "scheduled")) == 1
    bank.fund(poor.account, 1_000 * YUAN)
    bank.at(2026, 11, 25, 9, 0)
    assert run(bank) == 1
    assert bank.balance(bob) == 500 * YUAN
    with bank.engine.connect() as conn:
        outcomes = conn.execute(
            select(audit_log.c.outcome).where(audit_log.c.action == "standing_order.run")
        ).scalars().all()  # fmt: skip
    assert outcomes == ["failed"]
    sound(bank.engine)


@pytest.mark.parametrize("cause", ["limit", "payee_closed"])
def test_a_limit_or_a_closed_payee_account_fails_the_occurrence_with_its_reason(
    bank: StandingBank, alice: Holder, bob: CustomerAccount, cause: str
) -> None:
    order_id = set_up(bank, alice, bob, 500 * YUAN, daily())
    if cause == "limit":
        bank.set_parameter("limits.method.sms.daily", 100 * YUAN)
    else:
        bank.decide("account.close", {"account": bob.number})
    bank.at(2026, 11, 24, 9, 0)
    before = bank.balance(alice.account), bank.usage(alice.id)
    assert run(bank) == 0
    code = "LIMIT_EXCEEDED" if cause == "limit" else "PAYEE_ACCOUNT_UNAVAILABLE"
    assert bank.occurrences(order_id) == [("2026-11-24", None, code)]
    assert (bank.balance(alice.account), bank.usage(alice.id)) == before
    later = view(bank, alice, order_id)
    assert later.status == "active" and later.next_run_at == bank.clock.now() + timedelta(days=1)
    sound(bank.engine)


def test_an_order_ends_after_its_count_or_its_end_date(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    counted = set_up(bank, alice, bob, 100 * YUAN, daily(count=2))
    carol = bank.account(bank.person(), funds=0)
    wait_to_resend(bank.clock)
    ending = set_up(bank, alice, carol, 100 * YUAN, daily(end_on=TOMORROW))
    bank.at(2026, 11, 24, 9, 0)
    assert run(bank) == 2
    assert view(bank, alice, ending).status == "finished"
    bank.at(2026, 11, 25, 9, 0)
    assert run(bank) == 1
    done = view(bank, alice, counted)
    assert (done.status, done.runs, done.next_run_at) == ("finished", 2, None)
    bank.at(2026, 11, 30, 9, 0)
    assert run(bank) == 0
    assert (bank.balance(bob), bank.balance(carol)) == (200 * YUAN, 100 * YUAN)


def test_an_order_made_once_runs_once_at_its_time(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    order_id = set_up(bank, alice, bob, 100 * YUAN, Schedule("once", TODAY, time(15, 30)))
    bank.at(2026, 11, 23, 15, 29)
    assert run(bank) == 0
    bank.at(2026, 11, 23, 15, 30)
    assert run(bank) == 1
    assert view(bank, alice, order_id).status == "finished"
    bank.clock.advance(timedelta(days=40))
    assert run(bank) == 0 and bank.balance(bob) == 100 * YUAN


def test_occurrences_missed_while_no_worker_ran_are_made_late_in_order(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    order_id = set_up(bank, alice, bob, 100 * YUAN, daily())
    bank.at(2026, 11, 26, 12, 0)
    assert run(bank) == 3
    assert [d for d, _, _ in bank.occurrences(order_id)] == [
        "2026-11-24", "2026-11-25", "2026-11-26",
    ]  # fmt: skip
    next_run = view(bank, alice, order_id).next_run_at
    assert next_run is not None
    assert next_run.astimezone(orders.payments.BUSINESS_TZ).date() == date(2026, 11, 27)


# -- cancelling ---------------------------------------------------------------------------------
def test_a_cancelled_order_never_runs_and_someone_elses_cannot_be_cancelled(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    order_id = set_up(bank, alice, bob, 100 * YUAN, daily())
    mallory = Holder(bank, funds=0)
    theirs = orders.cancel(customer_id=mallory.id, order_id=order_id, channel="online")
    with pytest.raises(EbankError) as caught:
        bank.writer.execute(theirs)
    assert caught.value.code == "STANDING_ORDER_NOT_FOUND"
    with bank.engine.connect() as conn:
        assert orders.orders_of(conn, mallory.id) == []
        with pytest.raises(EbankError):
            orders.order_of(conn, customer_id=mallory.id, order_id=order_id)
    assert view(bank, alice, order_id).status == "active"
    mine = orders.cancel(customer_id=alice.id, order_id=order_id, channel="online")
    assert bank.writer.execute(mine) == order_id
    assert bank.writer.execute(mine) == order_id  # again: nothing more
    cancelled = view(bank, alice, order_id)
    assert (cancelled.status, cancelled.next_run_at) == ("cancelled", None)
    bank.at(2026, 11, 24, 9, 0)
    assert run(bank) == 0 and bank.balance(bob) == 0


def test_a_payee_an_order_pays_is_removed_only_after_the_order_ends(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    order_id = set_up(bank, alice, bob, 100 * YUAN, daily())
    payee_id = view(bank, alice, order_id).payee.id
    remove = payees.remove(customer_id=alice.id, payee_id=payee_id, channel="online")
    with pytest.raises(EbankError) as caught:
        bank.writer.execute(remove)
    assert caught.value.code == "PAYEE_ENTRY_IN_USE"
    bank.writer.execute(orders.cancel(customer_id=alice.id, order_id=order_id, channel="online"))
    bank.writer.execute(remove)
    assert view(bank, alice, order_id).payee.id == payee_id  # the history still names it


# -- setting up ---------------------------------------------------------------------------------
def test_setting_up_takes_the_code_sent_for_exactly_this_order_once(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    asked = request(alice, alice.add_payee(bob), 100 * YUAN, daily())
    refused(bank, alice, "STRONGER_FACTOR_REQUIRED", asked)
    confirmation = sms(bank, asked)
    assert "100.00" in sms_texts(bank.engine, alice.id, "code")[-1]
    refused(bank, alice, "AUTH_FAILED", replace(asked, amount=10_000 * YUAN), confirmation)
    wait_to_resend(bank.clock)
    confirmation = sms(bank, asked)
    made = create(bank, asked, confirmation, key="once").value()
    assert create(bank, asked, confirmation, key="once").value() == made  # a repeat
    with pytest.raises(EbankError) as caught:
        create(bank, asked, confirmation, key="twice").value()
    assert caught.value.code == "AUTH_FAILED"  # the code is spent
    with bank.engine.connect() as conn:
        assert [o.id for o in orders.orders_of(conn, alice.id)] == [made]


def test_an_order_its_factor_could_never_pay_is_refused(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    asked = request(alice, alice.add_payee(bob), 30_000 * YUAN, daily())  # SMS: ¥20,000 a day
    with bank.engine.connect() as conn:
        quoted = orders.quote(conn, VAULT, asked, now=bank.clock.now())
    assert "sms" not in quoted.methods and "token" in quoted.methods
    refused(bank, alice, "STRONGER_FACTOR_REQUIRED", asked, sms(bank, asked))


def test_an_order_to_an_own_account_needs_no_factor(bank: StandingBank, alice: Holder) -> None:
    savings = bank.account(alice.id, "II", funds=0)
    asked = request(alice, alice.add_payee(savings), 100 * YUAN, daily())
    with bank.engine.connect() as conn:
        quoted = orders.quote(conn, VAULT, asked, now=bank.clock.now())
    assert (quoted.kind, quoted.methods) == ("own", ())
    assert quoted.first_run_at == Schedule("daily", TOMORROW, NINE).instant(TOMORROW)
    order_id = create(bank, asked, Confirmation()).value()
    bank.at(2026, 11, 24, 9, 0)
    assert run(bank) == 1 and bank.balance(savings) == 100 * YUAN
    assert view(bank, alice, order_id).method is None


def test_nobody_sets_up_an_order_to_someone_elses_payee_or_from_someone_elses_account(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    mallory = Holder(bank, funds=0)
    alices_payee = alice.add_payee(bob)
    theirs = request(mallory, alices_payee, 100 * YUAN, daily())
    with pytest.raises(EbankError) as caught:
        bank.writer.execute(orders.send_code(VAULT, theirs))
    assert caught.value.code == "PAYEE_ENTRY_NOT_FOUND"
    refused(bank, mallory, "PAYEE_ENTRY_NOT_FOUND", theirs)
    from_alice = replace(request(mallory, mallory.add_payee(bob), 100 * YUAN, daily()),
                         from_account=alice.account.number)  # fmt: skip
    refused(bank, mallory, "ACCOUNT_NOT_FOUND", from_alice)
    bank.writer.execute(payees.remove(customer_id=alice.id, payee_id=alices_payee,
                                      channel="online"))  # fmt: skip
    refused(bank, alice, "PAYEE_ENTRY_NOT_FOUND", request(alice, alices_payee, 100, daily()))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"schedule": Schedule("once", TODAY, NINE)}, "INVALID_INPUT"),  # 09:00 has passed
        ({"schedule": daily(TODAY + timedelta(days=400))}, "INVALID_INPUT"),
        ({"schedule": Schedule("weekly", TOMORROW, NINE)}, "INVALID_INPUT"),
        ({"amount": 0}, "INVALID_AMOUNT"),
        ({"amount": 1.5}, "INVALID_AMOUNT"),
        ({"memo": "x" * 61}, "INVALID_INPUT"),
    ],
)
def test_a_malformed_order_is_refused_and_creates_nothing(
    bank: StandingBank, alice: Holder, bob: CustomerAccount, change: dict[str, object], code: str
) -> None:
    asked = replace(request(alice, alice.add_payee(bob), 100 * YUAN, daily()), **change)  # type: ignore[arg-type]
    refused(bank, alice, code, asked)


def test_an_order_starting_in_the_past_is_refused_before_any_factor(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    """A start long past would have the writer walk every day since it, for anyone asking."""
    for start in (TODAY - timedelta(days=1), date(1, 1, 1)):
        wait_to_resend(bank.clock)
        asked = request(alice, alice.add_payee(bob), 100 * YUAN, daily(start))
        with bank.engine.connect() as conn, pytest.raises(EbankError) as caught:
            orders.quote(conn, VAULT, asked, now=bank.clock.now())
        assert caught.value.details["reason"] == "an order starts today or later"
        refused(bank, alice, "INVALID_INPUT", asked)
