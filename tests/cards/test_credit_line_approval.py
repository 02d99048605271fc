"""A credit card that would bring the customer's credit lines (on their cards not closed, the
new one included) above what one member of staff grants alone (the bank parameter
cards.credit_line.alone_max, ¥50,000 by default) is refused when issued directly and proposed
instead (card.issue.credit); the card is issued when a second member of staff approves, never
the maker, whatever the customer holds, and the audit trail names both. Bad lines stay
INVALID_INPUT on either path.

Every database test runs on SQLite and PostgreSQL and ends with the ledger's invariants."""

import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ebank.cards import service as cards
from ebank.cards.models import Card, IssuedCard
from ebank.cards.tables import card_events
from ebank.cards.tables import cards as cards_table
from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command, Writer
from ebank.ledger import queries as Q
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.ops import approvals
from ebank.ops.tables import approval_requests
from tests.support import STAFF, VAULT, code_of, in_one_batch, person, race_two_writers, sound

CHECKER = "staff:9"
CAP = 5_000_000  # the parameter's default: ¥50,000.00
ABOVE = CAP + 1


def issue(customer: int, line: Any) -> Command[IssuedCard]:
    return cards.issue_credit_card(VAULT, customer_id=customer, credit_line=line, actor=STAFF)


def propose(writer: Writer, customer: Any, line: Any) -> int:
    return writer.execute(
        cards.propose_credit_card(
            customer_id=customer, credit_line=line, reason="年收入证明已核", maker=STAFF
        )
    )


def approve(writer: Writer, request: int, checker: str = CHECKER) -> Any:
    return writer.execute(approvals.approve(request, checker=checker, vault=VAULT))


def error_of(writer: Writer, command: Command[Any]) -> EbankError:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    return caught.value


def counts(engine: Engine) -> tuple[int, ...]:
    tables = (cards_table, card_events, audit_log, outbox_events, ledger_accounts)
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables
        )


