"""Bill payment (代缴费): the billers the bank collects for, each bill payment and every time the
bank told a biller about it, and the simulated biller's own records.

A bill payment's row is also its delivery state: the worker claims rows due for the biller
(`next_attempt_at`), so no separate queue is kept. The customer's number at the biller may be a
mobile number, so it is sealed and shown masked.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
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

from ebank.bills.models import CATEGORIES, STATUSES
from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME, one_of

billers = Table(
    "billers",
    metadata,
    Column("id", ID, primary_key=True),
    Column("code", String(12), nullable=False, unique=True),
    Column("name_zh", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("category", String(16), nullable=False),
    Column("adapter", String(32), nullable=False),  # what talks to it (bills.adapters.ADAPTERS)
    Column("active", Boolean, nullable=False),
    # What the bank owes the biller: credited by each payment, debited by each refund.
    Column("ledger_account_id", ID, ForeignKey("ledger_accounts.id"), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    one_of("category", CATEGORIES),
)

bill_payments = Table(
    "bill_payments",
    metadata,
    Column("payment_id", ID, ForeignKey("payments.id"), primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("biller_id", ID, ForeignKey("billers.id"), nullable=False),
    Column("number_sealed", Text, nullable=False),
    Column("number_masked", String(24), nullable=False),
    Column("bill_id", String(40), nullable=True),  # None for a phone top-up
    Column("period", String(7), nullable=True),  # the bill's month, YYYY-MM
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),  # times the biller was asked so far
    # When the worker next asks the biller; while one is asking, when its claim runs out.
    Column("next_attempt_at", UTC_TIME, nullable=False),
    Column("confirmation", String(40), nullable=True),  # the biller's, once it confirmed
    Column("failure_code", String(40), nullable=True),  # why it was refunded
    Column("receipt_id", ID, ForeignKey("receipts.id"), nullable=True),
    Column("created_at", UTC_TIME, nullable=False),
    Column("settled_at", UTC_TIME, nullable=True),
    one_of("status", STATUSES),
    CheckConstraint("amount > 0", name="amount"),
)
Index("ix_bill_payments_customer_id", bill_payments.c.customer_id, bill_payments.c.payment_id)
Index("ix_bill_payments_status_next_attempt_at", bill_payments.c.status,
      bill_payments.c.next_attempt_at)  # fmt: skip
# A bill is paid once: whatever races to pay it, only one payment that was not refunded.
Index(
    "ux_bill_payments_bill",
    bill_payments.c.biller_id,
    bill_payments.c.bill_id,
    unique=True,
    sqlite_where=bill_payments.c.status != "refunded",
    postgresql_where=bill_payments.c.status != "refunded",
)

# Every time the bank asked a biller to take a payment, and what came back; appended only.
bill_attempts = Table(
    "bill_attempts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("payment_id", ID, ForeignKey("bill_payments.payment_id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(12), nullable=False),
    Column("detail", String(200), nullable=True),  # the confirmation, refusal code or error
    Column("at", UTC_TIME, nullable=False),
    UniqueConstraint("payment_id", "attempt"),
    CheckConstraint("outcome IN ('confirmed', 'refused', 'unknown')", name="outcome"),
)

# The simulated biller's books (another system's, kept in our database for the demo): what it
# was paid, under the bank's reference, so that a repeat is answered, not charged again.
sim_biller_payments = Table(
    "sim_biller_payments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("biller_code", String(12), nullable=False),
    Column("reference", String(40), nullable=False),  # the bank's
    Column("bill_id", String(40), nullable=True),  # None for a top-up
    Column("amount", BigInteger, nullable=False),
    Column("confirmation", String(40), nullable=False),
    Column("paid_at", UTC_TIME, nullable=False),
    UniqueConstraint("biller_code", "reference", name="uq_sim_biller_payments_reference"),
    # NULLs (top-ups) are distinct
    UniqueConstraint("biller_code", "bill_id", name="uq_sim_biller_payments_bill_id"),
)
