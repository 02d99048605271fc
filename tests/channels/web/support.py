"""Helpers for the page tests: a browser-like client over the app in process, that reads each
form's CSRF token from the page it was given, as a browser posts what the page holds."""

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.channels.api_support import PASSWORD, Person, sms_codes

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, f"no form on {page.url}"
    return found.group(1)


class Pages:
    """A visitor of the site's pages: cookies kept, forms posted with the page's token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.last: httpx.Response | None = None

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        self.last = self.client.get(path, **kwargs)
        return self.last

    def submit(self, page: str, action: str, **fields: str) -> httpx.Response:
        """Open `page`, then post its form to `action` with `fields`, following redirects."""
        token = csrf_of(self.get(page))
        self.last = self.client.post(action, data={"csrf": token, **fields})
        return self.last


def bank_login(client: TestClient, engine: Engine, person: Person) -> Pages:
    """Log in to online banking with the password and the SMS code, through the pages: texted
    at once to a customer without a token, asked for instead of the token by one who has one
    (so that every login texts one code, whoever logs in)."""
    pages = Pages(client)
    asked = pages.submit("/bank/login", "/bank/login", login=person.mobile, password=PASSWORD)
    assert asked.status_code == 200 and 'name="code"' in asked.text, asked.text
    if person.totp is not None:
        texted = pages.submit("/bank/login", "/bank/login/sms")
        assert texted.status_code == 200 and 'name="code"' in texted.text, texted.text
    code = sms_codes(engine, person.id)[-1]
    home = pages.submit("/bank/login", "/bank/login/verify", code=code)
    assert home.status_code == 200 and home.url.path == "/bank/", home.text
    return pages
