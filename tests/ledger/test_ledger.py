"""The ledger's behaviours, one per test, each on SQLite and PostgreSQL."""

import base64
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Writer
from ebank.ledger import queries as Q
from ebank.ledger import service as L
from ebank.ledger.models import AccountView, EntryResult, HoldResult, Leg
from ebank.ledger.tables import accounts, entries, hold_events, holds, postings
from tests.support import in_one_batch


# -- helpers ------------------------------------------------------------------------------
def run(writer: Writer, fn: Callable[[Any], Any], accounts: Sequence[int] = ()) -> Any:
    return writer.execute(L.command(fn, accounts=accounts))


def open_account(writer: Writer, code: str, **kw: Any) -> AccountView:
    kw.setdefault("currency", "CNY")
    return run(writer, lambda tx: L.open_account(tx, code=code, name=code.lower(), **kw))


def move(writer: Writer, debit: int, credit: int, amount: int, **kw: Any) -> EntryResult:
    return run(writer, lambda tx: L.transfer(tx, debit=debit, credit=credit, amount=amount, **kw))


def acct(engine: Engine, account_id: int) -> AccountView:
    with engine.connect() as conn:
        return Q.get_account(conn, account_id=account_id)


def problems(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return Q.check_invariants(conn)


def snapshot(engine: Engine) -> tuple[Any, ...]:
    """Everything the ledger has written: row counts, every account's and every hold's state."""
    with engine.connect() as conn:
        counts = tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (accounts, entries, postings, holds, hold_events)
        )
        ids = conn.execute(select(accounts.c.id).order_by(accounts.c.id)).scalars().all()
        states = tuple(Q.get_account(conn, account_id=i) for i in ids)
        hold_ids = conn.execute(select(holds.c.id).order_by(holds.c.id)).scalars().all()
        hold_states = tuple(Q.get_hold(conn, i) for i in hold_ids)
    return counts, states, hold_states


def refused(writer: Writer, engine: Engine, fn: Callable[[Any], Any], code: str) -> EbankError:
    """Run `fn`, expect the error `code`, and that nothing at all was written."""
    before = snapshot(engine)
    with pytest.raises(EbankError) as caught:
        run(writer, fn)
    assert caught.value.code == code, caught.value
    assert snapshot(engine) == before
    assert problems(engine) == []
    return caught.value


@dataclass
class Book:
    cash: AccountView  # internal, debit-normal, may go anywhere
    alice: AccountView
    bob: AccountView
    shop: AccountView
    funding: EntryResult  # cash -> alice, START


START = 100_00


@pytest.fixture
def book(writer: Writer) -> Book:
    cash = open_account(writer, "GL-CASH", kind="internal", normal_side="D", overdraft_allowed=True)
    alice = open_account(writer, "ALICE")
    bob = open_account(writer, "BOB")
    shop = open_account(writer, "SHOP")
    return Book(cash, alice, bob, shop, move(writer, cash.id, alice.id, START))


def balances(engine: Engine, *accs: AccountView) -> list[int]:
    return [acct(engine, a.id).balance for a in accs]


# -- posting ------------------------------------------------------------------------------
def test_balanced_multi_leg_entry_posts_every_leg_atomically(writer, engine, book):
    legs = [
        Leg(book.alice.id, "D", 60_00),
        Leg(book.bob.id, "C", 45_00),
        Leg(book.shop.id, "C", 15_00),
    ]
    result = run(writer, lambda tx: L.post(tx, legs, memo="split"))
    assert balances(engine, book.alice, book.bob, book.shop) == [40_00, 45_00, 15_00]
    with engine.connect() as conn:
        entry = Q.get_entry(conn, entry_id=result.id)
    assert [(p.account_id, p.side, p.amount) for p in entry.postings] == [
        (leg.account_id, leg.side, leg.amount) for leg in legs
    ]
    assert [p.balance_after for p in entry.postings] == [40_00, 45_00, 15_00]
    assert entry.memo == "split" and entry.reference == result.reference
    assert problems(engine) == []


def test_entry_with_one_refused_leg_writes_none_of_its_legs(writer, engine, book):
    # Bob has nothing: his leg fails, so Alice's leg, checked first, must not post either.
    legs = [
        Leg(book.alice.id, "D", 10_00),
        Leg(book.bob.id, "D", 5_00),
        Leg(book.shop.id, "C", 15_00),
    ]
    refused(writer, engine, lambda tx: L.post(tx, legs), "INSUFFICIENT_FUNDS")


def test_unbalanced_entry_is_refused_and_writes_nothing(writer, engine, book):
    legs = [Leg(book.alice.id, "D", 10_00), Leg(book.bob.id, "C", 9_99)]
    refused(writer, engine, lambda tx: L.post(tx, legs), "UNBALANCED_ENTRY")


@pytest.mark.parametrize("count", [0, 1])
def test_entry_of_fewer_than_two_legs_is_refused(writer, engine, book, count):
    legs = [Leg(book.alice.id, "D", 10_00)][:count]
    refused(writer, engine, lambda tx: L.post(tx, legs), "UNBALANCED_ENTRY")


@pytest.mark.parametrize(
    "amount",
    [0, -5_00, 5.0, 5.5, Decimal("5.00"), "500", True, None, 10**14 + 1, 2**63, 2**70],
    ids=repr,
)
def test_bad_amount_is_refused_and_writes_nothing(writer, engine, book, amount):
    legs = [Leg(book.alice.id, "D", amount), Leg(book.bob.id, "C", amount)]
    refused(writer, engine, lambda tx: L.post(tx, legs), "INVALID_AMOUNT")
    transfer = lambda tx: L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=amount)  # noqa: E731
    refused(writer, engine, transfer, "INVALID_AMOUNT")


