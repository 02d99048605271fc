"""Personal data at rest: AES-GCM encryption, keyed hashes for look-up, masks for display.

ID, phone and card numbers are stored encrypted. To find a customer by one of them without
decrypting every row, each also gets a keyed hash (HMAC-SHA256). Without the key, a table
dump reveals nothing, not even which rows share a number. Both keys are derived from one
bank data key (HKDF), kept outside the database (`EBANK_DATA_KEY`). Every ciphertext names its
key id, so a new data key can be introduced while old rows are still read.

The `purpose` (e.g. "customers.id_number") is bound into both: a ciphertext or hash made for one
column neither decrypts nor matches in another.
"""

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ebank.core.settings import Settings

KEY_BYTES = 32
_NONCE_BYTES = 12


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(master)


class Vault:
    """Encrypts, decrypts and hashes personal data under the bank's data key."""

    def __init__(self, data_key: bytes, *, key_id: str = "k1") -> None:
        if len(data_key) != KEY_BYTES:
            raise ValueError("the data key is 32 bytes")
        if not key_id.isalnum():
            raise ValueError("a key id is alphanumeric")
        self.key_id = key_id
        self._aead = AESGCM(_derive(data_key, b"ebank pii encryption v1"))
        self._mac_key = _derive(data_key, b"ebank pii lookup v1")

    @classmethod
    def from_text(cls, text: str, *, key_id: str = "k1") -> "Vault":
        """A vault from a data key written as base64 (what `EBANK_DATA_KEY` holds)."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except ValueError:
            raise ValueError("the data key is not valid base64") from None
        return cls(raw, key_id=key_id)

    def encrypt(self, plaintext: str, *, purpose: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, purpose: str) -> str:
        key_id, _, body = token.partition(".")
        if key_id != self.key_id:
            raise ValueError(f"sealed under key {key_id!r}, which this vault does not hold")
        raw = base64.urlsafe_b64decode(body)
        try:
            opened = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode())
        except InvalidTag:
            raise ValueError("the ciphertext was altered or belongs elsewhere") from None
        return opened.decode()

    def lookup_hash(self, value: str, *, purpose: str) -> str:
        message = purpose.encode() + b"\x00" + value.encode()
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()


def load_or_create_key(path: Path) -> str:
    """A development data key kept in a file (created once, readable by its owner only).

    Production sets `EBANK_DATA_KEY` from the bank's key store instead.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    return text


def vault_for(settings: Settings) -> Vault:
    """The process's vault: the configured data key, or the development key file."""
    return Vault.from_text(settings.data_key or load_or_create_key(settings.data_key_path))


# -- masks: what screens and logs show -------------------------------------------------------
def mask_id_number(value: str) -> str:
    """110105********1234: region and the last four, never the birth date."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_phone(value: str) -> str:
    """138****5678."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:] if len(value) > 7 else "*" * len(value)


def mask_card(value: str) -> str:
    """621700******0001: the issuer and the last four."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_name(value: str) -> str:
    """*三 for two characters; the first and last kept beyond that (欧*锋, Z*******n)."""
    if len(value) <= 1:
        return "*"
    if len(value) == 2:
        return "*" + value[1]
    return value[0] + "*" * (len(value) - 2) + value[-1]
