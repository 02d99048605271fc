"""Helpers several test modules share."""

import concurrent.futures
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ebank.core import audit
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx, Writer
from ebank.customers.identity import check_digit_for
from ebank.customers.service import register_individual
from ebank.ledger import queries

WAIT = 30  # seconds: far beyond any test's need, short enough to fail a hang
VAULT = Vault(bytes(range(32)))  # a fixed data key: tests never touch a real one
STAFF = "staff:7"


def person_id(sequence: int, *, region_and_birth: str = "11010519491231") -> str:
    """A valid resident ID: a region, a birth date, a 3-digit sequence and its check digit."""
    first17 = f"{region_and_birth}{sequence:03d}"
    return first17 + check_digit_for(first17)


def person(writer: Writer, n: int = 1) -> int:
    """Register person number `n` (a valid, distinct resident ID); their customer id."""
    view = writer.execute(
        register_individual(
            VAULT, name=f"客户{n}", id_number=person_id(n), mobile="13812345678", actor=STAFF
        )
    )
    return view.id


def outcome(future: "concurrent.futures.Future[Any]") -> Any:
    """The future's result, or its exception as a value."""
    try:
        return future.result(WAIT)
    except Exception as exc:
        return exc


class OneBatch:
    """Hold the writer in a gate command so that what is submitted meanwhile is one batch.

    The default `max_batch` is far larger than any test's queue, so everything queued while
    the gate holds the writer thread is taken as the next single batch.
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self._started = threading.Event()
        self._release = threading.Event()
        self._base = -1

    def _gate(self, tx: Tx) -> str:
        self._base = self.writer.batches  # before the gate's own batch is counted
        self._started.set()
        if not self._release.wait(WAIT):
            raise RuntimeError("gate never released")
        return "gate"

    def __enter__(self) -> "OneBatch":
        self._gate_future = self.writer.submit(Command(self._gate, sql=False))
        assert self._started.wait(WAIT), "the writer never ran the gate"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        assert self._gate_future.result(WAIT) == "gate"

    def batches_after_gate(self) -> int:
        """Batches committed after the gate's; call once every future has been answered."""
        return self.writer.batches - self._base - 1


def in_one_batch(writer: Writer, commands: Sequence[Command[Any]]) -> list[Any]:
    """Run commands in ONE writer batch, in order; each outcome is a result or an error."""
    with OneBatch(writer) as batch:
        futures = [writer.submit(c) for c in commands]
    outcomes = [outcome(f) for f in futures]
    assert batch.batches_after_gate() == 1, "the commands did not share one batch"
    return outcomes


def race_two_writers(
    writer: Writer,
    engine: Any,
    clock: Any,
    mine: Sequence[Command[Any]],
    theirs: Sequence[Command[Any]] | None = None,
) -> list[tuple[Any, Any]]:
    """`writer` runs `mine` while a second writer (its own connection, as another process
    would have) runs `theirs` (the same, unless given), one command at a time, both starting
    together. The outcome pairs, in order; outcomes are results or errors as values."""
    other = Writer(engine, clock=clock)
    sides = (mine, mine if theirs is None else theirs)
    outcomes: dict[int, list[Any]] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def race(n: int) -> None:
        own = (writer, other)[n]
        try:
            start.wait(WAIT)
            outcomes[n] = [outcome(own.submit(c)) for c in sides[n]]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 4)
    finally:
        other.close()
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert failures == []
    return list(zip(outcomes[0], outcomes[1], strict=True))


def code_of(outcome: Any) -> str:
    """An outcome's error code, the name of an exception that is not a domain error, or "ok"."""
    if isinstance(outcome, EbankError):
        return outcome.code
    return type(outcome).__name__ if isinstance(outcome, BaseException) else "ok"


def sound(engine: Any) -> None:
    """The ledger's invariants hold and the audit chain is intact."""
    with engine.connect() as conn:
        assert queries.check_invariants(conn) == []
        assert audit.verify(conn).ok