def requests(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(approval_requests)
        return int(conn.execute(query).scalar_one())


def line_of(engine: Engine, card: Card) -> int:
    with engine.connect() as conn:
        return Q.get_account(conn, account_id=card.ledger_account_id).credit_line


def only_card(engine: Engine, customer: int) -> Card:
    with engine.connect() as conn:
        [card] = cards.cards_of(conn, customer)
    return card


def set_cap(writer: Writer, value: int) -> None:
    params = {"name": cards.CREDIT_LINE_ALONE.name, "value": value}
    request = writer.execute(
        approvals.propose("parameter.set", params, reason="授信政策调整", maker=STAFF)
    )
    writer.execute(approvals.approve(request, checker=CHECKER))


# -- issued directly up to the cap ------------------------------------------------------------
def test_a_line_at_the_cap_is_issued_at_once(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    issued = writer.execute(issue(customer, CAP))
    assert issued.card.kind == "credit" and issued.card.status == "active"
    assert line_of(engine, issued.card) == CAP
    assert requests(engine) == 0
    sound(engine)


def test_a_line_above_the_cap_is_refused_directly_and_nothing_is_made(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    before = counts(engine)
    error = error_of(writer, issue(customer, ABOVE))
    assert error.code == "CREDIT_LINE_NEEDS_APPROVAL" and error.status == 403
    assert error.details == {"cap": "50000.00", "granted": "0.00"}
    assert "¥50000.00" in error.message("en") and "¥50000.00" in error.message("zh")
    assert counts(engine) == before
    assert requests(engine) == 0
    sound(engine)


def test_the_cap_is_the_banks_parameter_and_follows_an_approved_change(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    set_cap(writer, 8_000_000)
    assert writer.execute(issue(customer, 8_000_000)).card.kind == "credit"
    other = person(writer, 2)
    assert error_of(writer, issue(other, 8_000_001)).details == {
        "cap": "80000.00",
        "granted": "0.00",
    }
    set_cap(writer, 1_000_000)
    assert error_of(writer, issue(other, 1_000_001)).code == "CREDIT_LINE_NEEDS_APPROVAL"
    sound(engine)


# -- the cap counts the customer's credit lines, not one card's -------------------------------
def staff_act(writer: Writer, action: str, card: Card) -> None:
    request = writer.execute(approvals.propose(action, {"card": card.id}, reason="r", maker=STAFF))
    writer.execute(approvals.approve(request, checker=CHECKER))


def test_two_lines_within_the_cap_each_but_above_it_together_refuse_the_second(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    writer.execute(issue(customer, 3_000_000))
    before = counts(engine)
    error = error_of(writer, issue(customer, 2_000_001))
    assert error.code == "CREDIT_LINE_NEEDS_APPROVAL"
    assert error.details == {"cap": "50000.00", "granted": "30000.00"}
    assert "¥30000.00" in error.message("en") and "¥30000.00" in error.message("zh")
    assert counts(engine) == before and requests(engine) == 0
    assert writer.execute(issue(customer, 2_000_000)).card.kind == "credit"  # up to the cap
    assert error_of(writer, issue(customer, 1)).details["granted"] == "50000.00"
    other = person(writer, 2)  # another customer's lines are their own
    assert writer.execute(issue(other, CAP)).card.kind == "credit"
    sound(engine)


def test_two_cards_issued_in_one_batch_are_counted_one_after_the_other(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    outcomes = in_one_batch(writer, [issue(customer, 3_000_000), issue(customer, 3_000_000)])
    assert [code_of(o) for o in outcomes] == ["ok", "CREDIT_LINE_NEEDS_APPROVAL"]
    with engine.connect() as conn:
        assert cards.credit_granted(conn, customer) == 3_000_000
    sound(engine)


def test_two_cards_issued_at_once_by_two_processes_are_counted_one_after_the_other(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer)
    [pair] = race_two_writers(writer, engine, clock, [issue(customer, 3_000_000)])
    assert sorted(code_of(o) for o in pair) == ["CREDIT_LINE_NEEDS_APPROVAL", "ok"]
    with engine.connect() as conn:
        assert cards.credit_granted(conn, customer) == 3_000_000
    sound(engine)


def test_a_closed_cards_line_no_longer_counts(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    card = writer.execute(issue(customer, 4_000_000)).card
    staff_act(writer, "card.close", card)
    with engine.connect() as conn:
        assert cards.credit_granted(conn, customer) == 0
    assert writer.execute(issue(customer, 4_000_000)).card.status == "active"
    sound(engine)


@pytest.mark.parametrize("stopped", ["frozen", "reported_lost"])
def test_a_frozen_or_lost_cards_line_still_counts(
    writer: Writer, engine: Engine, stopped: str
) -> None:
    customer = person(writer)
    card = writer.execute(issue(customer, 4_000_000)).card
    if stopped == "frozen":
        staff_act(writer, "card.freeze", card)
    else:
        writer.execute(
            cards.report_lost(VAULT, customer_id=customer, card_id=card.id, channel="counter")
        )
    assert only_card(engine, customer).status == stopped
    assert error_of(writer, issue(customer, 1_000_001)).details["granted"] == "40000.00"
    sound(engine)


def test_an_approved_line_is_issued_whatever_the_customer_holds(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    writer.execute(issue(customer, 4_000_000))
    request = propose(writer, customer, 2_000_000)
    card = approve(writer, request)
    assert card.kind == "credit" and line_of(engine, card) == 2_000_000
    with engine.connect() as conn:
        assert cards.credit_granted(conn, customer) == 6_000_000
    assert error_of(writer, issue(customer, 1)).details == {
        "cap": "50000.00", "granted": "60000.00",
    }  # fmt: skip
    sound(engine)


# -- proposed, then decided by someone else ---------------------------------------------------
def test_a_proposed_line_is_issued_with_that_line_when_another_approves(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    request = propose(writer, customer, 20_000_000)
    with engine.connect() as conn:
        pending = approvals.get(conn, request)
        assert cards.cards_of(conn, customer) == []  # nothing until a checker approves
    assert pending.action == cards.CREDIT_ACTION == "card.issue.credit"
    assert pending.subject == f"customer:{customer}"
    assert pending.params == {"customer": customer, "credit_line": 20_000_000}
    answered = approve(writer, request)
    card = only_card(engine, customer)
    assert answered == card  # the masked card: its full number is in no answer
    assert card.kind == "credit" and card.status == "active"
    assert line_of(engine, card) == 20_000_000
    with engine.connect() as conn:
        decided = approvals.get(conn, request)
    assert (decided.status, decided.maker, decided.checker) == ("approved", STAFF, CHECKER)
    sound(engine)


def test_the_audit_trail_names_the_maker_and_the_checker(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    request = propose(writer, customer, ABOVE)
    approve(writer, request)
    card = only_card(engine, customer)
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.actor, audit_log.c.subject,
                   audit_log.c.detail)
            .where(audit_log.c.action.like("card.issue.credit%"))
            .order_by(audit_log.c.id)
        ).all()  # fmt: skip
    trail = [(action, actor, subject) for action, actor, subject, _ in rows]
    assert trail == [
        ("card.issue.credit.propose", STAFF, f"customer:{customer}"),
        ("card.issue.credit.approve", CHECKER, f"customer:{customer}"),
        ("card.issue.credit", CHECKER, f"card:{card.id}"),
    ]
    assert json.loads(rows[1].detail)["maker"] == STAFF
    assert json.loads(rows[2].detail)["card"] == card.masked
    sound(engine)


def test_the_maker_cannot_approve_their_own_proposal(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    request = propose(writer, customer, ABOVE)
    before = counts(engine)
    with pytest.raises(EbankError) as caught:
        approve(writer, request, checker=STAFF)
    assert caught.value.code == "SAME_MAKER_AND_CHECKER"
    assert counts(engine) == before
    with engine.connect() as conn:
        assert approvals.get(conn, request).status == "pending"
    sound(engine)


def test_a_rejected_proposal_creates_nothing(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    request = propose(writer, customer, ABOVE)
    writer.execute(approvals.reject(request, checker=CHECKER, note="收入不足"))
    with engine.connect() as conn:
        assert approvals.get(conn, request).status == "rejected"
        assert cards.cards_of(conn, customer) == []
    with pytest.raises(EbankError) as caught:
        approve(writer, request)
    assert caught.value.code == "APPROVAL_DECIDED"
    with engine.connect() as conn:
        assert cards.cards_of(conn, customer) == []
    sound(engine)


def test_approving_without_the_vault_fails_and_leaves_the_request_pending(
    writer: Writer, engine: Engine
) -> None:
    """A channel that forgot the vault could seal no number: nothing is decided or made."""
    customer = person(writer)
    request = propose(writer, customer, ABOVE)
    before = counts(engine)
    with pytest.raises(RuntimeError, match="vault"):
        writer.execute(approvals.approve(request, checker=CHECKER))
    assert counts(engine) == before
    with engine.connect() as conn:
        assert approvals.get(conn, request).status == "pending"
    sound(engine)


# -- bad input, on either path ----------------------------------------------------------------
@pytest.mark.parametrize("line", [0, -1, -ABOVE, MAX_MINOR + 1, 10**30, 1.5, True, "6000000", None])
def test_a_bad_line_is_invalid_input_directly_and_when_proposed(
    writer: Writer, engine: Engine, line: Any
) -> None:
    customer = person(writer)
    before = counts(engine)
    assert error_of(writer, issue(customer, line)).code == "INVALID_INPUT"
    with pytest.raises(EbankError) as caught:
        propose(writer, customer, line)
    assert caught.value.code == "INVALID_INPUT"
    assert counts(engine) == before and requests(engine) == 0
    sound(engine)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"customer": 9999, "credit_line": ABOVE}, "CUSTOMER_NOT_FOUND"),
        ({"customer": "1", "credit_line": ABOVE}, "INVALID_INPUT"),
        ({"customer": True, "credit_line": ABOVE}, "INVALID_INPUT"),
        ({"credit_line": ABOVE}, "INVALID_INPUT"),
        ({"customer": 1}, "INVALID_INPUT"),
        ({"customer": 1, "credit_line": ABOVE, "card": 1}, "INVALID_INPUT"),
    ],
)
def test_a_proposal_names_one_known_customer_by_id_and_a_line(
    writer: Writer, engine: Engine, params: dict[str, Any], code: str
) -> None:
    command = approvals.propose(cards.CREDIT_ACTION, params, reason="r", maker=STAFF)
    assert error_of(writer, command).code == code
    assert requests(engine) == 0
    sound(engine)
