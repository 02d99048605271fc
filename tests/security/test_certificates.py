"""Digital certificates (U盾/网盾, DOMAIN.md §3): the bank's CA, customer certificates from
CSRs, payments confirmed by a signature over amount, payee, time and nonce, revocation.

Keys are made in the tests, as a customer's U-key would make them; the bank sees only CSRs.
Every database test runs on SQLite and PostgreSQL.
"""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, func, select

from ebank.core.clock import FixedClock, as_utc
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Writer
from ebank.security.certificates import (
    DEFAULT_VALID_DAYS,
    SigningChallenge,
    ca_certificate,
    canonical_payment,
    certificate_of,
    issue_certificate,
    revocation_list,
    revoke_certificate,
    start_signing,
    verify_signature,
)
from ebank.security.tables import (
    certificate_authorities,
    certificates,
    payment_signatures,
    signing_challenges,
)
from tests.support import STAFF, VAULT, code_of, person, race_two_writers

PAYMENT: dict[str, Any] = {
    "amount": 1_234_50,
    "currency": "CNY",
    "payee_account": "6217001000000000001",
    "payee_name": "张三",
}
FAILED_CHECK = "credential.check.certificate"


# -- the customer's side: a U-key that makes a key pair, a CSR, and signatures -----------------
def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr_for(key: Any, *, name: x509.Name | None = None, algorithm: Any = None) -> str:
    subject = name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice-ukey")])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, algorithm or hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def sign_challenge(key: ec.EllipticCurvePrivateKey, challenge: SigningChallenge) -> str:
    return sign(key, base64.b64decode(challenge.to_sign))


def enrolled(writer: Writer, n: int = 1) -> tuple[int, ec.EllipticCurvePrivateKey, int]:
    """Customer number `n` holding a U-key with a certificate: (customer, key, certificate)."""
    customer = person(writer, n)
    key = new_key()
    issued = writer.execute(
        issue_certificate(VAULT, customer_id=customer, csr_pem=csr_for(key), actor=STAFF)
    )
    return customer, key, issued.id


def verify(writer: Writer, customer: int, challenge: int, signature: str, **changes: Any) -> bool:
    command = verify_signature(
        customer_id=customer,
        challenge_id=challenge,
        signature_b64=signature,
        **{**PAYMENT, **changes},
    )
    return writer.execute(command).ok


def start(writer: Writer, customer: int, **changes: Any) -> SigningChallenge:
    return writer.execute(start_signing(customer_id=customer, **{**PAYMENT, **changes}))


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def failed_checks(engine: Engine, customer: int) -> int:
    return count(
        engine,
        audit_log,
        audit_log.c.action == FAILED_CHECK,
        audit_log.c.actor == f"customer:{customer}",
        audit_log.c.outcome == "failed",
    )


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


# -- the canonical description ---------------------------------------------------------------
AT = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)
NONCE = "0123456789abcdef0123456789abcdef"


def test_the_canonical_payment_is_one_documented_byte_string() -> None:
    assert (
        canonical_payment(**PAYMENT, at=AT, nonce=NONCE)
        == (
            "ebank-payment-v1\n"
            "amount=1234.50\n"
            "currency=CNY\n"
            "payee_account=6217001000000000001\n"
            "payee_name=张三\n"
            "time=2026-11-23T10:00:00Z\n"
            f"nonce={NONCE}"
        ).encode()
    )


