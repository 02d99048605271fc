"""Signing: the canonical forms, RSA2 and SM2 signatures, the gateway's key, the timestamp
window and nonces, and the worked example of docs/gateway.md recomputed from the page."""

import base64
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from sqlalchemy import Engine, func, select

from ebank import jobs
from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Writer
from ebank.gateway import signing
from ebank.gateway.client import (
    NONCE,
    SM2_N,
    Signer,
    fingerprint,
    request_message,
    response_message,
    sm2_public_key,
    verify,
)
from ebank.gateway.tables import request_nonces
from tests.gateway.support import GatewayBank
from tests.support import code_of, in_one_batch, race_two_writers

DOC = Path(__file__).parents[2] / "docs" / "gateway.md"


def rsa_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def alice() -> Signer:
    return Signer("RSA2", rsa_pem())


@pytest.fixture(scope="module")
def mallory() -> Signer:
    return Signer("RSA2", rsa_pem())


# -- the canonical forms ---------------------------------------------------------------------
def test_a_request_is_signed_as_five_lines_over_the_raw_body() -> None:
    message = request_message("POST", "/api/v1/gateway/orders?x=1", "1795399200",
                              "n0nce-n0nce-n0nce", '{"a":"茶"}'.encode())  # fmt: skip
    assert message == (
        b"POST\n/api/v1/gateway/orders?x=1\n1795399200\nn0nce-n0nce-n0nce\n"
        + '{"a":"茶"}'.encode()
        + b"\n"
    )


def test_a_get_signs_an_empty_last_line() -> None:
    message = request_message("GET", "/p", "1", "n" * 16, b"")
    assert message == b"GET\n/p\n1\n" + b"n" * 16 + b"\n\n"


def test_an_answer_is_signed_as_three_lines_over_the_raw_body() -> None:
    assert response_message("1795399200", "abc", b"{}") == b"1795399200\nabc\n{}\n"


# -- RSA2 -------------------------------------------------------------------------------------
def test_an_rsa2_signature_verifies_with_its_own_key_only(alice: Signer, mallory: Signer) -> None:
    message = request_message("GET", "/p", "1", "n" * 16, b"")
    signature = alice.sign(message)
    assert verify("RSA2", alice.public_key, message, signature)
    assert not verify("RSA2", mallory.public_key, message, signature)
    assert not verify("RSA2", alice.public_key, message.replace(b"/p", b"/q"), signature)
    assert alice.sign(message) == signature  # PKCS#1 v1.5 is deterministic


def test_a_key_in_pkcs1_and_in_spki_form_has_one_fingerprint(alice: Signer) -> None:
    spki = serialization.load_pem_public_key(alice.public_key.encode())
    assert isinstance(spki, rsa.RSAPublicKey)
    pkcs1 = spki.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    assert pkcs1.startswith(b"-----BEGIN RSA PUBLIC KEY")
    assert fingerprint("RSA2", pkcs1.decode()) == fingerprint("RSA2", alice.public_key)
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint("RSA2", alice.public_key))


def test_keys_other_than_rsa_of_2048_bits_or_more_are_refused() -> None:
    with pytest.raises(ValueError, match="2048"):
        Signer("RSA2", rsa_pem(1024))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    signature = base64.b64encode(small.sign(b"m", padding.PKCS1v15(), hashes.SHA256())).decode()
    small_pem = (
        small.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert not verify("RSA2", small_pem, b"m", signature)
    with pytest.raises(ValueError, match="2048"):
        fingerprint("RSA2", small_pem)


def _ec_public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    ("algorithm", "key", "signature"),
    [
        ("RSA2", "not a key", "AAAA"),
        ("RSA2", "", ""),
        ("RSA2", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "AAAA"),
        ("RSA2", "EC", "AAAA"),
        ("RSA2", "ALICE", "not base64!"),
        ("RSA2", "ALICE", "AAAA"),
        ("RSA2", "ALICE", ""),
        ("HS256", "ALICE", "AAAA"),
        ("SM2", "ALICE", "AAAA"),
        ("SM2", "04" + "zz" * 64, "AAAA"),
        ("SM2", "04" + "00" * 64, "MAYCAQECAQE="),
    ],
)
def test_verify_says_false_and_never_raises_on_malformed_input(
    alice: Signer, algorithm: str, key: str, signature: str
) -> None:
    key = {"ALICE": alice.public_key, "EC": _ec_public_pem()}.get(key, key)
    assert verify(algorithm, key, b"message", signature) is False


