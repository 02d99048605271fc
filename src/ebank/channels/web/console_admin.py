"""The staff console's complaints, management dashboard and configuration pages.

Complaints call `ops.complaints`; the dashboard `ops.kpis`; configuration proposes changes to
the bank's parameters (limits and the like) and new gateway fee plans through maker-checker
(`approvals.propose("parameter.set", ...)`, `fees.propose_plan`), decided in the approvals
queue as banks decide fee configuration. Roles are those the matching API admits.
"""

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from ebank.channels.api.common import ObjectId, read, write
from ebank.channels.web.area import missing, required, typed_amount, typed_id, typed_percent
from ebank.channels.web.console import CONSOLE, OnDuty, holds, requires
from ebank.channels.web.i18n import _
from ebank.channels.web.words import N_, define, term
from ebank.core.clock import business_date
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.writer import Command
from ebank.gateway import fees
from ebank.ops import approvals, complaints, kpis, parameters, staff
from ebank.ops.tables import COMPLAINT_CATEGORIES, COMPLAINT_CHANNELS, COMPLAINT_STATUSES

router = APIRouter(prefix=CONSOLE.prefix, include_in_schema=False)

define("console_complaint_status", {
    "open": N_("Open"), "in_progress": N_("In progress"), "resolved": N_("Resolved"),
    "closed": N_("Ticket closed"),
})  # fmt: skip
define("console_complaint_channel", {
    "counter": N_("Counter"), "phone": N_("Phone (hotline)"), "online": N_("Online banking"),
    "mobile": N_("Mobile banking"), "sms": N_("SMS banking"), "letter": N_("Letter or e-mail"),
    "regulator": N_("Referred by the regulator"),
})  # fmt: skip
define("console_complaint_category", {
    "transaction": N_("Transaction error"), "fees": N_("Fees and charges"), "card": N_("Cards"),
    "fraud": N_("Fraud or unauthorised use"), "channel_fault": N_("E-banking fault"),
    "service": N_("Service and attitude"), "disclosure": N_("Information and disclosure"),
    "other": N_("Other"),
})  # fmt: skip
define("console_complaint_event", {
    "opened": N_("Ticket opened"), "assigned": N_("Assigned"), "comment": N_("Comment"),
    "status": N_("Status changed"),
})  # fmt: skip

NEW_FIELDS = ("customer", "channel", "category", "description")
DASHBOARD_READERS = ("supervisor", "risk", "admin")  # oversight, as the audit log
DEFAULT_DAYS = 30
PARAMETER_FIELDS = ("parameter", "value", "reason")
PLAN_FIELDS = ("code", "name", "rate", "fixed", "minimum", "maximum", "plan_reason")


def _customer_id(text: str) -> int:
    text = text.strip()
    if not text:
        raise missing("customer", _("Customer number"))
    found = typed_id(text)
    if found is None:
        raise EbankError("CUSTOMER_NOT_FOUND", field="customer")
    return found


def _staff_id(text: str) -> int | None:
    return typed_id(text)


# -- complaints -----------------------------------------------------------------------------------
@router.get("/complaints", name="console_complaints")
async def complaint_list(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *complaints.HANDLERS)
    query = request.query_params
    status = query.get("status", "")
    owner = query.get("owner", "")
    overdue = query.get("overdue") == "1"
    owner_id = me.member.id if owner == "me" else _staff_id(owner)
    now = me.now

    def find(conn: Connection) -> tuple[list[complaints.Complaint], list[tuple[int, str]]]:
        found = complaints.listing(
            conn, now=now, status=status if status in COMPLAINT_STATUSES else None,
            owner_id=owner_id, overdue=overdue,
        )  # fmt: skip
        return found, complaints.owners(conn)

    found, owners = await read(request, find)
    values = {"status": status, "owner": owner, "overdue": overdue}
    return me.render("console/admin/complaints.html", complaints=found, owners=owners,
                     statuses=COMPLAINT_STATUSES, values=values, now=now)  # fmt: skip


def _new_page(me: OnDuty, **context: Any) -> Response:
    return me.render("console/admin/complaint_new.html", channels=COMPLAINT_CHANNELS,
                     categories=COMPLAINT_CATEGORIES, fields=NEW_FIELDS, **context)  # fmt: skip


@router.get("/complaints/new", name="console_complaint_new")
async def complaint_new(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *complaints.HANDLERS)
    customer = request.query_params.get("customer", "")
    return _new_page(me, values={"customer": customer if typed_id(customer) else ""})


@router.post("/complaints/new", name="console_complaint_open")
async def complaint_open(request: Request) -> Response:
    me, form = await CONSOLE.submitted(request)
    requires(me, *complaints.HANDLERS)
    values = {name: form.get(name, "")[:2000] for name in NEW_FIELDS}
    try:
        customer_id = _customer_id(values["customer"])
        description = required(form, "description", _("What the customer says"))
        ticket = await write(
            request,
            complaints.open_ticket(
                customer_id=customer_id, channel=values["channel"],
                category=values["category"], description=description, actor=me.actor,
            ),
        )  # fmt: skip
    except EbankError as error:
        return _new_page(me, error=error, values=values)
    return me.redirect("console_complaint", notice=_("Complaint recorded"),
                       complaint_id=ticket.id)  # fmt: skip


