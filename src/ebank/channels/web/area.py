"""A signed-in part of the site: online banking (/bank), the merchant portal (/merchant) and
the staff console (/console) all work the same way, and this module is that way.

A visitor's state lives in a sealed cookie of the area's own (`guard.seal`): the CSRF token
every form carries, the login under way, the session token once logged in, and a notice to
show once. The session itself is the bank's (`security.sessions`), resumed on every request,
so that it ends after the same idle time as the API's; the page warns a minute before.

Routes use it so:

    @router.get("/", name="bank_home")
    async def home(request: Request) -> Response:
        me = await BANK.signed_in(request)              # or a redirect to the login page
        ...
        return me.render("bank/home.html", accounts=...)

    @router.post("/payees", name="bank_payee_add")
    async def add_payee(request: Request) -> Response:
        me, form = await BANK.submitted(request)        # CSRF checked, session resumed
        try:
            await write(request, ...)
        except EbankError as error:
            return me.render("bank/payees.html", error=error, values=form)
        return me.redirect("bank_payees", notice=_("Payee saved"))

A form without the area's CSRF token is refused (403) and changes nothing; a page asked for
without a session sends the browser to the login page, and back after it.
"""

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from ebank.channels.api.common import write
from ebank.channels.web import guard, i18n
from ebank.channels.web.i18n import _
from ebank.channels.web.templating import templates
from ebank.core.errors import EbankError
from ebank.core.money import digits, parse_minor
from ebank.core.settings import get_settings
from ebank.core.writer import Command
from ebank.security import sessions

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ID = re.compile(r"[1-9][0-9]{0,18}")
MAX_ID = 2**63 - 1
GROUPED = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?")
PERCENT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")  # a rate as people type it: "1.75"
T = TypeVar("T")
WARN_BEFORE_SECONDS = 60  # the idle warning shows this long before the session ends


@dataclass(slots=True)
class State:
    csrf: str
    seen: float  # Unix seconds of the last request: idle longer and the state is forgotten
    challenge: str | None = None  # a login between its password and its code
    # The factor that login's second step asks for (a customer's: `login.begin`); a login
    # begun before the state kept it texted the code.
    factor: str = "sms"
    session: str | None = None  # the session token, once logged in
    notice: str | None = None  # said once, on the next page (already translated)
    after: str | None = None  # where to go once logged in
    who: str = ""  # the name the header shows, masked as the area shows names


_STATE_FIELDS = frozenset(f.name for f in fields(State))


class LoginUnderWay(Protocol):
    challenge: str | None  # the login between its password and its code


async def login_step(
    request: Request, state: LoginUnderWay, step: Callable[[str], Command[T]]
) -> T:
    """`step` of the login under way in `state`, given its challenge, through the writer. A
    login that ran out (SESSION_EXPIRED) is forgotten: the caller shows its first step."""
    if state.challenge is None:
        raise EbankError("SESSION_EXPIRED")
    try:
        return await write(request, step(state.challenge))
    except EbankError as error:
        if error.code == "SESSION_EXPIRED":
            state.challenge = None
        raise


class NotSignedIn(Exception):
    """Raised by `Area.signed_in`: the app answers with a redirect to the area's login."""

    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass(slots=True)
