"""Helpers for the operator pages' tests (merchant portal, corporate banking): an operator
logged in through the pages, in a browser of their own, and a multipart upload posted with
the page's CSRF token."""

from typing import Any

import httpx
from fastapi.testclient import TestClient

from ebank.core.clock import FixedClock
from tests.channels.web.support import Pages, csrf_of
from tests.corporate.support import PASSWORD, Login


def operator_pages(
    api: TestClient, clock: FixedClock, area: str, credit_code: str, login: Login
) -> Pages:
    """A fresh browser (its own cookies) with `login` logged in to `area` (merchant or
    corporate): credit code, username and password, then the token code."""
    pages = Pages(TestClient(api.app))
    asked = pages.submit(f"/{area}/login", f"/{area}/login", credit_code=credit_code,
                         username=login.operator.username, password=PASSWORD)  # fmt: skip
    assert asked.status_code == 200 and 'name="code"' in asked.text, asked.text
    home = pages.submit(f"/{area}/login", f"/{area}/login/verify", code=login.code(clock))
    assert home.url.path == f"/{area}/", home.text  # its status is the test's to check
    return pages


def upload(pages: Pages, page: str, action: str, content: bytes, **fields: Any) -> httpx.Response:
    """Open `page`, then post its multipart form to `action` with the file and `fields`."""
    token = csrf_of(pages.get(page))
    pages.last = pages.client.post(
        action, data={"csrf": token, **fields}, files={"file": ("salary.csv", content, "text/csv")}
    )
    return pages.last
