"""Tables of the shared mechanisms: idempotency keys, the audit chain, the outbox."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from ebank.core.db import metadata

# A 64-bit key on PostgreSQL; on SQLite an INTEGER PRIMARY KEY, the rowid alias.
ID = BigInteger().with_variant(Integer(), "sqlite")
UTC_TIME = DateTime(timezone=True)


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    """A CHECK that `column` holds one of `values` (named after the column)."""
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("result", Text, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    # Key first: a batch looks its keys up with one `key IN (...)`.
    PrimaryKeyConstraint("key", "scope"),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", UTC_TIME, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(64), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# The console's viewer: one actor's records newest first, and records of a period.
Index("ix_audit_log_actor_id", audit_log.c.actor, audit_log.c.id)
Index("ix_audit_log_at", audit_log.c.at)

# One row: the hash of the last record. Appenders lock it, so the chain never forks.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_id", ID, nullable=False),
    Column("hash", String(64), nullable=False),
)

outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("topic", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
)
Index("ix_outbox_events_topic_id", outbox_events.c.topic, outbox_events.c.id)