class Visit:
    """One request to an area, with the state it came with (a fresh one if its cookie was
    missing, altered or idle too long)."""

    area: "Area"
    request: Request
    state: State
    trusted: bool  # the state came from a good cookie

    @property
    def now(self) -> Any:
        return self.request.app.state.clock.now()

    def keep(self, response: Response) -> Response:
        return guard.seal(
            self.request, response, self.area.cookie, self.area.purpose, asdict(self.state),
            path=self.area.prefix, max_age=get_settings().session_idle_seconds,
        )  # fmt: skip

    def forget(self, response: Response) -> Response:
        return guard.forget(self.request, response, self.area.cookie, path=self.area.prefix)

    def url(self, name: str, **params: Any) -> str:
        return self.request.url_for(name, **params).path

    def forget_login(self) -> None:
        """Forget the login under way: the next page is its first step."""
        self.state.challenge = None

    def render(
        self, template: str, *, status: int = 200, error: EbankError | None = None,
        fields: Iterable[str] = (), at: str = "form", keep: bool = True, **context: Any,
    ) -> Response:  # fmt: skip
        """A page of the area, with `error` beside the field of `fields` it names (or where
        the page puts the errors that name none: `at`, above the form by default) and the
        notice left for it; the state is sent back unless not to `keep` it."""
        i18n.use(i18n.locale_of(self.request))
        problems = {}
        if error is not None:
            problems[slot_of(error, fields, at)] = error.message(i18n.language())
        notice, self.state.notice = self.state.notice, None
        response = templates.TemplateResponse(
            self.request, template,
            {"area": self.area, "csrf": self.state.csrf, "problems": problems, "notice": notice,
             "idle_seconds": get_settings().session_idle_seconds,
             "warn_seconds": WARN_BEFORE_SECONDS, **context},
            status_code=error.status if error is not None and status == 200 else status,
        )  # fmt: skip
        guard.guarded(response)
        return self.keep(response) if keep else response

    def redirect(self, name: str, *, notice: str | None = None, query: str = "",
                 **params: Any) -> Response:  # fmt: skip
        """After a form that worked: to a page (POST, redirect, GET), saying `notice` there."""
        if notice is not None:
            self.state.notice = notice
        target = self.url(name, **params) + (f"?{query}" if query else "")
        return self.keep(guard.guarded(RedirectResponse(target, status_code=303)))


@dataclass(slots=True)
class SignedIn(Visit):
    """A visit with a live session of the kind the area admits."""

    session: sessions.Session

    def render(self, template: str, **context: Any) -> Response:  # type: ignore[override]
        context.setdefault("signed_in", True)
        context.setdefault("who", self.state.who)
        return Visit.render(self, template, **context)

    @property
    def customer_id(self) -> int:
        assert self.session.customer_id is not None
        return self.session.customer_id


