"""Digital certificates (U盾/网盾): the bank's own CA, customer certificates, signed payments.

The customer's key pair is made on the U-key; the bank receives a PKCS#10 request, checks that
the requester holds the key (the request's own signature), and certifies the public key under
a subject taken from its own records. A payment is confirmed by the customer's ECDSA-SHA256
signature over `canonical_payment`: amount, payee, time and nonce, so a signature made for one
payment is worth nothing for another (dynamic linking). Accepted signatures are kept with what
was signed and by which certificate: the bank can later show the customer's signature
(non-repudiation). A revoked certificate signs nothing from the moment it is revoked.

EC P-256 only: SM2 needs a library that can make and check SM2 certificates as safely as
`cryptography` does P-256, and no maintained one exists on PyPI (docs/decisions.md).
"""

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, select

from ebank.core import audit, outbox
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.money import CURRENCY_DIGITS, MAX_MINOR, format_minor
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.security.service import Verdict, audited
from ebank.security.tables import (
    certificate_authorities,
    certificates,
    payment_signatures,
    signing_challenges,
)

CA_NAME = "customer-ca"
CA_KEY_PURPOSE = "security.ca_key"
CA_VALID_DAYS = 20 * 365 + 5  # twenty years: it must outlive every certificate it signs
DEFAULT_VALID_DAYS = 2 * 365 + 1  # a customer certificate: two years, then renewed
MAX_VALID_DAYS = 5 * 365 + 1
MAX_CSR_CHARS = 8192
MAX_SIGNATURE_CHARS = 200  # a DER P-256 signature is at most 72 bytes, 96 in base64
MESSAGE_VERSION = "ebank-payment-v1"
# Reasons of RFC 5280 §5.3.1 a person may give; "superseded" is the bank's, on re-issue.
REVOCATION_REASONS = (
    "key_compromise",
    "cessation_of_operation",
    "affiliation_changed",
    "unspecified",
)
_SIGNING_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,34}")  # a bank account number or an IBAN
_NONCE = re.compile(r"[0-9A-Za-z_-]{16,64}")
MAX_PAYEE_NAME = 100
CN_MAX = 64  # ub-common-name, RFC 5280


# -- the canonical description of a payment ------------------------------------------------------
def canonical_payment(
    *, amount: int, currency: str, payee_account: str, payee_name: str, at: datetime, nonce: str
) -> bytes:
    """The exact bytes a customer signs to confirm a payment, version 1.

    UTF-8, lines joined by "\\n" with no trailing newline, in this order:

        ebank-payment-v1
        amount=1234.50          exact digits of the currency (ebank.core.money)
        currency=CNY
        payee_account=6217001000000000001
        payee_name=张三
        time=2026-11-23T02:00:00Z   UTC, to the second
        nonce=<16-64 of [0-9A-Za-z_-]>

    A field that could forge another line or field (newline, "=", or any other character that
    is not printable) is refused, so one byte string describes exactly one payment.
    """
    if type(amount) is not int or not 0 < amount <= MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="a payment amount is a positive number of fen")
    if not isinstance(currency, str) or currency not in CURRENCY_DIGITS:
        raise EbankError("UNKNOWN_CURRENCY", currency=str(currency)[:8])
    if not isinstance(payee_account, str) or not _ACCOUNT.fullmatch(payee_account):
        raise EbankError("INVALID_INPUT", reason="a payee account is 1-34 letters and digits")
    if (
        not isinstance(payee_name, str)
        or not 0 < len(payee_name) <= MAX_PAYEE_NAME
        or not payee_name.isprintable()
        or "=" in payee_name
    ):
        raise EbankError(
            "INVALID_INPUT",
            reason=f"a payee name is 1-{MAX_PAYEE_NAME} printable characters, without '='",
        )
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise EbankError("INVALID_INPUT", reason="a signing time is timezone-aware")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise EbankError("INVALID_INPUT", reason="a nonce is 16-64 letters, digits, '-' or '_'")
    lines = (
        MESSAGE_VERSION,
        f"amount={format_minor(amount, currency)}",
        f"currency={currency}",
        f"payee_account={payee_account}",
        f"payee_name={payee_name}",
        f"time={as_utc(at).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"nonce={nonce}",
    )
    return "\n".join(lines).encode()


# -- the bank's CA ------------------------------------------------------------------------------
def _ca_row(conn: Connection) -> Any:
    query = select(certificate_authorities).where(certificate_authorities.c.name == CA_NAME)
    return conn.execute(query).mappings().first()


def _ca_certificate(conn: Connection) -> x509.Certificate | None:
    row = _ca_row(conn)
    return None if row is None else x509.load_pem_x509_certificate(row["certificate"].encode())


