"""Certificates through the API: the CA's certificate, a teller certifying a customer's key,
the customer seeing and revoking their own, and nobody else's."""

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.enrolment.service import enrol_at_counter
from ebank.security.tables import certificates
from tests.channels.api_support import Person, bearer, count, customer, login, member, staff_login
from tests.support import STAFF


def _csr(name: str = "anyone") -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()


def _enrolled(writer: Writer, n: int) -> Person:
    person = customer(writer, n)
    writer.execute(enrol_at_counter(customer_id=person.id, channel="online", actor=STAFF))
    return person


def _issue(api: TestClient, teller: str, customer_id: int, csr: str) -> dict:
    done = api.post(
        f"/api/v1/staff/customers/{customer_id}/certificates",
        json={"csr_pem": csr}, headers=bearer(teller),
    )  # fmt: skip
    assert done.status_code == 201, done.json()
    return done.json()


def test_a_teller_certifies_a_key_under_the_bank_ca_and_the_customer_sees_it(
    api: TestClient, writer: Writer, clock: FixedClock
) -> None:
    member(writer, "teller1", "teller")
    teller = staff_login(api, "teller1")
    person = _enrolled(writer, 1)
    issued = _issue(api, teller, person.id, _csr("Mallory the impersonator"))
    ca = x509.load_pem_x509_certificate(api.get("/api/v1/certificates/ca").text.encode())
    mine = api.get("/api/v1/me/certificate", headers=bearer(login(api, clock, person)))
    assert mine.status_code == 200
    assert mine.json()["serial"] == issued["serial"]
    cert = x509.load_pem_x509_certificate(mine.json()["certificate_pem"].encode())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert "Mallory" not in cert.subject.rfc4514_string()  # the bank's records name the subject


def test_a_customer_sees_only_their_own_certificate_and_revokes_it(
    api: TestClient, writer: Writer, clock: FixedClock, engine: Engine
) -> None:
    member(writer, "teller1", "teller")
    teller = staff_login(api, "teller1")
    alice, bob = _enrolled(writer, 1), _enrolled(writer, 2)
    _issue(api, teller, alice.id, _csr())
    bobs = bearer(login(api, clock, bob))
    nothing = api.get("/api/v1/me/certificate", headers=bobs)
    assert (nothing.status_code, nothing.json()["code"]) == (404, "CERTIFICATE_NOT_FOUND")
    assert api.post("/api/v1/me/certificate/revoke", json={}, headers=bobs).status_code == 404
    alices = bearer(login(api, clock, alice))
    done = api.post("/api/v1/me/certificate/revoke", json={"reason": "key_compromise"},
                    headers=alices)  # fmt: skip
    assert done.status_code == 204
    assert api.get("/api/v1/me/certificate", headers=alices).status_code == 404
    assert count(engine, certificates) == 1  # revoked, kept


def test_customers_cannot_issue_and_bad_requests_change_nothing(
    api: TestClient, writer: Writer, clock: FixedClock, engine: Engine
) -> None:
    member(writer, "teller1", "teller")
    teller = staff_login(api, "teller1")
    person = _enrolled(writer, 1)
    own = api.post(
        f"/api/v1/staff/customers/{person.id}/certificates",
        json={"csr_pem": _csr()}, headers=bearer(login(api, clock, person)),
    )  # fmt: skip
    assert own.status_code == 403
    garbage = api.post(
        f"/api/v1/staff/customers/{person.id}/certificates",
        json={"csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nnope\n"}, headers=bearer(teller),
    )  # fmt: skip
    assert (garbage.status_code, garbage.json()["code"]) == (400, "INVALID_CSR")
    wrong_reason = api.post(
        f"/api/v1/staff/customers/{person.id}/certificates/1/revoke",
        json={"reason": "superseded"}, headers=bearer(teller),
    )  # fmt: skip
    assert wrong_reason.status_code == 400
    assert count(engine, certificates) == 0
