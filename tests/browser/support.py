"""Helpers of the browser tests: the demo bank and the example shop served for real on
loopback ports, the demo's SMS inbox read as the customer's phone would show it, token codes
made as an authenticator app would, screenshots kept as test artefacts, and a watch on each
browser context for what a browser complains of (CSP violations, script errors, broken assets).

Playwright is imported by the fixtures and the test modules, not here: where it is missing,
conftest.py says so test by test instead of failing to import.
"""

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyotp
import pytest
import uvicorn
from sqlalchemy import Engine

from ebank import demo
from ebank.accounts.service import accounts_of
from ebank.app import create_app
from ebank.cli import prepare_database
from ebank.core.crypto import Vault, vault_for
from ebank.core.db import make_engine
from ebank.core.settings import Settings, get_settings
from ebank.core.writer import Writer
from ebank.customers.service import find_by_mobile
from ebank.gateway import signing
from ebank.shop.app import ShopSettings, create_shop

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

REPO = Path(__file__).resolve().parents[2]
WAIT = 10.0  # seconds: Playwright's timeouts and our own polls; a broken page fails fast
SMS_CODE = re.compile(r"验证码 (\d{6})")
ARTEFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


# -- the demo bank and its shop, live -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DemoBank:
    """The demo bank served on `bank_url`, its example shop on `shop_url`, and what seeding
    printed once: each enrolled customer's, staff member's and operator's token (TOTP) URI."""

    bank_url: str
    shop_url: str
    settings: Settings
    engine: Engine  # to read what the bank holds, as the services see it
    vault: Vault
    customer_tokens: dict[int, str]
    staff_tokens: dict[str, str]
    operator_tokens: dict[str, str]
    password: str = demo.DEMO_PASSWORD
    pin: str = demo.DEMO_PIN
    staff_password: str = demo.DEMO_STAFF_PASSWORD

    def customer_id(self, mobile: str) -> int:
        with self.engine.connect() as conn:
            [view] = find_by_mobile(conn, self.vault, mobile)
        return view.id

    def balance(self, mobile: str) -> int:
        """Fen in the first account of the customer with this mobile number."""
        with self.engine.connect() as conn:
            [view] = find_by_mobile(conn, self.vault, mobile)
            return accounts_of(conn, view.id)[0].balance

    def token_code(self, customer_id: int) -> str:
        """The code the customer's token shows now. The bank takes each code once: a second
        use within its 30 seconds is refused as a replay."""
        return token_code(self.customer_tokens[customer_id])

    def sms_code(self, mobile: str, *, after: datetime) -> str:
        """The code of the newest SMS sent to `mobile` later than `after` (an aware time taken
        before the step that sends it), waiting for the demo's delivery thread to send it."""
        customer_id = self.customer_id(mobile)
        deadline = time.monotonic() + WAIT
        with httpx.Client(base_url=self.bank_url, timeout=WAIT) as http:
            while True:
                answer = http.get("/api/v1/demo/sms", params={"customer_id": customer_id})
                answer.raise_for_status()
                for message in answer.json()["messages"]:  # newest first
                    found = SMS_CODE.search(message["body"])
                    if found and datetime.fromisoformat(message["sent_at"]) > after:
                        return found.group(1)
                assert time.monotonic() < deadline, f"no code reached {mobile}'s inbox"
                time.sleep(0.1)


def token_code(otpauth_uri: str) -> str:
    """What an authenticator app given this URI shows now."""
    totp = pyotp.parse_uri(otpauth_uri)
    assert isinstance(totp, pyotp.TOTP)
    return totp.now()


def next_token_code(otpauth_uri: str, used: str) -> str:
    """The token's next code, once `used` (its current one) has been spent: the bank takes a
    code once, so a second use within the same 30 seconds would be refused as a replay."""
    deadline = time.monotonic() + 2 * demo.TOKEN_STEP
    while (code := token_code(otpauth_uri)) == used:
        assert time.monotonic() < deadline, "the token never moved on"
        time.sleep(0.5)
    return code


def loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port, for a server to listen on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def serve(app: Any, sock: socket.socket, name: str) -> Iterator[None]:
    """`app` under uvicorn on `sock`, on a daemon thread, until the block ends (then its
    lifespan's shutdown runs and the socket is closed)."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"browser-tests-{name}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, f"the {name} did not start"
            time.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        thread.join(WAIT)
        sock.close()


def _seed(settings: Settings, vault: Vault) -> demo.Seeded:
    """What `ebank demo` seeds, on the database of `settings`."""
    prepare_database(settings)
    engine = make_engine(settings.database_url)
    writer = Writer(engine)
    try:
        return demo.seed_all(writer, vault, settings.gateway_key_path.parent)
    finally:
        writer.close()
        engine.dispose()


@contextlib.contextmanager
def live_demo_bank(home: Path) -> Iterator[DemoBank]:
    """A demo bank in `home` (its SQLite database and keys), seeded as `ebank demo` seeds it,
    served with the example shop. The services read get_settings(): the process's EBANK_*
    variables name the same database and keys while it runs, and are restored afterwards.

    The tests log the same few demo customers in one after another, seconds apart, on the
    real clock, and every login texts a code: the interval between two codes is off here
    (the daily cap holds). The interval is tested on a clock moved by the tests that need it
    (tests/security/test_sms_code_limits.py, tests/channels/web/test_sms_code_limits_pages.py).
    """
    settings = Settings(
        database_url=f"sqlite:///{home / 'ebank.db'}", demo=True,
        data_key_path=home / "data.key", gateway_key_path=home / "gateway-key.pem",
        gateway_private_notify=True,  # the shop listens on loopback
        sms_code_resend_seconds=0,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as env:
        env.delenv("EBANK_DATA_KEY", raising=False)
        env.setenv("EBANK_DATABASE_URL", settings.database_url)
        env.setenv("EBANK_DEMO", "true")
        env.setenv("EBANK_DATA_KEY_PATH", str(settings.data_key_path))
        env.setenv("EBANK_GATEWAY_KEY_PATH", str(settings.gateway_key_path))
        env.setenv("EBANK_GATEWAY_PRIVATE_NOTIFY", "true")
        env.setenv("EBANK_SMS_CODE_RESEND_SECONDS", "0")
        get_settings.cache_clear()
        signing.gateway_key.cache_clear()  # the process keeps one gateway key: this bank's
        try:
            assert get_settings() == settings, "the served process would see other settings"
            vault = vault_for(settings)
            seeded = _seed(settings, vault)
            bank_socket, shop_socket = loopback_socket(), loopback_socket()
            bank_url, shop_url = url_of(bank_socket), url_of(shop_socket)
            shop = create_shop(ShopSettings(
                gateway_url=bank_url, merchant_no=seeded.merchant_no, key_path=home / demo.SHOP_KEY,
                gateway_key_path=home / demo.GATEWAY_PUBLIC,
            ))  # fmt: skip
            engine = make_engine(settings.database_url)
            try:
                with serve(create_app(settings, vault=vault), bank_socket, "bank"):
                    _wait_ready(bank_url)
                    with serve(shop, shop_socket, "shop"):
                        yield DemoBank(bank_url, shop_url, settings, engine, vault,
                                       seeded.customer_tokens, seeded.staff_tokens,
                                       seeded.operator_tokens)  # fmt: skip
            finally:
                engine.dispose()
        finally:
            get_settings.cache_clear()
            signing.gateway_key.cache_clear()


def _wait_ready(bank_url: str) -> None:
    """Until the bank's /readyz says its database answers and its writer runs."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            if httpx.get(f"{bank_url}/readyz", timeout=WAIT).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the bank never became ready"
        time.sleep(0.05)


# -- what the browser shows and complains of ------------------------------------------------
def artefacts() -> Path:
    """Where test artefacts go: $EBANK_TEST_ARTEFACTS, or test-artefacts/ in the repository."""
    return Path(os.environ.get("EBANK_TEST_ARTEFACTS") or REPO / "test-artefacts")


def screenshot(page: "Page", name: str) -> Path:
    """The whole page as <artefacts>/screenshots/<name>.png; its path."""
    assert ARTEFACT_NAME.fullmatch(name), f"not a file name: {name!r}"
    path = artefacts() / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    return path


@dataclass
class Complaints:
    """What the browser said of the pages of one context. `problems` fail the test: every
    console error (a Content-Security-Policy violation, a stylesheet or script refused or
    not found, a script's own error) and every uncaught script error, except the console's
    note that a page answered with an error status, which the page may mean (a wrong code
    answers 400). Those are kept in `statuses`, for the test's output."""

    problems: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    _error_pages: set[str] = field(default_factory=set)

    def watch(self, context: "BrowserContext") -> None:
        context.on("response", self._response)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.problems.append(f"script error: {error.error}"))
        context.on("requestfailed", self._failed)

    def _response(self, response: Any) -> None:
        if response.status >= 400 and response.request.resource_type == "document":
            self._error_pages.add(response.url)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        url = message.location.get("url") or (message.page.url if message.page else "")
        line = f"{message.text} ({url})"
        if message.text.startswith("Failed to load resource") and url in self._error_pages:
            self.statuses.append(line)
        else:
            self.problems.append(line)

    def _failed(self, request: Any) -> None:
        # A page left while its assets still load aborts them, and so does the browser when it
        # refuses what came (which the console reports): neither is a failure to load.
        if request.resource_type != "document" and "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"{request.failure} for {request.url}")
