"""Personal data at rest: AES-GCM sealing bound to a purpose, keyed look-up hashes, masks."""

import base64
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebank.core.crypto import (
    KEY_BYTES,
    Vault,
    load_or_create_key,
    mask_card,
    mask_id_number,
    mask_name,
    mask_phone,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
ID_PURPOSE = "customers.id_number"
ID_NUMBER = "11010519491231002X"


@pytest.fixture
def vault() -> Vault:
    return Vault(KEY)


def split(token: str) -> tuple[str, bytes]:
    key_id, _, body = token.partition(".")
    return key_id, base64.urlsafe_b64decode(body)


def join(key_id: str, raw: bytes) -> str:
    return f"{key_id}.{base64.urlsafe_b64encode(raw).decode()}"


# -- sealing ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", [ID_NUMBER, "13800138000", "张三 欧阳锋 北京市朝阳区", "", "x" * 5000]
)
def test_decrypt_returns_what_was_encrypted(vault: Vault, text: str) -> None:
    token = vault.encrypt(text, purpose=ID_PURPOSE)
    assert vault.decrypt(token, purpose=ID_PURPOSE) == text


def test_ciphertext_names_its_key_id_and_hides_the_plaintext(vault: Vault) -> None:
    token = vault.encrypt(ID_NUMBER, purpose=ID_PURPOSE)
    assert token.startswith("k1.")
    assert ID_NUMBER not in token and "19491231" not in token
    assert Vault(KEY, key_id="k7").encrypt("a", purpose="p").startswith("k7.")


def test_each_encryption_differs_but_the_lookup_hash_is_stable(vault: Vault) -> None:
    tokens = {vault.encrypt(ID_NUMBER, purpose=ID_PURPOSE) for _ in range(20)}
    assert len(tokens) == 20  # a fresh random nonce every time
    assert len({split(t)[1][:12] for t in tokens}) == 20
    hashes = {vault.lookup_hash(ID_NUMBER, purpose=ID_PURPOSE) for _ in range(5)}
    assert len(hashes) == 1
    # ... and another vault built from the same key computes the same hash.
    assert Vault(KEY).lookup_hash(ID_NUMBER, purpose=ID_PURPOSE) in hashes


def test_lookup_hash_is_a_keyed_sha256_hex_digest_bound_to_value_and_purpose(
    vault: Vault,
) -> None:
    digest = vault.lookup_hash(ID_NUMBER, purpose=ID_PURPOSE)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert ID_NUMBER not in digest
    assert vault.lookup_hash("11010519491231003X", purpose=ID_PURPOSE) != digest
    assert vault.lookup_hash(ID_NUMBER, purpose="customers.mobile") != digest


def test_ciphertext_for_one_purpose_does_not_decrypt_under_another(vault: Vault) -> None:
    token = vault.encrypt(ID_NUMBER, purpose=ID_PURPOSE)
    with pytest.raises(ValueError):
        vault.decrypt(token, purpose="customers.mobile")
    with pytest.raises(ValueError):
        vault.decrypt(token, purpose="")


@pytest.mark.parametrize("position", [0, 11, 12, 20, -16, -1], ids=lambda p: f"byte{p}")
def test_tampered_ciphertext_is_refused(vault: Vault, position: int) -> None:
    key_id, raw = split(vault.encrypt(ID_NUMBER, purpose=ID_PURPOSE))
    altered = bytearray(raw)
    altered[position] ^= 0x01
    with pytest.raises(ValueError):
        vault.decrypt(join(key_id, bytes(altered)), purpose=ID_PURPOSE)


def test_truncated_or_extended_ciphertext_is_refused(vault: Vault) -> None:
    key_id, raw = split(vault.encrypt(ID_NUMBER, purpose=ID_PURPOSE))
    for changed in (raw[:-1], raw[:20], raw[:12], raw[:5], b"", raw + b"\x00"):
        with pytest.raises(ValueError):
            vault.decrypt(join(key_id, changed), purpose=ID_PURPOSE)


def test_a_body_that_is_not_base64_is_refused(vault: Vault) -> None:
    with pytest.raises(ValueError):
        vault.decrypt("k1.not*base64!", purpose=ID_PURPOSE)


def test_another_data_key_cannot_decrypt_and_hashes_differently(vault: Vault) -> None:
    other = Vault(OTHER_KEY)  # same key id "k1", different key
    token = vault.encrypt(ID_NUMBER, purpose=ID_PURPOSE)
    with pytest.raises(ValueError):
        other.decrypt(token, purpose=ID_PURPOSE)
    assert other.lookup_hash(ID_NUMBER, purpose=ID_PURPOSE) != vault.lookup_hash(
        ID_NUMBER, purpose=ID_PURPOSE
    )


