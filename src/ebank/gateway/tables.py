"""The merchant gateway's tables: merchants and their keys, fee plans, orders and every money
movement of an order, refunds, settlements, and the nonces that stop a signed request from
being replayed.

An order's `status` and running totals cache what its events and movements say, as a payment's
status does; the events and movements themselves are only ever appended. Merchant users are the
enterprise's operators (`corporate.tables.operators`): entry (录入) is the maker role, review
(复核) the checker role.
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME, one_of

MERCHANT_STATUSES = ("active", "suspended", "closed")
CYCLES = ("t0_realtime", "t0_eod", "tn")  # T+0 real-time, T+0 end of day, T+N
KEY_ALGORITHMS = ("RSA2", "SM2")  # SHA256withRSA over RSA-2048; SM2 with SM3
MODES = ("instant", "escrow", "authorise")  # 即时支付, 延时支付, 授权支付
# created: waiting for the buyer; closed/expired: never paid. held: escrow holds the money;
# disputed: held until staff decide. authorised: a hold on the buyer's account, captured in
# parts. paid: the merchant has the money (instant paid, escrow released, authorisation
# captured and finished). voided: an authorisation ended with nothing captured. refunded:
# every fen paid has gone back.
ORDER_STATUSES = (
    "created", "closed", "expired", "held", "disputed", "authorised", "paid", "voided",
    "refunded",
)  # fmt: skip
# pay: instant payment, buyer -> merchant pending; escrow_in: buyer -> escrow; release:
# escrow -> merchant pending; capture: the buyer's hold -> merchant pending; refund: back to
# the buyer from escrow, merchant pending or (once settled) the merchant's settlement account.
MOVEMENT_KINDS = ("pay", "escrow_in", "release", "capture", "refund")
REFUND_SOURCES = ("escrow", "pending", "settlement")
REFUND_STATUSES = ("requested", "rejected", "succeeded")
FUNDING = ("debit", "credit")  # the buyer paid with a debit card (its account) or a credit card

fee_plans = Table(
    "gateway_fee_plans",
    metadata,
    Column("code", String(24), primary_key=True),
    Column("name", String(60), nullable=False),
    Column("rate_ppm", Integer, nullable=False),  # parts per million of the amount: 0.1% = 1000
    Column("fixed", BigInteger, nullable=False),  # fen per payment, added to the rate's part
    Column("minimum", BigInteger, nullable=False),  # fen; 0: none
    Column("maximum", BigInteger, nullable=True),  # fen; NULL: none
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    CheckConstraint("rate_ppm >= 0 AND rate_ppm <= 100000", name="rate"),
    CheckConstraint("fixed >= 0 AND minimum >= 0", name="non_negative"),
)

merchants = Table(
    "merchants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("merchant_no", String(16), nullable=False, unique=True),  # what the API names
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False, unique=True),
    Column("name", String(100), nullable=False),  # shown to buyers on the pay page
    Column("industry", String(40), nullable=False),
    Column("settlement_account_id", ID, ForeignKey("customer_accounts.id"), nullable=False),
    Column("fee_plan", String(24), ForeignKey("gateway_fee_plans.code"), nullable=False),
    Column("cycle", String(12), nullable=False),
    Column("settle_days", Integer, nullable=False),  # N of T+N; 0 for the T+0 cycles
    Column("status", String(12), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    one_of("cycle", CYCLES),
    one_of("status", MERCHANT_STATUSES),
    CheckConstraint("settle_days >= 0 AND settle_days <= 30", name="settle_days"),
)

# A merchant's public keys: the newest one not revoked verifies its requests.
merchant_keys = Table(
    "merchant_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("merchant_id", ID, ForeignKey("merchants.id"), nullable=False),
    Column("algorithm", String(8), nullable=False),
    Column("public_key", Text, nullable=False),  # PEM (RSA) or hex (SM2)
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the key's bytes
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    Column("revoked_at", UTC_TIME, nullable=True),
    one_of("algorithm", KEY_ALGORITHMS),
)
Index("ix_merchant_keys_merchant_id", merchant_keys.c.merchant_id)

# Every nonce a merchant's signed request carried, kept past the timestamp window so that a
# replay inside it is refused; older ones are purged.
request_nonces = Table(
    "gateway_nonces",
    metadata,
    Column("merchant_id", ID, ForeignKey("merchants.id"), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("seen_at", UTC_TIME, nullable=False),
)
Index("ix_gateway_nonces_seen_at", request_nonces.c.seen_at)

orders = Table(
    "gateway_orders",
    metadata,
    Column("id", ID, primary_key=True),
    Column("trade_no", String(24), nullable=False, unique=True),  # the bank's number for it
    Column("merchant_id", ID, ForeignKey("merchants.id"), nullable=False),
    Column("out_trade_no", String(64), nullable=False),  # the merchant's: its idempotency key
    Column("request_hash", String(64), nullable=False),  # to tell a repeat from a conflict
    Column("mode", String(12), nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen: what the buyer pays (authorises)
    Column("currency", String(3), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("return_url", String(512), nullable=False),
    Column("notify_url", String(512), nullable=False),
    Column("pay_token_hash", String(64), nullable=False, unique=True),  # the pay page's link
    Column("expires_at", UTC_TIME, nullable=False),  # unpaid after this: expired
    Column("confirm_days", Integer, nullable=False),  # escrow: released this long after paid
    Column("auth_days", Integer, nullable=False),  # authorise: the hold lasts this long
    Column("status", String(12), nullable=False),
    Column("buyer_id", ID, ForeignKey("customers.id"), nullable=True),
    Column("card_id", ID, ForeignKey("cards.id"), nullable=True),
    Column("funding", String(8), nullable=True),
    Column("payer_ledger_account_id", ID, ForeignKey("ledger_accounts.id"), nullable=True),
    Column("channel", String(16), nullable=True),  # where the buyer paid: online | mobile
    Column("method", String(16), nullable=True),  # the factor that confirmed it
    Column("hold_id", ID, ForeignKey("ledger_holds.id"), nullable=True),  # authorise
    Column("paid_at", UTC_TIME, nullable=True),
    Column("release_at", UTC_TIME, nullable=True),  # escrow: released on its own at this time
    Column("paid_amount", BigInteger, nullable=False),  # fen that reached the merchant
    Column("refunded_amount", BigInteger, nullable=False),  # fen refunded or being reviewed
    Column("created_at", UTC_TIME, nullable=False),
    Column("updated_at", UTC_TIME, nullable=False),
    UniqueConstraint("merchant_id", "out_trade_no"),
    one_of("mode", MODES),
    one_of("status", ORDER_STATUSES),
    CheckConstraint("funding IS NULL OR funding IN ('debit', 'credit')", name="funding"),
    CheckConstraint("amount > 0 AND paid_amount >= 0 AND refunded_amount >= 0", name="amounts"),
)
Index("ix_gateway_orders_status_expires_at", orders.c.status, orders.c.expires_at)
Index("ix_gateway_orders_buyer_id", orders.c.buyer_id)
Index("ix_gateway_orders_merchant_created", orders.c.merchant_id, orders.c.created_at)

order_events = Table(
    "gateway_order_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("order_id", ID, ForeignKey("gateway_orders.id"), nullable=False),
    Column("status", String(12), nullable=False),  # the status the order entered (or kept)
    Column("what", String(24), nullable=False),  # created, paid, captured, refunded, ...
    Column("actor", String(128), nullable=False),
    Column("detail", Text, nullable=False),  # JSON
    Column("at", UTC_TIME, nullable=False),
)
Index("ix_gateway_order_events_order_id", order_events.c.order_id)

# Every movement of an order's money, with the fee the bank earns on what reached the
# merchant. A movement into or out of the merchant's pending money is settled once: the
# settlement that took it names it in `settlement_items`.
movements = Table(
    "gateway_movements",
    metadata,
    Column("id", ID, primary_key=True),
    Column("order_id", ID, ForeignKey("gateway_orders.id"), nullable=False),
    Column("merchant_id", ID, ForeignKey("merchants.id"), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen, positive
    Column("fee", BigInteger, nullable=False),  # fen; only on pay, release and capture
    Column("refund_id", ID, ForeignKey("gateway_refunds.id"), nullable=True),
    Column("source", String(12), nullable=True),  # refunds: escrow | pending | settlement
    Column("capture_no", String(64), nullable=True),  # captures: the merchant's number
    Column("entry_id", ID, ForeignKey("ledger_entries.id"), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("at", UTC_TIME, nullable=False),
    UniqueConstraint("order_id", "capture_no"),
    one_of("kind", MOVEMENT_KINDS),
    CheckConstraint("amount > 0 AND fee >= 0", name="amounts"),
)
Index("ix_gateway_movements_merchant_date", movements.c.merchant_id, movements.c.business_date)
Index("ix_gateway_movements_order_id", movements.c.order_id)

refunds = Table(
    "gateway_refunds",
    metadata,
    Column("id", ID, primary_key=True),
    Column("refund_no", String(24), nullable=False, unique=True),  # the bank's number
    Column("order_id", ID, ForeignKey("gateway_orders.id"), nullable=False),
    Column("merchant_id", ID, ForeignKey("merchants.id"), nullable=False),
    Column("out_refund_no", String(64), nullable=False),  # the merchant's: idempotency key
    Column("request_hash", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", String(128), nullable=False),
    Column("status", String(12), nullable=False),
    Column("requested_by", String(128), nullable=False),  # api | operator:<id> | staff:<name>
    Column("decided_by", String(128), nullable=True),
    Column("created_at", UTC_TIME, nullable=False),
    Column("decided_at", UTC_TIME, nullable=True),
    UniqueConstraint("merchant_id", "out_refund_no"),
    one_of("status", REFUND_STATUSES),
    CheckConstraint("amount > 0", name="amount"),
)
Index("ix_gateway_refunds_order_id", refunds.c.order_id)

settlements = Table(
    "gateway_settlements",
    metadata,
    Column("id", ID, primary_key=True),
    Column("settlement_no", String(24), nullable=False, unique=True),
    Column("merchant_id", ID, ForeignKey("merchants.id"), nullable=False),
    Column("business_date", Date, nullable=False),  # the day it was run for
    Column("cycle", String(12), nullable=False),
    Column("items", Integer, nullable=False),
    Column("gross", BigInteger, nullable=False),  # fen paid in (pay, release, capture)
    Column("refunds", BigInteger, nullable=False),  # fen refunded out of pending money
    Column("fees", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),  # gross - refunds - fees; may be negative
    Column("entry_id", ID, ForeignKey("ledger_entries.id"), nullable=True),  # NULL: net 0
    Column("created_at", UTC_TIME, nullable=False),
)
Index(
    "ix_gateway_settlements_merchant_date", settlements.c.merchant_id, settlements.c.business_date
)

settlement_items = Table(
    "gateway_settlement_items",
    metadata,
    Column("movement_id", ID, ForeignKey("gateway_movements.id"), primary_key=True),
    Column("settlement_id", ID, ForeignKey("gateway_settlements.id"), nullable=False),
)
Index("ix_gateway_settlement_items_settlement_id", settlement_items.c.settlement_id)

# What a buyer allows the gateway: online payment on or off, and a daily limit of their own
# below the bank's; each card may be barred from online payment.
online_payment_settings = Table(
    "online_payment_settings",
    metadata,
    Column("customer_id", ID, ForeignKey("customers.id"), primary_key=True),
    Column("enabled", Integer, nullable=False),  # 1 | 0
    Column("daily_limit", BigInteger, nullable=True),  # fen; NULL: the bank's limits only
    Column("updated_at", UTC_TIME, nullable=False),
)
card_online_settings = Table(
    "card_online_settings",
    metadata,
    Column("card_id", ID, ForeignKey("cards.id"), primary_key=True),
    Column("enabled", Integer, nullable=False),
    Column("updated_at", UTC_TIME, nullable=False),
)


# -- notices
# Signed notifications to merchants' notify URLs (`gateway.notices`), delivered from the outbox
# by the one delivery mechanism (`notify.delivery`): its intake, messages and deliveries tables
# for the "gateway_notice" channel, and each notice as announced, for the merchant's log.
# (Imported here: this part of the file is the notices'.)
from ebank.notify.tables import delivery_tables  # noqa: E402

notice_intake, notice_messages, notice_deliveries = delivery_tables("gateway_notice")
notices = Table(
    "gateway_notices",
    metadata,
    Column("id", ID, primary_key=True),  # in the notice's id: N, business day, this number
    Column("merchant_id", ID, ForeignKey("merchants.id"), nullable=False),
    Column("order_id", ID, ForeignKey("gateway_orders.id"), nullable=False),
    Column("type", String(24), nullable=False),  # order.paid, refund.succeeded, ...
    Column("created_at", UTC_TIME, nullable=False),
    # The outbox event that carries it, set once the delivery has taken that in: the notice's
    # delivery state and attempts are the event's.
    Column("event_id", ID, ForeignKey("outbox_events.id"), nullable=True),
)
Index("ix_gateway_notices_merchant_id", notices.c.merchant_id, notices.c.id)
Index("ix_gateway_notices_order_id", notices.c.order_id, notices.c.id)