def test_the_canonical_payment_writes_each_currency_with_its_own_digits() -> None:
    message = canonical_payment(**{**PAYMENT, "amount": 500, "currency": "JPY"}, at=AT, nonce=NONCE)
    assert b"\namount=500\ncurrency=JPY\n" in message


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("payee_name", "张三\nnonce=forged", "INVALID_INPUT"),
        ("payee_name", "张三\r", "INVALID_INPUT"),
        ("payee_name", "a=b", "INVALID_INPUT"),
        ("payee_name", "张\u2028三", "INVALID_INPUT"),  # a Unicode line separator
        ("payee_name", "张\u200b三", "INVALID_INPUT"),  # an invisible zero-width space
        ("payee_name", "", "INVALID_INPUT"),
        ("payee_name", "名" * 101, "INVALID_INPUT"),
        ("payee_account", "6217\n001", "INVALID_INPUT"),
        ("payee_account", "6217-001", "INVALID_INPUT"),
        ("payee_account", "1" * 35, "INVALID_INPUT"),
        ("amount", 0, "INVALID_AMOUNT"),
        ("amount", -100, "INVALID_AMOUNT"),
        ("amount", 12.5, "INVALID_AMOUNT"),
        ("amount", True, "INVALID_AMOUNT"),
        ("amount", 10**15, "INVALID_AMOUNT"),
        ("currency", "XXX", "UNKNOWN_CURRENCY"),
        ("currency", ["CNY"], "UNKNOWN_CURRENCY"),
    ],
)
def test_the_canonical_payment_refuses_fields_that_could_forge_another(
    field: str, value: Any, code: str
) -> None:
    with pytest.raises(EbankError) as caught:
        canonical_payment(**{**PAYMENT, field: value}, at=AT, nonce=NONCE)
    assert caught.value.code == code


# -- the bank's CA --------------------------------------------------------------------------------
def test_the_bank_ca_is_a_self_signed_p256_ca_whose_key_is_sealed(
    writer: Writer, engine: Engine
) -> None:
    ca = load(writer.execute(ca_certificate(VAULT)))
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(ca.public_key().curve, ec.SECP256R1)
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > timedelta(days=10 * 365)
    # Made once: asking again gives the same CA.
    assert load(writer.execute(ca_certificate(VAULT))) == ca
    with engine.connect() as conn:
        sealed = conn.execute(select(certificate_authorities.c.private_key)).scalar_one()
    assert "PRIVATE KEY" not in sealed
    assert "PRIVATE KEY" in VAULT.decrypt(sealed, purpose="security.ca_key")


def test_two_writers_making_the_ca_at_once_end_with_one_ca(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    [(mine, theirs)] = race_two_writers(writer, engine, clock, [ca_certificate(VAULT)])
    assert isinstance(mine, str) and mine == theirs
    assert count(engine, certificate_authorities) == 1


# -- issuing ------------------------------------------------------------------------------------
def test_a_certificate_names_the_customer_from_the_banks_records_not_the_csr(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer, other = person(writer, 1), person(writer, 2)
    key = new_key()
    impostor = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, str(other)),
            x509.NameAttribute(NameOID.COMMON_NAME, "客户2"),
        ]
    )
    issued = writer.execute(
        issue_certificate(
            VAULT, customer_id=customer, csr_pem=csr_for(key, name=impostor), actor=STAFF
        )
    )
    cert = load(issued.pem)
    assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == str(customer)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "客户1"
    ca = load(writer.execute(ca_certificate(VAULT)))
    cert.verify_directly_issued_by(ca)
    assert cert.public_key() == key.public_key()
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert issued.serial == f"{cert.serial_number:032x}" and cert.serial_number > 0
    assert cert.not_valid_before_utc == clock.now().replace(microsecond=0)
    assert issued.not_after == cert.not_valid_after_utc
    assert issued.not_after - cert.not_valid_before_utc == timedelta(days=DEFAULT_VALID_DAYS)
    with engine.connect() as conn:
        held = certificate_of(conn, customer)
        assert certificate_of(conn, other) is None
    assert held is not None and (held.id, held.serial, held.pem) == (
        issued.id,
        issued.serial,
        issued.pem,
    )
    assert count(engine, audit_log, audit_log.c.action == "certificate.issue") == 1
    assert count(engine, outbox_events, outbox_events.c.topic == "certificate.issued") == 1


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)],
    ids=["p384", "rsa"],
)
def test_a_csr_with_a_key_other_than_p256_is_refused(
    writer: Writer, engine: Engine, key: Any
) -> None:
    customer = person(writer)
    with pytest.raises(EbankError) as caught:
        writer.execute(
            issue_certificate(VAULT, customer_id=customer, csr_pem=csr_for(key), actor=STAFF)
        )
    assert caught.value.code == "INVALID_CSR"
    assert count(engine, certificates) == 0


