"""risk

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "risk_buckets",
        sa.Column("entity", sa.String(length=100), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("res", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "metric", "res", "bucket", name=op.f("pk_risk_buckets")),
    )
    with op.batch_alter_table("risk_buckets", schema=None) as batch_op:
        batch_op.create_index("ix_risk_buckets_res_bucket", ["res", "bucket"], unique=False)

    op.create_table(
        "risk_facts",
        sa.Column("entity", sa.String(length=100), nullable=False),
        sa.Column("fact", sa.String(length=16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", "fact", name=op.f("pk_risk_facts")),
    )
    op.create_table(
        "risk_list_entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("list", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(length=128), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "list IN ('police', 'compromised', 'sanctioned')",
            name=op.f("ck_risk_list_entries_list"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_list_entries")),
    )
    with op.batch_alter_table("risk_list_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ux_risk_list_entries_live",
            ["list", "key"],
            unique=True,
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        )

    op.create_table(
        "risk_members",
        sa.Column("entity", sa.String(length=100), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("res", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("member", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint(
            "entity", "metric", "res", "bucket", "member", name=op.f("pk_risk_members")
        ),
    )
    with op.batch_alter_table("risk_members", schema=None) as batch_op:
        batch_op.create_index("ix_risk_members_res_bucket", ["res", "bucket"], unique=False)

    op.create_table(
        "risk_decisions",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Text(), nullable=False),
        sa.Column("shadow", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("ruleset", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('allow', 'step_up', 'delay', 'review', 'block')",
            name=op.f("ck_risk_decisions_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_risk_decisions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decisions")),
    )
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_decisions_customer_id_id", ["customer_id", "id"], unique=False
        )
        batch_op.create_index("ix_risk_decisions_outcome_id", ["outcome", "id"], unique=False)

    op.create_table(
        "risk_rules",
        sa.Column("id", ID, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description_zh", sa.String(length=200), nullable=False),
        sa.Column("description_en", sa.String(length=200), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('', 'step_up', 'delay', 'review', 'block')",
            name=op.f("ck_risk_rules_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_requests.id"],
            name=op.f("fk_risk_rules_request_id_approval_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_rules")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_risk_rules_code")),
    )
    op.create_table(
        "risk_thresholds",
        sa.Column("id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step_up", sa.Integer(), nullable=False),
        sa.Column("delay", sa.Integer(), nullable=False),
        sa.Column("review", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "0 < step_up AND step_up < delay AND delay < review AND review < block",
            name=op.f("ck_risk_thresholds_bands"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_requests.id"],
            name=op.f("fk_risk_thresholds_request_id_approval_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_thresholds")),
        sa.UniqueConstraint("version", name=op.f("uq_risk_thresholds_version")),
    )
    op.create_table(
        "risk_cases",
        sa.Column("id", ID, nullable=False),
        sa.Column("decision_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'escalated', 'released', 'rejected')",
            name=op.f("ck_risk_cases_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_risk_cases_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["risk_decisions.id"],
            name=op.f("fk_risk_cases_decision_id_risk_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_cases")),
        sa.UniqueConstraint("kind", "subject_id", name=op.f("uq_risk_cases_kind")),
    )
    with op.batch_alter_table("risk_cases", schema=None) as batch_op:
        batch_op.create_index("ix_risk_cases_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_risk_cases_status_id", ["status", "id"], unique=False)

    op.create_table(
        "risk_case_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('open', 'escalate', 'release', 'reject', 'suspend')",
            name=op.f("ck_risk_case_events_action"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["risk_cases.id"], name=op.f("fk_risk_case_events_case_id_risk_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_case_events")),
    )
    with op.batch_alter_table("risk_case_events", schema=None) as batch_op:
        batch_op.create_index("ix_risk_case_events_case_id", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("risk_case_events", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_case_events_case_id")

    op.drop_table("risk_case_events")
    with op.batch_alter_table("risk_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_cases_status_id")
        batch_op.drop_index("ix_risk_cases_customer_id")

    op.drop_table("risk_cases")
    op.drop_table("risk_thresholds")
    op.drop_table("risk_rules")
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_decisions_outcome_id")
        batch_op.drop_index("ix_risk_decisions_customer_id_id")

    op.drop_table("risk_decisions")
    with op.batch_alter_table("risk_members", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_members_res_bucket")

    op.drop_table("risk_members")
    with op.batch_alter_table("risk_list_entries", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_risk_list_entries_live",
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        )

    op.drop_table("risk_list_entries")
    op.drop_table("risk_facts")
    with op.batch_alter_table("risk_buckets", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_buckets_res_bucket")

    op.drop_table("risk_buckets")
