"""Staff operations: the staff themselves; maker-checker requests and decisions (append-only)."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME
from ebank.security.tables import lockout_columns

approval_requests = Table(
    "approval_requests",
    metadata,
    Column("id", ID, primary_key=True),
    Column("action", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("reason", String(500), nullable=False),
    Column("maker", String(128), nullable=False),
    Column("made_at", UTC_TIME, nullable=False),
)
Index("ix_approval_requests_subject", approval_requests.c.subject)

approval_decisions = Table(
    "approval_decisions",
    metadata,
    Column("id", ID, primary_key=True),
    # One decision per request: the unique key makes a second approval impossible.
    Column("request_id", ID, ForeignKey("approval_requests.id"), nullable=False, unique=True),
    Column("outcome", String(16), nullable=False),
    Column("checker", String(128), nullable=False),
    Column("note", String(500), nullable=False),
    Column("decided_at", UTC_TIME, nullable=False),
    CheckConstraint("outcome IN ('approved', 'rejected')", name="outcome"),
)

# Bank staff who log in to the console with a password and a token code. The password
# columns are those of a customer's credential, so one piece of code counts the attempts of
# both; a wrong token code counts on the same columns (one lockout per login).
staff = Table(
    "staff",
    metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("roles", String(100), nullable=False),  # comma-separated, sorted
    *lockout_columns(),  # the secret: the login password's argon2id hash
    Column("created_at", UTC_TIME, nullable=False),
    # The token (TOTP) seed, sealed; None for a login made before tokens (it cannot log in).
    Column("token_seed", Text, nullable=True),
    Column("last_step", BigInteger, nullable=True),  # the last token time step accepted
    # A login half done (the password passed, the token code to come): a hash of its
    # challenge. One at a time: a newer login replaces it, and a completed one clears it.
    Column("challenge_hash", String(64), nullable=True),
    Column("challenge_expires_at", UTC_TIME, nullable=True),
    Column("disabled_at", UTC_TIME, nullable=True),  # by an admin; None while enabled
)
# An index, not a table constraint: SQLite adds it without copying the table that sessions
# point at.
Index("ux_staff_challenge_hash", staff.c.challenge_hash, unique=True)

# Bank parameters (limits, thresholds...) that differ from the defaults in code: a row exists
# once staff changed one under maker-checker. The audit chain keeps each change's history.
bank_parameters = Table(
    "bank_parameters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("changed_by", String(128), nullable=False),
    Column("changed_at", UTC_TIME, nullable=False),
)
