"""Randomised workloads against a plain Python model of the ledger, on SQLite and PostgreSQL.

A hypothesis state machine drives a handful of accounts through transfers, multi-leg entries,
holds and their captures, releases and expiry, reversals, status changes and reused
idempotency keys: alone, several in one writer batch, or several in one command (all or
nothing). Many steps must be refused; the model says which error codes are acceptable. After
every step the database must agree with the model and `check_invariants` must find nothing
wrong.
"""

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, func, select

import ebank.tables  # noqa: F401  (every table on the shared MetaData, for the reset)
from ebank.core.clock import FixedClock
from ebank.core.db import make_engine, metadata
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR
from ebank.core.writer import Command, Writer
from ebank.ledger import queries as Q
from ebank.ledger import service as L
from ebank.ledger.models import EntryResult, HoldResult, Leg
from ebank.ledger.tables import entries
from tests.support import in_one_batch

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SCOPE = "prop"
KEYS = ("k0", "k1", "k2")
# (code, kind, normal side, credit line, overdraft allowed, opening balance)
CHART = (
    ("GL", "internal", "D", 0, True, 0),
    ("A", "customer", "C", 0, False, 500_00),
    ("B", "customer", "C", 0, False, 120_00),
    ("C", "customer", "C", 300_00, False, 0),
    ("D", "customer", "C", 0, False, 0),
)
CUSTOMERS = tuple(code for code, kind, *_ in CHART if kind == "customer")
CODES = tuple(code for code, *_ in CHART)
STATUSES = ("active", "active", "active", "frozen", "dormant", "suspended", "closed")
TRANSITIONS = {
    "active": {"dormant", "frozen", "suspended", "closed"},
    "dormant": {"active", "frozen", "suspended", "closed"},
    "frozen": {"active", "suspended"},
    "suspended": {"active", "frozen"},
    "closed": set(),
}

# Mostly sound amounts; the few drawn past the top are ones that must be refused.
BAD_AMOUNTS = (0, -1_00, MAX_MINOR + 1)
amounts = st.integers(1, 400_00 + len(BAD_AMOUNTS)).map(
    lambda n: n if n <= 400_00 else BAD_AMOUNTS[n - 400_00 - 1]
)
skews = st.integers(0, 9).map(lambda r: {1: 1, 2: -1}.get(r, 0))  # sometimes unbalanced
codes = st.sampled_from(CODES)
picks = st.integers(min_value=0, max_value=1_000)  # an index into what exists, modulo its size


def other(debit: str, credit: str) -> str:
    """`credit`, or the next code when it is `debit`: a transfer goes between two accounts."""
    return credit if credit != debit else CODES[(CODES.index(credit) + 1) % len(CODES)]


def valid_amount(amount: Any) -> bool:
    return type(amount) is int and 0 < amount <= MAX_MINOR


# -- the model ----------------------------------------------------------------------------
@dataclass
class MAccount:
    id: int
    code: str
    normal_side: str
    credit_line: int
    overdraft: bool
    status: str = "active"
    balance: int = 0
    held: int = 0

    def delta(self, leg: Leg) -> int:
        return leg.amount if (leg.side == "C") == (self.normal_side == "C") else -leg.amount


@dataclass
class MHold:
    id: int
    account_id: int
    amount: int
    remaining: int
    expires_at: datetime
    status: str = "pending"


@dataclass
class MEntry:
    id: int
    legs: list[Leg]
    reverses: int | None = None
    reversed: bool = False


