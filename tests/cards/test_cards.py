"""Cards: debit and credit cards with a configured BIN and a Luhn check digit, numbers sealed at
rest and masked everywhere but the issue answer; report-loss (挂失) by the holder on any
channel; the check a payment makes (`usable`); freeze, unfreeze and close under
maker-checker, named by card id; the audit and outbox records each change leaves.

Every database test runs on SQLite and PostgreSQL and ends with the ledger's invariants."""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount
from ebank.accounts.service import luhn_valid
from ebank.cards import service as cards
from ebank.cards.models import Card, CardStatus, IssuedCard
from ebank.cards.tables import card_events
from ebank.cards.tables import cards as cards_table
from ebank.core import audit
from ebank.core.clock import FixedClock, business_date
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command, Writer
from ebank.ledger import queries as Q
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.ops import approvals
from ebank.ops.tables import approval_requests
from tests.support import STAFF, VAULT, in_one_batch, person, sound

CHECKER = "staff:9"
CHANNELS = ("sms", "phone", "online", "mobile")


# -- helpers ------------------------------------------------------------------------------
def open_demand(writer: Writer, customer: int, tier: str = "I") -> CustomerAccount:
    return writer.execute(accounts.open_account(customer_id=customer, tier=tier, actor=STAFF))


def debit(writer: Writer, customer: int, account: CustomerAccount) -> IssuedCard:
    return writer.execute(
        cards.issue_debit_card(
            VAULT, customer_id=customer, account_number=account.number, actor=STAFF
        )
    )


def credit(writer: Writer, customer: int, line: Any = 5_000_000) -> IssuedCard:
    return writer.execute(
        cards.issue_credit_card(VAULT, customer_id=customer, credit_line=line, actor=STAFF)
    )


def report(
    customer: int, number: str, channel: str = "mobile", vault: Vault = VAULT
) -> Command[Card]:
    return cards.report_lost(vault, customer_id=customer, card_number=number, channel=channel)


def error_of(writer: Writer, command: Command[Any]) -> EbankError:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    return caught.value


def propose(writer: Writer, action: str, params: dict[str, Any]) -> int:
    return writer.execute(approvals.propose(action, params, reason="客户要求", maker=STAFF))


def staff(writer: Writer, action: str, card_id: int) -> Any:
    """Propose as STAFF, approve as CHECKER; the action's answer."""
    request = propose(writer, action, {"card": card_id})
    return writer.execute(approvals.approve(request, checker=CHECKER))


def card_of(engine: Engine, card_id: int) -> Card:
    with engine.connect() as conn:
        return cards.get_card(conn, card_id)


def events(engine: Engine, card_id: int) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(card_events.c.status, card_events.c.actor, card_events.c.channel)
            .where(card_events.c.card_id == card_id)
            .order_by(card_events.c.id)
        )
        return [tuple(r) for r in rows]


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        return int(conn.execute(query).scalar_one())


def counts(engine: Engine) -> tuple[int, ...]:
    tables = (cards_table, card_events, audit_log, outbox_events, ledger_accounts)
    return tuple(count(engine, t) for t in tables)


def raw_text(engine: Engine, *tables: Any) -> str:
    """Every column of every row of the tables, as text."""
    parts: list[str] = []
    with engine.connect() as conn:
        for table in tables:
            for row in conn.execute(select(table)):
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


def audit_details(engine: Engine, prefix: str = "card.") -> list[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.actor, audit_log.c.channel, audit_log.c.detail)
            .where(audit_log.c.action.like(f"{prefix}%"))
            .order_by(audit_log.c.id)
        )
        return [tuple(r) for r in rows]


def today(clock: FixedClock) -> date:
    return business_date(clock.now())


@pytest.fixture
def holder(writer: Writer) -> tuple[int, CustomerAccount]:
    customer = person(writer)
    return customer, open_demand(writer, customer)


