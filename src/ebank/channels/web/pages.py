"""Server-rendered pages. Templates autoescape everything: names come from customers."""

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from ebank.channels.web import i18n
from ebank.channels.web.templating import templates
from ebank.core.money import format_minor
from ebank.ledger import queries

router = APIRouter(include_in_schema=False)


# The landing page is a welcome, not a statement: a demo bank lists its first accounts only.
DEMO_ACCOUNTS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class AccountLine:
    code: str
    name: str
    currency: str
    balance: str
    status: str


def demo_accounts(engine: Engine) -> list[AccountLine]:
    with engine.connect() as conn:
        views = queries.list_accounts(conn, kind="customer", limit=DEMO_ACCOUNTS_SHOWN)
    return [
        AccountLine(v.code, v.name, v.currency, format_minor(v.balance, v.currency), v.status)
        for v in views
    ]


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    state = request.app.state
    shown = demo_accounts(state.engine) if state.settings.demo else None
    return templates.TemplateResponse(request, "index.html", {"accounts": shown})


LANGUAGE_COOKIE_DAYS = 365


@router.get("/lang/{locale}", name="switch_language")
def switch_language(request: Request, locale: str, next: str = "/") -> Response:
    """The switch on every page: remember the language, and back to the page it was on (a
    path of this site only, so that the link cannot send anyone elsewhere)."""
    target = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
    response = RedirectResponse(target.replace("\\", "/"), status_code=303)
    if locale in i18n.LOCALES:
        response.set_cookie(
            i18n.COOKIE, locale, max_age=LANGUAGE_COOKIE_DAYS * 86_400, path="/",
            secure=request.url.scheme == "https", httponly=True, samesite="lax",
        )  # fmt: skip
    return response
