"""Delivering what the outbox asks to send, for every channel (SMS, e-mail): one mechanism.

A channel's `send_*` seals what it sends and appends an event on its `Queue.topic` in the
caller's transaction (`enqueue`), so a message exists if and only if what caused it committed.
`deliver` (run by background workers, any number of them) takes the events in id order and
hands each to the channel's send function:

- Each event gets a row in the channel's messages table that says where its delivery stands. A
  worker claims due rows in a writer command (with a lease: `LEASE`), sends outside any
  transaction, then records every attempt in the channel's deliveries table. Two workers never
  claim the same row, so a message is never sent twice by racing workers. A worker that dies
  mid-send leaves its claim; when the lease ends the attempt is recorded as failed and the
  message is retried, so a crash may send a message twice but never loses one.
- A failed send is retried after each delay of `BACKOFF`, then given up.
- A message with an `expires_at` (a one-time code) that is due after it is not sent: it is
  recorded as expired.

Events are never changed. New ones are found from a watermark (the channel's intake table) that
only moves past events older than `SETTLE`: on PostgreSQL a transaction may commit an event with
a lower id after one with a higher id is already visible, and the watermark must not skip it.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Table, exists, func, select

from ebank.core import outbox
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.tables import outbox_events
from ebank.core.writer import Command, Tx, Writer

log = logging.getLogger(__name__)

# The bank default: after a failed attempt, wait this long before the next; after a failure
# with no delay left, give up. Six attempts over about an hour and a half.
BACKOFF: tuple[timedelta, ...] = (
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=1),
)
# How long a worker may take to send what it claimed before another takes over. A sender must
# give up on the network well within it, for a whole round of `ROUND` messages.
LEASE = timedelta(minutes=5)
ROUND = 100
# An event older than this is assumed committed or never to be: no writer transaction stays
# open that long.
SETTLE = timedelta(minutes=1)
INTAKE_CHUNK = 1000
ERROR_CHARS = 500
ABANDONED = "no outcome recorded within the lease: the worker stopped mid-send"


@dataclass(frozen=True, slots=True)
class Queue:
    """One channel's messages: its outbox topic ("<name>.send"), the fields its payload
    carries sealed, and its delivery tables (`notify.tables.delivery_tables`)."""

    name: str
    fields: tuple[str, ...]
    intake: Table
    messages: Table
    deliveries: Table
    # Where the channel reaches each of a batch of customers (sealed), for a channel whose
    # address is not in the message itself: SMS goes to the mobile number on file at sending.
    addresses: Callable[[Connection, set[int]], dict[int, str]] | None = None

    @property
    def topic(self) -> str:
        return f"{self.name}.send"

    def purpose(self, field: str) -> str:
        """What a payload field is sealed for: "sms.body" opens nowhere else."""
        return f"{self.name}.{field}"


@dataclass(frozen=True, slots=True)
class Message:
    """A claimed message as its channel's send function gets it: still sealed."""

    event_id: int
    attempt: int
    customer_id: int
    kind: str
    sealed: dict[str, str]  # the queue's fields
    address: str | None  # sealed, from `Queue.addresses`; None where it found none
    expires_at: datetime | None

    def open(self, vault: Vault, queue: Queue, field: str) -> str:
        return vault.decrypt(self.sealed[field], purpose=queue.purpose(field))


