"""Customer accounts: numbers with a Luhn check digit, the tier rules (one open Type I per
person, Type III's balance ceiling, corporate accounts for enterprises only), term deposits,
look-ups, races between openings, and the audit record of every opening.

Every database test runs on SQLite and PostgreSQL and ends with the ledger's invariants."""

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from ebank.accounts import service as accounts
from ebank.accounts.models import TYPE_III_CEILING, CustomerAccount
from ebank.accounts.tables import customer_accounts
from ebank.core import audit
from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log
from ebank.core.writer import Command, Writer
from ebank.customers.service import register_enterprise
from ebank.ledger import queries as Q
from ebank.ledger import service as ledger
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.ops import approvals
from tests.support import STAFF, VAULT, code_of, in_one_batch, person, race_two_writers, sound

CHECKER = "staff:9"
CREDIT_CODE = "91350100M000100Y43"
_keys = itertools.count()


# -- helpers ------------------------------------------------------------------------------
def enterprise(writer: Writer) -> int:
    view = writer.execute(
        register_enterprise(
            VAULT, name="福州示例科技有限公司", credit_code=CREDIT_CODE,
            legal_representative="欧阳锋", mobile="15900001111", actor=STAFF,
        )
    )  # fmt: skip
    return view.id


def opening(customer: Any, tier: Any, **kw: Any) -> Command[CustomerAccount]:
    return accounts.open_account(customer_id=customer, tier=tier, actor=STAFF, **kw)


def open_(writer: Writer, customer: int, tier: str, **kw: Any) -> CustomerAccount:
    return writer.execute(opening(customer, tier, **kw))


def counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (customer_accounts, ledger_accounts, audit_log)
        )


def refused(writer: Writer, engine: Engine, command: Command[Any], code: str) -> EbankError:
    """Run `command`, expect the error `code`, and that nothing was written."""
    before = counts(engine)
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    assert caught.value.code == code, caught.value
    assert counts(engine) == before
    return caught.value


def look(engine: Engine, number: str) -> CustomerAccount:
    with engine.connect() as conn:
        return accounts.get_account(conn, number=number)


def cash_account(writer: Writer) -> int:
    """The bank's internal account that funds customers' accounts in these tests."""
    view = writer.execute(
        ledger.command(
            lambda tx: ledger.open_account(
                tx, code="GL-CASH", name="cash", currency="CNY", kind="internal",
                normal_side="D", overdraft_allowed=True,
            )
        )
    )  # fmt: skip
    return view.id


def move(debit: int, credit: int, amount: int) -> Command[Any]:
    return ledger.transfer_command(
        debit=debit, credit=credit, amount=amount, scope="tests", key=f"k{next(_keys)}"
    )


def staff_action(writer: Writer, action: str, number: str) -> Any:
    """Propose and approve (by someone else) a maker-checker action on an account."""
    request = writer.execute(
        approvals.propose(action, {"account": number}, reason="test", maker=STAFF)
    )
    return writer.execute(approvals.approve(request, checker=CHECKER, note="ok"))


# -- Luhn ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sequence", [0, 1, 42, 12_345_678, 99_999_999_999])
def test_account_number_is_19_digits_prefix_sequence_and_luhn_digit(sequence):
    number = accounts.account_number(sequence)
    assert len(number) == 19 and number.isdigit()
    assert number.startswith(get_settings().account_number_prefix)
    assert int(number[7:18]) == sequence
    assert accounts.luhn_valid(number)


@pytest.mark.parametrize(
    "number", ["4539578763621486", "79927398713", "4111111111111111", "378282246310005", "00"]
)
def test_known_valid_numbers_pass_and_their_check_digit_is_computed(number):
    assert accounts.luhn_valid(number)
    assert accounts.luhn_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize(
    "number", ["4539578763621487", "79927398710", "4111111111111112", "", "0", "4539a78763621486"]
)
def test_wrong_check_digit_or_malformed_text_fails(number):
    assert not accounts.luhn_valid(number)


payloads = st.text(alphabet="0123456789", min_size=1, max_size=24)


