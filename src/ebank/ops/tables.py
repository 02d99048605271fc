"""Maker-checker tables: a request and, once decided, its decision. Both are append-only."""

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table, Text

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME

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
