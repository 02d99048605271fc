"""merchant notifications: delivery state of the gateway's notices

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_notice_intake",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_notice_intake")),
    )
    op.create_table(
        "gateway_notice_messages",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('waiting', 'sending', 'done')", name=op.f("ck_gateway_notice_messages_state")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["outbox_events.id"],
            name=op.f("fk_gateway_notice_messages_event_id_outbox_events"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_gateway_notice_messages")),
    )
    with op.batch_alter_table("gateway_notice_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gateway_notice_messages_state_due_at", ["state", "due_at"], unique=False
        )

    op.create_table(
        "gateway_notice_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('delivered', 'retrying', 'failed', 'expired')",
            name=op.f("ck_gateway_notice_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["gateway_notice_messages.event_id"],
            name=op.f("fk_gateway_notice_deliveries_event_id_gateway_notice_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_notice_deliveries")),
        sa.UniqueConstraint(
            "event_id", "attempt", name=op.f("uq_gateway_notice_deliveries_event_id")
        ),
    )
    op.create_table(
        "gateway_notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["outbox_events.id"],
            name=op.f("fk_gateway_notices_event_id_outbox_events"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_gateway_notices_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["gateway_orders.id"],
            name=op.f("fk_gateway_notices_order_id_gateway_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_notices")),
    )
    with op.batch_alter_table("gateway_notices", schema=None) as batch_op:
        batch_op.create_index("ix_gateway_notices_merchant_id", ["merchant_id", "id"], unique=False)
        batch_op.create_index("ix_gateway_notices_order_id", ["order_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gateway_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_notices_order_id")
        batch_op.drop_index("ix_gateway_notices_merchant_id")

    op.drop_table("gateway_notices")
    op.drop_table("gateway_notice_deliveries")
    with op.batch_alter_table("gateway_notice_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_notice_messages_state_due_at")

    op.drop_table("gateway_notice_messages")
    op.drop_table("gateway_notice_intake")
