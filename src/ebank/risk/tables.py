"""Risk: rule versions, thresholds, the stored aggregates and facts, watch lists, decisions
and cases.

Rules, thresholds, decisions and case events are appended, never edited. Aggregates are
counters in time buckets keyed by (entity, metric, resolution, bucket), kept incrementally
by `risk.service.observe` and purged when no window reaches them any more.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME, one_of
from ebank.risk.models import LISTS, OUTCOMES

CASE_STATUSES = ("open", "escalated", "released", "rejected")
CASE_ACTIONS = ("open", "escalate", "release", "reject", "suspend")

# A staff version of a rule (defaults, version 0, live in code). The latest version is live.
risk_rules = Table(
    "risk_rules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("code", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description_zh", String(200), nullable=False),
    Column("description_en", String(200), nullable=False),
    Column("expression", Text, nullable=False),
    Column("score", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # "" or the outcome it forces
    Column("enabled", Boolean, nullable=False),
    Column("shadow", Boolean, nullable=False),
    Column("author", String(128), nullable=False),  # the maker
    Column("approver", String(128), nullable=False),  # the checker
    Column("request_id", ID, ForeignKey("approval_requests.id"), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    UniqueConstraint("code", "version"),
    CheckConstraint("outcome IN ('', 'step_up', 'delay', 'review', 'block')", name="outcome"),
)

# Score bands, versioned the same way (version 0 is the default in code).
risk_thresholds = Table(
    "risk_thresholds",
    metadata,
    Column("id", ID, primary_key=True),
    Column("version", Integer, nullable=False, unique=True),
    Column("step_up", Integer, nullable=False),
    Column("delay", Integer, nullable=False),
    Column("review", Integer, nullable=False),
    Column("block", Integer, nullable=False),
    Column("author", String(128), nullable=False),
    Column("approver", String(128), nullable=False),
    Column("request_id", ID, ForeignKey("approval_requests.id"), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    CheckConstraint(
        "0 < step_up AND step_up < delay AND delay < review AND review < block", name="bands"
    ),
)

# Counters: how many times (n) and how much (total, fen) a metric happened to an entity in
# one bucket. `res` is the bucket's width in seconds (60, 3600, 86400); `bucket` its number.
risk_buckets = Table(
    "risk_buckets",
    metadata,
    Column("entity", String(100), nullable=False),  # "c:42", "acct:17", "ext:...", "d:..."
    Column("metric", String(32), nullable=False),
    Column("res", Integer, nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    PrimaryKeyConstraint("entity", "metric", "res", "bucket"),
)
Index("ix_risk_buckets_res_bucket", risk_buckets.c.res, risk_buckets.c.bucket)

# Distinct counts: the members (payers of an account, customers of a device) seen per bucket.
risk_members = Table(
    "risk_members",
    metadata,
    Column("entity", String(100), nullable=False),
    Column("metric", String(32), nullable=False),
    Column("res", Integer, nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("member", String(100), nullable=False),
    PrimaryKeyConstraint("entity", "metric", "res", "bucket", "member"),
)
Index("ix_risk_members_res_bucket", risk_members.c.res, risk_members.c.bucket)

# Facts with a time: a device or location first seen for a customer, a phone number changed,
# an account woken after an idle spell (value: the idle days).
risk_facts = Table(
    "risk_facts",
    metadata,
    Column("entity", String(100), nullable=False),
    Column("fact", String(16), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("at", UTC_TIME, nullable=False),
    PrimaryKeyConstraint("entity", "fact"),
)

# Watch lists: police-designated accounts, compromised credentials, sanctioned parties. An
# entry is added and removed under maker-checker; removal keeps the row (removed_at).
risk_list_entries = Table(
    "risk_list_entries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("list", String(16), nullable=False),
    Column("key", String(100), nullable=False),  # an entity key, as in risk_buckets
    Column("label", String(100), nullable=False),  # what staff see (masked)
    Column("reason", String(500), nullable=False),
    Column("added_by", String(128), nullable=False),  # the maker
    Column("approved_by", String(128), nullable=False),  # the checker
    Column("added_at", UTC_TIME, nullable=False),
    Column("removed_by", String(128), nullable=True),  # the checker of the removal
    Column("removed_at", UTC_TIME, nullable=True),
    one_of("list", LISTS),
)
# At most one live entry per key on a list; the decisions' look-ups use it too.
Index(
    "ux_risk_list_entries_live",
    risk_list_entries.c.list,
    risk_list_entries.c.key,
    unique=True,
    sqlite_where=risk_list_entries.c.removed_at.is_(None),
    postgresql_where=risk_list_entries.c.removed_at.is_(None),
)

# Every decision, with what it was asked and what it saw (evidence only when a rule hit).
risk_decisions = Table(
    "risk_decisions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", UTC_TIME, nullable=False),
    Column("event", String(16), nullable=False),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=True),
    Column("channel", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("score", Integer, nullable=False),
    Column("hits", Text, nullable=False),  # JSON: codes of the enforced rules hit
    Column("shadow", Text, nullable=False),  # JSON: codes of the shadow rules hit
    Column("context", Text, nullable=False),  # JSON: the Context
    Column("evidence", Text, nullable=False),  # JSON: the values the rules saw, {} if none hit
    Column("ruleset", String(32), nullable=False),  # which rule set version decided
    one_of("outcome", OUTCOMES),
)
Index("ix_risk_decisions_customer_id_id", risk_decisions.c.customer_id, risk_decisions.c.id)
Index("ix_risk_decisions_outcome_id", risk_decisions.c.outcome, risk_decisions.c.id)

# A held subject (a payment...) waiting for staff. The status caches the latest event.
risk_cases = Table(
    "risk_cases",
    metadata,
    Column("id", ID, primary_key=True),
    Column("decision_id", ID, ForeignKey("risk_decisions.id"), nullable=False),
    Column("kind", String(24), nullable=False),  # what is held: "payment", ...
    Column("subject_id", BigInteger, nullable=False),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", UTC_TIME, nullable=False),
    Column("decided_at", UTC_TIME, nullable=True),
    one_of("status", CASE_STATUSES),
    UniqueConstraint("kind", "subject_id"),  # one case per held subject
)
Index("ix_risk_cases_status_id", risk_cases.c.status, risk_cases.c.id)
Index("ix_risk_cases_customer_id", risk_cases.c.customer_id)

risk_case_events = Table(
    "risk_case_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("case_id", ID, ForeignKey("risk_cases.id"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("note", String(500), nullable=False),
    Column("at", UTC_TIME, nullable=False),
    one_of("action", CASE_ACTIONS),
)
Index("ix_risk_case_events_case_id", risk_case_events.c.case_id)
