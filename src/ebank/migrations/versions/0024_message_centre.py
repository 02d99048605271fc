"""message centre: customers' messages (read or not), and receipts listed per payer

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-24 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "customer_messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_messages_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_messages")),
    )
    with op.batch_alter_table("customer_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_messages_customer_id_id", ["customer_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_customer_messages_unread",
            ["customer_id"],
            unique=False,
            sqlite_where=sa.text("read_at IS NULL"),
            postgresql_where=sa.text("read_at IS NULL"),
        )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index("ix_receipts_customer_id_id", ["customer_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_receipts_customer_id_id")
    with op.batch_alter_table("customer_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_messages_unread")
        batch_op.drop_index("ix_customer_messages_customer_id_id")
    op.drop_table("customer_messages")