@dataclass
class Model:
    now: datetime
    accounts: dict[int, MAccount] = field(default_factory=dict)
    holds: dict[int, MHold] = field(default_factory=dict)
    entries: dict[int, MEntry] = field(default_factory=dict)
    keys: dict[str, tuple[tuple[Any, ...], EntryResult]] = field(default_factory=dict)

    def by_code(self, code: str) -> MAccount:
        return next(a for a in self.accounts.values() if a.code == code)

    @staticmethod
    def status_error(acc: MAccount, *, outflow: bool, counter: bool) -> str | None:
        """DOMAIN.md §2: frozen and dormant receive only; suspended nothing but counter
        business; closed nothing."""
        if acc.status == "closed":
            return "ACCOUNT_CLOSED"
        if acc.status == "suspended" and not counter:
            return "ACCOUNT_SUSPENDED"
        if outflow and acc.status == "frozen":
            return "ACCOUNT_FROZEN"
        if outflow and acc.status == "dormant":
            return "ACCOUNT_DORMANT"
        return None

    def below_floor(self, acc: MAccount, balance: int, held: int) -> bool:
        return not acc.overdraft and balance - held + acc.credit_line < 0

    def judge_post(
        self, legs: Sequence[Leg], *, counter: bool = False, release: tuple[int, int] | None = None
    ) -> set[str]:
        """The codes an entry may be refused with; empty when it must post."""
        if len(legs) < 2:
            return {"UNBALANCED_ENTRY"}
        bad = set()
        for leg in legs:
            if not valid_amount(leg.amount):
                bad.add("INVALID_AMOUNT")
            elif leg.account_id not in self.accounts:
                bad.add("ACCOUNT_NOT_FOUND")
        if bad:
            return bad
        if sum(leg.amount if leg.side == "D" else -leg.amount for leg in legs) != 0:
            return {"UNBALANCED_ENTRY"}  # every account here is in CNY
        deltas: dict[int, int] = {}
        for leg in legs:
            deltas[leg.account_id] = deltas.get(leg.account_id, 0) + self.accounts[
                leg.account_id
            ].delta(leg)
        for acc_id, delta in deltas.items():
            acc = self.accounts[acc_id]
            code = self.status_error(acc, outflow=delta < 0, counter=counter)
            if code:
                bad.add(code)
            freed = release[1] if release and release[0] == acc_id else 0
            if delta < 0 and self.below_floor(acc, acc.balance + delta, acc.held - freed):
                bad.add("INSUFFICIENT_FUNDS")
        return bad

    def apply_post(
        self,
        entry: EntryResult,
        legs: Sequence[Leg],
        *,
        reverses: int | None = None,
        release: tuple[int, int] | None = None,
    ) -> None:
        assert isinstance(entry, EntryResult), entry
        assert entry.id not in self.entries, "an entry id was handed out twice"
        for leg in legs:
            acc = self.accounts[leg.account_id]
            acc.balance += acc.delta(leg)
        if release:
            self.accounts[release[0]].held -= release[1]
        self.entries[entry.id] = MEntry(entry.id, list(legs), reverses)


# -- operations: a writer command plus what the model says must come of it ----------------
class Op:
    """One ledger operation. `refusals` is what the model says it may be refused with (empty:
    it must succeed); `apply` checks a success's result and brings the model up to date."""

    def fn(self, tx: Any) -> Any:
        raise NotImplementedError

    def command(self) -> Command[Any]:
        return L.command(self.fn)

    def refusals(self, model: Model) -> set[str]:
        raise NotImplementedError

    def apply(self, model: Model, result: Any) -> None:
        raise NotImplementedError

    def stand_in(self, n: int) -> Any:
        """A result of the right shape, to play the operation through on a copy of the model."""
        return EntryResult(-n, "")

    def settle(self, model: Model, outcome: Any) -> None:
        refusals = self.refusals(model)
        if refusals:
            assert isinstance(outcome, EbankError), f"{self}: expected {refusals}, got {outcome!r}"
            assert outcome.code in refusals, f"{self}: expected {refusals}, got {outcome.code}"
        else:
            assert not isinstance(outcome, EbankError), f"{self}: refused with {outcome.code}"
            self.apply(model, outcome)


@dataclass
class Transfer(Op):
    debit: int
    credit: int
    amount: Any
    key: str | None = None

    @property
    def legs(self) -> list[Leg]:
        return [Leg(self.debit, "D", self.amount), Leg(self.credit, "C", self.amount)]

    def fn(self, tx: Any) -> Any:
        return L.transfer(tx, debit=self.debit, credit=self.credit, amount=self.amount)

    def command(self) -> Command[Any]:
        if self.key is None:
            return super().command()
        return L.transfer_command(
            debit=self.debit, credit=self.credit, amount=self.amount, scope=SCOPE, key=self.key
        )

    def settle(self, model: Model, outcome: Any) -> None:
        if self.key is None or self.key not in model.keys:
            return super().settle(model, outcome)
        first_params, first_result = model.keys[self.key]
        if first_params == (self.debit, self.credit, self.amount):
            assert outcome == first_result, "a replay must return the first result"
            assert isinstance(outcome, EntryResult)
        else:
            assert isinstance(outcome, EbankError) and outcome.code == "IDEMPOTENCY_CONFLICT"
        return None

    def refusals(self, model: Model) -> set[str]:
        return model.judge_post(self.legs)

    def apply(self, model: Model, result: Any) -> None:
        model.apply_post(result, self.legs)
        if self.key is not None:
            model.keys[self.key] = ((self.debit, self.credit, self.amount), result)


