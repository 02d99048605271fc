"""Credentials (with their failure counters) and one-time codes."""

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

credentials = Table(
    "credentials",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("kind", String(24), nullable=False),
    # An argon2id hash (password, PIN) or a sealed TOTP secret (token).
    Column("secret", Text, nullable=False),
    Column("last_step", BigInteger, nullable=True),  # token: the last time step accepted
    Column("failures", Integer, nullable=False),  # consecutive
    Column("locks", Integer, nullable=False),  # temporary locks so far
    Column("locked_until", UTC_TIME, nullable=True),
    Column("permanently_locked", Boolean, nullable=False),
    Column("updated_at", UTC_TIME, nullable=False),
    UniqueConstraint("customer_id", "kind"),
    CheckConstraint("kind IN ('login_password', 'transaction_pin', 'token')", name="kind"),
)

one_time_codes = Table(
    "one_time_codes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("purpose", String(32), nullable=False),
    # A hash of what the code authorises (amount, payee...): another request cannot use it.
    Column("binding", String(64), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", UTC_TIME, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("used_at", UTC_TIME, nullable=True),
    Column("superseded", Boolean, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
)
Index("ix_one_time_codes_customer_purpose", one_time_codes.c.customer_id, one_time_codes.c.purpose)

# A session token is handed to the customer once; only its hash is kept.
sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("device", String(64), nullable=False),  # a hash of the device's id, or ""
    Column("started_at", UTC_TIME, nullable=False),
    Column("last_seen_at", UTC_TIME, nullable=False),
    Column("ended_at", UTC_TIME, nullable=True),
    Column("end_reason", String(16), nullable=True),  # logout | revoked (by the customer)
)
Index("ix_sessions_customer_id", sessions.c.customer_id)