def test_largest_allowed_amount_posts_between_unbounded_accounts(writer, engine, book):
    suspense = open_account(writer, "GL-SUSP", kind="internal", overdraft_allowed=True)
    move(writer, suspense.id, book.bob.id, 10**14)
    assert acct(engine, book.bob.id).balance == 10**14
    assert acct(engine, suspense.id).balance == -(10**14)
    assert problems(engine) == []


def test_leg_on_an_unknown_account_is_refused(writer, engine, book):
    legs = [Leg(book.alice.id, "D", 1_00), Leg(987_654, "C", 1_00)]
    refused(writer, engine, lambda tx: L.post(tx, legs), "ACCOUNT_NOT_FOUND")


@pytest.mark.parametrize(
    "cast", [str, float, Decimal, lambda i: None], ids=["str", "float", "Decimal", "None"]
)
def test_leg_with_an_account_id_of_the_wrong_type_is_refused(writer, engine, book, cast):
    legs = [Leg(cast(book.alice.id), "D", 1_00), Leg(book.bob.id, "C", 1_00)]
    before = snapshot(engine)
    with pytest.raises(EbankError) as caught:
        # Prefetching the real accounts puts them in the batch's cache, as a transfer does.
        run(writer, lambda tx: L.post(tx, legs), accounts=(book.alice.id, book.bob.id))
    assert caught.value.code in ("INVALID_INPUT", "ACCOUNT_NOT_FOUND")
    assert snapshot(engine) == before


def _hold_for(book: Book, **kw: Any) -> Callable[[Any], Any]:
    kw = {"account_id": book.alice.id, "amount": 1_00, "memo": ""} | kw
    return lambda tx: L.place_hold(tx, expires_at=kw.pop("expires_at", tx.now + timedelta(1)), **kw)


BAD_INPUT: dict[str, Callable[[Book], Callable[[Any], Any]]] = {
    # The columns hold 200 and 24 characters: PostgreSQL would cut the text, SQLite keep it.
    "hold memo of 201 chars": lambda b: _hold_for(b, memo="m" * 201),
    "entry kind of 25 chars": lambda b: (
        lambda tx: L.transfer(tx, debit=b.alice.id, credit=b.bob.id, amount=1_00, kind="k" * 25)
    ),
    "account name of 201 chars": lambda b: (
        lambda tx: L.open_account(tx, code="LONG", name="n" * 201, currency="CNY")
    ),
    # A business day is not an instant.
    "hold expiry a date": lambda b: _hold_for(b, expires_at=date(2030, 1, 1)),
    # SQLite would compare "5" with 5 and reverse entry 5.
    "entry id a string": lambda b: lambda tx: L.reverse(tx, entry_id=str(b.funding.id)),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_wrong_input_is_refused_with_a_clear_error_and_writes_nothing(writer, engine, book, case):
    """Channels parse their input, but the ledger is the last line: a wrong type or an
    oversized text is an INVALID_INPUT, never a crash, a database error or a silent cut."""
    fn = BAD_INPUT[case](book)
    before = snapshot(engine)
    with pytest.raises(EbankError) as caught:
        run(writer, fn)
    assert caught.value.code in ("INVALID_INPUT", "INVALID_AMOUNT")
    assert snapshot(engine) == before


def test_leg_with_an_unknown_side_is_refused(writer, engine, book):
    legs = [Leg(book.alice.id, "X", 1_00), Leg(book.bob.id, "C", 1_00)]
    refused(writer, engine, lambda tx: L.post(tx, legs), "INVALID_INPUT")


def test_multi_currency_entry_posts_when_it_balances_in_each_currency(writer, engine, book):
    fx_cny = open_account(writer, "GL-FX-CNY", kind="internal", overdraft_allowed=True)
    fx_usd = open_account(
        writer, "GL-FX-USD", currency="USD", kind="internal", overdraft_allowed=True
    )
    alice_usd = open_account(writer, "ALICE-USD", currency="USD")
    legs = [
        Leg(book.alice.id, "D", 72_00),
        Leg(fx_cny.id, "C", 72_00),
        Leg(fx_usd.id, "D", 10_00),
        Leg(alice_usd.id, "C", 10_00),
    ]
    run(writer, lambda tx: L.post(tx, legs, kind="fx"))
    assert balances(engine, book.alice, alice_usd, fx_cny, fx_usd) == [28_00, 10_00, 72_00, -10_00]
    assert problems(engine) == []


def test_multi_currency_entry_that_balances_only_in_total_is_refused(writer, engine, book):
    alice_usd = open_account(writer, "ALICE-USD", currency="USD")
    legs = [Leg(book.alice.id, "D", 10_00), Leg(alice_usd.id, "C", 10_00)]
    before = snapshot(engine)
    with pytest.raises(EbankError) as caught:
        run(writer, lambda tx: L.post(tx, legs))
    assert caught.value.code == "UNBALANCED_ENTRY"
    assert snapshot(engine) == before


def test_opening_an_account_in_an_unknown_currency_is_refused(writer, engine, book):
    refused(
        writer,
        engine,
        lambda tx: L.open_account(tx, code="X", name="x", currency="XXX"),
        "UNKNOWN_CURRENCY",
    )


def test_opening_an_account_with_a_taken_code_is_refused(writer, engine, book):
    refused(
        writer,
        engine,
        lambda tx: L.open_account(tx, code="BOB", name="b", currency="CNY"),
        "ACCOUNT_EXISTS",
    )


# -- the floor ----------------------------------------------------------------------------
def test_customer_account_cannot_go_below_zero(writer, engine, book):
    pay = lambda n: lambda tx: L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=n)  # noqa: E731
    refused(writer, engine, pay(START + 1), "INSUFFICIENT_FUNDS")
    run(writer, pay(START))
    assert balances(engine, book.alice, book.bob) == [0, START]
    refused(writer, engine, pay(1), "INSUFFICIENT_FUNDS")


