"""Who is calling: the bearer session behind a request, a customer's or a staff member's.

Every authenticated request resumes its session (which resets the idle clock), so a token
stops working the moment its session has run out or ended. Without a token: 401
AUTH_REQUIRED; an unknown, ended or run-out one: 401 SESSION_EXPIRED; a customer's token on a
staff endpoint, a staff token on a customer's, an operator's (corporate banking) on either, or
a role the staff member or operator lacks: 403 FORBIDDEN.

Use them as dependencies:
    principal: CustomerPrincipal = Depends(current_customer)
    principal: StaffPrincipal = Depends(current_staff)
    principal: StaffPrincipal = Depends(staff_role(*staff.CHECKERS))
    principal: OperatorSession = Depends(current_operator)
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ebank.channels.api.common import client_address, read, write
from ebank.core.errors import EbankError
from ebank.corporate import operators
from ebank.ops import staff
from ebank.risk.models import Origin
from ebank.security import sessions

customer_bearer = HTTPBearer(
    scheme_name="customer", auto_error=False,
    description="A customer's session token from POST /api/v1/auth/login/verify",
)  # fmt: skip
operator_bearer = HTTPBearer(
    scheme_name="operator", auto_error=False,
    description="An enterprise operator's session token from POST "
    "/api/v1/corporate/auth/login/verify",
)  # fmt: skip
staff_bearer = HTTPBearer(
    scheme_name="staff", auto_error=False,
    description="A staff session token from POST /api/v1/staff/auth/login/verify",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CustomerPrincipal:
    customer_id: int
    session_id: int
    channel: str  # online | mobile
    device: str = ""  # the keyed hash of the device the session was opened from
    ip: str = ""  # the caller's address, as this request came

    @property
    def origin(self) -> Origin:
        """Where the request came from, for risk control."""
        return Origin(self.device, self.ip)

    @property
    def actor(self) -> str:
        return f"customer:{self.customer_id}"


@dataclass(frozen=True, slots=True)
class OperatorSession:
    operator: operators.Operator
    session_id: int


@dataclass(frozen=True, slots=True)
class StaffPrincipal:
    staff_id: int
    session_id: int
    username: str
    roles: tuple[str, ...]

    @property
    def actor(self) -> str:
        """How audit records and approvals name them."""
        return f"staff:{self.staff_id}"


async def _session(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> sessions.Session:
    if credentials is None:
        raise EbankError("AUTH_REQUIRED")
    return await write(request, sessions.resume(credentials.credentials))


async def current_customer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(customer_bearer)],
) -> CustomerPrincipal:
    """The customer whose session the bearer token is; their session resumed."""
    session = await _session(request, credentials)
    if session.customer_id is None or session.operator_id is not None:
        raise EbankError("FORBIDDEN")
    return CustomerPrincipal(
        session.customer_id, session.id, session.channel, session.device, client_address(request)
    )


async def current_operator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(operator_bearer)],
) -> OperatorSession:
    """The enterprise operator whose corporate session the bearer token is, as they stand now
    (roles, disabled); the enterprise is `operator.customer_id`."""
    session = await _session(request, credentials)
    operator_id = session.operator_id
    if operator_id is None:
        raise EbankError("FORBIDDEN")
    found = await read(request, lambda conn: operators.get(conn, operator_id))
    if found.disabled:
        raise EbankError("SESSION_EXPIRED")
    return OperatorSession(found, session.id)


async def current_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(staff_bearer)],
) -> StaffPrincipal:
    """The member of staff whose console session the bearer token is, with their roles now."""
    session = await _session(request, credentials)
    staff_id = session.staff_id
    if staff_id is None:
        raise EbankError("FORBIDDEN")
    member = await read(request, lambda conn: staff.get(conn, staff_id))
    return StaffPrincipal(member.id, session.id, member.username, member.roles)


def staff_role(*roles: str) -> Callable[..., Awaitable[StaffPrincipal]]:
    """A dependency admitting staff who hold at least one of `roles` (see `ops.staff`)."""
    unknown = set(roles) - set(staff.ROLES)
    if not roles or unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    async def dependency(
        principal: Annotated[StaffPrincipal, Depends(current_staff)],
    ) -> StaffPrincipal:
        if not set(principal.roles) & set(roles):
            raise EbankError("FORBIDDEN")
        return principal

    return dependency
