"""The merchant SDK: sign requests to the bank's payment gateway and check what it signs.

A merchant installs this one module with httpx and cryptography (and gmssl, for SM2 keys
only): it imports nothing else of ebank. The gateway checks requests and signs its answers with
these very functions (`ebank.gateway.signing`), so the two sides cannot drift apart. The
scheme, with a worked example, is in docs/gateway.md, "Signing".

    client = GatewayClient("https://bank.example", "M000000001", key_pem, gateway_pem)
    order = client.create_order(out_trade_no="A1001", amount="12.50", subject="Tea",
                                return_url=..., notify_url=...)
    # send the buyer to order["pay_url"]; ship when the notification or a query says paid
"""

import base64
import binascii
import functools
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, cast
from urllib.parse import quote

import httpx
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

ALGORITHMS = ("RSA2", "SM2")  # SHA256withRSA (PKCS#1 v1.5) over RSA-2048+; SM2 with SM3
WINDOW_SECONDS = 300  # a timestamp further than this from the receiver's clock is refused
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits only

MERCHANT_HEADER = "Ebank-Merchant"
TIMESTAMP_HEADER = "Ebank-Timestamp"
NONCE_HEADER = "Ebank-Nonce"
SIGNATURE_HEADER = "Ebank-Signature"
SERIAL_HEADER = "Ebank-Serial"  # the fingerprint of the gateway key that signed
RETURN_FIELDS = ("result", "timestamp", "nonce", "signature", "serial")  # the return URL's

RSA_MIN_BITS = 2048
# The SM2 curve (GB/T 32918.5). Signatures use GM/T 0009's default user id,
# "1234567812345678", the one gmssl builds into Z.
SM2_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
SM2_A = SM2_P - 3
SM2_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
SM2_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
SM2_G = (
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0"
)