def test_credit_line_lets_the_balance_reach_minus_the_credit_line(writer, engine, book):
    card = open_account(writer, "CARD", credit_line=500_00)
    view = acct(engine, card.id)
    assert (view.balance, view.available) == (0, 500_00)
    pay = lambda n: lambda tx: L.transfer(tx, debit=card.id, credit=book.shop.id, amount=n)  # noqa: E731
    run(writer, pay(300_00))
    refused(writer, engine, pay(200_01), "INSUFFICIENT_FUNDS")
    run(writer, pay(200_00))
    view = acct(engine, card.id)
    assert (view.balance, view.held, view.available) == (-500_00, 0, 0)
    refused(writer, engine, pay(1), "INSUFFICIENT_FUNDS")
    assert problems(engine) == []


def test_credit_line_can_be_raised_and_lowered_only_to_what_is_used(writer, engine, book):
    card = open_account(writer, "CARD", credit_line=100_00)
    move(writer, card.id, book.shop.id, 80_00)
    run(writer, lambda tx: L.set_credit_line(tx, account_id=card.id, credit_line=200_00))
    move(writer, card.id, book.shop.id, 100_00)
    refused(
        writer,
        engine,
        lambda tx: L.set_credit_line(tx, account_id=card.id, credit_line=179_99),
        "INSUFFICIENT_FUNDS",
    )
    run(writer, lambda tx: L.set_credit_line(tx, account_id=card.id, credit_line=180_00))
    assert acct(engine, card.id).available == 0
    assert problems(engine) == []


@pytest.mark.parametrize("normal_side", ["C", "D"])
def test_overdraft_allowed_internal_account_goes_anywhere(writer, engine, book, normal_side):
    gl = open_account(
        writer, "GL-X", kind="internal", normal_side=normal_side, overdraft_allowed=True
    )
    # Debiting a credit-normal account lowers its balance; crediting a debit-normal one does.
    debit, credit = (gl.id, book.bob.id) if normal_side == "C" else (book.cash.id, gl.id)
    for _ in range(6):
        move(writer, debit, credit, 10**14)
    assert acct(engine, gl.id).balance == -6 * 10**14
    assert problems(engine) == []


# -- account status -----------------------------------------------------------------------
def set_status(writer: Writer, account: AccountView, status: str) -> AccountView:
    return run(writer, lambda tx: L.set_status(tx, account_id=account.id, status=status))


@pytest.mark.parametrize(
    ("status", "code"), [("frozen", "ACCOUNT_FROZEN"), ("dormant", "ACCOUNT_DORMANT")]
)
def test_frozen_and_dormant_accounts_receive_but_cannot_pay(writer, engine, book, status, code):
    assert set_status(writer, book.alice, status).status == status
    move(writer, book.cash.id, book.alice.id, 5_00)
    assert acct(engine, book.alice.id).balance == START + 5_00
    pay = lambda tx: L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=1_00)  # noqa: E731
    refused(writer, engine, pay, code)
    hold = lambda tx: L.place_hold(  # noqa: E731
        tx, account_id=book.alice.id, amount=1_00, expires_at=tx.now + timedelta(hours=1)
    )
    refused(writer, engine, hold, code)
    set_status(writer, book.alice, "active")
    run(writer, pay)
    assert acct(engine, book.alice.id).balance == START + 4_00


def test_frozen_account_cannot_pay_even_at_the_counter(writer, engine, book):
    set_status(writer, book.alice, "frozen")
    legs = [Leg(book.alice.id, "D", 1_00), Leg(book.bob.id, "C", 1_00)]
    refused(writer, engine, lambda tx: L.post(tx, legs, counter=True), "ACCOUNT_FROZEN")


def test_suspended_account_neither_pays_nor_receives_except_at_the_counter(writer, engine, book):
    set_status(writer, book.alice, "suspended")
    out_legs = [Leg(book.alice.id, "D", 1_00), Leg(book.bob.id, "C", 1_00)]
    in_legs = [Leg(book.cash.id, "D", 2_00), Leg(book.alice.id, "C", 2_00)]
    refused(writer, engine, lambda tx: L.post(tx, out_legs), "ACCOUNT_SUSPENDED")
    refused(writer, engine, lambda tx: L.post(tx, in_legs), "ACCOUNT_SUSPENDED")
    hold = lambda tx: L.place_hold(  # noqa: E731
        tx, account_id=book.alice.id, amount=1_00, expires_at=tx.now + timedelta(hours=1)
    )
    refused(writer, engine, hold, "ACCOUNT_SUSPENDED")
    run(writer, lambda tx: L.post(tx, out_legs, counter=True))
    run(writer, lambda tx: L.post(tx, in_legs, counter=True))
    assert balances(engine, book.alice, book.bob) == [START + 1_00, 1_00]
    assert problems(engine) == []


def test_closed_account_neither_pays_nor_receives(writer, engine, book):
    set_status(writer, book.bob, "closed")
    out_legs = [Leg(book.bob.id, "D", 1_00), Leg(book.alice.id, "C", 1_00)]
    in_legs = [Leg(book.alice.id, "D", 1_00), Leg(book.bob.id, "C", 1_00)]
    for legs in (out_legs, in_legs):
        refused(writer, engine, lambda tx, legs=legs: L.post(tx, legs), "ACCOUNT_CLOSED")
        refused(
            writer, engine, lambda tx, legs=legs: L.post(tx, legs, counter=True), "ACCOUNT_CLOSED"
        )


def test_closing_needs_a_zero_balance(writer, engine, book):
    close = lambda tx: L.set_status(tx, account_id=book.alice.id, status="closed")  # noqa: E731
    refused(writer, engine, close, "ACCOUNT_NOT_EMPTY")
    move(writer, book.alice.id, book.bob.id, START)
    assert run(writer, close).status == "closed"


