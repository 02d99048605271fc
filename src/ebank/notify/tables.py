"""Notification tables: delivery state of each channel's outbox messages (SMS, e-mail), every
attempt to deliver them, the demo's SMS inbox, and what notices each customer wants.

The outbox events themselves are never changed; delivery state lives here.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME


def delivery_tables(channel: str) -> tuple[Table, Table, Table]:
    """The three tables a channel's delivery keeps (`notify.delivery`): intake, messages and
    deliveries, named after the channel ("sms_messages", "email_messages"...)."""
    # One row: every event of the channel up to `event_id` has its row in `<channel>_messages`.
    intake = Table(
        f"{channel}_intake",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("event_id", ID, nullable=False),
        Column("updated_at", UTC_TIME, nullable=False),
    )
    # One row per event: waiting for its next attempt (due at `due_at`), being sent by a
    # worker (whose lease ends at `due_at`), or done (delivered, expired or given up).
    messages = Table(
        f"{channel}_messages",
        metadata,
        Column("event_id", ID, ForeignKey("outbox_events.id"), primary_key=True),
        Column("state", String(8), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("due_at", UTC_TIME, nullable=False),
        CheckConstraint("state IN ('waiting', 'sending', 'done')", name="state"),
    )
    Index(f"ix_{channel}_messages_state_due_at", messages.c.state, messages.c.due_at)
    # Every attempt and how it ended; appended only. Never the body or the address.
    deliveries = Table(
        f"{channel}_deliveries",
        metadata,
        Column("id", ID, primary_key=True),
        Column("event_id", ID, ForeignKey(f"{channel}_messages.event_id"), nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("status", String(12), nullable=False),
        Column("error", Text, nullable=True),
        Column("at", UTC_TIME, nullable=False),
        UniqueConstraint("event_id", "attempt"),
        CheckConstraint("status IN ('delivered', 'retrying', 'failed', 'expired')", name="status"),
    )
    return intake, messages, deliveries


sms_intake, sms_messages, sms_deliveries = delivery_tables("sms")
email_intake, email_messages, email_deliveries = delivery_tables("email")

# What the demo's phone received (the default sender's "gateway"): the body sealed, the number
# masked.
sms_inbox = Table(
    "sms_inbox",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("mobile", String(16), nullable=False),  # masked
    Column("kind", String(16), nullable=False),
    Column("body", Text, nullable=False),  # sealed
    Column("sent_at", UTC_TIME, nullable=False),
)
Index("ix_sms_inbox_customer_id", sms_inbox.c.customer_id)

# What a customer changed about their notices; no row means the defaults (movement SMS for
# every amount, in Chinese, no e-mail). Payment services read it once per notice, by key.
notice_preferences = Table(
    "notice_preferences",
    metadata,
    Column("customer_id", ID, ForeignKey("customers.id"), primary_key=True),
    Column("movement_sms", Boolean, nullable=False),
    Column("movement_threshold", BigInteger, nullable=False),  # fen: no SMS below it
    Column("locale", String(5), nullable=False),
    Column("email_sealed", Text, nullable=True),  # where e-mail notices go, if anywhere
    Column("email_masked", String(254), nullable=True),
    Column("updated_at", UTC_TIME, nullable=False),
    CheckConstraint("movement_threshold >= 0", name="movement_threshold"),
    CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
)

# The message centre (消息中心): every notice the bank sent a customer, kept as its kind and
# facts (JSON) and written out in the reader's language when read. Appended in the notice's
# own transaction; `read_at` is the only thing that changes. Only unread rows are in the
# second index, so counting them reads no more than they are.
customer_messages = Table(
    "customer_messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("kind", String(24), nullable=False),  # a notice template: "account.movement"...
    Column("facts", Text, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    Column("read_at", UTC_TIME, nullable=True),
)
Index(
    "ix_customer_messages_customer_id_id", customer_messages.c.customer_id, customer_messages.c.id
)
Index(
    "ix_customer_messages_unread",
    customer_messages.c.customer_id,
    sqlite_where=customer_messages.c.read_at.is_(None),
    postgresql_where=customer_messages.c.read_at.is_(None),
)