@dataclass
class Post(Op):
    legs: list[Leg]

    def fn(self, tx: Any) -> Any:
        return L.post(tx, self.legs, kind="multi")

    def refusals(self, model: Model) -> set[str]:
        return model.judge_post(self.legs)

    def apply(self, model: Model, result: Any) -> None:
        model.apply_post(result, self.legs)


@dataclass
class PlaceHold(Op):
    account_id: int
    amount: Any
    expires_at: datetime

    def fn(self, tx: Any) -> Any:
        return L.place_hold(
            tx, account_id=self.account_id, amount=self.amount, expires_at=self.expires_at
        )

    def refusals(self, model: Model) -> set[str]:
        acc = model.accounts[self.account_id]
        if not valid_amount(self.amount):
            return {"INVALID_AMOUNT"}
        code = model.status_error(acc, outflow=True, counter=False)
        if code:
            return {code}
        if model.below_floor(acc, acc.balance, acc.held + self.amount):
            return {"INSUFFICIENT_FUNDS"}
        return set()

    def apply(self, model: Model, result: Any) -> None:
        assert isinstance(result, HoldResult), result
        assert (result.remaining, result.status) == (self.amount, "pending")
        assert result.id not in model.holds
        model.accounts[self.account_id].held += self.amount
        model.holds[result.id] = MHold(
            result.id, self.account_id, self.amount, self.amount, self.expires_at
        )

    def stand_in(self, n: int) -> Any:
        return HoldResult(-n, "", self.amount, "pending")


@dataclass
class Capture(Op):
    hold_id: int
    to: list[tuple[int, Any]]
    final: bool

    def fn(self, tx: Any) -> Any:
        return L.capture_hold(tx, hold_id=self.hold_id, to=self.to, final=self.final)

    def legs(self, model: Model) -> list[Leg]:
        amount = sum(a for _, a in self.to)
        holder = model.holds[self.hold_id].account_id
        return [Leg(holder, "D", amount), *(Leg(acc, "C", a) for acc, a in self.to)]

    def refusals(self, model: Model) -> set[str]:
        hold = model.holds[self.hold_id]
        if hold.status != "pending":
            return {"HOLD_NOT_PENDING"}
        if model.now >= hold.expires_at:
            return {"HOLD_EXPIRED"}
        if not all(valid_amount(a) for _, a in self.to):
            return {"INVALID_AMOUNT"}
        amount = sum(a for _, a in self.to)
        if amount > hold.remaining:
            return {"CAPTURE_EXCEEDS_HOLD"}
        return model.judge_post(self.legs(model), release=(hold.account_id, amount))

    def apply(self, model: Model, result: Any) -> None:
        hold = model.holds[self.hold_id]
        amount = sum(a for _, a in self.to)
        model.apply_post(result, self.legs(model), release=(hold.account_id, amount))
        hold.remaining -= amount
        if hold.remaining == 0:
            hold.status = "captured"
        elif self.final:
            model.accounts[hold.account_id].held -= hold.remaining
            hold.remaining, hold.status = 0, "captured"


@dataclass
class Release(Op):
    hold_id: int

    def fn(self, tx: Any) -> Any:
        return L.release_hold(tx, hold_id=self.hold_id)

    def refusals(self, model: Model) -> set[str]:
        return set() if model.holds[self.hold_id].status == "pending" else {"HOLD_NOT_PENDING"}

    def apply(self, model: Model, result: Any) -> None:
        hold = model.holds[self.hold_id]
        assert isinstance(result, HoldResult), result
        assert (result.id, result.remaining, result.status) == (hold.id, 0, "released")
        model.accounts[hold.account_id].held -= hold.remaining
        hold.remaining, hold.status = 0, "released"

    def stand_in(self, n: int) -> Any:
        return HoldResult(self.hold_id, "", 0, "released")


