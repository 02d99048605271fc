"""The staff console (/console): logging in with the password and then the console token's
code, and the pages of the bank's staff: risk cases, the audit log, customers, maker-checker,
enrolment at the counter and the failed/unknown transfer queue.

Each page calls the services the staff API calls (channels/api/staff.py, risk.py,
payments.py) and admits the roles that API admits (`ops.staff`): a page a role may not use
answers 403 with the refusal page (`requires`). Every act is recorded in the audit chain as
`staff:<id>` by the services themselves.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount
from ebank.cards import service as cards
from ebank.cards.models import Card
from ebank.channels.api.common import ObjectId, read, vault_of, write
from ebank.channels.web.area import (
    Area,
    NotSignedIn,
    SignedIn,
    login_step,
    missing,
    required,
    typed_id,
    typed_secret,
    with_query,
)
from ebank.channels.web.i18n import _
from ebank.channels.web.words import N_, define
from ebank.core import audit
from ebank.core.clock import business_date, business_day_bounds
from ebank.core.errors import EbankError
from ebank.core.writer import Command
from ebank.customers import service as customers
from ebank.customers.models import CustomerView, Kind
from ebank.gateway import fees
from ebank.ops import approvals, parameters, staff
from ebank.risk import cases
from ebank.security import service as security
from ebank.security import sessions
from ebank.security.service import Checked

CHANNEL = "console"
LOGIN_FIELDS = ("username", "password")
CODE_FIELDS = ("code",)

define("console_role", {
    "teller": N_("Teller"), "supervisor": N_("Supervisor"), "risk": N_("Risk officer"),
    "admin": N_("Administrator"),
})  # fmt: skip


def _staff_only(session: sessions.Session) -> bool:
    return session.staff_id is not None and session.channel == CHANNEL


@dataclass(slots=True)
class OnDuty(SignedIn):
    """A signed-in member of staff, with their roles as they stand now (an admin may have
    changed them since the login)."""

    member: staff.StaffMember

    @property
    def actor(self) -> str:
        return self.member.actor


@dataclass(frozen=True, slots=True)
class Console(Area):
    """The console's area: its visits carry the member of staff (`OnDuty`)."""

    async def signed_in(self, request: Request) -> OnDuty:  # type: ignore[override]
        signed = await Area.signed_in(self, request)
        staff_id = signed.session.staff_id
        assert staff_id is not None
        member = await read(request, lambda conn: staff.get(conn, staff_id))
        return OnDuty(signed.area, request, signed.state, signed.trusted, signed.session, member)

    async def submitted(self, request: Request) -> tuple[OnDuty, dict[str, str]]:  # type: ignore[override]
        signed, form = await Area.submitted(self, request)
        assert isinstance(signed, OnDuty)
        return signed, form


CONSOLE = Console("console", "/console", "console_login", _staff_only)
router = APIRouter(prefix=CONSOLE.prefix, include_in_schema=False)
CONSOLE.session_routes(router)


class NotAllowed(NotSignedIn):
    """A page the member's roles do not open: answered, like NotSignedIn, with the response
    it carries (the refusal page, 403) by the handler `area.install` sets up."""


def requires(me: OnDuty, *roles: str) -> None:
    """Refuse (FORBIDDEN, nothing done) a member of staff holding none of `roles`, the role
    sets of `ops.staff` (COUNTER, LOOKUP, MAKERS, CHECKERS, ADMINS)."""
    unknown = set(roles) - set(staff.ROLES)
    if not roles or unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    if not set(me.member.roles) & set(roles):
        raise NotAllowed(me.render("web/refused.html", error=EbankError("FORBIDDEN")))


def holds(me: OnDuty, *roles: str) -> bool:
    """Whether a page should offer what `roles` may do (the action itself still `requires`)."""
    return bool(set(me.member.roles) & set(roles))


# -- logging in ---------------------------------------------------------------------------------
@router.get("/login", name="console_login")
async def login_page(request: Request) -> Response:
    visit = CONSOLE.visit(request)
    if visit.state.challenge is not None:
        return visit.render("console/verify.html", values={})
    return visit.render("console/login.html", values={})


@router.post("/login", name="console_login_password")
async def log_in(request: Request) -> Response:
    visit, form = await CONSOLE.posted(request)
    values = {"username": form.get("username", "")[:32]}
    try:
        username = required(form, "username", _("Username"))
        password = typed_secret(form, "password", _("Login password"))
        begun = await write(request, staff.begin_login(username=username, password=password))
        challenge = begun.value()
    except EbankError as error:
        return visit.render("console/login.html", error=error, fields=LOGIN_FIELDS,
                            at="password", values=values)  # fmt: skip
    visit.state.challenge = challenge.token
    return visit.redirect("console_login")


