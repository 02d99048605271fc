"""The message centre (消息中心): what the bank told each customer, for them to read again in
online and mobile banking, whether or not an SMS or e-mail went out.

Notices (`notify.notices`) keep one message per notice in the payment's own transaction. The
write stays cheap on the payments' hot path: rows are buffered like the outbox's events and
written in one statement when the command's work is flushed (a transfer's two movements and its
result: one INSERT), and what is kept is the notice's facts, not its text, so that nothing is
sealed or rendered there. Reading writes the facts out in the
reader's language (`notify.templates`). A customer marks messages read, one or all; someone
else's message is answered like one that does not exist.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ebank.core.clock import as_utc
from ebank.core.errors import EbankError
from ebank.core.writer import BufferedRows, Command, Tx
from ebank.notify import templates
from ebank.notify.tables import customer_messages

UNREAD_COUNTED = 100  # beyond this, a page says "99+"


class MessageBook(BufferedRows):
    """New messages, buffered until the transaction flushes, then written in one statement."""

    order = 60  # after the customers they name; beside the outbox
    table = customer_messages


def keep(tx: Tx, customer_id: int, kind: str, facts: dict[str, Any]) -> None:
    """Keep a notice for the customer's message centre, in the caller's transaction."""
    tx.part(MessageBook).add({
        "customer_id": customer_id, "kind": kind, "created_at": tx.now,
        "facts": json.dumps(facts, ensure_ascii=False, separators=(",", ":"), default=str),
    })  # fmt: skip


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    kind: str
    title: str
    text: str
    at: datetime
    read: bool


def messages_of(
    conn: Connection, customer_id: int, *, locale: str, before: int | None = None,
    limit: int = 20,
) -> list[Message]:  # fmt: skip
    """The customer's messages in `locale` ("zh-CN", "en"), newest first; page with the last id
    seen."""
    m = customer_messages
    query = select(m.c.id, m.c.kind, m.c.facts, m.c.created_at, m.c.read_at).where(
        m.c.customer_id == customer_id
    )
    if before is not None:
        query = query.where(m.c.id < before)
    rows = conn.execute(query.order_by(m.c.id.desc()).limit(limit))
    return [_message(row, locale) for row in rows]


def _message(row: Any, locale: str) -> Message:
    row_id, kind, facts, at, read_at = row
    text = templates.unsigned(kind, locale, json.loads(facts))
    title = templates.heading(kind, locale)
    return Message(row_id, kind, title, text, as_utc(at), read_at is not None)


def unread(conn: Connection, customer_id: int) -> int:
    """How many of the customer's messages are unread, up to `UNREAD_COUNTED`."""
    m = customer_messages
    some = (
        select(m.c.id)
        .where(m.c.customer_id == customer_id, m.c.read_at.is_(None))
        .limit(UNREAD_COUNTED)
        .subquery()
    )
    return int(conn.execute(select(func.count()).select_from(some)).scalar_one())


def mark_read(*, customer_id: int, message_id: int | None = None) -> Command[int]:
    """Mark one of the customer's messages read, or all of them (`message_id` None); how many
    were unread. Marking a read message again changes nothing."""

    def run(tx: Tx) -> int:
        m = customer_messages
        mine = m.c.customer_id == customer_id
        if message_id is not None:
            if type(message_id) is not int:
                raise EbankError("MESSAGE_NOT_FOUND")
            found = tx.conn.execute(select(m.c.id).where(mine, m.c.id == message_id)).first()
            if found is None:
                raise EbankError("MESSAGE_NOT_FOUND")  # someone else's is as unknown as none
            mine = mine & (m.c.id == message_id)
        done = tx.conn.execute(m.update().where(mine, m.c.read_at.is_(None)).values(read_at=tx.now))
        return int(done.rowcount)

    return Command(run)
