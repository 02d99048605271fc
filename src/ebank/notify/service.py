"""Sending customers SMS: one way to ask for one, and the worker that delivers them.

`send_sms` seals the body and appends an "sms.send" event in the caller's transaction, so a
message exists if and only if what caused it committed. `deliver_sms` (run by a background
worker, any number of them) hands each to an `SmsSender`, through the delivery mechanism every
channel shares (`notify.delivery`: leases, retries on `BACKOFF`, every attempt recorded in
`sms_deliveries`, one-time codes not sent once expired). The number is the one on file when
the message is sent.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, select

from ebank.core.clock import as_utc
from ebank.core.crypto import Vault, mask_phone
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx, Writer
from ebank.customers.service import MOBILE_PURPOSE
from ebank.customers.tables import customers
from ebank.notify import delivery
from ebank.notify.tables import sms_deliveries, sms_inbox, sms_intake, sms_messages

log = logging.getLogger(__name__)

INBOX_PURPOSE = "notify.inbox"  # the body as the demo inbox keeps it
MAX_BODY_CHARS = 500


def _mobiles(conn: Connection, customer_ids: set[int]) -> dict[int, str]:
    """The sealed mobile number of each customer, as on file now."""
    query = select(customers.c.id, customers.c.mobile_sealed).where(
        customers.c.id.in_(customer_ids)
    )
    return {customer: mobile for customer, mobile in conn.execute(query) if mobile}


SMS = delivery.Queue("sms", ("body",), sms_intake, sms_messages, sms_deliveries, _mobiles)


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
    if not isinstance(body, str) or not 0 < len(body) <= MAX_BODY_CHARS:
        raise EbankError("INVALID_INPUT", reason=f"an SMS is 1-{MAX_BODY_CHARS} characters")
    if kind == "code" and expires_at is None:
        raise EbankError("INVALID_INPUT", reason="a one-time code expires")
    delivery.enqueue(
        tx, vault, SMS, customer_id=customer_id, kind=kind, fields={"body": body},
        expires_at=expires_at,
    )  # fmt: skip


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
def _sender(vault: Vault, sender: SmsSender) -> Callable[[delivery.Message], None]:
    def send(message: delivery.Message) -> None:
        if message.address is None:
            raise LookupError("no such customer")
        sender.send(
            vault.decrypt(message.address, purpose=MOBILE_PURPOSE),
            message.open(vault, SMS, "body"),
            customer_id=message.customer_id,
            kind=message.kind,
        )

    return send


def deliver_sms(
    writer: Writer, vault: Vault, sender: SmsSender, *, limit: int = delivery.ROUND
) -> int:
    """Send the SMS that are due, up to `limit`; how many were dealt with (sent, failed or
    expired). Safe to run in several workers at once."""
    return delivery.deliver(writer, SMS, _sender(vault, sender), limit=limit)


def run_delivery_loop(
    writer: Writer,
    vault: Vault,
    sender: SmsSender,
    stop: threading.Event,
    poll_seconds: float = 0.5,
) -> None:
    """Deliver SMS until `stop` is set (a background thread's body)."""
    delivery.run_loop(
        lambda limit: deliver_sms(writer, vault, sender, limit=limit),
        stop, poll_seconds=poll_seconds, what="sms",
    )  # fmt: skip


def start_delivery(
    writer: Writer, vault: Vault, sender: SmsSender | None = None
) -> Callable[[], None]:
    """Deliver SMS on a background thread (the worker's, or the demo app's); returns `stop`,
    which ends the loop after its current round. The sender defaults to the inbox."""
    chosen = sender or InboxSender(writer, vault)
    return delivery.start(
        lambda stop: run_delivery_loop(writer, vault, chosen, stop), name="ebank-sms"
    )
