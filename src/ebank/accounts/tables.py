"""Which customer holds which ledger account, as which product and tier."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME

customer_accounts = Table(
    "customer_accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    # Its number is the ledger account's code; status and balance live in the ledger.
    Column("ledger_account_id", ID, ForeignKey("ledger_accounts.id"), nullable=False, unique=True),
    Column("product", String(16), nullable=False),  # demand | term
    Column("tier", String(16), nullable=False),  # I | II | III (persons) | corporate
    Column("maturity_date", Date, nullable=True),  # term deposits
    Column("rate_bp", Integer, nullable=True),  # term deposits: annual rate in basis points
    Column("opened_at", UTC_TIME, nullable=False),
    CheckConstraint("product IN ('demand', 'term')", name="product"),
    CheckConstraint("tier IN ('I', 'II', 'III', 'corporate')", name="tier"),
    CheckConstraint(
        "(product = 'term') = (maturity_date IS NOT NULL AND rate_bp IS NOT NULL)", name="term"
    ),
)
Index("ix_customer_accounts_customer_id", customer_accounts.c.customer_id)