def _bank_ca(tx: Tx, vault: Vault) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The bank's CA certificate and key, made the first time any process needs them.

    Two writers making it at once both insert; the unique name refuses the second, and the
    writer runs that command again, when it finds the first one's CA.
    """
    row = _ca_row(tx.conn)
    if row is None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ebank"),
                x509.NameAttribute(NameOID.COMMON_NAME, "ebank Customer CA"),
            ]
        )
        start = tx.now.replace(microsecond=0)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(_random_serial())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=CA_VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        row = {
            "name": CA_NAME,
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "private_key": vault.encrypt(pem, purpose=CA_KEY_PURPOSE),
            "created_at": tx.now,
        }
        tx.conn.execute(certificate_authorities.insert().values(row))
        audit.record(
            tx,
            actor="system",
            action="certificate.ca.create",
            subject=f"ca:{CA_NAME}",
            detail={"serial": f"{cert.serial_number:x}", "fingerprint": _fingerprint(cert)},
        )
    cert = x509.load_pem_x509_certificate(row["certificate"].encode())
    key = serialization.load_pem_private_key(
        vault.decrypt(row["private_key"], purpose=CA_KEY_PURPOSE).encode(), password=None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def ca_certificate(vault: Vault) -> Command[str]:
    """The bank CA's certificate (PEM), for U-key software to trust; made on first use."""

    def run(tx: Tx) -> str:
        return _bank_ca(tx, vault)[0].public_bytes(serialization.Encoding.PEM).decode()

    return Command(run)


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,  # nonRepudiation
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _random_serial() -> int:
    """128 random bits, positive (RFC 5280 §4.1.2.2 wants at least 64 unpredictable ones)."""
    return 1 + secrets.randbelow(2**128 - 1)


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _key_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


# -- issuing -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    id: int
    serial: str
    pem: str
    not_after: datetime


@dataclass(frozen=True, slots=True)
class Certificate:
    id: int
    customer_id: int
    serial: str
    fingerprint: str
    pem: str
    not_before: datetime
    not_after: datetime


