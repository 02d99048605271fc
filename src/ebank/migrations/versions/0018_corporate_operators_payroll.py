"""corporate operators payroll

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locks", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("permanently_locked", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_seed", sa.Text(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("challenge_hash", sa.String(length=64), nullable=True),
        sa.Column("challenge_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_operators_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("customer_id", "username", name=op.f("uq_operators_customer_id")),
    )
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.create_index("ux_operators_challenge_hash", ["challenge_hash"], unique=True)

    op.create_table(
        "payroll_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("memo", sa.String(length=60), nullable=False),
        sa.Column("file_name", sa.String(length=100), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("valid_count", sa.Integer(), nullable=False),
        sa.Column("valid_total", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("maker_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "checker_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=200), nullable=True),
        sa.Column("hold_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('validated', 'submitted', 'approved', 'rejected', 'completed',"
            " 'cancelled')",
            name=op.f("ck_payroll_batches_status"),
        ),
        sa.CheckConstraint(
            "checker_id IS NULL OR checker_id <> maker_id",
            name=op.f("ck_payroll_batches_two_people"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_payroll_batches_account_id_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["checker_id"], ["operators.id"], name=op.f("fk_payroll_batches_checker_id_operators")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_payroll_batches_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["ledger_holds.id"], name=op.f("fk_payroll_batches_hold_id_ledger_holds")
        ),
        sa.ForeignKeyConstraint(
            ["maker_id"], ["operators.id"], name=op.f("fk_payroll_batches_maker_id_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payroll_batches")),
    )
    with op.batch_alter_table("payroll_batches", schema=None) as batch_op:
        batch_op.create_index("ix_payroll_batches_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_payroll_batches_status", ["status"], unique=False)

    op.create_table(
        "payroll_rows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("account_sealed", sa.Text(), nullable=False),
        sa.Column("account_hash", sa.String(length=64), nullable=False),
        sa.Column("account_masked", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.String(length=60), nullable=False),
        sa.Column(
            "payee_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=120), nullable=True),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('invalid', 'pending', 'paid', 'failed', 'skipped')",
            name=op.f("ck_payroll_rows_status"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["payroll_batches.id"],
            name=op.f("fk_payroll_rows_batch_id_payroll_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_payroll_rows_entry_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["payee_account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_payroll_rows_payee_account_id_customer_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payroll_rows")),
        sa.UniqueConstraint("batch_id", "line", name=op.f("uq_payroll_rows_batch_id")),
    )
    with op.batch_alter_table("payroll_rows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payroll_rows_batch_id_status", ["batch_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_payroll_rows_payee_account_id", ["payee_account_id"], unique=False
        )

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "operator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_sessions_operator_id_operators"), "operators", ["operator_id"], ["id"]
        )
        batch_op.create_check_constraint(
            op.f("ck_sessions_operator"), "operator_id IS NULL OR customer_id IS NOT NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_sessions_operator"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_sessions_operator_id_operators"), type_="foreignkey"
        )
        batch_op.drop_column("operator_id")

    with op.batch_alter_table("payroll_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_payroll_rows_payee_account_id")
        batch_op.drop_index("ix_payroll_rows_batch_id_status")

    op.drop_table("payroll_rows")
    with op.batch_alter_table("payroll_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_payroll_batches_status")
        batch_op.drop_index("ix_payroll_batches_customer_id")

    op.drop_table("payroll_batches")
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.drop_index("ux_operators_challenge_hash")

    op.drop_table("operators")
