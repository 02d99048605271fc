"""The outbox: an event exists if and only if the write that emitted it committed."""

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ebank.core.clock import FixedClock, as_utc
from ebank.core.errors import EbankError
from ebank.core.outbox import emit
from ebank.core.tables import outbox_events
from ebank.core.writer import Command, Tx, Writer
from tests.support import OneBatch, outcome


def events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(select(outbox_events).order_by(outbox_events.c.id)).mappings()
        return [dict(r) for r in result]


def emitting(key: str, *, sql: bool = True, fail: bool = False) -> Command[str]:
    def fn(tx: Tx) -> str:
        emit(tx, "transfer.posted", key, {"key": key, "amount": "10.00"})
        if fail:
            raise EbankError("INSUFFICIENT_FUNDS")
        return key

    return Command(fn, sql=sql)


@pytest.mark.parametrize("sql", [True, False])
def test_emit_in_a_committed_command_writes_the_event_with_its_json_payload(
    writer: Writer, engine: Engine, clock: FixedClock, sql: bool
) -> None:
    payload = {"to": "6222 0001", "amount": "1234.50", "memo": "房租 <b>", "n": [1, 2]}

    def fn(tx: Tx) -> str:
        emit(tx, "transfer.posted", "transfer:1", payload)
        return "done"

    assert writer.execute(Command(fn, sql=sql)) == "done"
    (event,) = events(engine)
    assert event["topic"] == "transfer.posted"
    assert event["key"] == "transfer:1"
    assert json.loads(event["payload"]) == payload
    assert "房租" in event["payload"]
    assert as_utc(event["created_at"]) == clock.now()


def test_events_keep_their_emit_order(writer: Writer, engine: Engine) -> None:
    def fn(tx: Tx) -> None:
        for i in range(3):
            emit(tx, "notify.sms", f"msg:{i}", {"i": i, "day": date(2026, 11, 23)})

    writer.execute(Command(fn))
    writer.execute(Command(fn, sql=False))
    stored = events(engine)
    assert [e["key"] for e in stored] == [f"msg:{i}" for i in (0, 1, 2, 0, 1, 2)]
    assert json.loads(stored[0]["payload"]) == {"i": 0, "day": "2026-11-23"}


@pytest.mark.parametrize("sql", [True, False])
def test_emit_in_a_failed_command_writes_nothing(writer: Writer, engine: Engine, sql: bool) -> None:
    with pytest.raises(EbankError):
        writer.execute(emitting("transfer:9", sql=sql, fail=True))
    assert events(engine) == []


def test_failed_commands_events_are_dropped_and_neighbours_kept_in_one_batch(
    writer: Writer, engine: Engine
) -> None:
    with OneBatch(writer) as batch:
        futures = [
            writer.submit(emitting("a", sql=False)),
            writer.submit(emitting("b", sql=False, fail=True)),
            writer.submit(emitting("c")),
            writer.submit(emitting("d", fail=True)),
            writer.submit(emitting("e", sql=False)),
        ]
    results = [outcome(f) for f in futures]
    assert [results[0], results[2], results[4]] == ["a", "c", "e"]
    assert isinstance(results[1], EbankError) and isinstance(results[3], EbankError)
    assert [e["key"] for e in events(engine)] == ["a", "c", "e"]
    assert batch.batches_after_gate() == 1