# -- the canonical forms ---------------------------------------------------------------------
def request_message(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a merchant signs: METHOD, the path with its query as sent, the timestamp, the
    nonce and the raw body, each followed by a newline (the body is empty for a GET)."""
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the gateway signs in an answer, a notification or a return result."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def new_nonce() -> str:
    """A fresh nonce: 32 characters of [A-Za-z0-9_-] from 192 random bits."""
    return secrets.token_urlsafe(24)


def fresh(timestamp: str, now: float) -> bool:
    """Whether a timestamp is Unix seconds in ASCII digits within WINDOW_SECONDS of `now`."""
    return bool(TIMESTAMP.fullmatch(timestamp)) and abs(int(timestamp) - now) <= WINDOW_SECONDS


# -- keys ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1024)
def _rsa_public(pem: str) -> rsa.RSAPublicKey:
    """The key a PEM holds, parsed once: every request of a merchant is checked against it.
    A key object is immutable, and a revoked key's PEM is simply no longer asked for."""
    key = serialization.load_pem_public_key(pem.strip().encode())
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < RSA_MIN_BITS:
        raise ValueError(f"RSA2 takes an RSA key of {RSA_MIN_BITS} bits or more")
    return key


def _sm2_point(text: str) -> str:
    """An SM2 public key's X||Y in 128 hex digits, from 128 digits or 130 with the 04 prefix;
    ValueError unless the point is on the curve."""
    digits = text.strip().lower()
    if len(digits) == 130 and digits.startswith("04"):
        digits = digits[2:]
    if not re.fullmatch(r"[0-9a-f]{128}", digits):
        raise ValueError("an SM2 public key is its point X||Y in hex (04 prefix optional)")
    x, y = int(digits[:64], 16), int(digits[64:], 16)
    if x >= SM2_P or y >= SM2_P or (y * y - x * x * x - SM2_A * x - SM2_B) % SM2_P:
        raise ValueError("that point is not on the SM2 curve")
    return digits


def _sm2(private_hex: str, point: str) -> Any:
    """gmssl's SM2 over one key. Imported here: merchants using RSA2 need not install it."""
    from gmssl import sm2

    crypt = sm2.CryptSM2(private_key=private_hex, public_key="")
    # Set directly: its constructor strips every leading "0" and "4" digit off a key given
    # with the 04 prefix (lstrip), which corrupts one key in eight.
    crypt.public_key = point
    return crypt


def sm2_public_key(private_key: str) -> str:
    """The public key (X||Y, 128 hex digits) of an SM2 private key given as 64 hex digits."""
    if not re.fullmatch(r"[0-9a-fA-F]{64}", private_key.strip()):
        raise ValueError("an SM2 private key is 64 hex digits")
    d = int(private_key, 16)
    if not 0 < d < SM2_N - 1:
        raise ValueError("that number is not an SM2 private key")
    return str(_sm2(private_key.strip(), "")._kg(d, SM2_G))


def fingerprint(algorithm: str, public_key: str) -> str:
    """SHA-256 (hex) of a public key's bytes: DER SubjectPublicKeyInfo for RSA, X||Y for SM2.
    The gateway's fingerprint is the `Ebank-Serial` of everything it signs. ValueError on a
    malformed key."""
    if algorithm == "RSA2":
        raw = _rsa_public(public_key).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif algorithm == "SM2":
        raw = bytes.fromhex(_sm2_point(public_key))
    else:
        raise ValueError(f"an algorithm is one of {ALGORITHMS}")
    return hashlib.sha256(raw).hexdigest()


class Signer:
    """A private key loaded once, signing messages as the scheme says (base64 signatures).

    RSA2 keys are PEM (PKCS#8 or PKCS#1, unencrypted); SM2 keys are 64 hex digits. gmssl is
    pure Python and not constant-time: an SM2 key is best used on a machine nobody else runs
    code on.
    """

    def __init__(self, algorithm: str, private_key: str) -> None:
        self.algorithm = algorithm
        if algorithm == "RSA2":
            key = serialization.load_pem_private_key(private_key.strip().encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < RSA_MIN_BITS:
                raise ValueError(f"RSA2 takes an RSA key of {RSA_MIN_BITS} bits or more")
            self._rsa = key
            self.public_key = (
                key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode()
            )
        elif algorithm == "SM2":
            self.public_key = sm2_public_key(private_key)
            self._sm2 = _sm2(private_key.strip(), self.public_key)
        else:
            raise ValueError(f"an algorithm is one of {ALGORITHMS}")

    def sign(self, message: bytes) -> str:
        if self.algorithm == "RSA2":
            raw = self._rsa.sign(message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raw = b""
            while not raw:  # gmssl answers None for the rare k that gives r = 0 or s = 0
                k = f"{secrets.randbelow(SM2_N - 1) + 1:064x}"
                rs = self._sm2.sign_with_sm3(message, k)
                if rs:
                    raw = encode_dss_signature(int(rs[:64], 16), int(rs[64:], 16))
        return base64.b64encode(raw).decode()


def verify(algorithm: str, public_key: str, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is the key's signature of `message`. Never raises: a
    malformed key, signature or algorithm is simply False."""
    try:
        raw = base64.b64decode(signature, validate=True)
        if algorithm == "RSA2":
            _rsa_public(public_key).verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
            return True
        if algorithm == "SM2":
            point = _sm2_point(public_key)
            r, s = decode_dss_signature(raw)  # DER SEQUENCE {r, s}, as GM/T 0009 has it
            if not (0 < r < SM2_N and 0 < s < SM2_N):
                return False
            return bool(_sm2("", point).verify_with_sm3(f"{r:064x}{s:064x}", message))
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, binascii.Error):
        return False
    return False


# -- talking to the gateway --------------------------------------------------------------------
class GatewayError(Exception):
    """The gateway refused a request: its HTTP status, code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


class SignatureError(Exception):
    """What came back is not signed by the gateway key you hold: do not trust it."""


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class GatewayClient:
    """A merchant's signed client of the gateway's API (synchronous, over httpx).

    Every method signs its request with the merchant's key, checks that the answer is signed
    by the gateway key given here (and is no older than five minutes), and returns the parsed
    JSON. A refusal raises `GatewayError`; an answer not signed by the gateway raises
    `SignatureError`. `clock` gives Unix seconds (tests pass the bank's clock).
    """

    def __init__(
        self,
        base_url: str,
        merchant_no: str,
        private_key_pem: str,
        gateway_public_key_pem: str,
        *,
        algorithm: str = "RSA2",
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.merchant_no = merchant_no
        self._signer = Signer(algorithm, private_key_pem)
        self._gateway_pem = gateway_public_key_pem
        self.gateway_serial = fingerprint("RSA2", gateway_public_key_pem)
        self._http = http or httpx.Client(timeout=10.0)
        self._clock = clock

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GatewayClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API --------------------------------------------------------------------------
    def create_order(
        self,
        *,
        out_trade_no: str,
        amount: str,
        subject: str,
        return_url: str,
        notify_url: str,
        mode: str = "instant",
        currency: str = "CNY",
        expire_minutes: int | None = None,
        confirm_days: int | None = None,
        auth_days: int | None = None,
    ) -> dict[str, Any]:
        """Create an order (repeating the same out_trade_no with the same fields returns the
        same order); send the buyer to its `pay_url`."""
        body: dict[str, Any] = {
            "out_trade_no": out_trade_no, "amount": amount, "currency": currency, "mode": mode,
            "subject": subject, "return_url": return_url, "notify_url": notify_url,
        }  # fmt: skip
        optional = {"expire_minutes": expire_minutes, "confirm_days": confirm_days,
                    "auth_days": auth_days}  # fmt: skip
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._object("POST", "/api/v1/gateway/orders", body=body)

    def query_order(self, out_trade_no: str) -> dict[str, Any]:
        return self._object("GET", self._order(out_trade_no))

    def close_order(self, out_trade_no: str) -> dict[str, Any]:
        return self._object("POST", self._order(out_trade_no, "close"))

    def capture(
        self, out_trade_no: str, *, out_capture_no: str, amount: str, final: bool = False
    ) -> dict[str, Any]:
        """Capture part or all of an authorised order; `final` releases the rest."""
        body = {"out_capture_no": out_capture_no, "amount": amount, "final": final}
        return self._object("POST", self._order(out_trade_no, "captures"), body=body)

    def void(self, out_trade_no: str) -> dict[str, Any]:
        return self._object("POST", self._order(out_trade_no, "void"))

    def refund(
        self, out_trade_no: str, *, out_refund_no: str, amount: str, reason: str
    ) -> dict[str, Any]:
        body = {"out_refund_no": out_refund_no, "amount": amount, "reason": reason}
        return self._object("POST", self._order(out_trade_no, "refunds"), body=body)

    def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        return self._object("GET", f"/api/v1/gateway/refunds/{quote(out_refund_no, safe='')}")

    def notifications(self, trade_no: str) -> Any:
        """The notifications sent about an order, with their delivery attempts."""
        return self._json("GET", "/api/v1/gateway/notifications", params={"trade_no": trade_no})

    def resend_notification(self, notification_id: int | str) -> Any:
        path = f"/api/v1/gateway/notifications/{quote(str(notification_id), safe='')}/resend"
        return self._json("POST", path)

    def settlements(self, start: date, end: date) -> Any:
        params = {"from": start.isoformat(), "to": end.isoformat()}
        return self._json("GET", "/api/v1/gateway/settlements", params=params)

    def reconciliation(self, day: date) -> bytes:
        """The day's reconciliation file (CSV, UTF-8), exactly as the gateway signed it."""
        return self._call("GET", f"/api/v1/gateway/reconciliation/{day.isoformat()}").content

    # -- what the gateway sends on its own ------------------------------------------------
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """The notification POSTed to your notify URL, once its signature checks out
        (`SignatureError` otherwise). A notification may come more than once, and be re-sent
        hours later: act on each `id` once, and answer `success`."""
        given = httpx.Headers(headers)
        names = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SERIAL_HEADER)
        # Every attempt is signed when it is sent: an old one is a replay.
        self._check_signed(*(given.get(name) for name in names), body, now=self._clock())
        notice = cast(dict[str, Any], json.loads(body))
        self._for_me(notice.get("merchant_no"))
        return notice

    def verify_return(self, params: Mapping[str, str]) -> dict[str, Any]:
        """The result the gateway appended to your return URL, once its signature checks out.
        It tells the buyer's browser what happened; it is no proof of payment (only the
        notification and a query are)."""
        result = params.get("result") or ""
        try:
            body = _b64url_decode(result)
        except (ValueError, binascii.Error):
            raise SignatureError("the return's result is not base64url") from None
        fields = (params.get(name) for name in RETURN_FIELDS[1:])
        self._check_signed(*fields, body)
        result = cast(dict[str, Any], json.loads(body))
        self._for_me(result.get("merchant_no"))
        return result

    def _for_me(self, merchant_no: object) -> None:
        """The gateway signs for every merchant with one key: what it signed for another
        merchant, forwarded here, is refused."""
        if merchant_no != self.merchant_no:
            raise SignatureError("signed by the gateway, but for another merchant")

    # -- plumbing ---------------------------------------------------------------------------
    @staticmethod
    def _order(out_trade_no: str, action: str = "") -> str:
        path = f"/api/v1/gateway/orders/{quote(out_trade_no, safe='')}"
        return f"{path}/{action}" if action else path

    def _json(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        return self._call(method, path, body=body, params=params).json()

    def _object(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        return cast(dict[str, Any], self._json(method, path, body=body))

    def _call(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Sign and send one request; the answer once its signature checks out."""
        compact = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        content = b"" if body is None else compact.encode()
        request = self._http.build_request(
            method, self.base_url + path, params=params, content=content,
            headers={"Content-Type": "application/json"} if content else None,
        )  # fmt: skip
        timestamp, nonce = str(int(self._clock())), new_nonce()
        target = request.url.raw_path.decode("ascii")  # the path and query exactly as sent
        message = request_message(method, target, timestamp, nonce, content)
        request.headers.update({
            MERCHANT_HEADER: self.merchant_no, TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
            SIGNATURE_HEADER: self._signer.sign(message),
        })  # fmt: skip
        response = self._http.send(request)
        headers = response.headers
        self._check_signed(
            headers.get(TIMESTAMP_HEADER), headers.get(NONCE_HEADER),
            headers.get(SIGNATURE_HEADER), headers.get(SERIAL_HEADER), response.content,
            now=self._clock(),
        )  # fmt: skip
        if response.is_error:
            answer = response.json()
            raise GatewayError(
                response.status_code, answer.get("code", ""), answer.get("message", ""),
                answer.get("details", {}),
            )  # fmt: skip
        return response

    def _check_signed(
        self,
        timestamp: str | None,
        nonce: str | None,
        signature: str | None,
        serial: str | None,
        body: bytes,
        *,
        now: float | None = None,
    ) -> None:
        """SignatureError unless the gateway's key signed `body` with these fields (and, when
        `now` is given, the timestamp is within the window)."""
        if timestamp is None or nonce is None or signature is None or serial is None:
            raise SignatureError("not signed: a signature field is missing")
        if serial != self.gateway_serial:
            raise SignatureError(f"signed by key {serial}, not the gateway key you hold")
        message = response_message(timestamp, nonce, body)
        if not verify("RSA2", self._gateway_pem, message, signature):
            raise SignatureError("the signature does not verify with the gateway's key")
        if now is not None and not fresh(timestamp, now):
            raise SignatureError("the signed timestamp is more than 5 minutes from your clock")