@given(payloads, st.data())
def test_any_single_digit_change_is_detected(payload, data):
    number = payload + accounts.luhn_digit(payload)
    assert accounts.luhn_valid(number)
    at = data.draw(st.integers(0, len(number) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != number[at]]))
    assert not accounts.luhn_valid(number[:at] + digit + number[at + 1 :])


@given(st.text(alphabet="0123456789", min_size=1, max_size=24), st.data())
def test_any_swap_of_adjacent_different_digits_is_detected_except_09(payload, data):
    number = payload + accounts.luhn_digit(payload)
    pairs = [
        i
        for i in range(len(number) - 1)
        if number[i] != number[i + 1] and {number[i], number[i + 1]} != {"0", "9"}
    ]
    if not pairs:
        return
    i = data.draw(st.sampled_from(pairs))
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    assert not accounts.luhn_valid(swapped)


def test_swapping_09_is_the_miss_luhn_is_known_for():
    payload = "09"
    number = payload + accounts.luhn_digit(payload)
    assert accounts.luhn_valid(number) and accounts.luhn_valid("90" + number[2])


# -- opening: tiers -------------------------------------------------------------------------
def test_person_opens_type_i_ii_iii_and_enterprise_a_corporate_account(writer, engine):
    alice, company = person(writer), enterprise(writer)
    opened = [open_(writer, alice, t) for t in ("I", "II", "III")]
    opened.append(open_(writer, company, "corporate"))
    for account, (customer, tier) in zip(
        opened, [(alice, "I"), (alice, "II"), (alice, "III"), (company, "corporate")], strict=True
    ):
        assert (account.customer_id, account.tier, account.product) == (customer, tier, "demand")
        assert (account.status, account.currency, account.balance, account.available) == (
            "active", "CNY", 0, 0,
        )  # fmt: skip
        assert (account.maturity_date, account.rate_bp) == (None, None)
        assert len(account.number) == 19 and accounts.luhn_valid(account.number)
        assert look(engine, account.number) == account
    assert len({a.number for a in opened}) == 4
    with engine.connect() as conn:
        ceilings = [Q.get_account(conn, account_id=a.ledger_account_id).ceiling for a in opened]
        kinds = {Q.get_account(conn, account_id=a.ledger_account_id).kind for a in opened}
    assert ceilings == [None, None, TYPE_III_CEILING, None]
    assert kinds == {"customer"}
    sound(engine)


@pytest.mark.parametrize("tier", ["I", "II", "III"])
def test_enterprise_cannot_open_a_personal_tier(writer, engine, tier):
    company = enterprise(writer)
    refused(writer, engine, opening(company, tier), "INVALID_INPUT")
    sound(engine)


def test_person_cannot_open_a_corporate_account(writer, engine):
    alice = person(writer)
    refused(writer, engine, opening(alice, "corporate"), "INVALID_INPUT")
    refused(writer, engine, opening(alice, "corporate", product="term", term_months=12,
                                    rate_bp=150), "INVALID_INPUT")  # fmt: skip
    sound(engine)


def test_second_open_type_i_demand_account_is_refused(writer, engine):
    alice, bob = person(writer, 1), person(writer, 2)
    open_(writer, alice, "I")
    refused(writer, engine, opening(alice, "I"), "TYPE_I_EXISTS")
    # other tiers, and another person's Type I, are still fine
    open_(writer, alice, "II")
    open_(writer, alice, "III")
    open_(writer, bob, "I")
    sound(engine)


def test_after_the_type_i_is_closed_a_new_type_i_is_allowed(writer, engine):
    alice = person(writer)
    first = open_(writer, alice, "I")
    refused(writer, engine, opening(alice, "I"), "TYPE_I_EXISTS")
    assert staff_action(writer, "account.close", first.number) == "closed"
    assert look(engine, first.number).status == "closed"
    second = open_(writer, alice, "I")
    assert second.number != first.number and second.status == "active"
    refused(writer, engine, opening(alice, "I"), "TYPE_I_EXISTS")
    sound(engine)


