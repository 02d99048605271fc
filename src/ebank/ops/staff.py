"""Bank staff: who they are, which roles they hold, and how they log in to the console.

A member of staff logs in with a username and a password (argon2id). The attempts count on
the staff row with the very code that counts customers' (`security.service.SecretCheck`),
so the lockout is the same: locked after 5 failures, for good after the 3rd lock. Success
opens a console session (`security.sessions`), the one mechanism customers use too.

Least privilege: counter business belongs to tellers and supervisors; proposing a sensitive
action to them and risk officers; deciding one (the checker) to supervisors and risk
officers; admins manage staff and do no customer business.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx
from ebank.ops.tables import staff
from ebank.security import service as security
from ebank.security import sessions
from ebank.security.service import Checked

ROLES = ("teller", "supervisor", "risk", "admin")
COUNTER = ("teller", "supervisor")  # register customers, open accounts, issue cards, secrets
LOOKUP = ("teller", "supervisor", "risk")  # find customers, see what they hold
MAKERS = ("teller", "supervisor", "risk")  # propose a maker-checker action
CHECKERS = ("supervisor", "risk")  # approve or reject one
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,31}")


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    username: str
    name: str
    roles: tuple[str, ...]
    created_at: datetime

    @property
    def actor(self) -> str:
        """How audit records and approvals name them."""
        return f"staff:{self.id}"


def _username(value: object) -> str | None:
    """The canonical form (lower case), or None when it cannot be a username."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if _USERNAME.fullmatch(value) else None


def _roles(value: object) -> tuple[str, ...]:
    if not isinstance(value, tuple | list) or not value or any(r not in ROLES for r in value):
        raise EbankError("INVALID_INPUT", reason=f"roles are one or more of {ROLES}")
    return tuple(sorted(set(value)))


def add(
    *, username: str, name: str, roles: tuple[str, ...], password: str, actor: str,
    channel: str = "cli",
) -> Command[StaffMember]:  # fmt: skip
    """Give someone a console login with these roles."""
    new = security.NewSecret("login_password", password)

    def run(tx: Tx) -> StaffMember:
        canonical = _username(username)
        if canonical is None:
            raise EbankError(
                "INVALID_INPUT", reason="a username is 3-32 of a-z, 0-9, '.', '_', '-'"
            )
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
            raise EbankError("INVALID_INPUT", reason="a name is 1-100 characters")
        if not name.strip().isprintable():
            raise EbankError("INVALID_INPUT", reason="a name is printable text")
        held = _roles(roles)
        secret = new.hashed()
        if tx.conn.execute(select(staff.c.id).where(staff.c.username == canonical)).first():
            raise EbankError("STAFF_EXISTS", username=canonical)
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
        }
        staff_id = tx.conn.execute(staff.insert().values(row)).inserted_primary_key[0]
        audit.record(
            tx, actor=actor, action="staff.add", subject=f"staff:{staff_id}", channel=channel,
            detail={"username": canonical, "roles": list(held)},
        )  # fmt: skip
        return _view({**row, "id": staff_id})

    return Command(run, prepare=new.prepare)


def _view(row: Any) -> StaffMember:
    return StaffMember(
        row["id"], row["username"], row["name"], tuple(row["roles"].split(",")),
        as_utc(row["created_at"]),
    )  # fmt: skip


def get(conn: Connection, staff_id: int) -> StaffMember:
    """A member of staff by id (a console session names one; staff rows are never deleted)."""
    return _view(conn.execute(select(staff).where(staff.c.id == staff_id)).mappings().one())


def find(conn: Connection, username: str) -> StaffMember | None:
    canonical = _username(username)
    if canonical is None:
        return None
    row = conn.execute(select(staff).where(staff.c.username == canonical)).mappings().first()
    return None if row is None else _view(row)


@dataclass(frozen=True, slots=True)
class StaffLogin:
    member: StaffMember
    started: sessions.Started


def login(*, username: str, password: str) -> Command[Checked[StaffLogin]]:
    """Check a member of staff's password and open a console session.

    An unknown username fails exactly like a wrong password, after hashing a decoy.
    """
    canonical = _username(username)

    def load(conn: Connection, lock: bool) -> Any:
        if canonical is None:
            return None
        query = select(staff).where(staff.c.username == canonical)
        return conn.execute(query.with_for_update() if lock else query).mappings().first()

    check = security.SecretCheck(password, load, table=staff)

    def run(tx: Tx) -> Checked[StaffLogin]:
        verdict = check.record(tx)
        row = check.row
        if not verdict.ok:
            audit.record(
                tx, actor="anonymous" if row is None else f"staff:{row['id']}",
                action="staff.login", subject="" if row is None else f"staff:{row['id']}",
                channel="console", outcome="failed",
            )  # fmt: skip
            return Checked(verdict)
        assert row is not None  # a verdict without a row never passes
        started = sessions.start(staff_id=row["id"], channel="console").fn(tx)
        return Checked(verdict, StaffLogin(_view(row), started))

    return Command(run, prepare=check.prepare)
