"""Corporate banking: an enterprise's operators, and its payroll batches row by row.

An operator's login is the staff's kind (password, then a token code) on the operator's own
row. A payroll file becomes a batch with one row per line; a line's account number may be a
card number, so it is kept sealed beside a keyed hash and a mask, like a payee's.
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME, one_of
from ebank.security.tables import lockout_columns

OPERATOR_ROLES = ("maker", "checker")  # 经办 (enters, submits), 复核 (approves)
BATCH_STATUSES = ("validated", "submitted", "approved", "rejected", "completed", "cancelled")
ROW_STATUSES = ("invalid", "pending", "paid", "failed", "skipped")

operators = Table(
    "operators",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),  # the enterprise
    Column("username", String(32), nullable=False),
    Column("name", String(100), nullable=False),
    Column("roles", String(32), nullable=False),  # comma-separated, sorted
    *lockout_columns(),  # the secret: the login password's argon2id hash
    Column("token_seed", Text, nullable=False),  # the TOTP seed, sealed
    Column("last_step", BigInteger, nullable=True),  # the last token time step accepted
    Column("challenge_hash", String(64), nullable=True),  # a login half done
    Column("challenge_expires_at", UTC_TIME, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    Column("disabled_at", UTC_TIME, nullable=True),
    UniqueConstraint("customer_id", "username"),
)
Index("ux_operators_challenge_hash", operators.c.challenge_hash, unique=True)

payroll_batches = Table(
    "payroll_batches",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("account_id", ID, ForeignKey("customer_accounts.id"), nullable=False),  # pays
    Column("period", String(7), nullable=False),  # the month paid for, YYYY-MM
    Column("memo", String(60), nullable=False),
    Column("file_name", String(100), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("valid_count", Integer, nullable=False),
    Column("valid_total", BigInteger, nullable=False),  # fen: what approval holds
    Column("status", String(16), nullable=False),
    Column("maker_id", ID, ForeignKey("operators.id"), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    Column("submitted_at", UTC_TIME, nullable=True),
    Column("checker_id", ID, ForeignKey("operators.id"), nullable=True),
    Column("decided_at", UTC_TIME, nullable=True),
    Column("decision_note", String(200), nullable=True),
    Column("hold_id", ID, ForeignKey("ledger_holds.id"), nullable=True),
    Column("completed_at", UTC_TIME, nullable=True),
    one_of("status", BATCH_STATUSES),
    CheckConstraint("checker_id IS NULL OR checker_id <> maker_id", name="two_people"),
)
Index("ix_payroll_batches_customer_id", payroll_batches.c.customer_id)
Index("ix_payroll_batches_status", payroll_batches.c.status)

payroll_rows = Table(
    "payroll_rows",
    metadata,
    Column("id", ID, primary_key=True),
    Column("batch_id", ID, ForeignKey("payroll_batches.id"), nullable=False),
    Column("line", Integer, nullable=False),  # in the file, the header being line 1
    Column("name", String(100), nullable=False),
    Column("account_sealed", Text, nullable=False),
    Column("account_hash", String(64), nullable=False),
    Column("account_masked", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen; 0 when the line had none readable
    Column("note", String(60), nullable=False),
    # The account credited, when the line named one that can take the money.
    Column("payee_account_id", ID, ForeignKey("customer_accounts.id"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("code", String(40), nullable=True),  # why a line is invalid or failed
    Column("reason", String(120), nullable=True),  # the code's detail, when it has one
    Column("entry_id", ID, ForeignKey("ledger_entries.id"), nullable=True),
    Column("done_at", UTC_TIME, nullable=True),
    one_of("status", ROW_STATUSES),
    UniqueConstraint("batch_id", "line"),
)
Index("ix_payroll_rows_batch_id_status", payroll_rows.c.batch_id, payroll_rows.c.status)
Index("ix_payroll_rows_payee_account_id", payroll_rows.c.payee_account_id)