@pytest.mark.parametrize("status_action", ["account.freeze", "account.suspend"])
def test_a_frozen_or_suspended_type_i_still_counts(writer, engine, status_action):
    alice = person(writer)
    first = open_(writer, alice, "I")
    staff_action(writer, status_action, first.number)
    refused(writer, engine, opening(alice, "I"), "TYPE_I_EXISTS")
    sound(engine)


def test_term_deposit_under_an_open_type_i_is_not_a_second_type_i(writer, engine):
    alice = person(writer)
    open_(writer, alice, "I")
    term = open_(writer, alice, "I", product="term", term_months=12, rate_bp=175)
    assert (term.tier, term.product, term.rate_bp) == ("I", "term", 175)
    open_(writer, alice, "I", product="term", term_months=3, rate_bp=110)
    refused(writer, engine, opening(alice, "I"), "TYPE_I_EXISTS")
    sound(engine)


def test_a_term_deposit_held_first_does_not_block_the_type_i_demand_account(writer, engine):
    bob = person(writer)
    open_(writer, bob, "I", product="term", term_months=6, rate_bp=130)
    demand = open_(writer, bob, "I")
    assert (demand.tier, demand.product) == ("I", "demand")
    refused(writer, engine, opening(bob, "I"), "TYPE_I_EXISTS")
    sound(engine)


# -- opening: term deposits -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("instant", "months", "maturity"),
    [
        (datetime(2026, 11, 23, 2, 0, tzinfo=UTC), 12, date(2027, 11, 23)),
        (datetime(2026, 11, 23, 2, 0, tzinfo=UTC), 60, date(2031, 11, 23)),
        # 01:00 on 1 December in Shanghai is still 30 November in UTC: the business day counts
        (datetime(2026, 11, 30, 17, 0, tzinfo=UTC), 12, date(2027, 12, 1)),
        # a month without that day ends the term on its last day
        (datetime(2026, 11, 30, 2, 0, tzinfo=UTC), 3, date(2027, 2, 28)),
        (datetime(2027, 8, 31, 2, 0, tzinfo=UTC), 6, date(2028, 2, 29)),
    ],
)
def test_term_deposit_matures_term_months_after_the_opening_business_day(
    writer, engine, clock: FixedClock, instant, months, maturity
):
    alice = person(writer)
    clock.set(instant)
    term = open_(writer, alice, "I", product="term", term_months=months, rate_bp=225)
    assert (term.product, term.maturity_date, term.rate_bp) == ("term", maturity, 225)
    assert look(engine, term.number) == term
    sound(engine)


def test_enterprise_term_deposit_and_rate_bounds(writer, engine):
    company, alice = enterprise(writer), person(writer)
    corp = open_(writer, company, "corporate", product="term", term_months=36, rate_bp=0)
    assert (corp.tier, corp.rate_bp, corp.maturity_date) == ("corporate", 0, date(2029, 11, 23))
    top = open_(writer, alice, "I", product="term", term_months=24, rate_bp=10_000)
    assert top.rate_bp == 10_000
    sound(engine)


@pytest.mark.parametrize(
    "terms",
    [
        {"term_months": 7, "rate_bp": 150},
        {"term_months": 0, "rate_bp": 150},
        {"term_months": None, "rate_bp": 150},
        {"term_months": "12", "rate_bp": 150},
        {"term_months": 12, "rate_bp": -1},
        {"term_months": 12, "rate_bp": 10_001},
        {"term_months": 12, "rate_bp": None},
        {"term_months": 12, "rate_bp": 1.5},
        {"term_months": 12, "rate_bp": True},
    ],
)
def test_term_deposit_with_a_wrong_term_or_rate_is_refused(writer, engine, terms):
    alice = person(writer)
    refused(writer, engine, opening(alice, "I", product="term", **terms), "INVALID_INPUT")
    sound(engine)


