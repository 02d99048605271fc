"""SMS delivery: where each "sms.send" event stands, every attempt to send it, and the demo inbox.

The outbox events themselves are never changed; delivery state lives here.
"""

from sqlalchemy import (
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

# One row: every "sms.send" event up to `event_id` has its row in `sms_messages`.
sms_intake = Table(
    "sms_intake",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", ID, nullable=False),
    Column("updated_at", UTC_TIME, nullable=False),
)

# One row per "sms.send" event: waiting for its next attempt (due at `due_at`), being sent by
# a worker (whose lease ends at `due_at`), or done (delivered, expired or given up).
sms_messages = Table(
    "sms_messages",
    metadata,
    Column("event_id", ID, ForeignKey("outbox_events.id"), primary_key=True),
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("due_at", UTC_TIME, nullable=False),
    CheckConstraint("state IN ('waiting', 'sending', 'done')", name="state"),
)
Index("ix_sms_messages_state_due_at", sms_messages.c.state, sms_messages.c.due_at)

# Every attempt and how it ended; appended only. Never the body or the number.
sms_deliveries = Table(
    "sms_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("event_id", ID, ForeignKey("sms_messages.event_id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(12), nullable=False),
    Column("error", Text, nullable=True),
    Column("at", UTC_TIME, nullable=False),
    UniqueConstraint("event_id", "attempt"),
    CheckConstraint("status IN ('delivered', 'retrying', 'failed', 'expired')", name="status"),
)

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
