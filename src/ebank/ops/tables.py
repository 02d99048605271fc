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
from ebank.core.tables import ID, UTC_TIME, one_of
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

# Complaints (投诉): one row per ticket, whose status and owner the service updates only with
# the event that records the change, in the same transaction; the events are the history and
# are only ever appended.
COMPLAINT_STATUSES = ("open", "in_progress", "resolved", "closed")
COMPLAINT_CHANNELS = ("counter", "phone", "online", "mobile", "sms", "letter", "regulator")
COMPLAINT_CATEGORIES = (
    "transaction", "fees", "card", "fraud", "channel_fault", "service", "disclosure", "other",
)  # fmt: skip
COMPLAINT_EVENTS = ("opened", "assigned", "comment", "status")

complaints = Table(
    "complaints",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(16), nullable=False),  # where the customer complained
    Column("category", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),  # the latest status event's
    Column("owner_id", ID, ForeignKey("staff.id"), nullable=True),  # the latest assignment's
    Column("due_at", UTC_TIME, nullable=False),
    Column("opened_by", String(128), nullable=False),
    Column("opened_at", UTC_TIME, nullable=False),
    Column("updated_at", UTC_TIME, nullable=False),
    one_of("status", COMPLAINT_STATUSES),
    one_of("channel", COMPLAINT_CHANNELS),
    one_of("category", COMPLAINT_CATEGORIES),
)
Index("ix_complaints_status_due_at", complaints.c.status, complaints.c.due_at)
Index("ix_complaints_owner_id", complaints.c.owner_id)
Index("ix_complaints_customer_id", complaints.c.customer_id)

complaint_events = Table(
    "complaint_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("complaint_id", ID, ForeignKey("complaints.id"), nullable=False),
    Column("what", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # the status after the event
    Column("owner_id", ID, ForeignKey("staff.id"), nullable=True),  # the owner after it
    Column("note", Text, nullable=False),  # the comment, the resolution, why; may be ""
    Column("actor", String(128), nullable=False),
    Column("at", UTC_TIME, nullable=False),
    one_of("what", COMPLAINT_EVENTS),
)
Index("ix_complaint_events_complaint_id", complaint_events.c.complaint_id)
