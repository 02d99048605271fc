"""The group-commit writer: many write commands, one transaction, one durable commit.

Requests hand commands to the process's writer; its thread takes whatever has queued up (up
to `max_batch`), runs the commands one after another inside a single database transaction,
commits once, and only then answers each caller. The database fsyncs once per batch instead of
once per request, which is where the throughput comes from.

A command is a function of a `Tx`. Two kinds:
- `sql=False` commands (the ledger's) only touch buffered, in-memory state of participants
  (`Tx.part`); the participants write their rows with `executemany` once per batch.
- `sql=True` commands may also run SQL through `Tx.conn`; they run inside a savepoint, with
  the participants' buffers flushed before and after, so that their SQL sees earlier work.

One failing command never fails its neighbours: a domain error rolls back that command alone
(its savepoint, and the participants restore what it touched). An unexpected database error
fails the batch's transaction; the writer then runs each command of the batch on its own, so
only the culprit fails. Transient errors (lock waits, deadlocks) are retried.

Idempotency lives here too: a command may carry a key; the first result is stored in the same
transaction and returned again for a repeat with the same parameters, while a repeat with other
parameters is refused with IDEMPOTENCY_CONFLICT.
"""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Connection, Engine, delete, text
from sqlalchemy.exc import DBAPIError

from ebank.core.clock import Clock, SystemClock, business_date
from ebank.core.db import (
    BEGIN_OPTION,
    BulkWrite,
    is_conflict,
    is_sqlite,
    is_transient,
    sqlite_time,
)
from ebank.core.errors import EbankError
from ebank.core.tables import idempotency_keys

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound="Participant")


@dataclass(frozen=True, slots=True)
class Idempotency:
    """Who asked (`scope`, e.g. "customer:42"), their key, and what they asked for."""

    scope: str
    key: str
    fingerprint: str
    result_type: type | None = None  # a dataclass to rebuild a stored result into

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > 128 or not self.key.isprintable():
            raise EbankError("INVALID_INPUT", reason="an idempotency key is 1-128 printable chars")


def fingerprint(**params: Any) -> str:
    """A stable hash of a request's parameters, to tell a true repeat from a reused key.

    Parameters are plain values (str, int, bool, None, and tuples of them), whose repr is
    stable across processes and versions.
    """
    return hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()


@dataclass(slots=True)
class Command(Generic[T]):
    """A write: `fn` runs in the writer's transaction, in a batch with other commands.

    `prepare`, if given, is slow read-only work (hashing or verifying a password) that runs
    before the command is queued: in the submitting thread for `submit` and `execute`, in a
    worker thread for `run`. The writer is the process's only writer, so a 100 ms argon2id
    inside `fn` would hold up every other command. `prepare` reads on its own connection of
    the engine and leaves its findings where `fn` looks; `fn` must still be right when
    `prepare` never ran (a command composed into another's `fn`) or when what it read has
    changed by then. An error in `prepare` is the command's error, and nothing is queued.
    """

    fn: Callable[["Tx"], T]
    sql: bool = True
    idempotency: Idempotency | None = None
    # (participant class, hint) pairs: participants load what the whole batch needs at once.
    prefetch: Sequence[tuple[type["Participant"], Any]] = ()
    prepare: Callable[[Engine], None] | None = None


class Participant:
    """Buffered per-transaction state of one mechanism (ledger, audit, outbox).

    Subclasses buffer rows and cached state, write them in `flush`, and undo a failed
    command's changes in `rollback_command`. `touch()` before the first change in a command.
    """

    order: ClassVar[int] = 100  # flush order between participants (foreign keys)

    def __init__(self, tx: "Tx") -> None:
        self.tx = tx

    def touch(self) -> None:
        self.tx._touch(self)

    def prefetch(self, hints: list[Any]) -> None:
        """Load what a batch's commands will need, in one go."""

    def begin_command(self) -> None:
        """Remember the state to return to if the current command fails."""

    def rollback_command(self) -> None:
        """Return to the state remembered by `begin_command`."""

    def flush(self) -> None:
        """Write buffered rows through `self.tx.raw`."""

    def finish(self) -> None:
        """Write what is kept for the whole batch, after its last command (once, not at each
        command's flush)."""


class BufferedRows(Participant):
    """A participant that appends rows to one table: buffered by `add`, dropped with a failed
    command, and written in one statement at flush (the outbox, the message centre, and the
    audit trail, which writes its own way)."""

    table: ClassVar[Any]

    def __init__(self, tx: "Tx") -> None:
        super().__init__(tx)
        self.pending: list[dict[str, Any]] = []
        self._mark = 0

    def add(self, row: dict[str, Any]) -> None:
        self.touch()
        self.pending.append(row)

    def begin_command(self) -> None:
        self._mark = len(self.pending)

    def rollback_command(self) -> None:
        del self.pending[self._mark :]

    def flush(self) -> None:
        if self.pending:
            self.tx.raw.execute(self.table.insert(), self.pending)
            self.pending.clear()
            self._mark = 0


