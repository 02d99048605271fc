"""Direct debit: a mandate signed with the SMS code sent for exactly it; debits by its creditor
only, while active and valid, up to its maximum, once per period, once per reference; the
account's tier limits apply, e-banking limits do not. Every refusal changes nothing. SQLite
and PostgreSQL."""

from dataclasses import replace
from datetime import date, timedelta

import pytest

from ebank.accounts.models import CustomerAccount
from ebank.bills import service as bills
from ebank.core.errors import EbankError
from ebank.security.service import Checked
from ebank.standing import mandates
from ebank.standing.models import Creditor, MandateRequest
from tests.standing.conftest import YUAN, Holder, StandingBank
from tests.support import STAFF, VAULT, last_code, last_sms, race_two_writers, sound, wait_to_resend

VALID_UNTIL = date(2027, 12, 31)


class Company:
    """An enterprise with a settlement account, collecting under mandates."""

    def __init__(self, bank: StandingBank, n: int = 1) -> None:
        self.bank = bank
        self.id = bank.company(n)
        self.account = bank.account(self.id, "corporate", funds=0)
        self.creditor = Creditor(customer_id=self.id)

    def debit(self, mandate_id: int, amount: int, reference: str, key: str | None = None) -> int:
        return self.bank.writer.execute(
            mandates.debit(
                VAULT, creditor=self.creditor, mandate_id=mandate_id, amount=amount,
                reference=reference, idempotency_key=key or reference, channel="online",
            )
        )  # fmt: skip


@pytest.fixture
def water(bank: StandingBank) -> Company:
    return Company(bank)


def asked(holder: Holder, company: Company, **change: object) -> MandateRequest:
    r = MandateRequest(
        customer_id=holder.id, channel="online", account=holder.account.number,
        max_amount=300 * YUAN, frequency="monthly", valid_until=VALID_UNTIL,
        creditor_account=company.account.number,
    )  # fmt: skip
    return replace(r, **change)  # type: ignore[arg-type]


def code_for(bank: StandingBank, r: MandateRequest) -> str:
    bank.writer.execute(mandates.send_code(VAULT, r))
    return last_code(bank.engine)


def sign(bank: StandingBank, r: MandateRequest, code: str, key: str = "m1") -> Checked[int]:
    return bank.writer.execute(mandates.sign(VAULT, r, code=code, idempotency_key=key))


def signed(bank: StandingBank, r: MandateRequest) -> int:
    return sign(bank, r, code_for(bank, r), key=f"m-{r.max_amount}-{r.frequency}").value()


def refused(company: Company, code: str, mandate_id: int, amount: int, reference: str) -> None:
    """The debit is refused with `code`, and no money moved anywhere."""
    bank = company.bank
    before = bank.balance(company.account), len(bank.payments_of(company.id))
    with pytest.raises(EbankError) as caught:
        company.debit(mandate_id, amount, reference)
    assert caught.value.code == code, caught.value
    assert (bank.balance(company.account), len(bank.payments_of(company.id))) == before


# -- signing -------------------------------------------------------------------------------------
def test_a_mandate_is_signed_with_the_code_sent_for_exactly_it_once(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    r = asked(alice, water)
    code = code_for(bank, r)
    assert "300.00" in last_sms(bank.engine) and "福州示例1号" in last_sms(bank.engine)
    others = (
        replace(r, max_amount=3_000 * YUAN), replace(r, frequency="any"),
        replace(r, valid_until=VALID_UNTIL + timedelta(days=1)),
    )  # fmt: skip
    for n, other in enumerate(others):
        with pytest.raises(EbankError) as caught:
            sign(bank, other, code, key=f"other-{n}").value()
        assert caught.value.code in ("AUTH_FAILED", "AUTH_FAILED_WARNING")  # counted tries
    wait_to_resend(bank.clock)
    code = code_for(bank, r)
    mandate_id = sign(bank, r, code).value()
    assert sign(bank, r, code).value() == mandate_id  # a repeat under the same key
    with pytest.raises(EbankError) as caught:
        sign(bank, r, code, key="m2").value()
    assert caught.value.code == "AUTH_FAILED"  # the code is spent
    with bank.engine.connect() as conn:
        [mine] = mandates.mandates_of(conn, alice.id, today=date(2026, 11, 23))
        [theirs] = mandates.mandates_for(conn, water.id, today=date(2026, 11, 23))
    assert (mine.id, mine.status, mine.account, mine.max_amount) == (
        mandate_id, "active", alice.account.number, 300 * YUAN,
    )  # fmt: skip
    assert mine.creditor_account == theirs.creditor_account != water.account.number
    assert theirs.account != alice.account.number and theirs.account.endswith(
        alice.account.number[-4:]
    )


def test_a_mandate_names_an_enterprises_settlement_account_here(
    bank: StandingBank, alice: Holder, water: Company, bob: CustomerAccount
) -> None:
    for creditor_account in (bob.number, "6217001999999999999"):
        r = asked(alice, water, creditor_account=creditor_account)
        with pytest.raises(EbankError) as caught:
            bank.writer.execute(mandates.send_code(VAULT, r))
        assert caught.value.code == "CREDITOR_NOT_ELIGIBLE"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"max_amount": 0}, "INVALID_AMOUNT"),
        ({"frequency": "weekly"}, "INVALID_INPUT"),
        ({"valid_until": date(2026, 11, 22)}, "INVALID_INPUT"),
        ({"valid_until": date(2040, 1, 1)}, "INVALID_INPUT"),
        ({"biller": "WATER"}, "INVALID_INPUT"),  # both a creditor account and a biller
    ],
)
def test_a_malformed_mandate_is_refused(
    bank: StandingBank, alice: Holder, water: Company, change: dict[str, object], code: str
) -> None:
    with pytest.raises(EbankError) as caught:
        sign(bank, asked(alice, water, **change), "123456").value()
    assert caught.value.code == code
    with bank.engine.connect() as conn:
        assert mandates.mandates_of(conn, alice.id, today=date(2026, 11, 23)) == []


