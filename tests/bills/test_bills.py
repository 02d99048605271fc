"""Bill payment (代缴费): the biller registry, inquiry through the simulated biller, paying a bill
or topping up a phone with the factor the limits service asks for, and the worker that tells
the biller: confirmed, refused (the money comes back) or unknown (asked again, charged once).
The attacks: a replayed key pays once, a code for other details fails, a bill is paid once even
when two pay it at once, someone else's account, bad input changes nothing. SQLite and
PostgreSQL."""

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ebank.accounts.models import CustomerAccount
from ebank.bills import service as bills
from ebank.bills.models import (
    TOPUP_AMOUNTS,
    Bill,
    Biller,
    BillerUnknown,
    BillPaymentRequest,
    BillPaymentView,
)
from ebank.bills.tables import bill_attempts, bill_payments, billers, sim_biller_payments
from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command, Writer
from ebank.ledger import queries
from ebank.payments import service as payments
from ebank.payments.models import Confirmation
from ebank.security.service import Checked
from tests.support import (
    STAFF,
    VAULT,
    Bank,
    code_of,
    last_code,
    last_sms,
    race_two_writers,
    sound,
    wait_to_resend,
)

YUAN = 100
HOME = "0591234567"  # a household's number at the power company
PHONE = "13905910001"


class BillsBank(Bank):
    def __init__(self, writer: Writer, engine: Engine, clock: FixedClock) -> None:
        super().__init__(writer, engine, clock)
        self.power = self.register("FZPOWER", "国网福州供电公司 (模拟)", "electricity")
        self.mobile = self.register("CMFJ", "中国移动福建公司 (模拟)", "phone")

    def register(self, code: str, name: str, category: str) -> Biller:
        return self.writer.execute(
            bills.register_biller(
                code=code, name_zh=name, name_en=f"{code} (simulated)", category=category,
                actor=STAFF,
            )
        )  # fmt: skip

    def inquire(self, biller: Biller, number: str) -> list[Bill]:
        with self.engine.connect() as conn:
            found = bills.inquire(conn, self.clock, biller=biller.code, number=number)
        return list(found.bills)

    def bill(self, number: str = HOME) -> Bill:
        [bill] = self.inquire(self.power, number)
        return bill

    def view(self, customer: int, payment_id: int) -> BillPaymentView:
        with self.engine.connect() as conn:
            return bills.bill_payment_of(conn, customer_id=customer, payment_id=payment_id)

    def deliver(self) -> int:
        return bills.deliver_bill_payments(self.writer, VAULT)

    def ledger_balance(self, code: str) -> int:
        with self.engine.connect() as conn:
            return queries.get_account(conn, code=code).balance

    def count(self, table: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def attempts(self, payment_id: int) -> list[str]:
        with self.engine.connect() as conn:
            query = (
                select(bill_attempts.c.outcome)
                .where(bill_attempts.c.payment_id == payment_id)
                .order_by(bill_attempts.c.attempt)
            )
            return list(conn.execute(query).scalars())


class Payer:
    """A customer enrolled online with a funded Type I account, paying bills."""

    def __init__(self, bank: BillsBank, account: CustomerAccount | None = None) -> None:
        self.bank = bank
        self.id = bank.person()
        self.account = account or bank.account(self.id, funds=10_000 * YUAN)
        bank.enrol(self.id)

    def request(
        self, biller: Biller, number: str, amount: int, bill_id: str | None = None
    ) -> BillPaymentRequest:
        return BillPaymentRequest(
            customer_id=self.id, channel="online", from_account=self.account.number,
            biller=biller.code, number=number, amount=amount, bill_id=bill_id,
        )  # fmt: skip

    def bill_request(self, bill: Bill, number: str = HOME) -> BillPaymentRequest:
        return self.request(self.bank.power, number, bill.amount, bill.bill_id)

    def sms(self, request: BillPaymentRequest) -> Confirmation:
        self.bank.writer.execute(bills.send_code(VAULT, request))
        return Confirmation("sms", last_code(self.bank.engine))

    def pay(
        self, request: BillPaymentRequest, confirmation: Confirmation | None = None,
        key: str = "k1",
    ) -> Checked[int]:  # fmt: skip
        return self.bank.writer.execute(self.command(request, confirmation, key))

    def command(
        self, request: BillPaymentRequest, confirmation: Confirmation | None = None,
        key: str = "k1",
    ) -> Command[Checked[int]]:  # fmt: skip
        chosen = confirmation or self.sms(request)
        return bills.pay(VAULT, self.bank.clock, request, chosen, idempotency_key=key)

    def balance(self) -> int:
        return self.bank.balance(self.account)


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock) -> BillsBank:
    return BillsBank(writer, engine, clock)


