"""Sending customers SMS: one way to ask for one, and the worker that delivers them.

`send_sms` seals the body and appends an "sms.send" event in the caller's transaction, so a
message exists if and only if what caused it committed. `deliver_sms` (run by a background
worker, any number of them) takes the events in id order and hands each to an `SmsSender`:

- Each event gets a row in `sms_messages` that says where its delivery stands. A worker claims
  due rows in a writer command (with a lease: `LEASE`), sends outside any transaction, then
  records every attempt in `sms_deliveries`. Two workers never claim the same row, so a
  message is never sent twice by racing workers. A worker that dies mid-send leaves its claim;
  when the lease ends the attempt is recorded as failed and the message is retried, so a
  crash may send a message twice but never loses one.
- A failed send is retried after each delay of `BACKOFF`, then given up.
- A message with an `expires_at` (a one-time code) that is due after it is not sent: it is
  recorded as expired.

Events are never changed. New ones are found from a watermark (`sms_intake`) that only moves
past events older than `SETTLE`: on PostgreSQL a transaction may commit an event with a lower
id after one with a higher id is already visible, and the watermark must not skip it.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, exists, func, select

from ebank.core import outbox
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault, mask_phone
from ebank.core.errors import EbankError
from ebank.core.tables import outbox_events
from ebank.core.writer import Command, Tx, Writer
from ebank.customers.service import MOBILE_PURPOSE
from ebank.customers.tables import customers
from ebank.notify.tables import sms_deliveries, sms_inbox, sms_intake, sms_messages

log = logging.getLogger(__name__)

TOPIC = "sms.send"
BODY_PURPOSE = "sms.body"  # the body as it travels in the outbox
INBOX_PURPOSE = "notify.inbox"  # the body as the demo inbox keeps it
MAX_BODY_CHARS = 500
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
# give up on the network well within it.
LEASE = timedelta(minutes=5)
# An event older than this is assumed committed or never to be: no writer transaction stays
# open that long.
SETTLE = timedelta(minutes=1)
INTAKE_CHUNK = 1000
ERROR_CHARS = 500
ABANDONED = "no outcome recorded within the lease: the worker stopped mid-send"


def send_sms(
    tx: Tx,
    vault: Vault,
    *,
    customer_id: int,
    kind: str,
    body: str,
    expires_at: datetime | None = None,
) -> None:
    """Ask for an SMS to the customer's mobile number, in the caller's transaction.

    `kind` says what it is ("code" for a one-time code, "alert" for a security alert...).
    `expires_at` is when the message stops being worth sending; a one-time code must have
    one. The body is sealed: only the sender, which holds the data key, reads it.
    """
    if type(customer_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a customer id is an integer")
    if not isinstance(kind, str) or not kind.isidentifier() or len(kind) > 16:
        raise EbankError("INVALID_INPUT", reason="an SMS kind is a short identifier")
    if not isinstance(body, str) or not 0 < len(body) <= MAX_BODY_CHARS:
        raise EbankError("INVALID_INPUT", reason=f"an SMS is 1-{MAX_BODY_CHARS} characters")
    if kind == "code" and expires_at is None:
        raise EbankError("INVALID_INPUT", reason="a one-time code expires")
    payload = {
        "customer": customer_id,
        "kind": kind,
        "body": vault.encrypt(body, purpose=BODY_PURPOSE),
        "expires_at": None if expires_at is None else as_utc(expires_at).isoformat(),
    }
    outbox.emit(tx, TOPIC, f"customer:{customer_id}", payload)


class SmsSender(Protocol):
    def send(self, mobile: str, body: str, *, customer_id: int, kind: str) -> None:
        """Hand one message to the network; raise if it was not taken.

        A gateway sends `body` to `mobile`; `customer_id` and `kind` are for its records. The
        error's text is stored, so it must quote neither the number nor the body.
        """
        ...


class InboxSender:
    """The default sender: the demo's phone. It keeps each message in `sms_inbox` (the body
    sealed, the number masked) and logs one line without the body, since codes are secrets."""

    def __init__(self, writer: Writer, vault: Vault) -> None:
        self.writer = writer
        self.vault = vault

    def send(self, mobile: str, body: str, *, customer_id: int, kind: str) -> None:
        masked = mask_phone(mobile)
        row = {
            "customer_id": customer_id,
            "mobile": masked,
            "kind": kind,
            "body": self.vault.encrypt(body, purpose=INBOX_PURPOSE),
        }
        self.writer.execute(
            Command(lambda tx: tx.conn.execute(sms_inbox.insert().values(**row, sent_at=tx.now)))
        )
        log.info("sms sent", extra={"customer": customer_id, "mobile": masked, "kind": kind})


@dataclass(frozen=True, slots=True)
class SmsMessage:
    id: int
    customer_id: int
    mobile: str  # masked
    kind: str
    body: str
    sent_at: datetime


def inbox(
    conn: Connection, vault: Vault, *, customer_id: int | None = None, limit: int = 50
) -> list[SmsMessage]:
    """The latest messages the default sender sent, newest first (the demo's SMS inbox)."""
    query = select(sms_inbox).order_by(sms_inbox.c.id.desc()).limit(limit)
    if customer_id is not None:
        query = query.where(sms_inbox.c.customer_id == customer_id)
    return [
        SmsMessage(
            row["id"],
            row["customer_id"],
            row["mobile"],
            row["kind"],
            vault.decrypt(row["body"], purpose=INBOX_PURPOSE),
            as_utc(row["sent_at"]),
        )
        for row in conn.execute(query).mappings()
    ]


# -- delivery ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Claim:
    event_id: int
    attempt: int
    customer_id: int
    kind: str
    body: str  # sealed
    mobile: str | None  # sealed; None if there is no such customer


@dataclass(frozen=True, slots=True)
class _Claimed:
    claims: list[_Claim]
    expired: int


def _take_in(tx: Tx) -> None:
    """Give every new "sms.send" event its row in `sms_messages`, then move the watermark."""
    conn, e, m = tx.conn, outbox_events, sms_messages
    query = select(sms_intake.c.event_id).where(sms_intake.c.id == 1)
    watermark = conn.execute(query.with_for_update()).scalar()
    if watermark is None:
        conn.execute(sms_intake.insert().values(id=1, event_id=0, updated_at=tx.now))
        watermark = 0
    newer = (e.c.topic == TOPIC, e.c.id > watermark)
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
            sms_intake.update().where(sms_intake.c.id == 1).values(event_id=upto, updated_at=tx.now)
        )


