"""Payments a customer made, and the history of each.

A payee's account number may be a card number, so it is stored sealed, with a keyed hash
(to find every payment into one account) and a display mask. The status column caches the
latest event; the events are the history and are only ever appended.
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME, one_of

KINDS = ("own", "intra", "interbank", "bill", "payroll", "debit")
SPEEDS = ("realtime", "normal", "next_day", "delayed")
STATUSES = (
    "scheduled", "sending", "unknown", "completed", "failed", "revoked", "returned", "review",
)  # fmt: skip


payments = Table(
    "payments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("from_account_id", ID, ForeignKey("customer_accounts.id"), nullable=False),
    Column("payee_account_sealed", Text, nullable=False),
    Column("payee_account_hash", String(64), nullable=False),
    Column("payee_account_masked", String(40), nullable=False),
    Column("payee_name", String(100), nullable=False),
    Column("payee_bank", String(12), nullable=True),  # another bank's code (inter-bank only)
    Column("payee_account_id", ID, ForeignKey("customer_accounts.id"), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("speed", String(16), nullable=False),
    Column("memo", String(60), nullable=False),
    Column("method", String(16), nullable=True),  # the factor that confirmed it
    Column("status", String(16), nullable=False),
    Column("due_at", UTC_TIME, nullable=False),  # when it is sent (now, for real-time)
    Column("hold_id", ID, ForeignKey("ledger_holds.id"), nullable=True),
    Column("entry_id", ID, ForeignKey("ledger_entries.id"), nullable=True),  # the debit
    Column("failure_code", String(40), nullable=True),
    Column("created_at", UTC_TIME, nullable=False),
    one_of("kind", KINDS),
    one_of("speed", SPEEDS),
    one_of("status", STATUSES),
    CheckConstraint("amount > 0", name="amount"),
)
Index("ix_payments_customer_id_created_at", payments.c.customer_id, payments.c.created_at)
Index("ix_payments_status_due_at", payments.c.status, payments.c.due_at)
Index("ix_payments_payee_account_hash", payments.c.payee_account_hash)

payment_events = Table(
    "payment_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("payment_id", ID, ForeignKey("payments.id"), nullable=False),
    Column("status", String(16), nullable=False),  # the status the payment entered
    Column("failure_code", String(40), nullable=True),
    Column("entry_id", ID, ForeignKey("ledger_entries.id"), nullable=True),  # what it posted
    Column("actor", String(128), nullable=False),
    Column("at", UTC_TIME, nullable=False),
)
Index("ix_payment_events_payment_id", payment_events.c.payment_id)