@pytest.fixture
def alice(bank: BillsBank) -> Payer:
    return Payer(bank)


def refused(bank: BillsBank, payer: Payer, code: str, request: BillPaymentRequest,
            confirmation: Confirmation | None = None) -> EbankError:  # fmt: skip
    """The payment is refused with `code`, and neither money nor a bill payment moved."""
    before = payer.balance(), bank.count(bill_payments)
    with pytest.raises(EbankError) as caught:
        payer.pay(request, confirmation or Confirmation(), key=f"refused-{code}").value()
    assert caught.value.code == code, caught.value
    assert (payer.balance(), bank.count(bill_payments)) == before
    return caught.value


# -- the registry and inquiry ------------------------------------------------------------------
def test_registering_a_biller_opens_its_settlement_account_and_is_audited(
    bank: BillsBank, engine: Engine
) -> None:
    with engine.connect() as conn:
        listed = bills.billers(conn)
        account = queries.get_account(conn, code="BILLER-FZPOWER")
        actions = conn.execute(
            select(audit_log.c.subject).where(audit_log.c.action == "biller.register")
        ).scalars()
        assert sorted(actions) == ["biller:CMFJ", "biller:FZPOWER"]
    assert [b.code for b in listed] == ["FZPOWER", "CMFJ"]  # by category: electricity, phone
    assert (account.id, account.normal_side, account.balance) == (
        bank.power.ledger_account_id, "C", 0,
    )  # fmt: skip
    again = bank.writer.submit(
        bills.register_biller(
            code="FZPOWER", name_zh="另一家", name_en="Another", category="water", actor=STAFF
        )
    )
    assert code_of(again.exception()) == "BILLER_EXISTS"
    for bad in ({"code": "fz-power"}, {"category": "rent"}, {"adapter": "http"},
                {"name_zh": "a=b"}):  # fmt: skip
        params: dict[str, Any] = {"code": "FZWATER", "name_zh": "福州水务 (模拟)",
                                  "name_en": "Fuzhou Water", "category": "water"} | bad  # fmt: skip
        failed = bank.writer.submit(bills.register_biller(**params, actor=STAFF))
        assert code_of(failed.exception()) == "INVALID_INPUT", bad
    assert bank.count(billers) == 2


def test_every_number_has_last_months_bill_the_same_at_every_inquiry(bank: BillsBank) -> None:
    bill = bank.bill()
    assert (bill.period, bill.due_date, bill.paid) == ("2026-10", date(2026, 11, 25), False)
    assert 50 * YUAN <= bill.amount <= 400 * YUAN
    assert "*" in bill.holder and len(bill.holder) == 3
    assert bank.bill() == bill
    other = bank.bill("0591234568")
    assert other.bill_id != bill.bill_id
    bank.clock.advance(timedelta(days=10))  # December: November's bill
    assert bank.bill().period == "2026-11"


def test_a_phone_has_no_bill_but_the_amounts_it_can_be_topped_up_by(bank: BillsBank) -> None:
    with bank.engine.connect() as conn:
        found = bills.inquire(conn, bank.clock, biller="CMFJ", number="139 0591 0001")
    assert (found.number, found.bills, found.biller.topup_amounts) == (PHONE, (), TOPUP_AMOUNTS)
    assert bank.power.topup_amounts == ()
    assert TOPUP_AMOUNTS == (1000, 2000, 3000, 5000, 10000, 20000, 30000, 50000)


