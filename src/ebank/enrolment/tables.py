"""Which customer is enrolled for which e-banking channel, how, and with what agreed limits."""

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Table

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME

channel_enrolments = Table(
    "channel_enrolments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    # counter: identity checked by staff; self: card + PIN + SMS code online (low limits only).
    Column("assurance", String(8), nullable=False),
    Column("daily_limit", BigInteger, nullable=False),  # fen, payments to others per day
    Column("per_payment_limit", BigInteger, nullable=False),
    Column("enrolled_by", String(128), nullable=False),
    Column("enrolled_at", UTC_TIME, nullable=False),
    Column("cancelled_at", UTC_TIME, nullable=True),
    CheckConstraint("channel IN ('online', 'mobile', 'phone', 'sms')", name="channel"),
    CheckConstraint("assurance IN ('counter', 'self')", name="assurance"),
    CheckConstraint("0 < per_payment_limit AND per_payment_limit <= daily_limit", name="limits"),
)
# One live enrolment per customer and channel; cancelled ones stay as history.
Index(
    "ux_channel_enrolments_live",
    channel_enrolments.c.customer_id,
    channel_enrolments.c.channel,
    unique=True,
    sqlite_where=channel_enrolments.c.cancelled_at.is_(None),
    postgresql_where=channel_enrolments.c.cancelled_at.is_(None),
)
