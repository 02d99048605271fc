"""Ledger operations: the only code that changes a balance.

Every operation is a function of the writer's `Tx`. It validates everything first, then
changes the batch's in-memory state; the `LedgerBatch` writes the batch's rows with one
`executemany` per table when the writer flushes. Accounts are read once per batch, locked
(`FOR UPDATE` on PostgreSQL; SQLite's writer already holds the write lock), so that several
processes can share one database.

The invariants, enforced here and nowhere else: every entry balances per currency; an account's
balance is the sum of its postings; holds never exceed what is available; no bounded account's
balance less its holds goes below minus its credit line.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select

from ebank.core.clock import as_utc
from ebank.core.db import BulkWrite, sqlite_time
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR, digits
from ebank.core.writer import Command, Idempotency, Participant, Tx, fingerprint
from ebank.ledger.models import AccountView, EntryResult, HoldResult, Leg, Status, reference
from ebank.ledger.tables import accounts, entries, hold_events, holds, postings

T = TypeVar("T")

_ACCOUNT_COLUMNS = (
    accounts.c.id, accounts.c.code, accounts.c.name, accounts.c.kind, accounts.c.currency,
    accounts.c.normal_side, accounts.c.status, accounts.c.credit_line,
    accounts.c.overdraft_allowed, accounts.c.ceiling, accounts.c.held,
)  # fmt: skip
_HOLD_COLUMNS = (
    holds.c.id, holds.c.account_id, holds.c.amount, holds.c.remaining, holds.c.status,
    holds.c.expires_at, holds.c.created_at,
)  # fmt: skip


# Accounts with their balances, for one array parameter of ids: one statement per batch with
# no per-id bound parameters to expand.
_LOAD_ACCOUNTS = (
    f"SELECT {', '.join('a.' + c.name for c in _ACCOUNT_COLUMNS)}, "
    "COALESCE((SELECT p.balance_after FROM ledger_postings p WHERE p.account_id = a.id "
    "ORDER BY p.id DESC LIMIT 1), 0) FROM ledger_accounts a WHERE a.id "
)
_LOAD_ACCOUNTS_SQLITE = _LOAD_ACCOUNTS + "IN (SELECT value FROM json_each(?))"
_LOAD_ACCOUNTS_PG = _LOAD_ACCOUNTS + "= ANY(%s::bigint[])"


def latest_balance(account_id: Any) -> Any:
    """The running balance of an account's latest posting (0 before its first)."""
    return func.coalesce(
        select(postings.c.balance_after)
        .where(postings.c.account_id == account_id)
        .order_by(postings.c.id.desc())
        .limit(1)
        .scalar_subquery(),
        0,
    )


_LOAD_CHUNK = 500
# PostgreSQL: the ledger owns the single-bigint advisory lock space, keyed by account id.
_LOCK_ACCOUNTS = (
    "SELECT pg_advisory_xact_lock(a.id) "
    "FROM unnest(%s::bigint[]) WITH ORDINALITY AS a(id, n) ORDER BY a.n"
)
_CACHE_LIMIT = 200_000


class _Account:
    """An account's state inside one batch."""

    __slots__ = (
        "balance", "ceiling", "code", "credit_line", "credit_normal", "currency", "held", "id",
        "kind",
        "name", "normal_side", "overdraft_allowed", "status",
    )  # fmt: skip

    def __init__(self, row: Sequence[Any]) -> None:
        (
            self.id, self.code, self.name, self.kind, self.currency, self.normal_side,
            self.status, self.credit_line, self.overdraft_allowed, self.ceiling, self.held,
            self.balance,
        ) = row  # fmt: skip
        self.credit_normal = self.normal_side == "C"

    def state(self) -> tuple[Any, ...]:
        return (self.status, self.credit_line, self.balance, self.held)

    def restore(self, state: tuple[Any, ...]) -> None:
        self.status, self.credit_line, self.balance, self.held = state

    def view(self) -> AccountView:
        return AccountView(
            self.id, self.code, self.name, self.kind, self.currency, self.normal_side,
            self.status, self.credit_line, bool(self.overdraft_allowed), self.balance, self.held,
            self.ceiling,
        )  # fmt: skip


