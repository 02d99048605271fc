"""standing orders direct debit

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payees",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("account_sealed", sa.Text(), nullable=False),
        sa.Column("account_hash", sa.String(length=64), nullable=False),
        sa.Column("account_masked", sa.String(length=40), nullable=False),
        sa.Column("bank", sa.String(length=12), nullable=True),
        sa.Column("alias", sa.String(length=30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_payees_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payees")),
    )
    with op.batch_alter_table("payees", schema=None) as batch_op:
        batch_op.create_index("ix_payees_customer_id", ["customer_id"], unique=False)

    op.create_table(
        "direct_debit_mandates",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("creditor_customer_id", ID, nullable=True),
        sa.Column("creditor_account_id", ID, nullable=True),
        sa.Column("biller_code", sa.String(length=32), nullable=True),
        sa.Column("max_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "frequency IN ('any', 'monthly', 'yearly')",
            name=op.f("ck_direct_debit_mandates_frequency"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'revoked')", name=op.f("ck_direct_debit_mandates_status")
        ),
        sa.CheckConstraint(
            "(creditor_customer_id IS NOT NULL AND creditor_account_id IS NOT NULL"
            " AND biller_code IS NULL) OR (creditor_customer_id IS NULL"
            " AND creditor_account_id IS NULL AND biller_code IS NOT NULL)",
            name=op.f("ck_direct_debit_mandates_creditor"),
        ),
        sa.CheckConstraint("max_amount > 0", name=op.f("ck_direct_debit_mandates_max_amount")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_direct_debit_mandates_account_id_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["creditor_account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_direct_debit_mandates_creditor_account_id_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["creditor_customer_id"],
            ["customers.id"],
            name=op.f("fk_direct_debit_mandates_creditor_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_direct_debit_mandates_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_direct_debit_mandates")),
    )
    with op.batch_alter_table("direct_debit_mandates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_direct_debit_mandates_creditor_customer_id", ["creditor_customer_id"], unique=False
        )
        batch_op.create_index("ix_direct_debit_mandates_customer_id", ["customer_id"], unique=False)

    op.create_table(
        "standing_orders",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("payee_id", ID, nullable=False),
        sa.Column("from_account_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("memo", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("large_confirmed", sa.Boolean(), nullable=False),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        sa.Column("day", sa.SmallInteger(), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("run_time", sa.Time(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column("max_runs", sa.Integer(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "frequency IN ('once', 'daily', 'weekly', 'monthly')",
            name=op.f("ck_standing_orders_frequency"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'finished', 'cancelled')", name=op.f("ck_standing_orders_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_standing_orders_amount")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_standing_orders_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["from_account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_standing_orders_from_account_id_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["payee_id"], ["payees.id"], name=op.f("fk_standing_orders_payee_id_payees")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_orders")),
    )
    with op.batch_alter_table("standing_orders", schema=None) as batch_op:
        batch_op.create_index("ix_standing_orders_customer_id", ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_standing_orders_status_next_run_at", ["status", "next_run_at"], unique=False
        )

    op.create_table(
        "direct_debits",
        sa.Column("id", ID, nullable=False),
        sa.Column("mandate_id", ID, nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_direct_debits_amount")),
        sa.ForeignKeyConstraint(
            ["mandate_id"],
            ["direct_debit_mandates.id"],
            name=op.f("fk_direct_debits_mandate_id_direct_debit_mandates"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_direct_debits_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_direct_debits")),
        sa.UniqueConstraint("mandate_id", "period", name=op.f("uq_direct_debits_mandate_period")),
        sa.UniqueConstraint(
            "mandate_id", "reference", name=op.f("uq_direct_debits_mandate_reference")
        ),
    )
    op.create_table(
        "standing_occurrences",
        sa.Column("id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_id", ID, nullable=True),
        sa.Column("failure_code", sa.String(length=40), nullable=True),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(payment_id IS NULL) <> (failure_code IS NULL)",
            name=op.f("ck_standing_occurrences_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["standing_orders.id"],
            name=op.f("fk_standing_occurrences_order_id_standing_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_standing_occurrences_payment_id_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_occurrences")),
        sa.UniqueConstraint("order_id", "due_on", name=op.f("uq_standing_occurrences_order_id")),
    )


def downgrade() -> None:
    op.drop_table("standing_occurrences")
    op.drop_table("direct_debits")
    with op.batch_alter_table("standing_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_standing_orders_status_next_run_at")
        batch_op.drop_index("ix_standing_orders_customer_id")

    op.drop_table("standing_orders")
    with op.batch_alter_table("direct_debit_mandates", schema=None) as batch_op:
        batch_op.drop_index("ix_direct_debit_mandates_customer_id")
        batch_op.drop_index("ix_direct_debit_mandates_creditor_customer_id")

    op.drop_table("direct_debit_mandates")
    with op.batch_alter_table("payees", schema=None) as batch_op:
        batch_op.drop_index("ix_payees_customer_id")

    op.drop_table("payees")