def _outcome(attempt: int, error: str | None) -> str:
    if error is None:
        return "delivered"
    return "retrying" if attempt <= len(BACKOFF) else "failed"


def _record_attempt(tx: Tx, event_id: int, attempt: int, status: str, error: str | None) -> None:
    """Append the attempt and move the message on: to its next attempt, or to done."""
    retry = status == "retrying"
    tx.conn.execute(
        sms_deliveries.insert().values(
            event_id=event_id, attempt=attempt, status=status, error=error, at=tx.now
        )
    )
    tx.conn.execute(
        sms_messages.update()
        .where(sms_messages.c.event_id == event_id)
        .values(
            state="waiting" if retry else "done",
            attempts=attempt,
            due_at=tx.now + BACKOFF[attempt - 1] if retry else tx.now,
        )
    )


def _read(text: str) -> tuple[int, str, str, datetime | None]:
    """An event's customer, kind, sealed body and expiry; ValueError if it cannot be read."""
    try:
        payload = json.loads(text)
        customer, kind, body, until = (
            payload[k] for k in ("customer", "kind", "body", "expires_at")
        )
        if type(customer) is not int or not isinstance(kind, str) or not isinstance(body, str):
            raise ValueError("a field has the wrong type")
        return (
            customer,
            kind,
            body,
            None if until is None else as_utc(datetime.fromisoformat(until)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable event: {exc!r}") from None


def _claim(tx: Tx, limit: int) -> _Claimed:
    """Take up to `limit` due messages, in id order, for this worker alone."""
    _take_in(tx)
    conn, m = tx.conn, sms_messages
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
            _record_attempt(tx, row.event_id, row.attempts, status, ABANDONED)
    waiting = [row for row in due if row.state == "waiting"]
    if not waiting:
        return _Claimed([], 0)
    found = conn.execute(
        select(outbox_events.c.id, outbox_events.c.payload).where(
            outbox_events.c.id.in_([row.event_id for row in waiting])
        )
    )
    events: dict[int, Any] = {}
    for event_id, text in found:
        try:
            events[event_id] = _read(text)
        except ValueError as exc:  # never sendable: given up at once, not left to block others
            events[event_id] = exc
    wanted = {event[0] for event in events.values() if isinstance(event, tuple)}
    mobiles = dict(
        conn.execute(
            select(customers.c.id, customers.c.mobile_sealed).where(customers.c.id.in_(wanted))
        ).all()
    )
    claims, expired = [], 0
    for row in waiting:
        event, attempt = events[row.event_id], row.attempts + 1
        if isinstance(event, ValueError):
            _record_attempt(tx, row.event_id, attempt, "failed", str(event)[:ERROR_CHARS])
            continue
        customer_id, kind, body, until = event
        if until is not None and until <= tx.now:
            _record_attempt(tx, row.event_id, attempt, "expired", None)
            expired += 1
            continue
        claims.append(
            _Claim(row.event_id, attempt, customer_id, kind, body, mobiles.get(customer_id))
        )
    if claims:
        conn.execute(
            m.update()
            .where(m.c.event_id.in_([c.event_id for c in claims]))
            .values(state="sending", attempts=m.c.attempts + 1, due_at=tx.now + LEASE)
        )
    return _Claimed(claims, expired)


def _send(vault: Vault, sender: SmsSender, claim: _Claim) -> str | None:
    """Send one claimed message; the error's text if it failed."""
    try:
        if claim.mobile is None:
            raise LookupError("no such customer")
        sender.send(
            vault.decrypt(claim.mobile, purpose=MOBILE_PURPOSE),
            vault.decrypt(claim.body, purpose=BODY_PURPOSE),
            customer_id=claim.customer_id,
            kind=claim.kind,
        )
    except Exception as exc:
        log.warning(
            "sms not sent",
            extra={"event": claim.event_id, "attempt": claim.attempt, "error": type(exc).__name__},
        )
        return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
    return None


def _record(tx: Tx, outcomes: list[tuple[int, int, str | None]]) -> None:
    """Record what each send did, unless the claim was lost (its lease ran out meanwhile)."""
    m = sms_messages
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
            log.warning("sms outcome after the lease", extra={"event": event_id})
            continue
        _record_attempt(tx, event_id, attempt, _outcome(attempt, error), error)


def deliver_sms(writer: Writer, vault: Vault, sender: SmsSender, *, limit: int = 100) -> int:
    """Send the SMS that are due, up to `limit`; how many were dealt with (sent, failed or
    expired). Safe to run in several workers at once."""
    if type(limit) is not int or limit < 1:
        raise ValueError("limit is a positive integer")
    claimed = writer.execute(Command(lambda tx: _claim(tx, limit)))
    outcomes = [(c.event_id, c.attempt, _send(vault, sender, c)) for c in claimed.claims]
    if outcomes:
        writer.execute(Command(lambda tx: _record(tx, outcomes)))
    return claimed.expired + len(outcomes)


def run_delivery_loop(
    writer: Writer,
    vault: Vault,
    sender: SmsSender,
    stop: threading.Event,
    poll_seconds: float = 0.5,
) -> None:
    """Deliver until `stop` is set (a background thread's body): at once while there is a
    backlog, otherwise every `poll_seconds`. A failing round is logged and tried again."""
    limit = 100
    while not stop.is_set():
        try:
            busy = deliver_sms(writer, vault, sender, limit=limit) >= limit
        except Exception:
            log.exception("sms delivery round failed")
            busy = False
        if not busy:
            stop.wait(poll_seconds)


def start_delivery(
    writer: Writer, vault: Vault, sender: SmsSender | None = None
) -> Callable[[], None]:
    """Deliver on a background thread (the worker's, or the demo app's); returns `stop`, which
    ends the loop after its current round. The sender defaults to the inbox."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_delivery_loop,
        args=(writer, vault, sender or InboxSender(writer, vault), stop),
        name="ebank-sms",
        daemon=True,
    )
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join()

    return halt