def test_fingerprint_refuses_a_malformed_key() -> None:
    for algorithm, key in (("RSA2", "nonsense"), ("SM2", "04" + "11" * 64), ("HS256", "x")):
        with pytest.raises(ValueError):
            fingerprint(algorithm, key)


# -- SM2 --------------------------------------------------------------------------------------
# Made with OpenSSL 3.0 (`openssl genpkey -algorithm SM2`; `openssl pkeyutl -sign -rawin
# -digest sm3 -pkeyopt distid:1234567812345678`): gmssl must verify what another SM2
# implementation signs with the GM/T 0009 default user id.
OPENSSL_SM2_PUBLIC = (
    "046006152d0420cec5ae32624169a53964d7e2183cf776012400c9af3575d1f50a"
    "1fd8cedd4f3ff9c2251a8acab4134c08838841bae0681a2a5a28cbae8bf1a3f6"
)
OPENSSL_SM2_MESSAGE = b"GET\n/api/v1/gateway/orders/A1001\n1700000000\nn0nce-0123456789abcdef\n\n"
OPENSSL_SM2_SIGNATURE = (
    "MEUCIDid7fYd7gCmllx/4+HXxWHW8MaHFCsN4EtUkgLAynBJ"
    "AiEAmwRXR6hmC2owzkEuO+lc0BnrN+FUOSce4zbdLVWflyU="
)


def test_sm2_verifies_a_signature_made_by_openssl() -> None:
    assert verify("SM2", OPENSSL_SM2_PUBLIC, OPENSSL_SM2_MESSAGE, OPENSSL_SM2_SIGNATURE)
    assert verify("SM2", OPENSSL_SM2_PUBLIC[2:], OPENSSL_SM2_MESSAGE, OPENSSL_SM2_SIGNATURE)
    changed = OPENSSL_SM2_MESSAGE.replace(b"A1001", b"A1002")
    assert not verify("SM2", OPENSSL_SM2_PUBLIC, changed, OPENSSL_SM2_SIGNATURE)


def test_an_sm2_key_made_by_gmssl_signs_and_verifies_and_no_other_key_does() -> None:
    one, other = Signer("SM2", secrets.token_hex(32)), Signer("SM2", secrets.token_hex(32))
    signature = one.sign(OPENSSL_SM2_MESSAGE)
    assert verify("SM2", one.public_key, OPENSSL_SM2_MESSAGE, signature)
    assert verify("SM2", "04" + one.public_key, OPENSSL_SM2_MESSAGE, signature)
    assert not verify("SM2", other.public_key, OPENSSL_SM2_MESSAGE, signature)
    assert not verify("SM2", one.public_key, OPENSSL_SM2_MESSAGE + b"x", signature)


def test_an_sm2_key_whose_point_starts_with_0_or_4_still_verifies() -> None:
    """gmssl's constructor strips leading 0 and 4 digits off a 04-prefixed key (lstrip)."""
    private = secrets.token_hex(32)
    while sm2_public_key(private)[0] not in "04":
        private = secrets.token_hex(32)
    signer = Signer("SM2", private)
    signature = signer.sign(b"message")
    assert verify("SM2", "04" + signer.public_key, b"message", signature)


def _der(r: int, s: int) -> str:
    return base64.b64encode(encode_dss_signature(r, s)).decode()


def test_sm2_refuses_points_off_the_curve_and_signatures_out_of_range() -> None:
    r, s = decode_dss_signature(base64.b64decode(OPENSSL_SM2_SIGNATURE))
    off_curve = OPENSSL_SM2_PUBLIC[:-1] + ("7" if OPENSSL_SM2_PUBLIC[-1] != "7" else "8")
    assert not verify("SM2", off_curve, OPENSSL_SM2_MESSAGE, OPENSSL_SM2_SIGNATURE)
    for bad in (_der(0, s), _der(r, 0), _der(r + SM2_N, s), _der(r, s + SM2_N)):
        assert not verify("SM2", OPENSSL_SM2_PUBLIC, OPENSSL_SM2_MESSAGE, bad)
    plain = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    assert not verify("SM2", OPENSSL_SM2_PUBLIC, OPENSSL_SM2_MESSAGE, plain)  # DER only