@pytest.mark.parametrize(
    ("biller", "number", "code"),
    [
        ("FZPOWER", "0591230000", "BILL_ACCOUNT_NOT_FOUND"),
        ("CMFJ", "13905910000", "BILL_ACCOUNT_NOT_FOUND"),
        ("NOPE", HOME, "BILLER_NOT_FOUND"),
        ("FZPOWER", "12ab5678", "INVALID_INPUT"),
        ("CMFJ", "23905910001", "INVALID_INPUT"),
    ],
)
def test_an_inquiry_the_biller_cannot_answer_says_why(
    bank: BillsBank, biller: str, number: str, code: str
) -> None:
    with bank.engine.connect() as conn, pytest.raises(EbankError) as caught:
        bills.inquire(conn, bank.clock, biller=biller, number=number)
    assert caught.value.code == code


def test_an_inactive_biller_is_neither_listed_nor_paid(bank: BillsBank, alice: Payer) -> None:
    with bank.engine.begin() as conn:
        conn.execute(billers.update().where(billers.c.code == "CMFJ").values(active=False))
        assert [b.code for b in bills.billers(conn)] == ["FZPOWER"]
    refused(bank, alice, "BILLER_NOT_FOUND", alice.request(bank.mobile, PHONE, 50 * YUAN))


# -- paying --------------------------------------------------------------------------------------
def test_a_bill_paid_with_an_sms_code_moves_the_money_once_and_the_biller_confirms_it(
    bank: BillsBank, alice: Payer
) -> None:
    bill = bank.bill()
    request = alice.bill_request(bill)
    confirmation = alice.sms(request)
    assert "国网福州供电公司" in last_sms(bank.engine) and "缴费" in last_sms(bank.engine)
    first = alice.pay(request, confirmation, key="once")
    payment_id = first.value()
    again = alice.pay(request, confirmation, key="once")  # a retry: the first answer
    assert again.value() == payment_id
    assert alice.balance() == 10_000 * YUAN - bill.amount
    assert bank.ledger_balance("BILLER-FZPOWER") == bill.amount
    with bank.engine.connect() as conn:
        paid = payments.payment_of(conn, customer_id=alice.id, payment_id=payment_id)
    assert (paid.kind, paid.status, paid.method, paid.memo) == ("bill", "completed", "sms",
                                                                "电费 2026-10")  # fmt: skip
    assert paid.payee_account == "FZPOWE*******4567"
    view = bank.view(alice.id, payment_id)
    assert (view.status, view.bill_id, view.number, view.confirmation) == (
        "pending_biller", bill.bill_id, "******4567", None,
    )  # fmt: skip
    assert bank.usage(alice.id)[("method:sms", "2026-11-23")] == bill.amount
    assert bank.deliver() == 1
    view = bank.view(alice.id, payment_id)
    assert view.status == "paid" and view.confirmation and view.confirmation.startswith("FZPOWER")
    assert "已成功" in last_sms(bank.engine) and "4567" in last_sms(bank.engine)
    assert view.receipt_number and view.receipt_number.startswith("R20261123")
    assert view.settled_at == bank.clock.now() and view.reference == paid.reference
    assert bank.attempts(payment_id) == ["confirmed"]
    assert bank.bill().paid
    assert bank.deliver() == 0
    assert alice.balance() == 10_000 * YUAN - bill.amount
    sound(bank.engine)


def test_each_status_a_bill_payment_enters_is_announced(bank: BillsBank, alice: Payer) -> None:
    payment_id = alice.pay(alice.bill_request(bank.bill())).value()
    bank.deliver()
    with bank.engine.connect() as conn:
        keys = conn.execute(
            select(outbox_events.c.key, outbox_events.c.payload)
            .where(outbox_events.c.topic == "bill.payment")
            .order_by(outbox_events.c.id)
        ).all()
    assert [key for key, _ in keys] == [str(payment_id)] * 2
    assert ['"pending_biller"' in keys[0][1], '"paid"' in keys[1][1]] == [True, True]


