"""notify email: e-mail delivery (intake watermark, messages, attempts) and notice preferences

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_intake",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_intake")),
    )
    op.create_table(
        "email_messages",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('waiting', 'sending', 'done')", name=op.f("ck_email_messages_state")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["outbox_events.id"],
            name=op.f("fk_email_messages_event_id_outbox_events"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_email_messages")),
    )
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.create_index("ix_email_messages_state_due_at", ["state", "due_at"], unique=False)

    op.create_table(
        "email_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('delivered', 'retrying', 'failed', 'expired')",
            name=op.f("ck_email_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["email_messages.event_id"],
            name=op.f("fk_email_deliveries_event_id_email_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_deliveries")),
        sa.UniqueConstraint("event_id", "attempt", name=op.f("uq_email_deliveries_event_id")),
    )
    op.create_table(
        "notice_preferences",
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("movement_sms", sa.Boolean(), nullable=False),
        sa.Column("movement_threshold", sa.BigInteger(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("email_sealed", sa.Text(), nullable=True),
        sa.Column("email_masked", sa.String(length=254), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("locale IN ('zh-CN', 'en')", name=op.f("ck_notice_preferences_locale")),
        sa.CheckConstraint(
            "movement_threshold >= 0", name=op.f("ck_notice_preferences_movement_threshold")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_notice_preferences_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_notice_preferences")),
    )


def downgrade() -> None:
    op.drop_table("notice_preferences")
    op.drop_table("email_deliveries")
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_email_messages_state_due_at")

    op.drop_table("email_messages")
    op.drop_table("email_intake")