class Tx:
    """One writer transaction, as a command sees it."""

    def __init__(self, raw: Connection, now: datetime, carry: dict[str, Any] | None = None) -> None:
        self.raw = raw
        self.now = now
        self.sqlite = is_sqlite(raw)
        # State a participant may keep from one batch to the next; the writer empties it
        # whenever another connection may have written (see `Writer._carry_over`).
        self.carry: dict[str, Any] = {} if carry is None else carry
        # One instant per batch: every command in it commits at the same moment.
        self.now_param: Any = sqlite_time(now) if self.sqlite else now
        self.business_day = business_date(now)
        self._parts: dict[type[Participant], Participant] = {}
        self._flush_order: list[Participant] = []  # by `order`: foreign keys between them
        self._touched: list[Participant] = []
        self._sql_allowed = False
        self._ids: dict[str, list[int]] = {}
        self._next_sqlite_id: dict[str, int] = {}

    @property
    def conn(self) -> Connection:
        """The connection for a command's own SQL (inside its savepoint).

        What participants hold buffered is written first, so the SQL sees (and may refer to)
        everything done before it, such as a ledger account opened a line earlier.
        """
        if not self._sql_allowed:
            raise RuntimeError("this command was declared sql=False and may not run SQL")
        self.flush()
        return self.raw

    def part(self, cls: type[P]) -> P:
        found = self._parts.get(cls)
        if found is None:
            found = self._parts[cls] = cls(self)
            self._flush_order = sorted(self._parts.values(), key=lambda p: p.order)
        return found  # type: ignore[return-value]

    def new_id(self, table: str) -> int:
        """Allocate a primary key before the row is written, so rows can refer to each other.

        PostgreSQL takes blocks from the table's sequence (never blocks other writers); SQLite
        counts on from MAX(id), which is safe because the writer holds the write lock.
        """
        if self.sqlite:
            nxt = self._next_sqlite_id.get(table)
            if nxt is None:
                nxt = self.raw.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
                nxt = int(nxt.scalar_one())
            self._next_sqlite_id[table] = nxt + 1
            return nxt
        block = self._ids.get(table)
        if not block:
            rows = self.raw.execute(
                text(f"SELECT nextval('{table}_id_seq') FROM generate_series(1, 256)")
            )
            block = self._ids[table] = [r[0] for r in rows][::-1]
        return block.pop()

    def flush(self) -> None:
        for part in self._flush_order:
            part.flush()

    def finish(self) -> None:
        """The batch's last writes, before its commit."""
        self.flush()
        for part in self._flush_order:
            part.finish()

    def _touch(self, part: Participant) -> None:
        if part not in self._touched:
            part.begin_command()
            self._touched.append(part)

    def _run(self, command: Command[Any]) -> tuple[bool, Any]:
        """Run one command; (True, result) or (False, error). Database faults propagate."""
        ok, value = self._run_once(command)
        if not ok and command.sql and isinstance(value, DBAPIError) and is_conflict(value):
            # Another writer committed the same unique key while this command ran; run it
            # once more, and its own checks now see that row and answer in domain terms.
            ok, value = self._run_once(command)
        return ok, value

    def _run_once(self, command: Command[Any]) -> tuple[bool, Any]:
        self._touched.clear()
        self._sql_allowed = command.sql
        savepoint = None
        if command.sql:
            self.flush()  # earlier commands' rows go in before this command's savepoint
            savepoint = self.raw.begin_nested()
        try:
            result = command.fn(self)
            if savepoint is not None:
                self.flush()
                savepoint.commit()
            return True, result
        except Exception as exc:
            if savepoint is not None and savepoint.is_active:
                savepoint.rollback()
            for part in self._touched:
                part.rollback_command()
            if isinstance(exc, DBAPIError) and (is_transient(exc) or savepoint is None):
                raise  # the transaction itself is in doubt: let the writer retry or isolate
            if not isinstance(exc, EbankError):
                log.exception("command failed")
            return False, exc
        finally:
            self._sql_allowed = False
            self._touched.clear()