def test_closing_needs_no_pending_hold(writer, engine, book):
    card = open_account(writer, "CARD", credit_line=10_00)
    hold = run(
        writer,
        lambda tx: L.place_hold(
            tx, account_id=card.id, amount=3_00, expires_at=tx.now + timedelta(hours=1)
        ),
    )
    assert acct(engine, card.id).balance == 0
    close = lambda tx: L.set_status(tx, account_id=card.id, status="closed")  # noqa: E731
    refused(writer, engine, close, "ACCOUNT_NOT_EMPTY")
    run(writer, lambda tx: L.release_hold(tx, hold_id=hold.id))
    assert run(writer, close).status == "closed"


def test_overdrawn_account_cannot_be_closed(writer, engine, book):
    card = open_account(writer, "CARD", credit_line=10_00)
    move(writer, card.id, book.shop.id, 1_00)
    refused(
        writer,
        engine,
        lambda tx: L.set_status(tx, account_id=card.id, status="closed"),
        "ACCOUNT_NOT_EMPTY",
    )


@pytest.mark.parametrize(
    "path",
    [
        ["dormant", "active"],
        ["frozen", "active"],
        ["suspended", "active"],
        ["dormant", "frozen", "suspended", "frozen", "active"],
        ["dormant", "suspended"],
    ],
)
def test_valid_status_changes_are_applied(writer, engine, book, path):
    for status in path:
        assert set_status(writer, book.alice, status).status == status
        assert acct(engine, book.alice.id).status == status


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], "active"),
        (["frozen"], "dormant"),
        (["frozen"], "closed"),
        (["suspended"], "dormant"),
        (["suspended"], "closed"),
        (["dormant"], "dormant"),
    ],
)
def test_invalid_status_change_is_refused(writer, engine, book, path, bad):
    for status in path:
        set_status(writer, book.alice, status)
    change = lambda tx: L.set_status(tx, account_id=book.alice.id, status=bad)  # noqa: E731
    refused(writer, engine, change, "INVALID_STATUS_CHANGE")


@pytest.mark.parametrize("status", ["active", "dormant", "frozen", "suspended", "closed"])
def test_closed_account_can_never_change_status(writer, engine, book, status):
    set_status(writer, book.bob, "closed")
    change = lambda tx: L.set_status(tx, account_id=book.bob.id, status=status)  # noqa: E731
    refused(writer, engine, change, "INVALID_STATUS_CHANGE")


def test_unknown_status_is_refused(writer, engine, book):
    change = lambda tx: L.set_status(tx, account_id=book.alice.id, status="asleep")  # noqa: E731
    refused(writer, engine, change, "INVALID_INPUT")


# -- holds --------------------------------------------------------------------------------
def place(writer: Writer, account: AccountView, amount: int, hours: float = 1) -> HoldResult:
    return run(
        writer,
        lambda tx: L.place_hold(
            tx, account_id=account.id, amount=amount, expires_at=tx.now + timedelta(hours=hours)
        ),
    )


def capture(
    writer: Writer, hold: HoldResult, to: list[tuple[int, int]], final: bool = False
) -> EntryResult:
    return run(writer, lambda tx: L.capture_hold(tx, hold_id=hold.id, to=to, final=final))


def hold_view(engine: Engine, hold: HoldResult) -> Any:
    with engine.connect() as conn:
        return Q.get_hold(conn, hold.id)


def test_hold_reduces_available_but_not_balance(writer, engine, book):
    hold = place(writer, book.alice, 30_00)
    assert (hold.remaining, hold.status) == (30_00, "pending")
    view = acct(engine, book.alice.id)
    assert (view.balance, view.held, view.available) == (START, 30_00, START - 30_00)
    stored = hold_view(engine, hold)
    assert (stored.account_id, stored.amount, stored.remaining) == (book.alice.id, 30_00, 30_00)
    assert problems(engine) == []


def test_hold_cannot_exceed_available(writer, engine, book):
    place(writer, book.alice, 60_00)
    over = lambda tx: L.place_hold(  # noqa: E731
        tx, account_id=book.alice.id, amount=40_01, expires_at=tx.now + timedelta(hours=1)
    )
    refused(writer, engine, over, "INSUFFICIENT_FUNDS")
    place(writer, book.alice, 40_00)
    assert acct(engine, book.alice.id).available == 0


def test_held_money_cannot_be_paid_away(writer, engine, book):
    place(writer, book.alice, 60_00)
    pay = lambda n: lambda tx: L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=n)  # noqa: E731
    refused(writer, engine, pay(40_01), "INSUFFICIENT_FUNDS")
    run(writer, pay(40_00))


def test_hold_must_expire_in_the_future(writer, engine, book):
    past = lambda tx: L.place_hold(tx, account_id=book.alice.id, amount=1_00, expires_at=tx.now)  # noqa: E731
    refused(writer, engine, past, "INVALID_INPUT")


def test_hold_of_a_bad_amount_is_refused(writer, engine, book):
    for amount in (0, -1, 1.0):
        bad = lambda tx, a=amount: L.place_hold(  # noqa: E731
            tx, account_id=book.alice.id, amount=a, expires_at=tx.now + timedelta(hours=1)
        )
        refused(writer, engine, bad, "INVALID_AMOUNT")


def test_capture_part_then_part(writer, engine, book):
    hold = place(writer, book.alice, 50_00)
    first = capture(writer, hold, [(book.shop.id, 20_00)])
    second = capture(writer, hold, [(book.shop.id, 5_00), (book.bob.id, 10_00)])
    assert first.id != second.id
    stored = hold_view(engine, hold)
    assert (stored.remaining, stored.status) == (15_00, "pending")
    alice = acct(engine, book.alice.id)
    assert (alice.balance, alice.held, alice.available) == (START - 35_00, 15_00, 50_00)
    assert balances(engine, book.shop, book.bob) == [25_00, 10_00]
    with engine.connect() as conn:
        entry = Q.get_entry(conn, entry_id=second.id)
    assert entry.hold_id == hold.id and entry.kind == "capture"
    assert problems(engine) == []