class _Hold:
    __slots__ = ("account_id", "amount", "created_at", "expires_at", "id", "remaining", "status")

    def __init__(self, row: Sequence[Any]) -> None:
        (
            self.id, self.account_id, self.amount, self.remaining, self.status, self.expires_at,
            self.created_at,
        ) = row  # fmt: skip
        self.expires_at = as_utc(self.expires_at)
        self.created_at = as_utc(self.created_at)

    def state(self) -> tuple[Any, ...]:
        return (self.remaining, self.status)

    def restore(self, state: tuple[Any, ...]) -> None:
        self.remaining, self.status = state

    def result(self) -> HoldResult:
        return HoldResult(
            self.id, reference("H", self.id, self.created_at), self.remaining, self.status
        )


class LedgerBatch(Participant):
    """The ledger's share of one writer transaction: cached rows and rows to write."""

    order = 10

    def __init__(self, tx: Tx) -> None:
        super().__init__(tx)
        # Accounts read in this batch, or in earlier ones when the writer says they are
        # still current (SQLite, no other writer since); capped so memory stays bounded.
        if len(tx.carry.get("ledger.accounts", ())) > _CACHE_LIMIT:
            tx.carry.clear()
        self.accounts: dict[int, _Account] = tx.carry.setdefault("ledger.accounts", {})
        self.codes: dict[str, int] = tx.carry.setdefault("ledger.codes", {})
        self.holds: dict[int, _Hold] = {}
        self.new_accounts: list[_Account] = []
        # Rows to write, as tuples in the column order of the statements below.
        self.new_holds: list[tuple[Any, ...]] = []
        self.entries: list[tuple[Any, ...]] = []
        self.postings: list[tuple[Any, ...]] = []
        self.hold_events: list[tuple[Any, ...]] = []
        self.dirty_accounts: dict[int, _Account] = {}
        self.dirty_holds: dict[int, _Hold] = {}
        # Entries posted in this batch and not yet flushed, for reversal look-ups.
        self.posted: dict[int, tuple[str, int | None, list[Leg]]] = {}
        self.reversed_here: set[int] = set()
        self._saved: dict[tuple[str, int], tuple[Any, ...] | None] = {}
        self._marks: tuple[int, ...] = ()

    # -- the per-command undo -----------------------------------------------------------
    def begin_command(self) -> None:
        self._saved = {}
        self._marks = (
            len(self.new_accounts), len(self.new_holds), len(self.entries), len(self.postings),
            len(self.hold_events),
        )  # fmt: skip

    def rollback_command(self) -> None:
        for (kind, key), state in self._saved.items():
            cache: dict[int, Any] = self.accounts if kind == "a" else self.holds
            if state is None:  # created by the failed command
                gone = cache.pop(key)
                if kind == "a":
                    self.codes.pop(gone.code, None)
                    self.dirty_accounts.pop(key, None)
                else:
                    self.dirty_holds.pop(key, None)
            else:
                cache[key].restore(state)
        n_acc, n_holds, n_entries, n_postings, n_events = self._marks
        for entry_id, _kind, _memo, reverses_id, *_ in self.entries[n_entries:]:
            self.posted.pop(entry_id, None)
            if reverses_id is not None:
                self.reversed_here.discard(reverses_id)
        del self.new_accounts[n_acc:]
        del self.new_holds[n_holds:]
        del self.entries[n_entries:]
        del self.postings[n_postings:]
        del self.hold_events[n_events:]
        self._saved = {}

    def _save(self, kind: str, obj: _Account | _Hold, *, new: bool = False) -> None:
        """Remember an object's state before the current command first changes it."""
        self.touch()
        key = (kind, obj.id)
        if key not in self._saved:
            self._saved[key] = None if new else obj.state()

    # -- loading ------------------------------------------------------------------------
    def prefetch(self, hints: list[Any]) -> None:
        ids = {i for hint in hints for i in hint}
        self._load_accounts(ids)

    def _load_accounts(self, ids: Iterable[int]) -> None:
        wanted = sorted(i for i in set(ids) if i not in self.accounts)
        conn = self.tx.raw
        for start in range(0, len(wanted), _LOAD_CHUNK):
            chunk = wanted[start : start + _LOAD_CHUNK]
            if not self.tx.sqlite:
                # Lock first, in one order for every process (no deadlocks); read balances in
                # a later statement, whose snapshot sees what the previous holder committed.
                # Advisory locks live in memory: row locks would write every account's tuple.
                conn.exec_driver_sql(_LOCK_ACCOUNTS, (chunk,)).all()
            if self.tx.sqlite:
                rows = conn.exec_driver_sql(_LOAD_ACCOUNTS_SQLITE, (json.dumps(chunk),))
            else:
                rows = conn.exec_driver_sql(_LOAD_ACCOUNTS_PG, (chunk,))
            for row in rows.all():
                acc = _Account(row)
                self.accounts[acc.id] = acc
                self.codes[acc.code] = acc.id

    def account(self, account_id: int) -> _Account:
        if type(account_id) is not int:  # before the look-up: 2.0 would find account 2
            raise EbankError("INVALID_INPUT", reason="an account id is an integer")
        acc = self.accounts.get(account_id)
        if acc is None:
            self._load_accounts([account_id])
            acc = self.accounts.get(account_id)
            if acc is None:
                raise EbankError("ACCOUNT_NOT_FOUND", account_id=account_id)
        return acc

    def account_id(self, code: str) -> int:
        found = self.codes.get(code)
        if found is None:
            row = self.tx.raw.execute(select(accounts.c.id).where(accounts.c.code == code)).first()
            if row is None:
                raise EbankError("ACCOUNT_NOT_FOUND", code=code)
            found = row[0]
            self._load_accounts([found])
        return found

    def hold(self, hold_id: int) -> _Hold:
        if type(hold_id) is not int:
            raise EbankError("INVALID_INPUT", reason="a hold id is an integer")
        found = self.holds.get(hold_id)
        if found is None:
            conn = self.tx.raw
            owner = conn.execute(select(holds.c.account_id).where(holds.c.id == hold_id)).scalar()
            if owner is None:
                raise EbankError("HOLD_NOT_FOUND", hold_id=hold_id)
            # Every change to a hold changes its account too, so the account's lock guards
            # the hold; read the hold only once that lock is held.
            self._load_accounts([owner])
            row = conn.execute(select(*_HOLD_COLUMNS).where(holds.c.id == hold_id)).one()
            found = self.holds[hold_id] = _Hold(row)
        return found

    # -- writing ------------------------------------------------------------------------
    def flush(self) -> None:
        if not self._unwritten():
            return  # the usual case: every command's SQL asks for a flush first
        conn = self.tx.raw
        if self.new_accounts:
            now = self.tx.now
            conn.execute(
                accounts.insert(),
                [
                    {c.name: getattr(a, c.name) for c in _ACCOUNT_COLUMNS} | {"created_at": now}
                    for a in self.new_accounts
                ],
            )
            for acc in self.new_accounts:
                self.dirty_accounts.pop(acc.id, None)
            self.new_accounts.clear()
        _INSERT_HOLD.run(conn, self.new_holds)
        ENTRY_ROWS.run(conn, self.entries)
        POSTING_ROWS.run(conn, self.postings)
        _INSERT_HOLD_EVENT.run(conn, self.hold_events)
        _UPDATE_ACCOUNT.run(
            conn,
            [(a.status, a.credit_line, a.held, a.id) for a in self.dirty_accounts.values()],
        )  # fmt: skip
        _UPDATE_HOLD.run(conn, [(h.remaining, h.status, h.id) for h in self.dirty_holds.values()])
        for buffer in (self.new_holds, self.entries, self.postings, self.hold_events):
            buffer.clear()
        self.dirty_accounts.clear()
        self.dirty_holds.clear()
        self.posted.clear()
        self.reversed_here.clear()
        self._marks = (0, 0, 0, 0, 0)

    def _unwritten(self) -> bool:
        return bool(
            self.new_accounts or self.new_holds or self.entries or self.postings
            or self.hold_events or self.dirty_accounts or self.dirty_holds or self.posted
            or self.reversed_here
        )  # fmt: skip