# -- debit cards --------------------------------------------------------------------------
def test_debit_card_has_bin_luhn_mask_expiry_and_points_at_the_accounts_ledger_account(
    writer: Writer, engine: Engine, clock: FixedClock, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    number, card = issued.number, issued.card
    assert len(number) == 16 and number.isdigit()
    assert number.startswith(get_settings().debit_card_bin)
    assert luhn_valid(number)
    assert card.masked == number[:6] + "******" + number[-4:]
    assert card.kind == "debit" and card.status == CardStatus.ACTIVE
    assert card.customer_id == customer
    assert today(clock) == date(2026, 11, 23)
    assert card.expires == date(2031, 11, 30)  # the last day of the issue month, 5 years on
    assert card.ledger_account_id == account.ledger_account_id
    assert events(engine, card.id) == [("active", STAFF, "counter")]
    sound(engine)


def test_expiry_is_the_month_end_of_the_business_date_five_years_on(
    writer: Writer, engine: Engine, clock: FixedClock, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    # 29 Feb 2028 in Shanghai: February 2033 has 28 days.
    clock.set(datetime(2028, 2, 29, 2, 0, tzinfo=UTC))
    assert debit(writer, customer, account).card.expires == date(2033, 2, 28)
    # 30 Nov 17:00 UTC is already 1 Dec in Shanghai: the business date decides the month.
    clock.set(datetime(2028, 11, 30, 17, 0, tzinfo=UTC))
    assert debit(writer, customer, account).card.expires == date(2033, 12, 31)
    sound(engine)


def test_full_number_is_returned_only_by_the_issue_command(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued_debit = debit(writer, customer, account)
    issued_credit = credit(writer, customer)
    numbers = (issued_debit.number, issued_credit.number)
    with engine.connect() as conn:
        listed = cards.cards_of(conn, customer)
        fetched = [cards.get_card(conn, c.id) for c in listed]
    assert [c.id for c in listed] == [issued_debit.card.id, issued_credit.card.id]
    assert listed == fetched == [issued_debit.card, issued_credit.card]
    for view in listed + fetched:
        assert not hasattr(view, "number")
        shown = " ".join(str(v) for v in dataclasses.astuple(view))
        assert not any(n in shown for n in numbers)
    assert [c.masked for c in listed] == [n[:6] + "******" + n[-4:] for n in numbers]
    sound(engine)


def test_card_number_is_stored_only_sealed(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = [debit(writer, customer, account), credit(writer, customer)]
    for i in issued:  # changes leave records too: none may hold the number
        writer.execute(report(customer, i.number, "sms"))
    staff(writer, "card.close", issued[0].card.id)
    dump = raw_text(engine, cards_table, card_events, audit_log, outbox_events, approval_requests)
    for i in issued:
        assert i.number not in dump
    with engine.connect() as conn:
        rows = conn.execute(select(cards_table).order_by(cards_table.c.id)).mappings().all()
    for row, i in zip(rows, issued, strict=True):
        assert VAULT.decrypt(row["number_sealed"], purpose=cards.NUMBER_PURPOSE) == i.number
        assert row["masked"] == i.card.masked
    sound(engine)


def test_a_card_number_cannot_be_worked_out_from_the_card_id_the_apis_show(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = [debit(writer, customer, account) for _ in range(3)] + [credit(writer, customer)]
    for i in issued:
        assert i.number[6:15] != f"{i.card.id:09d}"  # a drawn middle, not the id
        assert luhn_valid(i.number)
    assert len({i.number for i in issued}) == len(issued)
    sound(engine)


def test_debit_card_on_someone_elses_account_is_account_not_found_and_writes_nothing(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    _, account = holder
    other = person(writer, 2)
    before = counts(engine)
    command = cards.issue_debit_card(
        VAULT, customer_id=other, account_number=account.number, actor=STAFF
    )
    assert error_of(writer, command).code == "ACCOUNT_NOT_FOUND"
    assert counts(engine) == before
    sound(engine)


def test_debit_card_on_a_term_account_is_refused(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 2)  # the term deposit alone: no Type I demand account first
    term = writer.execute(
        accounts.open_account(
            customer_id=customer, tier="I", product="term", term_months=12, rate_bp=150,
            actor=STAFF,
        )
    )  # fmt: skip
    before = counts(engine)
    command = cards.issue_debit_card(
        VAULT, customer_id=customer, account_number=term.number, actor=STAFF
    )
    assert error_of(writer, command).code == "INVALID_INPUT"
    assert counts(engine) == before
    sound(engine)


@pytest.mark.parametrize("action", ["account.freeze", "account.close"])
def test_debit_card_on_a_frozen_or_closed_account_is_refused(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount], action: str
) -> None:
    customer, account = holder
    request = propose(writer, action, {"account": account.number})
    writer.execute(approvals.approve(request, checker=CHECKER))
    before = counts(engine)
    command = cards.issue_debit_card(
        VAULT, customer_id=customer, account_number=account.number, actor=STAFF
    )
    assert error_of(writer, command).code == "INVALID_INPUT"
    assert counts(engine) == before
    sound(engine)


def test_debit_card_for_an_unknown_customer_is_customer_not_found(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    _, account = holder
    before = counts(engine)
    command = cards.issue_debit_card(
        VAULT, customer_id=9999, account_number=account.number, actor=STAFF
    )
    assert error_of(writer, command).code == "CUSTOMER_NOT_FOUND"
    command = cards.issue_credit_card(VAULT, customer_id=9999, credit_line=100, actor=STAFF)
    assert error_of(writer, command).code == "CUSTOMER_NOT_FOUND"
    assert counts(engine) == before
    sound(engine)


# -- credit cards -------------------------------------------------------------------------
def test_credit_card_has_its_own_ledger_account_with_the_credit_line_available(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = credit(writer, customer, 5_000_000)
    number, card = issued.number, issued.card
    assert len(number) == 16 and luhn_valid(number)
    assert number.startswith(get_settings().credit_card_bin)
    assert card.kind == "credit" and card.status == "active"
    assert card.masked == number[:6] + "******" + number[-4:]
    assert card.ledger_account_id != account.ledger_account_id
    with engine.connect() as conn:
        own = Q.get_account(conn, account_id=card.ledger_account_id)
    assert own.credit_line == 5_000_000
    assert own.balance == 0 and own.held == 0
    assert own.available == 5_000_000
    assert number not in own.code  # the account is named by the card id, never its number
    sound(engine)


@pytest.mark.parametrize("line", [0, -1, 1.5, 100.0, MAX_MINOR + 1, 10**30, True, "1000", None])
def test_credit_card_with_a_bad_credit_line_is_invalid_input(
    writer: Writer, engine: Engine, line: Any
) -> None:
    customer = person(writer)
    before = counts(engine)
    command = cards.issue_credit_card(VAULT, customer_id=customer, credit_line=line, actor=STAFF)
    assert error_of(writer, command).code == "INVALID_INPUT"
    assert counts(engine) == before
    sound(engine)


# -- report-loss (挂失) ---------------------------------------------------------------------
@pytest.mark.parametrize("channel", CHANNELS)
def test_holder_reports_a_card_lost_at_once_on_any_channel(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount], channel: str
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    done = writer.execute(report(customer, issued.number, channel))
    assert done.status == CardStatus.REPORTED_LOST
    assert done == dataclasses.replace(issued.card, status="reported_lost")
    assert card_of(engine, issued.card.id).status == "reported_lost"
    assert events(engine, issued.card.id)[-1] == (
        "reported_lost", f"customer:{customer}", channel
    )  # fmt: skip
    sound(engine)


def test_reporting_a_frozen_card_lost_is_allowed_and_an_hour_after_midnight_too(
    writer: Writer, engine: Engine, clock: FixedClock, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    staff(writer, "card.freeze", issued.card.id)
    clock.set(datetime(2026, 11, 23, 18, 0, tzinfo=UTC))  # 02:00 in Shanghai
    assert writer.execute(report(customer, issued.number, "phone")).status == "reported_lost"
    sound(engine)


def test_a_second_report_answers_the_same_and_adds_no_event(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    first = writer.execute(report(customer, issued.number, "sms"))
    before = counts(engine)
    again = writer.execute(report(customer, issued.number, "online"))
    assert again == first
    assert counts(engine) == before
    assert [e[0] for e in events(engine, issued.card.id)] == ["active", "reported_lost"]
    sound(engine)


def test_report_lost_emits_an_outbox_event_with_the_masked_number_only(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    writer.execute(report(customer, issued.number, "sms"))
    with engine.connect() as conn:
        rows = conn.execute(select(outbox_events)).mappings().all()
    lost = [r for r in rows if r["topic"] == "card.reported_lost"]
    assert len(lost) == 1
    assert lost[0]["key"] == f"card:{issued.card.id}"
    assert issued.card.masked in lost[0]["payload"]
    for row in rows:
        assert issued.number not in row["payload"] and issued.number not in row["key"]
    sound(engine)


def test_someone_else_reporting_your_card_is_card_not_found_and_nothing_changes(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    other = person(writer, 2)
    before = counts(engine)
    assert error_of(writer, report(other, issued.number)).code == "CARD_NOT_FOUND"
    assert counts(engine) == before
    assert card_of(engine, issued.card.id).status == "active"
    sound(engine)


def test_an_unknown_card_number_is_card_not_found(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    unknown = cards.card_number(get_settings().debit_card_bin, 999_999)
    assert error_of(writer, report(customer, unknown)).code == "CARD_NOT_FOUND"
    # The right number under another bank key finds nothing either.
    other_vault = Vault(bytes(range(1, 33)))
    assert error_of(writer, report(customer, issued.number, vault=other_vault)).code == (
        "CARD_NOT_FOUND"
    )
    assert card_of(engine, issued.card.id).status == "active"
    sound(engine)


def _wrong_luhn(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_wrong_luhn, id="wrong-luhn"),
        pytest.param(lambda n: n[:4] + "ab" + n[6:], id="letters"),
        pytest.param(lambda n: n + "x", id="trailing-letter"),
        pytest.param(lambda n: "", id="empty"),
        pytest.param(lambda n: "    ", id="only-spaces"),
        pytest.param(lambda n: int(n), id="not-text"),
        pytest.param(lambda n: None, id="none"),
        pytest.param(lambda n: n[:8] + "-" + n[8:], id="dash"),
    ],
)
def test_report_lost_with_an_invalid_number_is_invalid_input(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount], spoil: Any
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    before = counts(engine)
    assert error_of(writer, report(customer, spoil(issued.number))).code == "INVALID_INPUT"
    assert counts(engine) == before
    sound(engine)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("18", id="two-digits-passing-luhn"),
        pytest.param("0" * 12, id="twelve-zeros"),
        pytest.param("²" * 16, id="superscript-digits"),
        pytest.param("1" * 15 + "²", id="superscript-check-digit"),
    ],
)
def test_report_lost_with_a_number_not_16_to_19_ascii_digits_is_invalid_input(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount], bad: str
) -> None:
    """The service's own rule: "a card number is 16-19 digits passing Luhn"."""
    customer, _ = holder
    before = counts(engine)
    assert error_of(writer, report(customer, bad)).code == "INVALID_INPUT"
    assert counts(engine) == before
    with engine.connect() as conn, pytest.raises(EbankError) as caught:
        cards.usable(conn, VAULT, bad, today=date(2026, 11, 23))
    assert caught.value.code == "INVALID_INPUT"
    sound(engine)


@pytest.mark.parametrize("whole", [True, False], ids=["all-digits", "all-but-check-digit"])
@pytest.mark.parametrize(
    "digits",
    [
        pytest.param("０１２３４５６７８９", id="fullwidth"),
        pytest.param("٠١٢٣٤٥٦٧٨٩", id="arabic-indic"),
    ],
)
def test_the_holders_number_in_non_ascii_digits_is_not_answered_card_not_found(
    writer: Writer,
    engine: Engine,
    holder: tuple[int, CustomerAccount],
    digits: str,
    whole: bool,
) -> None:
    """Python's isdigit/int accept these digits, but the number is hashed as typed: the
    holder's own card must be found (digits normalised) or the input refused, never called
    unknown."""
    customer, account = holder
    issued = debit(writer, customer, account)
    table = str.maketrans("0123456789", digits)
    typed = issued.number.translate(table) if whole else issued.number[:-1].translate(table)
    typed += "" if whole else issued.number[-1]
    try:
        answer = writer.execute(report(customer, typed, "sms"))
    except EbankError as exc:
        assert exc.code == "INVALID_INPUT"
        assert card_of(engine, issued.card.id).status == "active"
    else:
        assert answer.status == "reported_lost" and answer.id == issued.card.id
    sound(engine)


def test_spaces_in_the_number_are_accepted(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    n = issued.number
    spaced = f" {n[:4]} {n[4:8]} {n[8:12]} {n[12:]} "
    assert writer.execute(report(customer, spaced, "sms")).status == "reported_lost"
    with engine.connect() as conn, pytest.raises(EbankError) as caught:
        cards.usable(conn, VAULT, spaced, today=date(2026, 11, 23))
    assert caught.value.code == "CARD_REPORTED_LOST"
    sound(engine)


def test_two_reports_in_one_batch_both_answer_reported_lost_with_one_event(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    first, second = in_one_batch(
        writer, [report(customer, issued.number, "sms"), report(customer, issued.number, "phone")]
    )
    assert isinstance(first, Card) and isinstance(second, Card)
    assert first.status == second.status == "reported_lost"
    assert [e[0] for e in events(engine, issued.card.id)] == ["active", "reported_lost"]
    assert count(engine, outbox_events, outbox_events.c.topic == "card.reported_lost") == 1
    assert count(engine, audit_log, audit_log.c.action == "card.reported_lost") == 1
    sound(engine)


def test_a_closed_card_cannot_be_reported_lost(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    staff(writer, "card.close", issued.card.id)
    before = counts(engine)
    assert error_of(writer, report(customer, issued.number)).code == "INVALID_STATUS_CHANGE"
    assert counts(engine) == before
    sound(engine)


# -- usable: the check a payment makes ------------------------------------------------------
def test_usable_answers_for_each_status_and_expiry(
    writer: Writer, engine: Engine, clock: FixedClock, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    active, lost, frozen, closed = (debit(writer, customer, account) for _ in range(4))
    writer.execute(report(customer, lost.number))
    staff(writer, "card.freeze", frozen.card.id)
    staff(writer, "card.close", closed.card.id)
    day = today(clock)
    unknown = cards.card_number(get_settings().debit_card_bin, 999_999)

    def refusal(number: str, on: date) -> str:
        with engine.connect() as conn, pytest.raises(EbankError) as caught:
            cards.usable(conn, VAULT, number, today=on)
        return caught.value.code

    with engine.connect() as conn:
        assert cards.usable(conn, VAULT, active.number, today=day) == active.card
        # Good through the last day printed on it.
        expires = active.card.expires
        assert cards.usable(conn, VAULT, active.number, today=expires) == active.card
    assert refusal(active.number, expires + timedelta(days=1)) == "CARD_EXPIRED"
    assert refusal(lost.number, day) == "CARD_REPORTED_LOST"
    assert refusal(frozen.number, day) == "CARD_FROZEN"
    assert refusal(closed.number, day) == "CARD_CLOSED"
    assert refusal(unknown, day) == "CARD_NOT_FOUND"
    assert refusal(_wrong_luhn(active.number), day) == "INVALID_INPUT"
    sound(engine)


# -- staff actions under maker-checker -----------------------------------------------------
def test_freeze_then_unfreeze_under_maker_checker(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    card_id = issued.card.id
    request = propose(writer, "card.freeze", {"card": card_id})
    assert card_of(engine, card_id).status == "active"  # nothing happens until approved
    with engine.connect() as conn:
        pending = approvals.get(conn, request)
    assert pending.status == "pending" and pending.subject == f"card:{card_id}"
    assert pending.params == {"card": card_id}
    assert writer.execute(approvals.approve(request, checker=CHECKER)) == "frozen"
    assert card_of(engine, card_id).status == "frozen"
    assert events(engine, card_id)[-1] == ("frozen", CHECKER, "console")
    assert staff(writer, "card.unfreeze", card_id) == "active"
    assert card_of(engine, card_id).status == "active"
    assert events(engine, card_id)[-1] == ("active", CHECKER, "console")
    with engine.connect() as conn:
        assert cards.usable(conn, VAULT, issued.number, today=date(2026, 11, 23)).id == card_id
    sound(engine)


def test_unfreezing_an_active_card_is_an_invalid_status_change(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    request = propose(writer, "card.unfreeze", {"card": issued.card.id})
    error = error_of(writer, approvals.approve(request, checker=CHECKER))
    assert error.code == "INVALID_STATUS_CHANGE"
    with engine.connect() as conn:
        assert approvals.get(conn, request).status == "pending"
    sound(engine)


def test_freezing_a_reported_lost_card_is_refused_and_the_request_stays_pending(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    writer.execute(report(customer, issued.number))
    request = propose(writer, "card.freeze", {"card": issued.card.id})
    before = counts(engine)
    error = error_of(writer, approvals.approve(request, checker=CHECKER))
    assert error.code == "INVALID_STATUS_CHANGE"
    assert counts(engine) == before
    with engine.connect() as conn:
        assert approvals.get(conn, request).status == "pending"
    assert card_of(engine, issued.card.id).status == "reported_lost"
    sound(engine)


@pytest.mark.parametrize("state", ["active", "reported_lost", "frozen"])
def test_close_from_any_state_but_closed(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount], state: str
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    if state == "reported_lost":
        writer.execute(report(customer, issued.number))
    elif state == "frozen":
        staff(writer, "card.freeze", issued.card.id)
    assert card_of(engine, issued.card.id).status == state
    assert staff(writer, "card.close", issued.card.id) == "closed"
    assert card_of(engine, issued.card.id).status == "closed"
    assert events(engine, issued.card.id)[-1] == ("closed", CHECKER, "console")
    # Closed is final: neither closing again nor anything else moves it.
    for action in ("card.close", "card.freeze", "card.unfreeze"):
        request = propose(writer, action, {"card": issued.card.id})
        error = error_of(writer, approvals.approve(request, checker=CHECKER))
        assert error.code == "INVALID_STATUS_CHANGE"
    assert card_of(engine, issued.card.id).status == "closed"
    sound(engine)


def test_maker_cannot_approve_their_own_request(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    request = propose(writer, "card.freeze", {"card": issued.card.id})
    error = error_of(writer, approvals.approve(request, checker=STAFF))
    assert error.code == "SAME_MAKER_AND_CHECKER"
    with engine.connect() as conn:
        assert approvals.get(conn, request).status == "pending"
    assert card_of(engine, issued.card.id).status == "active"
    sound(engine)


def test_a_rejected_request_changes_nothing(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    request = propose(writer, "card.close", {"card": issued.card.id})
    writer.execute(approvals.reject(request, checker=CHECKER, note="客户撤回"))
    assert card_of(engine, issued.card.id).status == "active"
    assert len(events(engine, issued.card.id)) == 1
    sound(engine)


def test_staff_params_naming_a_card_by_number_are_refused_and_never_stored(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    issued = debit(writer, customer, account)
    n, card_id = issued.number, issued.card.id
    for params in (
        {"card": n},
        {"card": f"{n[:4]} {n[4:8]} {n[8:12]} {n[12:]}"},
        {"number": n},
        {"card": card_id, "number": n},
        {"card": str(card_id)},
        {"card": True},
        {},
    ):
        command = approvals.propose("card.freeze", params, reason="r", maker=STAFF)
        assert error_of(writer, command).code == "INVALID_INPUT", params
    # A number passed as an integer is no card id either; whatever the answer, nothing is kept.
    command = approvals.propose("card.freeze", {"card": int(n)}, reason="r", maker=STAFF)
    assert error_of(writer, command).code in ("INVALID_INPUT", "CARD_NOT_FOUND")
    unknown = approvals.propose("card.freeze", {"card": 9999}, reason="r", maker=STAFF)
    assert error_of(writer, unknown).code == "CARD_NOT_FOUND"
    assert count(engine, approval_requests) == 0
    assert n not in raw_text(engine, approval_requests, audit_log)
    assert card_of(engine, card_id).status == "active"
    sound(engine)


# -- the audit trail --------------------------------------------------------------------------
def test_every_issue_report_and_staff_change_is_audited_with_the_mask_only(
    writer: Writer, engine: Engine, holder: tuple[int, CustomerAccount]
) -> None:
    customer, account = holder
    d = debit(writer, customer, account)
    c = credit(writer, customer)
    writer.execute(report(customer, c.number, "sms"))
    staff(writer, "card.freeze", d.card.id)
    staff(writer, "card.unfreeze", d.card.id)
    staff(writer, "card.close", d.card.id)
    records = [r for r in audit_details(engine) if r[0].startswith("card.")]
    actions = [(action, actor, channel) for action, actor, channel, _ in records]
    assert actions == [
        ("card.issue.debit", STAFF, "counter"),
        ("card.issue.credit", STAFF, "counter"),
        ("card.reported_lost", f"customer:{customer}", "sms"),
        ("card.freeze.propose", STAFF, "console"),
        ("card.freeze.approve", CHECKER, "console"),
        ("card.frozen", CHECKER, "console"),
        ("card.unfreeze.propose", STAFF, "console"),
        ("card.unfreeze.approve", CHECKER, "console"),
        ("card.active", CHECKER, "console"),
        ("card.close.propose", STAFF, "console"),
        ("card.close.approve", CHECKER, "console"),
        ("card.closed", CHECKER, "console"),
    ]
    masks = {d.card.id: d.card.masked, c.card.id: c.card.masked}
    changes = [r for r in records if not r[0].endswith((".propose", ".approve"))]
    expected = [d.card.id, c.card.id, c.card.id, d.card.id, d.card.id, d.card.id]
    for (_, _, _, detail), card_id in zip(changes, expected, strict=True):
        assert f'"card": "{masks[card_id]}"' in detail
    for *_, detail in records:
        assert d.number not in detail and c.number not in detail
    with engine.connect() as conn:
        assert audit.verify(conn).ok
    sound(engine)
