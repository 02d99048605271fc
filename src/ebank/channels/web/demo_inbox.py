"""Demo mode only: the inbox page, with the SMS codes and alerts the demo bank sent and the
codes its people's tokens show now, so that a newcomer can log in and pay without a phone.

The app includes this router only when it serves the demo bank (`ebank demo`); a real bank's
codes go to its SMS gateway and its people's tokens stay in their pockets.
"""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from ebank import demo
from ebank.channels.api.common import read, vault_of
from ebank.channels.web import words
from ebank.channels.web.area import Area
from ebank.channels.web.words import N_
from ebank.notify import service as notify

INBOX = Area("demo", "/demo", "demo_inbox", lambda session: False)
router = APIRouter(prefix=INBOX.prefix, include_in_schema=False)
SHOWN = 30
words.define("demo_holder", {
    "staff": N_("Staff (console)"), "operator": N_("Enterprise operator"),
    "customer": N_("Customer"),
})  # fmt: skip


@router.get("/", name="demo_home")
async def home(request: Request) -> Response:
    return RedirectResponse(request.url_for("demo_inbox").path, status_code=303)


@router.get("/inbox", name="demo_inbox")
async def inbox(request: Request) -> Response:
    vault, now = vault_of(request), request.app.state.clock.now()

    def gather(conn: Connection) -> tuple[list[notify.SmsMessage], list[demo.DemoToken]]:
        return notify.inbox(conn, vault, limit=SHOWN), demo.token_codes(conn, vault, now)

    messages, tokens = await read(request, gather)
    template = "demo/messages.html" if request.headers.get("HX-Request") else "demo/inbox.html"
    return INBOX.visit(request).render(template, messages=messages, tokens=tokens)