_INSERT_HOLD = BulkWrite(
    holds,
    ("id", "account_id", "amount", "remaining", "status", "memo", "expires_at", "created_at"),
)
# Public for `ebank bench storage`, which writes the same rows without the ledger.
ENTRY_ROWS = BulkWrite(entries, ("id", "kind", "memo", "reverses_id", "hold_id", "created_at"))
POSTING_ROWS = BulkWrite(
    postings, ("entry_id", "account_id", "side", "amount", "balance_after", "posted_at")
)
_INSERT_HOLD_EVENT = BulkWrite(hold_events, ("hold_id", "kind", "amount", "entry_id", "at"))
_UPDATE_ACCOUNT = BulkWrite(accounts, ("status", "credit_line", "held"), key="id")
_UPDATE_HOLD = BulkWrite(holds, ("remaining", "status"), key="id")


def _check_text(value: object, what: str, limit: int) -> str:
    """Text that must fit its column: refused, never cut short or left to the database."""
    if not isinstance(value, str) or len(value) > limit:
        raise EbankError("INVALID_INPUT", reason=f"{what} is text of at most {limit} characters")
    return value


def _check_amount(amount: object) -> int:
    if type(amount) is not int:
        raise EbankError("INVALID_AMOUNT", reason="amounts are integers of minor units")
    if amount <= 0:
        raise EbankError("INVALID_AMOUNT", reason="the amount must be positive")
    if amount > MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="the amount is too large")
    return amount