def _requested_key(csr_pem: object) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of a CSR whose signature proves its sender holds the private key.

    Nothing else in the request is used: the subject comes from the bank's records.
    """
    if not isinstance(csr_pem, str) or len(csr_pem) > MAX_CSR_CHARS:
        raise EbankError("INVALID_CSR", reason=f"a PEM request of at most {MAX_CSR_CHARS} chars")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise EbankError("INVALID_CSR", reason="not a PEM certificate request") from None
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise EbankError("INVALID_CSR", reason="the key must be EC P-256")
    try:
        signed_well = csr.is_signature_valid and isinstance(
            csr.signature_hash_algorithm, _SIGNING_HASHES
        )
    except UnsupportedAlgorithm:
        signed_well = False
    if not signed_well:
        raise EbankError("INVALID_CSR", reason="the request is not signed by its key (SHA-256+)")
    return key


def _subject(customer_id: int, name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ebank"),
            x509.NameAttribute(NameOID.USER_ID, str(customer_id)),
            x509.NameAttribute(NameOID.COMMON_NAME, name[:CN_MAX]),
        ]
    )


def _active_row(conn: Connection, customer_id: int, *, lock: bool = False) -> Any:
    query = select(certificates).where(
        certificates.c.customer_id == customer_id, certificates.c.status == "active"
    )
    return conn.execute(query.with_for_update() if lock else query).mappings().first()


def _revoke(tx: Tx, row: Any, reason: str, actor: str, channel: str) -> None:
    tx.conn.execute(
        certificates.update()
        .where(certificates.c.id == row["id"])
        .values(status="revoked", revoked_at=tx.now, revocation_reason=reason)
    )
    audit.record(
        tx,
        actor=actor,
        action="certificate.revoke",
        subject=f"certificate:{row['id']}",
        channel=channel,
        detail={"serial": row["serial"], "reason": reason},
    )
    outbox.emit(
        tx,
        "certificate.revoked",
        f"customer:{row['customer_id']}",
        {"customer": row["customer_id"], "serial": row["serial"], "reason": reason},
    )


def issue_certificate(
    vault: Vault,
    *,
    customer_id: int,
    csr_pem: str,
    actor: str,
    channel: str = "counter",
    valid_days: int = DEFAULT_VALID_DAYS,
) -> Command[IssuedCertificate]:
    """Certify the key of a customer's U-key, from its PKCS#10 request (PEM).

    The subject is the customer's id (UID) and name (CN) from the bank's records, whatever the
    request says. A key certified before for another customer, or revoked as compromised, is
    refused. The customer's active certificate, if any, is revoked as superseded.
    """

    def run(tx: Tx) -> IssuedCertificate:
        key = _requested_key(csr_pem)
        if type(valid_days) is not int or not 1 <= valid_days <= MAX_VALID_DAYS:
            raise EbankError("INVALID_INPUT", reason=f"validity is 1-{MAX_VALID_DAYS} days")
        _, name = customers.holder(tx.conn, customer_id, lock=True)
        key_fp = _key_fingerprint(key)
        reused = tx.conn.execute(
            select(certificates.c.id).where(
                certificates.c.key_fingerprint == key_fp,
                (certificates.c.customer_id != customer_id)
                | (certificates.c.revocation_reason == "key_compromise"),
            )
        ).first()
        if reused is not None:
            raise EbankError("INVALID_CSR", reason="this key cannot be certified: make a new one")
        ca_cert, ca_key = _bank_ca(tx, vault)
        old = _active_row(tx.conn, customer_id, lock=True)
        if old is not None:
            _revoke(tx, old, "superseded", actor, channel)
        start = tx.now.replace(microsecond=0)
        end = min(start + timedelta(days=valid_days), ca_cert.not_valid_after_utc)
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(_subject(customer_id, name))
            .issuer_name(ca_cert.subject)
            .public_key(key)
            .serial_number(_random_serial())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(digital_signature=True, content_commitment=True), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        serial = f"{cert.serial_number:032x}"
        cert_id = tx.conn.execute(
            certificates.insert().values(
                customer_id=customer_id,
                serial=serial,
                fingerprint=_fingerprint(cert),
                key_fingerprint=key_fp,
                certificate=pem,
                not_before=start,
                not_after=end,
                status="active",
                issued_by=actor,
            )
        ).inserted_primary_key[0]
        audit.record(
            tx,
            actor=actor,
            action="certificate.issue",
            subject=f"certificate:{cert_id}",
            channel=channel,
            detail={
                "customer": customer_id,
                "serial": serial,
                "supersedes": None if old is None else old["serial"],
            },
        )
        outbox.emit(
            tx,
            "certificate.issued",
            f"customer:{customer_id}",
            {"customer": customer_id, "serial": serial, "not_after": end.isoformat()},
        )
        return IssuedCertificate(cert_id, serial, pem, end)

    return Command(run)


# -- revoking ----------------------------------------------------------------------------------
def revoke_certificate(
    *, customer_id: int, certificate_id: int, reason: str, actor: str, channel: str
) -> Command[None]:
    """Revoke one of the customer's certificates (a lost U-key, a closed relationship).

    The customer may revoke their own; staff revoke on the customer's behalf. Someone else's
    certificate is as unknown as none. Revoking a revoked certificate changes nothing.
    """

    def run(tx: Tx) -> None:
        if reason not in REVOCATION_REASONS:
            raise EbankError("INVALID_INPUT", reason=f"a reason is one of {REVOCATION_REASONS}")
        if type(certificate_id) is not int:
            raise EbankError("CERTIFICATE_NOT_FOUND")
        row = (
            tx.conn.execute(
                select(certificates).where(certificates.c.id == certificate_id).with_for_update()
            )
            .mappings()
            .first()
        )
        if row is None or row["customer_id"] != customer_id:
            raise EbankError("CERTIFICATE_NOT_FOUND")
        if row["status"] == "active":
            _revoke(tx, row, reason, actor, channel)

    return Command(run)


def certificate_of(conn: Connection, customer_id: int) -> Certificate | None:
    """The customer's active (not revoked) certificate; it may have run past `not_after`."""
    row = _active_row(conn, customer_id)
    if row is None:
        return None
    return Certificate(
        row["id"],
        row["customer_id"],
        row["serial"],
        row["fingerprint"],
        row["certificate"],
        as_utc(row["not_before"]),
        as_utc(row["not_after"]),
    )


def revocation_list(conn: Connection) -> list[tuple[str, datetime, str]]:
    """Every revoked certificate as (serial, revoked at, reason), oldest first: the CRL's view."""
    rows = conn.execute(
        select(certificates.c.serial, certificates.c.revoked_at, certificates.c.revocation_reason)
        .where(certificates.c.status == "revoked")
        .order_by(certificates.c.revoked_at, certificates.c.id)
    )
    return [(serial, as_utc(at), reason) for serial, at, reason in rows]


# -- signing a payment ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SigningChallenge:
    id: int
    to_sign: str  # base64 of the exact bytes the U-key signs (canonical_payment)
    expires_at: datetime


def _usable(row: Any, now: datetime) -> bool:
    return as_utc(row["not_before"]) <= now <= as_utc(row["not_after"])


