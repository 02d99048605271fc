"""The staff console's counter business (柜面开户/签约) and the failed/unknown transfer queue.

The counter pages do what the staff API does at a counter (channels/api/staff.py, the
enrolment routes of channels/api/limits.py and the operator routes of channels/api/corporate.py):
register an individual or an enterprise, open an account, issue a debit or a credit card (or
propose a credit line above what one person grants alone, for a second member of staff to
approve), set the login password or transaction PIN the customer types, enrol a channel with
agreed limits or end an enrolment (after a page that asks), enrol a token, and give an
enterprise its corporate banking operators (each with a token). Tellers and supervisors may
(`staff.COUNTER`). Each create runs once per form shown (an idempotency key drawn with the
page), so that a double click or a resubmitted page makes nothing twice.

The exceptions queue lists what `payments.exceptions` lists for the API's
/staff/payments/exceptions, to the same roles (`staff.LOOKUP`). Neither the API nor the
clearing service offers staff an action on an exception (the clearing worker queries unknown
outcomes by itself), so the page lists and links to the payer's file only.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount, Product, Tier
from ebank.cards import service as cards
from ebank.cards.models import Card
from ebank.channels.api.common import FINGERPRINT_PURPOSE, ObjectId, read, vault_of, write
from ebank.channels.web import i18n
from ebank.channels.web.area import form_key, required, typed_amount, typed_percent, typed_secret
from ebank.channels.web.console import CONSOLE, OnDuty, requires
from ebank.channels.web.i18n import _
from ebank.channels.web.words import N_, define, term
from ebank.core.channels import E_CHANNELS
from ebank.core.clock import business_date
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Idempotency, fingerprint
from ebank.corporate import operators
from ebank.corporate.operators import Operator
from ebank.corporate.tables import OPERATOR_ROLES
from ebank.customers import identity
from ebank.customers import service as customers
from ebank.customers.models import CustomerView, Kind
from ebank.enrolment import service as enrolment
from ebank.enrolment.service import Enrolment
from ebank.limits import parameters as limit_parameters
from ebank.ops import staff
from ebank.payments import service as payments
from ebank.payments.models import PaymentView
from ebank.security.service import SECRET_KINDS, enroll_token, set_secret
from ebank.security.token_login import USERNAME_RULE, canonical_username

router = APIRouter(prefix=CONSOLE.prefix, include_in_schema=False)
T = TypeVar("T")
R = TypeVar("R")

REGISTER_FIELDS = ("name", "id_number", "mobile")
ENTERPRISE_FIELDS = ("name", "credit_code", "legal_representative", "mobile")
ACCOUNT_FIELDS = ("product", "tier", "term_months", "rate")
CARD_FIELDS = ("account",)
CREDIT_FIELDS = ("credit_line", "credit_reason")
OPERATOR_FIELDS = ("username", "operator_name", "roles", "password", "password_again")
SECRET_FIELDS = ("kind", "secret", "secret_again")
ENROL_FIELDS = ("channel", "daily_limit", "per_payment_limit")
QUEUE_SIZE = 200  # as the API's default page of the queue

define("console_counter_assurance", {
    "counter": N_("At the counter"), "self": N_("Online, by the customer (lower limits)"),
})  # fmt: skip
define("console_operator_role", {"maker": N_("Entry (maker)"), "checker": N_("Checker")})
define("console_counter_payment_status", {
    "scheduled": N_("Scheduled"), "sending": N_("Sending"), "unknown": N_("Outcome unknown"),
    "completed": N_("Completed"), "failed": N_("Failed"), "revoked": N_("Revoked"),
    "returned": N_("Returned"), "review": N_("Held for review"),
})  # fmt: skip
define("console_counter_payment_kind", {
    "own": N_("Between own accounts"), "intra": N_("Within the bank"),
    "interbank": N_("To another bank"), "bill": N_("Bill payment"), "payroll": N_("Payroll"),
    "debit": N_("Direct debit"),
})  # fmt: skip


def _once(
    me: OnDuty, form: dict[str, str], command: Command[T], answer: Callable[[T], R], **what: Any
) -> Command[R]:
    """`command` run once per form shown: the form's key, with what it asks (`what`, hashed
    under the vault's key: it may hold an ID number), makes a repeat answer as the first did
    (`answer`, a plain value, is what is kept)."""
    asked = vault_of(me.request).lookup_hash(fingerprint(**what), purpose=FINGERPRINT_PURPOSE)
    once = Idempotency(me.actor, form.get("key", ""), asked)
    return Command(lambda tx: answer(command.fn(tx)), idempotency=once, prepare=command.prepare)


def _beside(error: EbankError, name: str) -> EbankError:
    return EbankError(error.code, **{**error.details, "field": name})


def _checked(name: str, check: Callable[[], object]) -> None:
    """A value checked by the service's own rule, its refusal shown beside field `name`."""
    try:
        check()
    except EbankError as error:
        raise _beside(error, name) from None