def test_a_csr_whose_signature_does_not_match_is_refused(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    der = x509.load_pem_x509_csr(csr_for(new_key()).encode()).public_bytes(
        serialization.Encoding.DER
    )
    tampered = der.replace(b"alice-ukey", b"mallory-uk")  # same length: still a valid CSR
    pem = x509.load_der_x509_csr(tampered).public_bytes(serialization.Encoding.PEM).decode()
    assert not x509.load_pem_x509_csr(pem.encode()).is_signature_valid
    with pytest.raises(EbankError) as caught:
        writer.execute(issue_certificate(VAULT, customer_id=customer, csr_pem=pem, actor=STAFF))
    assert caught.value.code == "INVALID_CSR"
    assert count(engine, certificates) == 0


def test_a_csr_signed_with_a_hash_weaker_than_sha256_is_refused(writer: Writer) -> None:
    customer = person(writer)
    pem = csr_for(new_key(), algorithm=hashes.SHA224())
    with pytest.raises(EbankError) as caught:
        writer.execute(issue_certificate(VAULT, customer_id=customer, csr_pem=pem, actor=STAFF))
    assert caught.value.code == "INVALID_CSR"


@pytest.mark.parametrize(
    "pem",
    [
        "not a certificate request",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * 10_000,
        "证书",
        None,
    ],
    ids=["text", "garbage-pem", "huge", "not-ascii", "none"],
)
def test_a_csr_that_is_not_one_is_refused_and_changes_nothing(
    writer: Writer, engine: Engine, pem: Any
) -> None:
    customer = person(writer)
    audits = count(engine, audit_log)
    with pytest.raises(EbankError) as caught:
        writer.execute(issue_certificate(VAULT, customer_id=customer, csr_pem=pem, actor=STAFF))
    assert caught.value.code == "INVALID_CSR"
    assert (count(engine, certificates), count(engine, certificate_authorities)) == (0, 0)
    assert count(engine, audit_log) == audits


def test_a_certificate_for_a_customer_who_does_not_exist_is_refused(writer: Writer) -> None:
    with pytest.raises(EbankError) as caught:
        writer.execute(
            issue_certificate(VAULT, customer_id=999_999, csr_pem=csr_for(new_key()), actor=STAFF)
        )
    assert caught.value.code == "CUSTOMER_NOT_FOUND"


def test_a_key_certified_for_one_customer_is_refused_for_another(
    writer: Writer, engine: Engine
) -> None:
    _, key, _ = enrolled(writer, 1)
    other = person(writer, 2)
    with pytest.raises(EbankError) as caught:
        writer.execute(
            issue_certificate(VAULT, customer_id=other, csr_pem=csr_for(key), actor=STAFF)
        )
    assert caught.value.code == "INVALID_CSR"
    assert count(engine, certificates, certificates.c.customer_id == other) == 0


def test_a_key_revoked_as_compromised_is_never_certified_again(writer: Writer) -> None:
    customer, key, cert_id = enrolled(writer)
    writer.execute(
        revoke_certificate(
            customer_id=customer,
            certificate_id=cert_id,
            reason="key_compromise",
            actor=f"customer:{customer}",
            channel="online",
        )
    )
    with pytest.raises(EbankError) as caught:
        writer.execute(
            issue_certificate(VAULT, customer_id=customer, csr_pem=csr_for(key), actor=STAFF)
        )
    assert caught.value.code == "INVALID_CSR"


def test_issuing_again_supersedes_the_old_certificate_and_its_key(
    writer: Writer, engine: Engine
) -> None:
    customer, old_key, old_id = enrolled(writer)
    new = new_key()
    issued = writer.execute(
        issue_certificate(VAULT, customer_id=customer, csr_pem=csr_for(new), actor=STAFF)
    )
    with engine.connect() as conn:
        held = certificate_of(conn, customer)
        revoked = revocation_list(conn)
        old_serial = conn.execute(
            select(certificates.c.serial).where(certificates.c.id == old_id)
        ).scalar_one()
    assert held is not None and held.id == issued.id
    assert [(serial, reason) for serial, _, reason in revoked] == [(old_serial, "superseded")]
    challenge = start(writer, customer)
    assert not verify(writer, customer, challenge.id, sign_challenge(old_key, challenge))
    challenge = start(writer, customer)
    assert verify(writer, customer, challenge.id, sign_challenge(new, challenge))


def test_two_writers_issuing_for_one_customer_at_once_leave_one_active_certificate(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer)
    mine = issue_certificate(VAULT, customer_id=customer, csr_pem=csr_for(new_key()), actor=STAFF)
    theirs = issue_certificate(VAULT, customer_id=customer, csr_pem=csr_for(new_key()), actor=STAFF)
    [pair] = race_two_writers(writer, engine, clock, [mine], [theirs])
    assert [code_of(x) for x in pair] == ["ok", "ok"]
    assert count(engine, certificate_authorities) == 1
    assert count(engine, certificates, certificates.c.customer_id == customer) == 2
    assert (
        count(
            engine,
            certificates,
            certificates.c.customer_id == customer,
            certificates.c.status == "active",
        )
        == 1
    )


# -- signing a payment ------------------------------------------------------------------------
def test_a_signature_over_the_payment_shown_is_accepted_and_kept_as_evidence(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer, key, cert_id = enrolled(writer)
    challenge = start(writer, customer)
    ttl = get_settings().sms_code_ttl_seconds
    assert challenge.expires_at == clock.now() + timedelta(seconds=ttl)
    signed = base64.b64decode(challenge.to_sign)
    nonce = signed.decode().rsplit("nonce=", 1)[1]
    assert signed == canonical_payment(**PAYMENT, at=clock.now(), nonce=nonce)
    signature = sign_challenge(key, challenge)
    assert verify(writer, customer, challenge.id, signature)
    with engine.connect() as conn:
        evidence = conn.execute(select(payment_signatures)).mappings().one()
        cert = (
            conn.execute(select(certificates).where(certificates.c.id == cert_id)).mappings().one()
        )
    assert evidence["challenge_id"] == challenge.id
    assert evidence["certificate_id"] == cert_id and evidence["serial"] == cert["serial"]
    assert evidence["message"].encode() == signed and evidence["signature"] == signature
    assert as_utc(evidence["verified_at"]) == clock.now()
    # The evidence stands on its own: the certificate's key verifies the kept signature.
    load(cert["certificate"]).public_key().verify(
        base64.b64decode(evidence["signature"]), signed, ec.ECDSA(hashes.SHA256())
    )
    assert count(engine, audit_log, audit_log.c.action == "certificate.sign.payment") == 1
    assert failed_checks(engine, customer) == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"payee_account": "6217001000000000099"},
        {"payee_name": "李四"},
        {"amount": 1_234_51},
        {"amount": 123_450_00},
        {"currency": "USD"},
    ],
    ids=["payee-account", "payee-name", "amount-by-a-fen", "amount-x100", "currency"],
)
def test_a_signature_is_refused_for_a_different_payment_than_the_one_signed(
    writer: Writer, engine: Engine, changes: dict[str, Any]
) -> None:
    customer, key, _ = enrolled(writer)
    challenge = start(writer, customer)
    assert not verify(writer, customer, challenge.id, sign_challenge(key, challenge), **changes)
    assert count(engine, payment_signatures) == 0
    assert failed_checks(engine, customer) == 1


