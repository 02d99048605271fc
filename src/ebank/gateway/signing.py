"""Signing on the gateway's side: merchants' requests checked, the gateway's own key, nonces.

A merchant signs `METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` over the raw body with
its newest unrevoked key (RSA2 or SM2); the gateway signs `TIMESTAMP\\nNONCE\\nBODY\\n` of every
answer, notification and return result with its own RSA-2048 key. The canonical forms and the
signature checks are the merchant SDK's (`ebank.gateway.client`), so what a merchant runs and
what the bank checks are the same code. docs/gateway.md, "Signing", is the specification.
"""

import contextlib
import functools
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Connection, bindparam, delete, select, tuple_

from ebank.core.clock import as_utc
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.gateway import merchants
from ebank.gateway.client import (
    MERCHANT_HEADER,
    NONCE,
    NONCE_HEADER,
    SERIAL_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Signer,
    fingerprint,
    fresh,
    new_nonce,
    request_message,
    response_message,
    verify,
)
from ebank.gateway.tables import request_nonces

__all__ = [
    "NONCES_KEPT",
    "Caller",
    "GatewayKey",
    "SignedRequest",
    "authenticate",
    "check_nonce",
    "check_timestamp",
    "gateway_key",
    "load_or_create_gateway_key",
    "purge_nonces",
    "remember_nonce",
    "request_message",
    "response_message",
    "signed_headers",
    "verify",
]

# A request is accepted up to 5 minutes either side of its timestamp, so its nonce can come
# back for up to 10 minutes after it was first seen; kept longer than that, then purged.
NONCES_KEPT = timedelta(minutes=15)
NOT_VERIFIED = "it does not verify with the merchant's current key"


# -- the gateway's own key -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GatewayKey:
    """The gateway's key pair: signs what the gateway sends; `serial` names it to merchants."""

    signer: Signer
    serial: str  # the public key's fingerprint: SHA-256 of its DER SubjectPublicKeyInfo

    @property
    def public_pem(self) -> str:
        return self.signer.public_key

    def sign(self, message: bytes) -> str:
        return self.signer.sign(message)


def load_or_create_gateway_key(path: Path) -> GatewayKey:
    """The key pair kept at `path` (PEM), made on first use readable by its owner only.

    Two processes starting at once both end up with whichever file was linked into place
    first: a key is written to a private temporary file and hard-linked, which never replaces.
    Production puts the bank's own key there (or in an HSM behind `GatewayKey`).
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".gateway-key-")  # 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    signer = Signer("RSA2", path.read_text())
    return GatewayKey(signer, fingerprint("RSA2", signer.public_key))


@functools.cache
def gateway_key() -> GatewayKey:
    """The process's gateway key, from `EBANK_GATEWAY_KEY_PATH`, loaded once."""
    return load_or_create_gateway_key(get_settings().gateway_key_path)


def signed_headers(body: bytes, *, now: datetime) -> dict[str, str]:
    """The four headers that sign `body`, exactly the bytes sent, as the gateway's."""
    key = gateway_key()
    timestamp, nonce = str(int(now.timestamp())), new_nonce()
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: key.sign(response_message(timestamp, nonce, body)),
        SERIAL_HEADER: key.serial,
    }


# -- merchants' requests ---------------------------------------------------------------------
def check_timestamp(value: str, now: datetime) -> None:
    """TIMESTAMP_STALE unless `value` is Unix seconds (ASCII digits) within 5 minutes of now,
    either way: a request signed long ago, or dated ahead to outlive its nonce, is refused."""
    if not fresh(value, now.timestamp()):
        raise EbankError("TIMESTAMP_STALE")


def check_nonce(value: str) -> None:
    """SIGNATURE_INVALID unless the nonce is 16-64 characters of [A-Za-z0-9_-]."""
    if not NONCE.fullmatch(value):
        raise EbankError(
            "SIGNATURE_INVALID", reason="Ebank-Nonce is 16-64 characters of A-Z a-z 0-9 _ -"
        )


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A merchant's request as it arrived: its signing headers ("" where missing), the path
    with its query exactly as sent, and the raw body."""

    method: str
    target: str
    body: bytes
    merchant_no: str
    timestamp: str
    nonce: str
    signature: str


@dataclass(frozen=True, slots=True)
class Caller:
    """The merchant whose signature verified."""

    merchant_id: int
    merchant_no: str
    customer_id: int  # the enterprise the merchant is


def authenticate(conn: Connection, request: SignedRequest, *, now: datetime) -> Caller:
    """The merchant that signed `request`, or the error that refuses it.

    The signature is checked first, with the merchant's newest unrevoked key, so only the
    merchant itself learns that its timestamp is off or that it is suspended. An unknown
    merchant, one without a key and a wrong signature answer alike. The nonce is not recorded
    here: `remember_nonce`, once this has passed.
    """
    headers = {
        MERCHANT_HEADER: request.merchant_no, TIMESTAMP_HEADER: request.timestamp,
        NONCE_HEADER: request.nonce, SIGNATURE_HEADER: request.signature,
    }  # fmt: skip
    for name, value in headers.items():
        if not value:
            raise EbankError("SIGNATURE_INVALID", reason=f"the {name} header is missing")
    check_nonce(request.nonce)
    try:
        merchant = merchants.by_number(conn, request.merchant_no)
    except EbankError:
        raise EbankError("SIGNATURE_INVALID", reason=NOT_VERIFIED) from None
    key = merchants.current_key(conn, merchant.id)
    message = request_message(
        request.method, request.target, request.timestamp, request.nonce, request.body
    )
    if key is None or not verify(key.algorithm, key.public_key, message, request.signature):
        raise EbankError("SIGNATURE_INVALID", reason=NOT_VERIFIED)
    check_timestamp(request.timestamp, now)
    if merchant.status != "active":
        raise EbankError("MERCHANT_SUSPENDED")
    return Caller(merchant.id, merchant.merchant_no, merchant.customer_id)


def remember_nonce(merchant_id: int, nonce: str) -> Command[None]:
    """Record a nonce the merchant used; NONCE_REUSED if it was seen already (also earlier in
    the same batch, or committed meanwhile by another process: the writer then runs this
    again and it finds that row)."""

    def run(tx: Tx) -> None:
        key = {"merchant_id": merchant_id, "nonce": nonce}
        if tx.conn.execute(_SEEN, key).first() is not None:
            raise EbankError("NONCE_REUSED")
        tx.conn.execute(request_nonces.insert(), {**key, "seen_at": tx.now})

    return Command(run)


# Built once: every signed request records its nonce.
_SEEN = select(request_nonces.c.nonce).where(
    request_nonces.c.merchant_id == bindparam("merchant_id"),
    request_nonces.c.nonce == bindparam("nonce"),
)


def purge_nonces(tx: Tx, *, older_than: datetime, limit: int) -> int:
    """Forget up to `limit` nonces first seen before `older_than`; how many."""
    n = request_nonces.c
    chunk = select(n.merchant_id, n.nonce).where(n.seen_at < as_utc(older_than)).limit(limit)
    done = tx.conn.execute(delete(request_nonces).where(tuple_(n.merchant_id, n.nonce).in_(chunk)))
    return int(done.rowcount or 0)