def test_a_code_sent_for_another_amount_number_or_biller_pays_nothing(
    bank: BillsBank, alice: Payer
) -> None:
    topup = alice.request(bank.mobile, PHONE, 50 * YUAN)
    confirmation = alice.sms(topup)
    for other, code in (
        (replace(topup, amount=100 * YUAN), "AUTH_FAILED"),
        (replace(topup, number="13905910002"), "AUTH_FAILED"),
        (alice.bill_request(bank.bill()), "AUTH_FAILED_WARNING"),  # two more and it locks
    ):
        refused(bank, alice, code, other, confirmation)
    assert alice.pay(topup, confirmation).value()  # three wrong tries leave the code usable


def test_a_bill_payment_needs_a_one_time_factor(bank: BillsBank, alice: Payer) -> None:
    refused(bank, alice, "STRONGER_FACTOR_REQUIRED", alice.bill_request(bank.bill()),
            Confirmation())  # fmt: skip


def test_a_bill_already_paid_is_refused_before_money_moves(bank: BillsBank, alice: Payer) -> None:
    bill = bank.bill()
    request = alice.bill_request(bill)
    alice.pay(request, key="first").value()
    wait_to_resend(bank.clock)
    # With the biller, not yet confirmed: our own record says it is paid.
    refused(bank, alice, "BILL_ALREADY_PAID", request, alice.sms(request))
    bank.deliver()
    # Confirmed: the biller says so too, to anybody.
    bob = Payer(bank)
    refused(bank, bob, "BILL_ALREADY_PAID", bob.bill_request(bill), bob.sms(bob.bill_request(bill)))
    assert alice.balance() == 10_000 * YUAN - bill.amount


def test_two_customers_paying_one_bill_at_once_pay_it_once(
    bank: BillsBank, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    bill = bank.bill()
    alice, bob = Payer(bank), Payer(bank)
    mine = alice.command(alice.bill_request(bill))
    theirs = bob.command(bob.bill_request(bill))
    [(first, second)] = race_two_writers(writer, engine, clock, [mine], [theirs])
    outcomes = sorted(code_of(o) for o in (first, second))
    assert outcomes == ["BILL_ALREADY_PAID", "ok"]
    assert alice.balance() + bob.balance() == 20_000 * YUAN - bill.amount
    assert bank.count(bill_payments) == 1
    sound(engine)


def test_a_bill_is_paid_in_full(bank: BillsBank, alice: Payer) -> None:
    bill = bank.bill()
    short = replace(alice.bill_request(bill), amount=bill.amount - 1)
    error = refused(bank, alice, "BILL_AMOUNT_MISMATCH", short, alice.sms(short))
    assert error.details["due"] == f"{bill.amount // 100}.{bill.amount % 100:02d}"


def test_someone_elses_account_pays_nothing(bank: BillsBank, alice: Payer) -> None:
    mallory = Payer(bank)
    stolen = replace(mallory.bill_request(bank.bill()), from_account=alice.account.number)
    with pytest.raises(EbankError) as caught:
        bank.writer.execute(bills.send_code(VAULT, stolen))
    assert caught.value.code == "ACCOUNT_NOT_FOUND"
    refused(bank, mallory, "ACCOUNT_NOT_FOUND", stolen, Confirmation("sms", "123456"))
    assert alice.balance() == 10_000 * YUAN


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": 0}, "INVALID_AMOUNT"),
        ({"amount": -100}, "INVALID_AMOUNT"),
        ({"amount": "100.00"}, "INVALID_AMOUNT"),
        ({"amount": 10**20}, "INVALID_AMOUNT"),
        ({"biller": "NOPE"}, "BILLER_NOT_FOUND"),
        ({"biller": None}, "INVALID_INPUT"),
        ({"number": "05912345ab"}, "INVALID_INPUT"),
        ({"number": "12345"}, "INVALID_INPUT"),
        ({"number": 591234567}, "INVALID_INPUT"),
        ({"bill_id": None}, "INVALID_INPUT"),
        ({"bill_id": "202610DEADBEEF"}, "BILL_NOT_FOUND"),
        ({"bill_id": "2026-10/../x"}, "INVALID_INPUT"),
        ({"number": "0591230000"}, "BILL_ACCOUNT_NOT_FOUND"),
        ({"from_account": "6217000000000000000"}, "ACCOUNT_NOT_FOUND"),
    ],
)
def test_bad_input_changes_nothing(
    bank: BillsBank, alice: Payer, change: dict[str, Any], code: str
) -> None:
    request = replace(alice.bill_request(bank.bill()), **change)
    before = bank.count(outbox_events)
    refused(bank, alice, code, request, Confirmation("sms", "123456"))
    assert bank.count(outbox_events) == before


