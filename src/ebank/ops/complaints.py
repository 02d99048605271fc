"""Complaints (投诉, DOMAIN.md §8: "complaints and appeals with a tracked process").

A ticket names the customer, where they complained, what about and in their words; it is
open, in progress, resolved or closed, has an owner among the staff who handle complaints, and
a due date: the parameter `complaints.due_days` days after it was opened (15 by default: the
banking regulator's rule for consumer complaints, 《银行业保险业消费投诉处理管理办法》 Art. 24).

Nothing is edited in place. Each act (opened, assigned, a comment, a status change) appends an
event with who, when and the note; the ticket's row keeps the status and owner the latest
events left, changed only here, in the same transaction as its event, and every act is audited.

Statuses move only so (`MOVES`): open to in progress, resolved or closed (withdrawn); in
progress to resolved or closed; resolved to closed, or back to in progress when the customer
is not satisfied. Closed is final: an appeal is a new ticket. Working on or resolving a ticket
needs an owner; every change but starting work says why (the resolution, the reason).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, select

from ebank.core import audit
from ebank.core.clock import as_utc, business_date, business_day_bounds
from ebank.core.errors import EbankError, checked_text
from ebank.core.writer import Command, Tx
from ebank.customers.tables import customers
from ebank.ops import parameters
from ebank.ops.staff import LOOKUP
from ebank.ops.tables import (
    COMPLAINT_CATEGORIES,
    COMPLAINT_CHANNELS,
    COMPLAINT_STATUSES,
    complaint_events,
    complaints,
    staff,
)

HANDLERS = LOOKUP  # staff who open, work on and own complaints
MOVES: dict[str, tuple[str, ...]] = {
    "open": ("in_progress", "resolved", "closed"),
    "in_progress": ("resolved", "closed"),
    "resolved": ("in_progress", "closed"),
    "closed": (),
}
NEEDS_OWNER = ("in_progress", "resolved")
LIVE = ("open", "in_progress")  # the statuses a due date still binds
DESCRIPTION_LIMIT = 2000
NOTE_LIMIT = 1000
DUE_DAYS = parameters.define(
    "complaints.due_days",
    15,
    "complaints: days from opening a ticket to its due date",
    unit=parameters.Unit.DAYS,
)


@dataclass(frozen=True, slots=True)
class Complaint:
    id: int
    customer_id: int
    customer_name: str
    channel: str
    category: str
    description: str
    status: str
    owner_id: int | None
    owner_name: str | None
    due_at: datetime
    opened_by: str
    opened_at: datetime
    updated_at: datetime

    @property
    def due_day(self) -> date:
        """The last business day to settle it in (`due_at` is that day's end)."""
        return business_date(self.due_at - timedelta(microseconds=1))

    def overdue(self, now: datetime) -> bool:
        return self.status in LIVE and self.due_at <= now

    @property
    def moves(self) -> tuple[str, ...]:
        """The statuses it may move to from here."""
        return MOVES[self.status]


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    what: str  # opened | assigned | comment | status
    status: str  # after the event
    owner_id: int | None  # after the event
    owner_name: str | None
    note: str
    actor: str  # staff:<id>
    actor_name: str  # the staff member's name, or the actor as recorded
    at: datetime


# -- checks ---------------------------------------------------------------------------------------
def _prose(value: object, name: str, limit: int, *, empty: bool = False) -> str:
    """A customer's or officer's words: printable text over one or more lines."""
    if isinstance(value, str):
        text = value.replace("\r\n", "\n").strip()
        try:
            checked_text(text.replace("\n", " "), name, limit, empty=empty)
        except EbankError:
            pass
        else:
            return text
    raise EbankError("COMPLAINT_TEXT_INVALID", field=name, limit=limit)


def _one_of(value: object, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise EbankError("COMPLAINT_CHOICE_INVALID", field=name)
    return str(value)


def _owner(conn: Connection, owner_id: object) -> int:
    """A member of staff who may own complaints: enabled, with a handler's role."""
    if type(owner_id) is not int:
        raise EbankError("COMPLAINT_OWNER_INVALID", field="owner")
    row = conn.execute(
        select(staff.c.roles, staff.c.disabled_at).where(staff.c.id == owner_id)
    ).first()
    if row is None or row.disabled_at is not None or not set(row.roles.split(",")) & set(HANDLERS):
        raise EbankError("COMPLAINT_OWNER_INVALID", field="owner")
    return owner_id


# -- reading --------------------------------------------------------------------------------------
def _query() -> Select[Any]:
    return select(
        complaints, customers.c.name.label("customer_name"), staff.c.name.label("owner_name")
    ).select_from(
        complaints.join(customers, customers.c.id == complaints.c.customer_id).outerjoin(
            staff, staff.c.id == complaints.c.owner_id
        )
    )


def _view(row: Any) -> Complaint:
    return Complaint(
        row["id"], row["customer_id"], row["customer_name"], row["channel"], row["category"],
        row["description"], row["status"], row["owner_id"], row["owner_name"],
        as_utc(row["due_at"]), row["opened_by"], as_utc(row["opened_at"]),
        as_utc(row["updated_at"]),
    )  # fmt: skip


def get(conn: Connection, complaint_id: object) -> Complaint:
    if type(complaint_id) is not int:
        raise EbankError("COMPLAINT_NOT_FOUND")
    row = conn.execute(_query().where(complaints.c.id == complaint_id)).mappings().first()
    if row is None:
        raise EbankError("COMPLAINT_NOT_FOUND")
    return _view(row)


def listing(
    conn: Connection, *, now: datetime, status: str | None = None, owner_id: int | None = None,
    overdue: bool = False, limit: int = 200,
) -> list[Complaint]:  # fmt: skip
    """Tickets, the soonest due first; `overdue` keeps the live ones past their due date."""
    query = _query()
    if status is not None:
        query = query.where(complaints.c.status == _one_of(status, COMPLAINT_STATUSES, "status"))
    if owner_id is not None:
        query = query.where(complaints.c.owner_id == owner_id)
    if overdue:
        query = query.where(complaints.c.status.in_(LIVE), complaints.c.due_at <= now)
    query = query.order_by(complaints.c.due_at, complaints.c.id).limit(limit)
    return [_view(row) for row in conn.execute(query).mappings()]


def history(conn: Connection, complaint_id: int) -> list[Event]:
    """What was done to a ticket, oldest first."""
    rows = (
        conn.execute(
            select(complaint_events, staff.c.name.label("owner_name"))
            .select_from(
                complaint_events.outerjoin(staff, staff.c.id == complaint_events.c.owner_id)
            )
            .where(complaint_events.c.complaint_id == complaint_id)
            .order_by(complaint_events.c.id)
        )
        .mappings()
        .all()
    )
    ids = {_staff_id(r["actor"]) for r in rows} - {None}
    known = conn.execute(select(staff.c.id, staff.c.name).where(staff.c.id.in_(ids)))
    names = {i: n for i, n in known}

    def event(r: Any) -> Event:
        return Event(
            r["id"], r["what"], r["status"], r["owner_id"], r["owner_name"], r["note"],
            r["actor"], names.get(_staff_id(r["actor"]), r["actor"]), as_utc(r["at"]),
        )  # fmt: skip

    return [event(r) for r in rows]


def _staff_id(actor: str) -> int | None:
    kind, _, number = actor.partition(":")
    return int(number) if kind == "staff" and number.isdigit() else None


def owners(conn: Connection) -> list[tuple[int, str]]:
    """(id, name) of every member of staff a ticket may be given to, by name."""
    rows = conn.execute(
        select(staff.c.id, staff.c.name, staff.c.roles)
        .where(staff.c.disabled_at.is_(None))
        .order_by(staff.c.name, staff.c.id)
    )
    return [(r.id, r.name) for r in rows if set(r.roles.split(",")) & set(HANDLERS)]


def due_date(conn: Connection, opened: datetime) -> datetime:
    """The end of the business day `complaints.due_days` days after the one it was opened."""
    days = parameters.values(conn, DUE_DAYS.name)[DUE_DAYS.name]
    day: date = business_date(opened) + timedelta(days=days)
    return business_day_bounds(day)[1]


# -- acting ---------------------------------------------------------------------------------------
def _append(
    tx: Tx, ticket: Any, *, what: str, status: str, owner_id: int | None, note: str, actor: str,
    channel: str, detail: dict[str, Any],
) -> None:  # fmt: skip
    """An event on a ticket, the ticket row brought in step with it, and the audit record."""
    event_id = tx.conn.execute(
        complaint_events.insert().values(
            complaint_id=ticket["id"], what=what, status=status, owner_id=owner_id, note=note,
            actor=actor, at=tx.now,
        )
    ).inserted_primary_key[0]  # fmt: skip
    tx.conn.execute(
        complaints.update()
        .where(complaints.c.id == ticket["id"])
        .values(status=status, owner_id=owner_id, updated_at=tx.now)
    )
    audit.record(
        tx, actor=actor, action=f"complaint.{what}", subject=f"complaint:{ticket['id']}",
        channel=channel, detail={"event": event_id, **detail},
    )  # fmt: skip


def _locked(tx: Tx, complaint_id: object) -> Any:
    if type(complaint_id) is not int:
        raise EbankError("COMPLAINT_NOT_FOUND")
    query = select(complaints).where(complaints.c.id == complaint_id)
    ticket = tx.conn.execute(query.with_for_update()).mappings().first()
    if ticket is None:
        raise EbankError("COMPLAINT_NOT_FOUND")
    return ticket


def open_ticket(
    *, customer_id: object, channel: object, category: object, description: object, actor: str,
    via: str = "console",
) -> Command[Complaint]:  # fmt: skip
    """Record a complaint as the customer made it; it starts open, with no owner."""

    def run(tx: Tx) -> Complaint:
        if type(customer_id) is not int or tx.conn.execute(
            select(customers.c.id).where(customers.c.id == customer_id)
        ).first() is None:  # fmt: skip
            raise EbankError("CUSTOMER_NOT_FOUND", field="customer")
        values = {
            "customer_id": customer_id,
            "channel": _one_of(channel, COMPLAINT_CHANNELS, "channel"),
            "category": _one_of(category, COMPLAINT_CATEGORIES, "category"),
            "description": _prose(description, "description", DESCRIPTION_LIMIT),
            "status": "open",
            "owner_id": None,
            "due_at": due_date(tx.conn, tx.now),
            "opened_by": checked_text(actor, "the actor", 128),
            "opened_at": tx.now,
            "updated_at": tx.now,
        }
        complaint_id = tx.conn.execute(complaints.insert().values(values)).inserted_primary_key[0]
        _append(
            tx, {"id": complaint_id}, what="opened", status="open", owner_id=None, note="",
            actor=actor, channel=via,
            detail={"customer": customer_id, "category": values["category"],
                    "channel": values["channel"]},
        )  # fmt: skip
        return get(tx.conn, int(complaint_id))

    return Command(run)


def assign(
    *, complaint_id: object, owner_id: object, actor: str, note: object = "", via: str = "console"
) -> Command[Complaint]:
    """Give a ticket to a member of staff who handles complaints (not once it is closed)."""

    def run(tx: Tx) -> Complaint:
        ticket = _locked(tx, complaint_id)
        owner = _owner(tx.conn, owner_id)
        said = _prose(note, "note", NOTE_LIMIT, empty=True)
        if ticket["status"] == "closed":
            raise EbankError("COMPLAINT_CLOSED")
        _append(
            tx, ticket, what="assigned", status=ticket["status"], owner_id=owner, note=said,
            actor=actor, channel=via, detail={"from": ticket["owner_id"], "to": owner},
        )  # fmt: skip
        return get(tx.conn, ticket["id"])

    return Command(run)


def comment(
    *, complaint_id: object, note: object, actor: str, via: str = "console"
) -> Command[Complaint]:
    """A note on the ticket: a call to the customer, a finding. Closed tickets take them too
    (a later call about it belongs with it)."""

    def run(tx: Tx) -> Complaint:
        ticket = _locked(tx, complaint_id)
        said = _prose(note, "note", NOTE_LIMIT)
        _append(
            tx, ticket, what="comment", status=ticket["status"], owner_id=ticket["owner_id"],
            note=said, actor=actor, channel=via, detail={},
        )  # fmt: skip
        return get(tx.conn, ticket["id"])

    return Command(run)


def move(
    *, complaint_id: object, status: object, note: object = "", actor: str, via: str = "console"
) -> Command[Complaint]:
    """Change a ticket's status along `MOVES`; COMPLAINT_STATUS_REFUSED otherwise."""

    def run(tx: Tx) -> Complaint:
        ticket = _locked(tx, complaint_id)
        target = _one_of(status, COMPLAINT_STATUSES, "status")
        if target not in MOVES[ticket["status"]]:
            raise EbankError("COMPLAINT_STATUS_REFUSED", field="status")
        if target in NEEDS_OWNER and ticket["owner_id"] is None:
            raise EbankError("COMPLAINT_OWNER_REQUIRED", field="status")
        starting = ticket["status"] == "open" and target == "in_progress"
        said = _prose(note, "note", NOTE_LIMIT, empty=starting)
        _append(
            tx, ticket, what="status", status=target, owner_id=ticket["owner_id"], note=said,
            actor=actor, channel=via, detail={"from": ticket["status"], "to": target},
        )  # fmt: skip
        return get(tx.conn, ticket["id"])

    return Command(run)