@pytest.mark.parametrize("tier", ["II", "III"])
def test_term_deposit_under_type_ii_or_iii_is_refused(writer, engine, tier):
    alice = person(writer)
    command = opening(alice, tier, product="term", term_months=12, rate_bp=150)
    refused(writer, engine, command, "INVALID_INPUT")
    sound(engine)


@pytest.mark.parametrize(
    "terms", [{"term_months": 12}, {"rate_bp": 150}, {"term_months": 12, "rate_bp": 150}]
)
def test_term_or_rate_on_a_demand_account_is_refused(writer, engine, terms):
    alice = person(writer)
    refused(writer, engine, opening(alice, "II", **terms), "INVALID_INPUT")
    refused(writer, engine, opening(alice, "I", product="demand", **terms), "INVALID_INPUT")
    sound(engine)


# -- opening: wrong input -----------------------------------------------------------------
def test_unknown_customer_is_refused(writer, engine):
    person(writer)
    refused(writer, engine, opening(999_999, "II"), "CUSTOMER_NOT_FOUND")
    refused(writer, engine, opening("1", "II"), "INVALID_INPUT")
    sound(engine)


@pytest.mark.parametrize(
    ("tier", "kw"),
    [
        ("IV", {}),
        ("i", {}),
        ("", {}),
        (None, {}),
        ("II", {"product": "loan"}),
        ("II", {"product": "DEMAND"}),
    ],
)
def test_unknown_tier_or_product_is_refused(writer, engine, tier, kw):
    alice = person(writer)
    refused(writer, engine, opening(alice, tier, **kw), "INVALID_INPUT")
    sound(engine)


def test_unknown_currency_is_refused(writer, engine):
    alice = person(writer)
    refused(writer, engine, opening(alice, "II", currency="XXX"), "UNKNOWN_CURRENCY")
    sound(engine)


# -- the Type III ceiling -------------------------------------------------------------------
def test_type_iii_holds_at_most_2000_yuan(writer, engine):
    alice = person(writer)
    cash = cash_account(writer)
    small = open_(writer, alice, "III")
    assert TYPE_III_CEILING == 2_000_00
    writer.execute(move(cash, small.ledger_account_id, 1_500_00))
    writer.execute(move(cash, small.ledger_account_id, 500_00))
    assert look(engine, small.number).balance == 2_000_00
    with pytest.raises(EbankError) as caught:
        writer.execute(move(cash, small.ledger_account_id, 1))
    assert caught.value.code == "BALANCE_CEILING"
    assert look(engine, small.number).balance == 2_000_00
    # once money leaves, it may come back up to the ceiling again
    writer.execute(move(small.ledger_account_id, cash, 1_00))
    writer.execute(move(cash, small.ledger_account_id, 1_00))
    assert look(engine, small.number).balance == 2_000_00
    sound(engine)


def test_type_iii_ceiling_holds_within_one_batch(writer, engine):
    alice = person(writer)
    cash = cash_account(writer)
    small = open_(writer, alice, "III")
    first, second, third = in_one_batch(
        writer,
        [
            move(cash, small.ledger_account_id, 1_999_00),
            move(cash, small.ledger_account_id, 1_01),
            move(cash, small.ledger_account_id, 1_00),
        ],
    )
    assert (code_of(first), code_of(third)) == ("ok", "ok")
    assert code_of(second) == "BALANCE_CEILING"
    assert look(engine, small.number).balance == 2_000_00
    sound(engine)


def test_type_ii_and_type_i_have_no_ceiling(writer, engine):
    alice = person(writer)
    cash = cash_account(writer)
    for tier in ("I", "II"):
        account = open_(writer, alice, tier)
        writer.execute(move(cash, account.ledger_account_id, 10_000_000_00))
        assert look(engine, account.number).balance == 10_000_000_00
    sound(engine)


# -- races ----------------------------------------------------------------------------------
def test_two_type_i_openings_in_one_batch_open_one(writer, engine):
    alice = person(writer)
    outcomes = in_one_batch(writer, [opening(alice, "I"), opening(alice, "I")])
    codes = sorted(code_of(o) for o in outcomes)
    assert codes == ["TYPE_I_EXISTS", "ok"], outcomes
    with engine.connect() as conn:
        assert [a.tier for a in accounts.accounts_of(conn, alice)] == ["I"]
    assert counts(engine)[:2] == (1, 1)
    sound(engine)