def test_a_phone_is_topped_up_by_an_offered_amount_any_number_of_times(
    bank: BillsBank, alice: Payer
) -> None:
    for n, amount in enumerate((50 * YUAN, 100 * YUAN)):
        request = alice.request(bank.mobile, PHONE, amount)
        payment_id = alice.pay(request, key=f"top-{n}").value()
        assert bank.view(alice.id, payment_id).number == "139****0001"
        wait_to_resend(bank.clock)
    assert bank.deliver() == 2
    statuses = [(v.status, v.bill_id, v.amount) for v in _history(bank, alice)]
    assert statuses == [("paid", None, 100 * YUAN), ("paid", None, 50 * YUAN)]
    assert alice.balance() == 9_850 * YUAN
    for amount in (15 * YUAN, 1_000 * YUAN, 50 * YUAN + 1):
        error = refused(bank, alice, "TOPUP_AMOUNT_NOT_OFFERED",
                        alice.request(bank.mobile, PHONE, amount))  # fmt: skip
        assert "500.00" in error.message("en")
    with_bill = replace(alice.request(bank.mobile, PHONE, 50 * YUAN), bill_id="202610AAAAAAAA")
    refused(bank, alice, "INVALID_INPUT", with_bill)
    refused(bank, alice, "INVALID_INPUT", alice.request(bank.mobile, "0591234567", 50 * YUAN))


def _history(bank: BillsBank, payer: Payer) -> list[BillPaymentView]:
    with bank.engine.connect() as conn:
        return bills.bill_payments_of(conn, payer.id)


def test_history_shows_only_the_customers_own_bill_payments(bank: BillsBank, alice: Payer) -> None:
    bob = Payer(bank)
    mine = alice.pay(alice.request(bank.mobile, PHONE, 20 * YUAN)).value()
    bob.pay(bob.request(bank.mobile, PHONE, 30 * YUAN)).value()
    assert [v.payment_id for v in _history(bank, alice)] == [mine]
    with pytest.raises(EbankError) as caught:
        bank.view(bob.id, mine)
    assert caught.value.code == "PAYMENT_NOT_FOUND"


# -- the biller's answers --------------------------------------------------------------------------
def test_the_biller_refusing_gives_the_customer_the_money_back(
    bank: BillsBank, alice: Payer
) -> None:
    number = "0591239999"  # the simulated biller refuses every payment to it
    bill = bank.bill(number)
    payment_id = alice.pay(alice.bill_request(bill, number)).value()
    assert alice.balance() == 10_000 * YUAN - bill.amount
    assert bank.deliver() == 1
    view = bank.view(alice.id, payment_id)
    assert (view.status, view.failure_code, view.receipt_number) == (
        "refunded", "BILLER_REFUSED", None,
    )  # fmt: skip
    with bank.engine.connect() as conn:
        paid = payments.payment_of(conn, customer_id=alice.id, payment_id=payment_id)
    assert (paid.status, paid.failure_code) == ("returned", "BILLER_REFUSED")
    assert alice.balance() == 10_000 * YUAN
    assert bank.ledger_balance("BILLER-FZPOWER") == 0
    assert bank.attempts(payment_id) == ["refused"]
    assert bank.deliver() == 0
    sound(bank.engine)