def test_capture_of_more_than_remains_is_refused(writer, engine, book):
    hold = place(writer, book.alice, 50_00)
    capture(writer, hold, [(book.shop.id, 30_00)])
    over = lambda tx: L.capture_hold(tx, hold_id=hold.id, to=[(book.shop.id, 20_01)])  # noqa: E731
    refused(writer, engine, over, "CAPTURE_EXCEEDS_HOLD")
    split = lambda tx: L.capture_hold(  # noqa: E731
        tx, hold_id=hold.id, to=[(book.shop.id, 10_01), (book.bob.id, 10_00)]
    )
    refused(writer, engine, split, "CAPTURE_EXCEEDS_HOLD")


def test_capturing_exactly_what_remains_completes_the_hold(writer, engine, book):
    hold = place(writer, book.alice, 50_00)
    capture(writer, hold, [(book.shop.id, 50_00)])
    stored = hold_view(engine, hold)
    assert (stored.remaining, stored.status) == (0, "captured")
    assert acct(engine, book.alice.id).held == 0
    again = lambda tx: L.capture_hold(tx, hold_id=hold.id, to=[(book.shop.id, 1)])  # noqa: E731
    refused(writer, engine, again, "HOLD_NOT_PENDING")


def test_final_capture_releases_the_rest(writer, engine, book):
    hold = place(writer, book.alice, 50_00)
    capture(writer, hold, [(book.shop.id, 20_00)], final=True)
    stored = hold_view(engine, hold)
    assert (stored.remaining, stored.status) == (0, "captured")
    alice = acct(engine, book.alice.id)
    assert (alice.balance, alice.held, alice.available) == (START - 20_00, 0, START - 20_00)
    again = lambda tx: L.capture_hold(tx, hold_id=hold.id, to=[(book.shop.id, 1)])  # noqa: E731
    refused(writer, engine, again, "HOLD_NOT_PENDING")
    assert problems(engine) == []


def test_release_gives_the_hold_back_to_available(writer, engine, book):
    hold = place(writer, book.alice, 50_00)
    capture(writer, hold, [(book.shop.id, 10_00)])
    released = run(writer, lambda tx: L.release_hold(tx, hold_id=hold.id))
    assert (released.remaining, released.status) == (0, "released")
    alice = acct(engine, book.alice.id)
    assert (alice.balance, alice.held, alice.available) == (START - 10_00, 0, START - 10_00)
    for op in (
        lambda tx: L.release_hold(tx, hold_id=hold.id),
        lambda tx: L.capture_hold(tx, hold_id=hold.id, to=[(book.shop.id, 1)]),
    ):
        refused(writer, engine, op, "HOLD_NOT_PENDING")


def test_operation_on_an_unknown_hold_is_refused(writer, engine, book):
    refused(writer, engine, lambda tx: L.release_hold(tx, hold_id=424242), "HOLD_NOT_FOUND")


def test_capture_after_expiry_is_refused(writer, engine, book, clock):
    hold = place(writer, book.alice, 50_00, hours=1)
    clock.advance(timedelta(minutes=59))
    capture(writer, hold, [(book.shop.id, 10_00)])
    clock.advance(timedelta(minutes=1))
    late = lambda tx: L.capture_hold(tx, hold_id=hold.id, to=[(book.shop.id, 10_00)])  # noqa: E731
    refused(writer, engine, late, "HOLD_EXPIRED")
    assert balances(engine, book.alice, book.shop) == [START - 10_00, 10_00]


def test_expire_holds_releases_due_holds_only(writer, engine, book, clock):
    short = place(writer, book.alice, 10_00, hours=1)
    long = place(writer, book.alice, 20_00, hours=3)
    done = place(writer, book.alice, 5_00, hours=1)
    capture(writer, done, [(book.shop.id, 5_00)])
    assert run(writer, lambda tx: L.expire_holds(tx)) == 0
    clock.advance(timedelta(hours=2))
    assert run(writer, lambda tx: L.expire_holds(tx)) == 1
    assert (hold_view(engine, short).status, hold_view(engine, short).remaining) == ("expired", 0)
    assert (hold_view(engine, long).status, hold_view(engine, long).remaining) == ("pending", 20_00)
    assert hold_view(engine, done).status == "captured"
    alice = acct(engine, book.alice.id)
    assert (alice.balance, alice.held) == (START - 5_00, 20_00)
    assert run(writer, lambda tx: L.expire_holds(tx)) == 0
    clock.advance(timedelta(hours=1))
    assert run(writer, lambda tx: L.expire_holds(tx)) == 1
    assert acct(engine, book.alice.id).held == 0
    assert problems(engine) == []


# -- reversal -----------------------------------------------------------------------------
def reverse(writer: Writer, entry: EntryResult) -> EntryResult:
    return run(writer, lambda tx: L.reverse(tx, entry_id=entry.id))


def test_reversal_is_a_linked_entry_of_opposite_legs_that_restores_balances(writer, engine, book):
    legs = [
        Leg(book.alice.id, "D", 30_00),
        Leg(book.bob.id, "C", 20_00),
        Leg(book.shop.id, "C", 10_00),
    ]
    before = balances(engine, book.alice, book.bob, book.shop)
    original = run(writer, lambda tx: L.post(tx, legs))
    reversal = reverse(writer, original)
    assert balances(engine, book.alice, book.bob, book.shop) == before
    with engine.connect() as conn:
        orig_view = Q.get_entry(conn, entry_id=original.id)
        rev_view = Q.get_entry(conn, entry_id=reversal.id)
    assert rev_view.kind == "reversal" and rev_view.reverses_id == original.id
    assert orig_view.reversed_by_id == reversal.id and orig_view.reverses_id is None
    flip = {"D": "C", "C": "D"}
    assert [(p.account_id, p.side, p.amount) for p in rev_view.postings] == [
        (p.account_id, flip[p.side], p.amount) for p in orig_view.postings
    ]
    assert problems(engine) == []