def test_two_writers_opening_type_i_at_once_open_one_each_customer(writer, engine, clock):
    """Two writers, each with its own connection (as two processes would have), open a
    Type I account for the same customers at the same moment."""
    customers = [person(writer, n) for n in range(1, 6)]
    commands = [opening(customer, "I") for customer in customers]
    for pair in race_two_writers(writer, engine, clock, commands):
        codes = sorted(code_of(x) for x in pair)
        assert codes == ["TYPE_I_EXISTS", "ok"], pair
    with engine.connect() as conn:
        for customer in customers:
            assert [a.tier for a in accounts.accounts_of(conn, customer)] == ["I"]
    sound(engine)


# -- finding accounts -------------------------------------------------------------------
def test_get_account_shows_balance_and_available_after_a_hold(writer, engine):
    alice = person(writer)
    cash = cash_account(writer)
    account = open_(writer, alice, "II")
    writer.execute(move(cash, account.ledger_account_id, 800_00))
    writer.execute(
        ledger.command(
            lambda tx: ledger.place_hold(
                tx, account_id=account.ledger_account_id, amount=300_00,
                expires_at=tx.now + timedelta(days=1),
            ),
            accounts=(account.ledger_account_id,),
        )
    )  # fmt: skip
    seen = look(engine, account.number)
    assert (seen.balance, seen.available) == (800_00, 500_00)
    assert look(engine, f"  {account.number} ") == seen
    sound(engine)


def test_accounts_of_lists_only_that_customers_accounts_oldest_first(writer, engine):
    alice, bob, carol = person(writer, 1), person(writer, 2), person(writer, 3)
    mine = [open_(writer, alice, "I"), open_(writer, alice, "III")]
    theirs = open_(writer, bob, "I")
    mine.append(open_(writer, alice, "II"))
    with engine.connect() as conn:
        assert accounts.accounts_of(conn, alice) == mine
        assert accounts.accounts_of(conn, bob) == [theirs]
        assert accounts.accounts_of(conn, carol) == []
        assert accounts.accounts_of(conn, 999_999) == []
    sound(engine)


def test_get_account_of_an_unknown_number_is_not_found(writer, engine):
    alice = person(writer)
    account = open_(writer, alice, "I")
    other = accounts.account_number(999_999)
    with engine.connect() as conn:
        for number in (other, "", account.number[:-1], "GL-CASH"):
            with pytest.raises(EbankError) as caught:
                accounts.get_account(conn, number=number)
            assert caught.value.code == "ACCOUNT_NOT_FOUND"
        with pytest.raises(EbankError) as caught:
            accounts.get_account(conn, number=12345)  # type: ignore[arg-type]
        assert caught.value.code == "INVALID_INPUT"
    sound(engine)


def test_internal_ledger_accounts_are_not_customer_accounts(writer, engine):
    cash_account(writer)
    with engine.connect() as conn, pytest.raises(EbankError) as caught:
        accounts.get_account(conn, number="GL-CASH")
    assert caught.value.code == "ACCOUNT_NOT_FOUND"


# -- audit -------------------------------------------------------------------------------
def test_opening_is_audited_with_the_staff_member_and_the_account(writer, engine):
    alice = person(writer)
    account = open_(writer, alice, "II")
    with engine.connect() as conn:
        rows = (
            conn.execute(select(audit_log).where(audit_log.c.action == "account.open"))
            .mappings()
            .all()
        )
        assert audit.verify(conn).ok
    assert len(rows) == 1
    row = rows[0]
    assert (row["actor"], row["subject"], row["channel"], row["outcome"]) == (
        STAFF, f"account:{account.number}", "counter", "ok",
    )  # fmt: skip
    assert '"tier": "II"' in row["detail"] and '"product": "demand"' in row["detail"]
    sound(engine)
