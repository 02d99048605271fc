"""security housekeeping: staff log in with a token and can be disabled; sessions keep the
keyed hash of their device

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN, no batch: SQLite would copy the table and drop the old
    # one, which the sessions that point at staff refuse. Staff made before this have no
    # token: `ebank staff reset-token` gives them one.
    op.add_column("staff", sa.Column("token_seed", sa.Text(), nullable=True))
    op.add_column("staff", sa.Column("last_step", sa.BigInteger(), nullable=True))
    op.add_column("staff", sa.Column("challenge_hash", sa.String(length=64), nullable=True))
    op.add_column(
        "staff", sa.Column("challenge_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("staff", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ux_staff_challenge_hash", "staff", ["challenge_hash"], unique=True)
    # Live sessions opened before end here: a device's session kept a plain hash of it, which
    # unbinding the device could not find, and a console session took no token.
    sessions = sa.table(
        "sessions",
        sa.column("staff_id", ID),
        sa.column("device", sa.String(64)),
        sa.column("ended_at", sa.DateTime(timezone=True)),
        sa.column("end_reason", sa.String(16)),
    )
    op.execute(
        sessions.update()
        .where(
            sessions.c.ended_at.is_(None),
            sa.or_(sessions.c.device != "", sessions.c.staff_id.is_not(None)),
        )
        .values(ended_at=datetime.now(UTC), end_reason="upgrade")
    )


def downgrade() -> None:
    op.drop_index("ux_staff_challenge_hash", table_name="staff")
    for column in ("disabled_at", "challenge_expires_at", "challenge_hash", "last_step",
                   "token_seed"):  # fmt: skip
        op.drop_column("staff", column)  # SQLite 3.35+ drops a column in place
