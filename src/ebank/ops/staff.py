"""Bank staff: who they are, which roles they hold, how they log in to the console, and how
admins look after their logins.

A console login is two steps, like a customer's (`security.login`): the username and password
(argon2id, verified before the writer) open a short-lived challenge; a token code (TOTP, from
the authenticator app enrolled when the login was made) against that challenge opens a
console session (`security.sessions`), the one mechanism customers use too. Staff have no SMS
here. The steps are `security.token_login`'s, which enterprises' operators log in with too;
both count on the staff row with the code that counts customers' attempts
(`security.service`), so the lockout is the same: locked after 5 failures, for good after the
3rd lock, and a wrong code counts like a wrong password. No answer says which factor failed.

Admins disable and enable logins (disabling ends the login's open sessions at once), unlock
them, give them a new token and change their roles. Each act is audited, none needs a second
person, and nobody does any of them to their own login.

Least privilege: counter business belongs to tellers and supervisors; proposing a sensitive
action to them and risk officers; deciding one (the checker) to supervisors and risk
officers; admins manage staff and do no customer business.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx
from ebank.ops.tables import staff
from ebank.security import service as security
from ebank.security import sessions
from ebank.security.service import Checked
from ebank.security.token_login import (
    USERNAME_RULE,
    LoginChallenge,
    TokenLogin,
    canonical_username,
)

ROLES = ("teller", "supervisor", "risk", "admin")
COUNTER = ("teller", "supervisor")  # register customers, open accounts, issue cards, secrets
LOOKUP = ("teller", "supervisor", "risk")  # find customers, see what they hold
MAKERS = ("teller", "supervisor", "risk")  # propose a maker-checker action
CHECKERS = ("supervisor", "risk")  # approve or reject one
ADMINS = ("admin",)  # look after staff logins
SEED_PURPOSE = "staff.token"  # staff's token seeds are sealed apart from customers'


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    username: str
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    has_token: bool
    disabled: bool
    locked_until: datetime | None  # as stored: a time past is no lock
    permanently_locked: bool

    @property
    def actor(self) -> str:
        """How audit records and approvals name them."""
        return f"staff:{self.id}"


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A login with a new token. The URI (with the seed) is shown this once; the bank keeps
    the seed sealed."""

    member: StaffMember
    otpauth_uri: str


def _roles(value: object) -> tuple[str, ...]:
    if not isinstance(value, tuple | list) or not value or any(r not in ROLES for r in value):
        raise EbankError("INVALID_INPUT", reason=f"roles are one or more of {ROLES}")
    return tuple(sorted(set(value)))


def _new_token(vault: Vault, username: str) -> tuple[str, str]:
    """(the sealed seed, the otpauth:// URI) of a new token for this login."""
    return security.new_token(vault, purpose=SEED_PURPOSE, label=f"staff-{username}")


def add(
    vault: Vault, *, username: str, name: str, roles: tuple[str, ...], password: str,
    actor: str, channel: str = "cli",
) -> Command[Enrolled]:  # fmt: skip
    """Give someone a console login with these roles, and the token they log in with."""
    new = security.NewSecret("login_password", password)

    def run(tx: Tx) -> Enrolled:
        canonical = canonical_username(username)
        if canonical is None:
            raise EbankError("INVALID_INPUT", reason=USERNAME_RULE)
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
            raise EbankError("INVALID_INPUT", reason="a name is 1-100 characters")
        if not name.strip().isprintable():
            raise EbankError("INVALID_INPUT", reason="a name is printable text")
        held = _roles(roles)
        secret = new.hashed()
        if tx.conn.execute(select(staff.c.id).where(staff.c.username == canonical)).first():
            raise EbankError("STAFF_EXISTS", username=canonical)
        sealed, uri = _new_token(vault, canonical)
        row = {
            "username": canonical,
            "name": name.strip(),
            "roles": ",".join(held),
            "secret": secret,
            "failures": 0,
            "locks": 0,
            "locked_until": None,
            "permanently_locked": False,
            "updated_at": tx.now,
            "created_at": tx.now,
            "token_seed": sealed,
            "last_step": None,
            "challenge_hash": None,
            "challenge_expires_at": None,
            "disabled_at": None,
        }
        staff_id = tx.conn.execute(staff.insert().values(row)).inserted_primary_key[0]
        audit.record(
            tx, actor=actor, action="staff.add", subject=f"staff:{staff_id}", channel=channel,
            detail={"username": canonical, "roles": list(held)},
        )  # fmt: skip
        return Enrolled(_view({**row, "id": staff_id}), uri)

    return Command(run, prepare=new.prepare)


def _view(row: Any) -> StaffMember:
    return StaffMember(
        row["id"], row["username"], row["name"], tuple(row["roles"].split(",")),
        as_utc(row["created_at"]), row["token_seed"] is not None,
        row["disabled_at"] is not None, row["locked_until"] and as_utc(row["locked_until"]),
        row["permanently_locked"],
    )  # fmt: skip


def get(conn: Connection, staff_id: int) -> StaffMember:
    """A member of staff by id (a console session names one; staff rows are never deleted)."""
    return _view(conn.execute(select(staff).where(staff.c.id == staff_id)).mappings().one())


def find(conn: Connection, username: str) -> StaffMember | None:
    canonical = canonical_username(username)
    if canonical is None:
        return None
    row = conn.execute(select(staff).where(staff.c.username == canonical)).mappings().first()
    return None if row is None else _view(row)


