"""The group-commit writer: batching, isolation of failures, idempotency, retries, shutdown.

Every test runs on SQLite and on PostgreSQL (the `engine`/`writer` fixtures).

To put commands into one batch deterministically, `OneBatch` parks the writer thread inside a
gate command; whatever is submitted meanwhile queues up and is taken as the next single batch
(the default `max_batch` is far larger than any test's queue). This uses only public API plus
the writer's `batches` counter.
"""

import asyncio
import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.tables import idempotency_keys
from ebank.core.writer import Command, Idempotency, Participant, Tx, Writer, fingerprint
from tests.support import WAIT, OneBatch, code_of, outcome

INSERT = text("INSERT INTO scratch (id, v) VALUES (:id, :v)")


@pytest.fixture
def scratch(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE scratch (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)"
        )


def scratch_rows(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, v FROM scratch ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


def stored_keys(engine: Engine) -> list[tuple[str, str]]:
    t = idempotency_keys
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.scope, t.c.key).order_by(t.c.scope, t.c.key))
        return [(r[0], r[1]) for r in rows]


def insert_row(row_id: int, value: str | None = None, result: Any = None) -> Command[Any]:
    """A SQL command that inserts one scratch row and returns `result` (default: its id)."""

    def fn(tx: Tx) -> Any:
        tx.conn.execute(INSERT, {"id": row_id, "v": value or f"v{row_id}"})
        return row_id if result is None else result

    return Command(fn)


def raising(exc: BaseException, *, after_sql_row: int | None = None) -> Command[Any]:
    def fn(tx: Tx) -> Any:
        if after_sql_row is not None:
            tx.conn.execute(INSERT, {"id": after_sql_row, "v": f"v{after_sql_row}"})
        raise exc

    return Command(fn)


# -- results and visibility ----------------------------------------------------------------


