"""payments held for review by risk control

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "('scheduled', 'sending', 'unknown', 'completed', 'failed', 'revoked', 'returned')"
AFTER = BEFORE[:-1] + ", 'review')"


def _statuses(allowed: str) -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_payments_status"), f"status IN {allowed}")


def upgrade() -> None:
    _statuses(AFTER)


def downgrade() -> None:
    _statuses(BEFORE)
