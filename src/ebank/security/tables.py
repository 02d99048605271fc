"""Credentials (with their failure counters) and one-time codes."""

from typing import Any

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

from ebank.core.db import metadata
from ebank.core.tables import ID, UTC_TIME


def lockout_columns() -> list[Column[Any]]:
    """A secret with its lockout state: the columns `security.service._attempt` counts on,
    in every table that holds a password (customers' credentials, staff)."""
    return [
        # An argon2id hash (password, PIN) or a sealed TOTP secret (token).
        Column("secret", Text, nullable=False),
        Column("failures", Integer, nullable=False),  # consecutive
        Column("locks", Integer, nullable=False),  # temporary locks so far
        Column("locked_until", UTC_TIME, nullable=True),
        Column("permanently_locked", Boolean, nullable=False),
        Column("updated_at", UTC_TIME, nullable=False),
    ]


credentials = Table(
    "credentials",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("kind", String(24), nullable=False),
    *lockout_columns(),
    Column("last_step", BigInteger, nullable=True),  # token: the last time step accepted
    UniqueConstraint("customer_id", "kind"),
    CheckConstraint("kind IN ('login_password', 'transaction_pin', 'token')", name="kind"),
)

one_time_codes = Table(
    "one_time_codes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("purpose", String(32), nullable=False),
    # A hash of what the code authorises (amount, payee...): another request cannot use it.
    Column("binding", String(64), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", UTC_TIME, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("used_at", UTC_TIME, nullable=True),
    Column("superseded", Boolean, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
)
Index("ix_one_time_codes_customer_purpose", one_time_codes.c.customer_id, one_time_codes.c.purpose)

# A session token is handed to its holder once; only its hash is kept. The holder is a
# customer (online, mobile) or a member of staff (console), never both; an enterprise's
# operator (corporate) holds a session of the enterprise, naming the operator too.
sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=True),
    Column("staff_id", ID, ForeignKey("staff.id"), nullable=True),
    Column("operator_id", ID, ForeignKey("operators.id"), nullable=True),
    Column("channel", String(16), nullable=False),
    Column("device", String(64), nullable=False),  # a hash of the device's id, or ""
    Column("started_at", UTC_TIME, nullable=False),
    Column("last_seen_at", UTC_TIME, nullable=False),
    Column("ended_at", UTC_TIME, nullable=True),
    Column("end_reason", String(16), nullable=True),  # logout | revoked (by the holder)
    CheckConstraint("(customer_id IS NULL) <> (staff_id IS NULL)", name="one_holder"),
    CheckConstraint("operator_id IS NULL OR customer_id IS NOT NULL", name="operator"),
)
Index("ix_sessions_customer_id", sessions.c.customer_id)
Index("ix_sessions_staff_id", sessions.c.staff_id)

# A customer's login half done: the password passed, a second factor (SMS or token code) is
# still to come. It completes once, before it expires; only a hash of its token is kept.
login_challenges = Table(
    "login_challenges",
    metadata,
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("device", String(64), nullable=False),  # a hash of the device's id, or ""
    Column("created_at", UTC_TIME, nullable=False),
    Column("expires_at", UTC_TIME, nullable=False),
    Column("used_at", UTC_TIME, nullable=True),
)

# The bank's own certificate authority for customer certificates (U盾/网盾): one row, made on
# first use. Its private key is sealed by the Vault; the unique name keeps two writers that
# create it at once from making two.
certificate_authorities = Table(
    "certificate_authorities",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(32), nullable=False, unique=True),
    Column("certificate", Text, nullable=False),  # PEM
    Column("private_key", Text, nullable=False),  # PKCS#8 PEM, sealed
    Column("created_at", UTC_TIME, nullable=False),
)

# Customers' certificates, issued from CSRs made on their U-keys; the bank never sees the key.
certificates = Table(
    "certificates",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("serial", String(32), nullable=False, unique=True),  # hex, 128 random bits
    Column("fingerprint", String(64), nullable=False, unique=True),  # SHA-256 of the DER
    Column("key_fingerprint", String(64), nullable=False),  # SHA-256 of the public key's DER
    Column("certificate", Text, nullable=False),  # PEM
    Column("not_before", UTC_TIME, nullable=False),
    Column("not_after", UTC_TIME, nullable=False),
    Column("status", String(8), nullable=False),
    Column("issued_by", String(128), nullable=False),
    Column("revoked_at", UTC_TIME, nullable=True),
    Column("revocation_reason", String(24), nullable=True),
    CheckConstraint("status IN ('active', 'revoked')", name="status"),
    CheckConstraint(
        "revocation_reason IN ('unspecified', 'key_compromise', 'affiliation_changed',"
        " 'superseded', 'cessation_of_operation')",
        name="revocation_reason",
    ),
)
# At most one active certificate per customer, whatever races to issue one.
Index(
    "ux_certificates_active_customer",
    certificates.c.customer_id,
    unique=True,
    sqlite_where=certificates.c.status == "active",
    postgresql_where=certificates.c.status == "active",
)
Index("ix_certificates_key_fingerprint", certificates.c.key_fingerprint)

# What a customer is asked to sign: the canonical description of one payment, used once.
signing_challenges = Table(
    "signing_challenges",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("message", Text, nullable=False),  # the exact bytes to sign, as UTF-8 text
    Column("created_at", UTC_TIME, nullable=False),
    Column("expires_at", UTC_TIME, nullable=False),
    Column("used_at", UTC_TIME, nullable=True),  # its one attempt, whatever the outcome
)

# Non-repudiation: each accepted signature with what was signed and by which certificate.
payment_signatures = Table(
    "payment_signatures",
    metadata,
    Column("id", ID, primary_key=True),
    Column("challenge_id", ID, ForeignKey("signing_challenges.id"), nullable=False, unique=True),
    Column("certificate_id", ID, ForeignKey("certificates.id"), nullable=False),
    Column("serial", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("signature", Text, nullable=False),  # base64 of the DER ECDSA-SHA256 signature
    Column("verified_at", UTC_TIME, nullable=False),
)

# Devices a customer uses. A mobile device is bound with an SMS code; any device (a browser's
# or the app's id) a customer logs in from is remembered, so that a new one raises an alert.
# Only a keyed hash of the device's id is kept.
devices = Table(
    "devices",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("device_hash", String(64), nullable=False),
    Column("status", String(8), nullable=False),
    Column("label", String(30), nullable=True),  # the customer's name for a bound device
    Column("first_seen_at", UTC_TIME, nullable=False),
    Column("last_seen_at", UTC_TIME, nullable=False),
    Column("bound_at", UTC_TIME, nullable=True),
    Column("unbound_at", UTC_TIME, nullable=True),
    UniqueConstraint("customer_id", "channel", "device_hash"),
    CheckConstraint("channel IN ('online', 'mobile')", name="channel"),
    # seen: logged in from, never bound; bound; unbound (was bound).
    CheckConstraint("status IN ('seen', 'bound', 'unbound')", name="status"),
)
