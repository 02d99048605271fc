"""A customer logs in: the login password first, then an SMS code or a token code.

Step one names the customer by resident ID number or mobile number and checks the password.
An unknown customer fails exactly like a wrong password, after hashing a decoy; the password
is verified before the writer (`Command.prepare`), which only counts the attempt. A right
password opens a login challenge that lives as long as an SMS code and says which second factor
step two asks for: the token's code from a customer whose token can confirm now (enrolled, not
locked), and then no SMS is sent; otherwise the SMS code, sent at once. A token holder without
the token at hand asks for the SMS code instead (`send_code`), within the limits every code
keeps. Step two checks a code against that challenge and opens the session. Both steps count
on the login's one lockout (see `security.service.check_login_factor`), and their errors never
say which factor was wrong.

Only after the right password does a login say why it cannot go on: no live enrolment for the
channel (NOT_ENROLLED), or, on mobile, a device not bound (DEVICE_NOT_BOUND). A mobile login
that names its unbound device binds it: the code texted for that device (`devices`) is its
second factor, so the first login on a new phone is password + SMS code, and binds the phone.
Every completed login notes its device (`devices.note_login`): a first login from a browser
the customer never used texts them an alert.
"""

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from ebank.core.channels import NAMES_ZH
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.customers.models import Kind
from ebank.enrolment import service as enrolment
from ebank.risk import service as risk
from ebank.risk.models import Context as RiskContext
from ebank.security import devices, sessions
from ebank.security import service as security
from ebank.security.service import LOGIN_PURPOSE, Checked, CodeIssued, Verdict
from ebank.security.tables import login_challenges


@dataclass(frozen=True, slots=True)
class Challenge:
    token: str  # handed to the caller once; only its hash is kept
    customer_id: int
    factors: tuple[str, ...]  # the second factors this customer can confirm with now
    factor: str  # the one step two asks for: "token" (no SMS sent), or "sms" (sent)
    expires_at: datetime
    binds_device: bool = False  # step two binds this (mobile) device

    @property
    def sms_sent(self) -> bool:
        return self.factor == "sms"


def _identify(conn: Connection, vault: Vault, login: object) -> int | None:
    """The person a login names: 18 characters are a resident ID, anything else a mobile.

    A mobile number several customers gave (a family's) names no one: they log in with their
    ID number. Enterprises log in as operators of corporate banking, not here. A birth date
    after today names no one either (none was registered), so the look-up needs no clock and
    may run before the writer.
    """
    if not isinstance(login, str):
        raise EbankError("INVALID_INPUT", reason="a login is a resident ID or mobile number")
    if len(login.strip()) == 18:
        found = customers.find_by_id_number(conn, vault, Kind.INDIVIDUAL, login, today=date.max)
        return None if found is None else found.id
    people = [c for c in customers.find_by_mobile(conn, vault, login) if c.kind == Kind.INDIVIDUAL]
    return people[0].id if len(people) == 1 else None


def _check_input(channel: object, device: object, device_name: object) -> None:
    if channel not in sessions.SESSION_CHANNELS:
        raise EbankError("INVALID_INPUT", reason=f"logins are for {sessions.SESSION_CHANNELS}")
    if not isinstance(device, str) or len(device) > 200 or not device.isprintable():
        raise EbankError("INVALID_INPUT", reason="a device id is at most 200 printable characters")
    if channel == "mobile" and not device:
        raise EbankError("INVALID_INPUT", reason="the mobile app sends its device id")
    if device_name is not None and channel != "mobile":
        raise EbankError("INVALID_INPUT", reason="only the mobile app binds its device")


def _admit(
    conn: Connection, vault: Vault, customer_id: int, channel: str, device: str,
    device_name: str | None,
) -> bool:  # fmt: skip
    """May the customer, whose password was right, log in here? Whether the login binds its
    device. Told only after the password, so that it says nothing about who exists."""
    if enrolment.enrolment_of(conn, customer_id, channel) is None:
        raise EbankError("NOT_ENROLLED")
    if channel != "mobile" or devices.is_bound(conn, vault, customer_id, device):
        return False
    if device_name is None:
        raise EbankError("DEVICE_NOT_BOUND")
    return True