def _check_status(acc: _Account, *, outflow: bool, counter: bool) -> None:
    """What each status forbids: the one place that decides."""
    status = acc.status
    if status == Status.ACTIVE:
        return
    if status == Status.CLOSED:
        raise EbankError("ACCOUNT_CLOSED", account=acc.code)
    if status == Status.SUSPENDED and not counter:
        raise EbankError("ACCOUNT_SUSPENDED", account=acc.code)
    if outflow and status == Status.FROZEN:
        raise EbankError("ACCOUNT_FROZEN", account=acc.code)
    if outflow and status == Status.DORMANT:
        raise EbankError("ACCOUNT_DORMANT", account=acc.code)


def _check_floor(acc: _Account, balance: int, held: int) -> None:
    if not acc.overdraft_allowed and balance - held + acc.credit_line < 0:
        raise EbankError("INSUFFICIENT_FUNDS", account=acc.code)


# -- operations ---------------------------------------------------------------------------
def open_account(
    tx: Tx,
    *,
    code: str,
    name: str,
    currency: str,
    kind: str = "customer",
    normal_side: str = "C",
    credit_line: int = 0,
    overdraft_allowed: bool = False,
    ceiling: int | None = None,
    exist_ok: bool = False,
) -> AccountView:
    """Open a ledger account; with `exist_ok`, an account of that code is returned as it is."""
    digits(currency)
    if kind not in ("customer", "internal") or normal_side not in ("C", "D"):
        raise EbankError("INVALID_INPUT", reason="kind is customer|internal, side C|D")
    if not isinstance(code, str) or not code or len(code) > 40 or not code.isprintable():
        raise EbankError("INVALID_INPUT", reason="an account code is 1-40 printable characters")
    _check_text(name, "an account name", 200)
    if ceiling is not None and (type(ceiling) is not int or not 0 <= ceiling <= MAX_MINOR):
        raise EbankError("INVALID_INPUT", reason="a balance ceiling is a non-negative integer")
    if type(credit_line) is not int or credit_line < 0 or credit_line > MAX_MINOR:
        raise EbankError("INVALID_INPUT", reason="a credit line is a non-negative integer")
    batch = tx.part(LedgerBatch)
    existing = batch.codes.get(code)
    if existing is None:
        existing = tx.raw.execute(select(accounts.c.id).where(accounts.c.code == code)).scalar()
    if existing is not None:
        if exist_ok:
            return batch.account(existing).view()
        raise EbankError("ACCOUNT_EXISTS", code=code)
    acc = _Account(
        (tx.new_id("ledger_accounts"), code, name, kind, currency, normal_side, Status.ACTIVE.value,
         credit_line, overdraft_allowed, ceiling, 0, 0)
    )  # fmt: skip
    batch._save("a", acc, new=True)
    batch.accounts[acc.id] = acc
    batch.codes[code] = acc.id
    batch.new_accounts.append(acc)
    return acc.view()


