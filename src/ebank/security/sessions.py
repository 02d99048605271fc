"""Sessions: a random token handed over once, stored hashed, ended after
`session_idle_seconds` without use or `session_absolute_hours` in all.

One mechanism for everyone who logs in: customers (online and mobile banking), staff (the
console) and enterprises' operators (corporate banking: a session of the enterprise that names
the operator). A session starts only after the caller has checked its holder's factors; it records
the channel and the device's keyed hash (`devices.device_hash`), the very hash a device's
binding keeps, so that unbinding a device ends the sessions opened from it. Holders see and
end their own sessions, and only theirs; `end_all` ends a holder's sessions at once (a staff
login disabled, a device unbound).
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.corporate.tables import operators
from ebank.customers import service as customers
from ebank.ops.tables import staff
from ebank.security.tables import sessions

SESSION_CHANNELS = ("online", "mobile")  # a customer's
STAFF_CHANNELS = ("console",)
OPERATOR_CHANNEL = "corporate"
_DEVICE_HASH = re.compile(r"[0-9a-f]{64}")


def digest(token: str) -> str:
    """SHA-256 of a token (a session's, a login challenge's) or of the device id a customer's
    login challenge keeps."""
    # The token is 256 random bits, so a plain hash is enough: nothing to guess.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    customer_id: int | None  # exactly one of customer_id and staff_id is set
    channel: str
    started_at: datetime
    last_seen_at: datetime
    staff_id: int | None = None
    operator_id: int | None = None  # an enterprise's operator, acting for customer_id
    device: str = ""  # the keyed hash of the device it was opened from, or ""

    @property
    def holder(self) -> str:
        """Who holds it, as the audit names them: "customer:42", "staff:7" or "operator:3"."""
        if self.operator_id is not None:
            return f"operator:{self.operator_id}"
        return f"customer:{self.customer_id}" if self.staff_id is None else f"staff:{self.staff_id}"


@dataclass(frozen=True, slots=True)
class Started:
    session: Session
    token: str  # given to the customer's browser or app once


def _one_holder(customer_id: int | None, staff_id: int | None) -> None:
    if (customer_id is None) == (staff_id is None):
        raise EbankError("INVALID_INPUT", reason="a session is a customer's or a staff member's")


def start(
    *, customer_id: int | None = None, staff_id: int | None = None,
    operator_id: int | None = None, channel: str, device_hash: str = "",
) -> Command[Started]:  # fmt: skip
    """Open a session for a customer (online, mobile), a member of staff (console) or an
    enterprise's operator (corporate, with the enterprise as `customer_id`) whose factors the
    caller has just checked; `device_hash` is `devices.device_hash` of the device it is opened
    from, if it named one."""

    def run(tx: Tx) -> Started:
        _one_holder(customer_id, staff_id)
        if operator_id is not None:
            allowed: tuple[str, ...] = (OPERATOR_CHANNEL,)
        else:
            allowed = SESSION_CHANNELS if staff_id is None else STAFF_CHANNELS
        if channel not in allowed:
            raise EbankError("INVALID_INPUT", reason=f"these sessions are for {allowed}")
        if not isinstance(device_hash, str) or not (
            device_hash == "" or _DEVICE_HASH.fullmatch(device_hash)
        ):
            raise EbankError("INVALID_INPUT", reason="a device is named by its keyed hash")
        if operator_id is not None:
            of_enterprise = select(operators.c.id).where(
                operators.c.id == operator_id, operators.c.customer_id == customer_id
            )
            if type(operator_id) is not int or tx.conn.execute(of_enterprise).first() is None:
                raise EbankError("INVALID_INPUT", reason="no such operator of the enterprise")
        elif staff_id is None:
            customers.holder(tx.conn, customer_id)
        elif (
            type(staff_id) is not int
            or tx.conn.execute(select(staff.c.id).where(staff.c.id == staff_id)).first() is None
        ):
            raise EbankError("INVALID_INPUT", reason="no such member of staff")
        token = secrets.token_urlsafe(32)
        row = {
            "token_hash": digest(token),
            "customer_id": customer_id,
            "staff_id": staff_id,
            "operator_id": operator_id,
            "channel": channel,
            "device": device_hash,
            "started_at": tx.now,
            "last_seen_at": tx.now,
        }
        session_id = tx.conn.execute(sessions.insert().values(row)).inserted_primary_key[0]
        started = Started(_view({**row, "id": session_id}), token)
        audit.record(
            tx,
            actor=started.session.holder,
            action="session.start",
            subject=f"session:{session_id}",
            channel=channel,
        )
        return started

    return Command(run)


def _ending(row: Any, now: datetime) -> str | None:
    """Why a live session has run out at `now`, or None while it may go on."""
    settings = get_settings()
    if now - as_utc(row["started_at"]) >= timedelta(hours=settings.session_absolute_hours):
        return "absolute"
    if now - as_utc(row["last_seen_at"]) >= timedelta(seconds=settings.session_idle_seconds):
        return "idle"
    return None


def resume(token: str) -> Command[Session]:
    """The session a request's token belongs to, its clock of idleness reset.

    An unknown, ended or run-out token is SESSION_EXPIRED. Running out is worked out from the
    session's own times on every use, so nothing has to happen at the moment it runs out.
    """

    def run(tx: Tx) -> Session:
        if not isinstance(token, str) or not 0 < len(token) <= 100:
            raise EbankError("SESSION_EXPIRED")
        row = (
            tx.conn.execute(
                select(sessions).where(sessions.c.token_hash == digest(token)).with_for_update()
            )
            .mappings()
            .first()
        )
        if row is None or row["ended_at"] is not None:
            raise EbankError("SESSION_EXPIRED")
        if _ending(row, tx.now) is not None:
            raise EbankError("SESSION_EXPIRED")
        tx.conn.execute(
            sessions.update().where(sessions.c.id == row["id"]).values(last_seen_at=tx.now)
        )
        return _view({**row, "last_seen_at": tx.now})

    return Command(run)


def end(
    *,
    customer_id: int | None = None,
    staff_id: int | None = None,
    operator_id: int | None = None,
    session_id: int,
    reason: str = "logout",
) -> Command[None]:
    """End one of the holder's own sessions (logout, or "sign out that device")."""

    def run(tx: Tx) -> None:
        _one_holder(customer_id, staff_id)
        row = (
            tx.conn.execute(select(sessions).where(sessions.c.id == session_id).with_for_update())
            .mappings()
            .first()
        )
        holder = (row["customer_id"], row["staff_id"], row["operator_id"]) if row else None
        if holder != (customer_id, staff_id, operator_id):
            raise EbankError("SESSION_NOT_FOUND")  # someone else's is as unknown as none
        if row["ended_at"] is None:
            _close(tx, row, reason=reason, actor=_view(row).holder, channel=row["channel"])

    return Command(run)


