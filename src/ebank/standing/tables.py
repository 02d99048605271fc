"""The payee book, standing orders with one row per occurrence, and direct-debit mandates with
one row per debit.

A payee's account number may be a card number: it is sealed, found by a keyed hash and shown
masked, as payments keep theirs (under the same purpose, so that risk can tell a payment to a
payee in the book from one to a stranger). Rows are never edited but to end them: a payee is
removed, an order finishes or is cancelled, a mandate is revoked; each keeps when.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME, one_of

FREQUENCIES = ("once", "daily", "weekly", "monthly")
ORDER_STATUSES = ("active", "finished", "cancelled")
MANDATE_FREQUENCIES = ("any", "monthly", "yearly")
MANDATE_STATUSES = ("active", "revoked")


payees = Table(
    "payees",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("account_sealed", Text, nullable=False),
    Column("account_hash", String(64), nullable=False),
    Column("account_masked", String(40), nullable=False),
    Column("bank", String(12), nullable=True),  # another bank's code; None: this bank
    Column("alias", String(30), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),  # risk: "a new payee"
    Column("removed_at", UTC_TIME, nullable=True),
)
Index("ix_payees_customer_id", payees.c.customer_id)

standing_orders = Table(
    "standing_orders",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("payee_id", ID, ForeignKey("payees.id"), nullable=False),
    Column("from_account_id", ID, ForeignKey("customer_accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("memo", String(60), nullable=False),
    Column("channel", String(16), nullable=False),  # where it was set up; every run counts there
    Column("method", String(16), nullable=True),  # the factor that confirmed it
    Column("large_confirmed", Boolean, nullable=False),
    Column("frequency", String(8), nullable=False),
    Column("day", SmallInteger, nullable=True),  # weekly: ISO weekday; monthly: day of month
    Column("start_on", Date, nullable=False),  # business days, Asia/Shanghai
    Column("run_time", Time, nullable=False),  # local time of day
    Column("end_on", Date, nullable=True),
    Column("max_runs", Integer, nullable=True),
    Column("runs", Integer, nullable=False),  # occurrences done, paid or failed
    Column("status", String(16), nullable=False),
    Column("next_run_at", UTC_TIME, nullable=True),  # None once it ended
    Column("created_at", UTC_TIME, nullable=False),
    Column("ended_at", UTC_TIME, nullable=True),
    one_of("frequency", FREQUENCIES),
    one_of("status", ORDER_STATUSES),
    CheckConstraint("amount > 0", name="amount"),
)
Index("ix_standing_orders_customer_id", standing_orders.c.customer_id)
Index(
    "ix_standing_orders_status_next_run_at", standing_orders.c.status, standing_orders.c.next_run_at
)

# One row per occurrence: its unique key is what makes a run happen once, however many
# workers try; it points at the payment, or says why there was none.
standing_occurrences = Table(
    "standing_occurrences",
    metadata,
    Column("id", ID, primary_key=True),
    Column("order_id", ID, ForeignKey("standing_orders.id"), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("due_at", UTC_TIME, nullable=False),
    Column("payment_id", ID, ForeignKey("payments.id"), nullable=True),
    Column("failure_code", String(40), nullable=True),
    Column("ran_at", UTC_TIME, nullable=False),
    UniqueConstraint("order_id", "due_on"),
    CheckConstraint("(payment_id IS NULL) <> (failure_code IS NULL)", name="outcome"),
)

direct_debit_mandates = Table(
    "direct_debit_mandates",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),  # who pays
    Column("account_id", ID, ForeignKey("customer_accounts.id"), nullable=False),
    # The creditor: an enterprise customer and its settlement account here, or a biller.
    Column("creditor_customer_id", ID, ForeignKey("customers.id"), nullable=True),
    Column("creditor_account_id", ID, ForeignKey("customer_accounts.id"), nullable=True),
    Column("biller_code", String(32), nullable=True),
    Column("max_amount", BigInteger, nullable=False),  # per debit
    Column("currency", String(3), nullable=False),
    Column("frequency", String(8), nullable=False),
    Column("valid_until", Date, nullable=False),  # inclusive, business day
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    Column("revoked_at", UTC_TIME, nullable=True),
    one_of("frequency", MANDATE_FREQUENCIES),
    one_of("status", MANDATE_STATUSES),
    CheckConstraint("max_amount > 0", name="max_amount"),
    CheckConstraint(
        "(creditor_customer_id IS NOT NULL AND creditor_account_id IS NOT NULL"
        " AND biller_code IS NULL) OR (creditor_customer_id IS NULL"
        " AND creditor_account_id IS NULL AND biller_code IS NOT NULL)",
        name="creditor",
    ),
)
Index("ix_direct_debit_mandates_customer_id", direct_debit_mandates.c.customer_id)
Index("ix_direct_debit_mandates_creditor_customer_id", direct_debit_mandates.c.creditor_customer_id)

# A debit is found again by the creditor's reference (a repeat is the same debit), and a
# monthly or yearly mandate allows one per period (NULL for "any": never equal).
direct_debits = Table(
    "direct_debits",
    metadata,
    Column("id", ID, primary_key=True),
    Column("mandate_id", ID, ForeignKey("direct_debit_mandates.id"), nullable=False),
    Column("reference", String(64), nullable=False),
    Column("period", String(7), nullable=True),  # "2026-11", "2026", or None
    Column("amount", BigInteger, nullable=False),
    Column("payment_id", ID, ForeignKey("payments.id"), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    UniqueConstraint("mandate_id", "reference", name="uq_direct_debits_mandate_reference"),
    UniqueConstraint("mandate_id", "period", name="uq_direct_debits_mandate_period"),
    CheckConstraint("amount > 0", name="amount"),
)