def test_result_is_returned_after_commit_and_visible_from_another_connection(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    assert writer.execute(insert_row(1, "one", result={"ok": True})) == {"ok": True}
    # The caller was answered; a fresh connection must already see the row.
    assert scratch_rows(engine) == [(1, "one")]
    assert writer.commands == 1 and writer.batches == 1


def test_sql_free_command_returns_its_result_and_sees_the_batch_clock(
    writer: Writer, clock: FixedClock
) -> None:
    def fn(tx: Tx) -> tuple[datetime, str]:
        return tx.now, tx.business_day.isoformat()

    now, day = writer.execute(Command(fn, sql=False))
    assert now == clock.now() == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert day == "2026-11-23"


def test_later_command_in_a_batch_sees_earlier_writes_but_not_a_failed_ones(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    def count(tx: Tx) -> int:
        return int(tx.conn.execute(text("SELECT COUNT(*) FROM scratch")).scalar_one())

    with OneBatch(writer) as batch:
        first = writer.submit(insert_row(1))
        failed = writer.submit(raising(EbankError("INVALID_INPUT", reason="x"), after_sql_row=2))
        second = writer.submit(insert_row(3))
        counted = writer.submit(Command(count))
    assert [outcome(first), outcome(second), outcome(counted)] == [1, 3, 2]
    assert isinstance(outcome(failed), EbankError)
    assert batch.batches_after_gate() == 1


# -- batching ------------------------------------------------------------------------------


def test_concurrent_thread_submissions_are_batched_and_each_caller_gets_its_own_result(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    threads, per_thread = 32, 50
    start = threading.Barrier(threads)

    def client(t: int) -> list[Any]:
        start.wait(WAIT)
        got = []
        for j in range(per_thread):
            row_id = t * per_thread + j
            got.append(writer.execute(insert_row(row_id, result=f"t{t}-{j}"), timeout=WAIT))
        return got

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(client, range(threads)))

    for t, got in enumerate(results):
        assert got == [f"t{t}-{j}" for j in range(per_thread)]
    total = threads * per_thread
    assert writer.commands == total
    assert writer.batches < writer.commands
    rows = scratch_rows(engine)
    assert [r[0] for r in rows] == list(range(total))


def test_asyncio_submissions_are_batched_and_each_task_gets_its_own_outcome(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    tasks = 200

    def command(i: int) -> Command[Any]:
        if i % 10 == 7:
            return raising(EbankError("INVALID_INPUT", reason=f"task {i}"), after_sql_row=i)
        return insert_row(i, result=f"task-{i}")

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(writer.run(command(i)) for i in range(tasks)), return_exceptions=True
        )

    results = asyncio.run(main())
    for i, got in enumerate(results):
        if i % 10 == 7:
            assert isinstance(got, EbankError)
            assert got.details == {"reason": f"task {i}"}
        else:
            assert got == f"task-{i}"
    assert writer.commands == tasks
    assert writer.batches < writer.commands
    assert [r[0] for r in scratch_rows(engine)] == [i for i in range(tasks) if i % 10 != 7]


def test_commands_submitted_together_commit_as_one_batch(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    with OneBatch(writer) as batch:
        futures = [writer.submit(insert_row(i)) for i in range(20)]
    assert [f.result(WAIT) for f in futures] == list(range(20))
    assert batch.batches_after_gate() == 1
    assert len(scratch_rows(engine)) == 20


# -- one failure never fails its neighbours ---------------------------------------------------


def test_failing_commands_do_not_fail_or_roll_back_their_batch_neighbours(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    with OneBatch(writer) as batch:
        ok1 = writer.submit(insert_row(1))
        domain = writer.submit(raising(EbankError("INSUFFICIENT_FUNDS")))
        domain_after_sql = writer.submit(
            raising(EbankError("INVALID_INPUT", reason="late"), after_sql_row=100)
        )
        ok2 = writer.submit(insert_row(2))
        bug_after_sql = writer.submit(raising(ValueError("a bug"), after_sql_row=101))
        ok3 = writer.submit(insert_row(3))

    assert [outcome(ok1), outcome(ok2), outcome(ok3)] == [1, 2, 3]
    err = outcome(domain)
    assert isinstance(err, EbankError) and err.code == "INSUFFICIENT_FUNDS"
    err = outcome(domain_after_sql)
    assert isinstance(err, EbankError) and err.code == "INVALID_INPUT"
    err = outcome(bug_after_sql)
    assert isinstance(err, ValueError) and str(err) == "a bug"
    # The failed commands' SQL was rolled back with their savepoints; the rest committed.
    assert [r[0] for r in scratch_rows(engine)] == [1, 2, 3]
    assert batch.batches_after_gate() == 1


def test_failing_commands_from_many_threads_fail_alone(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    threads = 16
    start = threading.Barrier(threads)

    def client(t: int) -> list[Any]:
        start.wait(WAIT)
        futures = []
        for j in range(20):
            row_id = t * 100 + j
            if j % 4 == 3:
                cmd = raising(EbankError("INSUFFICIENT_FUNDS"), after_sql_row=row_id)
            else:
                cmd = insert_row(row_id)
            futures.append(writer.submit(cmd))
        return [outcome(f) for f in futures]

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(client, range(threads)))

    expected_rows = []
    for t, got in enumerate(results):
        for j, value in enumerate(got):
            if j % 4 == 3:
                assert isinstance(value, EbankError) and value.code == "INSUFFICIENT_FUNDS"
            else:
                assert value == t * 100 + j
                expected_rows.append(t * 100 + j)
    assert [r[0] for r in scratch_rows(engine)] == sorted(expected_rows)
    assert writer.batches < writer.commands


def test_sql_free_command_touching_the_connection_fails_and_the_others_proceed(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    def sneaky(tx: Tx) -> None:
        tx.conn.execute(INSERT, {"id": 50, "v": "sneaky"})

    with OneBatch(writer) as batch:
        ok1 = writer.submit(insert_row(1))
        bad = writer.submit(Command(sneaky, sql=False))
        ok2 = writer.submit(insert_row(2))
        pure = writer.submit(Command(lambda tx: "pure", sql=False))

    assert [outcome(ok1), outcome(ok2), outcome(pure)] == [1, 2, "pure"]
    assert isinstance(outcome(bad), RuntimeError)
    assert [r[0] for r in scratch_rows(engine)] == [1, 2]
    assert batch.batches_after_gate() == 1
    with pytest.raises(RuntimeError):
        writer.execute(Command(sneaky, sql=False))
    assert [r[0] for r in scratch_rows(engine)] == [1, 2]


def test_database_fault_absorbed_by_the_savepoint_fails_only_the_culprit(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    idem = Idempotency("customer:1", "k-1", fingerprint(amount="1.00"))
    assert writer.execute(Command(lambda tx: "first", idempotency=idem)) == "first"

    def duplicate_key(tx: Tx) -> str:
        tx.conn.execute(
            idempotency_keys.insert().values(
                scope="customer:1",
                key="k-1",
                fingerprint="f" * 64,
                result="null",
                created_at=tx.now,
            )
        )
        return "should not happen"

    with OneBatch(writer) as batch:
        ok1 = writer.submit(insert_row(1))
        culprit = writer.submit(Command(duplicate_key))
        ok2 = writer.submit(insert_row(2))

    assert isinstance(outcome(culprit), IntegrityError)
    assert [outcome(ok1), outcome(ok2)] == [1, 2]
    assert [r[0] for r in scratch_rows(engine)] == [1, 2]
    # The savepoint took the fault: the batch still committed once, nobody re-ran.
    assert batch.batches_after_gate() == 1
    assert writer.execute(Command(lambda tx: "again", idempotency=idem)) == "first"


class ScratchBuffer(Participant):
    """A participant that writes buffered scratch rows once per batch, like the ledger does."""

    def __init__(self, tx: Tx) -> None:
        super().__init__(tx)
        self.rows: list[dict[str, Any]] = []
        self._mark = 0

    def begin_command(self) -> None:
        self._mark = len(self.rows)

    def rollback_command(self) -> None:
        del self.rows[self._mark :]

    def add(self, row_id: int, value: str | None) -> None:
        self.touch()
        self.rows.append({"id": row_id, "v": value})

    def flush(self) -> None:
        if self.rows:
            self.tx.raw.execute(INSERT, self.rows)
            self.rows.clear()
            self._mark = 0


def buffered_row(row_id: int, value: str | None) -> Command[int]:
    def fn(tx: Tx) -> int:
        tx.part(ScratchBuffer).add(row_id, value)
        return row_id

    return Command(fn, sql=False)


def test_database_fault_outside_any_savepoint_fails_only_the_culprit(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    # The NULL breaks NOT NULL only when the buffer is flushed at the end of the batch: the
    # whole transaction fails and the writer must isolate the culprit.
    with OneBatch(writer):
        before = [writer.submit(buffered_row(i, f"v{i}")) for i in (1, 2)]
        culprit = writer.submit(buffered_row(3, None))
        sql_neighbour = writer.submit(insert_row(4))
        after = [writer.submit(buffered_row(i, f"v{i}")) for i in (5, 6)]

    assert isinstance(outcome(culprit), DBAPIError)
    assert [outcome(f) for f in before] == [1, 2]
    assert outcome(sql_neighbour) == 4
    assert [outcome(f) for f in after] == [5, 6]
    assert scratch_rows(engine) == [(1, "v1"), (2, "v2"), (4, "v4"), (5, "v5"), (6, "v6")]
    # The writer still works afterwards.
    assert writer.execute(buffered_row(7, "v7")) == 7


def test_sql_free_command_failure_rolls_back_only_its_buffered_rows(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    def half_then_fail(tx: Tx) -> None:
        tx.part(ScratchBuffer).add(20, "v20")
        raise EbankError("INVALID_INPUT", reason="second half refused")

    with OneBatch(writer) as batch:
        ok1 = writer.submit(buffered_row(1, "v1"))
        bad = writer.submit(Command(half_then_fail, sql=False))
        ok2 = writer.submit(buffered_row(2, "v2"))

    assert [outcome(ok1), outcome(ok2)] == [1, 2]
    assert isinstance(outcome(bad), EbankError)
    assert scratch_rows(engine) == [(1, "v1"), (2, "v2")]
    assert batch.batches_after_gate() == 1


def _transient() -> OperationalError:
    return OperationalError("INSERT ...", {}, Exception("database is locked"))


def test_transient_database_error_is_retried_and_every_command_answered_once(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    calls: list[int] = []

    def flaky(tx: Tx) -> str:
        calls.append(1)
        tx.conn.execute(INSERT, {"id": 10, "v": "flaky"})
        if len(calls) == 1:
            raise _transient()
        return "recovered"

    with OneBatch(writer) as batch:
        ok1 = writer.submit(insert_row(1))
        flaky_future = writer.submit(Command(flaky))
        ok2 = writer.submit(insert_row(2))

    assert outcome(flaky_future) == "recovered"
    assert len(calls) == 2
    assert [outcome(ok1), outcome(ok2)] == [1, 2]
    assert scratch_rows(engine) == [(1, "v1"), (2, "v2"), (10, "flaky")]
    # The whole batch was retried and committed together, not split into single commands.
    assert batch.batches_after_gate() == 1


def test_command_that_stays_transient_fails_alone_after_the_retries(
    engine: Engine, clock: FixedClock, scratch: None
) -> None:
    writer = Writer(engine, clock=clock, retries=2)
    try:

        def always_locked(tx: Tx) -> None:
            raise _transient()

        with OneBatch(writer):
            ok1 = writer.submit(insert_row(1))
            stuck = writer.submit(Command(always_locked))
            ok2 = writer.submit(insert_row(2))
        assert isinstance(outcome(stuck), OperationalError)
        assert [outcome(ok1), outcome(ok2)] == [1, 2]
        assert [r[0] for r in scratch_rows(engine)] == [1, 2]
    finally:
        writer.close()


# -- idempotency ---------------------------------------------------------------------------


def counting(calls: list[int], fail_first: int = 0) -> Callable[[Tx], dict[str, int]]:
    """A command function that counts its runs and returns which run it was."""

    def fn(tx: Tx) -> dict[str, int]:
        calls.append(1)
        if len(calls) <= fail_first:
            raise EbankError("INVALID_INPUT", reason="bad amount")
        return {"run": len(calls)}

    return fn


def test_repeat_with_same_key_and_parameters_returns_the_first_result_without_running(
    writer: Writer, engine: Engine
) -> None:
    calls: list[int] = []
    idem = Idempotency("customer:42", "order-1", fingerprint(to="A", amount="10.00"))
    first = writer.execute(Command(counting(calls), idempotency=idem))
    again = writer.execute(Command(counting(calls), idempotency=idem))
    same_params = Idempotency("customer:42", "order-1", fingerprint(amount="10.00", to="A"))
    third = writer.execute(Command(counting(calls), idempotency=same_params, sql=False))
    assert first == again == third == {"run": 1}
    assert len(calls) == 1
    assert stored_keys(engine) == [("customer:42", "order-1")]


def test_same_key_with_other_parameters_is_an_idempotency_conflict(
    writer: Writer, engine: Engine
) -> None:
    calls: list[int] = []
    scope, key = "customer:42", "order-2"
    writer.execute(Command(counting(calls), idempotency=Idempotency(scope, key, fingerprint(a=1))))
    other = Idempotency(scope, key, fingerprint(a=2))
    with pytest.raises(EbankError) as info:
        writer.execute(Command(counting(calls), idempotency=other))
    assert info.value.code == "IDEMPOTENCY_CONFLICT"
    assert info.value.status == 409
    assert len(calls) == 1
    # The conflict did not overwrite what was stored: the original request still replays.
    original = Idempotency(scope, key, fingerprint(a=1))
    assert writer.execute(Command(counting(calls), idempotency=original)) == {"run": 1}
    assert len(calls) == 1


def test_same_key_in_different_scopes_is_independent(writer: Writer, engine: Engine) -> None:
    calls: list[int] = []
    fp = fingerprint(amount="5.00")
    a = writer.execute(Command(counting(calls), idempotency=Idempotency("customer:1", "k", fp)))
    b = writer.execute(Command(counting(calls), idempotency=Idempotency("customer:2", "k", fp)))
    c = writer.execute(Command(counting(calls), idempotency=Idempotency("merchant:1", "k", fp)))
    assert (a, b, c) == ({"run": 1}, {"run": 2}, {"run": 3})
    assert len(calls) == 3
    assert stored_keys(engine) == [("customer:1", "k"), ("customer:2", "k"), ("merchant:1", "k")]


def test_failing_command_stores_no_key_so_a_corrected_retry_runs(
    writer: Writer, engine: Engine
) -> None:
    calls: list[int] = []
    fn = counting(calls, fail_first=1)
    bad = Idempotency("customer:7", "pay-1", fingerprint(amount="1.5"))
    with pytest.raises(EbankError) as info:
        writer.execute(Command(fn, idempotency=bad))
    assert info.value.code == "INVALID_INPUT"
    assert stored_keys(engine) == []
    fixed = Idempotency("customer:7", "pay-1", fingerprint(amount="1.50"))
    assert writer.execute(Command(fn, idempotency=fixed)) == {"run": 2}
    assert len(calls) == 2
    assert stored_keys(engine) == [("customer:7", "pay-1")]


def test_command_failing_in_the_database_stores_no_key(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    idem = Idempotency("customer:8", "pay-1", fingerprint(x=1))
    with OneBatch(writer):
        culprit = writer.submit(Command(buffered_row(1, None).fn, sql=False, idempotency=idem))
        neighbour = writer.submit(
            Command(lambda tx: "n", idempotency=Idempotency("customer:8", "pay-2", "fp"))
        )
    assert isinstance(outcome(culprit), DBAPIError)
    assert outcome(neighbour) == "n"
    assert stored_keys(engine) == [("customer:8", "pay-2")]


def test_same_key_twice_in_one_batch_runs_the_function_once(writer: Writer, engine: Engine) -> None:
    calls: list[int] = []
    idem = Idempotency("customer:9", "dup", fingerprint(n=1))
    with OneBatch(writer) as batch:
        futures = [writer.submit(Command(counting(calls), idempotency=idem)) for _ in range(5)]
        conflicting = writer.submit(
            Command(counting(calls), idempotency=Idempotency("customer:9", "dup", "other"))
        )
    assert [f.result(WAIT) for f in futures] == [{"run": 1}] * 5
    err = outcome(conflicting)
    assert isinstance(err, EbankError) and err.code == "IDEMPOTENCY_CONFLICT"
    assert len(calls) == 1
    assert batch.batches_after_gate() == 1
    assert stored_keys(engine) == [("customer:9", "dup")]


def test_concurrent_repeats_of_one_key_from_many_threads_run_once(
    writer: Writer, engine: Engine
) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def fn(tx: Tx) -> str:
        with lock:
            calls.append(1)
        return "paid"

    idem = Idempotency("customer:10", "storm", fingerprint(n=1))
    start = threading.Barrier(16)

    def client(_: int) -> list[Any]:
        start.wait(WAIT)
        return [writer.execute(Command(fn, idempotency=idem), timeout=WAIT) for _ in range(10)]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(client, range(16)) for r in rs]
    assert results == ["paid"] * 160
    assert len(calls) == 1


@dataclasses.dataclass(frozen=True)
class Receipt:
    id: int
    memo: str
    amount_minor: int


def test_result_type_rebuilds_a_dataclass_result_on_replay(writer: Writer) -> None:
    idem = Idempotency("customer:11", "r-1", fingerprint(n=1), result_type=Receipt)
    first = writer.execute(Command(lambda tx: Receipt(7, "转账 <b>", 12345), idempotency=idem))
    replay = writer.execute(Command(lambda tx: Receipt(8, "other", 0), idempotency=idem))
    assert type(replay) is Receipt
    assert replay == first == Receipt(7, "转账 <b>", 12345)


def test_result_type_rebuilds_a_dataclass_result_replayed_in_the_same_batch(
    writer: Writer,
) -> None:
    idem = Idempotency("customer:12", "r-1", fingerprint(n=1), result_type=Receipt)
    with OneBatch(writer):
        first = writer.submit(Command(lambda tx: Receipt(1, "a", 1), idempotency=idem))
        second = writer.submit(Command(lambda tx: Receipt(2, "b", 2), idempotency=idem))
    assert first.result(WAIT) == second.result(WAIT) == Receipt(1, "a", 1)
    assert type(second.result(WAIT)) is Receipt


@dataclasses.dataclass(frozen=True)
class TimedReceipt:
    id: int
    at: datetime


def test_an_idempotent_result_that_is_not_json_native_fails_and_stores_nothing(
    writer: Writer, engine: Engine
) -> None:
    # Stored results hold JSON-native values only, so that a replay equals the first answer;
    # a command breaking that rule fails loudly instead of replaying something different.
    idem = Idempotency("customer:13", "t-1", fingerprint(n=1), result_type=TimedReceipt)
    with pytest.raises(TypeError):
        writer.execute(Command(lambda tx: TimedReceipt(1, tx.now), idempotency=idem))
    with engine.connect() as conn:
        assert conn.execute(select(idempotency_keys)).first() is None


@pytest.mark.parametrize("key", ["", "k" * 129, "line\nbreak", "tab\there"])
def test_idempotency_key_must_be_1_to_128_printable_chars(key: str) -> None:
    with pytest.raises(EbankError) as info:
        Idempotency("customer:1", key, "fp")
    assert info.value.code == "INVALID_INPUT"


def test_idempotency_key_of_128_printable_chars_is_accepted() -> None:
    assert Idempotency("customer:1", "订" * 128, "fp").key == "订" * 128


def test_fingerprint_ignores_parameter_order_and_sees_every_value() -> None:
    assert fingerprint(a=1, b="x") == fingerprint(b="x", a=1)
    assert fingerprint(a=1, b="x") != fingerprint(a=1, b="y")
    assert fingerprint(a=1) != fingerprint(a=1, b=None)
    assert fingerprint(a="1") != fingerprint(a=1)
    assert len(fingerprint(a=1)) == 64


# -- prepare: slow work before the queue ----------------------------------------------------


def test_prepare_runs_in_the_submitting_thread_on_the_engine_before_the_command(
    writer: Writer, engine: Engine
) -> None:
    seen: list[tuple[str, Any]] = []

    def prepare(given: Engine) -> None:
        seen.append(("prepare", (threading.current_thread(), given)))

    def fn(tx: Tx) -> str:
        seen.append(("fn", threading.current_thread()))
        return "done"

    assert writer.execute(Command(fn, sql=False, prepare=prepare)) == "done"
    assert seen == [
        ("prepare", (threading.current_thread(), engine)),
        ("fn", writer._thread),  # the writer's own thread, in the writer's own unit test
    ]


def test_a_slow_prepare_does_not_hold_up_other_commands(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    # The slow command's prepare can only finish once another command has committed: were it
    # run by the writer's thread, that command could not commit and this test would time out.
    other_committed = threading.Event()

    def slow(_: Engine) -> None:
        if not other_committed.wait(WAIT):
            raise TimeoutError("the other command never committed")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(writer.execute, Command(lambda tx: "slow", prepare=slow))
        try:
            assert writer.execute(insert_row(1), timeout=WAIT) == 1
            assert scratch_rows(engine) == [(1, "v1")]  # committed while the other prepares
        finally:
            other_committed.set()
        assert waiting.result(WAIT) == "slow"


def test_run_prepares_in_a_worker_thread_leaving_the_event_loop_free(writer: Writer) -> None:
    loop_free = threading.Event()

    def prepare(_: Engine) -> None:
        if not loop_free.wait(WAIT):  # set by a coroutine: only a free loop gets to run it
            raise TimeoutError("the event loop was blocked")

    async def main() -> list[Any]:
        async def free() -> None:
            loop_free.set()

        return await asyncio.gather(writer.run(Command(lambda tx: "ok", prepare=prepare)), free())

    assert asyncio.run(main()) == ["ok", None]


def test_an_error_in_prepare_is_the_commands_error_and_nothing_is_queued(
    writer: Writer, engine: Engine, scratch: None
) -> None:
    def failing(_: Engine) -> None:
        raise EbankError("INVALID_INPUT", reason="bad")

    def command() -> Command[Any]:
        return Command(lambda tx: tx.conn.execute(INSERT, {"id": 1, "v": "ran"}), prepare=failing)

    future = writer.submit(command())  # does not raise: the future holds the error
    assert code_of(outcome(future)) == "INVALID_INPUT"
    with pytest.raises(EbankError) as caught:
        writer.execute(command())
    assert caught.value.details == {"reason": "bad"}

    async def run() -> Any:
        return await writer.run(command())

    with pytest.raises(EbankError):
        asyncio.run(run())
    assert writer.commands == 0
    assert scratch_rows(engine) == []


# -- shutdown ------------------------------------------------------------------------------


def test_commands_queued_before_close_are_still_committed(
    engine: Engine, clock: FixedClock, scratch: None
) -> None:
    writer = Writer(engine, clock=clock)
    with OneBatch(writer):
        futures = [writer.submit(insert_row(i)) for i in range(5)]
        closer = threading.Thread(target=writer.close)
        closer.start()
        # close() marks the writer closed at once, then waits for the queue to drain; wait
        # (on the private flag, acceptable in the writer's own unit test) until it has.
        deadline = time.monotonic() + WAIT
        while not writer._closed and time.monotonic() < deadline:
            time.sleep(0.005)
        assert writer._closed
    closer.join(WAIT)
    assert not closer.is_alive()
    assert [outcome(f) for f in futures] == list(range(5))
    assert [r[0] for r in scratch_rows(engine)] == list(range(5))


def test_submit_after_close_raises_runtime_error(writer: Writer) -> None:
    assert writer.execute(Command(lambda tx: 1, sql=False)) == 1
    writer.close()
    with pytest.raises(RuntimeError):
        writer.submit(Command(lambda tx: 2, sql=False))
    with pytest.raises(RuntimeError):
        writer.execute(Command(lambda tx: 2, sql=False))

    async def run_one() -> Any:
        return await writer.run(Command(lambda tx: 3, sql=False))

    with pytest.raises(RuntimeError):
        asyncio.run(run_one())
    writer.close()  # a second close is harmless


def test_a_cancelled_future_does_not_stop_the_writer(writer: Writer) -> None:
    with OneBatch(writer):
        abandoned = writer.submit(Command(lambda tx: "abandoned", sql=False))
        assert abandoned.cancel()  # a caller giving up while its command is still queued
        neighbour = writer.submit(Command(lambda tx: "neighbour", sql=False))
    assert neighbour.result(2) == "neighbour"
    assert writer.execute(Command(lambda tx: "later", sql=False), timeout=2) == "later"