def test_a_signature_over_a_different_payee_is_refused(writer: Writer, engine: Engine) -> None:
    """The U-key was made to sign bytes naming another payee (malware in the browser): the
    signature does not fit the challenge the bank made, whatever details come with it."""
    customer, key, _ = enrolled(writer)
    challenge = start(writer, customer)
    shown = base64.b64decode(challenge.to_sign)
    forged = shown.replace(b"payee_account=6217001000000000001", b"payee_account=6217009999")
    assert forged != shown
    signature = sign(key, forged)
    assert not verify(writer, customer, challenge.id, signature)
    other = start(writer, customer)
    assert not verify(writer, customer, other.id, signature, payee_account="6217009999")
    assert count(engine, payment_signatures) == 0
    assert failed_checks(engine, customer) == 2


def test_a_challenge_is_good_for_one_attempt_so_a_replay_fails(
    writer: Writer, engine: Engine
) -> None:
    customer, key, _ = enrolled(writer)
    challenge = start(writer, customer)
    signature = sign_challenge(key, challenge)
    assert verify(writer, customer, challenge.id, signature)
    assert not verify(writer, customer, challenge.id, signature)
    assert count(engine, payment_signatures) == 1
    # A wrong attempt spends it too: the right signature afterwards is refused.
    second = start(writer, customer)
    assert not verify(writer, customer, second.id, "AAAA")
    assert not verify(writer, customer, second.id, sign_challenge(key, second))
    assert failed_checks(engine, customer) == 3