async def _ticket_page(me: OnDuty, complaint_id: int, **context: Any) -> Response:
    def file(conn: Connection) -> Any:
        ticket = complaints.get(conn, complaint_id)
        return ticket, complaints.history(conn, complaint_id), complaints.owners(conn)

    try:
        ticket, history, owners = await read(me.request, file)
    except EbankError as error:
        return me.render("console/missing.html", error=error)
    context.setdefault("values", {})
    return me.render("console/admin/complaint.html", ticket=ticket, history=history,
                     owners=owners, now=me.now, **context)  # fmt: skip


@router.get("/complaints/{complaint_id}", name="console_complaint")
async def complaint_page(request: Request, complaint_id: ObjectId) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *complaints.HANDLERS)
    return await _ticket_page(me, complaint_id)


async def _act(
    me: OnDuty, complaint_id: int, command: Command[Any], values: dict[str, str], done: str,
    *, fields: tuple[str, ...], at: str,
) -> Response:  # fmt: skip
    """Carry out an act on a ticket; on a refusal, the ticket again with the reason beside
    the field of the form that asked for it (`fields`), or above that form (`at`)."""
    try:
        await write(me.request, command)
    except EbankError as error:
        if error.code == "COMPLAINT_NOT_FOUND":
            return me.render("console/missing.html", error=error)
        return await _ticket_page(me, complaint_id, error=error, values=values, fields=fields,
                                  at=at)  # fmt: skip
    return me.redirect("console_complaint", notice=done, complaint_id=complaint_id)


@router.post("/complaints/{complaint_id}/assign", name="console_complaint_assign")
async def complaint_assign(request: Request, complaint_id: ObjectId) -> Response:
    me, form = await CONSOLE.submitted(request)
    requires(me, *complaints.HANDLERS)
    owner = form.get("owner", "")
    command = complaints.assign(
        complaint_id=complaint_id, owner_id=_staff_id(owner), actor=me.actor
    )
    return await _act(me, complaint_id, command, {"owner": owner}, _("Complaint assigned"),
                      fields=("owner",), at="owner")  # fmt: skip


@router.post("/complaints/{complaint_id}/comment", name="console_complaint_comment")
async def complaint_comment(request: Request, complaint_id: ObjectId) -> Response:
    me, form = await CONSOLE.submitted(request)
    requires(me, *complaints.HANDLERS)
    note = form.get("comment", "")
    command = complaints.comment(complaint_id=complaint_id, note=note, actor=me.actor)
    return await _act(me, complaint_id, command, {"comment": note[:1000]}, _("Comment added"),
                      fields=(), at="comment")  # fmt: skip


@router.post("/complaints/{complaint_id}/status", name="console_complaint_status")
async def complaint_status(request: Request, complaint_id: ObjectId) -> Response:
    me, form = await CONSOLE.submitted(request)
    requires(me, *complaints.HANDLERS)
    status, note = form.get("status", ""), form.get("note", "")
    command = complaints.move(complaint_id=complaint_id, status=status, note=note, actor=me.actor)
    return await _act(me, complaint_id, command, {"status": status, "note": note[:1000]},
                      _("Status changed"), fields=("status", "note"), at="status")  # fmt: skip


# -- the management dashboard ---------------------------------------------------------------------
def _period(me: OnDuty) -> tuple[date, date, dict[str, str]]:
    """The period asked for (default: the last 30 business days up to today); INVALID_INPUT
    beside the date that is not one."""
    today = business_date(me.now)
    query = me.request.query_params
    values = {name: query.get(name, "")[:10] for name in ("since", "until")}
    days = {}
    for name, default in (("since", today - timedelta(days=DEFAULT_DAYS - 1)), ("until", today)):
        try:
            days[name] = date.fromisoformat(values[name]) if values[name] else default
        except ValueError:
            raise EbankError("INVALID_INPUT", field=name, reason="YYYY-MM-DD") from None
        values[name] = days[name].isoformat()
    return days["since"], days["until"], values


