"""Checking who is asking: passwords and PINs, token codes (TOTP), one-time SMS codes.

Every check is a writer command that returns a `Verdict` instead of raising: a failure must be
recorded (it counts towards the lockout) and so must be committed. Callers turn a failed
verdict into an error with `require`, whose message never says which factor was wrong.

argon2id is slow by design, and the writer is the process's only writer: passwords and PINs are
verified, and new ones hashed, in the command's `prepare`, before it is queued (`SecretCheck`,
`NewSecret`). Only the counting happens in the writer.

Lockout (DOMAIN.md §3): after `auth_max_failures` consecutive failures a credential locks for
`auth_lock_minutes`; the lock after `auth_locks_before_permanent` temporary ones is permanent
until staff unlock it. The verdict of the last attempts before a lock warns how many are left,
and whether the coming lock is the permanent one.
"""

import functools
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Generic, TypeVar

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, Select, Table, bindparam, select

from ebank.core import audit
from ebank.core.clock import BUSINESS_TZ, as_utc, business_day_bounds
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Idempotency, Tx, fingerprint
from ebank.customers import service as customers
from ebank.notify import service as notify
from ebank.ops import approvals
from ebank.security import sessions
from ebank.security.tables import credentials, one_time_codes

KINDS = ("login_password", "transaction_pin", "token")
SECRET_KINDS = KINDS[:2]  # the ones the customer knows: argon2id hashes
SEED_PURPOSE = "security.token"
CODE_PURPOSE = "security.sms_code"
CHANGE_PURPOSE = "security.change_secret"  # the keyed hash a change's repeat is told by
ISSUER = "ebank"
WARN_WHEN_LEFT = 2  # a failure this close to a lock says so
T = TypeVar("T")
# argon2id for both. A login password at the library's recommended cost (about 0.2 s): people
# reuse passwords, so a stolen hash must be dear to try. A transaction PIN is one of a million:
# no cost a payment can afford (the recommended one is 55 core-hours for all of them) keeps a
# stolen hash from being tried against every PIN, so what protects a PIN is the lockout after
# a few failures and the database's own protection; it is hashed at a cost a payment can bear
# (about 0.1 ms), and a PIN hashed dearer before is renewed at its next good check.
HASHERS = {
    "login_password": PasswordHasher(),
    "transaction_pin": PasswordHasher(time_cost=1, memory_cost=256, parallelism=1),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    attempts_left: int | None = None  # before the next lock, when a failure counted
    locked_until: datetime | None = None
    locked_seconds: int | None = None  # from the check to `locked_until`, rounded up
    permanent: bool = False
    next_lock_permanent: bool = False


def require(verdict: Verdict) -> None:
    """Raise the customer-facing error for a failed verdict; never which factor failed."""
    if verdict.ok:
        return
    if verdict.permanent:
        raise EbankError("CREDENTIAL_LOCKED_PERMANENTLY")
    if verdict.locked_until is not None:
        raise EbankError(
            "CREDENTIAL_LOCKED",
            until=verdict.locked_until.isoformat(),
            seconds=verdict.locked_seconds,
        )
    left = verdict.attempts_left
    if left is not None and left <= WARN_WHEN_LEFT:
        code = "AUTH_FAILED_FINAL_WARNING" if verdict.next_lock_permanent else "AUTH_FAILED_WARNING"
        raise EbankError(code, attempts_left=left)
    raise EbankError("AUTH_FAILED")


def _seconds_until(now: datetime, moment: datetime) -> int:
    """Whole seconds from `now` to a later `moment`, rounded up: what an error refusing until
    then carries in `seconds` (the API's Retry-After); a caller who waits that long is never
    early."""
    return math.ceil((moment - now).total_seconds())


def _locked(tx: Tx, until: datetime) -> Verdict:
    """A verdict locked until `until`, with the seconds left by the transaction's clock: the
    answer is raised after the commit, where no clock of the check is at hand."""
    return Verdict(False, locked_until=until, locked_seconds=_seconds_until(tx.now, until))


@dataclass(frozen=True, slots=True)
class Checked(Generic[T]):
    """The answer of a command that checks a factor before it acts.

    A failed check must be committed (it counts towards the lockout), so such a command does
    not raise: it returns the failed verdict having done nothing else. `value()` raises the
    customer-facing error, or gives what the command did.
    """

    verdict: Verdict
    result: T | None = None

    def value(self) -> T:
        require(self.verdict)
        assert self.result is not None
        return self.result

    def replay_value(self) -> dict[str, Any] | None:
        """What the writer keeps for a repeat under the same idempotency key: the result of a
        passed check (which must then be JSON-native), nothing for a failed one."""
        return {"result": self.result} if self.verdict.ok else None

    @staticmethod
    def replayed(result: Any) -> "Checked[Any]":
        """Rebuild a kept answer (`Idempotency.result_type`)."""
        return Checked(Verdict(True), result)


def audited(tx: Tx, customer_id: int | None, what: str, channel: str, verdict: Verdict) -> Verdict:
    """Every failed check is in the audit chain, whatever made it fail; a check that named
    no customer (an unknown login or card) is anonymous."""
    if not verdict.ok:
        who = "anonymous" if customer_id is None else f"customer:{customer_id}"
        audit.record(
            tx,
            actor=who,
            action=f"credential.check.{what}",
            subject="" if customer_id is None else who,
            channel=channel,
            outcome="failed",
        )
    return verdict


@cache
def _decoy_hash(kind: str) -> str:
    return HASHERS[kind].hash(secrets.token_hex(16))


def _matches(stored: str | None, secret: object, kind: str) -> bool:
    """argon2id verification (at the cost the stored hash names); without a stored hash,
    against a decoy of the kind's cost, and failed: the time taken does not say who exists."""
    try:
        return (
            isinstance(secret, str)
            and HASHERS[kind].verify(stored or _decoy_hash(kind), secret)
            and stored is not None
        )
    except (VerificationError, InvalidHashError):
        return False


# -- secrets the customer knows ----------------------------------------------------------------
_RUNNING_DIGITS = ("0123456789", "9876543210")


def _check_new_secret(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise EbankError("INVALID_INPUT", reason="a password is text")
    if kind == "transaction_pin":
        if len(value) != 6 or not (value.isascii() and value.isdigit()):
            raise EbankError("INVALID_INPUT", reason="a transaction PIN is 6 digits")
        if len(set(value)) == 1 or any(value in run for run in _RUNNING_DIGITS):
            raise EbankError("INVALID_INPUT", reason="a PIN of one repeated or running digits")
        return value
    if not 8 <= len(value) <= 64 or not value.isprintable():
        raise EbankError("INVALID_INPUT", reason="a login password is 8-64 printable characters")
    if not (any(c.isalpha() for c in value) and any(c.isdigit() for c in value)):
        raise EbankError("INVALID_INPUT", reason="a login password mixes letters and digits")
    return value


def _store(tx: Tx, customer_id: int, kind: str, secret: str) -> None:
    """Set a credential afresh: a new secret clears its failures and locks."""
    existing = _credential(tx.conn, customer_id, kind)
    values = {
        "secret": secret,
        "last_step": None,
        "failures": 0,
        "locks": 0,
        "locked_until": None,
        "permanently_locked": False,
        "updated_at": tx.now,
    }
    if existing is None:
        tx.conn.execute(credentials.insert().values(customer_id=customer_id, kind=kind, **values))
    else:
        tx.conn.execute(
            credentials.update().where(credentials.c.id == existing["id"]).values(**values)
        )


class NewSecret:
    """A new login password or PIN, checked against the rules for its kind and hashed with
    argon2id. Staff passwords follow the login-password rules too.

    Pass `prepare` to the command (`Command.prepare`) so that the hashing happens before the
    writer; `hashed()` hashes on the spot when nobody prepared it.
    """

    def __init__(self, kind: str, secret: object) -> None:
        self.kind = kind
        self.secret = secret
        self._hash: str | None = None

    def prepare(self, engine: Engine) -> None:
        self.hashed()

    def hashed(self) -> str:
        if self._hash is None:
            if self.kind not in SECRET_KINDS:
                raise EbankError("INVALID_INPUT", reason="a secret is a login password or a PIN")
            self._hash = HASHERS[self.kind].hash(_check_new_secret(self.kind, self.secret))
        return self._hash


def save_secret(tx: Tx, new: NewSecret, *, customer_id: int, actor: str, channel: str) -> None:
    """Set a customer's login password or PIN in the caller's transaction, audited."""
    customers.holder(tx.conn, customer_id)
    _store(tx, customer_id, new.kind, new.hashed())
    audit.record(
        tx,
        actor=actor,
        action=f"credential.set.{new.kind}",
        subject=f"customer:{customer_id}",
        channel=channel,
    )


def set_secret(
    *, customer_id: int, kind: str, secret: str, actor: str, channel: str = "counter"
) -> Command[None]:
    """Set a customer's login password or transaction PIN (stored as an argon2id hash)."""
    new = NewSecret(kind, secret)

    def run(tx: Tx) -> None:
        save_secret(tx, new, customer_id=customer_id, actor=actor, channel=channel)

    return Command(run, prepare=new.prepare)


def change_secret(
    vault: Vault, *, customer_id: int, kind: str, current: str, new: str, channel: str,
    session_id: int | None = None, idempotency_key: str | None = None,
) -> Command[Checked[int]]:  # fmt: skip
    """The customer changes their own login password or PIN, proving the current one.

    The current one is checked as a login checks it (counted towards the lockout, a failure
    audited); a wrong one changes nothing. A new one equal to the current one, or breaking the
    rules for its kind, is refused before anything is checked. A new login password ends the
    customer's other sessions (all but `session_id`, the one asking): whoever else knew the
    old one is logged out. The customer is texted an alert. The answer: how many sessions
    ended.

    Once per `idempotency_key` (a form sent twice): a repeat gets the first answer and checks
    nothing, so the current secret it carries, checked against the new hash, counts no
    failure; the same key with other secrets is IDEMPOTENCY_CONFLICT. The request is told by
    a keyed hash of the secrets (the vault's key), never by the secrets or a plain hash.
    """
    if kind not in SECRET_KINDS:
        raise EbankError("INVALID_INPUT", reason="a secret is a login password or a PIN")
    if isinstance(new, str) and new == current:
        raise EbankError("SECRET_UNCHANGED")
    fresh = NewSecret(kind, new)
    check = CredentialCheck(kind, current, lambda conn: customer_id)

    def prepare(engine: Engine) -> None:
        fresh.prepare(engine)  # a new secret breaking the rules costs no attempt
        check.prepare(engine)

    def run(tx: Tx) -> Checked[int]:
        verdict = check.record(tx, channel=channel)
        if not verdict.ok:
            return Checked(verdict)
        actor = f"customer:{customer_id}"
        save_secret(tx, fresh, customer_id=customer_id, actor=actor, channel=channel)
        ended = 0
        if kind == "login_password":
            ended = sessions.end_all(
                tx, reason="password", actor=actor, channel=channel, customer_id=customer_id,
                keep=session_id,
            )  # fmt: skip
        at = tx.now.astimezone(BUSINESS_TZ)
        what = "网上银行登录密码" if kind == "login_password" else "交易密码"
        notify.send_sms(
            tx, vault, customer_id=customer_id, kind="alert",
            body=f"【ebank】您的{what}已于{at.month}月{at.day}日{at:%H:%M}修改。"
            "如非本人操作，请立即致电本行客服。",
        )  # fmt: skip
        return Checked(verdict, ended)

    once = None
    if idempotency_key is not None:
        asked = fingerprint(op="credential.change", kind=kind, current=current, new=new)
        once = Idempotency(
            f"customer:{customer_id}", idempotency_key,
            vault.lookup_hash(asked, purpose=CHANGE_PURPOSE), Checked.replayed,
        )  # fmt: skip
    return Command(run, prepare=prepare, idempotency=once)


def holders_of(conn: Connection, kind: str) -> set[int]:
    """The customers who hold a credential of this kind."""
    query = select(credentials.c.customer_id).where(credentials.c.kind == kind)
    return set(conn.execute(query).scalars())


def _credential(conn: Connection, customer_id: int, kind: str, *, lock: bool = True) -> Any:
    if type(customer_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a customer id is an integer")
    # Locked: concurrent attempts on one credential count one after another.
    query = _CREDENTIAL_LOCKED if lock else _CREDENTIAL
    return conn.execute(query, {"customer_id": customer_id, "kind": kind}).mappings().first()


_CREDENTIAL = select(credentials).where(
    credentials.c.customer_id == bindparam("customer_id"), credentials.c.kind == bindparam("kind")
)
_CREDENTIAL_LOCKED = _CREDENTIAL.with_for_update()


@functools.cache
def _counting(table: Table) -> Any:
    """The update of a credential-like row's counting columns, built once per table."""
    return table.update().where(table.c.id == bindparam("row_id"))


def _attempt(
    tx: Tx, row: Any, ok: bool, *, table: Table = credentials, settle: bool = True, **extra: Any
) -> Verdict:
    """Record an attempt on a credential and say what it means for the customer.

    `table` is `credentials` or another table with its counting columns (staff). With
    `settle=False` a success leaves the run of failures as it is: the first of two factors.
    """
    settings = get_settings()
    if row["permanently_locked"]:
        return Verdict(False, permanent=True)
    locked_until = row["locked_until"] and as_utc(row["locked_until"])
    if locked_until is not None and locked_until > tx.now:
        return _locked(tx, locked_until)
    if ok and not settle:
        return Verdict(True)

    def counted(**values: Any) -> None:
        tx.conn.execute(_counting(table), {**values, "updated_at": tx.now, "row_id": row["id"]})

    if ok:
        # Success ends the run of failures, and with it the way to a permanent lock.
        counted(failures=0, locks=0, locked_until=None, **extra)
        return Verdict(True)
    failures = row["failures"] + 1
    next_is_permanent = row["locks"] + 1 >= settings.auth_locks_before_permanent
    if failures < settings.auth_max_failures:
        counted(failures=failures)
        return Verdict(
            False,
            attempts_left=settings.auth_max_failures - failures,
            next_lock_permanent=next_is_permanent,
        )
    if next_is_permanent:
        counted(failures=0, locks=row["locks"] + 1, permanently_locked=True)
        return Verdict(False, permanent=True)
    until = tx.now + timedelta(minutes=settings.auth_lock_minutes)
    counted(failures=0, locks=row["locks"] + 1, locked_until=until)
    return _locked(tx, until)


Load = Callable[[Connection, bool], Any]  # (conn, lock) -> a credential-like row, or None


class SecretCheck:
    """A password or PIN checked in two halves, so that argon2id never runs in the writer.

    `load(conn, lock)` reads the credential-like row (a customer's credential, a staff row),
    None when there is none; `table` holds its counting columns. Pass `prepare` to the command
    (`Command.prepare`): it reads the row on its own connection, unlocked, and verifies the
    secret, against a decoy when there is no row so that the time taken does not say who
    exists. `record`, in the writer, reads the row again, locked, and counts the attempt. It
    verifies there itself only if the stored hash changed meanwhile (the secret was reset) or
    `prepare` never ran (a command composed into another's `fn`): correct, just slow.
    After `record`, `row` is the row it counted on.
    """

    def __init__(
        self, secret: object, load: Load, *, table: Table = credentials,
        hashed_as: str = "login_password",
    ) -> None:  # fmt: skip
        self.secret = secret
        self.load = load
        self.table = table
        self.hashed_as = hashed_as  # the HASHERS kind: login_password (staff too) or the PIN
        self.row: Any = None
        self._verified: tuple[str | None, bool] | None = None  # (the hash, whether it matched)

    def prepare(self, engine: Engine) -> None:
        with engine.connect() as conn:
            row = self.load(conn, False)
        stored = None if row is None else row["secret"]
        self._verified = (stored, _matches(stored, self.secret, self.hashed_as))

    def record(self, tx: Tx, *, settle: bool = True) -> Verdict:
        """Count the attempt; `settle=False` for the first of two factors (see `_attempt`)."""
        self.row = row = self.load(tx.conn, True)
        stored = None if row is None else row["secret"]
        if self._verified is not None and self._verified[0] == stored:
            ok = self._verified[1]
        else:
            ok = _matches(stored, self.secret, self.hashed_as)
        if row is None:
            return Verdict(False)
        renewed = {}
        hasher = HASHERS[self.hashed_as]
        if ok and self.hashed_as == "transaction_pin" and hasher.check_needs_rehash(stored):
            renewed["secret"] = hasher.hash(self.secret)  # cheap enough for the writer
        return _attempt(tx, row, ok, table=self.table, settle=settle, **renewed)


class CredentialCheck(SecretCheck):
    """A customer's login password or PIN; `customer_of(conn)` names the customer (None when
    the login or card names nobody). `record` audits a failure too."""

    def __init__(
        self, kind: str, secret: object, customer_of: Callable[[Connection], int | None]
    ) -> None:
        super().__init__(secret, self._load, hashed_as=kind if kind in SECRET_KINDS else KINDS[0])
        self.kind = kind
        self.customer_of = customer_of
        self.customer_id: int | None = None  # whom the last load named

    def _load(self, conn: Connection, lock: bool) -> Any:
        self.customer_id = self.customer_of(conn)
        if self.customer_id is None or self.kind not in SECRET_KINDS:
            return None
        return _credential(conn, self.customer_id, self.kind, lock=lock)

    def record(self, tx: Tx, *, settle: bool = True, channel: str = "online") -> Verdict:
        verdict = super().record(tx, settle=settle)
        return audited(tx, self.customer_id, self.kind, channel, verdict)


def check_secret(
    *, customer_id: int, kind: str, secret: str, channel: str = "online", settle: bool = True
) -> Command[Verdict]:
    """Check a login password or transaction PIN; the attempt counts towards the lockout.

    `settle=False` for the first of two factors: a success does not yet end a run of failures.
    """
    check = CredentialCheck(kind, secret, lambda conn: customer_id)

    def run(tx: Tx) -> Verdict:
        return check.record(tx, settle=settle, channel=channel)

    return Command(run, prepare=check.prepare)


# -- the token (TOTP, RFC 6238) ------------------------------------------------------------------
def new_token(vault: Vault, *, purpose: str, label: str) -> tuple[str, str]:
    """A fresh token seed: (the seed sealed for `purpose`, the otpauth:// URI for the
    authenticator app's QR code). Customers' and staff's tokens are made alike."""
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=ISSUER)
    return vault.encrypt(secret, purpose=purpose), uri


def count_token(
    tx: Tx, row: Any, seed: str | None, code: str, *, table: Table = credentials
) -> Verdict:
    """Check a token code against `seed` and count the attempt on `row`'s lockout.

    The one token check, for customers' tokens and staff's: the current 30-second step or one
    either side, each step once. `row` has the counting columns of `table` and `last_step`,
    the step last accepted: a code already used (or an older one) is a replay, refused and
    counted. Without a seed every code fails, and counts.
    """
    matched = None
    well_formed = isinstance(code, str) and len(code) == 6 and code.isascii() and code.isdigit()
    if seed is not None and well_formed:
        totp = pyotp.TOTP(seed)
        now_step = int(tx.now.timestamp()) // totp.interval
        for step in (now_step - 1, now_step, now_step + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                matched = step
    fresh = matched is not None and (row["last_step"] is None or matched > row["last_step"])
    return _attempt(tx, row, fresh, table=table, **({"last_step": matched} if fresh else {}))


def enroll_token(
    vault: Vault, *, customer_id: int, label: str, actor: str, channel: str = "counter"
) -> Command[str]:
    """Give the customer a new token secret; returns the otpauth:// URI for the app's QR code.

    Enrolling again replaces the old token (a lost phone), which stops working at once.
    """

    def run(tx: Tx) -> str:
        customers.holder(tx.conn, customer_id)
        sealed, uri = new_token(vault, purpose=SEED_PURPOSE, label=label)
        _store(tx, customer_id, "token", sealed)
        audit.record(
            tx,
            actor=actor,
            action="credential.set.token",
            subject=f"customer:{customer_id}",
            channel=channel,
        )
        return uri

    return Command(run)


def token_usable(conn: Connection, customer_id: int, now: datetime) -> bool:
    """Whether the customer holds a token that can confirm now: enrolled and not locked. A
    locked token fails whatever code it is given, so nothing should ask for one."""
    row = _credential(conn, customer_id, "token", lock=False)
    if row is None or row["permanently_locked"]:
        return False
    return row["locked_until"] is None or as_utc(row["locked_until"]) <= now


def check_token(
    vault: Vault, *, customer_id: int, code: str, channel: str = "online"
) -> Command[Verdict]:
    """Check a customer's token code (`count_token`), counted on the token's lockout."""

    def run(tx: Tx) -> Verdict:
        row = _credential(tx.conn, customer_id, "token")
        if row is None:
            return audited(tx, customer_id, "token", channel, Verdict(False))
        seed = vault.decrypt(row["secret"], purpose=SEED_PURPOSE)
        return audited(tx, customer_id, "token", channel, count_token(tx, row, seed, code))

    return Command(run)


# -- one-time SMS codes, bound to what they authorise --------------------------------------------
def binding_of(**what: Any) -> str:
    """The fingerprint of what a code authorises, e.g. amount="1234.50", payee="6217...".

    A code issued for one binding does not work for any other: change the amount or the payee
    and it is refused (dynamic linking).
    """
    blob = json.dumps(what, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CodeIssued:
    id: int
    expires_at: datetime


def codes_since(customer_id: int, since: datetime) -> Select[Any]:
    """The customer's codes issued from `since` on: (purpose, created_at, attempts).

    Read through ix_one_time_codes_customer_purpose by the customer alone: a customer holds
    a week's codes at most (the jobs purge spent ones 7 days on), a few dozen rows.
    """
    return select(
        one_time_codes.c.purpose, one_time_codes.c.created_at, one_time_codes.c.attempts
    ).where(one_time_codes.c.customer_id == customer_id, one_time_codes.c.created_at >= since)


def _wrong_guesses(rows: list[Any]) -> int:
    return sum(row.attempts for row in rows)  # a code's attempts are its wrong guesses


def _may_send(tx: Tx, customer_id: int, purpose: str) -> None:
    """Refuse a code past the business day's caps (codes, and wrong guesses at them: no code
    can pass once those are spent), or sooner than the interval after the last one for the
    same purpose; either refusal says in `seconds` when a code could be sent, by the
    transaction's clock. The caller holds the customer's row: concurrent sends count one by
    one."""
    settings = get_settings()
    start, end = business_day_bounds(tx.business_day)
    interval = timedelta(seconds=settings.sms_code_resend_seconds)
    rows = list(tx.conn.execute(codes_since(customer_id, min(start, tx.now - interval))))
    today = [row for row in rows if as_utc(row.created_at) >= start]
    if (
        len(today) >= settings.sms_codes_per_day
        or _wrong_guesses(today) >= settings.sms_code_failures_per_day
    ):
        raise EbankError("CODE_DAILY_LIMIT", seconds=_seconds_until(tx.now, end))
    last = max((as_utc(r.created_at) for r in rows if r.purpose == purpose), default=None)
    if last is not None and tx.now - last < interval:
        raise EbankError("CODE_TOO_SOON", seconds=_seconds_until(tx.now, last + interval))


def issue_code(
    vault: Vault, *, customer_id: int, purpose: str, binding: str, message: str
) -> Command[CodeIssued]:
    """Send the customer a 6-digit code by SMS for one purpose and binding.

    `message` says what the code authorises ("转账 ¥1,234.50 至 6217****0001"): the customer
    must see it beside the code. The code is stored only as a keyed hash, and the SMS body
    travels sealed through the outbox. A new code supersedes the customer's earlier unused
    codes for the same purpose. Every sender comes here, so the limits hold for all: no code
    for a purpose within `sms_code_resend_seconds` of the last (CODE_TOO_SOON), at most
    `sms_codes_per_day` a business day, none once the day's wrong guesses are spent
    (CODE_DAILY_LIMIT).
    """

    def run(tx: Tx) -> CodeIssued:
        customers.holder(tx.conn, customer_id, lock=True)  # the limits count one send at a time
        if not purpose or len(purpose) > 32 or not purpose.isidentifier():
            raise EbankError("INVALID_INPUT", reason="a code purpose is a short identifier")
        if not isinstance(message, str) or not 0 < len(message) <= 120:
            raise EbankError("INVALID_INPUT", reason="an SMS message is 1-120 characters")
        _may_send(tx, customer_id, purpose)
        tx.conn.execute(
            one_time_codes.update()
            .where(
                one_time_codes.c.customer_id == customer_id,
                one_time_codes.c.purpose == purpose,
                one_time_codes.c.used_at.is_(None),
            )
            .values(superseded=True)
        )
        code = f"{secrets.randbelow(10**6):06d}"
        row_id = tx.new_id("one_time_codes")
        expires = tx.now + timedelta(seconds=get_settings().sms_code_ttl_seconds)
        tx.conn.execute(
            one_time_codes.insert().values(
                id=row_id,
                customer_id=customer_id,
                purpose=purpose,
                binding=binding,
                code_hash=vault.lookup_hash(f"{row_id}:{code}", purpose=CODE_PURPOSE),
                expires_at=expires,
                attempts=0,
                used_at=None,
                superseded=False,
                created_at=tx.now,
            )
        )
        minutes = get_settings().sms_code_ttl_seconds // 60
        body = f"【ebank】验证码 {code}，用于{message}，{minutes}分钟内有效。切勿告知他人。"
        notify.send_sms(
            tx, vault, customer_id=customer_id, kind="code", body=body, expires_at=expires
        )
        return CodeIssued(row_id, expires)

    return Command(run)


def check_code(
    vault: Vault, *, customer_id: int, purpose: str, binding: str, code: str
) -> Command[Verdict]:
    """Accept a code once, for the purpose and binding it was issued for, before it expires.

    Each code takes `auth_max_failures` wrong tries, then it is spent; and the wrong tries at
    all the codes the customer was sent this business day count together: once there have
    been `sms_code_failures_per_day`, no code passes until the next business day (a verdict
    locked until then). So the daily cap on codes caps the guesses too.
    """

    def run(tx: Tx) -> Verdict:
        customers.holder(tx.conn, customer_id, lock=True)  # the day's guesses, one at a time
        start, end = business_day_bounds(tx.business_day)
        today = list(tx.conn.execute(codes_since(customer_id, start)))
        day_left = get_settings().sms_code_failures_per_day - _wrong_guesses(today)
        if day_left <= 0:
            return audited(tx, customer_id, "sms_code", "sms", _locked(tx, end))
        row = (
            tx.conn.execute(
                select(one_time_codes)
                .where(
                    one_time_codes.c.customer_id == customer_id,
                    one_time_codes.c.purpose == purpose,
                    one_time_codes.c.used_at.is_(None),
                    one_time_codes.c.superseded.is_(False),
                )
                .order_by(one_time_codes.c.id.desc())
                .limit(1)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        limit = get_settings().auth_max_failures
        if row is None or as_utc(row["expires_at"]) <= tx.now or row["attempts"] >= limit:
            return audited(tx, customer_id, "sms_code", "sms", Verdict(False))
        expected = vault.lookup_hash(f"{row['id']}:{code}", purpose=CODE_PURPOSE)
        ok = (
            isinstance(code, str)
            and hmac.compare_digest(expected, row["code_hash"])
            and hmac.compare_digest(binding, row["binding"])
        )
        where = one_time_codes.update().where(one_time_codes.c.id == row["id"])
        if ok:
            tx.conn.execute(where.values(used_at=tx.now))
            return Verdict(True)
        tx.conn.execute(where.values(attempts=row["attempts"] + 1))
        left = min(limit - row["attempts"], day_left) - 1
        verdict = Verdict(False, attempts_left=max(left, 0))
        return audited(tx, customer_id, "sms_code", "sms", verdict)

    return Command(run)


# -- the second factor of a customer's login ----------------------------------------------------
LOGIN_PURPOSE = "login"  # of the SMS codes that log in
LOGIN_FACTORS = ("sms", "token")


def check_login_factor(
    vault: Vault, *, customer_id: int, factor: str, code: str, binding: str, channel: str
) -> Command[Verdict]:
    """Check a login's second factor: the SMS code issued for `binding`, or a token code.

    A login locks as a whole: a wrong code also counts on the login password, whose run of
    failures ends only once both factors have passed (its check used `settle=False`).
    Otherwise every right password would reset the count, and codes could be guessed forever.
    """

    def run(tx: Tx) -> Verdict:
        if factor == "sms":
            passed = check_code(
                vault, customer_id=customer_id, purpose=LOGIN_PURPOSE, binding=binding, code=code
            ).fn(tx)
        elif factor == "token":
            passed = check_token(vault, customer_id=customer_id, code=code, channel=channel).fn(tx)
        else:
            raise EbankError("INVALID_INPUT", reason=f"a second factor is one of {LOGIN_FACTORS}")
        return count_on_login(tx, customer_id, passed.ok)

    return Command(run)


def count_on_login(tx: Tx, customer_id: int, passed: bool) -> Verdict:
    """Count a login's second factor (however it was checked) on the login password."""
    login = _credential(tx.conn, customer_id, "login_password")
    return Verdict(False) if login is None else _attempt(tx, login, passed)


# -- staff: unlock a credential, under maker-checker ------------------------------------------
def _unlock_subject(tx: Tx, params: dict[str, Any]) -> str:
    if set(params) != {"customer", "kind"} or params["kind"] not in KINDS:
        raise EbankError("INVALID_INPUT", reason="an unlock names a customer and a credential")
    if _credential(tx.conn, params["customer"], params["kind"]) is None:
        raise EbankError("INVALID_INPUT", reason="the customer has no such credential")
    return f"customer:{params['customer']}"


def _unlock(tx: Tx, params: dict[str, Any], checker: str) -> None:
    """Clear failures and locks, after the customer proved who they are at the counter."""
    tx.conn.execute(
        credentials.update()
        .where(
            credentials.c.customer_id == params["customer"], credentials.c.kind == params["kind"]
        )
        .values(failures=0, locks=0, locked_until=None, permanently_locked=False, updated_at=tx.now)
    )


approvals.register("credential.unlock", _unlock, subject=_unlock_subject)