def post(
    tx: Tx,
    legs: Sequence[Leg],
    *,
    kind: str = "transfer",
    memo: str = "",
    counter: bool = False,
    _reverses_id: int | None = None,
    _hold: tuple[_Hold, int] | None = None,
) -> EntryResult:
    """Post one balanced journal entry of two or more legs, atomically.

    `counter` marks business done at the counter by staff, which a suspended account allows.
    """
    batch = tx.part(LedgerBatch)
    if len(legs) < 2:
        raise EbankError("UNBALANCED_ENTRY", reason="an entry has at least two legs")
    _check_text(memo, "a memo", 200)
    _check_text(kind, "an entry kind", 24)
    net_by_currency: dict[str, int] = {}
    deltas: dict[int, int] = {}
    for leg in legs:
        amount = _check_amount(leg.amount)
        if leg.side not in ("D", "C"):
            raise EbankError("INVALID_INPUT", reason="a leg's side is D or C")
        acc = batch.account(leg.account_id)
        signed = amount if leg.side == "D" else -amount
        net_by_currency[acc.currency] = net_by_currency.get(acc.currency, 0) + signed
        grows = (leg.side == "C") == acc.credit_normal
        deltas[acc.id] = deltas.get(acc.id, 0) + (amount if grows else -amount)
    if any(net_by_currency.values()):
        raise EbankError("UNBALANCED_ENTRY", reason="debits and credits differ")
    held_release: dict[int, int] = {}
    if _hold is not None:
        hold, captured = _hold
        held_release[hold.account_id] = captured
    for acc_id, delta in deltas.items():
        acc = batch.accounts[acc_id]
        _check_status(acc, outflow=delta < 0, counter=counter)
        if delta < 0:
            _check_floor(acc, acc.balance + delta, acc.held - held_release.get(acc_id, 0))
        elif acc.ceiling is not None and acc.balance + delta > acc.ceiling:
            raise EbankError("BALANCE_CEILING", account=acc.code)

    entry_id = tx.new_id("ledger_entries")
    for acc_id in deltas:
        batch._save("a", batch.accounts[acc_id])
    if _hold is not None:
        hold, captured = _hold
        holder = batch.accounts[hold.account_id]
        holder.held -= captured
        batch.dirty_accounts[holder.id] = holder
    now = tx.now_param
    batch.entries.append((entry_id, kind, memo, _reverses_id, _hold[0].id if _hold else None, now))
    for leg in legs:
        acc = batch.accounts[leg.account_id]
        acc.balance += leg.amount if (leg.side == "C") == acc.credit_normal else -leg.amount
        batch.postings.append((entry_id, acc.id, leg.side, leg.amount, acc.balance, now))
    batch.posted[entry_id] = (kind, _reverses_id, list(legs))
    if _reverses_id is not None:
        batch.reversed_here.add(_reverses_id)
    return EntryResult(entry_id, reference("E", entry_id, tx.business_day))


def transfer(
    tx: Tx, *, debit: int, credit: int, amount: int, memo: str = "", kind: str = "transfer"
) -> EntryResult:
    """The common two-leg entry: debit one account, credit another."""
    return post(tx, (Leg(debit, "D", amount), Leg(credit, "C", amount)), kind=kind, memo=memo)


def balance_in(tx: Tx, account_id: int) -> int:
    """An account's balance as this transaction has left it so far."""
    return tx.part(LedgerBatch).account(account_id).balance


def account_id_of(tx: Tx, code: str) -> int:
    """The id of the ledger account with this code (an internal account's, typically)."""
    return tx.part(LedgerBatch).account_id(code)


def place_hold(
    tx: Tx, *, account_id: int, amount: int, expires_at: datetime, memo: str = ""
) -> HoldResult:
    """Set money aside (two-phase): it stays on the account but is no longer available."""
    batch = tx.part(LedgerBatch)
    _check_amount(amount)
    _check_text(memo, "a memo", 200)
    acc = batch.account(account_id)
    _check_status(acc, outflow=True, counter=False)
    if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
        raise EbankError("INVALID_INPUT", reason="a hold expires at a timezone-aware instant")
    if as_utc(expires_at) <= tx.now:
        raise EbankError("INVALID_INPUT", reason="a hold must expire in the future")
    _check_floor(acc, acc.balance, acc.held + amount)
    hold_id = tx.new_id("ledger_holds")
    hold = _Hold((hold_id, acc.id, amount, amount, "pending", expires_at, tx.now))
    batch._save("a", acc)
    batch._save("h", hold, new=True)
    acc.held += amount
    batch.dirty_accounts[acc.id] = acc
    batch.holds[hold_id] = hold
    expires = sqlite_time(hold.expires_at) if tx.sqlite else hold.expires_at
    batch.new_holds.append(
        (hold_id, acc.id, amount, amount, "pending", memo, expires, tx.now_param)
    )
    return hold.result()


