"""Helpers for the console's page tests: a member of staff logged in through the pages, with
the password and then their token's code."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.accounts.service import get_account
from ebank.core.writer import Writer
from ebank.risk.models import Context
from tests.channels.api_support import STAFF_PASSWORD, account_with_money, customer, staff_code
from tests.channels.web.support import Pages
from tests.risk.holds import hold_for_review


def console_login(client: TestClient, username: str) -> Pages:
    """Log `username` in to the console through its pages; on its home page."""
    pages = Pages(client)
    asked = pages.submit(
        "/console/login", "/console/login", username=username, password=STAFF_PASSWORD
    )
    assert asked.status_code == 200 and 'name="code"' in asked.text, asked.text
    home = pages.submit(
        "/console/login", "/console/login/verify", code=staff_code(client, username)
    )
    assert home.status_code == 200 and home.url.path == "/console/", home.text
    return pages


def held_case(writer: Writer, engine: Engine) -> tuple[int, int]:
    """A payment of ¥800 held for review, as risk control holds one; (case id, payer id)."""
    payer, payee = customer(writer, 1), customer(writer, 2)
    numbers = account_with_money(writer, payer, [100_000]), account_with_money(writer, payee, [])
    with engine.connect() as conn:
        paying, paid = (get_account(conn, number=n) for n in numbers)
    ctx = Context("payment", payer.id, "online", amount=80_000,
                  account_id=paying.ledger_account_id, payee=f"acct:{paid.ledger_account_id}",
                  payee_account_id=paid.ledger_account_id)  # fmt: skip
    return hold_for_review(writer, ctx, paying, paid)[1], payer.id