def _charts(board: kpis.Dashboard) -> dict[str, Any]:
    """The JSON blocks static/charts.js draws: labels and series of exact decimal text."""
    days = [board.since + timedelta(days=i) for i in range((board.until - board.since).days + 1)]
    channels = sorted({f.channel for f in board.flows})
    by = {(f.day, f.channel): f for f in board.flows}

    def series(value: Any) -> list[dict[str, Any]]:
        return [
            {"name": term("channel", c),
             "values": [value(by.get((d, c))) for d in days]}
            for c in channels
        ]  # fmt: skip

    labels = [d.isoformat() for d in days]
    return {
        "counts": {"labels": labels, "series": series(lambda f: str(f.count if f else 0))},
        "amounts": {
            "labels": labels,
            "series": series(lambda f: format_minor(f.amount if f else 0, "CNY")),
        },
        "fees": {
            "labels": labels,
            "series": [
                {
                    "name": _("Fee income (yuan)"),
                    "values": [format_minor(v, "CNY") for v in board.fees_by_day.values()],
                }
            ],
        },
        "channels": {
            "labels": [term("channel", c.channel) for c in board.channels],
            "series": [
                {"name": _("Enrolled"), "values": [str(c.enrolled) for c in board.channels]},
                {"name": _("Active customers"), "values": [str(c.active) for c in board.channels]},
            ],
        },
    }


@router.get("/dashboard", name="console_dashboard")
async def dashboard(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *DASHBOARD_READERS)
    try:
        since, until, values = _period(me)
        board = await read(request, lambda conn: kpis.dashboard(conn, since, until))
    except EbankError as error:
        values = {name: request.query_params.get(name, "")[:10] for name in ("since", "until")}
        return me.render("console/admin/dashboard.html", error=error, fields=("since", "until"),
                         board=None, values=values)  # fmt: skip
    totals = {
        c: (sum(f.count for f in board.flows if f.channel == c),
            sum(f.amount for f in board.flows if f.channel == c))
        for c in sorted({f.channel for f in board.flows})
    }  # fmt: skip
    return me.render("console/admin/dashboard.html", board=board, values=values, totals=totals,
                     charts=_charts(board))  # fmt: skip


# -- configuration under maker-checker ------------------------------------------------------------
async def _settings_page(me: OnDuty, **context: Any) -> Response:
    def load(conn: Connection) -> tuple[dict[str, int], list[fees.FeePlan]]:
        return parameters.values(conn, ""), fees.plans(conn)

    now, plans = await read(me.request, load)
    context.setdefault("values", {})
    return me.render(
        "console/admin/settings.html", parameters=parameters.defined(), now=now, plans=plans,
        can_propose=holds(me, *staff.MAKERS), **context,
    )  # fmt: skip


@router.get("/settings", name="console_settings")
async def settings(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *staff.LOOKUP)
    return await _settings_page(me)


def _parameter_value(name: str, text: str) -> int:
    """What staff typed for a parameter: yuan for an amount (read exactly into fen), a whole
    number otherwise."""
    text = text.strip()
    if not text:
        raise missing("value", _("New value"))
    changed = parameters.definition(name)
    if changed is not None and changed.money:
        return typed_amount(text, "value")
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        raise EbankError("INVALID_INPUT", field="value", reason="a whole number")
    return int(text)


@router.post("/settings/parameters", name="console_settings_propose")
async def propose_parameter(request: Request) -> Response:
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.MAKERS)
    values = {name: form.get(name, "")[:500] for name in PARAMETER_FIELDS}
    try:
        name = required(form, "parameter", _("Parameter"))
        value = _parameter_value(name, values["value"])
        reason = required(form, "reason", _("Reason"))
        request_id = await write(
            request,
            approvals.propose("parameter.set", {"name": name, "value": value}, reason=reason,
                              maker=me.actor),
        )  # fmt: skip
    except EbankError as error:
        return await _settings_page(me, error=error, fields=PARAMETER_FIELDS, at="propose",
                                    values=values)  # fmt: skip
    return me.redirect("console_settings", notice=_proposed(request_id))


def _amount(form: dict[str, str], name: str) -> int | None:
    text = form.get(name, "").strip()
    return typed_amount(text, name) if text else None


@router.post("/settings/fee-plans", name="console_settings_fee_plan")
async def propose_fee_plan(request: Request) -> Response:
    """A new plan, proposed: it is made when another member of staff approves it."""
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.MAKERS)
    values = {name: form.get(name, "")[:500 if name == "plan_reason" else 60]
              for name in PLAN_FIELDS}  # fmt: skip
    try:
        plan = fees.FeePlan(
            required(form, "code", _("Plan code")).upper(), required(form, "name", _("Plan name")),
            typed_percent(required(form, "rate", _("Rate (percent)")), "rate", 10_000),
            _amount(form, "fixed") or 0, _amount(form, "minimum") or 0, _amount(form, "maximum"),
        )  # fmt: skip
        reason = required(form, "plan_reason", _("Reason"))
        request_id = await write(request, fees.propose_plan(plan, reason=reason, maker=me.actor))
    except EbankError as error:
        if error.code == "FEE_PLAN_EXISTS":
            error = EbankError(error.code, **{**error.details, "field": "code"})
        return await _settings_page(me, error=error, fields=PLAN_FIELDS, at="plan",
                                    plan_values=values)  # fmt: skip
    return me.redirect("console_settings", notice=_proposed(request_id))


def _proposed(request_id: int) -> str:
    return _(
        "Change proposed as request %(id)s: another member of staff approves it in the "
        "approvals queue"
    ) % {"id": request_id}
