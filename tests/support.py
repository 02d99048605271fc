"""Helpers several test modules share."""

import concurrent.futures
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ebank.core.writer import Command, Tx, Writer

WAIT = 30  # seconds: far beyond any test's need, short enough to fail a hang


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