@router.post("/login/verify", name="console_login_verify")
async def verify(request: Request) -> Response:
    visit, form = await CONSOLE.posted(request)

    def complete(challenge: str) -> Command[Checked[staff.StaffLogin]]:
        code = required(form, "code", _("Token code"))
        return staff.complete_login(vault_of(request), challenge=challenge, code=code)

    try:
        done = (await login_step(request, visit.state, complete)).value()
    except EbankError as error:
        if error.code == "SESSION_EXPIRED":  # the login ran out: it starts again
            return visit.render("console/login.html", error=error, values={})
        return visit.render("console/verify.html", error=error, fields=CODE_FIELDS, at="code",
                            values={})  # fmt: skip
    return CONSOLE.logged_in(visit, done.started, done.member.name, "console_home")


# -- home ---------------------------------------------------------------------------------------
@router.get("/", name="console_home")
async def home(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    return me.render("console/home.html", member=me.member)


# -- risk cases -------------------------------------------------------------------------------
CASE_DECIDERS = ("risk", "supervisor")  # as channels/api/risk.py reads and decides cases
CASE_STATUSES = ("open", "escalated", "released", "rejected")
CASE_OUTCOMES = cases.ACTIONS
PAGE = 50

define("console_case_status", {
    "open": N_("Open"), "escalated": N_("Escalated"), "released": N_("Released"),
    "rejected": N_("Rejected"),
})  # fmt: skip
define("console_case_action", {
    "open": N_("Opened"), "escalate": N_("Escalated"), "release": N_("Released"),
    "reject": N_("Rejected"), "suspend": N_("Account suspended"),
})  # fmt: skip
define("console_case_decision", {
    "release": N_("Release"), "reject": N_("Reject"), "escalate": N_("Escalate"),
})  # fmt: skip
define("console_case_kind", {"payment": N_("Payment held for review")})
define("console_risk_outcome", {
    "allow": N_("Allow"), "step_up": N_("Step up"), "delay": N_("Delay"),
    "review": N_("Review"), "block": N_("Block"),
})  # fmt: skip


def _number(text: str | None) -> int | None:
    """A positive id from a query string, or None for anything else."""
    return typed_id(text)


@router.get("/risk", name="console_risk")
async def risk_queue(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *CASE_DECIDERS)
    chosen = request.query_params.get("status", "")
    status = chosen if chosen in CASE_STATUSES else None
    after = _number(request.query_params.get("after"))
    found = await read(
        request, lambda conn: cases.queue(conn, status=status, after=after, limit=PAGE)
    )
    more = found[-1].id if len(found) == PAGE else None
    return me.render("console/risk.html", cases=found, chosen=status or "", more=more,
                     statuses=CASE_STATUSES)  # fmt: skip


async def _case_page(me: OnDuty, case_id: int, **context: Any) -> Response:
    now = me.now
    file = await read(me.request, lambda conn: cases.case_file(conn, case_id, now=now))
    context.setdefault("values", {})
    return me.render("console/case.html", file=file, outcomes=CASE_OUTCOMES, **context)


@router.get("/risk/{case_id}", name="console_risk_case")
async def risk_case(request: Request, case_id: ObjectId) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *CASE_DECIDERS)
    try:
        return await _case_page(me, case_id)
    except EbankError as error:
        return me.render("console/missing.html", error=error)


@router.post("/risk/{case_id}/decide", name="console_risk_decide")
async def risk_decide(request: Request, case_id: ObjectId) -> Response:
    me, form = await CONSOLE.submitted(request)
    requires(me, *CASE_DECIDERS)
    outcome, note = form.get("outcome", ""), form.get("note", "")
    command = cases.decide(
        case_id, outcome=outcome, actor=me.actor, note=note, vault=vault_of(request)
    )
    return await _case_act(me, case_id, command, {"outcome": outcome, "note": note[:500]})


@router.post("/risk/{case_id}/suspend", name="console_risk_suspend")
async def risk_suspend(request: Request, case_id: ObjectId) -> Response:
    me, form = await CONSOLE.submitted(request)
    requires(me, *CASE_DECIDERS)
    which, note = form.get("which", ""), form.get("note", "")
    if which not in ("payer", "payee"):
        which = ""  # the service refuses it, as the API's schema does
    command = cases.suspend_account(
        case_id, which=which, actor=me.actor, note=note, vault=vault_of(request)
    )
    return await _case_act(me, case_id, command, {"which": which, "suspend_note": note[:500]})


