"""The hash-chained audit log: appended through the writer, tampering found by `verify`."""

import concurrent.futures
import itertools
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update

from ebank.core import audit
from ebank.core.clock import FixedClock, as_utc
from ebank.core.errors import EbankError
from ebank.core.tables import audit_head, audit_log, idempotency_keys
from ebank.core.writer import Command, Tx, Writer
from tests.support import WAIT, OneBatch, outcome


def record_command(i: int, *, sql: bool = True, **fields: Any) -> Command[None]:
    values: dict[str, Any] = {
        "actor": f"customer:{i}",
        "action": "transfer.create",
        "subject": f"transfer:{i}",
        "channel": "web",
        "address": "203.0.113.7",
        "detail": {"n": i, "amount": "10.00"},
    }
    values |= fields

    def fn(tx: Tx) -> None:
        audit.record(tx, **values)

    return Command(fn, sql=sql)


def append(writer: Writer, count: int) -> None:
    for i in range(1, count + 1):
        writer.execute(record_command(i))


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()
        return [dict(r) for r in result]


def check(engine: Engine) -> audit.Verification:
    with engine.connect() as conn:
        return audit.verify(conn)


def tamper(engine: Engine, statement: Any) -> None:
    with engine.begin() as conn:
        conn.execute(statement)


def test_empty_log_verifies_with_zero_records(engine: Engine) -> None:
    result = check(engine)
    assert result.ok and result.records == 0 and result.first_bad_id is None


def test_records_appended_through_the_writer_form_a_chain(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    append(writer, 3)
    clock.advance(timedelta(seconds=1, microseconds=250))

    def two_records(tx: Tx) -> None:
        audit.record(tx, actor="staff:1", action="limit.change", detail={"to": 5000})
        audit.record(tx, actor="system", action="eod.run", outcome="failed")

    writer.execute(Command(two_records, sql=False))

    stored = rows(engine)
    assert [r["id"] for r in stored] == [1, 2, 3, 4, 5]
    assert stored[0]["prev_hash"] == audit.GENESIS
    for prev, row in itertools.pairwise(stored):
        assert row["prev_hash"] == prev["hash"]
    for row in stored:
        assert row["hash"] == audit.record_hash(row["prev_hash"], row)
    assert len({r["hash"] for r in stored}) == 5

    first = stored[0]
    assert (first["actor"], first["action"], first["subject"]) == (
        "customer:1",
        "transfer.create",
        "transfer:1",
    )
    assert (first["channel"], first["address"], first["outcome"]) == ("web", "203.0.113.7", "ok")
    assert json.loads(first["detail"]) == {"n": 1, "amount": "10.00"}
    assert as_utc(first["at"]) == clock.now() - timedelta(seconds=1, microseconds=250)
    assert as_utc(stored[4]["at"]) == clock.now()
    assert (stored[4]["channel"], stored[4]["outcome"], stored[4]["detail"]) == (
        "system",
        "failed",
        "{}",
    )

    result = check(engine)
    assert result.ok and result.records == 5 and result.first_bad_id is None
    with engine.connect() as conn:
        head = conn.execute(select(audit_head.c.last_id, audit_head.c.hash)).one()
    assert (head[0], head[1]) == (5, stored[-1]["hash"])


def test_verify_walks_the_chain_across_pages(writer: Writer, engine: Engine) -> None:
    append(writer, 7)
    with engine.connect() as conn:
        assert audit.verify(conn, batch=2) == audit.Verification(7, None, "intact")
    tamper(engine, update(audit_log).where(audit_log.c.id == 6).values(actor="intruder"))
    with engine.connect() as conn:
        found = audit.verify(conn, batch=2)
    assert (found.ok, found.first_bad_id, found.records) == (False, 6, 5)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("detail", json.dumps({"n": 2, "amount": "99999.00"})),
        ("actor", "customer:666"),
        ("action", "transfer.cancel"),
        ("subject", "transfer:666"),
        ("channel", "sms"),
        ("address", "198.51.100.1"),
        ("outcome", "denied"),
    ],
)
def test_altering_a_field_of_a_record_is_detected_at_that_record(
    writer: Writer, engine: Engine, column: str, value: str
) -> None:
    append(writer, 4)
    tamper(engine, update(audit_log).where(audit_log.c.id == 2).values({column: value}))
    result = check(engine)
    assert not result.ok
    assert result.first_bad_id == 2
    assert result.records == 1
    assert "altered" in result.reason


def test_altering_a_records_time_is_detected(writer: Writer, engine: Engine) -> None:
    append(writer, 3)
    at = rows(engine)[1]["at"]
    tamper(engine, update(audit_log).where(audit_log.c.id == 2).values(at=at - timedelta(hours=1)))
    result = check(engine)
    assert (result.ok, result.first_bad_id) == (False, 2)


def test_rehashing_an_altered_record_breaks_the_next_link(writer: Writer, engine: Engine) -> None:
    append(writer, 4)
    forged = rows(engine)[1] | {"detail": json.dumps({"n": 2, "amount": "0.01"})}
    new_hash = audit.record_hash(forged["prev_hash"], forged)
    tamper(
        engine,
        update(audit_log).where(audit_log.c.id == 2).values(detail=forged["detail"], hash=new_hash),
    )
    result = check(engine)
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "link" in result.reason


def test_editing_prev_hash_is_detected(writer: Writer, engine: Engine) -> None:
    append(writer, 4)
    tamper(engine, update(audit_log).where(audit_log.c.id == 3).values(prev_hash="f" * 64))
    result = check(engine)
    assert (result.ok, result.first_bad_id, result.records) == (False, 3, 2)


