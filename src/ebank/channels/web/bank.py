"""Online banking (个人网银), the pages under /bank: logging in with the password and then the
code the login asks for (the token's, or for a customer without a usable token the SMS code it
texted; a token holder can have the SMS code texted instead), and the customer's home with
their accounts.

The same pages serve as mobile banking in a phone's browser (they are laid out for a 375 px
screen); the session is an online-banking one, as the API's online channel opens.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount
from ebank.channels.api.common import client_address, read, vault_of, write
from ebank.channels.web.area import Area, Visit, login_step, required, typed_secret
from ebank.channels.web.i18n import _
from ebank.core.crypto import mask_name
from ebank.core.errors import EbankError
from ebank.core.writer import Command
from ebank.customers import service as customers
from ebank.security import login, sessions
from ebank.security.service import Checked

CHANNEL = "online"
LOGIN_FIELDS = ("login", "password")
CODE_FIELDS = ("code",)


def _customers_only(session: sessions.Session) -> bool:
    return (
        session.customer_id is not None
        and session.operator_id is None
        and (session.channel == CHANNEL)
    )


BANK = Area("bank", "/bank", "bank_login", _customers_only)
router = APIRouter(prefix=BANK.prefix, include_in_schema=False)
BANK.session_routes(router)


# -- logging in -------------------------------------------------------------------------------
def _code_step(visit: Visit, error: EbankError | None = None) -> Response:
    """The second step, asking for the factor the login asks for, `error` beside the code."""
    return visit.render("bank/verify.html", error=error, fields=CODE_FIELDS, at="code",
                        factor=visit.state.factor, values={})  # fmt: skip


def _code_refused(visit: Visit, error: EbankError) -> Response:
    """A refusal at the second step; a login that ran out starts again."""
    if error.code == "SESSION_EXPIRED":  # `login_step` has forgotten it
        return visit.render("bank/login.html", error=error, values={})
    return _code_step(visit, error)


@router.get("/login", name="bank_login")
async def login_page(request: Request) -> Response:
    visit = BANK.visit(request)
    if visit.state.challenge is not None:
        return _code_step(visit)
    return visit.render("bank/login.html", values={})


@router.post("/login", name="bank_login_password")
async def log_in(request: Request) -> Response:
    visit, form = await BANK.posted(request)
    values = {"login": form.get("login", "")[:32]}
    try:
        who = required(form, "login", _("ID or mobile number"))
        password = typed_secret(form, "password", _("Login password"))
        begun = await write(
            request,
            login.begin(vault_of(request), login=who, password=password, channel=CHANNEL),
        )
        challenge = begun.value()
    except EbankError as error:
        return visit.render("bank/login.html", error=error, fields=LOGIN_FIELDS, at="password",
                            values=values)  # fmt: skip
    visit.state.challenge, visit.state.factor = challenge.token, challenge.factor
    return visit.redirect("bank_login")


@router.post("/login/sms", name="bank_login_sms")
async def text_code_instead(request: Request) -> Response:
    """No token at hand: the SMS code is texted, and the second step asks for it."""
    visit, _form = await BANK.posted(request)
    vault = vault_of(request)
    try:
        await login_step(request, visit.state, lambda c: login.send_code(vault, challenge=c))
    except EbankError as error:
        return _code_refused(visit, error)
    visit.state.factor = "sms"
    return visit.redirect(
        "bank_login", notice=_("We have texted a code for this login to your mobile number.")
    )


@router.post("/login/verify", name="bank_login_verify")
async def verify(request: Request) -> Response:
    visit, form = await BANK.posted(request)

    def complete(challenge: str) -> Command[Checked[sessions.Started]]:
        code = required(form, "code", _("Verification code"))
        return login.complete(vault_of(request), challenge=challenge, factor=visit.state.factor,
                              code=code, ip=client_address(request))  # fmt: skip

    try:
        started = (await login_step(request, visit.state, complete)).value()
    except EbankError as error:
        return _code_refused(visit, error)
    customer_id = started.session.customer_id
    name = await read(request, lambda conn: customers.holder(conn, customer_id).name)
    return BANK.logged_in(visit, started, mask_name(name), "bank_home")


# -- home ------------------------------------------------------------------------------------
@router.get("/", name="bank_home")
async def home(request: Request) -> Response:
    me = await BANK.signed_in(request)
    customer_id = me.customer_id

    def held(conn: Connection) -> list[CustomerAccount]:
        return accounts.accounts_of(conn, customer_id)

    return me.render("bank/home.html", accounts=await read(request, held))