# -- debits -------------------------------------------------------------------------------------
def test_the_creditor_debits_up_to_the_maximum_once_per_reference(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    mandate_id = signed(bank, asked(alice, water, frequency="any"))
    refused(water, "MANDATE_AMOUNT_EXCEEDED", mandate_id, 300 * YUAN + 1, "2026-11")
    debit_id = water.debit(mandate_id, 123_45, "2026-11")
    assert water.debit(mandate_id, 123_45, "2026-11", key="retry") == debit_id  # same debit
    refused(water, "IDEMPOTENCY_CONFLICT", mandate_id, 200 * YUAN, "2026-11")
    assert bank.balance(water.account) == 123_45
    assert bank.balance(alice.account) == 1_000_000 * YUAN - 123_45
    [payment] = bank.payments_of(alice.id)
    assert (payment.kind, payment.channel, payment.method, payment.status) == (
        "debit", "counter", None, "completed",
    )  # fmt: skip
    with bank.engine.connect() as conn:
        debit = mandates.debit_of(conn, creditor=water.creditor, debit_id=debit_id)
        with pytest.raises(EbankError):
            mandates.debit_of(conn, creditor=Creditor(customer_id=alice.id), debit_id=debit_id)
    assert (debit.payment_id, debit.reference, debit.payment_reference) == (
        payment.id, "2026-11", payment.reference,
    )  # fmt: skip
    # "any": another reference is another debit.
    water.debit(mandate_id, 100 * YUAN, "2026-11-b")
    assert bank.balance(water.account) == 223_45
    sound(bank.engine)


def test_a_monthly_mandate_debits_once_a_month(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    mandate_id = signed(bank, asked(alice, water))
    water.debit(mandate_id, 100 * YUAN, "bill-11")
    refused(water, "MANDATE_PERIOD_USED", mandate_id, 100 * YUAN, "bill-11b")
    bank.at(2026, 12, 1)
    water.debit(mandate_id, 100 * YUAN, "bill-12")
    assert bank.balance(water.account) == 200 * YUAN


def test_a_yearly_mandate_debits_once_a_calendar_year(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    mandate_id = signed(bank, asked(alice, water, frequency="yearly"))
    water.debit(mandate_id, 100 * YUAN, "2026")
    bank.at(2026, 12, 31, 23, 59)
    refused(water, "MANDATE_PERIOD_USED", mandate_id, 100 * YUAN, "2026b")
    bank.at(2027, 1, 1, 0, 0)
    water.debit(mandate_id, 100 * YUAN, "2027")


def test_two_debits_in_one_period_at_once_pass_once(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    mandate_id = signed(bank, asked(alice, water))

    def debit(reference: str) -> object:
        return mandates.debit(
            VAULT, creditor=water.creditor, mandate_id=mandate_id, amount=100 * YUAN,
            reference=reference, idempotency_key=reference, channel="online",
        )  # fmt: skip

    [(mine, theirs)] = race_two_writers(
        bank.writer,
        bank.engine,
        bank.clock,
        [debit("a")],
        [debit("b")],  # type: ignore[list-item]
    )
    outcomes = sorted([type(mine).__name__, type(theirs).__name__])
    assert outcomes == ["EbankError", "int"]
    error = mine if isinstance(mine, EbankError) else theirs
    assert error.code == "MANDATE_PERIOD_USED"
    assert bank.balance(water.account) == 100 * YUAN
    sound(bank.engine)


def test_only_the_mandates_creditor_debits_it(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    mandate_id = signed(bank, asked(alice, water))
    gas = Company(bank, 2)
    refused(gas, "MANDATE_NOT_FOUND", mandate_id, 100 * YUAN, "x")
    refused(gas, "MANDATE_NOT_FOUND", 10**9, 100 * YUAN, "y")
    with bank.engine.connect() as conn:
        assert mandates.mandates_for(conn, gas.id, today=date(2026, 11, 23)) == []
    assert bank.balance(alice.account) == 1_000_000 * YUAN


def test_a_revoked_mandate_is_debited_no_more_and_only_its_signer_revokes_it(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    mandate_id = signed(bank, asked(alice, water, frequency="any"))
    water.debit(mandate_id, 100 * YUAN, "before")
    mallory = Holder(bank, funds=0)
    with pytest.raises(EbankError) as caught:
        bank.writer.execute(
            mandates.revoke(customer_id=mallory.id, mandate_id=mandate_id, channel="online")
        )
    assert caught.value.code == "MANDATE_NOT_FOUND"
    revoke = mandates.revoke(customer_id=alice.id, mandate_id=mandate_id, channel="online")
    assert bank.writer.execute(revoke) == mandate_id
    assert bank.writer.execute(revoke) == mandate_id  # again: nothing more
    refused(water, "MANDATE_REVOKED", mandate_id, 100 * YUAN, "after")
    # The debit made before is still the same debit when asked again.
    water.debit(mandate_id, 100 * YUAN, "before")
    assert bank.balance(water.account) == 100 * YUAN
    with bank.engine.connect() as conn:
        [view] = mandates.mandates_of(conn, alice.id, today=date(2026, 11, 23))
    assert (view.status, view.revoked_at) == ("revoked", bank.clock.now())


def test_an_expired_mandate_is_debited_no_more(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    mandate_id = signed(bank, asked(alice, water, valid_until=date(2026, 11, 30)))
    bank.at(2026, 11, 30, 23, 59)
    water.debit(mandate_id, 100 * YUAN, "last-day")
    bank.at(2026, 12, 1, 0, 0)
    refused(water, "MANDATE_EXPIRED", mandate_id, 100 * YUAN, "too-late")
    with bank.engine.connect() as conn:
        [view] = mandates.mandates_of(conn, alice.id, today=date(2026, 12, 1))
    assert view.status == "expired"


def test_a_debit_without_the_money_changes_nothing_and_may_be_retried(
    bank: StandingBank, water: Company
) -> None:
    poor = Holder(bank, funds=50 * YUAN)
    mandate_id = signed(bank, asked(poor, water))
    refused(water, "INSUFFICIENT_FUNDS", mandate_id, 100 * YUAN, "bill-11")
    bank.fund(poor.account, 100 * YUAN)
    water.debit(mandate_id, 100 * YUAN, "bill-11")
    assert bank.balance(poor.account) == 50 * YUAN


def test_debits_use_no_e_banking_limit_but_the_accounts_tier_limit(
    bank: StandingBank, water: Company
) -> None:
    holder = Holder(bank, funds=20_000 * YUAN, tier="II")  # Type II: ¥10,000 a day to others
    mandate_id = signed(bank, asked(holder, water, max_amount=8_000 * YUAN, frequency="any"))
    water.debit(mandate_id, 8_000 * YUAN, "a")
    usage = bank.usage(holder.id)
    assert not any(scope.startswith(("channel:", "method:", "others")) for scope, _ in usage)
    assert sorted(usage.values()) == [8_000 * YUAN, 8_000 * YUAN]  # the tier: day and year
    refused(water, "LIMIT_EXCEEDED", mandate_id, 3_000 * YUAN, "b")
    water.debit(mandate_id, 2_000 * YUAN, "c")


def test_a_biller_debits_into_its_settlement_account(
    bank: StandingBank, alice: Holder, water: Company
) -> None:
    biller = bank.writer.execute(
        bills.register_biller(
            code="FZWATER", name_zh="福州自来水", name_en="Fuzhou Water", category="water",
            actor=STAFF,
        )
    )  # fmt: skip
    r = asked(alice, water, creditor_account=None, biller="FZWATER", frequency="any")
    mandate_id = signed(bank, r)
    refused(water, "MANDATE_NOT_FOUND", mandate_id, 100 * YUAN, "w1")
    as_biller = Creditor(biller="FZWATER")
    bank.writer.execute(
        mandates.debit(
            VAULT, creditor=as_biller, mandate_id=mandate_id, amount=100 * YUAN, reference="w1",
            idempotency_key="w1", channel="system",
        )
    )  # fmt: skip
    [payment] = bank.payments_of(alice.id)
    assert (payment.kind, payment.payee_name, payment.amount) == ("debit", "福州自来水", 10_000)
    with bank.engine.connect() as conn:
        from ebank.ledger import queries

        assert queries.get_account(conn, account_id=biller.ledger_account_id).balance == 10_000
    sound(bank.engine)