@dataclass
class Expire(Op):
    def fn(self, tx: Any) -> Any:
        return L.expire_holds(tx)

    def refusals(self, model: Model) -> set[str]:
        return set()

    def apply(self, model: Model, result: Any) -> None:
        due = [
            h for h in model.holds.values() if h.status == "pending" and h.expires_at <= model.now
        ]
        assert result == len(due), f"expired {result}, expected {len(due)}"
        for hold in due:
            model.accounts[hold.account_id].held -= hold.remaining
            hold.remaining, hold.status = 0, "expired"


@dataclass
class Reverse(Op):
    entry_id: int

    def fn(self, tx: Any) -> Any:
        return L.reverse(tx, entry_id=self.entry_id)

    def legs(self, model: Model) -> list[Leg]:
        flip = {"D": "C", "C": "D"}
        return [
            Leg(g.account_id, flip[g.side], g.amount) for g in model.entries[self.entry_id].legs
        ]

    def refusals(self, model: Model) -> set[str]:
        entry = model.entries[self.entry_id]
        if entry.reverses is not None:
            return {"CANNOT_REVERSE_REVERSAL"}
        if entry.reversed:
            return {"ALREADY_REVERSED"}
        return model.judge_post(self.legs(model), counter=True)

    def apply(self, model: Model, result: Any) -> None:
        model.apply_post(result, self.legs(model), reverses=self.entry_id)
        model.entries[self.entry_id].reversed = True


@dataclass
class SetStatus(Op):
    account_id: int
    status: str

    def fn(self, tx: Any) -> Any:
        return L.set_status(tx, account_id=self.account_id, status=self.status)

    def refusals(self, model: Model) -> set[str]:
        acc = model.accounts[self.account_id]
        if self.status not in TRANSITIONS[acc.status]:
            return {"INVALID_STATUS_CHANGE"}
        if self.status == "closed" and (acc.balance or acc.held):
            return {"ACCOUNT_NOT_EMPTY"}
        return set()

    def apply(self, model: Model, result: Any) -> None:
        assert result.status == self.status
        model.accounts[self.account_id].status = self.status


@dataclass
class Compound(Op):
    """Several operations in ONE command: all of them happen, or (the first refusal) none."""

    ops: list[Op]

    def fn(self, tx: Any) -> Any:
        return [op.fn(tx) for op in self.ops]

    def refusals(self, model: Model) -> set[str]:
        trial = copy.deepcopy(model)
        for n, op in enumerate(self.ops, start=1):
            refusals = op.refusals(trial)
            if refusals:
                return refusals
            op.apply(trial, op.stand_in(n))
        return set()

    def apply(self, model: Model, result: Any) -> None:
        for op, one in zip(self.ops, result, strict=True):
            op.apply(model, one)