def _binding(challenge_id: int) -> str:
    """What a login SMS code authorises: this challenge, and no other."""
    return security.binding_of(login=challenge_id)


def _text_code(
    tx: Tx, vault: Vault, customer_id: int, challenge_id: int, channel: str
) -> CodeIssued:
    """Text the customer the code of this login, within the limits every code keeps."""
    return security.issue_code(
        vault, customer_id=customer_id, purpose=LOGIN_PURPOSE, binding=_binding(challenge_id),
        message=f"登录{NAMES_ZH[channel]}",
    ).fn(tx)  # fmt: skip


def begin(
    vault: Vault, *, login: str, password: str, channel: str, device: str = "",
    device_name: str | None = None,
) -> Command[Checked[Challenge]]:  # fmt: skip
    """Step one: check the password; on success, a challenge for the second factor.

    A customer whose token can confirm now is asked for its code and texted nothing: an SMS
    would cost the bank, spend one of the customer's codes for the day, and leave them
    wondering which code to type. Anyone else is texted the code at once. On mobile, an
    unbound device named `device_name` is bound by this login: the SMS code for it is sent at
    once, and is the only second factor offered.
    """

    def named(conn: Connection) -> int | None:
        _check_input(channel, device, device_name)  # refused before any hashing
        return _identify(conn, vault, login)

    check = security.CredentialCheck("login_password", password, named)

    def run(tx: Tx) -> Checked[Challenge]:
        verdict = check.record(tx, settle=False, channel=channel)
        if not verdict.ok:
            return Checked(verdict)
        customer_id = check.customer_id
        assert customer_id is not None  # the password of no one never passes
        binds = _admit(tx.conn, vault, customer_id, channel, device, device_name)
        token = secrets.token_urlsafe(32)
        expires = tx.now + timedelta(seconds=get_settings().sms_code_ttl_seconds)
        challenge_id = tx.conn.execute(
            login_challenges.insert().values(
                token_hash=sessions.digest(token),
                customer_id=customer_id,
                channel=channel,
                device=sessions.digest(device) if device else "",
                created_at=tx.now,
                expires_at=expires,
                used_at=None,
            )
        ).inserted_primary_key[0]
        if binds:
            assert device_name is not None
            devices.begin_binding(
                vault, customer_id=customer_id, device=device, label=device_name
            ).fn(tx)
            return Checked(verdict, Challenge(token, customer_id, ("sms",), "sms", expires, True))
        if security.token_usable(tx.conn, customer_id, tx.now):
            return Checked(
                verdict, Challenge(token, customer_id, ("sms", "token"), "token", expires)
            )
        _text_code(tx, vault, customer_id, challenge_id, channel)
        return Checked(verdict, Challenge(token, customer_id, ("sms",), "sms", expires))

    return Command(run, prepare=check.prepare)


def _live(tx: Tx, challenge: object, device: object) -> Any:
    """The login challenge `challenge` names, locked, if it can still be completed: unused,
    not expired, and asked about from the device that began it; otherwise SESSION_EXPIRED
    (the login starts again)."""
    if not isinstance(challenge, str) or not 0 < len(challenge) <= 100:
        raise EbankError("SESSION_EXPIRED")
    query = select(login_challenges).where(
        login_challenges.c.token_hash == sessions.digest(challenge)
    )
    row = tx.conn.execute(query.with_for_update()).mappings().first()
    if row is None or row["used_at"] is not None or as_utc(row["expires_at"]) <= tx.now:
        raise EbankError("SESSION_EXPIRED")
    given = sessions.digest(device) if isinstance(device, str) and device else ""
    if row["device"] != given:
        raise EbankError("SESSION_EXPIRED")  # only the device that began it finishes it
    return row


