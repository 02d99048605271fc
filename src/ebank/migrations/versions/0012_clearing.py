"""clearing

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clearing_messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("msg_id", sa.String(length=35), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.Column("counterpart", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=4), nullable=True),
        sa.Column("reason", sa.String(length=4), nullable=True),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "direction IN ('in', 'out')", name=op.f("ck_clearing_messages_direction")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_messages")),
    )
    with op.batch_alter_table("clearing_messages", schema=None) as batch_op:
        batch_op.create_index("ix_clearing_messages_end_to_end_id", ["end_to_end_id"], unique=False)

    op.create_table(
        "clearing_inbound",
        sa.Column("id", ID, nullable=False),
        sa.Column("sender_bank", sa.String(length=12), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=4), nullable=False),
        sa.Column("reason", sa.String(length=4), nullable=True),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("entry_id", ID, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(status = 'ACSC') = (entry_id IS NOT NULL)", name=op.f("ck_clearing_inbound_credited")
        ),
        sa.CheckConstraint("status IN ('ACSC', 'RJCT')", name=op.f("ck_clearing_inbound_status")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_clearing_inbound_account_id_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_clearing_inbound_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_inbound")),
        sa.UniqueConstraint(
            "sender_bank", "end_to_end_id", name=op.f("uq_clearing_inbound_sender_bank")
        ),
    )

    op.create_table(
        "clearing_outgoing",
        sa.Column("payment_id", ID, nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.Column("msg_id", sa.String(length=35), nullable=False),
        sa.Column("creditor_agent", sa.String(length=12), nullable=False),
        sa.Column("queries", sa.Integer(), nullable=False),
        sa.Column("next_query_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_clearing_outgoing_payment_id_payments"),
        ),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_clearing_outgoing")),
        sa.UniqueConstraint("end_to_end_id", name=op.f("uq_clearing_outgoing_end_to_end_id")),
    )
    with op.batch_alter_table("clearing_outgoing", schema=None) as batch_op:
        batch_op.create_index("ix_clearing_outgoing_next_query_at", ["next_query_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("clearing_outgoing", schema=None) as batch_op:
        batch_op.drop_index("ix_clearing_outgoing_next_query_at")
    op.drop_table("clearing_outgoing")
    op.drop_table("clearing_inbound")
    with op.batch_alter_table("clearing_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_clearing_messages_end_to_end_id")
    op.drop_table("clearing_messages")