async def _case_act(
    me: OnDuty, case_id: int, command: Command[Any], values: dict[str, str]
) -> Response:
    """Carry out a decision on a case; on a refusal, the case again with the reason."""
    try:
        await write(me.request, command)
    except EbankError as error:
        try:
            return await _case_page(me, case_id, error=error, values=values)
        except EbankError:
            return me.render("console/missing.html", error=error)
    return me.redirect("console_risk_case", notice=_("Case updated"), case_id=case_id)


# -- the audit log ------------------------------------------------------------------------------
AUDIT_READERS = ("supervisor", "risk", "admin")  # oversight; tellers are the audited
AUDIT_FIELDS = ("actor", "action", "since", "until")


def _day(form: Mapping[str, str], name: str, label: str) -> date | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise EbankError("INVALID_INPUT", field=name, reason=f"{label}: YYYY-MM-DD") from None


@router.get("/audit", name="console_audit")
async def audit_log(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *AUDIT_READERS)
    return await _audit_page(me)


async def _audit_page(me: OnDuty, **context: Any) -> Response:
    query = me.request.query_params
    values = {name: query.get(name, "")[:128].strip() for name in AUDIT_FIELDS}
    before = _number(query.get("before"))
    try:
        since, until = _day(values, "since", _("From")), _day(values, "until", _("To"))
    except EbankError as error:
        return me.render("console/audit.html", error=error, fields=AUDIT_FIELDS, records=[],
                         values=values, more=None, **context)  # fmt: skip
    start = business_day_bounds(since)[0] if since else None
    end = business_day_bounds(until)[1] if until else None
    found = await read(
        me.request,
        lambda conn: audit.records(
            conn, actor=values["actor"], action=values["action"], since=start, until=end,
            before=before, limit=PAGE,
        ),
    )  # fmt: skip
    more = None
    if len(found) == PAGE:
        more = with_query(me.url("console_audit"), **{k: v for k, v in values.items() if v},
                          before=str(found[-1].id))  # fmt: skip
    return me.render("console/audit.html", records=found, values=values, more=more, **context)


@router.post("/audit/verify", name="console_audit_verify")
async def audit_verify(request: Request) -> Response:
    """The check `ebank audit verify` makes; it changes nothing, so its result is shown at
    once rather than after a redirect."""
    me, _form = await CONSOLE.submitted(request)
    requires(me, *AUDIT_READERS)
    verification = await read(request, audit.verify)
    return await _audit_page(me, verification=verification)


# -- customers ----------------------------------------------------------------------------------
SEARCH_FIELDS = ("id_number", "mobile")
REVEAL_FIELDS = ("what", "reason")

define("console_customer_kind", {"individual": N_("Individual"), "enterprise": N_("Enterprise")})
define("console_card_status", {
    "active": N_("Active"), "frozen": N_("Frozen"), "reported_lost": N_("Reported lost"),
    "closed": N_("Closed"),
})  # fmt: skip


@router.get("/customers", name="console_customers")
async def customer_search(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *staff.LOOKUP)
    return me.render("console/customers.html", values={}, found=None)


@router.post("/customers", name="console_customers_search")
async def find_customers(request: Request) -> Response:
    """By identity number or mobile number, posted so that no number sits in a URL; the
    answer is a page of masked records, not a redirect."""
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.LOOKUP)
    kind = Kind.ENTERPRISE if form.get("kind") == Kind.ENTERPRISE.value else Kind.INDIVIDUAL
    id_number, mobile = form.get("id_number", "").strip(), form.get("mobile", "").strip()
    values = {"kind": kind.value}
    vault, today = vault_of(request), business_date(me.now)

    def find(conn: Connection) -> list[CustomerView]:
        if mobile:
            return customers.find_by_mobile(conn, vault, mobile)
        one = customers.find_by_id_number(conn, vault, kind, id_number, today=today)
        return [] if one is None else [one]

    try:
        if not (id_number or mobile):
            raise missing("id_number", _("ID number"))
        found = await read(request, find)
    except EbankError as error:
        return me.render("console/customers.html", error=error, at="id_number" if id_number
                         else "mobile", values=values, found=None)  # fmt: skip
    return me.render("console/customers.html", values=values, found=found)