@dataclass(slots=True)
class _Job:
    command: Command[Any]
    future: concurrent.futures.Future[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    afuture: asyncio.Future[Any] | None = None
    outcome: tuple[bool, Any] = field(default=(False, None))

    def claim(self) -> bool:
        """Take the job for running; False if its caller cancelled it while it was queued."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        return self.afuture is None or not self.afuture.done()


_STOP = object()


class Writer:
    """The process's single writer to the database. Thread-safe; also awaitable."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        max_batch: int = 4096,
        retries: int = 8,
    ) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.max_batch = max_batch
        self.retries = retries
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._closed = False
        self._carry: dict[str, Any] = {}
        self._data_version: int | None = None
        self.batches = 0
        self.commands = 0
        self._thread = threading.Thread(target=self._loop, name="ebank-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the writer is taking commands (readiness checks ask this)."""
        return not self._closed and self._thread.is_alive()

    # -- submitting ---------------------------------------------------------------------
    def submit(self, command: Command[T]) -> "concurrent.futures.Future[T]":
        """Queue a command (after its `prepare`, in this thread); its future answers."""
        self._check_open()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if command.prepare is not None:
            try:
                command.prepare(self.engine)
            except Exception as exc:
                future.set_exception(exc)
                return future
            self._check_open()  # preparing takes a while: the writer may have closed since
        self._queue.put(_Job(command, future=future))
        return future

    def execute(self, command: Command[T], timeout: float | None = 120) -> T:
        """Run a command and return its result once committed; raise its error."""
        return self.submit(command).result(timeout)

    async def run(self, command: Command[T]) -> T:
        """The asyncio form of `execute`; `prepare` runs in a worker thread."""
        self._check_open()
        if command.prepare is not None:
            await asyncio.to_thread(command.prepare, self.engine)
            self._check_open()
        loop = asyncio.get_running_loop()
        job = _Job(command, loop=loop, afuture=loop.create_future())
        self._queue.put(job)
        return await job.afuture  # type: ignore[no-any-return, misc]

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("writer is closed")

    def close(self) -> None:
        """Finish what is queued before the call, then stop; later submissions are refused."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
            # A submission that raced with close() may sit behind the stop: refuse it.
            leftovers = []
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not _STOP and job.claim():
                    job.outcome = (False, RuntimeError("writer is closed"))
                    leftovers.append(job)
            self._answer(leftovers)

    # -- the writer thread ----------------------------------------------------------------
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first] if first.claim() else []
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                if nxt.claim():
                    batch.append(nxt)
            if not batch:
                continue
            self._commit(batch)
            self._answer(batch)
        if self._conn is not None:
            self._conn.close()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.invalidated or self._conn.closed:
            conn = self.engine.connect()
            if is_sqlite(conn):
                conn = conn.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"})
            else:
                # Every statement the writer runs is a look-up by key or index. On a young
                # database without statistics PostgreSQL plans them as sequential scans of
                # tables that grow by thousands of rows a second; where no index exists it
                # still scans, this only stops it preferring to.
                conn.exec_driver_sql("SET enable_seqscan = off")
                conn.commit()
            self._conn = conn
        return self._conn

    def _commit(self, batch: list[_Job]) -> None:
        """Commit the batch; on a non-transient fault, commit each command on its own."""
        try:
            self._attempt_with_retries(batch)
        except Exception as exc:
            if len(batch) == 1:
                log.error("command failed in the database: %s", exc)
                batch[0].outcome = (False, exc)
                return
            log.warning("batch of %d failed (%s); isolating its commands", len(batch), exc)
            for job in batch:
                self._commit([job])

    def _attempt_with_retries(self, batch: list[_Job]) -> None:
        looked_again = False
        for attempt in range(self.retries + 1):
            try:
                self._attempt(batch)
                return
            except DBAPIError as exc:
                self._reset_connection()
                if is_transient(exc) and attempt < self.retries:
                    time.sleep(min(0.002 * 2**attempt, 0.25))
                elif is_conflict(exc) and not looked_again:
                    # Another writer committed the same key (an idempotency key, a reversal)
                    # between our read and our write; run again, and the work sees its row.
                    looked_again = True
                else:
                    raise
            except Exception:
                self._reset_connection()
                raise

    def _reset_connection(self) -> None:
        self._carry.clear()  # it may hold the failed batch's uncommitted changes
        self._data_version = None
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _attempt(self, batch: list[_Job]) -> None:
        conn = self._connection()
        with conn.begin():
            tx = Tx(conn, self.clock.now(), self._carry_over(conn))
            self._prefetch(tx, batch)
            keys = _IdempotencyBook(conn, [j.command.idempotency for j in batch], tx.now_param)
            for job in batch:
                idem = job.command.idempotency
                replay = keys.lookup(idem) if idem is not None else None
                if replay is not None:
                    job.outcome = replay
                    continue
                job.outcome = tx._run(job.command)
                if job.outcome[0] and idem is not None:
                    kept = _replay_value(job.outcome[1])
                    if kept is not None:
                        keys.remember(idem, kept)
            tx.finish()
            keys.flush()
        self.batches += 1
        self.commands += len(batch)

    def _carry_over(self, conn: Connection) -> dict[str, Any]:
        """What participants may reuse from earlier batches: on SQLite, everything, unless
        another connection has committed since (`PRAGMA data_version` moves only then; we
        read it holding the write lock). PostgreSQL rereads with row locks every batch."""
        if not is_sqlite(conn):
            return {}
        version = conn.exec_driver_sql("PRAGMA data_version").scalar_one()
        if version != self._data_version:
            self._carry.clear()
            self._data_version = version
        return self._carry

    @staticmethod
    def _prefetch(tx: Tx, batch: list[_Job]) -> None:
        hints: dict[type[Participant], list[Any]] = {}
        for job in batch:
            for cls, hint in job.command.prefetch:
                hints.setdefault(cls, []).append(hint)
        for cls in sorted(hints, key=lambda c: c.order):
            tx.part(cls).prefetch(hints[cls])

    @staticmethod
    def _answer(batch: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            if job.future is not None:
                ok, value = job.outcome
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)
            elif job.loop is not None:
                by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            # A RuntimeError means the caller's loop has closed: nobody is waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, jobs)


def _settle(jobs: Iterable[_Job]) -> None:
    for job in jobs:
        fut = job.afuture
        if fut is None or fut.done():
            continue
        ok, value = job.outcome
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


# A batch's keys as one array parameter: one statement, nothing to expand per key.
_LOOK_UP_KEYS = "SELECT scope, key, fingerprint, result FROM idempotency_keys WHERE key "
_LOOK_UP_KEYS_SQLITE = _LOOK_UP_KEYS + "IN (SELECT value FROM json_each(?))"
_LOOK_UP_KEYS_PG = _LOOK_UP_KEYS + "= ANY(%s::text[])"


# Stored answers; public for `ebank bench storage`, which writes them without the writer.
KEY_ROWS = BulkWrite(idempotency_keys, ("scope", "key", "fingerprint", "result", "created_at"))


class _IdempotencyBook:
    """The batch's view of stored idempotency keys, plus the ones it adds."""

    def __init__(self, conn: Connection, idems: list[Idempotency | None], now: Any) -> None:
        self.conn = conn
        self.now = now
        self.known: dict[tuple[str, str], tuple[str, Any]] = {}
        self.new: list[tuple[Any, ...]] = []
        wanted = {(i.scope, i.key) for i in idems if i is not None}
        if not wanted:
            return
        keys = sorted({key for _, key in wanted})
        if is_sqlite(conn):
            rows = conn.exec_driver_sql(_LOOK_UP_KEYS_SQLITE, (json.dumps(keys),))
        else:
            rows = conn.exec_driver_sql(_LOOK_UP_KEYS_PG, (keys,))
        for scope, key, fp, result in rows:
            if (scope, key) in wanted:
                self.known[(scope, key)] = (fp, result)

    def lookup(self, idem: Idempotency) -> tuple[bool, Any] | None:
        found = self.known.get((idem.scope, idem.key))
        if found is None:
            return None
        fp, encoded = found
        if fp != idem.fingerprint:
            return False, EbankError("IDEMPOTENCY_CONFLICT", key=idem.key)
        stored = json.loads(encoded)
        if idem.result_type is not None and isinstance(stored, dict):
            return True, idem.result_type(**stored)
        return True, stored

    def remember(self, idem: Idempotency, result: Any) -> None:
        encoded = _to_json(_plain(result))
        # A replay later in this batch decodes the stored form, as one in a later batch would.
        self.known[(idem.scope, idem.key)] = (idem.fingerprint, encoded)
        self.new.append((idem.scope, idem.key, idem.fingerprint, encoded, self.now))

    def flush(self) -> None:
        KEY_ROWS.run(self.conn, self.new)


def _replay_value(result: Any) -> Any:
    """What a repeat of the request gets back. A result may choose by a `replay_value()`
    method: None keeps nothing, e.g. a failed factor check, which the customer may retry
    under the same key."""
    choose = getattr(result, "replay_value", None)
    return result if choose is None else choose()


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(result: Any) -> Any:
    """A flat dataclass result as a dict (what is stored and replayed)."""
    cls = type(result)
    if not dataclasses.is_dataclass(cls):
        return result
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return {name: getattr(result, name) for name in names}


# Idempotent results hold JSON-native values only (str, int, float, bool, None, lists, dicts,
# flat dataclasses of those), so that a replay equals the first answer exactly. One encoder
# for all: `json.dumps` with any option builds a new one on every call.
_to_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def purge_idempotency_keys(tx: Tx, *, older_than: datetime) -> int:
    """Forget stored answers older than the retention; a later repeat runs as new."""
    done = tx.conn.execute(
        delete(idempotency_keys).where(idempotency_keys.c.created_at < older_than)
    )
    return int(done.rowcount or 0)
