"""Ledger tables. Postings, entries and hold events are append-only.

An account's balance is not a column: it is the running balance (`balance_after`) of its latest
posting, one index probe away, so posting money never rewrites an account row. `held` on
accounts and `remaining`/`status` on holds are kept in step with the hold events by the ledger,
in the same transaction. References customers quote are derived from id and date (see
`models.reference`), not stored."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME

accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # customer | internal
    Column("currency", String(3), nullable=False),
    Column("normal_side", String(1), nullable=False),  # D (assets) | C (liabilities, income)
    Column("status", String(16), nullable=False),
    # The balance may fall to -credit_line; overdraft_allowed lifts the floor entirely
    # (internal accounts such as clearing or suspense that swing either way).
    Column("credit_line", BigInteger, nullable=False),
    Column("overdraft_allowed", Boolean, nullable=False),
    # The highest balance allowed, or none (a Type III account holds at most ¥2,000).
    Column("ceiling", BigInteger, nullable=True),
    Column("held", BigInteger, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    CheckConstraint("kind IN ('customer', 'internal')", name="kind"),
    CheckConstraint("normal_side IN ('D', 'C')", name="normal_side"),
    CheckConstraint(
        "status IN ('active', 'dormant', 'frozen', 'suspended', 'closed')", name="status"
    ),
    CheckConstraint("credit_line >= 0 AND held >= 0", name="non_negative"),
)

entries = Table(
    "ledger_entries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("memo", String(200), nullable=False),
    Column("reverses_id", ID, ForeignKey("ledger_entries.id"), nullable=True),
    Column("hold_id", ID, ForeignKey("ledger_holds.id"), nullable=True),
    Column("created_at", UTC_TIME, nullable=False),
)
# An entry is reversed at most once; partial, so that ordinary entries cost no index entry.
Index(
    "uq_ledger_entries_reverses_id",
    entries.c.reverses_id,
    unique=True,
    sqlite_where=entries.c.reverses_id.isnot(None),
    postgresql_where=entries.c.reverses_id.isnot(None),
)

postings = Table(
    "ledger_postings",
    metadata,
    Column("id", ID, primary_key=True),
    Column("entry_id", ID, ForeignKey("ledger_entries.id"), nullable=False),
    Column("account_id", ID, ForeignKey("ledger_accounts.id"), nullable=False),
    Column("side", String(1), nullable=False),
    Column("amount", BigInteger, nullable=False),
    # The account's balance just after this posting, in its normal-side sense: the running
    # balance statements show, and (for the latest posting) the account's balance.
    Column("balance_after", BigInteger, nullable=False),
    Column("posted_at", UTC_TIME, nullable=False),
    CheckConstraint("side IN ('D', 'C')", name="side"),
    CheckConstraint("amount > 0", name="amount_positive"),
)
Index("ix_ledger_postings_account_id_id", postings.c.account_id, postings.c.id)
Index("ix_ledger_postings_entry_id", postings.c.entry_id)

holds = Table(
    "ledger_holds",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("ledger_accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("memo", String(200), nullable=False),
    Column("expires_at", UTC_TIME, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    CheckConstraint("amount > 0 AND remaining >= 0 AND remaining <= amount", name="amounts"),
    CheckConstraint("status IN ('pending', 'captured', 'released', 'expired')", name="status"),
)
Index("ix_ledger_holds_status_expires_at", holds.c.status, holds.c.expires_at)
Index("ix_ledger_holds_account_id", holds.c.account_id)

hold_events = Table(
    "ledger_hold_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("hold_id", ID, ForeignKey("ledger_holds.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # capture | release | expire
    Column("amount", BigInteger, nullable=False),
    Column("entry_id", ID, ForeignKey("ledger_entries.id"), nullable=True),
    Column("at", UTC_TIME, nullable=False),
)
Index("ix_ledger_hold_events_hold_id", hold_events.c.hold_id)