async def _customer_page(me: OnDuty, customer_id: int, **context: Any) -> Response:
    vault = vault_of(me.request)

    def file(conn: Connection) -> tuple[CustomerView, list[CustomerAccount], list[Card]]:
        customer = customers.get_customer(conn, vault, customer_id)
        return customer, accounts.accounts_of(conn, customer_id), cards.cards_of(conn, customer_id)

    try:
        customer, held, issued = await read(me.request, file)
    except EbankError as error:
        return me.render("console/missing.html", error=error)
    context.setdefault("values", {})
    return me.render(
        "console/customer.html", customer=customer, accounts=held, cards=issued,
        counter=holds(me, *staff.COUNTER), maker=holds(me, *staff.MAKERS),
        targets=_targets(customer_id, held, issued), **context,
    )  # fmt: skip


@router.get("/customers/{customer_id}", name="console_customer")
async def customer_file(request: Request, customer_id: ObjectId) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *staff.LOOKUP)
    return await _customer_page(me, customer_id)


@router.post("/customers/{customer_id}/reveal", name="console_customer_reveal")
async def reveal(request: Request, customer_id: ObjectId) -> Response:
    """The full number, shown on this answer alone (never kept in the page's state)."""
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.LOOKUP)
    what, reason = form.get("what", ""), form.get("reason", "")
    values = {"what": what, "reason": reason[:100]}
    try:
        required(form, "reason", _("Reason"))
        command = customers.reveal(vault_of(request), customer_id=customer_id, what=what,
                                   reason=reason, actor=me.actor)  # fmt: skip
        shown = await write(request, command)
    except EbankError as error:
        return await _customer_page(me, customer_id, error=error, fields=REVEAL_FIELDS,
                                    at="reason", values=values)  # fmt: skip
    return await _customer_page(me, customer_id, revealed=(what, shown), values=values)


# -- maker-checker ------------------------------------------------------------------------------
PROPOSAL_FIELDS = ("target", "proposal_reason")
DECISION_FIELDS = ("note",)
ACCOUNT_ACTIONS = tuple(a.removeprefix("account.") for a in accounts.STATUS_ACTIONS)
CARD_ACTIONS = ("freeze", "unfreeze", "close")  # as cards.service registers them
UNLOCKABLE = security.KINDS

define("console_action", {
    "account.freeze": N_("Freeze account"), "account.unfreeze": N_("Unfreeze account"),
    "account.suspend": N_("Suspend account"), "account.reinstate": N_("Reinstate account"),
    "account.close": N_("Close account"), "card.freeze": N_("Freeze card"),
    "card.unfreeze": N_("Unfreeze card"), "card.close": N_("Close card"),
    "credential.unlock": N_("Unlock credential"), "parameter.set": N_("Change a parameter"),
    "risk.rule.set": N_("Change a risk rule"), "risk.thresholds.set": N_("Change risk thresholds"),
    "risk.list.add": N_("Add to a watch list"), "risk.list.remove": N_("Remove from a watch list"),
    fees.PLAN_ACTION: N_("Add a gateway fee plan"),
    cards.CREDIT_ACTION: N_("Issue a credit card above one person's authority"),
})  # fmt: skip
define("console_approval_param", {
    "account": N_("Account"), "card": N_("Card ID"),
    "customer": N_("Customer number"), "kind": N_("Credential"), "name": N_("Name"),
    "value": N_("New value"), "code": N_("Code"), "rate_ppm": N_("Rate (percent)"),
    "fixed": N_("Fixed fee"), "minimum": N_("Minimum"), "maximum": N_("Maximum"),
    "list": N_("List"), "key": N_("Entry"), "label": N_("Label"), "entry": N_("Entry number"),
    "description_zh": N_("Description (Chinese)"), "description_en": N_("Description (English)"),
    "expression": N_("Condition"), "score": N_("Score"), "outcome": N_("Outcome"),
    "enabled": N_("Enabled"), "shadow": N_("Shadow mode"), "step_up": N_("Step up from"),
    "delay": N_("Delay from"), "review": N_("Review from"), "block": N_("Block from"),
    "credit_line": N_("Credit line"),
})  # fmt: skip
define("console_credential", {
    "login_password": N_("Login password"), "transaction_pin": N_("Transaction PIN"),
    "token": N_("Token"),
})  # fmt: skip
define("console_approval_status", {
    "pending": N_("Pending"), "approved": N_("Approved"), "rejected": N_("Rejected"),
})  # fmt: skip


# How the params of an action show: amounts in fen in yuan, rates in ppm as a percentage, a
# credential in words (a parameter's change is added by `details`: whether its value is money
# is the parameter's unit).
SHOWN_AS = {
    fees.PLAN_ACTION: {"fixed": "money", "minimum": "money", "maximum": "money",
                       "rate_ppm": "percent"},
    "credential.unlock": {"kind": "credential"},
    cards.CREDIT_ACTION: {"credit_line": "money"},
}  # fmt: skip
NUMBERS = ("money", "percent")


