"""What each customer has already paid out today (and this year), per kind of limit."""

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, PrimaryKeyConstraint, String, Table

from ebank.core.db import metadata
from ebank.core.tables import ID

limit_usage = Table(
    "limit_usage",
    metadata,
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    # e.g. "channel:online", "method:sms", "others", "uncertified", "account:17"
    Column("scope", String(40), nullable=False),
    Column("period", String(10), nullable=False),  # a business day "2026-11-23" or year "2026"
    Column("amount", BigInteger, nullable=False),
    Column("payments", Integer, nullable=False),
    PrimaryKeyConstraint("customer_id", "scope", "period"),
)