def test_an_unknown_answer_is_asked_again_with_the_same_reference_and_charged_once(
    bank: BillsBank, alice: Payer
) -> None:
    number = "0591238888"  # the simulated biller's first answer to each payment is lost
    bill = bank.bill(number)
    payment_id = alice.pay(alice.bill_request(bill, number)).value()
    assert bank.deliver() == 1
    view = bank.view(alice.id, payment_id)
    assert (view.status, bank.attempts(payment_id)) == ("pending_biller", ["unknown"])
    assert bank.bill(number).paid  # the biller did take it
    assert bank.deliver() == 0  # not yet: asked again after the first wait
    bank.clock.advance(bills.RETRY[0])
    assert bank.deliver() == 1
    view = bank.view(alice.id, payment_id)
    assert (view.status, bank.attempts(payment_id)) == ("paid", ["unknown", "confirmed"])
    assert bank.count(sim_biller_payments) == 1
    with bank.engine.connect() as conn:
        kept = conn.execute(select(sim_biller_payments.c.confirmation)).scalar_one()
    assert view.confirmation == kept
    assert alice.balance() == 10_000 * YUAN - bill.amount
    sound(bank.engine)


def test_a_biller_that_does_not_answer_is_asked_again_later_and_later(
    bank: BillsBank, alice: Payer, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = alice.pay(alice.request(bank.mobile, PHONE, 50 * YUAN)).value()

    def broken(*args: object) -> None:
        raise TimeoutError("no answer")

    monkeypatch.setattr(bills, "adapter_for", broken)
    for wait in bills.RETRY + bills.RETRY[-1:]:
        assert bank.deliver() == 1
        bank.clock.advance(wait - timedelta(seconds=1))
        assert bank.deliver() == 0
        bank.clock.advance(timedelta(seconds=1))
    assert bank.attempts(payment_id) == ["unknown"] * (len(bills.RETRY) + 1)
    with bank.engine.connect() as conn:  # long since in the staff's queue, with its cause
        [stuck] = payments.exceptions(conn)
    assert (stuck.id, stuck.kind, stuck.failure_code) == (payment_id, "bill", "BILLER_UNAVAILABLE")
    monkeypatch.undo()
    assert bank.deliver() == 1
    assert bank.view(alice.id, payment_id).status == "paid"
    with bank.engine.connect() as conn:
        assert payments.exceptions(conn) == []


def test_a_bill_joins_the_staff_queue_only_after_its_third_unanswered_try(
    bank: BillsBank, alice: Payer, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice.pay(alice.request(bank.mobile, PHONE, 50 * YUAN)).value()

    def broken(*args: object) -> None:
        raise TimeoutError("no answer")

    monkeypatch.setattr(bills, "adapter_for", broken)
    queued = []
    for wait in bills.RETRY[: payments.STUCK_BILL_ATTEMPTS]:
        assert bank.deliver() == 1
        with bank.engine.connect() as conn:
            queued.append(len(payments.exceptions(conn)))
        bank.clock.advance(wait)
    assert queued == [0] * (payments.STUCK_BILL_ATTEMPTS - 1) + [1]


def test_a_worker_that_stopped_mid_call_is_taken_over_after_its_lease(
    bank: BillsBank, alice: Payer
) -> None:
    payment_id = alice.pay(alice.request(bank.mobile, PHONE, 50 * YUAN)).value()
    [claim] = bank.writer.execute(Command(lambda tx: bills._claim(tx, 10)))  # and then it died
    assert bank.deliver() == 0
    bank.clock.advance(bills.LEASE)
    assert bank.deliver() == 1
    assert bank.view(alice.id, payment_id).status == "paid"
    # The stopped worker's late answer records nothing.
    bank.writer.execute(bills._settle(VAULT, claim, BillerUnknown("late")))
    assert bank.attempts(payment_id) == ["confirmed"]