def start_signing(
    *, customer_id: int, amount: int, currency: str, payee_account: str, payee_name: str
) -> Command[SigningChallenge]:
    """Ask the customer's U-key to sign this payment: a fresh nonce, the time, the details.

    The challenge is good for one attempt within `sms_code_ttl_seconds`. A customer without a
    usable certificate is told so here, before anything is signed.
    """

    def run(tx: Tx) -> SigningChallenge:
        nonce = secrets.token_hex(16)
        message = canonical_payment(
            amount=amount,
            currency=currency,
            payee_account=payee_account,
            payee_name=payee_name,
            at=tx.now,
            nonce=nonce,
        )
        customers.holder(tx.conn, customer_id)
        cert = _active_row(tx.conn, customer_id)
        if cert is None:
            raise EbankError("CERTIFICATE_NOT_FOUND")
        if not _usable(cert, tx.now):
            raise EbankError("CERTIFICATE_EXPIRED")
        expires = tx.now + timedelta(seconds=get_settings().sms_code_ttl_seconds)
        challenge_id = tx.conn.execute(
            signing_challenges.insert().values(
                customer_id=customer_id,
                nonce=nonce,
                message=message.decode(),
                created_at=tx.now,
                expires_at=expires,
                used_at=None,
            )
        ).inserted_primary_key[0]
        return SigningChallenge(challenge_id, base64.b64encode(message).decode(), expires)

    return Command(run)


def _signature_bytes(signature_b64: object) -> bytes | None:
    """The DER signature, or None when the text is not base64 (a wrong signature, not input)."""
    if not isinstance(signature_b64, str) or not 0 < len(signature_b64) <= MAX_SIGNATURE_CHARS:
        raise EbankError("INVALID_INPUT", reason="a signature is base64 of at most 200 chars")
    try:
        return base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return None


def _signed_by(
    row: Any, ca: x509.Certificate | None, now: datetime, message: bytes, signature: bytes
) -> bool:
    """Whether the stored certificate is valid now, issued by our CA to the customer it is
    filed under, and made `signature` over `message`: a row altered in the database fails."""
    if ca is None or not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
        return False
    cert = x509.load_pem_x509_certificate(row["certificate"].encode())
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return False
    uid = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.USER_ID)]
    key = cert.public_key()
    if uid != [str(row["customer_id"])] or not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        cert.verify_directly_issued_by(ca)
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def verify_signature(
    *,
    customer_id: int,
    challenge_id: int,
    amount: int,
    currency: str,
    payee_account: str,
    payee_name: str,
    signature_b64: str,
    channel: str = "online",
) -> Command[Verdict]:
    """Accept the customer's signature of a payment, once, for exactly what was shown.

    It holds only if the challenge is the customer's own, unexpired and unused; the payment
    given now is the one the challenge was made for; the customer's certificate is active,
    within its validity and issued by the bank's CA; and the ECDSA-SHA256 signature (DER)
    verifies over the challenge's bytes. The customer's attempt spends the challenge whatever
    its outcome. A failure is audited and never says which part failed.
    """

    def run(tx: Tx) -> Verdict:
        if type(challenge_id) is not int:
            raise EbankError("INVALID_INPUT", reason="a challenge id is an integer")
        signature = _signature_bytes(signature_b64)
        row = (
            tx.conn.execute(
                select(signing_challenges)
                .where(signing_challenges.c.id == challenge_id)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        fail = Verdict(False)
        if (
            row is None
            or row["customer_id"] != customer_id  # not spent: not theirs to spend
            or row["used_at"] is not None
            or as_utc(row["expires_at"]) <= tx.now
        ):
            return audited(tx, customer_id, "certificate", channel, fail)
        tx.conn.execute(
            signing_challenges.update()
            .where(signing_challenges.c.id == challenge_id)
            .values(used_at=tx.now)
        )
        message = row["message"].encode()
        given = canonical_payment(
            amount=amount,
            currency=currency,
            payee_account=payee_account,
            payee_name=payee_name,
            at=as_utc(row["created_at"]),
            nonce=row["nonce"],
        )
        cert = _active_row(tx.conn, customer_id)
        if (
            given != message
            or signature is None
            or cert is None
            or not _signed_by(cert, _ca_certificate(tx.conn), tx.now, message, signature)
        ):
            return audited(tx, customer_id, "certificate", channel, fail)
        tx.conn.execute(
            payment_signatures.insert().values(
                challenge_id=challenge_id,
                certificate_id=cert["id"],
                serial=cert["serial"],
                message=row["message"],
                signature=signature_b64,
                verified_at=tx.now,
            )
        )
        audit.record(
            tx,
            actor=f"customer:{customer_id}",
            action="certificate.sign.payment",
            subject=f"challenge:{challenge_id}",
            channel=channel,
            detail={"serial": cert["serial"]},
        )
        return Verdict(True)

    return Command(run)