def test_second_reversal_is_refused(writer, engine, book):
    original = move(writer, book.alice.id, book.bob.id, 10_00)
    reverse(writer, original)
    refused(writer, engine, lambda tx: L.reverse(tx, entry_id=original.id), "ALREADY_REVERSED")


def test_reversing_a_reversal_is_refused(writer, engine, book):
    reversal = reverse(writer, move(writer, book.alice.id, book.bob.id, 10_00))
    refused(
        writer, engine, lambda tx: L.reverse(tx, entry_id=reversal.id), "CANNOT_REVERSE_REVERSAL"
    )


def test_reversing_an_unknown_entry_is_refused(writer, engine, book):
    refused(writer, engine, lambda tx: L.reverse(tx, entry_id=777_777), "ENTRY_NOT_FOUND")


def test_reversal_in_the_same_batch_as_the_original_works(writer, engine, book):
    done: dict[str, EntryResult] = {}

    def step(name: str, fn: Callable[[Any], EntryResult]) -> Command[EntryResult]:
        def remembered(tx: Any) -> EntryResult:
            done[name] = fn(tx)
            return done[name]

        return L.command(remembered)

    original, reversal, again, of_reversal = in_one_batch(
        writer,
        [
            step(
                "pay",
                lambda tx: L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=10_00),
            ),
            step("undo", lambda tx: L.reverse(tx, entry_id=done["pay"].id)),
            L.command(lambda tx: L.reverse(tx, entry_id=done["pay"].id)),
            L.command(lambda tx: L.reverse(tx, entry_id=done["undo"].id)),
        ],
    )
    assert isinstance(original, EntryResult) and isinstance(reversal, EntryResult)
    assert isinstance(again, EbankError) and again.code == "ALREADY_REVERSED"
    assert isinstance(of_reversal, EbankError) and of_reversal.code == "CANNOT_REVERSE_REVERSAL"
    assert balances(engine, book.alice, book.bob) == [START, 0]
    with engine.connect() as conn:
        assert Q.get_entry(conn, entry_id=reversal.id).reverses_id == original.id
    # And once committed, the same answers come from the database.
    refused(writer, engine, lambda tx: L.reverse(tx, entry_id=original.id), "ALREADY_REVERSED")
    refused(
        writer, engine, lambda tx: L.reverse(tx, entry_id=reversal.id), "CANNOT_REVERSE_REVERSAL"
    )


def test_reversal_in_the_same_command_as_the_original_works(writer, engine, book):
    def pay_and_undo(tx: Any) -> EntryResult:
        entry = L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=10_00)
        return L.reverse(tx, entry_id=entry.id)

    reversal = run(writer, pay_and_undo)
    assert balances(engine, book.alice, book.bob) == [START, 0]
    with engine.connect() as conn:
        assert Q.get_entry(conn, entry_id=reversal.id).reverses_id is not None
    assert problems(engine) == []


def test_reversal_of_a_capture_gives_the_money_back(writer, engine, book):
    hold = place(writer, book.alice, 50_00)
    entry = capture(writer, hold, [(book.shop.id, 20_00)])
    reverse(writer, entry)
    assert balances(engine, book.alice, book.shop) == [START, 0]
    assert acct(engine, book.alice.id).held == 30_00
    assert problems(engine) == []


# -- batches and idempotency --------------------------------------------------------------
def test_refused_command_leaves_its_batch_neighbours_intact(writer, engine, book):
    pay = lambda n: L.command(  # noqa: E731
        lambda tx: L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=n)
    )
    hold = L.command(
        lambda tx: L.place_hold(
            tx, account_id=book.alice.id, amount=START, expires_at=tx.now + timedelta(hours=1)
        )
    )
    outcomes = in_one_batch(writer, [pay(10_00), pay(START), hold, pay(20_00), pay(70_01)])
    codes = [o.code if isinstance(o, EbankError) else "ok" for o in outcomes]
    assert codes == ["ok", "INSUFFICIENT_FUNDS", "INSUFFICIENT_FUNDS", "ok", "INSUFFICIENT_FUNDS"]
    alice = acct(engine, book.alice.id)
    assert (alice.balance, alice.held) == (START - 30_00, 0)
    assert acct(engine, book.bob.id).balance == 30_00
    assert problems(engine) == []


def test_command_refused_part_way_undoes_everything_it_did(writer, engine, book):
    def several(tx: Any) -> None:
        L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=30_00)
        hold = L.place_hold(
            tx, account_id=book.bob.id, amount=20_00, expires_at=tx.now + timedelta(hours=1)
        )
        L.capture_hold(tx, hold_id=hold.id, to=[(book.shop.id, 5_00)])
        L.set_status(tx, account_id=book.shop.id, status="frozen")
        L.open_account(tx, code="NEW", name="new", currency="CNY")
        L.transfer(tx, debit=book.alice.id, credit=book.bob.id, amount=START)  # too much now

    before = snapshot(engine)
    refused_one, neighbour = in_one_batch(
        writer,
        [
            L.command(several),
            L.command(
                lambda tx: L.transfer(tx, debit=book.alice.id, credit=book.shop.id, amount=START)
            ),  # needs all of Alice's money
        ],
    )
    assert isinstance(refused_one, EbankError) and refused_one.code == "INSUFFICIENT_FUNDS"
    assert isinstance(neighbour, EntryResult)
    counts, _, holds_after = snapshot(engine)
    assert counts[0] == before[0][0]  # no account was opened
    assert counts[1:3] == (before[0][1] + 1, before[0][2] + 2)  # only the neighbour's entry
    assert holds_after == before[2]
    assert balances(engine, book.alice, book.bob, book.shop) == [0, 0, START]
    assert acct(engine, book.shop.id).status == "active"
    assert acct(engine, book.bob.id).held == 0
    assert problems(engine) == []


