"""the merchant gateway: merchants, keys, fee plans, orders, movements, refunds, settlements

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_fee_plans",
        sa.Column("code", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("rate_ppm", sa.Integer(), nullable=False),
        sa.Column("fixed", sa.BigInteger(), nullable=False),
        sa.Column("minimum", sa.BigInteger(), nullable=False),
        sa.Column("maximum", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "fixed >= 0 AND minimum >= 0", name=op.f("ck_gateway_fee_plans_non_negative")
        ),
        sa.CheckConstraint(
            "rate_ppm >= 0 AND rate_ppm <= 100000", name=op.f("ck_gateway_fee_plans_rate")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_gateway_fee_plans")),
    )
    op.create_table(
        "online_payment_settings",
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("daily_limit", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_online_payment_settings_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_online_payment_settings")),
    )
    op.create_table(
        "card_online_settings",
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_online_settings_card_id_cards")
        ),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_card_online_settings")),
    )
    op.create_table(
        "merchants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("merchant_no", sa.String(length=16), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("industry", sa.String(length=40), nullable=False),
        sa.Column(
            "settlement_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("fee_plan", sa.String(length=24), nullable=False),
        sa.Column("cycle", sa.String(length=12), nullable=False),
        sa.Column("settle_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cycle IN ('t0_realtime', 't0_eod', 'tn')", name=op.f("ck_merchants_cycle")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'closed')", name=op.f("ck_merchants_status")
        ),
        sa.CheckConstraint(
            "settle_days >= 0 AND settle_days <= 30", name=op.f("ck_merchants_settle_days")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_merchants_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["fee_plan"],
            ["gateway_fee_plans.code"],
            name=op.f("fk_merchants_fee_plan_gateway_fee_plans"),
        ),
        sa.ForeignKeyConstraint(
            ["settlement_account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_merchants_settlement_account_id_customer_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_merchants_customer_id")),
        sa.UniqueConstraint("merchant_no", name=op.f("uq_merchants_merchant_no")),
    )
    op.create_table(
        "gateway_nonces",
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_gateway_nonces_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("merchant_id", "nonce", name=op.f("pk_gateway_nonces")),
    )
    with op.batch_alter_table("gateway_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_gateway_nonces_seen_at", ["seen_at"], unique=False)

    op.create_table(
        "gateway_orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("trade_no", sa.String(length=24), nullable=False),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("out_trade_no", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=12), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("return_url", sa.String(length=512), nullable=False),
        sa.Column("notify_url", sa.String(length=512), nullable=False),
        sa.Column("pay_token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirm_days", sa.Integer(), nullable=False),
        sa.Column("auth_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("buyer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("funding", sa.String(length=8), nullable=True),
        sa.Column(
            "payer_ledger_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("hold_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "funding IS NULL OR funding IN ('debit', 'credit')",
            name=op.f("ck_gateway_orders_funding"),
        ),
        sa.CheckConstraint(
            "mode IN ('instant', 'escrow', 'authorise')", name=op.f("ck_gateway_orders_mode")
        ),
        sa.CheckConstraint(
            "status IN ('created', 'closed', 'expired', 'held', 'disputed', 'authorised', 'paid', "
            "'voided', 'refunded')",
            name=op.f("ck_gateway_orders_status"),
        ),
        sa.CheckConstraint(
            "amount > 0 AND paid_amount >= 0 AND refunded_amount >= 0",
            name=op.f("ck_gateway_orders_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["buyer_id"], ["customers.id"], name=op.f("fk_gateway_orders_buyer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_gateway_orders_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["ledger_holds.id"], name=op.f("fk_gateway_orders_hold_id_ledger_holds")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_gateway_orders_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["payer_ledger_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_gateway_orders_payer_ledger_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_orders")),
        sa.UniqueConstraint(
            "merchant_id", "out_trade_no", name=op.f("uq_gateway_orders_merchant_id")
        ),
        sa.UniqueConstraint("pay_token_hash", name=op.f("uq_gateway_orders_pay_token_hash")),
        sa.UniqueConstraint("trade_no", name=op.f("uq_gateway_orders_trade_no")),
    )
    with op.batch_alter_table("gateway_orders", schema=None) as batch_op:
        batch_op.create_index("ix_gateway_orders_buyer_id", ["buyer_id"], unique=False)
        batch_op.create_index(
            "ix_gateway_orders_merchant_created", ["merchant_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_gateway_orders_status_expires_at", ["status", "expires_at"], unique=False
        )

    op.create_table(
        "gateway_settlements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("settlement_no", sa.String(length=24), nullable=False),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("cycle", sa.String(length=12), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("refunds", sa.BigInteger(), nullable=False),
        sa.Column("fees", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_gateway_settlements_entry_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_gateway_settlements_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_settlements")),
        sa.UniqueConstraint("settlement_no", name=op.f("uq_gateway_settlements_settlement_no")),
    )
    with op.batch_alter_table("gateway_settlements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gateway_settlements_merchant_date", ["merchant_id", "business_date"], unique=False
        )

    op.create_table(
        "merchant_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("algorithm", sa.String(length=8), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("algorithm IN ('RSA2', 'SM2')", name=op.f("ck_merchant_keys_algorithm")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_keys_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_keys")),
    )
    with op.batch_alter_table("merchant_keys", schema=None) as batch_op:
        batch_op.create_index("ix_merchant_keys_merchant_id", ["merchant_id"], unique=False)

    op.create_table(
        "gateway_order_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("what", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["gateway_orders.id"],
            name=op.f("fk_gateway_order_events_order_id_gateway_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_order_events")),
    )
    with op.batch_alter_table("gateway_order_events", schema=None) as batch_op:
        batch_op.create_index("ix_gateway_order_events_order_id", ["order_id"], unique=False)

    op.create_table(
        "gateway_refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("refund_no", sa.String(length=24), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("out_refund_no", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'rejected', 'succeeded')",
            name=op.f("ck_gateway_refunds_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_gateway_refunds_amount")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_gateway_refunds_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["gateway_orders.id"],
            name=op.f("fk_gateway_refunds_order_id_gateway_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_refunds")),
        sa.UniqueConstraint(
            "merchant_id", "out_refund_no", name=op.f("uq_gateway_refunds_merchant_id")
        ),
        sa.UniqueConstraint("refund_no", name=op.f("uq_gateway_refunds_refund_no")),
    )
    with op.batch_alter_table("gateway_refunds", schema=None) as batch_op:
        batch_op.create_index("ix_gateway_refunds_order_id", ["order_id"], unique=False)

    op.create_table(
        "gateway_movements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("refund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source", sa.String(length=12), nullable=True),
        sa.Column("capture_no", sa.String(length=64), nullable=True),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('pay', 'escrow_in', 'release', 'capture', 'refund')",
            name=op.f("ck_gateway_movements_kind"),
        ),
        sa.CheckConstraint("amount > 0 AND fee >= 0", name=op.f("ck_gateway_movements_amounts")),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_gateway_movements_entry_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_gateway_movements_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["gateway_orders.id"],
            name=op.f("fk_gateway_movements_order_id_gateway_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["gateway_refunds.id"],
            name=op.f("fk_gateway_movements_refund_id_gateway_refunds"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_movements")),
        sa.UniqueConstraint("order_id", "capture_no", name=op.f("uq_gateway_movements_order_id")),
    )
    with op.batch_alter_table("gateway_movements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gateway_movements_merchant_date", ["merchant_id", "business_date"], unique=False
        )
        batch_op.create_index("ix_gateway_movements_order_id", ["order_id"], unique=False)

    op.create_table(
        "gateway_settlement_items",
        sa.Column(
            "movement_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "settlement_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["movement_id"],
            ["gateway_movements.id"],
            name=op.f("fk_gateway_settlement_items_movement_id_gateway_movements"),
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["gateway_settlements.id"],
            name=op.f("fk_gateway_settlement_items_settlement_id_gateway_settlements"),
        ),
        sa.PrimaryKeyConstraint("movement_id", name=op.f("pk_gateway_settlement_items")),
    )
    with op.batch_alter_table("gateway_settlement_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gateway_settlement_items_settlement_id", ["settlement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gateway_settlement_items", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_settlement_items_settlement_id")

    op.drop_table("gateway_settlement_items")
    with op.batch_alter_table("gateway_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_movements_order_id")
        batch_op.drop_index("ix_gateway_movements_merchant_date")

    op.drop_table("gateway_movements")
    with op.batch_alter_table("gateway_refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_refunds_order_id")

    op.drop_table("gateway_refunds")
    with op.batch_alter_table("gateway_order_events", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_order_events_order_id")

    op.drop_table("gateway_order_events")
    with op.batch_alter_table("merchant_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_keys_merchant_id")

    op.drop_table("merchant_keys")
    with op.batch_alter_table("gateway_settlements", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_settlements_merchant_date")

    op.drop_table("gateway_settlements")
    with op.batch_alter_table("gateway_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_orders_status_expires_at")
        batch_op.drop_index("ix_gateway_orders_merchant_created")
        batch_op.drop_index("ix_gateway_orders_buyer_id")

    op.drop_table("gateway_orders")
    with op.batch_alter_table("gateway_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_nonces_seen_at")

    op.drop_table("gateway_nonces")
    op.drop_table("merchants")
    op.drop_table("card_online_settings")
    op.drop_table("online_payment_settings")
    op.drop_table("gateway_fee_plans")
