"""complaints: tickets and their append-only history

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-23 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES = "('open', 'in_progress', 'resolved', 'closed')"
CHANNELS = "('counter', 'phone', 'online', 'mobile', 'sms', 'letter', 'regulator')"
CATEGORIES = (
    "('transaction', 'fees', 'card', 'fraud', 'channel_fault', 'service', 'disclosure', 'other')"
)
EVENTS = "('opened', 'assigned', 'comment', 'status')"


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=128), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_complaints_status")),
        sa.CheckConstraint(f"channel IN {CHANNELS}", name=op.f("ck_complaints_channel")),
        sa.CheckConstraint(f"category IN {CATEGORIES}", name=op.f("ck_complaints_category")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_complaints_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["staff.id"], name=op.f("fk_complaints_owner_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_status_due_at", ["status", "due_at"], unique=False)
        batch_op.create_index("ix_complaints_owner_id", ["owner_id"], unique=False)
        batch_op.create_index("ix_complaints_customer_id", ["customer_id"], unique=False)

    op.create_table(
        "complaint_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("complaint_id", ID, nullable=False),
        sa.Column("what", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"what IN {EVENTS}", name=op.f("ck_complaint_events_what")),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_events_complaint_id_complaints"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["staff.id"], name=op.f("fk_complaint_events_owner_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_events")),
    )
    with op.batch_alter_table("complaint_events", schema=None) as batch_op:
        batch_op.create_index("ix_complaint_events_complaint_id", ["complaint_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("complaint_events", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_events_complaint_id")
    op.drop_table("complaint_events")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_customer_id")
        batch_op.drop_index("ix_complaints_owner_id")
        batch_op.drop_index("ix_complaints_status_due_at")
    op.drop_table("complaints")