def _limit(form: dict[str, str], name: str) -> int | None:
    """An optional limit typed in yuan; empty leaves it at the bank's maximum."""
    text = form.get(name, "").strip()
    return typed_amount(text, name) if text else None


# -- registering a customer: a person or an enterprise ---------------------------------------
@dataclass(frozen=True, slots=True)
class Register:
    """A registration form: its page, its fields (the identity number's second), and the
    command that registers what was typed, each number checked by the service's own rule
    beside its field first."""

    kind: Kind
    template: str
    fields: tuple[str, ...]
    command: Callable[[OnDuty, dict[str, str]], Command[CustomerView]]
    unplaced: str  # where a refusal naming no field shows: the one field it can be about


def _individual(me: OnDuty, form: dict[str, str]) -> Command[CustomerView]:
    name = required(form, "name", _("Name"))
    id_number = required(form, "id_number", _("Resident ID number"))
    mobile = required(form, "mobile", _("Mobile"))
    _checked("id_number", lambda: identity.resident_id(id_number, today=business_date(me.now)))
    _checked("mobile", lambda: identity.mobile(mobile))
    return customers.register_individual(
        vault_of(me.request), name=name, id_number=id_number, mobile=mobile, actor=me.actor
    )


def _enterprise(me: OnDuty, form: dict[str, str]) -> Command[CustomerView]:
    name = required(form, "name", _("Company name"))
    code = required(form, "credit_code", _("Unified social credit code"))
    representative = required(form, "legal_representative", _("Legal representative"))
    mobile = required(form, "mobile", _("Mobile"))
    _checked("credit_code", lambda: identity.credit_code(code))
    _checked("mobile", lambda: identity.mobile(mobile))
    return customers.register_enterprise(
        vault_of(me.request), name=name, credit_code=code, legal_representative=representative,
        mobile=mobile, actor=me.actor,
    )  # fmt: skip


INDIVIDUAL = Register(
    Kind.INDIVIDUAL, "console/counter/register.html", REGISTER_FIELDS, _individual, "name"
)
# Past its code and mobile, a company's name or its representative's: the reason says which.
ENTERPRISE = Register(
    Kind.ENTERPRISE, "console/counter/enterprise.html", ENTERPRISE_FIELDS, _enterprise, "form"
)


@router.get("/counter", name="console_counter")
async def counter(request: Request) -> Response:
    return await _blank(request, INDIVIDUAL)


@router.get("/counter/enterprises", name="console_counter_enterprise")
async def enterprise_form(request: Request) -> Response:
    return await _blank(request, ENTERPRISE)


async def _blank(request: Request, form_of: Register) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *staff.COUNTER)
    return me.render(form_of.template, values={}, key=form_key())


@router.post("/counter/individuals", name="console_counter_register")
async def register(request: Request) -> Response:
    return await _register(request, INDIVIDUAL)


@router.post("/counter/enterprises", name="console_counter_register_enterprise")
async def register_enterprise(request: Request) -> Response:
    return await _register(request, ENTERPRISE)


async def _register(request: Request, form_of: Register) -> Response:
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.COUNTER)
    values = {name: form.get(name, "")[:100] for name in form_of.fields}
    try:
        typed = {name: form.get(name, "") for name in form_of.fields}
        command = _once(me, form, form_of.command(me, form), lambda view: view.id,
                        op=f"register:{form_of.kind}", **typed)  # fmt: skip
        customer_id = await write(request, command)
    except EbankError as error:
        if error.code == "INVALID_INPUT" and "field" not in error.details:
            error = _beside(error, form_of.unplaced)
        elif error.code == "CUSTOMER_EXISTS":
            error = _beside(error, form_of.fields[1])
        return me.render(form_of.template, error=error, fields=form_of.fields, values=values,
                         key=form_key())  # fmt: skip
    return me.redirect(
        "console_counter_customer", notice=_("Customer registered"), customer_id=customer_id
    )


# -- one customer's counter business ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Enrolled:
    """A live enrolment with the most the bank allows it a day."""

    enrolment: Enrolment
    top_daily: int


@dataclass(frozen=True, slots=True)
class CounterFile:
    customer: CustomerView
    accounts: list[CustomerAccount]
    cards: list[Card]
    enrolments: list[Enrolled]
    operators: list[Operator]  # an enterprise's corporate-banking logins
    credit_line_alone: int  # the most (fen) one member of staff lends a customer alone
    credit_granted: int  # what the customer's credit cards not closed hold now (fen)


