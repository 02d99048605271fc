"""Helpers for the tests of online banking's money pages: a transfer taken to its
confirmation page, and the sealed field that page carries."""

import re

import httpx
from sqlalchemy import Engine

from ebank.accounts.service import get_account
from tests.channels.web.support import Pages, csrf_of

PENDING = re.compile(r'name="pending" value="([^"]+)"')


def pending_of(page: httpx.Response) -> str:
    found = PENDING.search(page.text)
    assert found, f"no confirmation form on {page.url}: {page.text}"
    return found.group(1)


def to_confirmation(pages: Pages, **fields: str) -> httpx.Response:
    """Fill in the transfer form and send it: the confirmation page, or the form again."""
    typed = {"speed": "realtime", "memo": "", "payee_bank": "", **fields}
    return pages.submit("/bank/transfer", "/bank/transfer", **typed)


def confirm(pages: Pages, page: httpx.Response, **fields: str) -> httpx.Response:
    """Send the confirmation form of `page` (its own token and sealed payment) with `fields`."""
    data = {"csrf": csrf_of(page), "pending": pending_of(page), **fields}
    pages.last = pages.client.post("/bank/transfer/confirm", data=data)
    return pages.last


def ask_code(pages: Pages, page: httpx.Response) -> httpx.Response:
    """The confirmation page's "text me a code" button."""
    data = {"csrf": csrf_of(page), "pending": pending_of(page)}
    pages.last = pages.client.post("/bank/transfer/code", data=data)
    return pages.last


def balance(engine: Engine, number: str) -> int:
    with engine.connect() as conn:
        return get_account(conn, number=number).balance