@dataclass(frozen=True, slots=True)
class Detail:
    """One param of a request as a checker reads it."""

    name: str
    value: Any
    kind: str = "text"  # text | money (fen) | percent (already text) | credential


def details(approval: approvals.Approval) -> list[Detail]:
    params = approval.params
    kinds = dict(SHOWN_AS.get(approval.action, {}))
    if approval.action == "parameter.set":
        changed = parameters.definition(params.get("name"))
        if changed is not None and changed.money:
            kinds["value"] = "money"
    shown = []
    for name, value in sorted(params.items()):
        kind = kinds.get(name, "text")
        if kind in NUMBERS and type(value) is not int:
            kind = "text"  # shown as it was proposed
        elif kind == "percent":
            value = format(Decimal(value) / 10_000, "f")
        shown.append(Detail(name, value, kind))
    return shown


@dataclass(frozen=True, slots=True)
class Target:
    """One action the customer's file offers to propose: the form's value, the approvals
    action and its params, and what it acts on as the page shows it."""

    value: str
    action: str
    params: dict[str, Any]
    shown: str


def _targets(customer_id: int, held: list[CustomerAccount], issued: list[Card]) -> list[Target]:
    found = [
        Target(f"account.{verb}:{a.number}", f"account.{verb}", {"account": a.number}, a.number)
        for a in held
        for verb in ACCOUNT_ACTIONS
    ]
    found += [
        Target(f"card.{verb}:{c.id}", f"card.{verb}", {"card": c.id}, c.masked)
        for c in issued
        for verb in CARD_ACTIONS
    ]
    found += [
        Target(
            f"credential.unlock:{k}", "credential.unlock", {"customer": customer_id, "kind": k}, k
        )
        for k in UNLOCKABLE
    ]
    return found


@router.post("/customers/{customer_id}/propose", name="console_propose")
async def propose(request: Request, customer_id: ObjectId) -> Response:
    """Propose one of the actions the customer's file offers; a checker decides it."""
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.MAKERS)
    chosen, reason = form.get("target", ""), form.get("proposal_reason", "")
    values = {"target": chosen, "proposal_reason": reason[:500]}
    vault = vault_of(request)

    def offered(conn: Connection) -> list[Target]:
        customers.get_customer(conn, vault, customer_id)
        held, issued = accounts.accounts_of(conn, customer_id), cards.cards_of(conn, customer_id)
        return _targets(customer_id, held, issued)

    try:
        target = next((t for t in await read(request, offered) if t.value == chosen), None)
        if target is None:
            raise EbankError("INVALID_INPUT", field="target", reason="choose an action")
        required(form, "proposal_reason", _("Reason"))
        await write(
            request, approvals.propose(target.action, target.params, reason=reason, maker=me.actor)
        )
    except EbankError as error:
        return await _customer_page(me, customer_id, error=error, fields=PROPOSAL_FIELDS,
                                    at="proposal_reason", values=values)  # fmt: skip
    return me.redirect("console_approvals", notice=_("Proposed: a checker will decide it"))


@router.get("/approvals", name="console_approvals")
async def approvals_queue(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *staff.MAKERS)
    return await _approvals_page(me)


async def _approvals_page(me: OnDuty, **context: Any) -> Response:
    waiting = await read(me.request, approvals.pending)
    context.setdefault("values", {})
    return me.render("console/approvals.html", approvals=waiting, me_actor=me.actor,
                     details={a.id: details(a) for a in waiting},
                     checker=holds(me, *staff.CHECKERS), **context)  # fmt: skip


@router.post("/approvals/{request_id}/{verdict}", name="console_decide")
async def decide(request: Request, request_id: ObjectId, verdict: str) -> Response:
    """Approve (and carry out) or reject another's request; never one's own."""
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.CHECKERS)
    note = form.get("note", "")
    try:
        if verdict == "approve":
            command: Command[Any] = approvals.approve(
                request_id, checker=me.actor, note=note, vault=vault_of(request)
            )
        elif verdict == "reject":
            command = approvals.reject(request_id, checker=me.actor, note=note)
        else:
            raise EbankError("INVALID_INPUT", reason="approve or reject")
        await write(request, command)
    except EbankError as error:
        return await _approvals_page(me, error=error, fields=DECISION_FIELDS, at="form",
                                     values={"note": note[:500]}, failed=request_id)  # fmt: skip
    done = _("Approved and carried out") if verdict == "approve" else _("Rejected")
    return me.redirect("console_approvals", notice=done)
