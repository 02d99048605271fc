"""Maker-checker for staff actions on accounts: one person proposes, a different one approves
or rejects; an approved action runs in the decision's transaction, a failing one leaves the
request pending with nothing done; every proposal and decision is audited.

Every database test runs on SQLite and PostgreSQL and ends with the ledger's invariants."""

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

import ebank.accounts.service as accounts  # registers the account.* actions
from ebank.accounts.models import CustomerAccount
from ebank.core import audit
from ebank.core.clock import FixedClock
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Command, Writer
from ebank.customers.service import register_individual
from ebank.ledger import queries as Q
from ebank.ledger import service as ledger
from ebank.ops import approvals
from ebank.ops.tables import approval_decisions, approval_requests
from tests.support import code_of, in_one_batch, race_two_writers, sound

VAULT = Vault(bytes(range(32)))
MAKER = "staff:7"
CHECKER = "staff:9"
_keys = itertools.count()


# -- helpers ------------------------------------------------------------------------------
class Bank:
    """A customer's Type II account and the bank's cash account that funds it."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        customer = writer.execute(
            register_individual(
                VAULT, name="张三", id_number="11010519491231002X", mobile="13812345678",
                actor=MAKER,
            )
        )  # fmt: skip
        self.customer = customer.id
        self.cash = writer.execute(
            ledger.command(
                lambda tx: ledger.open_account(
                    tx, code="GL-CASH", name="cash", currency="CNY", kind="internal",
                    normal_side="D", overdraft_allowed=True,
                )
            )
        ).id  # fmt: skip

    def open(self, tier: str = "II") -> CustomerAccount:
        return self.writer.execute(
            accounts.open_account(customer_id=self.customer, tier=tier, actor=MAKER)
        )


@pytest.fixture
def bank(writer: Writer) -> Bank:
    return Bank(writer)


def move(debit: int, credit: int, amount: int) -> Command[Any]:
    return ledger.transfer_command(
        debit=debit, credit=credit, amount=amount, scope="tests", key=f"k{next(_keys)}"
    )


def fails(writer: Writer, command: Command[Any], code: str) -> EbankError:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    assert caught.value.code == code, caught.value
    return caught.value


def propose(writer: Writer, action: str, number: str, maker: str = MAKER) -> int:
    return writer.execute(
        approvals.propose(action, {"account": number}, reason="court order 2026-17", maker=maker)
    )


def approve(writer: Writer, request: int, checker: str = CHECKER) -> Any:
    return writer.execute(approvals.approve(request, checker=checker, note="checked"))


def status(engine: Engine, account: CustomerAccount) -> str:
    with engine.connect() as conn:
        mine = accounts.get_account(conn, number=account.number).status
        assert Q.get_account(conn, account_id=account.ledger_account_id).status == mine
        return mine


def balance(engine: Engine, account: CustomerAccount) -> int:
    with engine.connect() as conn:
        return accounts.get_account(conn, number=account.number).balance


def request(engine: Engine, request_id: int) -> approvals.Approval:
    with engine.connect() as conn:
        return approvals.get(conn, request_id)


def pending(engine: Engine) -> list[approvals.Approval]:
    with engine.connect() as conn:
        return approvals.pending(conn)


def decisions(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(approval_decisions)).scalar_one()


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (approval_requests, approval_decisions, audit_log)
        )


def audit_rows(engine: Engine, action: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def still_pending(engine: Engine, request_id: int) -> None:
    seen = request(engine, request_id)
    assert (seen.status, seen.checker, seen.note) == ("pending", None, None)
    assert request_id in [r.id for r in pending(engine)]


# -- the happy path -------------------------------------------------------------------------
def test_freeze_is_proposed_then_approved_by_another_and_the_account_is_frozen(
    writer, engine, bank, clock: FixedClock
):
    account = bank.open()
    writer.execute(move(bank.cash, account.ledger_account_id, 500_00))
    rid = propose(writer, "account.freeze", account.number)
    seen = request(engine, rid)
    assert (seen.id, seen.action, seen.subject, seen.params) == (
        rid, "account.freeze", f"account:{account.number}", {"account": account.number},
    )  # fmt: skip
    assert (seen.reason, seen.maker, seen.made_at) == ("court order 2026-17", MAKER, clock.now())
    assert (seen.status, seen.checker, seen.note) == ("pending", None, None)
    assert pending(engine) == [seen]
    assert status(engine, account) == "active"  # nothing happens on a proposal

    clock.advance(timedelta(minutes=5))
    assert approve(writer, rid) == "frozen"
    done = request(engine, rid)
    assert (done.status, done.checker, done.note) == ("approved", CHECKER, "checked")
    assert pending(engine) == []
    assert status(engine, account) == "frozen"

    # frozen: receives (只收不付) but pays nothing, not even with money on it
    writer.execute(move(bank.cash, account.ledger_account_id, 1_00))
    assert balance(engine, account) == 501_00
    fails(writer, move(account.ledger_account_id, bank.cash, 1_00), "ACCOUNT_FROZEN")
    hold = ledger.command(
        lambda tx: ledger.place_hold(
            tx, account_id=account.ledger_account_id, amount=1_00,
            expires_at=tx.now + timedelta(days=1),
        )
    )  # fmt: skip
    fails(writer, hold, "ACCOUNT_FROZEN")
    assert balance(engine, account) == 501_00
    sound(engine)


def test_pending_lists_undecided_requests_oldest_first(writer, engine, bank):
    first, second = bank.open("II"), bank.open("III")
    a = propose(writer, "account.freeze", first.number)
    b = propose(writer, "account.suspend", second.number)
    c = propose(writer, "account.freeze", second.number)
    assert [r.id for r in pending(engine)] == [a, b, c]
    approve(writer, b)
    writer.execute(approvals.reject(c, checker=CHECKER, note="no order on file"))
    assert [r.id for r in pending(engine)] == [a]
    with engine.connect() as conn:
        assert [r.id for r in approvals.pending(conn, limit=1)] == [a]
    sound(engine)


# -- segregation of duties, decisions ---------------------------------------------------------
@pytest.mark.parametrize("same", [MAKER, f"  {MAKER} "])
def test_the_maker_cannot_approve_or_reject_their_own_request(writer, engine, bank, same):
    account = bank.open()
    rid = propose(writer, "account.freeze", account.number)
    before = counts(engine)
    fails(writer, approvals.approve(rid, checker=same), "SAME_MAKER_AND_CHECKER")
    fails(writer, approvals.reject(rid, checker=same, note="mine"), "SAME_MAKER_AND_CHECKER")
    assert counts(engine) == before
    still_pending(engine, rid)
    assert status(engine, account) == "active"
    # someone else can
    assert approve(writer, rid) == "frozen"
    sound(engine)


def test_a_decided_request_cannot_be_decided_again(writer, engine, bank):
    account = bank.open()
    approved = propose(writer, "account.freeze", account.number)
    approve(writer, approved)
    rejected = propose(writer, "account.suspend", account.number)
    writer.execute(approvals.reject(rejected, checker=CHECKER, note="no order"))
    before = counts(engine)
    for rid in (approved, rejected):
        fails(writer, approvals.approve(rid, checker="staff:11"), "APPROVAL_DECIDED")
        fails(writer, approvals.reject(rid, checker="staff:11", note="late"), "APPROVAL_DECIDED")
    assert counts(engine) == before
    assert (request(engine, approved).status, request(engine, rejected).status) == (
        "approved", "rejected",
    )  # fmt: skip
    assert status(engine, account) == "frozen"
    sound(engine)


def test_a_rejected_request_does_nothing(writer, engine, bank):
    account = bank.open()
    rid = propose(writer, "account.freeze", account.number)
    assert writer.execute(approvals.reject(rid, checker=CHECKER, note="no court order")) is None
    seen = request(engine, rid)
    assert (seen.status, seen.checker, seen.note) == ("rejected", CHECKER, "no court order")
    assert pending(engine) == []
    assert status(engine, account) == "active"
    writer.execute(move(bank.cash, account.ledger_account_id, 2_00))
    writer.execute(move(account.ledger_account_id, bank.cash, 1_00))
    sound(engine)


@pytest.mark.parametrize("note", ["", "   ", None, "n" * 501])
def test_a_rejection_needs_a_note(writer, engine, bank, note):
    account = bank.open()
    rid = propose(writer, "account.freeze", account.number)
    before = counts(engine)
    fails(writer, approvals.reject(rid, checker=CHECKER, note=note), "INVALID_INPUT")
    assert counts(engine) == before
    still_pending(engine, rid)
    sound(engine)


@pytest.mark.parametrize("checker", ["", "   ", None, "c" * 129])
def test_a_decision_needs_a_checker(writer, engine, bank, checker):
    account = bank.open()
    rid = propose(writer, "account.freeze", account.number)
    before = counts(engine)
    fails(writer, approvals.approve(rid, checker=checker), "INVALID_INPUT")
    fails(writer, approvals.reject(rid, checker=checker, note="n"), "INVALID_INPUT")
    assert counts(engine) == before
    still_pending(engine, rid)
    assert status(engine, account) == "active"


@pytest.mark.parametrize("note", ["n" * 501, None])
def test_an_approval_note_that_cannot_be_stored_is_refused_cleanly(writer, engine, bank, note):
    """The note goes into a 500-character, NOT NULL column: a bad one must be refused as
    input (INVALID_INPUT), not cut short, stored too long, or left to fail in the database."""
    account = bank.open()
    rid = propose(writer, "account.freeze", account.number)
    before = counts(engine)
    fails(writer, approvals.approve(rid, checker=CHECKER, note=note), "INVALID_INPUT")
    assert counts(engine) == before
    still_pending(engine, rid)
    assert status(engine, account) == "active"


def test_unknown_request_is_not_found(writer, engine, bank):
    account = bank.open()
    rid = propose(writer, "account.freeze", account.number)
    before = counts(engine)
    fails(writer, approvals.approve(rid + 1000, checker=CHECKER), "APPROVAL_NOT_FOUND")
    fails(writer, approvals.reject(rid + 1000, checker=CHECKER, note="n"), "APPROVAL_NOT_FOUND")
    fails(writer, approvals.approve(str(rid), checker=CHECKER), "INVALID_INPUT")  # type: ignore[arg-type]
    with engine.connect() as conn, pytest.raises(EbankError) as caught:
        approvals.get(conn, rid + 1000)
    assert caught.value.code == "APPROVAL_NOT_FOUND"
    assert counts(engine) == before
    still_pending(engine, rid)


# -- proposals that are refused -----------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "params", "extra", "code"),
    [
        ("account.destroy", "ACCOUNT", {}, "INVALID_INPUT"),
        ("ACCOUNT.FREEZE", "ACCOUNT", {}, "INVALID_INPUT"),
        ("account.freeze", {"account": "6217001999999999990"}, {}, "ACCOUNT_NOT_FOUND"),
        ("account.freeze", {"account": "GL-CASH"}, {}, "ACCOUNT_NOT_FOUND"),
        ("account.freeze", {"account": 42}, {}, "INVALID_INPUT"),
        ("account.freeze", {}, {}, "INVALID_INPUT"),
        ("account.freeze", {"number": "ACCOUNT"}, {}, "INVALID_INPUT"),
        ("account.freeze", {"account": "ACCOUNT", "status": "active"}, {}, "INVALID_INPUT"),
        ("account.close", "ACCOUNT", {"reason": ""}, "INVALID_INPUT"),
        ("account.close", "ACCOUNT", {"reason": "   "}, "INVALID_INPUT"),
        ("account.close", "ACCOUNT", {"reason": "r" * 501}, "INVALID_INPUT"),
        ("account.close", "ACCOUNT", {"maker": ""}, "INVALID_INPUT"),
        ("account.close", "ACCOUNT", {"maker": "m" * 129}, "INVALID_INPUT"),
    ],
)
def test_a_bad_proposal_is_refused_and_writes_nothing(
    writer, engine, bank, action, params, extra, code
):
    account = bank.open()
    if params == "ACCOUNT":
        params = {"account": account.number}
    params = {k: account.number if v == "ACCOUNT" else v for k, v in params.items()}
    kw = {"reason": "because", "maker": MAKER} | extra
    before = counts(engine)
    fails(writer, approvals.propose(action, params, **kw), code)
    assert counts(engine) == before
    assert pending(engine) == []
    sound(engine)


# -- the actions and the statuses they need ---------------------------------------------
def test_unfreeze_needs_a_frozen_account_and_a_failed_approval_stays_pending(writer, engine, bank):
    account = bank.open()
    unfreeze = propose(writer, "account.unfreeze", account.number)
    before = counts(engine)
    error = fails(writer, approvals.approve(unfreeze, checker=CHECKER), "INVALID_STATUS_CHANGE")
    assert error.details == {"from_status": "active", "to_status": "active"}
    # the decision and its audit record went with the failed action
    assert counts(engine) == before
    assert audit_rows(engine, "account.unfreeze.approve") == []
    still_pending(engine, unfreeze)
    assert status(engine, account) == "active"

    approve(writer, propose(writer, "account.freeze", account.number))
    assert status(engine, account) == "frozen"
    assert approve(writer, unfreeze) == "active"  # the same request, now it applies
    assert request(engine, unfreeze).status == "approved"
    assert status(engine, account) == "active"
    sound(engine)


def test_reinstate_needs_a_suspended_account(writer, engine, bank):
    account = bank.open()
    reinstate = propose(writer, "account.reinstate", account.number)
    fails(writer, approvals.approve(reinstate, checker=CHECKER), "INVALID_STATUS_CHANGE")
    still_pending(engine, reinstate)

    approve(writer, propose(writer, "account.freeze", account.number))
    fails(writer, approvals.approve(reinstate, checker=CHECKER), "INVALID_STATUS_CHANGE")
    still_pending(engine, reinstate)
    assert status(engine, account) == "frozen"

    approve(writer, propose(writer, "account.suspend", account.number))
    assert status(engine, account) == "suspended"
    assert approve(writer, reinstate) == "active"
    assert status(engine, account) == "active"
    sound(engine)


def test_a_suspended_account_neither_pays_nor_receives(writer, engine, bank):
    account = bank.open()
    writer.execute(move(bank.cash, account.ledger_account_id, 300_00))
    assert approve(writer, propose(writer, "account.suspend", account.number)) == "suspended"
    fails(writer, move(account.ledger_account_id, bank.cash, 1_00), "ACCOUNT_SUSPENDED")
    fails(writer, move(bank.cash, account.ledger_account_id, 1_00), "ACCOUNT_SUSPENDED")
    assert balance(engine, account) == 300_00
    # a suspended account cannot be unfrozen, only reinstated
    unfreeze = propose(writer, "account.unfreeze", account.number)
    fails(writer, approvals.approve(unfreeze, checker=CHECKER), "INVALID_STATUS_CHANGE")
    still_pending(engine, unfreeze)
    sound(engine)


def test_closing_an_account_with_money_fails_and_stays_pending(writer, engine, bank):
    account = bank.open()
    writer.execute(move(bank.cash, account.ledger_account_id, 10_00))
    close = propose(writer, "account.close", account.number)
    before = counts(engine)
    fails(writer, approvals.approve(close, checker=CHECKER), "ACCOUNT_NOT_EMPTY")
    assert counts(engine) == before
    still_pending(engine, close)
    assert (status(engine, account), balance(engine, account)) == ("active", 10_00)

    # emptied, the same request closes it
    writer.execute(move(account.ledger_account_id, bank.cash, 10_00))
    assert approve(writer, close) == "closed"
    assert status(engine, account) == "closed"
    fails(writer, move(bank.cash, account.ledger_account_id, 1_00), "ACCOUNT_CLOSED")
    sound(engine)


def test_closing_needs_the_hold_released_and_the_money_gone(writer, engine, bank):
    account = bank.open()
    writer.execute(move(bank.cash, account.ledger_account_id, 10_00))
    hold = writer.execute(
        ledger.command(
            lambda tx: ledger.place_hold(
                tx, account_id=account.ledger_account_id, amount=10_00,
                expires_at=tx.now + timedelta(days=1),
            )
        )
    )  # fmt: skip
    close = propose(writer, "account.close", account.number)
    fails(writer, approvals.approve(close, checker=CHECKER), "ACCOUNT_NOT_EMPTY")
    still_pending(engine, close)
    writer.execute(ledger.command(lambda tx: ledger.release_hold(tx, hold_id=hold.id)))
    writer.execute(move(account.ledger_account_id, bank.cash, 10_00))
    assert approve(writer, close) == "closed"
    sound(engine)


def test_closing_an_empty_account_closes_it(writer, engine, bank):
    account = bank.open("III")
    assert approve(writer, propose(writer, "account.close", account.number)) == "closed"
    assert status(engine, account) == "closed"
    # nothing can be done with a closed account: every action on it is refused
    for action in ("account.freeze", "account.unfreeze", "account.suspend", "account.close"):
        rid = propose(writer, action, account.number)
        fails(writer, approvals.approve(rid, checker=CHECKER), "INVALID_STATUS_CHANGE")
        still_pending(engine, rid)
    sound(engine)


# -- the audit trail -------------------------------------------------------------------------
def test_every_proposal_and_decision_is_audited_with_the_staff_member(writer, engine, bank):
    account = bank.open()
    subject = f"account:{account.number}"
    approved = propose(writer, "account.freeze", account.number)
    approve(writer, approved)
    rejected = propose(writer, "account.freeze", account.number, maker="staff:8")
    writer.execute(approvals.reject(rejected, checker=CHECKER, note="already frozen"))

    proposals = audit_rows(engine, "account.freeze.propose")
    assert [(r["actor"], r["subject"], r["outcome"]) for r in proposals] == [
        (MAKER, subject, "ok"), ("staff:8", subject, "ok"),
    ]  # fmt: skip
    assert [json.loads(r["detail"])["request"] for r in proposals] == [approved, rejected]
    assert json.loads(proposals[0]["detail"])["reason"] == "court order 2026-17"

    (approval,) = audit_rows(engine, "account.freeze.approve")
    assert (approval["actor"], approval["subject"]) == (CHECKER, subject)
    assert json.loads(approval["detail"]) == {
        "request": approved,
        "maker": MAKER,
        "note": "checked",
    }

    (rejection,) = audit_rows(engine, "account.freeze.reject")
    assert (rejection["actor"], rejection["subject"]) == (CHECKER, subject)
    assert json.loads(rejection["detail"]) == {
        "request": rejected, "maker": "staff:8", "note": "already frozen",
    }  # fmt: skip
    assert all(r["channel"] == "console" for r in [*proposals, approval, rejection])
    with engine.connect() as conn:
        assert audit.verify(conn).ok
    sound(engine)


# -- races ----------------------------------------------------------------------------------
def test_two_checkers_approving_at_once_in_one_batch_approve_once(writer, engine, bank):
    account = bank.open()
    rid = propose(writer, "account.freeze", account.number)
    outcomes = in_one_batch(
        writer,
        [
            approvals.approve(rid, checker="staff:8", note="first"),
            approvals.approve(rid, checker="staff:9", note="second"),
        ],
    )
    codes = sorted(code_of(o) for o in outcomes)
    assert codes == ["APPROVAL_DECIDED", "ok"], outcomes
    assert "frozen" in outcomes
    assert decisions(engine) == 1
    assert len(audit_rows(engine, "account.freeze.approve")) == 1
    assert request(engine, rid).status == "approved"
    assert status(engine, account) == "frozen"
    sound(engine)


def test_two_writers_approving_the_same_requests_at_once_approve_each_once(
    writer, engine, bank, clock
):
    """Two checkers on two writers (as two processes would be) approve the same requests at
    the same moment: each request is approved once, the loser is told APPROVAL_DECIDED."""
    numbers = [bank.open("II").number for _ in range(8)]
    requests = [propose(writer, "account.freeze", n) for n in numbers]
    pairs = race_two_writers(
        writer, engine, clock,
        [approvals.approve(rid, checker="staff:8") for rid in requests],
        [approvals.approve(rid, checker="staff:9") for rid in requests],
    )  # fmt: skip
    for pair in pairs:
        codes = sorted(code_of(x) for x in pair)
        assert codes == ["APPROVAL_DECIDED", "ok"], pair
    assert decisions(engine) == len(requests)
    assert len(audit_rows(engine, "account.freeze.approve")) == len(requests)
    with engine.connect() as conn:
        assert {accounts.get_account(conn, number=n).status for n in numbers} == {"frozen"}
    sound(engine)
