"""The counter's credit card form above what one member of staff grants alone: the page says
the cap and what the customer's cards hold now, refuses to issue above it (the customer's lines
together) beside the line, and submits such a line for approval with a reason; the approvals
queue shows it in yuan, and the card is issued when a supervisor (never the teller who
proposed it) approves it."""

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from ebank.cards.service import CREDIT_ACTION, cards_of
from ebank.cards.tables import cards
from ebank.core.writer import Writer
from ebank.ledger import queries
from ebank.ops import approvals
from tests.channels.api_support import customer, member
from tests.channels.web.console_support import console_login
from tests.channels.web.support import Pages

KEY = re.compile(r'name="key" value="([^"]+)"')


def _key(pages: Pages, page: str) -> str:
    found = KEY.search(pages.client.get(page).text)
    assert found, "no idempotency key on the page"
    return found.group(1)


def _cards(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(cards)).scalar_one())


def test_a_line_above_the_cap_is_submitted_for_approval_and_issued_when_a_supervisor_approves(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False)
    member(writer, "teller1", "teller")
    member(writer, "super1", "supervisor")
    pages = console_login(api, "teller1")
    page = f"/console/counter/customers/{person.id}"
    shown = pages.get(page).text
    assert "¥50,000.00" in shown and "提交复核" in shown
    refused = pages.submit(page, f"{page}/credit-cards", credit_line="80,000",
                           key=_key(pages, page))  # fmt: skip
    assert refused.status_code == 403 and 'id="credit_line-error"' in refused.text
    assert "¥50000.00" in refused.text and 'value="80,000"' in refused.text
    proposals = f"{page}/credit-cards/proposals"
    reasonless = pages.submit(page, proposals, credit_line="80,000", key=_key(pages, page))
    assert reasonless.status_code == 400 and 'id="credit_reason-error"' in reasonless.text
    with engine.connect() as conn:
        assert approvals.pending(conn) == []
    key = _key(pages, page)
    done = pages.submit(page, proposals, credit_line="80,000", credit_reason="年收入证明已核",
                        key=key)  # fmt: skip
    assert done.status_code == 200 and done.url.path == page and "已提交复核" in done.text
    again = pages.submit(page, proposals, credit_line="80,000", credit_reason="年收入证明已核",
                         key=key)  # fmt: skip
    assert again.status_code == 200  # the same form sent twice proposes once
    with engine.connect() as conn:
        [waiting] = approvals.pending(conn)
    assert waiting.action == CREDIT_ACTION
    assert waiting.params == {"customer": person.id, "credit_line": 8_000_000}
    assert _cards(engine) == 0  # nothing is issued until a checker approves
    queue = pages.get("/console/approvals").text
    assert "发放信用卡（额度超出单人权限）" in queue and "信用额度" in queue
    assert "¥80,000.00" in queue and "8000000" not in queue
    own = pages.submit("/console/approvals", f"/console/approvals/{waiting.id}/approve")
    assert own.status_code == 403 and _cards(engine) == 0
    api.cookies.clear()
    supervisor = console_login(api, "super1")
    approved = supervisor.submit("/console/approvals",
                                 f"/console/approvals/{waiting.id}/approve")  # fmt: skip
    assert approved.status_code == 200 and "额度超出单人权限" not in approved.text
    with engine.connect() as conn:
        [card] = cards_of(conn, person.id)
        line = queries.get_account(conn, account_id=card.ledger_account_id).credit_line
        assert approvals.get(conn, waiting.id).status == "approved"
    assert card.kind == "credit" and line == 8_000_000
    assert card.masked in supervisor.get(page).text


def test_a_second_card_that_brings_the_customers_lines_above_the_cap_is_refused_beside_the_line(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False)
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    page = f"/console/counter/customers/{person.id}"
    issued = pages.submit(page, f"{page}/credit-cards", credit_line="30,000",
                          key=_key(pages, page))  # fmt: skip
    assert issued.status_code == 200 and issued.url.path == page
    assert "（现有¥30,000.00）" in pages.get(page).text
    refused = pages.submit(page, f"{page}/credit-cards", credit_line="30,000",
                           key=_key(pages, page))  # fmt: skip
    assert refused.status_code == 403 and 'id="credit_line-error"' in refused.text
    assert "¥30000.00" in refused.text and "¥50000.00" in refused.text
    assert _cards(engine) == 1