def test_another_customers_challenge_fails_and_stays_theirs(writer: Writer, engine: Engine) -> None:
    alice, alice_key, _ = enrolled(writer, 1)
    mallory, mallory_key, _ = enrolled(writer, 2)
    challenge = start(writer, alice)
    assert not verify(writer, mallory, challenge.id, sign_challenge(mallory_key, challenge))
    assert not verify(writer, mallory, challenge.id, sign_challenge(alice_key, challenge))
    assert failed_checks(engine, mallory) == 2
    # Not Mallory's to spend: Alice still confirms her payment.
    assert verify(writer, alice, challenge.id, sign_challenge(alice_key, challenge))


def test_an_expired_challenge_fails(writer: Writer, clock: FixedClock) -> None:
    customer, key, _ = enrolled(writer)
    challenge = start(writer, customer)
    clock.advance(timedelta(seconds=get_settings().sms_code_ttl_seconds))
    assert not verify(writer, customer, challenge.id, sign_challenge(key, challenge))


def test_an_unknown_challenge_fails(writer: Writer, engine: Engine) -> None:
    customer, key, _ = enrolled(writer)
    assert not verify(writer, customer, 424242, sign(key, b"anything"))
    assert failed_checks(engine, customer) == 1


def test_a_revoked_certificates_signature_fails_at_once(writer: Writer, engine: Engine) -> None:
    customer, key, cert_id = enrolled(writer)
    challenge = start(writer, customer)
    signature = sign_challenge(key, challenge)
    writer.execute(
        revoke_certificate(
            customer_id=customer,
            certificate_id=cert_id,
            reason="key_compromise",
            actor=f"customer:{customer}",
            channel="online",
        )
    )
    assert not verify(writer, customer, challenge.id, signature)
    assert failed_checks(engine, customer) == 1
    with engine.connect() as conn:
        assert certificate_of(conn, customer) is None
        [(serial, at, reason)] = revocation_list(conn)
    assert reason == "key_compromise" and isinstance(serial, str) and at.tzinfo is not None
    with pytest.raises(EbankError) as caught:
        start(writer, customer)
    assert caught.value.code == "CERTIFICATE_NOT_FOUND"


def test_an_expired_certificates_signature_fails(writer: Writer, clock: FixedClock) -> None:
    customer = person(writer)
    key = new_key()
    writer.execute(
        issue_certificate(
            VAULT, customer_id=customer, csr_pem=csr_for(key), actor=STAFF, valid_days=1
        )
    )
    clock.advance(timedelta(days=1, seconds=-60))
    challenge = start(writer, customer)  # still valid when the challenge is made
    clock.advance(timedelta(seconds=120))
    assert not verify(writer, customer, challenge.id, sign_challenge(key, challenge))
    with pytest.raises(EbankError) as caught:
        start(writer, customer)
    assert caught.value.code == "CERTIFICATE_EXPIRED"


