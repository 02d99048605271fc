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
- A failed send is retried after each delay of the queue's `backoff` (the bank default:
  `BACKOFF`), then given up.
- A message with an `expires_at` (a one-time code) that is due after it is not sent: it is
  recorded as expired.

Events are never changed. New ones are found from a watermark (the channel's intake table) that
only moves past events older than `SETTLE`: on PostgreSQL a transaction may commit an event with
a lower id after one with a higher id is already visible, and the watermark must not skip it.

Most channels write to customers (SMS, e-mail); the gateway's notices write to merchants' notify
URLs: their queue carries its fields in clear, has a schedule of its own and sends a round's
messages concurrently (`deliver(pool=...)`).
"""

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Table, bindparam, exists, func, select

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
    # After a failed attempt, wait this long before the next; with no delay left, give up.
    backoff: tuple[timedelta, ...] = BACKOFF
    # Whether each message is for a customer (an integer `customer` in the payload). The
    # gateway's notices are for merchants, and carry their notify URL instead.
    for_customers: bool = True
    # Payload fields carried in clear (strings): a channel whose messages hold no personal data.
    plain: tuple[str, ...] = ()
    # What else the channel records of the events it takes in, in the same transaction as their
    # messages rows (the gateway's notice log, by merchant and order): given their event ids.
    on_intake: Callable[[Connection, list[int]], None] | None = None

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
    customer_id: int | None  # None on a queue not `for_customers`
    kind: str
    sealed: dict[str, str]  # the queue's fields
    address: str | None  # sealed, from `Queue.addresses`; None where it found none
    expires_at: datetime | None
    plain: dict[str, str]  # the queue's `plain` fields

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
    """Give every new event of the queue its messages row, then move the watermark.

    However many events wait to settle (a minute's worth: 60,000 at 1,000 a second), this reads
    little: new events are looked for past the last one taken in, and between the watermark
    and it only when counting finds one missing there (an event PostgreSQL committed late)."""
    conn, e, m, intake = tx.conn, outbox_events, queue.messages, queue.intake
    query = select(intake.c.event_id).where(intake.c.id == 1)
    watermark = conn.execute(query.with_for_update()).scalar()
    if watermark is None:
        conn.execute(intake.insert().values(id=1, event_id=0, updated_at=tx.now))
        watermark = 0
    newer = (e.c.topic == queue.topic, e.c.id > watermark)
    seen, taken = conn.execute(
        select(func.max(m.c.event_id), func.count()).where(m.c.event_id > watermark)
    ).one()
    start = watermark
    if seen is not None:
        events = select(func.count()).select_from(e).where(*newer, e.c.id <= seen)
        if conn.execute(events).scalar() == taken:
            start = seen  # every event up to the last taken in has its row
    fresh = (
        conn.execute(
            select(e.c.id)
            .where(
                e.c.topic == queue.topic, e.c.id > start, ~exists().where(m.c.event_id == e.c.id)
            )
            .order_by(e.c.id)
            .limit(INTAKE_CHUNK)
        )
        .scalars()
        .all()
    )
    if fresh:
        rows = [{"event_id": i, "state": "waiting", "attempts": 0, "due_at": tx.now} for i in fresh]
        conn.execute(m.insert(), rows)
        if queue.on_intake is not None:
            queue.on_intake(conn, fresh)
    # Every visible event up to here now has its row; pass only those that have settled: the
    # ones before the first that has not (ids follow time, so the young are not all read).
    young = select(e.c.id).where(*newer, e.c.created_at > tx.now - SETTLE)
    first_young = conn.execute(young.order_by(e.c.id).limit(1)).scalar()
    settled = select(e.c.id).where(*newer)
    if first_young is not None:
        settled = settled.where(e.c.id < first_young)
    if len(fresh) == INTAKE_CHUNK:
        settled = settled.where(e.c.id <= fresh[-1])
    upto = conn.execute(settled.order_by(e.c.id.desc()).limit(1)).scalar()
    if upto is not None:
        conn.execute(
            intake.update().where(intake.c.id == 1).values(event_id=upto, updated_at=tx.now)
        )


def _outcome(queue: Queue, attempt: int, error: str | None) -> str:
    if error is None:
        return "delivered"
    return "retrying" if attempt <= len(queue.backoff) else "failed"


# (event id, attempt, status, error): one attempt to record.
_Attempt = tuple[int, int, str, str | None]


def _record_attempts(tx: Tx, queue: Queue, attempts: list[_Attempt]) -> None:
    """Append the attempts and move each message on: to its next attempt, or to done. One
    statement per table for the lot."""
    if not attempts:
        return
    rows = [
        {"event_id": event_id, "attempt": attempt, "status": status, "error": error, "at": tx.now}
        for event_id, attempt, status, error in attempts
    ]
    tx.conn.execute(queue.deliveries.insert(), rows)
    m = queue.messages
    moves = [
        {"b_event": event_id, "b_state": "waiting" if status == "retrying" else "done",
         "b_attempts": attempt,
         "b_due": tx.now + queue.backoff[attempt - 1] if status == "retrying" else tx.now}
        for event_id, attempt, status, _ in attempts
    ]  # fmt: skip
    tx.conn.execute(
        m.update()
        .where(m.c.event_id == bindparam("b_event"))
        .values(state=bindparam("b_state"), attempts=bindparam("b_attempts"),
                due_at=bindparam("b_due")),
        moves,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Event:
    customer: int | None
    kind: str
    sealed: dict[str, str]
    plain: dict[str, str]
    until: datetime | None


def _read(queue: Queue, text: str) -> _Event:
    """What an event asks to send; ValueError if it cannot be read."""
    try:
        payload = json.loads(text)
        kind, until = payload["kind"], payload["expires_at"]
        customer = payload["customer"] if queue.for_customers else None
        sealed = {name: payload[name] for name in queue.fields}
        plain = {name: payload[name] for name in queue.plain}
        if (
            (queue.for_customers and type(customer) is not int)
            or not isinstance(kind, str)
            or not all(isinstance(v, str) for v in (*sealed.values(), *plain.values()))
        ):
            raise ValueError("a field has the wrong type")
        return _Event(
            customer,
            kind,
            sealed,
            plain,
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
    done: list[_Attempt] = [
        (row.event_id, row.attempts, _outcome(queue, row.attempts, ABANDONED), ABANDONED)
        for row in due
        if row.state == "sending"  # its worker's lease ran out
    ]
    waiting = [row for row in due if row.state == "waiting"]
    if not waiting:
        _record_attempts(tx, queue, done)
        return _Claimed([], 0)
    found = conn.execute(
        select(outbox_events.c.id, outbox_events.c.payload).where(
            outbox_events.c.id.in_([row.event_id for row in waiting])
        )
    )
    events: dict[int, _Event | ValueError] = {}
    for event_id, text in found:
        try:
            events[event_id] = _read(queue, text)
        except ValueError as exc:  # never sendable: given up at once, not left to block others
            events[event_id] = exc
    wanted = {
        e.customer for e in events.values() if isinstance(e, _Event) and e.customer is not None
    }
    addresses = queue.addresses(conn, wanted) if queue.addresses and wanted else {}
    claimed, expired = [], 0
    for row in waiting:
        event, attempt = events[row.event_id], row.attempts + 1
        if isinstance(event, ValueError):
            done.append((row.event_id, attempt, "failed", str(event)[:ERROR_CHARS]))
            continue
        if event.until is not None and event.until <= tx.now:
            done.append((row.event_id, attempt, "expired", None))
            expired += 1
            continue
        address = None if event.customer is None else addresses.get(event.customer)
        message = Message(
            row.event_id, attempt, event.customer, event.kind, event.sealed, address,
            event.until, event.plain,
        )  # fmt: skip
        claimed.append(message)
    _record_attempts(tx, queue, done)
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
    done: list[_Attempt] = []
    for event_id, attempt, error in outcomes:
        row = rows[event_id]
        if row.state != "sending" or row.attempts != attempt:
            log.warning("%s outcome after the lease", queue.name, extra={"event": event_id})
            continue
        done.append((event_id, attempt, _outcome(queue, attempt, error), error))
    _record_attempts(tx, queue, done)


def deliver(
    writer: Writer,
    queue: Queue,
    send: Callable[[Message], None],
    *,
    limit: int = ROUND,
    pool: Executor | None = None,
) -> int:
    """Send the queue's messages that are due, up to `limit`, each with `send` (which raises
    if the message was not taken; its error's text is stored, so it must quote neither the
    address nor the body). How many were dealt with (sent, failed or expired). Safe to run in
    several workers at once. With a `pool`, the round's messages are sent concurrently on it
    (`send` must then be thread-safe); without, one after another."""
    if type(limit) is not int or limit < 1:
        raise ValueError("limit is a positive integer")
    claimed = writer.execute(Command(lambda tx: _claim(tx, queue, limit)))

    def attempt(m: Message) -> tuple[int, int, str | None]:
        return m.event_id, m.attempt, _attempt(queue, send, m)

    outcomes = list((pool.map if pool else map)(attempt, claimed.messages))
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