def _pending_hold(tx: Tx, hold_id: int) -> _Hold:
    hold = tx.part(LedgerBatch).hold(hold_id)
    if hold.status != "pending":
        raise EbankError("HOLD_NOT_PENDING", status=hold.status)
    return hold


def capture_hold(
    tx: Tx,
    *,
    hold_id: int,
    to: Sequence[tuple[int, int]],
    final: bool = False,
    memo: str = "",
) -> EntryResult:
    """Turn part or all of a hold into a payment to the `to` (account, amount) legs.

    Several captures may follow each other up to the held amount; `final` releases whatever
    is left after this one.
    """
    batch = tx.part(LedgerBatch)
    hold = _pending_hold(tx, hold_id)
    if tx.now >= hold.expires_at:
        raise EbankError("HOLD_EXPIRED")
    if not to:
        raise EbankError("INVALID_INPUT", reason="a capture needs at least one payee leg")
    amount = sum(_check_amount(a) for _, a in to)
    if amount > hold.remaining:
        raise EbankError("CAPTURE_EXCEEDS_HOLD")
    legs = [Leg(hold.account_id, "D", amount), *(Leg(acc, "C", a) for acc, a in to)]
    batch._save("h", hold)
    result = post(tx, legs, kind="capture", memo=memo, _hold=(hold, amount))
    hold.remaining -= amount
    batch.hold_events.append((hold.id, "capture", amount, result.id, tx.now_param))
    if hold.remaining == 0:
        hold.status = "captured"
    elif final:
        _end_hold(batch, hold, "captured", event="release")
    batch.dirty_holds[hold.id] = hold
    return result


def release_hold(tx: Tx, *, hold_id: int) -> HoldResult:
    """Give the rest of a hold back to the account's available balance (void)."""
    batch = tx.part(LedgerBatch)
    hold = _pending_hold(tx, hold_id)
    batch._save("h", hold)
    _end_hold(batch, hold, "released", event="release")
    return hold.result()


def _end_hold(batch: LedgerBatch, hold: _Hold, status: str, *, event: str) -> None:
    acc = batch.account(hold.account_id)
    batch._save("a", acc)
    acc.held -= hold.remaining
    batch.dirty_accounts[acc.id] = acc
    batch.hold_events.append((hold.id, event, hold.remaining, None, batch.tx.now_param))
    hold.remaining = 0
    hold.status = status
    batch.dirty_holds[hold.id] = hold


def expire_holds(tx: Tx, *, limit: int = 1000) -> int:
    """Release pending holds whose time is up; returns how many. Run by the worker."""
    batch = tx.part(LedgerBatch)
    due = tx.raw.execute(
        select(holds.c.id)
        .where(holds.c.status == "pending", holds.c.expires_at <= tx.now)
        .order_by(holds.c.id)
        .limit(limit)
    ).scalars()
    count = 0
    for hold_id in due:
        hold = batch.hold(hold_id)
        if hold.status != "pending":
            continue
        batch._save("h", hold)
        _end_hold(batch, hold, "expired", event="expire")
        count += 1
    return count