def _forged_certificate(customer: int, key: ec.EllipticCurvePrivateKey, now: datetime) -> str:
    """A certificate for the customer's key made by a CA that only looks like the bank's."""
    ca_key = new_key()
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ebank"),
            x509.NameAttribute(NameOID.COMMON_NAME, "ebank Customer CA"),
        ]
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, str(customer)),
            x509.NameAttribute(NameOID.COMMON_NAME, "客户1"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_certificate_not_issued_by_our_ca_is_refused(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    """A certificate slipped into the store (a tampered row) does not chain to the bank's CA."""
    customer = person(writer)
    writer.execute(ca_certificate(VAULT))
    key = new_key()
    pem = _forged_certificate(customer, key, clock.now())
    with engine.begin() as conn:
        conn.execute(
            certificates.insert().values(
                customer_id=customer,
                serial="f" * 32,
                fingerprint=load(pem).fingerprint(hashes.SHA256()).hex(),
                key_fingerprint="0" * 64,
                certificate=pem,
                not_before=clock.now() - timedelta(days=1),
                not_after=clock.now() + timedelta(days=365),
                status="active",
                issued_by=STAFF,
            )
        )
    challenge = start(writer, customer)
    assert not verify(writer, customer, challenge.id, sign_challenge(key, challenge))
    assert failed_checks(engine, customer) == 1


def test_a_certificate_filed_under_another_customer_is_refused(
    writer: Writer, engine: Engine
) -> None:
    """Our CA's certificate for Alice, moved in the store to Mallory, does not sign for him."""
    _, alice_key, cert_id = enrolled(writer, 1)
    mallory = person(writer, 2)
    with engine.begin() as conn:
        conn.execute(
            certificates.update().where(certificates.c.id == cert_id).values(customer_id=mallory)
        )
    challenge = start(writer, mallory)
    assert not verify(writer, mallory, challenge.id, sign_challenge(alice_key, challenge))


def test_bad_input_when_signing_is_refused_and_changes_nothing(
    writer: Writer, engine: Engine
) -> None:
    customer, key, _ = enrolled(writer)
    audits = count(engine, audit_log)
    for changes in (
        {"payee_name": "张三\npayee_account=6217009999"},
        {"payee_name": "x" * 10_000},
        {"payee_account": "6217 0010"},
        {"amount": "1234.50"},
    ):
        with pytest.raises(EbankError) as caught:
            start(writer, customer, **changes)
        assert caught.value.code in ("INVALID_INPUT", "INVALID_AMOUNT")
    assert count(engine, signing_challenges) == 0
    challenge = start(writer, customer)
    signature = sign_challenge(key, challenge)
    for changes, bad_signature in (
        ({"payee_name": "张三\nnonce=x"}, signature),
        ({"payee_name": "="}, signature),
        ({}, "A" * 100_000),
        ({}, None),
    ):
        with pytest.raises(EbankError) as caught:
            verify(writer, customer, challenge.id, bad_signature, **changes)
        assert caught.value.code == "INVALID_INPUT"
    with pytest.raises(EbankError) as caught:
        verify(writer, customer, "1", signature)  # type: ignore[arg-type]
    assert caught.value.code == "INVALID_INPUT"
    assert count(engine, audit_log) == audits
    # Nothing was spent: the well-formed attempt still goes through.
    assert verify(writer, customer, challenge.id, signature)


def test_signing_without_a_certificate_is_refused(writer: Writer) -> None:
    customer = person(writer)
    with pytest.raises(EbankError) as caught:
        start(writer, customer)
    assert caught.value.code == "CERTIFICATE_NOT_FOUND"


# -- revoking -----------------------------------------------------------------------------------
def test_a_customer_cannot_revoke_someone_elses_certificate(writer: Writer, engine: Engine) -> None:
    alice, _, alice_cert = enrolled(writer, 1)
    mallory = person(writer, 2)
    with pytest.raises(EbankError) as caught:
        writer.execute(
            revoke_certificate(
                customer_id=mallory,
                certificate_id=alice_cert,
                reason="key_compromise",
                actor=f"customer:{mallory}",
                channel="online",
            )
        )
    assert caught.value.code == "CERTIFICATE_NOT_FOUND"
    with engine.connect() as conn:
        held = certificate_of(conn, alice)
        assert revocation_list(conn) == []
    assert held is not None and held.id == alice_cert


def test_staff_revoke_a_certificate_once_with_an_audited_reason(
    writer: Writer, engine: Engine
) -> None:
    customer, _, cert_id = enrolled(writer)
    with pytest.raises(EbankError) as caught:
        writer.execute(
            revoke_certificate(
                customer_id=customer,
                certificate_id=cert_id,
                reason="superseded",
                actor=STAFF,
                channel="counter",
            )
        )
    assert caught.value.code == "INVALID_INPUT"
    for _ in range(2):  # the second changes nothing
        writer.execute(
            revoke_certificate(
                customer_id=customer,
                certificate_id=cert_id,
                reason="cessation_of_operation",
                actor=STAFF,
                channel="counter",
            )
        )
    with engine.connect() as conn:
        [(_, _, reason)] = revocation_list(conn)
        [record] = (
            conn.execute(select(audit_log).where(audit_log.c.action == "certificate.revoke"))
            .mappings()
            .all()
        )
    assert reason == "cessation_of_operation"
    assert (record["actor"], record["subject"]) == (STAFF, f"certificate:{cert_id}")
    assert count(engine, outbox_events, outbox_events.c.topic == "certificate.revoked") == 1