def idem_transfer(book: Book, key: str, amount: int, scope: str = "customer:1") -> Command[Any]:
    return L.transfer_command(
        debit=book.alice.id, credit=book.bob.id, amount=amount, scope=scope, key=key
    )


def entry_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(entries)).scalar_one()


def test_idempotent_transfer_replay_returns_the_same_result_and_posts_once(writer, engine, book):
    first = writer.execute(idem_transfer(book, "k-1", 10_00))
    count = entry_count(engine)
    for _ in range(3):
        again = writer.execute(idem_transfer(book, "k-1", 10_00))
        assert again == first and isinstance(again, EntryResult)
    assert entry_count(engine) == count
    assert balances(engine, book.alice, book.bob) == [START - 10_00, 10_00]


def test_idempotent_replays_in_one_batch_post_once(writer, engine, book):
    outcomes = in_one_batch(writer, [idem_transfer(book, "k-2", 10_00) for _ in range(4)])
    assert all(o == outcomes[0] for o in outcomes) and isinstance(outcomes[0], EntryResult)
    assert balances(engine, book.alice, book.bob) == [START - 10_00, 10_00]
    assert writer.execute(idem_transfer(book, "k-2", 10_00)) == outcomes[0]


def test_same_key_with_other_parameters_is_a_conflict(writer, engine, book):
    first = writer.execute(idem_transfer(book, "k-3", 10_00))
    before = snapshot(engine)
    with pytest.raises(EbankError) as caught:
        writer.execute(idem_transfer(book, "k-3", 10_01))
    assert caught.value.code == "IDEMPOTENCY_CONFLICT"
    outcomes = in_one_batch(
        writer, [idem_transfer(book, "k-4", 1_00), idem_transfer(book, "k-4", 2_00)]
    )
    assert isinstance(outcomes[1], EbankError) and outcomes[1].code == "IDEMPOTENCY_CONFLICT"
    assert snapshot(engine) != before  # k-4's first use posted ...
    assert balances(engine, book.alice, book.bob) == [START - 11_00, 11_00]  # ... exactly once
    assert writer.execute(idem_transfer(book, "k-3", 10_00)) == first


def test_same_key_in_another_scope_is_another_request(writer, engine, book):
    a = writer.execute(idem_transfer(book, "k-5", 10_00, scope="customer:1"))
    b = writer.execute(idem_transfer(book, "k-5", 10_00, scope="customer:2"))
    assert a != b
    assert balances(engine, book.alice, book.bob) == [START - 20_00, 20_00]


def test_malformed_idempotency_key_is_refused(writer, engine, book):
    for key in ("", "x" * 129, "bad\nkey"):
        with pytest.raises(EbankError) as caught:
            idem_transfer(book, key, 1_00)
        assert caught.value.code == "INVALID_INPUT"