def test_deleting_a_middle_record_is_detected(writer: Writer, engine: Engine) -> None:
    append(writer, 4)
    tamper(engine, delete(audit_log).where(audit_log.c.id == 2))
    result = check(engine)
    assert (result.ok, result.first_bad_id, result.records) == (False, 2, 1)
    assert "missing" in result.reason


def test_deleting_the_last_record_is_detected(writer: Writer, engine: Engine) -> None:
    append(writer, 4)
    tamper(engine, delete(audit_log).where(audit_log.c.id == 4))
    result = check(engine)
    assert not result.ok
    assert result.records == 3
    assert result.first_bad_id is not None


def test_deleting_the_last_record_reports_the_missing_id_as_first_bad(
    writer: Writer, engine: Engine
) -> None:
    # As for a deletion in the middle, first_bad_id names the record that is gone (4), not
    # the intact record before it.
    append(writer, 4)
    tamper(engine, delete(audit_log).where(audit_log.c.id == 4))
    assert check(engine).first_bad_id == 4


def test_deleting_every_record_is_detected(writer: Writer, engine: Engine) -> None:
    append(writer, 3)
    tamper(engine, delete(audit_log))
    result = check(engine)
    assert not result.ok
    assert result.first_bad_id == 1
    assert result.records == 0


def test_a_record_added_outside_the_writer_is_detected(writer: Writer, engine: Engine) -> None:
    append(writer, 2)
    last = rows(engine)[-1]
    forged = last | {"id": 3, "prev_hash": last["hash"], "actor": "intruder"}
    forged["hash"] = audit.record_hash(forged["prev_hash"], forged)
    tamper(engine, audit_log.insert().values(forged))
    result = check(engine)
    assert not result.ok
    assert result.first_bad_id == 3


def test_records_of_a_failing_command_are_not_written(writer: Writer, engine: Engine) -> None:
    def record_then_fail(tx: Tx) -> None:
        audit.record(tx, actor="customer:9", action="transfer.create", subject="doomed")
        raise EbankError("INSUFFICIENT_FUNDS")

    writer.execute(record_command(1))
    with pytest.raises(EbankError):
        writer.execute(Command(record_then_fail))
    with pytest.raises(EbankError):
        writer.execute(Command(record_then_fail, sql=False))
    writer.execute(record_command(2))

    stored = rows(engine)
    assert [(r["id"], r["subject"]) for r in stored] == [(1, "transfer:1"), (2, "transfer:2")]
    assert check(engine) == audit.Verification(2, None, "intact")


def test_records_of_a_failing_command_are_dropped_from_a_shared_batch(
    writer: Writer, engine: Engine
) -> None:
    def record_then_fail(tx: Tx) -> None:
        audit.record(tx, actor="customer:9", action="transfer.create", subject="doomed")
        raise EbankError("ACCOUNT_FROZEN")

    def record_then_break_sql(tx: Tx) -> None:
        audit.record(tx, actor="customer:9", action="transfer.create", subject="doomed-sql")
        tx.conn.execute(
            idempotency_keys.insert(),
            [
                {"scope": "s", "key": "k", "fingerprint": "f", "result": "1", "created_at": tx.now},
                {"scope": "s", "key": "k", "fingerprint": "f", "result": "1", "created_at": tx.now},
            ],
        )

    with OneBatch(writer):
        futures = [
            writer.submit(record_command(1, sql=False)),
            writer.submit(Command(record_then_fail, sql=False)),
            writer.submit(record_command(2)),
            writer.submit(Command(record_then_fail)),
            writer.submit(Command(record_then_break_sql)),
            writer.submit(record_command(3, sql=False)),
        ]
    results = [outcome(f) for f in futures]
    assert results[0] is None and results[2] is None and results[5] is None
    assert all(isinstance(results[i], Exception) for i in (1, 3, 4))

    stored = rows(engine)
    assert [(r["id"], r["subject"]) for r in stored] == [
        (1, "transfer:1"),
        (2, "transfer:2"),
        (3, "transfer:3"),
    ]
    assert check(engine) == audit.Verification(3, None, "intact")


def test_many_concurrent_appends_still_verify(writer: Writer, engine: Engine) -> None:
    threads, per_thread = 16, 25
    start = threading.Barrier(threads)

    def client(t: int) -> None:
        start.wait(WAIT)
        futures = [
            writer.submit(record_command(t * 100 + j, sql=j % 2 == 0)) for j in range(per_thread)
        ]
        for f in futures:
            assert f.result(WAIT) is None

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(client, range(threads)))

    total = threads * per_thread
    assert check(engine) == audit.Verification(total, None, "intact")
    with engine.connect() as conn:
        count, top = conn.execute(select(func.count(), func.max(audit_log.c.id))).one()
    assert (count, top) == (total, total)
    assert writer.batches < writer.commands


def test_script_and_chinese_text_round_trip(writer: Writer, engine: Engine) -> None:
    script = "<script>alert('x')</script>"
    detail = {"备注": "给妈妈的生活费 💰", "html": script, "quote": "\"'\\"}

    def fn(tx: Tx) -> None:
        audit.record(
            tx,
            actor="客户:张三",
            action="转账.创建",
            subject=script,
            channel="手机银行",
            address="::1",
            outcome="成功",
            detail=detail,
        )

    writer.execute(Command(fn))
    (row,) = rows(engine)
    assert row["actor"] == "客户:张三"
    assert row["action"] == "转账.创建"
    assert row["subject"] == script
    assert row["channel"] == "手机银行"
    assert row["outcome"] == "成功"
    assert json.loads(row["detail"]) == detail
    assert "给妈妈的生活费" in row["detail"]  # stored readable, not \u-escaped
    assert check(engine) == audit.Verification(1, None, "intact")
