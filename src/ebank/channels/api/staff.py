"""The staff console's API: logging in (password, then token code), counter business,
maker-checker, and the admins' care of staff logins.

Roles (`ops.staff`): tellers and supervisors do counter business; they and risk officers
propose sensitive actions; supervisors and risk officers decide them, never their own; admins
look after staff logins, never their own. Every action is recorded in the audit chain as
`staff:<id>`. Creates take an `Idempotency-Key`.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from ebank.accounts import service as accounts
from ebank.cards import service as cards
from ebank.channels.api.auth import StaffPrincipal, current_staff, staff_role
from ebank.channels.api.common import IdempotencyKey, ObjectId, create, read, vault_of, write
from ebank.channels.api.schemas import (
    ERRORS,
    AccountOut,
    ApprovalOut,
    ApprovalsOut,
    CardOut,
    CustomerFileOut,
    CustomerOut,
    CustomerSearchIn,
    CustomersOut,
    DecisionIn,
    EnterpriseIn,
    In,
    IndividualIn,
    IssueCardIn,
    IssuedCardOut,
    IssueDebitCardIn,
    OpenAccountIn,
    ProposalIn,
    SecretIn,
    StaffLoginIn,
    StaffOut,
    StaffTokenOut,
    TokenEnrolledOut,
    handed_over,
    text,
)
from ebank.core.clock import business_date
from ebank.core.money import parse_minor
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.customers.models import Kind
from ebank.ops import approvals, staff
from ebank.ops.approvals import Approval
from ebank.security import mobile, sessions
from ebank.security import service as security

router = APIRouter(prefix="/api/v1/staff", responses=ERRORS)
Anyone = Annotated[StaffPrincipal, Depends(current_staff)]
Counter = Annotated[StaffPrincipal, Depends(staff_role(*staff.COUNTER))]
Lookup = Annotated[StaffPrincipal, Depends(staff_role(*staff.LOOKUP))]
Maker = Annotated[StaffPrincipal, Depends(staff_role(*staff.MAKERS))]
Checker = Annotated[StaffPrincipal, Depends(staff_role(*staff.CHECKERS))]
Admin = Annotated[StaffPrincipal, Depends(staff_role(*staff.ADMINS))]
SecretKind = Annotated[Literal["login_password", "transaction_pin"], Path()]


async def _create(
    request: Request, me: StaffPrincipal, key: str, body: BaseModel | None,
    make: Callable[[Tx], BaseModel],
) -> dict[str, Any]:  # fmt: skip
    """An idempotent create; each member of staff has their own keys."""
    return await create(request, scope=me.actor, key=key, body=body, make=make)


def _decided(command: Command[Any], request_id: int) -> Command[Approval]:
    """A decision, answered with the request as it now stands."""

    def run(tx: Tx) -> Approval:
        command.fn(tx)
        return approvals.get(tx.conn, request_id)

    return Command(run)


# -- bodies of these endpoints alone ------------------------------------------------------------
class StaffChallengeOut(BaseModel):
    challenge: str = Field(description="Pass to /staff/auth/login/verify with a token code")
    expires_at: datetime


class StaffVerifyIn(In):
    challenge: Annotated[str, text(100)]
    code: Annotated[str, text(16, "The 6-digit code of the console token (authenticator app)")]


class StaffLoginOut(StaffOut):
    """A staff login as an admin sees it."""

    has_token: bool = Field(description="False for a login made before tokens: reset it")
    disabled: bool
    locked_until: datetime | None = Field(description="Locked until then (temporary lock)")
    permanently_locked: bool

    @classmethod
    def of_login(cls, member: staff.StaffMember, now: datetime) -> "StaffLoginOut":
        locked = member.locked_until if member.locked_until and member.locked_until > now else None
        return cls(
            **StaffOut.of(member).model_dump(), has_token=member.has_token,
            disabled=member.disabled, locked_until=locked,
            permanently_locked=member.permanently_locked,
        )  # fmt: skip


class StaffLoginsOut(BaseModel):
    staff: list[StaffLoginOut]


class StaffTokenResetOut(TokenEnrolledOut):
    staff: StaffLoginOut


class RolesIn(In):
    roles: Annotated[list[Literal[staff.ROLES]], Field(min_length=1, max_length=4)]


# -- logging in ---------------------------------------------------------------------------------
@router.post("/auth/login", tags=["staff: login"], summary="Step 1: password")
async def staff_login(request: Request, body: StaffLoginIn) -> StaffChallengeOut:
    """Username and password; on success, a challenge for step 2. Failures lock the login as
    they lock a customer's; an unknown username or a disabled login answers like a wrong
    password."""
    checked = await write(
        request, staff.begin_login(username=body.username, password=body.password)
    )
    challenge = checked.value()
    return StaffChallengeOut(challenge=challenge.token, expires_at=challenge.expires_at)


@router.post("/auth/login/verify", tags=["staff: login"], summary="Step 2: token code")
async def staff_login_verify(request: Request, body: StaffVerifyIn) -> StaffTokenOut:
    """The code of the console token against the challenge; the answer carries the session
    token. A wrong code counts on the same lockout as the password and answers alike."""
    command = staff.complete_login(vault_of(request), challenge=body.challenge, code=body.code)
    done = (await write(request, command)).value()
    return StaffTokenOut(**handed_over(done.started), staff=StaffOut.of(done.member))


@router.post("/auth/logout", tags=["staff: login"], status_code=204, response_class=Response)
async def staff_logout(request: Request, me: Anyone) -> None:
    await write(request, sessions.end(staff_id=me.staff_id, session_id=me.session_id))


@router.get("/me", tags=["staff: login"], summary="Who I am, with my roles")
async def staff_whoami(request: Request, me: Anyone) -> StaffOut:
    return StaffOut.of(await read(request, lambda conn: staff.get(conn, me.staff_id)))


# -- customers ----------------------------------------------------------------------------------
@router.post("/customers/individuals", tags=["staff: customers"], status_code=201)
async def register_individual(
    request: Request, me: Counter, body: IndividualIn, key: IdempotencyKey
) -> CustomerOut:
    """Open a customer record for a person whose resident ID was checked at the counter."""
    command = customers.register_individual(
        vault_of(request), name=body.name, id_number=body.id_number, mobile=body.mobile,
        actor=me.actor,
    )  # fmt: skip
    return await _create(request, me, key, body, lambda tx: CustomerOut.of(command.fn(tx)))


@router.post("/customers/enterprises", tags=["staff: customers"], status_code=201)
async def register_enterprise(
    request: Request, me: Counter, body: EnterpriseIn, key: IdempotencyKey
) -> CustomerOut:
    """Open a customer record for an enterprise, by its unified social credit code."""
    command = customers.register_enterprise(
        vault_of(request), name=body.name, credit_code=body.credit_code,
        legal_representative=body.legal_representative, mobile=body.mobile, actor=me.actor,
    )  # fmt: skip
    return await _create(request, me, key, body, lambda tx: CustomerOut.of(command.fn(tx)))


@router.post("/customers/search", tags=["staff: customers"], summary="Find a customer")
async def find_customers(request: Request, me: Lookup, body: CustomerSearchIn) -> CustomersOut:
    """By identity number or by mobile number: a POST, so that no number sits in a URL or an
    access log. Numbers come back masked."""
    vault = vault_of(request)
    today = business_date(request.app.state.clock.now())

    def find(conn: Connection) -> CustomersOut:
        if body.mobile is not None:
            found = customers.find_by_mobile(conn, vault, body.mobile)
        else:
            one = customers.find_by_id_number(
                conn, vault, Kind(body.kind), body.id_number or "", today=today
            )
            found = [] if one is None else [one]
        return CustomersOut(customers=[CustomerOut.of(c) for c in found])

    return await read(request, find)


@router.get("/customers/{customer_id}", tags=["staff: customers"], summary="A customer's file")
async def customer_file(request: Request, me: Lookup, customer_id: ObjectId) -> CustomerFileOut:
    """The record, the accounts and the cards, numbers masked."""
    vault = vault_of(request)

    def file(conn: Connection) -> CustomerFileOut:
        return CustomerFileOut(
            customer=CustomerOut.of(customers.get_customer(conn, vault, customer_id)),
            accounts=[AccountOut.of(a) for a in accounts.accounts_of(conn, customer_id)],
            cards=[CardOut.of(c) for c in cards.cards_of(conn, customer_id)],
        )

    return await read(request, file)


@router.post("/customers/{customer_id}/accounts", tags=["staff: customers"], status_code=201)
async def open_account(
    request: Request, me: Counter, customer_id: ObjectId, body: OpenAccountIn,
    key: IdempotencyKey,
) -> AccountOut:  # fmt: skip
    """A demand or term deposit account of the tier the customer may hold."""
    command = accounts.open_account(
        customer_id=customer_id, product=body.product, tier=body.tier, currency=body.currency,
        term_months=body.term_months, rate_bp=body.rate_bp, actor=me.actor,
    )  # fmt: skip
    return await _create(request, me, key, body, lambda tx: AccountOut.of(command.fn(tx)))


@router.post("/customers/{customer_id}/cards", tags=["staff: customers"], status_code=201)
async def issue_card(
    request: Request, me: Counter, customer_id: ObjectId, body: IssueCardIn,
    key: IdempotencyKey,
) -> IssuedCardOut:  # fmt: skip
    """A debit card on one of the customer's demand accounts, or a credit card with its limit.
    The answer holds the full card number, once; a replay of it returns the same. A credit card
    that would bring the customer's credit lines (on their cards not closed, this one included)
    above what one member of staff grants alone (the parameter cards.credit_line.alone_max) is
    403 `CREDIT_LINE_NEEDS_APPROVAL` with `details.cap` and `details.granted` (what the
    customer's cards hold now): propose it as card.issue.credit (POST /approvals)."""
    vault = vault_of(request)
    if isinstance(body, IssueDebitCardIn):
        command = cards.issue_debit_card(
            vault, customer_id=customer_id, account_number=body.account_number, actor=me.actor
        )
    else:
        command = cards.issue_credit_card(
            vault, customer_id=customer_id, credit_line=parse_minor(body.credit_line, "CNY"),
            actor=me.actor,
        )  # fmt: skip
    return await _create(request, me, key, body, lambda tx: IssuedCardOut.of(command.fn(tx)))


@router.put(
    "/customers/{customer_id}/credentials/{kind}", tags=["staff: customers"], status_code=204,
    response_class=Response, summary="Set a login password or transaction PIN at the counter",
)  # fmt: skip
async def set_secret(
    request: Request, me: Counter, customer_id: ObjectId, kind: SecretKind, body: SecretIn
) -> None:
    """The customer types it on the counter's keypad; it replaces the old one and clears its
    failures and locks."""
    await write(
        request,
        security.set_secret(customer_id=customer_id, kind=kind, secret=body.secret, actor=me.actor),
    )


class MobileIn(In):
    mobile: Annotated[str, text(20, "The customer's new mainland mobile number")]


@router.put("/customers/{customer_id}/mobile", tags=["staff: customers"],
            summary="Change the mobile number at the counter")  # fmt: skip
async def change_mobile(
    request: Request, me: Counter, customer_id: ObjectId, body: MobileIn
) -> CustomerOut:
    """After checking the customer's identity in person: SMS codes go to the new number from
    now on, and for 72 hours risk control treats SMS-confirmed business as suspicious. A
    customer risk control stops is 422 `RISK_REJECTED`."""
    command = mobile.change_at_counter(
        vault_of(request), customer_id=customer_id, mobile=body.mobile, actor=me.actor
    )
    return CustomerOut.of(await write(request, command))


@router.post("/customers/{customer_id}/token", tags=["staff: customers"], status_code=201)
async def enrol_token(
    request: Request, me: Counter, customer_id: ObjectId, key: IdempotencyKey
) -> TokenEnrolledOut:
    """Give the customer a token (TOTP) for their authenticator app; an earlier one stops
    working at once."""
    command = security.enroll_token(
        vault_of(request), customer_id=customer_id, label=f"customer-{customer_id}",
        actor=me.actor,
    )  # fmt: skip
    return await _create(
        request, me, key, None, lambda tx: TokenEnrolledOut(otpauth_uri=command.fn(tx))
    )


# -- maker-checker ------------------------------------------------------------------------------
@router.post("/approvals", tags=["staff: approvals"], status_code=201, summary="Propose")
async def propose(
    request: Request, me: Maker, body: ProposalIn, key: IdempotencyKey
) -> ApprovalOut:
    """Ask for a sensitive action; another member of staff (a checker) decides it.

    Actions: account.freeze, account.unfreeze, account.suspend, account.reinstate,
    account.close (params {"account": number}); card.freeze, card.unfreeze, card.close
    ({"card": id}); credential.unlock ({"customer": id, "kind": "login_password" |
    "transaction_pin" | "token"}); parameter.set ({"name": parameter name, "value":
    integer}, see GET /api/v1/staff/parameters); gateway.fee_plan.add ({"code", "name",
    "rate_ppm", "fixed", "minimum", "maximum"}, amounts in fen, maximum null for none; plans
    never change once made); card.issue.credit ({"customer": id, "credit_line": fen}, a credit
    card that would bring the customer's credit lines above what one member of staff grants
    alone: issued on approval whatever the customer holds then, its number masked in every
    answer).
    """
    command = approvals.propose(body.action, body.params, reason=body.reason, maker=me.actor)
    return await _create(
        request, me, key, body, lambda tx: ApprovalOut.of(approvals.get(tx.conn, command.fn(tx)))
    )


@router.get("/approvals", tags=["staff: approvals"], summary="Pending requests, oldest first")
async def pending(request: Request, me: Maker) -> ApprovalsOut:
    found = await read(request, approvals.pending)
    return ApprovalsOut(approvals=[ApprovalOut.of(a) for a in found])


@router.get("/approvals/{request_id}", tags=["staff: approvals"], summary="One request")
async def approval(request: Request, me: Maker, request_id: ObjectId) -> ApprovalOut:
    return ApprovalOut.of(await read(request, lambda conn: approvals.get(conn, request_id)))


@router.post("/approvals/{request_id}/approve", tags=["staff: approvals"])
async def approve(
    request: Request, me: Checker, request_id: ObjectId, body: DecisionIn
) -> ApprovalOut:
    """Approve and carry out the action, in one transaction; never one's own request."""
    command = approvals.approve(
        request_id, checker=me.actor, note=body.note, vault=vault_of(request)
    )
    return ApprovalOut.of(await write(request, _decided(command, request_id)))


@router.post("/approvals/{request_id}/reject", tags=["staff: approvals"])
async def reject(
    request: Request, me: Checker, request_id: ObjectId, body: DecisionIn
) -> ApprovalOut:
    """Turn the request down (a note is required); nothing is done."""
    command = approvals.reject(request_id, checker=me.actor, note=body.note)
    return ApprovalOut.of(await write(request, _decided(command, request_id)))


# -- staff administration -----------------------------------------------------------------------
@router.get("/admin/staff", tags=["staff: admin"], summary="Every staff login")
async def staff_logins(request: Request, me: Admin) -> StaffLoginsOut:
    now = request.app.state.clock.now()
    everyone = await read(request, staff.everyone)
    return StaffLoginsOut(staff=[StaffLoginOut.of_login(m, now) for m in everyone])


async def _administer(request: Request, command: Command[staff.StaffMember]) -> StaffLoginOut:
    member = await write(request, command)
    return StaffLoginOut.of_login(member, request.app.state.clock.now())


@router.post("/admin/staff/{staff_id}/disable", tags=["staff: admin"], summary="Disable a login")
async def disable_staff(request: Request, me: Admin, staff_id: ObjectId) -> StaffLoginOut:
    """It can no longer log in, and its open sessions end at once. Never one's own."""
    return await _administer(request, staff.disable(staff_id=staff_id, actor=me.actor))


@router.post("/admin/staff/{staff_id}/enable", tags=["staff: admin"], summary="Enable a login")
async def enable_staff(request: Request, me: Admin, staff_id: ObjectId) -> StaffLoginOut:
    return await _administer(request, staff.enable(staff_id=staff_id, actor=me.actor))


@router.post("/admin/staff/{staff_id}/unlock", tags=["staff: admin"], summary="Unlock a login")
async def unlock_staff(request: Request, me: Admin, staff_id: ObjectId) -> StaffLoginOut:
    """Clear its failures and locks, temporary or permanent."""
    return await _administer(request, staff.unlock(staff_id=staff_id, actor=me.actor))


@router.put("/admin/staff/{staff_id}/roles", tags=["staff: admin"], summary="Change roles")
async def set_staff_roles(
    request: Request, me: Admin, staff_id: ObjectId, body: RolesIn
) -> StaffLoginOut:
    """Replace the login's roles; the audit record keeps the old and the new."""
    command = staff.set_roles(staff_id=staff_id, roles=tuple(body.roles), actor=me.actor)
    return await _administer(request, command)


@router.post("/admin/staff/{staff_id}/token", tags=["staff: admin"], status_code=201)
async def reset_staff_token(
    request: Request, me: Admin, staff_id: ObjectId, key: IdempotencyKey
) -> StaffTokenResetOut:
    """A new console token (a lost phone): the answer's URI is for the authenticator app and
    shown once (a replay under the same key shows it again); the old token stops at once."""
    command = staff.reset_token(vault_of(request), staff_id=staff_id, actor=me.actor)
    now = request.app.state.clock.now()

    def make(tx: Tx) -> StaffTokenResetOut:
        done = command.fn(tx)
        return StaffTokenResetOut(
            otpauth_uri=done.otpauth_uri, staff=StaffLoginOut.of_login(done.member, now)
        )

    return await _create(request, me, key, None, make)