# -- queries ------------------------------------------------------------------------------
def test_get_entry_by_id_and_by_reference(writer, engine, book):
    result = move(writer, book.alice.id, book.bob.id, 12_34, memo="rent")
    with engine.connect() as conn:
        by_id = Q.get_entry(conn, entry_id=result.id)
        by_ref = Q.get_entry(conn, reference=result.reference)
        for missing in ({"entry_id": 999_999}, {"reference": "E000"}):
            with pytest.raises(EbankError) as caught:
                Q.get_entry(conn, **missing)
            assert caught.value.code == "ENTRY_NOT_FOUND"
    assert by_id == by_ref
    for forged in (
        result.reference.replace("E20261123", "E20261122"),  # another day
        "H" + result.reference[1:],
        result.reference + "0",
        "E2026112300",
    ):
        with engine.connect() as conn, pytest.raises(EbankError) as caught:
            Q.get_entry(conn, reference=forged)
        assert caught.value.code == "ENTRY_NOT_FOUND"
    assert (by_id.id, by_id.reference, by_id.kind, by_id.memo) == (
        result.id,
        result.reference,
        "transfer",
        "rent",
    )
    assert by_id.reference.startswith("E20261123")  # the business day of the posting
    assert by_id.created_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert [(p.account_code, p.currency, p.side, p.amount) for p in by_id.postings] == [
        ("ALICE", "CNY", "D", 12_34),
        ("BOB", "CNY", "C", 12_34),
    ]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_lookup_by_reference_does_not_depend_on_the_servers_time_zone(
    writer, engine, book, clock, zone
):
    saved = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        # 16:30 UTC is 00:30 the next day in Shanghai, 01:30 in Tokyo, 11:30 in New York.
        clock.set(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
        late = move(writer, book.alice.id, book.bob.id, 1_00)
        hold = place(writer, book.alice, 1_00)
        with engine.connect() as conn:
            assert Q.get_entry(conn, reference=late.reference).id == late.id
            assert Q.get_hold(conn, hold.id).reference == hold.reference
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_get_account_of_an_unknown_account_is_refused(engine, book):
    with engine.connect() as conn, pytest.raises(EbankError) as caught:
        Q.get_account(conn, account_id=31_337)
    assert caught.value.code == "ACCOUNT_NOT_FOUND"
    with engine.connect() as conn:
        assert Q.get_account(conn, code="BOB").id == book.bob.id


def all_lines(engine: Engine, account: AccountView, **kw: Any) -> list[Any]:
    """Every statement line, following the cursor page by page."""
    lines: list[Any] = []
    cursor = None
    with engine.connect() as conn:
        for _ in range(1000):
            page = Q.statement(conn, account.id, cursor=cursor, **kw)
            assert len(page.lines) <= kw.get("limit", 50)
            lines += page.lines
            cursor = page.next_cursor
            if cursor is None:
                return lines
    raise AssertionError("the cursor never ran out")


@pytest.fixture
def history(writer: Writer, clock: FixedClock, book: Book) -> list[datetime]:
    """Alice's postings over three business days; returns the instants they were made at."""
    times: list[datetime] = [clock.now()]  # the funding of the book fixture
    amounts = [1_00, 2_50, 7_00, 3_00, 12_00, 50, 9_99, 4_00]
    for day in range(3):
        for i, amount in enumerate(amounts):
            clock.advance(timedelta(minutes=7))
            times.append(clock.now())
            if i % 3 == 2:
                move(writer, book.cash.id, book.alice.id, amount + day)
            else:
                move(writer, book.alice.id, book.bob.id, amount + day)
        clock.advance(timedelta(days=1))
    return times


def test_statement_running_balance_matches_the_postings(engine, book, history):
    lines = all_lines(engine, book.alice, newest_first=False, limit=7)
    assert len(lines) == len(history)
    running = 0
    for line in lines:
        running += line.amount if line.side == "C" else -line.amount
        assert line.balance_after == running
    assert running == acct(engine, book.alice.id).balance
    assert [line.posted_at for line in lines] == history
    assert problems(engine) == []


def test_statement_orders_newest_first_by_default_and_oldest_first_on_request(
    engine, book, history
):
    newest = all_lines(engine, book.alice, limit=500)
    oldest = all_lines(engine, book.alice, newest_first=False, limit=500)
    assert newest == oldest[::-1]
    assert [x.posting_id for x in oldest] == sorted(x.posting_id for x in oldest)
    assert newest[0].posted_at == history[-1]


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("limit", [1, 3, 8, 25, 26])
def test_cursor_pagination_visits_every_line_exactly_once(
    engine, book, history, newest_first, limit
):
    everything = all_lines(engine, book.alice, newest_first=newest_first, limit=500)
    paged = all_lines(engine, book.alice, newest_first=newest_first, limit=limit)
    ids = [x.posting_id for x in paged]
    assert len(ids) == len(set(ids)) == len(history) == 25
    assert paged == everything


def test_cursor_pagination_with_filters_visits_every_match_exactly_once(engine, book, history):
    everything = all_lines(engine, book.alice, side="D", min_amount=2_00, limit=500)
    paged = all_lines(engine, book.alice, side="D", min_amount=2_00, limit=2)
    assert paged == everything and len(paged) > 4
    assert all(x.side == "D" and x.amount >= 2_00 for x in paged)


def test_statement_filters_by_business_day(engine, book, history):
    first, second, third = (date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25))
    day = {d: all_lines(engine, book.alice, since=d, until=d) for d in (first, second, third)}
    assert [len(day[d]) for d in (first, second, third)] == [9, 8, 8]
    both = all_lines(engine, book.alice, since=second)
    assert {x.posting_id for x in both} == {x.posting_id for x in day[second] + day[third]}
    assert all_lines(engine, book.alice, until=first) == day[first]
    # An instant filter: `until` is exclusive.
    until = all_lines(engine, book.alice, until=history[3], newest_first=False)
    assert [x.posted_at for x in until] == history[:3]


def test_business_day_is_the_shanghai_day_not_the_utc_day(writer, engine, book, clock):
    # 16:30 UTC on the 23rd is 00:30 on the 24th in Shanghai.
    clock.set(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
    late = move(writer, book.alice.id, book.bob.id, 1_00)
    assert late.reference.startswith("E20261124")
    on_24th = all_lines(engine, book.alice, since=date(2026, 11, 24), until=date(2026, 11, 24))
    on_23rd = all_lines(engine, book.alice, since=date(2026, 11, 23), until=date(2026, 11, 23))
    assert [x.entry_id for x in on_24th] == [late.id]
    assert late.id not in [x.entry_id for x in on_23rd] and len(on_23rd) == 1


def test_statement_filters_by_amount_and_side(engine, book, history):
    everything = all_lines(engine, book.alice, limit=500)
    lo = all_lines(engine, book.alice, min_amount=2_50, limit=500)
    hi = all_lines(engine, book.alice, max_amount=2_50, limit=500)
    both = all_lines(engine, book.alice, min_amount=2_50, max_amount=7_01, limit=500)
    assert lo == [x for x in everything if x.amount >= 2_50]
    assert hi == [x for x in everything if x.amount <= 2_50]
    assert both == [x for x in everything if 2_50 <= x.amount <= 7_01]
    for side in ("D", "C"):
        assert all_lines(engine, book.alice, side=side) == [x for x in everything if x.side == side]
    assert all(len(s) > 0 for s in (lo, hi, both))


def forge(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "%%%",
        "é",
        forge("x12"),
        forge("p"),
        forge("p12abc"),
        forge("p1.5"),
        forge("p-1"),
        forge("p0"),
        forge("p" + "9" * 30),
        base64.urlsafe_b64encode(b"p\xff\xfe").decode(),
    ],
    ids=repr,
)
def test_forged_cursor_is_refused(engine, book, history, cursor):
    with engine.connect() as conn, pytest.raises(EbankError) as caught:
        Q.statement(conn, book.alice.id, cursor=cursor)
    assert caught.value.code == "INVALID_INPUT"


@pytest.mark.parametrize("kw", [{"limit": 0}, {"limit": 501}, {"side": "X"}], ids=repr)
def test_statement_refuses_bad_parameters(engine, book, kw):
    with engine.connect() as conn, pytest.raises(EbankError) as caught:
        Q.statement(conn, book.alice.id, **kw)
    assert caught.value.code == "INVALID_INPUT"