def everyone(conn: Connection) -> list[StaffMember]:
    """Every staff login, in the order they were made (for admins)."""
    return [_view(row) for row in conn.execute(select(staff).order_by(staff.c.id)).mappings()]


# -- logging in ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StaffLogin:
    member: StaffMember
    started: sessions.Started


def _open_session(tx: Tx, row: Any) -> StaffLogin:
    started = sessions.start(staff_id=row["id"], channel="console").fn(tx)
    return StaffLogin(get(tx.conn, row["id"]), started)


_LOGIN = TokenLogin(
    staff, holder="staff", channel="console", seed_purpose=SEED_PURPOSE,
    open_session=_open_session,
)  # fmt: skip


def begin_login(*, username: str, password: str) -> Command[Checked[LoginChallenge]]:
    """Step one: check the password; on success, a challenge for the token code
    (`TokenLogin.begin`)."""
    canonical = canonical_username(username)

    def load(conn: Connection, lock: bool) -> Any:
        if canonical is None:
            return None
        query = select(staff).where(staff.c.username == canonical)
        return conn.execute(query.with_for_update() if lock else query).mappings().first()

    return _LOGIN.begin(load, password)


def complete_login(vault: Vault, *, challenge: str, code: str) -> Command[Checked[StaffLogin]]:
    """Step two: the token code against the challenge; on success, a console session
    (`TokenLogin.complete`)."""
    return _LOGIN.complete(vault, challenge=challenge, code=code)


# -- administration (admins, or the `ebank staff` command as "cli") ----------------------------
def _administered(tx: Tx, staff_id: int, actor: str) -> Any:
    """The staff row an admin acts on, locked; never the admin's own."""
    if type(staff_id) is not int:
        raise EbankError("STAFF_NOT_FOUND")
    if actor == f"staff:{staff_id}":
        raise EbankError("STAFF_OWN_LOGIN")
    query = select(staff).where(staff.c.id == staff_id).with_for_update()
    row = tx.conn.execute(query).mappings().first()
    if row is None:
        raise EbankError("STAFF_NOT_FOUND")
    return row


def _apply(
    tx: Tx, row: Any, action: str, actor: str, channel: str, values: dict[str, Any],
    **detail: Any,
) -> StaffMember:  # fmt: skip
    tx.conn.execute(staff.update().where(staff.c.id == row["id"]).values(values))
    audit.record(
        tx, actor=actor, action=f"staff.{action}", subject=f"staff:{row['id']}",
        channel=channel, detail=detail,
    )  # fmt: skip
    return _view({**row, **values})


def disable(*, staff_id: int, actor: str, channel: str = "console") -> Command[StaffMember]:
    """Stop a login: it cannot log in, and its open console sessions end at once."""

    def run(tx: Tx) -> StaffMember:
        row = _administered(tx, staff_id, actor)
        ended = sessions.end_all(
            tx, staff_id=staff_id, reason="disabled", actor=actor, channel=channel
        )
        values = {"disabled_at": row["disabled_at"] or tx.now}
        return _apply(tx, row, "disable", actor, channel, values, sessions_ended=ended)

    return Command(run)


def enable(*, staff_id: int, actor: str, channel: str = "console") -> Command[StaffMember]:
    """Let a disabled login log in again (with its password and token, as before)."""

    def run(tx: Tx) -> StaffMember:
        row = _administered(tx, staff_id, actor)
        return _apply(tx, row, "enable", actor, channel, {"disabled_at": None})

    return Command(run)


def unlock(*, staff_id: int, actor: str, channel: str = "console") -> Command[StaffMember]:
    """Clear a login's failures and locks, temporary or permanent, once the admin knows it is
    its owner asking."""

    def run(tx: Tx) -> StaffMember:
        row = _administered(tx, staff_id, actor)
        until = row["locked_until"] and as_utc(row["locked_until"])
        if row["permanently_locked"]:
            was = "permanent"
        else:
            was = "temporary" if until is not None and until > tx.now else "none"
        values = {
            "failures": 0, "locks": 0, "locked_until": None, "permanently_locked": False,
            "updated_at": tx.now,
        }  # fmt: skip
        return _apply(tx, row, "unlock", actor, channel, values, was_locked=was)

    return Command(run)


def reset_token(
    vault: Vault, *, staff_id: int, actor: str, channel: str = "console"
) -> Command[Enrolled]:
    """A new token for a login (a lost phone, or a login made before tokens): the old one
    stops working at once."""

    def run(tx: Tx) -> Enrolled:
        row = _administered(tx, staff_id, actor)
        sealed, uri = _new_token(vault, row["username"])
        values = {"token_seed": sealed, "last_step": None}
        return Enrolled(_apply(tx, row, "reset_token", actor, channel, values), uri)

    return Command(run)


def set_roles(
    *, staff_id: int, roles: tuple[str, ...], actor: str, channel: str = "console"
) -> Command[StaffMember]:
    """Replace a login's roles; the audit record keeps the old and the new."""

    def run(tx: Tx) -> StaffMember:
        held = _roles(roles)
        row = _administered(tx, staff_id, actor)
        values = {"roles": ",".join(held)}
        return _apply(
            tx, row, "set_roles", actor, channel, values, before=row["roles"].split(","),
            after=list(held),
        )  # fmt: skip

    return Command(run)