def end_all(
    tx: Tx, *, reason: str, actor: str, channel: str, customer_id: int | None = None,
    staff_id: int | None = None, operator_id: int | None = None,
    device_hash: str | None = None, keep: int | None = None,
) -> int:  # fmt: skip
    """End at once, in the caller's transaction, every live session of one holder (an
    operator's, given `customer_id` and `operator_id`), or only those opened from one device
    (its keyed hash), but the session `keep` (the one asking); how many. Each end is
    audited."""
    _one_holder(customer_id, staff_id)
    if operator_id is not None:
        query = select(sessions).where(sessions.c.operator_id == operator_id)
    elif staff_id is None:
        query = select(sessions).where(sessions.c.customer_id == customer_id)
    else:
        query = select(sessions).where(sessions.c.staff_id == staff_id)
    if device_hash is not None:
        if not device_hash:
            raise EbankError("INVALID_INPUT", reason="a device is named by its keyed hash")
        query = query.where(sessions.c.device == device_hash)
    rows = tx.conn.execute(query.where(sessions.c.ended_at.is_(None)).with_for_update())
    live = [row for row in rows.mappings() if _ending(row, tx.now) is None and row["id"] != keep]
    for row in live:
        _close(tx, row, reason=reason, actor=actor, channel=channel)
    return len(live)


def _close(tx: Tx, row: Any, *, reason: str, actor: str, channel: str) -> None:
    tx.conn.execute(
        sessions.update()
        .where(sessions.c.id == row["id"])
        .values(ended_at=tx.now, end_reason=reason)
    )
    audit.record(
        tx, actor=actor, action=f"session.end.{reason}", subject=f"session:{row['id']}",
        channel=channel,
    )  # fmt: skip


def live_sessions(conn: Connection, customer_id: int, *, now: datetime) -> list[Session]:
    """The customer's sessions still usable at `now`, newest first (for "my devices")."""
    rows = conn.execute(
        select(sessions)
        .where(
            sessions.c.customer_id == customer_id,
            sessions.c.operator_id.is_(None),
            sessions.c.ended_at.is_(None),
        )
        .order_by(sessions.c.id.desc())
    ).mappings()
    return [_view(row) for row in rows if _ending(row, now) is None]


def _view(row: Any) -> Session:
    return Session(
        row["id"],
        row["customer_id"],
        row["channel"],
        as_utc(row["started_at"]),
        as_utc(row["last_seen_at"]),
        row["staff_id"],
        row["operator_id"],
        row["device"],
    )
