"""Customer tables. Identity and phone numbers are stored only encrypted, each beside a keyed
hash used to find it (`core.crypto.Vault`)."""

from sqlalchemy import CheckConstraint, Column, Index, String, Table, Text

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME

customers = Table(
    "customers",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),  # individual | enterprise
    Column("name", String(100), nullable=False),
    # The resident ID of an individual, the unified social credit code of an enterprise.
    Column("id_number_sealed", Text, nullable=False),
    Column("id_number_hash", String(64), nullable=False, unique=True),
    Column("mobile_sealed", Text, nullable=False),
    Column("mobile_hash", String(64), nullable=False),
    Column("legal_representative", String(100), nullable=True),
    Column("created_at", UTC_TIME, nullable=False),
    CheckConstraint("kind IN ('individual', 'enterprise')", name="kind"),
)
Index("ix_customers_mobile_hash", customers.c.mobile_hash)
