"""Clearing: every message in and out, the decision on each incoming transfer, and when to ask
the house next about an outgoing one.

The message log and the decisions are only ever appended. A status change is a new message
(the pacs.002 that reported it); a payment's own status lives in `payments`.
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
from ebank.core.tables import ID, UTC_TIME

# Every message sent or received, as it went over the wire.
clearing_messages = Table(
    "clearing_messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("direction", String(3), nullable=False),  # in | out
    Column("kind", String(16), nullable=False),  # pacs.008.001.08, pacs.002.001.10, ...
    Column("msg_id", String(35), nullable=False),
    Column("end_to_end_id", String(35), nullable=False),
    Column("counterpart", String(12), nullable=False),  # the other bank (InstgAgt or InstdAgt)
    Column("status", String(4), nullable=True),  # a pacs.002's TxSts (None: "not known here")
    Column("reason", String(4), nullable=True),  # its reason, or a pacs.004's
    Column("xml", Text, nullable=False),
    Column("at", UTC_TIME, nullable=False),
    CheckConstraint("direction IN ('in', 'out')", name="direction"),
)
Index("ix_clearing_messages_end_to_end_id", clearing_messages.c.end_to_end_id)

# What we answered each incoming credit transfer, once per (sending bank, end-to-end id): a
# delivery repeated gets the same answer and never a second credit.
clearing_inbound = Table(
    "clearing_inbound",
    metadata,
    Column("id", ID, primary_key=True),
    Column("sender_bank", String(12), nullable=False),
    Column("end_to_end_id", String(35), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # of the transfer's contents
    Column("status", String(4), nullable=False),  # ACSC | RJCT
    Column("reason", String(4), nullable=True),
    Column("account_id", ID, ForeignKey("customer_accounts.id"), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("entry_id", ID, ForeignKey("ledger_entries.id"), nullable=True),  # the credit
    Column("at", UTC_TIME, nullable=False),
    UniqueConstraint("sender_bank", "end_to_end_id"),
    CheckConstraint("status IN ('ACSC', 'RJCT')", name="status"),
    CheckConstraint("(status = 'ACSC') = (entry_id IS NOT NULL)", name="credited"),
)

# The work list of outgoing transfers: one row per payment sent, with when to ask the house
# about it next (None once its outcome is final). Only this schedule is ever updated.
clearing_outgoing = Table(
    "clearing_outgoing",
    metadata,
    Column("payment_id", ID, ForeignKey("payments.id"), primary_key=True),
    Column("end_to_end_id", String(35), nullable=False, unique=True),
    Column("msg_id", String(35), nullable=False),  # of its pacs.008, sent again if need be
    Column("creditor_agent", String(12), nullable=False),
    Column("queries", Integer, nullable=False),  # status queries asked so far
    Column("next_query_at", UTC_TIME, nullable=True),
    Column("sent_at", UTC_TIME, nullable=False),
)
Index("ix_clearing_outgoing_next_query_at", clearing_outgoing.c.next_query_at)