def _file(conn: Connection, vault: Any, customer_id: int) -> CounterFile:
    customer = customers.get_customer(conn, vault, customer_id)
    bank = limit_parameters.load(conn)
    enrolled = [
        Enrolled(e, bank.channel_maximum(e.channel, e.assurance)[0])
        for e in enrolment.enrolments_of(conn, customer_id)
    ]
    team = operators.of_enterprise(conn, customer_id) if customer.kind == Kind.ENTERPRISE else []
    return CounterFile(
        customer, accounts.accounts_of(conn, customer_id), cards.cards_of(conn, customer_id),
        enrolled, team, cards.credit_line_alone(conn), cards.credit_granted(conn, customer_id),
    )  # fmt: skip


async def _customer_page(me: OnDuty, customer_id: int, **context: Any) -> Response:
    vault = vault_of(me.request)
    try:
        file = await read(me.request, lambda conn: _file(conn, vault, customer_id))
    except EbankError as error:
        return me.render("console/missing.html", error=error)
    context.setdefault("values", {})
    return me.render(
        "console/counter/customer.html", file=file, key=form_key(),
        products=[p.value for p in Product], tiers=[t.value for t in Tier],
        terms=accounts.TERM_MONTHS, secret_kinds=SECRET_KINDS, channels=E_CHANNELS,
        operator_roles=OPERATOR_ROLES, **context,
    )  # fmt: skip


@router.get("/counter/customers/{customer_id}", name="console_counter_customer")
async def customer_counter(request: Request, customer_id: ObjectId) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *staff.COUNTER)
    return await _customer_page(me, customer_id)


async def _act(
    request: Request, customer_id: int, fields: tuple[str, ...],
    act: Callable[[OnDuty, dict[str, str]], Command[Any]], done: Callable[[Any], str], at: str,
    keep: tuple[str, ...] = (),
) -> Response:  # fmt: skip
    """One counter act on a customer: the form read, the command `act` makes written, then
    back to the customer's counter page saying `done`; a refusal shows beside its field (or
    at `at`) with the values typed, but none not in `keep`: no password comes back."""
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.COUNTER)
    try:
        result = await write(request, act(me, form))
    except EbankError as error:
        values = {name: form.get(name, "")[:100] for name in keep}
        return await _customer_page(me, customer_id, error=error, fields=fields, at=at,
                                    values=values)  # fmt: skip
    return me.redirect("console_counter_customer", notice=done(result), customer_id=customer_id)


@router.post("/counter/customers/{customer_id}/accounts", name="console_counter_account")
async def open_account(request: Request, customer_id: ObjectId) -> Response:
    def act(me: OnDuty, form: dict[str, str]) -> Command[str]:
        product, tier = form.get("product", ""), form.get("tier", "")
        term = form.get("term_months", "").strip()
        chosen = product == Product.TERM and term.isascii() and term.isdigit() and len(term) < 4
        term_months = int(term) if chosen else None
        rate = form.get("rate", "").strip()
        rate_bp = typed_percent(rate, "rate", 100) if product == Product.TERM and rate else None
        command = accounts.open_account(
            customer_id=customer_id, product=product, tier=tier, term_months=term_months,
            rate_bp=rate_bp, actor=me.actor,
        )  # fmt: skip
        return _once(me, form, command, lambda account: account.number, op="account",
                     customer=customer_id, product=product, tier=tier, term=term_months,
                     rate=rate_bp)  # fmt: skip

    return await _act(request, customer_id, ACCOUNT_FIELDS, act,
                      lambda number: _("Account %(number)s opened") % {"number": number},
                      at="product", keep=ACCOUNT_FIELDS)  # fmt: skip


@router.post("/counter/customers/{customer_id}/cards", name="console_counter_card")
async def issue_card(request: Request, customer_id: ObjectId) -> Response:
    def act(me: OnDuty, form: dict[str, str]) -> Command[str]:
        number = required(form, "account", _("Account"))
        command = cards.issue_debit_card(
            vault_of(request), customer_id=customer_id, account_number=number, actor=me.actor
        )
        return _once(me, form, command, lambda issued: issued.card.masked, op="card",
                     customer=customer_id, account=number)  # fmt: skip

    return await _act(request, customer_id, CARD_FIELDS, act,
                      lambda masked: _("Debit card %(card)s issued") % {"card": masked},
                      at="account", keep=CARD_FIELDS)  # fmt: skip