# -- running ------------------------------------------------------------------------------
def reset(engine: Engine) -> None:
    """Empty every table, so that each example starts from a fresh, migrated database."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def outcome_of(writer: Writer, command: Command[Any]) -> Any:
    try:
        return writer.execute(command)
    except EbankError as exc:
        return exc


def ledger_machine(engine: Engine) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset(engine)
            self.clock = FixedClock(START)
            self.writer = Writer(engine, clock=self.clock)
            self.model = Model(START)

        @initialize()
        def open_and_fund_accounts(self) -> None:
            def open_chart(tx: Any) -> list[Any]:
                return [
                    L.open_account(
                        tx,
                        code=code,
                        name=code,
                        currency="CNY",
                        kind=kind,
                        normal_side=side,
                        credit_line=line,
                        overdraft_allowed=over,
                    )
                    for code, kind, side, line, over, _ in CHART
                ]

            views = self.writer.execute(L.command(open_chart))
            for view, (code, _, side, line, over, _) in zip(views, CHART, strict=True):
                self.model.accounts[view.id] = MAccount(view.id, code, side, line, over)
            gl = self.model.by_code("GL").id
            for code, *_, opening in CHART:
                if opening:
                    self.run([Transfer(gl, self.model.by_code(code).id, opening)])

        def teardown(self) -> None:
            self.writer.close()

        def run(self, ops: Sequence[Op]) -> None:
            if len(ops) == 1:
                outcomes = [outcome_of(self.writer, ops[0].command())]
            else:
                outcomes = in_one_batch(self.writer, [op.command() for op in ops])
            for op, outcome in zip(ops, outcomes, strict=True):
                if isinstance(outcome, BaseException) and not isinstance(outcome, EbankError):
                    raise outcome  # a crash, not a refusal
                op.settle(self.model, outcome)

        def id_of(self, code: str) -> int:
            return self.model.by_code(code).id

        def pick(self, items: dict[int, Any], index: int) -> int:
            keys = sorted(items)
            return keys[index % len(keys)]

        def live_holds(self, any_hold: bool) -> dict[int, MHold]:
            """Mostly the pending holds (if there are any), sometimes every hold."""
            live = {i: h for i, h in self.model.holds.items() if h.status == "pending"}
            return self.model.holds if any_hold or not live else live

        def live_entries(self, any_entry: bool) -> dict[int, MEntry]:
            """Mostly entries one may reverse (if there are any), sometimes every entry."""
            live = {
                i: e for i, e in self.model.entries.items() if e.reverses is None and not e.reversed
            }
            return self.model.entries if any_entry or not live else live

        # -- rules ----------------------------------------------------------------------
        @rule(debit=codes, credit=codes, amount=amounts, key=st.none() | st.sampled_from(KEYS))
        def transfer(self, debit: str, credit: str, amount: Any, key: str | None) -> None:
            self.run([Transfer(self.id_of(debit), self.id_of(other(debit, credit)), amount, key)])

        @precondition(lambda self: self.model.keys)
        @rule(pick=picks)
        def replay_a_key(self, pick: int) -> None:
            key = sorted(self.model.keys)[pick % len(self.model.keys)]
            (debit, credit, amount), _ = self.model.keys[key]
            self.run([Transfer(debit, credit, amount, key)])

        @rule(
            debits=st.lists(st.tuples(codes, amounts), min_size=1, max_size=2),
            credits=st.lists(codes, min_size=1, max_size=3),
            skew=skews,
        )
        def multi_leg_post(
            self, debits: list[tuple[str, Any]], credits: list[str], skew: int
        ) -> None:
            legs = [Leg(self.id_of(c), "D", a) for c, a in debits]
            total = sum(a for _, a in debits)
            share, rest = divmod(total, len(credits))
            amounts_ = [share] * len(credits)
            amounts_[0] += rest + skew  # a skew makes the entry unbalanced
            legs += [Leg(self.id_of(c), "C", a) for c, a in zip(credits, amounts_, strict=True)]
            self.run([Post(legs)])

        @rule(code=codes, amount=amounts, minutes=st.integers(1, 120))
        def place_hold(self, code: str, amount: Any, minutes: int) -> None:
            expires = self.clock.now() + timedelta(minutes=minutes)
            self.run([PlaceHold(self.id_of(code), amount, expires)])

        @precondition(lambda self: self.model.holds)
        @rule(
            pick=picks,
            to=st.lists(st.tuples(codes, amounts), min_size=1, max_size=2),
            final=st.booleans(),
            whole=st.booleans(),
            any_hold=st.integers(0, 4),
        )
        def capture(
            self, pick: int, to: list[tuple[str, Any]], final: bool, whole: bool, any_hold: int
        ) -> None:
            hold = self.model.holds[self.pick(self.live_holds(any_hold == 0), pick)]
            payees = [(self.id_of(c), a) for c, a in to]
            if whole and hold.remaining:  # capture exactly what remains
                payees = [(payees[0][0], hold.remaining)]
            self.run([Capture(hold.id, payees, final)])

        @precondition(lambda self: self.model.holds)
        @rule(pick=picks)
        def release(self, pick: int) -> None:
            self.run([Release(self.pick(self.model.holds, pick))])

        @rule(minutes=st.integers(1, 90), expire=st.booleans())
        def time_passes(self, minutes: int, expire: bool) -> None:
            self.model.now = self.clock.advance(timedelta(minutes=minutes))
            if expire:
                self.run([Expire()])

        @precondition(lambda self: self.model.entries)
        @rule(pick=picks, any_entry=st.integers(0, 3))
        def reverse(self, pick: int, any_entry: int) -> None:
            self.run([Reverse(self.pick(self.live_entries(any_entry == 0), pick))])

        @rule(code=st.sampled_from(CUSTOMERS), status=st.sampled_from(STATUSES))
        def set_status(self, code: str, status: str) -> None:
            self.run([SetStatus(self.id_of(code), status)])

        def draw_op(self, data: st.DataObject, *, keyed: bool) -> Op | None:
            """One operation on what exists (None when it needs what does not exist yet)."""
            kind = data.draw(
                st.sampled_from(
                    ["transfer", "keyed", "post", "hold", "capture", "release", "reverse"]
                )
            )
            draw_id = lambda: self.id_of(data.draw(codes))  # noqa: E731
            if kind == "transfer" or (kind == "keyed" and keyed):
                key = data.draw(st.sampled_from(KEYS)) if kind == "keyed" else None
                debit, credit = data.draw(codes), data.draw(codes)
                return Transfer(
                    self.id_of(debit), self.id_of(other(debit, credit)), data.draw(amounts), key
                )
            if kind == "post":
                amount = data.draw(amounts)
                return Post(
                    [
                        Leg(draw_id(), "D", amount),
                        Leg(draw_id(), "C", 1),
                        Leg(draw_id(), "C", amount - 1),
                    ]
                )
            if kind == "hold":
                expires = self.clock.now() + timedelta(minutes=data.draw(st.integers(1, 60)))
                return PlaceHold(draw_id(), data.draw(amounts), expires)
            if kind == "capture" and self.model.holds:
                hold_id = self.pick(self.live_holds(False), data.draw(picks))
                return Capture(hold_id, [(draw_id(), data.draw(amounts))], data.draw(st.booleans()))
            if kind == "release" and self.model.holds:
                return Release(self.pick(self.live_holds(False), data.draw(picks)))
            if kind == "reverse" and self.model.entries:
                return Reverse(self.pick(self.live_entries(False), data.draw(picks)))
            return None

        @rule(data=st.data(), size=st.integers(2, 6))
        def several_in_one_batch(self, data: st.DataObject, size: int) -> None:
            ops = [op for _ in range(size) if (op := self.draw_op(data, keyed=True))]
            if len(ops) >= 2:
                self.run(ops)

        @rule(data=st.data(), size=st.integers(2, 4))
        def several_in_one_command(self, data: st.DataObject, size: int) -> None:
            ops = [op for _ in range(size) if (op := self.draw_op(data, keyed=False))]
            if len(ops) >= 2:
                self.run([Compound(ops)])

        # -- after every step -----------------------------------------------------------
        @invariant()
        def database_agrees_with_the_model(self) -> None:
            with engine.connect() as conn:
                assert Q.check_invariants(conn) == []
                views = [Q.get_account(conn, account_id=i) for i in self.model.accounts]
                holds = [Q.get_hold(conn, i) for i in self.model.holds]
                count = conn.execute(select(func.count()).select_from(entries)).scalar_one()
            for view in views:
                acc = self.model.accounts[view.id]
                assert (view.balance, view.held, view.status) == (
                    acc.balance,
                    acc.held,
                    acc.status,
                ), acc.code
                assert view.available == view.balance - view.held + acc.credit_line
                if not acc.overdraft:
                    assert view.balance - view.held >= -acc.credit_line, acc.code
            for stored in holds:
                hold = self.model.holds[stored.id]
                assert (stored.remaining, stored.status) == (hold.remaining, hold.status)
            assert count == len(self.model.entries)
            # Double entry: over the whole book, credit-normal and debit-normal balances cancel.
            assert sum(v.balance if v.normal_side == "C" else -v.balance for v in views) == 0

    return LedgerMachine


def test_random_operations_keep_the_ledger_sound_and_equal_to_the_model(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        run_state_machine_as_test(
            ledger_machine(engine),
            settings=settings(
                max_examples=40,
                stateful_step_count=40,
                deadline=None,
                database=None,
                # No shrinking: it replays the database work hundreds of times (minutes). The
                # report still lists every step of the failing run.
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        engine.dispose()