@dataclass(frozen=True, slots=True)
class Area:
    name: str  # bank | merchant | console
    prefix: str  # the path the area's pages, and its cookie, live under
    login_route: str  # the name of the area's login page
    admits: Callable[[sessions.Session], bool]  # whose sessions may use the area

    @property
    def cookie(self) -> str:
        return f"ebank_{self.name}"

    @property
    def purpose(self) -> str:
        return f"web.{self.name}"

    def visit(self, request: Request) -> Visit:
        # The visitor's language from the start: notices and errors are worded before render.
        i18n.use(i18n.locale_of(request))
        if _cross_site_arrival(request, self.cookie):
            raise NotSignedIn(_bounce(request))
        now = request.app.state.clock.now().timestamp()
        saved = guard.unseal(request, self.cookie, self.purpose)
        try:
            # A state sealed by an earlier release may hold a field since dropped.
            kept = {k: v for k, v in saved.items() if k in _STATE_FIELDS} if saved else None
            state = State(**kept) if kept is not None else None
        except TypeError:
            state = None
        if state is not None and now - state.seen < get_settings().session_idle_seconds:
            state.seen = now
            return Visit(self, request, state, True)
        return Visit(self, request, State(secrets.token_urlsafe(32), now), False)

    async def signed_in(self, request: Request) -> SignedIn:
        """The visit and its session, resumed; otherwise NotSignedIn, to the login page and
        back here after it."""
        visit = self.visit(request)
        if visit.state.session is not None:
            try:
                session = await write(request, sessions.resume(visit.state.session))
            except EbankError:
                session = None
            if session is not None and self.admits(session):
                return SignedIn(self, request, visit.state, True, session)
            visit.state.session = None
            visit.state.notice = _("Your session has ended: please log in again")
        if request.method == "GET":
            visit.state.after = request.url.path + (
                f"?{request.url.query}" if request.url.query else ""
            )
        raise NotSignedIn(visit.redirect(self.login_route))

    async def submitted(self, request: Request) -> tuple[SignedIn, dict[str, str]]:
        """A form posted by a signed-in visitor from the area's own page, and its fields."""
        visit, form = await self.posted(request)
        signed = await self.signed_in(request)
        signed.state = visit.state
        return signed, form

    async def posted(self, request: Request) -> tuple[Visit, dict[str, str]]:
        """A form posted from the area's own page (its CSRF token matches the cookie's);
        otherwise FormForged, answered 403 with nothing changed."""
        visit = self.visit(request)
        form = await guard.read_form(request)
        given = form.get("csrf", "").encode()
        if not visit.trusted or not secrets.compare_digest(given, visit.state.csrf.encode()):
            raise FormForged(visit)
        return visit, form

    def logged_in(self, visit: Visit, started: sessions.Started, who: str, home: str) -> Response:
        """A login completed: the session kept, a fresh CSRF token, and on to the page that
        asked for it (or `home`)."""
        state = visit.state
        state.challenge, state.session = None, started.token
        state.who = who
        state.csrf = secrets.token_urlsafe(32)
        after, state.after = state.after, None
        target = after if after and _inside(after, self.prefix) else visit.url(home)
        return visit.keep(guard.guarded(RedirectResponse(target, status_code=303)))

    async def log_out(self, request: Request) -> Response:
        """End the session (if it is still live) and forget the state."""
        visit, _form = await self.posted(request)
        if visit.state.session is not None:
            try:
                session = await write(request, sessions.resume(visit.state.session))
            except EbankError:
                pass  # it had ended anyway
            else:
                await write(
                    request,
                    sessions.end(customer_id=session.customer_id, staff_id=session.staff_id,
                                 operator_id=session.operator_id, session_id=session.id),
                )  # fmt: skip
        fresh = Visit(self, request, State(secrets.token_urlsafe(32), visit.state.seen), True)
        return fresh.redirect(self.login_route, notice=_("You have logged out"))

    async def keep_alive(self, request: Request) -> Response:
        """The idle warning's "stay logged in": the session resumed, its clock restarted."""
        signed, _form = await self.submitted(request)
        return signed.keep(Response(status_code=204))

    async def restart_login(self, request: Request) -> Response:
        """Not me, or no code came: back to the first step of the login."""
        visit, _form = await self.posted(request)
        visit.forget_login()
        return visit.redirect(self.login_route)

    def session_routes(self, router: APIRouter) -> None:
        """Every area's login restart, logout and keep-alive, under its prefix."""

        async def restart(request: Request) -> Response:
            return await self.restart_login(request)

        async def log_out(request: Request) -> Response:
            return await self.log_out(request)

        async def keep_alive(request: Request) -> Response:
            return await self.keep_alive(request)

        router.add_api_route(
            "/login/restart", restart, methods=["POST"], name=f"{self.name}_login_restart"
        )
        router.add_api_route("/logout", log_out, methods=["POST"], name=f"{self.name}_logout")
        router.add_api_route(
            "/keepalive", keep_alive, methods=["POST"], name=f"{self.name}_keepalive"
        )


def _cross_site_arrival(request: Request, cookie: str) -> bool:
    """A page opened from a link on another site: the browser withholds the SameSite=Strict
    cookie, so the visitor may well be signed in. Answered with `_bounce`, never with a fresh
    state, which would replace the signed-in one in the browser and log the visitor out."""
    return (
        request.method == "GET"
        and cookie not in request.cookies
        and request.headers.get("sec-fetch-site") == "cross-site"
    )