def test_an_sm2_fingerprint_is_of_the_point_with_or_without_its_prefix() -> None:
    assert fingerprint("SM2", OPENSSL_SM2_PUBLIC) == fingerprint("SM2", OPENSSL_SM2_PUBLIC[2:])


# -- the gateway's key ------------------------------------------------------------------------
def test_the_gateway_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "gateway-key.pem"
    first = signing.load_or_create_gateway_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = signing.load_or_create_gateway_key(path)
    assert again.serial == first.serial == fingerprint("RSA2", first.public_pem)
    assert os.listdir(path.parent) == ["gateway-key.pem"]  # no temporary file left behind


def test_processes_making_the_key_at_once_all_get_the_same_one(tmp_path: Path) -> None:
    path = tmp_path / "gateway-key.pem"
    start = threading.Barrier(4)
    serials: list[str] = []

    def make() -> None:
        start.wait(30)
        serials.append(signing.load_or_create_gateway_key(path).serial)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(serials) == 4 and len(set(serials)) == 1
    assert os.listdir(tmp_path) == ["gateway-key.pem"]


def test_the_suite_keeps_the_gateway_key_out_of_the_work_tree() -> None:
    path = get_settings().gateway_key_path.resolve()
    assert not path.is_relative_to(Path.cwd().resolve())
    assert signing.gateway_key() is signing.gateway_key()
    assert signing.gateway_key().serial == signing.load_or_create_gateway_key(path).serial


def test_signed_headers_sign_the_exact_body_with_the_gateway_key(clock: FixedClock) -> None:
    body = '{"code":"NOT_FOUND","message":"请求的地址不存在"}'.encode()
    headers = signing.signed_headers(body, now=clock.now())
    key = signing.gateway_key()
    timestamp, nonce = headers["Ebank-Timestamp"], headers["Ebank-Nonce"]
    assert timestamp == str(int(clock.now().timestamp()))
    assert NONCE.fullmatch(nonce)
    assert headers["Ebank-Serial"] == key.serial
    message = response_message(timestamp, nonce, body)
    assert verify("RSA2", key.public_pem, message, headers["Ebank-Signature"])
    assert not verify("RSA2", key.public_pem, message + b" ", headers["Ebank-Signature"])
    assert signing.signed_headers(body, now=clock.now())["Ebank-Nonce"] != nonce


# -- the timestamp window and the nonce rule --------------------------------------------------
@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_a_timestamp_within_five_minutes_either_way_is_accepted(
    clock: FixedClock, offset: int
) -> None:
    signing.check_timestamp(str(int(clock.now().timestamp()) + offset), clock.now())


@pytest.mark.parametrize("offset", [-301, 301, -86400, 10**9])
def test_a_timestamp_further_away_is_stale(clock: FixedClock, offset: int) -> None:
    with pytest.raises(EbankError) as caught:
        signing.check_timestamp(str(int(clock.now().timestamp()) + offset), clock.now())
    assert caught.value.code == "TIMESTAMP_STALE"


@pytest.mark.parametrize(
    "value", ["", "1795399200.0", "+1795399200", " 1795399200", "1795399200 ", "1.8e9",
              "-1795399200", "１７９５３９９２００", "0x6B03D160", "1795399200000000"],
)  # fmt: skip
def test_a_timestamp_that_is_not_plain_unix_seconds_is_refused(
    clock: FixedClock, value: str
) -> None:
    with pytest.raises(EbankError) as caught:
        signing.check_timestamp(value, clock.now())
    assert caught.value.code == "TIMESTAMP_STALE"


@pytest.mark.parametrize("value", ["a" * 16, "A-z_09" * 10 + "abcd", "x" * 64])
def test_a_nonce_of_16_to_64_safe_characters_is_accepted(value: str) -> None:
    signing.check_nonce(value)


@pytest.mark.parametrize("value", ["", "a" * 15, "a" * 65, "a" * 15 + " ", "a" * 15 + "/",
                                   "a" * 15 + "é", "a" * 15 + "\n"])  # fmt: skip
def test_any_other_nonce_is_refused(value: str) -> None:
    with pytest.raises(EbankError) as caught:
        signing.check_nonce(value)
    assert caught.value.code == "SIGNATURE_INVALID"


