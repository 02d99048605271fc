"""staff, their console sessions, and customers' login challenges

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", ID, nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locks", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("permanently_locked", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_username")),
    )
    op.create_table(
        "login_challenges",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_login_challenges_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_challenges")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_login_challenges_token_hash")),
    )
    # A session is a customer's or a staff member's: exactly one of the two is set.
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_id", ID, nullable=True))
        batch_op.alter_column("customer_id", existing_type=ID, nullable=True)
        batch_op.create_foreign_key(
            op.f("fk_sessions_staff_id_staff"), "staff", ["staff_id"], ["id"]
        )
        batch_op.create_check_constraint(
            op.f("ck_sessions_one_holder"), "(customer_id IS NULL) <> (staff_id IS NULL)"
        )
        batch_op.create_index("ix_sessions_staff_id", ["staff_id"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM sessions WHERE staff_id IS NOT NULL")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_staff_id")
        batch_op.drop_constraint(op.f("ck_sessions_one_holder"), type_="check")
        batch_op.drop_constraint(op.f("fk_sessions_staff_id_staff"), type_="foreignkey")
        batch_op.alter_column("customer_id", existing_type=ID, nullable=False)
        batch_op.drop_column("staff_id")
    op.drop_table("login_challenges")
    op.drop_table("staff")
