"""A customer logs in: the login password first, then an SMS code or a token code.

Step one names the customer by resident ID number or mobile number and checks the password.
An unknown customer fails exactly like a wrong password, after hashing a decoy. A right
password opens a login challenge that lives as long as an SMS code, says which second factors
the customer has, and sends the SMS code if asked. Step two checks a code against that
challenge and opens the session. Both steps count on the login's one lockout (see
`security.service.check_login_factor`), and their errors never say which factor was wrong.
"""

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.customers.models import Kind
from ebank.security import service as security
from ebank.security import sessions
from ebank.security.service import LOGIN_PURPOSE, Checked
from ebank.security.tables import credentials, login_challenges

_SMS_WORDING = {"online": "登录网上银行", "mobile": "登录手机银行"}


@dataclass(frozen=True, slots=True)
class Challenge:
    token: str  # handed to the caller once; only its hash is kept
    customer_id: int
    factors: tuple[str, ...]  # the second factors this customer has
    sms_sent: bool
    expires_at: datetime


def _identify(conn: Connection, vault: Vault, login: object, today: date) -> int | None:
    """The person a login names: 18 characters are a resident ID, anything else a mobile.

    A mobile number several customers gave (a family's) names no one: they log in with their
    ID number. Enterprises log in as operators of corporate banking, not here.
    """
    if not isinstance(login, str):
        raise EbankError("INVALID_INPUT", reason="a login is a resident ID or mobile number")
    if len(login.strip()) == 18:
        found = customers.find_by_id_number(conn, vault, Kind.INDIVIDUAL, login, today=today)
        return None if found is None else found.id
    people = [c for c in customers.find_by_mobile(conn, vault, login) if c.kind == Kind.INDIVIDUAL]
    return people[0].id if len(people) == 1 else None


def _binding(challenge_id: int) -> str:
    """What a login SMS code authorises: this challenge, and no other."""
    return security.binding_of(login=challenge_id)


def begin(
    vault: Vault, *, login: str, password: str, channel: str, device: str = "",
    send_sms: bool = False,
) -> Command[Checked[Challenge]]:  # fmt: skip
    """Step one: check the password; on success, a challenge for the second factor."""

    def run(tx: Tx) -> Checked[Challenge]:
        if channel not in sessions.SESSION_CHANNELS:
            raise EbankError("INVALID_INPUT", reason=f"logins are for {sessions.SESSION_CHANNELS}")
        if not isinstance(device, str) or len(device) > 200:
            raise EbankError("INVALID_INPUT", reason="a device id is at most 200 characters")
        if channel == "mobile" and not device:
            raise EbankError("INVALID_INPUT", reason="the mobile app sends its device id")
        customer_id = _identify(tx.conn, vault, login, tx.business_day)
        if customer_id is None:
            verdict = security.verify_secret(tx, credentials, None, password)
            audit.record(
                tx, actor="anonymous", action="credential.check.login_password",
                channel=channel, outcome="failed",
            )  # fmt: skip
            return Checked(verdict)
        verdict = security.check_secret(
            customer_id=customer_id, kind="login_password", secret=password, channel=channel,
            settle=False,
        ).fn(tx)  # fmt: skip
        if not verdict.ok:
            return Checked(verdict)
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
        has_token = tx.conn.execute(
            select(credentials.c.id).where(
                credentials.c.customer_id == customer_id, credentials.c.kind == "token"
            )
        ).first()
        if send_sms:
            security.issue_code(
                vault, customer_id=customer_id, purpose=LOGIN_PURPOSE,
                binding=_binding(challenge_id), message=_SMS_WORDING[channel],
            ).fn(tx)  # fmt: skip
        factors = ("sms", "token") if has_token else ("sms",)
        return Checked(verdict, Challenge(token, customer_id, factors, send_sms, expires))

    return Command(run)


def complete(
    vault: Vault, *, challenge: str, factor: str, code: str, device: str = ""
) -> Command[Checked[sessions.Started]]:
    """Step two: check the second factor against the challenge and open the session.

    The challenge is used once, from the device that began it, before it expires; otherwise
    the login has to start again (SESSION_EXPIRED).
    """

    def run(tx: Tx) -> Checked[sessions.Started]:
        if not isinstance(challenge, str) or not 0 < len(challenge) <= 100:
            raise EbankError("SESSION_EXPIRED")
        if not isinstance(device, str) or len(device) > 200:
            raise EbankError("INVALID_INPUT", reason="a device id is at most 200 characters")
        query = select(login_challenges).where(
            login_challenges.c.token_hash == sessions.digest(challenge)
        )
        row = tx.conn.execute(query.with_for_update()).mappings().first()
        if (
            row is None
            or row["used_at"] is not None
            or as_utc(row["expires_at"]) <= tx.now
            or row["device"] != (sessions.digest(device) if device else "")
        ):
            raise EbankError("SESSION_EXPIRED")
        verdict = security.check_login_factor(
            vault, customer_id=row["customer_id"], factor=factor, code=code,
            binding=_binding(row["id"]), channel=row["channel"],
        ).fn(tx)  # fmt: skip
        if not verdict.ok:
            return Checked(verdict)
        tx.conn.execute(
            login_challenges.update()
            .where(login_challenges.c.id == row["id"])
            .values(used_at=tx.now)
        )
        started = sessions.start(
            customer_id=row["customer_id"], channel=row["channel"], device=device
        ).fn(tx)
        return Checked(verdict, started)

    return Command(run)