def test_a_ciphertext_under_another_key_id_is_refused(vault: Vault) -> None:
    token = vault.encrypt(ID_NUMBER, purpose=ID_PURPOSE)
    with pytest.raises(ValueError, match="k1"):
        Vault(KEY, key_id="k2").decrypt(token, purpose=ID_PURPOSE)
    relabelled = "k2." + token.partition(".")[2]
    with pytest.raises(ValueError):
        vault.decrypt(relabelled, purpose=ID_PURPOSE)
    with pytest.raises(ValueError):
        vault.decrypt(token.partition(".")[2], purpose=ID_PURPOSE)  # no key id at all


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_vault_refuses_keys_that_are_not_32_bytes(size: int) -> None:
    with pytest.raises(ValueError):
        Vault(b"\x01" * size)


@pytest.mark.parametrize("key_id", ["", "k.1", "k 1", "k-1"])
def test_vault_refuses_key_ids_that_are_not_alphanumeric(key_id: str) -> None:
    with pytest.raises(ValueError):
        Vault(KEY, key_id=key_id)


def test_from_text_accepts_the_base64_of_a_32_byte_key() -> None:
    text = base64.b64encode(KEY).decode()
    from_text = Vault.from_text(f"  {text}\n", key_id="k3")
    assert from_text.key_id == "k3"
    token = Vault(KEY, key_id="k3").encrypt("同一把钥匙", purpose="p")
    assert from_text.decrypt(token, purpose="p") == "同一把钥匙"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key",
        "%%%%",
        base64.b64encode(KEY).decode()[:-3],
        base64.b64encode(b"short").decode(),
    ],
)
def test_from_text_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        Vault.from_text(text)


def test_load_or_create_key_creates_an_owner_only_file_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "data.key"
    first = load_or_create_key(path)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(first, validate=True)) == KEY_BYTES
    Vault.from_text(first)  # usable as EBANK_DATA_KEY

    before = path.stat().st_mtime_ns, path.read_text()
    assert load_or_create_key(path) == first
    assert (path.stat().st_mtime_ns, path.read_text()) == before


def test_load_or_create_key_makes_a_new_random_key_per_file(tmp_path: Path) -> None:
    assert load_or_create_key(tmp_path / "a.key") != load_or_create_key(tmp_path / "b.key")


def test_load_or_create_key_reads_an_existing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "given.key"
    text = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    path.write_text(text + "\n")
    assert load_or_create_key(path) == text


# -- masks -----------------------------------------------------------------------------------
def test_id_number_mask_keeps_region_and_last_four_and_hides_the_birth_date() -> None:
    masked = mask_id_number(ID_NUMBER)
    assert masked == "110105********002X"
    assert len(masked) == len(ID_NUMBER)
    assert "1949" not in masked and "1231" not in masked
    assert masked[6:14] == "*" * 8  # exactly the birth-date digits are hidden


def test_credit_code_mask_keeps_the_first_six_and_last_four() -> None:
    assert mask_id_number("91350100M000100Y43") == "913501********0Y43"


@pytest.mark.parametrize("value", ["", "1", "1234567890"])
def test_short_id_numbers_are_fully_masked(value: str) -> None:
    assert mask_id_number(value) == "*" * len(value)


def test_phone_mask() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("1234567") == "*******"
    assert mask_phone("") == ""


@pytest.mark.parametrize(
    ("card", "masked"),
    [
        ("6217001234560001", "621700******0001"),
        ("6222021234567890123", "622202*********0123"),
        ("1234567890", "**********"),
    ],
)
def test_card_mask_keeps_the_issuer_and_last_four(card: str, masked: str) -> None:
    assert mask_card(card) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "*三"),
        ("欧阳锋", "欧*锋"),
        ("司马相如", "司**如"),
        ("Zhangsan", "Z******n"),
        ("张", "*"),
        ("", "*"),
    ],
)
def test_name_mask(name: str, masked: str) -> None:
    assert mask_name(name) == masked


# -- properties ------------------------------------------------------------------------------
@given(text=st.text(), purpose=st.text(min_size=1, max_size=40))
def test_any_text_survives_a_round_trip(text: str, purpose: str) -> None:
    vault = Vault(KEY)
    token = vault.encrypt(text, purpose=purpose)
    assert vault.decrypt(token, purpose=purpose) == text
