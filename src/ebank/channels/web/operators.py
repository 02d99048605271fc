"""How an enterprise's operators log in to their pages: the merchant portal (/merchant) and
corporate banking (/corporate) both, with one set of routes made here for each area.

An operator logs in as the API's corporate login does (`corporate.operators`): the
enterprise's credit code, their username and password, then a code from their own token. The
session is the corporate one and names the operator; each area keeps it in its own cookie.
"""

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ebank.channels.api.common import read, vault_of, write
from ebank.channels.web.area import Area, SignedIn, login_step, required, typed_secret
from ebank.channels.web.i18n import _
from ebank.core.crypto import mask_name
from ebank.core.errors import EbankError
from ebank.core.writer import Command
from ebank.corporate import operators
from ebank.corporate.operators import Operator
from ebank.security import sessions
from ebank.security.service import Checked

LOGIN_FIELDS = ("credit_code", "username", "password")
CODE_FIELDS = ("code",)
LOGIN_TEMPLATE, CODE_TEMPLATE = "corporate/login.html", "corporate/verify.html"


def is_operator(session: sessions.Session) -> bool:
    """A corporate session, which names the operator: what both areas admit."""
    return session.operator_id is not None and session.channel == sessions.OPERATOR_CHANNEL


@dataclass(slots=True)
class Signed:
    """A signed-in visit and its operator as they stand now (roles, enterprise)."""

    me: SignedIn
    operator: Operator

    def can(self, role: str) -> bool:
        return role in self.operator.roles


async def operator_of(area: Area, request: Request) -> Signed:
    """The visit of a signed-in operator, read afresh: a role taken away counts at once."""
    me = await area.signed_in(request)
    operator_id = me.session.operator_id
    assert operator_id is not None
    return Signed(me, await read(request, lambda conn: operators.get(conn, operator_id)))


async def operator_posted(area: Area, request: Request) -> tuple[Signed, dict[str, str]]:
    """A form posted by a signed-in operator from the area's own page (CSRF checked), and its
    fields."""
    visit, form = await area.posted(request)
    signed = await operator_of(area, request)
    signed.me.state = visit.state
    return signed, form


def login_routes(area: Area, router: APIRouter, home: str) -> None:
    """The area's login pages (password, then token code) and its logout, under its prefix;
    once logged in, on to the page that asked (or `home`)."""
    name = area.name

    async def login_page(request: Request) -> Response:
        visit = area.visit(request)
        if visit.state.challenge is not None:
            return visit.render(CODE_TEMPLATE)
        return visit.render(LOGIN_TEMPLATE, values={})

    async def log_in(request: Request) -> Response:
        visit, form = await area.posted(request)
        values = {"credit_code": form.get("credit_code", "")[:18],
                  "username": form.get("username", "")[:64]}  # fmt: skip
        try:
            credit_code = required(form, "credit_code", _("Unified social credit code"))
            username = required(form, "username", _("Operator username"))
            password = typed_secret(form, "password", _("Login password"))
            begun = await write(
                request,
                operators.begin_login(vault_of(request), credit_code=credit_code.upper(),
                                      username=username, password=password),
            )  # fmt: skip
            challenge = begun.value()
        except EbankError as error:
            return visit.render(LOGIN_TEMPLATE, error=error, fields=LOGIN_FIELDS, at="password",
                                values=values)  # fmt: skip
        visit.state.challenge = challenge.token
        return visit.redirect(area.login_route)

    async def verify(request: Request) -> Response:
        visit, form = await area.posted(request)

        def complete(challenge: str) -> Command[Checked[operators.OperatorLogin]]:
            code = required(form, "code", _("Token code"))
            return operators.complete_login(vault_of(request), challenge=challenge, code=code)

        try:
            logged = (await login_step(request, visit.state, complete)).value()
        except EbankError as error:
            if error.code == "SESSION_EXPIRED":  # the login ran out: it starts again
                return visit.render(LOGIN_TEMPLATE, error=error, values={})
            return visit.render(CODE_TEMPLATE, error=error, fields=CODE_FIELDS, at="code")
        return area.logged_in(visit, logged.started, mask_name(logged.operator.name), home)

    router.add_api_route("/login", login_page, methods=["GET"], name=area.login_route)
    router.add_api_route("/login", log_in, methods=["POST"], name=f"{name}_login_password")
    router.add_api_route("/login/verify", verify, methods=["POST"], name=f"{name}_login_verify")
    area.session_routes(router)
