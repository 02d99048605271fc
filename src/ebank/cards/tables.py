"""Cards and their status events. The number is stored sealed (with a keyed hash to find it)
and as a display mask; the status column caches the latest event."""

from sqlalchemy import CheckConstraint, Column, Date, ForeignKey, Index, String, Table, Text

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME

cards = Table(
    "cards",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # debit | credit
    # Debit: the linked deposit account's ledger account; credit: the card's own account.
    Column("ledger_account_id", ID, ForeignKey("ledger_accounts.id"), nullable=False),
    Column("number_sealed", Text, nullable=False),
    Column("number_hash", String(64), nullable=False, unique=True),
    Column("masked", String(24), nullable=False),
    Column("expires", Date, nullable=False),  # the last day of the month printed on it
    Column("status", String(16), nullable=False),
    Column("issued_at", UTC_TIME, nullable=False),
    CheckConstraint("kind IN ('debit', 'credit')", name="kind"),
    CheckConstraint("status IN ('active', 'reported_lost', 'frozen', 'closed')", name="status"),
)
Index("ix_cards_customer_id", cards.c.customer_id)

card_events = Table(
    "card_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("card_id", ID, ForeignKey("cards.id"), nullable=False),
    Column("status", String(16), nullable=False),  # the status the card entered
    Column("actor", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("at", UTC_TIME, nullable=False),
)
Index("ix_card_events_card_id", card_events.c.card_id)