def _credit_line(form: dict[str, str]) -> int:
    return typed_amount(required(form, "credit_line", _("Credit line, yuan")), "credit_line")


@router.post("/counter/customers/{customer_id}/credit-cards", name="console_counter_credit_card")
async def issue_credit_card(request: Request, customer_id: ObjectId) -> Response:
    """Issued at once while the customer's credit lines with this one stay within what one
    member of staff grants alone; above it the line is refused beside the field, and the
    form's other button proposes it instead."""

    def act(me: OnDuty, form: dict[str, str]) -> Command[str]:
        line = _credit_line(form)
        command = cards.issue_credit_card(
            vault_of(request), customer_id=customer_id, credit_line=line, actor=me.actor
        )
        return _once(me, form, command, lambda issued: issued.card.masked, op="credit_card",
                     customer=customer_id, line=line)  # fmt: skip

    return await _act(request, customer_id, CREDIT_FIELDS, act,
                      lambda masked: _("Credit card %(card)s issued") % {"card": masked},
                      at="credit_line", keep=CREDIT_FIELDS)  # fmt: skip


@router.post("/counter/customers/{customer_id}/credit-cards/proposals",
             name="console_counter_credit_card_propose")  # fmt: skip
async def propose_credit_card(request: Request, customer_id: ObjectId) -> Response:
    """The credit card proposed with its line and a reason; issued when a second member of staff
    approves it in the approvals queue (the API's action card.issue.credit)."""

    def act(me: OnDuty, form: dict[str, str]) -> Command[int]:
        line = _credit_line(form)
        reason = required(form, "credit_reason", _("Reason for the approval"))
        command = cards.propose_credit_card(
            customer_id=customer_id, credit_line=line, reason=reason, maker=me.actor,
            channel="counter",
        )  # fmt: skip
        return _once(me, form, command, lambda request_id: request_id, op="credit_proposal",
                     customer=customer_id, line=line, reason=reason)  # fmt: skip

    return await _act(request, customer_id, CREDIT_FIELDS, act,
                      lambda request_id: _("Submitted for approval as request #%(id)s: the card "
                                           "is issued when another member of staff approves it")
                      % {"id": request_id}, at="credit_line", keep=CREDIT_FIELDS)  # fmt: skip


@router.post("/counter/customers/{customer_id}/secrets", name="console_counter_secret")
async def set_customer_secret(request: Request, customer_id: ObjectId) -> Response:
    """The customer types it twice on the counter's keypad; it is never shown back."""

    def act(me: OnDuty, form: dict[str, str]) -> Command[None]:
        kind, secret = form.get("kind", ""), form.get("secret", "")
        typed_secret(form, "secret", _("New password or PIN"))
        if form.get("secret_again", "") != secret:
            raise EbankError("INVALID_INPUT", field="secret_again",
                             reason=_("the two entries differ"))  # fmt: skip
        return set_secret(customer_id=customer_id, kind=kind, secret=secret, actor=me.actor)

    return await _act(request, customer_id, SECRET_FIELDS, act,
                      lambda _none: _("Set: the customer's earlier one no longer works"),
                      at="secret", keep=("kind",))  # fmt: skip


@router.post("/counter/customers/{customer_id}/enrolments", name="console_counter_enrol")
async def enrol(request: Request, customer_id: ObjectId) -> Response:
    """Limits left empty are the bank's maximum for the channel, as in the API."""

    def act(me: OnDuty, form: dict[str, str]) -> Command[Enrolment]:
        channel = form.get("channel", "")
        return enrolment.enrol_at_counter(
            customer_id=customer_id, channel=channel, actor=me.actor,
            daily_limit=_limit(form, "daily_limit"),
            per_payment_limit=_limit(form, "per_payment_limit"),
        )  # fmt: skip

    return await _act(request, customer_id, ENROL_FIELDS, act,
                      lambda _enrolled: _("Enrolled with the limits shown"),
                      at="daily_limit", keep=ENROL_FIELDS)  # fmt: skip


@router.get("/counter/customers/{customer_id}/enrolments/{channel}/end",
            name="console_counter_unenrol_confirm")  # fmt: skip
async def unenrol_confirm(request: Request, customer_id: ObjectId, channel: str) -> Response:
    """Ending an enrolment asks first: the customer loses the channel at once."""
    me = await CONSOLE.signed_in(request)
    requires(me, *staff.COUNTER)
    vault = vault_of(request)

    def load(conn: Connection) -> tuple[CustomerView, Enrolment | None]:
        customer = customers.get_customer(conn, vault, customer_id)
        return customer, enrolment.enrolment_of(conn, customer_id, channel)

    try:
        customer, live = await read(request, load)
        if live is None:
            raise EbankError("NOT_FOUND")
    except EbankError:
        return me.render("console/missing.html", error=EbankError("NOT_FOUND"))
    return me.render("console/counter/unenrol.html", customer=customer, enrolled=live)


