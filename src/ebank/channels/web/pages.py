"""Server-rendered pages. Templates autoescape everything: names come from customers."""

from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import Engine

from ebank.core.money import format_minor
from ebank.ledger import queries

router = APIRouter(include_in_schema=False)

templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
)

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