def reverse(tx: Tx, *, entry_id: int, memo: str = "") -> EntryResult:
    """Undo an entry with a new entry of the opposite legs, linked to it (冲正)."""
    if type(entry_id) is not int:
        raise EbankError("INVALID_INPUT", reason="an entry id is an integer")
    _check_text(memo, "a memo", 200)
    batch = tx.part(LedgerBatch)
    if entry_id in batch.posted:
        kind, reverses_id, legs = batch.posted[entry_id]
    else:
        row = tx.raw.execute(
            select(entries.c.kind, entries.c.reverses_id).where(entries.c.id == entry_id)
        ).first()
        if row is None:
            raise EbankError("ENTRY_NOT_FOUND", entry_id=entry_id)
        kind, reverses_id = row
        legs = [
            Leg(a, s, n)
            for a, s, n in tx.raw.execute(
                select(postings.c.account_id, postings.c.side, postings.c.amount)
                .where(postings.c.entry_id == entry_id)
                .order_by(postings.c.id)
            )
        ]
    if reverses_id is not None:
        raise EbankError("CANNOT_REVERSE_REVERSAL")
    # Lock the accounts before asking whether it was reversed: the answer then includes any
    # reversal another writer committed while we waited for them.
    batch._load_accounts(leg.account_id for leg in legs)
    already = tx.raw.execute(select(entries.c.id).where(entries.c.reverses_id == entry_id)).first()
    if already is not None or entry_id in batch.reversed_here:
        raise EbankError("ALREADY_REVERSED")
    flipped = [Leg(leg.account_id, "C" if leg.side == "D" else "D", leg.amount) for leg in legs]
    return post(tx, flipped, kind="reversal", memo=memo or f"reversal of {kind}",
                counter=True, _reverses_id=entry_id)  # fmt: skip


_TRANSITIONS = {
    Status.ACTIVE: {Status.DORMANT, Status.FROZEN, Status.SUSPENDED, Status.CLOSED},
    Status.DORMANT: {Status.ACTIVE, Status.FROZEN, Status.SUSPENDED, Status.CLOSED},
    Status.FROZEN: {Status.ACTIVE, Status.SUSPENDED},
    Status.SUSPENDED: {Status.ACTIVE, Status.FROZEN},
    Status.CLOSED: set(),
}


def set_status(tx: Tx, *, account_id: int, status: str) -> AccountView:
    """Change an account's status; closing needs a zero balance and no holds."""
    batch = tx.part(LedgerBatch)
    acc = batch.account(account_id)
    try:
        new = Status(status) if isinstance(status, str) else None
        if new is None:
            raise ValueError(status)
    except ValueError:
        raise EbankError("INVALID_INPUT", reason=f"unknown status {str(status)[:20]!r}") from None
    if new not in _TRANSITIONS[Status(acc.status)]:
        raise EbankError("INVALID_STATUS_CHANGE", from_status=acc.status, to_status=new.value)
    if new == Status.CLOSED and (acc.balance != 0 or acc.held != 0):
        raise EbankError("ACCOUNT_NOT_EMPTY", account=acc.code)
    batch._save("a", acc)
    acc.status = new.value
    batch.dirty_accounts[acc.id] = acc
    return acc.view()


def set_credit_line(tx: Tx, *, account_id: int, credit_line: int) -> AccountView:
    """Grant or change a credit line; lowering it below what is used is refused."""
    batch = tx.part(LedgerBatch)
    acc = batch.account(account_id)
    if type(credit_line) is not int or not 0 <= credit_line <= MAX_MINOR:
        raise EbankError("INVALID_INPUT", reason="a credit line is a non-negative integer")
    if acc.balance - acc.held + credit_line < 0 and credit_line < acc.credit_line:
        raise EbankError("INSUFFICIENT_FUNDS", account=acc.code)
    batch._save("a", acc)
    acc.credit_line = credit_line
    batch.dirty_accounts[acc.id] = acc
    return acc.view()


# -- commands for the writer --------------------------------------------------------------
def command(
    fn: Callable[[Tx], T],
    *,
    accounts: Iterable[int] = (),
    idempotency: Idempotency | None = None,
) -> Command[T]:
    """Wrap a ledger-only operation for the writer; `accounts` are loaded with the batch."""
    return Command(
        fn, sql=False, idempotency=idempotency, prefetch=((LedgerBatch, tuple(accounts)),)
    )


def idempotent(scope: str, key: str, result_type: type, **params: Any) -> Idempotency:
    return Idempotency(scope, key, fingerprint(**params), result_type)


def transfer_command(
    *,
    debit: int,
    credit: int,
    amount: int,
    memo: str = "",
    scope: str,
    key: str,
) -> Command[EntryResult]:
    """A two-leg transfer as one idempotent writer command."""
    return command(
        lambda tx: transfer(tx, debit=debit, credit=credit, amount=amount, memo=memo),
        accounts=(debit, credit),
        idempotency=idempotent(
            scope, key, EntryResult, op="transfer", debit=debit, credit=credit, amount=amount,
            memo=memo,
        ),
    )  # fmt: skip
