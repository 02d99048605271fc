"""Receipts, one per completed payment, stored as issued: a receipt never changes.

Account numbers are sealed; the verification code is not stored, only its keyed hash (the
code itself is derived again from the content, so a row whose content was altered no longer
matches the hash it carries).
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME

receipts = Table(
    "receipts",
    metadata,
    Column("id", ID, primary_key=True),
    # What the receipt is for ("payment:123"); one receipt each.
    Column("source", String(40), nullable=False, unique=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),  # the payer's
    Column("issued_at", UTC_TIME, nullable=False),
    Column("payer_name", String(200), nullable=False),
    Column("payer_enterprise", Boolean, nullable=False),
    Column("payer_account_sealed", Text, nullable=False),
    Column("payee_name", String(200), nullable=False),
    Column("payee_enterprise", Boolean, nullable=False),
    Column("payee_account_sealed", Text, nullable=False),
    Column("payee_bank", String(100), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("reference", String(40), nullable=False),
    Column("completed_at", UTC_TIME, nullable=False),
    Column("code_hash", String(64), nullable=False, unique=True),
    CheckConstraint("amount > 0", name="amount"),
)
# A payer's receipts, newest first (the e-receipts page).
Index("ix_receipts_customer_id_id", receipts.c.customer_id, receipts.c.id)