def _bounce(request: Request) -> Response:
    """The same page asked for again by a page of the bank's own (a meta refresh, no script),
    so that the browser sends the area's cookie; nothing is set. A second arrival is same-site,
    so it cannot loop."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = templates.TemplateResponse(request, "web/bounce.html", {"target": target})
    return guard.guarded(response)


def _inside(path: str, prefix: str) -> bool:
    """A path of this area's own, never another site's (`//evil`, `/\\evil`)."""
    return path.startswith(prefix + "/") and not path.startswith(("//", "/\\")) and "\\" not in path


class FormForged(Exception):
    def __init__(self, visit: Visit) -> None:
        self.visit = visit


def slot_of(error: EbankError, fields: Iterable[str], at: str = "form") -> str:
    """Where a page shows an error: beside the field it names, or at `at`."""
    named = error.details.get("field")
    return named if isinstance(named, str) and named in set(fields) else at


def missing(name: str, label: str) -> EbankError:
    """A required field left empty; `label` is already translated."""
    return EbankError("FORM_FIELD_MISSING", field=name, label=label)


def required(form: dict[str, str], name: str, label: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise missing(name, label)
    return value


def form_key() -> str:
    """An idempotency key for a form, drawn with the page: the form sent twice (a double
    click, a reload) carries the same key, and what it asks is done once."""
    return secrets.token_urlsafe(24)


def key_of(form: dict[str, str]) -> str:
    """The key a form was drawn with (`form_key`); a fresh one if it carries none."""
    return form.get("key", "")[:128] or form_key()


def typed_secret(form: dict[str, str], name: str, label: str) -> str:
    """A password or PIN exactly as typed: a space is part of a password, as the API and the
    counter take it, so nothing is trimmed; only an empty field is refused."""
    value = form.get(name, "")
    if not value:
        raise missing(name, label)
    return value


def typed_amount(text: str, field: str, currency: str = "CNY") -> int:
    """An amount as a person types it ("100", "12.5", "1,234.50"): padded to the currency's
    digits, then read exactly by `parse_minor` (which the API uses as it is); anything else is
    INVALID_AMOUNT beside `field`."""
    text = text.strip()
    if GROUPED.fullmatch(text):  # commas only between thousands: "1,50" is not 150
        text = text.replace(",", "")
    whole, dot, fraction = text.partition(".")
    places = digits(currency)
    if whole.isdigit() and places and (not dot or len(fraction) <= places):
        text = f"{whole}.{fraction.ljust(places, '0')}"
    try:
        return parse_minor(text, currency)
    except EbankError as error:
        raise EbankError(error.code, **error.details, field=field) from None


def typed_percent(text: str, field: str, unit: int) -> int:
    """A rate typed as a percentage ("1.75", at most 100, four places), exactly, in units of
    1/`unit` of a percent: 100 gives basis points (175), 10,000 parts per million (17,500).
    A short plain decimal only: "1e999999" would overflow, or build a huge number."""
    text = text.strip()
    scaled = Decimal(text) * unit if PERCENT.fullmatch(text) else None
    if scaled is None or scaled != scaled.to_integral_value() or scaled > 100 * unit:
        raise EbankError("INVALID_INPUT", field=field, reason=_("a percentage such as 1.75"))
    return int(scaled)


def typed_id(text: str | None) -> int | None:
    """An object id from a path, a query or a form; None for anything that cannot name one
    (ASCII digits only: `int` would take "²" or "１" where `isdigit` lets them by)."""
    text = (text or "").strip()
    return int(text) if ID.fullmatch(text) and int(text) <= MAX_ID else None


def typed_day(text: str, field: str) -> date | None:
    """A date typed or picked as YYYY-MM-DD; None when left empty."""
    text = text.strip()
    if not text:
        return None
    try:
        if DAY.fullmatch(text) and 1900 <= (day := date.fromisoformat(text)).year < 3000:
            return day
    except ValueError:
        pass
    raise EbankError("INVALID_INPUT", reason=_("a date such as 2026-11-30"), field=field)


def typed_range(since: str, until: str) -> tuple[date | None, date | None]:
    """The days typed in a `from`..`to` filter, either left empty; an end before the start is
    refused beside `to`."""
    first, last = typed_day(since, "from"), typed_day(until, "to")
    if first is not None and last is not None and last < first:
        raise EbankError("INVALID_INPUT", reason=_("the end is before the start"), field="to")
    return first, last


def with_query(path: str, **params: str) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def install(app: FastAPI) -> None:
    """The app's answers to a page asked for without a session, and to a forged form."""

    async def not_signed_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotSignedIn)
        return exc.response

    async def forged(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormForged)
        visit = exc.visit
        # Nothing is set either: a forged post from another site must not reset the state.
        return visit.render("web/refused.html", error=EbankError("FORM_EXPIRED"), keep=False)

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(FormForged, forged)