def send_code(vault: Vault, *, challenge: str, device: str = "") -> Command[CodeIssued]:
    """Text the SMS code of a login under way: a token holder without the token at hand asks
    for it instead, and step two then takes it (the token's code still does too).

    Only the holder of a live challenge can ask, that is someone who typed the right password,
    and every send keeps the limits of any code (CODE_TOO_SOON, CODE_DAILY_LIMIT). Nothing is
    counted on the lockout: asking is not a guess. A login that binds a new phone has had its
    code, sent for that phone, and gets no other (DEVICE_NOT_BOUND, as its step two without
    the phone's name); a login whose enrolment ended meanwhile, NOT_ENROLLED.
    """

    def run(tx: Tx) -> CodeIssued:
        row = _live(tx, challenge, device)
        customer_id, channel = row["customer_id"], row["channel"]
        _check_input(channel, device, None)
        _admit(tx.conn, vault, customer_id, channel, device, None)
        return _text_code(tx, vault, customer_id, row["id"], channel)

    return Command(run)


def _bind_device(
    tx: Tx, vault: Vault, customer_id: int, device: str, name: str, factor: str, code: str
) -> Verdict:
    """The second factor of a login that binds its device: the SMS code sent for that device
    (a token proves nothing about the phone), counted on the login's lockout."""
    if factor != "sms":
        raise EbankError("INVALID_INPUT", reason="a new device is bound with the SMS code")
    bound = devices.confirm_binding(
        vault, customer_id=customer_id, device=device, label=name, code=code
    ).fn(tx)
    verdict = security.count_on_login(tx, customer_id, bound.verdict.ok)
    if bound.verdict.ok and not verdict.ok:
        security.require(verdict)  # a locked login binds nothing: raising undoes the binding
    return verdict


def complete(
    vault: Vault, *, challenge: str, factor: str, code: str, device: str = "",
    device_name: str | None = None, ip: str = "",
) -> Command[Checked[sessions.Started]]:  # fmt: skip
    """Step two: check the second factor against the challenge and open the session.

    The challenge is used once, from the device that began it, before it expires; otherwise
    the login has to start again (SESSION_EXPIRED). An unbound mobile device is bound here,
    with the SMS code sent for it and the same `device_name`. Risk control has the last word
    (`risk.admit`), and learns of the login from `ip`, the caller's address.
    """

    def run(tx: Tx) -> Checked[sessions.Started]:
        row = _live(tx, challenge, device)
        customer_id, channel = row["customer_id"], row["channel"]
        _check_input(channel, device, device_name)
        # Asked again: the enrolment may have ended, or the device been unbound, since step one.
        if _admit(tx.conn, vault, customer_id, channel, device, device_name):
            assert device_name is not None
            verdict = _bind_device(tx, vault, customer_id, device, device_name, factor, code)
        else:
            verdict = security.check_login_factor(
                vault, customer_id=customer_id, factor=factor, code=code,
                binding=_binding(row["id"]), channel=channel,
            ).fn(tx)  # fmt: skip
        if not verdict.ok:
            return Checked(verdict)
        tx.conn.execute(
            login_challenges.update()
            .where(login_challenges.c.id == row["id"])
            .values(used_at=tx.now)
        )
        seen_from = devices.device_hash(vault, device) if device else ""
        seen = RiskContext(
            event="login", customer_id=customer_id, channel=channel, device=seen_from, ip=ip,
            factor=factor,
        )  # fmt: skip
        # A block or review refuses (a login cannot wait); a step-up asks for the token.
        risk.admit(tx, seen, step_up=True)
        started = sessions.start(
            customer_id=customer_id, channel=channel, device_hash=seen_from
        ).fn(tx)
        if device:
            devices.note_login(tx, vault, customer_id=customer_id, channel=channel, device=device)
        risk.observe(tx, seen)
        return Checked(verdict, started)

    return Command(run)
