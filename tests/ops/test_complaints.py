"""Complaints: a ticket moves only along its allowed statuses, every act appends to its history
and to the audit chain, and a refused act changes nothing. On SQLite and PostgreSQL."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.ops import complaints, staff
from ebank.ops.tables import complaint_events
from tests.support import VAULT, person

OFFICER = "staff:1"


def _staff(writer: Writer, username: str, *roles: str) -> int:
    added = writer.execute(
        staff.add(VAULT, username=username, name=f"员工{username}", roles=roles,
                  password="Passw0rd!2026", actor="system:test")
    )  # fmt: skip
    return added.member.id


def _ticket(writer: Writer, customer: int) -> complaints.Complaint:
    return writer.execute(
        complaints.open_ticket(
            customer_id=customer, channel="phone", category="fees",
            description="短信通收费未告知\n要求退还", actor=OFFICER,
        )
    )  # fmt: skip


def _history(engine: Engine, complaint_id: int) -> list[complaints.Event]:
    with engine.connect() as conn:
        return complaints.history(conn, complaint_id)


def _audited(engine: Engine, complaint_id: int) -> list[str]:
    with engine.connect() as conn:
        query = select(audit_log.c.action).where(audit_log.c.subject == f"complaint:{complaint_id}")
        return list(conn.execute(query.order_by(audit_log.c.id)).scalars())


@pytest.fixture
def owner(writer: Writer) -> int:
    return _staff(writer, "handler1", "teller")


def test_a_new_ticket_is_open_unowned_due_in_fifteen_business_days_with_its_history_and_audit(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    ticket = _ticket(writer, person(writer))
    assert (ticket.status, ticket.owner_id, ticket.customer_name) == ("open", None, "客户1")
    assert ticket.description == "短信通收费未告知\n要求退还"  # its lines kept
    # Opened 10:00 on 23 November, Beijing time: due at the end of 8 December, Beijing time.
    assert ticket.due_at == datetime(2026, 12, 8, 16, 0, tzinfo=UTC)
    assert ticket.due_day == date(2026, 12, 8)
    assert [(e.what, e.status) for e in _history(engine, ticket.id)] == [("opened", "open")]
    assert _audited(engine, ticket.id) == ["complaint.opened"]


def test_a_ticket_is_assigned_worked_resolved_and_closed_each_step_appended_and_audited(
    writer: Writer, engine: Engine, owner: int
) -> None:
    ticket = _ticket(writer, person(writer))
    writer.execute(complaints.assign(complaint_id=ticket.id, owner_id=owner, actor=OFFICER))
    writer.execute(complaints.move(complaint_id=ticket.id, status="in_progress", actor=OFFICER))
    writer.execute(complaints.comment(complaint_id=ticket.id, note="已致电客户", actor=OFFICER))
    writer.execute(
        complaints.move(complaint_id=ticket.id, status="resolved", note="已退费", actor=OFFICER)
    )
    done = writer.execute(
        complaints.move(complaint_id=ticket.id, status="closed", note="客户满意", actor=OFFICER)
    )
    assert (done.status, done.owner_id, done.owner_name) == ("closed", owner, "员工handler1")
    events = _history(engine, ticket.id)
    assert [(e.what, e.status, e.owner_id, e.note) for e in events] == [
        ("opened", "open", None, ""),
        ("assigned", "open", owner, ""),
        ("status", "in_progress", owner, ""),
        ("comment", "in_progress", owner, "已致电客户"),
        ("status", "resolved", owner, "已退费"),
        ("status", "closed", owner, "客户满意"),
    ]
    assert _audited(engine, ticket.id) == [
        "complaint.opened", "complaint.assigned", "complaint.status", "complaint.comment",
        "complaint.status", "complaint.status",
    ]  # fmt: skip
    with engine.connect() as conn:
        last = conn.execute(select(audit_log.c.detail).order_by(audit_log.c.id.desc())).scalar()
    detail = json.loads(last or "{}")
    assert (detail["from"], detail["to"]) == ("resolved", "closed")


@pytest.mark.parametrize(
    ("path", "refused", "code"),
    [
        ((), "closed_", "COMPLAINT_CHOICE_INVALID"),  # no such status
        ((), "open", "COMPLAINT_STATUS_REFUSED"),  # open to open
        ((), "in_progress", "COMPLAINT_OWNER_REQUIRED"),  # nobody owns it
        (("resolved", "closed"), "in_progress", "COMPLAINT_STATUS_REFUSED"),  # closed is final
        (("in_progress",), "open", "COMPLAINT_STATUS_REFUSED"),  # no way back to open
    ],
)
def test_a_move_off_the_allowed_paths_is_refused_and_changes_nothing(
    writer: Writer, engine: Engine, owner: int, path: tuple[str, ...], refused: str, code: str
) -> None:
    ticket = _ticket(writer, person(writer))
    if path:
        writer.execute(complaints.assign(complaint_id=ticket.id, owner_id=owner, actor=OFFICER))
    for status in path:
        writer.execute(
            complaints.move(complaint_id=ticket.id, status=status, note="依规", actor=OFFICER)
        )
    before = _history(engine, ticket.id)
    with pytest.raises(EbankError) as raised:
        writer.execute(
            complaints.move(complaint_id=ticket.id, status=refused, note="依规", actor=OFFICER)
        )
    assert raised.value.code == code
    assert _history(engine, ticket.id) == before
    assert len(_audited(engine, ticket.id)) == len(before)


def test_resolving_without_saying_how_is_refused_beside_the_note(
    writer: Writer, engine: Engine, owner: int
) -> None:
    ticket = _ticket(writer, person(writer))
    writer.execute(complaints.assign(complaint_id=ticket.id, owner_id=owner, actor=OFFICER))
    with pytest.raises(EbankError) as raised:
        writer.execute(complaints.move(complaint_id=ticket.id, status="resolved", actor=OFFICER))
    assert (raised.value.code, raised.value.details["field"]) == ("COMPLAINT_TEXT_INVALID", "note")
    assert len(_history(engine, ticket.id)) == 2


def test_a_ticket_goes_only_to_an_enabled_member_of_staff_who_handles_complaints(
    writer: Writer, engine: Engine
) -> None:
    admin = _staff(writer, "admin1", "admin")
    ticket = _ticket(writer, person(writer))
    for someone in (admin, 9999, "1"):
        with pytest.raises(EbankError) as raised:
            writer.execute(
                complaints.assign(complaint_id=ticket.id, owner_id=someone, actor=OFFICER)
            )
        assert raised.value.code == "COMPLAINT_OWNER_INVALID"
    assert len(_history(engine, ticket.id)) == 1


def test_a_ticket_needs_a_real_customer_and_words_from_the_lists(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    bad = [
        ({"customer_id": 424242}, "CUSTOMER_NOT_FOUND"),
        ({"category": "weather"}, "COMPLAINT_CHOICE_INVALID"),
        ({"channel": "pigeon"}, "COMPLAINT_CHOICE_INVALID"),
        ({"description": "  "}, "COMPLAINT_TEXT_INVALID"),
        ({"description": "x" * 2001}, "COMPLAINT_TEXT_INVALID"),
        ({"description": "bell\x07"}, "COMPLAINT_TEXT_INVALID"),
    ]
    for change, code in bad:
        params = {"customer_id": customer, "channel": "counter", "category": "card",
                  "description": "卡被吞", "actor": OFFICER, **change}  # fmt: skip
        with pytest.raises(EbankError) as raised:
            writer.execute(complaints.open_ticket(**params))  # type: ignore[arg-type]
        assert raised.value.code == code, change
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(complaint_events)).scalar() == 0


def test_the_list_filters_by_status_owner_and_overdue(
    writer: Writer, engine: Engine, clock: FixedClock, owner: int
) -> None:
    customer = person(writer)
    first, second = _ticket(writer, customer), _ticket(writer, customer)
    writer.execute(complaints.assign(complaint_id=second.id, owner_id=owner, actor=OFFICER))
    clock.advance(timedelta(days=16))
    third = _ticket(writer, customer)
    now = clock.now()
    with engine.connect() as conn:
        assert [c.id for c in complaints.listing(conn, now=now)] == [first.id, second.id, third.id]
        assert [c.id for c in complaints.listing(conn, now=now, owner_id=owner)] == [second.id]
        assert [c.id for c in complaints.listing(conn, now=now, overdue=True)] == [
            first.id, second.id,
        ]  # fmt: skip
        assert complaints.get(conn, first.id).overdue(now)
        assert not complaints.get(conn, third.id).overdue(now)
    writer.execute(
        complaints.move(complaint_id=first.id, status="closed", note="客户撤诉", actor=OFFICER)
    )
    with engine.connect() as conn:
        assert [c.id for c in complaints.listing(conn, now=now, overdue=True)] == [second.id]
        assert [c.id for c in complaints.listing(conn, now=now, status="closed")] == [first.id]