# -- nonces are used once ---------------------------------------------------------------------
def nonces(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(request_nonces)).scalar_one())


def test_a_nonce_is_accepted_once_per_merchant(bank: GatewayBank, writer: Writer) -> None:
    one, other = bank.merchant(), bank.merchant()
    nonce = "n0nce-0123456789abcdef"
    writer.execute(signing.remember_nonce(one.id, nonce))
    with pytest.raises(EbankError) as caught:
        writer.execute(signing.remember_nonce(one.id, nonce))
    assert caught.value.code == "NONCE_REUSED"
    writer.execute(signing.remember_nonce(other.id, nonce))  # its own nonces are its own
    assert nonces(bank.engine) == 2


def test_one_nonce_twice_in_one_batch_is_accepted_once(bank: GatewayBank, writer: Writer) -> None:
    shop = bank.merchant()
    same = [signing.remember_nonce(shop.id, "n0nce-0123456789abcdef") for _ in range(2)]
    assert [code_of(o) for o in in_one_batch(writer, same)] == ["ok", "NONCE_REUSED"]
    assert nonces(bank.engine) == 1


def test_two_processes_racing_with_one_nonce_accept_it_once(
    bank: GatewayBank, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    shop = bank.merchant()
    mine = [signing.remember_nonce(shop.id, f"n0nce-race-{n:010d}") for n in range(20)]
    for ours, theirs in race_two_writers(writer, engine, clock, mine):
        assert sorted([code_of(ours), code_of(theirs)]) == ["NONCE_REUSED", "ok"]
    assert nonces(engine) == 20


def test_the_hourly_purge_forgets_only_nonces_no_window_reaches(
    bank: GatewayBank, writer: Writer, clock: FixedClock
) -> None:
    shop = bank.merchant()
    writer.execute(signing.remember_nonce(shop.id, "old-0123456789abcdef"))
    clock.advance(signing.NONCES_KEPT + timedelta(seconds=1))
    writer.execute(signing.remember_nonce(shop.id, "new-0123456789abcdef"))
    assert jobs.purge_gateway_nonces(writer) == 1
    assert jobs.purge_gateway_nonces(writer) == 0
    writer.execute(signing.remember_nonce(shop.id, "old-0123456789abcdef"))
    with pytest.raises(EbankError, match="NONCE_REUSED"):
        writer.execute(signing.remember_nonce(shop.id, "new-0123456789abcdef"))


def test_nonces_are_kept_longer_than_any_accepted_timestamp_can_replay_them() -> None:
    # Accepted up to 5 minutes ahead, replayable until 5 minutes after: 10 minutes in all.
    assert timedelta(minutes=10) < signing.NONCES_KEPT


# -- the worked example of docs/gateway.md ----------------------------------------------------
def worked_example() -> list[str]:
    """The code blocks of the page's "Worked example", in order."""
    text = DOC.read_text()
    section = text.split("### Worked example", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```[a-z]*\n(.*?)```", section, re.S)


def test_the_worked_example_of_the_docs_signs_as_the_page_says() -> None:
    key, request, to_sign, signature, *_ = worked_example()
    fields = dict(line.split(None, 1) for line in request.strip().splitlines())
    message = request_message(
        fields["method"], fields["path"], fields["timestamp"], fields["nonce"],
        fields["body"].encode(),
    )  # fmt: skip
    shown = "".join(line.removesuffix("\\n") + "\n" for line in to_sign.splitlines())
    assert shown.encode() == message
    assert to_sign.splitlines()[-1].endswith("\\n")
    signer = Signer("RSA2", key)
    assert signer.sign(message) == signature.strip()
    assert verify("RSA2", signer.public_key, message, signature.strip())


def test_the_python_and_shell_recipes_of_the_docs_print_that_signature(tmp_path: Path) -> None:
    key, _, _, signature, python, shell, *_ = worked_example()
    (tmp_path / "example-key.pem").write_text(key)
    ran = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert ran.stdout.strip() == signature.strip()
    if shutil.which("openssl") is None or shutil.which("bash") is None:
        pytest.skip("openssl or bash is not installed: the shell recipe is not run")
    ran = subprocess.run(["bash", "-c", shell], cwd=tmp_path, capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert ran.stdout.strip() == signature.strip()
