"""The hash-chained audit log: who did what, when, through which channel, from where, and how
it ended. Each record's hash covers its content and the previous record's hash, so altering,
inserting or deleting a record breaks every hash after it; `verify` finds the first break.

Records are appended through the writer, in the same transaction as the action they describe.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.core.clock import as_utc
from ebank.core.tables import audit_head, audit_log
from ebank.core.writer import BufferedRows, Tx

GENESIS = "0" * 64


def _stamp(at: datetime) -> str:
    return as_utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(prev_hash: str, row: dict[str, Any]) -> str:
    content = {k: row[k] for k in ("id", "actor", "action", "channel", "address", "outcome")}
    content |= {"at": _stamp(row["at"]), "subject": row["subject"], "detail": row["detail"]}
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + blob).encode()).hexdigest()


class AuditTrail(BufferedRows):
    """Records chained to the last one at flush, so it writes them its own way. The chain's
    head is read once a batch (locked on PostgreSQL until the commit) and written once, at
    the batch's end, rather than at every command's flush."""

    order = 90  # last: the chain head stays locked for as short a time as possible

    table = audit_log

    def __init__(self, tx: Tx) -> None:
        super().__init__(tx)
        self.head: tuple[int, str] | None = None  # (last id, its hash), once read
        self.stored: tuple[int, str] | None = None  # the head as the database has it
        self._head_before: tuple[int, str] | None = None

    def begin_command(self) -> None:
        super().begin_command()
        self._head_before = self.head

    def rollback_command(self) -> None:
        super().rollback_command()
        # Rows this command flushed went with its savepoint; the chain goes back with them.
        self.head = self._head_before

    def flush(self) -> None:
        if not self.pending:
            return
        if self.head is None:
            query = _HEAD if self.tx.sqlite else _HEAD_LOCKED
            row = self.tx.raw.execute(query).first()
            self.stored = None if row is None else (row[0], row[1])
            self.head = self.stored or (0, GENESIS)
        last_id, prev = self.head
        rows = []
        for row in self.pending:
            last_id += 1
            row = {**row, "id": last_id, "prev_hash": prev}
            row["hash"] = prev = record_hash(row["prev_hash"], row)
            rows.append(row)
        self.tx.raw.execute(audit_log.insert(), rows)
        self.head = (last_id, prev)
        self.pending.clear()
        self._mark = 0

    def finish(self) -> None:
        if self.head is None or self.head == self.stored:
            return
        last_id, last_hash = self.head
        if self.stored is None:
            self.tx.raw.execute(
                audit_head.insert(), {"id": 1, "last_id": last_id, "hash": last_hash}
            )
        else:
            self.tx.raw.execute(_MOVE_HEAD, {"last_id": last_id, "hash": last_hash})
        self.stored = self.head


_HEAD = select(audit_head.c.last_id, audit_head.c.hash).where(audit_head.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()
_MOVE_HEAD = audit_head.update().where(audit_head.c.id == 1)


def record(
    tx: Tx,
    *,
    actor: str,
    action: str,
    subject: str = "",
    outcome: str = "ok",
    channel: str = "system",
    address: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an audit record to the command's transaction."""
    tx.part(AuditTrail).add(
        {
            "at": tx.now,
            "actor": actor,
            "action": action,
            "channel": channel,
            "address": address,
            "outcome": outcome,
            "subject": subject,
            "detail": json.dumps(detail or {}, sort_keys=True, ensure_ascii=False),
        }
    )


@dataclass(frozen=True, slots=True)
class Verification:
    records: int
    first_bad_id: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None


def verify(conn: Connection, batch: int = 5000) -> Verification:
    """Walk the whole chain; report the first record whose hash or link does not hold."""
    prev, expected_id, count = GENESIS, 1, 0
    after = 0
    while True:
        rows = (
            conn.execute(
                select(audit_log)
                .where(audit_log.c.id > after)
                .order_by(audit_log.c.id)
                .limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            break
        for row in rows:
            if row["id"] != expected_id:
                return Verification(count, expected_id, "a record is missing")
            if row["prev_hash"] != prev:
                return Verification(count, row["id"], "the link to the previous record is broken")
            if record_hash(prev, dict(row)) != row["hash"]:
                return Verification(count, row["id"], "the record's content was altered")
            prev, expected_id, count = row["hash"], expected_id + 1, count + 1
        after = rows[-1]["id"]
    head = conn.execute(select(audit_head.c.last_id, audit_head.c.hash)).first()
    if head is None:
        if count:
            return Verification(count, 1, "the chain's head record is missing")
    elif head[0] < count:
        return Verification(count, head[0] + 1, "a record was added outside the writer")
    elif head[0] > count:
        return Verification(count, count + 1, "records after the last one were removed")
    elif head[1] != prev:
        return Verification(count, count, "the last record was replaced")
    return Verification(count, None, "intact")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    channel: str
    address: str
    outcome: str
    subject: str
    detail: dict[str, Any]


def records(
    conn: Connection, *, actor: str = "", action: str = "", since: datetime | None = None,
    until: datetime | None = None, before: int | None = None, limit: int = 50,
) -> list[AuditRecord]:  # fmt: skip
    """Records newest first, for the console's viewer: of one `actor` ("staff:3"), of actions
    starting with `action` ("risk.case" finds every case decision), at or after `since` and
    before `until`, with ids below `before` (the last one of the previous page)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(audit_log.c.action.like(escaped + "%", escape="\\"))
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    return [_audit_record(row) for row in conn.execute(query).mappings()]


def _audit_record(row: Any) -> AuditRecord:
    return AuditRecord(
        row["id"], as_utc(row["at"]), row["actor"], row["action"], row["channel"],
        row["address"], row["outcome"], row["subject"], json.loads(row["detail"]),
    )  # fmt: skip