@router.post("/counter/customers/{customer_id}/enrolments/{channel}/end",
             name="console_counter_unenrol")  # fmt: skip
async def unenrol(request: Request, customer_id: ObjectId, channel: str) -> Response:
    """End the enrolment (解约) at the customer's request, as the staff API does."""

    def act(me: OnDuty, form: dict[str, str]) -> Command[None]:
        return enrolment.cancel(
            customer_id=customer_id, channel=channel, actor=me.actor, via="counter"
        )

    return await _act(request, customer_id, (), act,
                      lambda _none: _("Enrolment ended: the customer can no longer use %(channel)s")
                      % {"channel": term("channel", channel)}, at="enrolments")  # fmt: skip


@router.post("/counter/customers/{customer_id}/operators", name="console_counter_operator")
async def add_operator(request: Request, customer_id: ObjectId) -> Response:
    """A login of corporate banking for a person the enterprise names, with their token: its
    address is shown on this answer alone, as a customer's token's is. Sent again, it is
    refused (OPERATOR_EXISTS), never a second login; the passwords never come back."""
    me, form = await CONSOLE.submitted(request)
    requires(me, *staff.COUNTER)
    roles = tuple(role for role in OPERATOR_ROLES if form.get(f"role_{role}") == "1")
    values = {name: form.get(name, "")[:100] for name in ("username", "operator_name")}
    values.update({f"role_{role}": "1" for role in roles})
    try:
        username = required(form, "username", _("Username"))
        if canonical_username(username) is None:
            raise EbankError("INVALID_INPUT", field="username", reason=USERNAME_RULE)
        name = required(form, "operator_name", _("Operator's name"))
        if not roles:
            raise EbankError("INVALID_INPUT", field="roles", reason=_("choose at least one role"))
        password = typed_secret(form, "password", _("First login password"))
        if form.get("password_again", "") != password:
            raise EbankError("INVALID_INPUT", field="password_again",
                             reason=_("the two entries differ"))  # fmt: skip
        added = await write(
            request,
            operators.add(vault_of(request), customer_id=customer_id, username=username,
                          name=name, roles=roles, password=password, actor=me.actor),
        )  # fmt: skip
    except EbankError as error:
        if error.code == "OPERATOR_EXISTS":
            error = _beside(error, "username")
        at = "form" if error.code == "NOT_AN_ENTERPRISE" else "operators"  # a person has no form
        return await _customer_page(me, customer_id, error=error, fields=OPERATOR_FIELDS, at=at,
                                    values=values)  # fmt: skip
    return await _customer_page(me, customer_id, operator_added=added)


@router.post("/counter/customers/{customer_id}/token", name="console_counter_token")
async def give_token(request: Request, customer_id: ObjectId) -> Response:
    """A new token for the customer's authenticator app: its address is shown on this answer
    alone (never kept, never in a URL); an earlier token stops working at once. Enrolling
    twice only replaces the first, so this create needs no key."""
    me, _form = await CONSOLE.submitted(request)
    requires(me, *staff.COUNTER)
    command = enroll_token(
        vault_of(request), customer_id=customer_id, label=f"customer-{customer_id}",
        actor=me.actor,
    )  # fmt: skip
    try:
        uri = await write(request, command)
    except EbankError as error:
        return await _customer_page(me, customer_id, error=error, at="token")
    return await _customer_page(me, customer_id, token_uri=uri)


# -- the failed/unknown transfer queue -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Queued:
    """A transfer of the queue, with its failure in words and the payer it belongs to."""

    payment: PaymentView
    failure: str | None
    customer_id: int


def _queue(conn: Connection, language: str) -> list[Queued]:
    found = []
    for view in payments.exceptions(conn, limit=QUEUE_SIZE):
        failure = None
        if view.failure_code is not None:
            failure = EbankError(view.failure_code).message(language)
        payer = accounts.get_account(conn, number=view.from_account)
        found.append(Queued(view, failure, payer.customer_id))
    return found


@router.get("/exceptions", name="console_exceptions")
async def exception_queue(request: Request) -> Response:
    me = await CONSOLE.signed_in(request)
    requires(me, *staff.LOOKUP)
    i18n.use(i18n.locale_of(request))
    language = i18n.language()
    found = await read(request, lambda conn: _queue(conn, language))
    return me.render("console/counter/exceptions.html", queue=found, full=len(found) == QUEUE_SIZE)