def enqueue(
    tx: Tx,
    vault: Vault,
    queue: Queue,
    *,
    customer_id: int,
    kind: str,
    fields: dict[str, str],
    expires_at: datetime | None,
) -> None:
    """Append a message for `queue` to the outbox, each field sealed. The channel has checked
    the fields themselves; this checks what every message has."""
    if type(customer_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a customer id is an integer")
    if not isinstance(kind, str) or not kind.isidentifier() or len(kind) > 16:
        raise EbankError("INVALID_INPUT", reason="a message kind is a short identifier")
    payload: dict[str, object] = {
        name: vault.encrypt(fields[name], purpose=queue.purpose(name)) for name in queue.fields
    }
    payload |= {
        "customer": customer_id,
        "kind": kind,
        "expires_at": None if expires_at is None else as_utc(expires_at).isoformat(),
    }
    outbox.emit(tx, queue.topic, f"customer:{customer_id}", payload)


# -- claiming and recording ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Claimed:
    messages: list[Message]
    expired: int


def _take_in(tx: Tx, queue: Queue) -> None:
    """Give every new event of the queue its messages row, then move the watermark."""
    conn, e, m, intake = tx.conn, outbox_events, queue.messages, queue.intake
    query = select(intake.c.event_id).where(intake.c.id == 1)
    watermark = conn.execute(query.with_for_update()).scalar()
    if watermark is None:
        conn.execute(intake.insert().values(id=1, event_id=0, updated_at=tx.now))
        watermark = 0
    newer = (e.c.topic == queue.topic, e.c.id > watermark)
    fresh = (
        conn.execute(
            select(e.c.id)
            .where(*newer, ~exists().where(m.c.event_id == e.c.id))
            .order_by(e.c.id)
            .limit(INTAKE_CHUNK)
        )
        .scalars()
        .all()
    )
    if fresh:
        rows = [{"event_id": i, "state": "waiting", "attempts": 0, "due_at": tx.now} for i in fresh]
        conn.execute(m.insert(), rows)
    # Every visible event up to here now has its row; pass only those that have settled.
    settled = select(func.max(e.c.id)).where(*newer, e.c.created_at <= tx.now - SETTLE)
    if len(fresh) == INTAKE_CHUNK:
        settled = settled.where(e.c.id <= fresh[-1])
    upto = conn.execute(settled).scalar()
    if upto is not None:
        conn.execute(
            intake.update().where(intake.c.id == 1).values(event_id=upto, updated_at=tx.now)
        )


def _outcome(attempt: int, error: str | None) -> str:
    if error is None:
        return "delivered"
    return "retrying" if attempt <= len(BACKOFF) else "failed"


def _record_attempt(
    tx: Tx, queue: Queue, event_id: int, attempt: int, status: str, error: str | None
) -> None:
    """Append the attempt and move the message on: to its next attempt, or to done."""
    retry = status == "retrying"
    tx.conn.execute(
        queue.deliveries.insert().values(
            event_id=event_id, attempt=attempt, status=status, error=error, at=tx.now
        )
    )
    tx.conn.execute(
        queue.messages.update()
        .where(queue.messages.c.event_id == event_id)
        .values(
            state="waiting" if retry else "done",
            attempts=attempt,
            due_at=tx.now + BACKOFF[attempt - 1] if retry else tx.now,
        )
    )


def _read(queue: Queue, text: str) -> tuple[int, str, dict[str, str], datetime | None]:
    """An event's customer, kind, sealed fields and expiry; ValueError if it cannot be read."""
    try:
        payload = json.loads(text)
        customer, kind, until = (payload[k] for k in ("customer", "kind", "expires_at"))
        sealed = {name: payload[name] for name in queue.fields}
        if (
            type(customer) is not int
            or not isinstance(kind, str)
            or not all(isinstance(v, str) for v in sealed.values())
        ):
            raise ValueError("a field has the wrong type")
        return (
            customer,
            kind,
            sealed,
            None if until is None else as_utc(datetime.fromisoformat(until)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable event: {exc!r}") from None


def _claim(tx: Tx, queue: Queue, limit: int) -> _Claimed:
    """Take up to `limit` due messages, in id order, for this worker alone."""
    _take_in(tx, queue)
    conn, m = tx.conn, queue.messages
    due = conn.execute(
        select(m.c.event_id, m.c.state, m.c.attempts)
        .where(m.c.state.in_(("waiting", "sending")), m.c.due_at <= tx.now)
        .order_by(m.c.event_id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's writers take turns
    ).all()
    for row in due:
        if row.state == "sending":  # its worker's lease ran out
            status = _outcome(row.attempts, ABANDONED)
            _record_attempt(tx, queue, row.event_id, row.attempts, status, ABANDONED)
    waiting = [row for row in due if row.state == "waiting"]
    if not waiting:
        return _Claimed([], 0)
    found = conn.execute(
        select(outbox_events.c.id, outbox_events.c.payload).where(
            outbox_events.c.id.in_([row.event_id for row in waiting])
        )
    )
    events: dict[int, tuple[int, str, dict[str, str], datetime | None] | ValueError] = {}
    for event_id, text in found:
        try:
            events[event_id] = _read(queue, text)
        except ValueError as exc:  # never sendable: given up at once, not left to block others
            events[event_id] = exc
    wanted = {event[0] for event in events.values() if isinstance(event, tuple)}
    addresses = queue.addresses(conn, wanted) if queue.addresses and wanted else {}
    claimed, expired = [], 0
    for row in waiting:
        event, attempt = events[row.event_id], row.attempts + 1
        if isinstance(event, ValueError):
            _record_attempt(tx, queue, row.event_id, attempt, "failed", str(event)[:ERROR_CHARS])
            continue
        customer_id, kind, sealed, until = event
        if until is not None and until <= tx.now:
            _record_attempt(tx, queue, row.event_id, attempt, "expired", None)
            expired += 1
            continue
        claimed.append(
            Message(
                row.event_id, attempt, customer_id, kind, sealed, addresses.get(customer_id), until
            )
        )
    if claimed:
        conn.execute(
            m.update()
            .where(m.c.event_id.in_([c.event_id for c in claimed]))
            .values(state="sending", attempts=m.c.attempts + 1, due_at=tx.now + LEASE)
        )
    return _Claimed(claimed, expired)


def _attempt(queue: Queue, send: Callable[[Message], None], message: Message) -> str | None:
    """Send one claimed message; the error's text if it failed."""
    try:
        send(message)
    except Exception as exc:
        log.warning(
            "%s not sent",
            queue.name,
            extra={"event": message.event_id, "attempt": message.attempt,
                   "error": type(exc).__name__},
        )  # fmt: skip
        return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
    return None


def _record(tx: Tx, queue: Queue, outcomes: list[tuple[int, int, str | None]]) -> None:
    """Record what each send did, unless the claim was lost (its lease ran out meanwhile)."""
    m = queue.messages
    rows = {
        row.event_id: row
        for row in tx.conn.execute(
            select(m.c.event_id, m.c.state, m.c.attempts)
            .where(m.c.event_id.in_([event_id for event_id, _, _ in outcomes]))
            .with_for_update()
        )
    }
    for event_id, attempt, error in outcomes:
        row = rows[event_id]
        if row.state != "sending" or row.attempts != attempt:
            log.warning("%s outcome after the lease", queue.name, extra={"event": event_id})
            continue
        _record_attempt(tx, queue, event_id, attempt, _outcome(attempt, error), error)


def deliver(
    writer: Writer, queue: Queue, send: Callable[[Message], None], *, limit: int = ROUND
) -> int:
    """Send the queue's messages that are due, up to `limit`, each with `send` (which raises
    if the message was not taken; its error's text is stored, so it must quote neither the
    address nor the body). How many were dealt with (sent, failed or expired). Safe to run in
    several workers at once."""
    if type(limit) is not int or limit < 1:
        raise ValueError("limit is a positive integer")
    claimed = writer.execute(Command(lambda tx: _claim(tx, queue, limit)))
    outcomes = [(m.event_id, m.attempt, _attempt(queue, send, m)) for m in claimed.messages]
    if outcomes:
        writer.execute(Command(lambda tx: _record(tx, queue, outcomes)))
    return claimed.expired + len(outcomes)


# -- background loops ----------------------------------------------------------------------
def run_loop(
    deliver_round: Callable[[int], int], stop: threading.Event, *, poll_seconds: float, what: str
) -> None:
    """Deliver until `stop` is set (a background thread's body): at once while there is a
    backlog, otherwise every `poll_seconds`. A failing round is logged and tried again.
    `deliver_round(limit)` says how many messages it dealt with."""
    while not stop.is_set():
        try:
            busy = deliver_round(ROUND) >= ROUND
        except Exception:
            log.exception("%s delivery round failed", what)
            busy = False
        if not busy:
            stop.wait(poll_seconds)


def start(body: Callable[[threading.Event], None], *, name: str) -> Callable[[], None]:
    """Run a delivery loop's `body(stop)` on a daemon thread; returns `stop`, which ends the
    loop after its current round."""
    stop = threading.Event()
    thread = threading.Thread(target=body, args=(stop,), name=name, daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join()

    return halt
