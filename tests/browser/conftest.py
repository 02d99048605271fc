"""Fixtures of the browser tests: one live demo bank and example shop for the session, Debian's
Chromium driven by Playwright, and a fresh context per test (zh-CN, Beijing time) whose
CSP violations, script errors and broken assets fail the test (support.Complaints).

Where Chromium or Playwright is missing the tests skip, saying so; where EBANK_TEST_REQUIRE
names `browser` they fail instead.
"""

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.support import WAIT, Complaints, DemoBank, live_demo_bank
from tests.conftest import missing

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as exc:  # the test modules cannot be imported either: see below
    PLAYWRIGHT_MISSING: str | None = str(exc)
else:
    PLAYWRIGHT_MISSING = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

HERE = Path(__file__).parent
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here drives a browser: `-m "not browser"` leaves them out."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


class _Unavailable(pytest.Item):
    """Stands for a test module that needs Playwright where it cannot be imported."""

    def runtest(self) -> None:
        missing("browser", f"Playwright cannot be imported ({PLAYWRIGHT_MISSING})")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.name


class _NoPlaywright(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield _Unavailable.from_parent(self, name="playwright")


if PLAYWRIGHT_MISSING is not None:

    def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.File:
        return _NoPlaywright.from_parent(parent, path=module_path)


@pytest.fixture(scope="package")
def chromium() -> str:
    """Debian's Chromium, which Playwright drives (its own browser downloads are not used)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        missing("browser", "chromium was not found on PATH (apt-get install chromium)")
    return found


@pytest.fixture(scope="package")
def browser(chromium: str) -> Iterator["Browser"]:
    expect.set_options(timeout=WAIT * 1000)
    with sync_playwright() as playwright:
        # Chromium's sandbox needs an unprivileged user: as root (a container) it is turned off.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = playwright.chromium.launch(executable_path=chromium, args=args)
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def demo_bank(browser: "Browser", tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoBank]:
    """The demo bank and its shop, served while the browser tests run, and gone (with the
    settings they set) before the rest of the suite (after the browser is found, so
    that a machine without one skips at once)."""
    with live_demo_bank(tmp_path_factory.mktemp("demo-bank")) as bank:
        yield bank


COMPLAINTS = pytest.StashKey[list[Complaints]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test whose pages made the browser complain fails, once its body has passed."""
    yield
    problems = [line for c in item.stash.get(COMPLAINTS, []) for line in c.problems]
    assert not problems, "the browser complained:\n" + "\n".join(problems)


@contextlib.contextmanager
def _context(
    browser: "Browser", request: pytest.FixtureRequest, **options: Any
) -> Iterator["BrowserContext"]:
    """A fresh context (no cookies) as a customer in China would browse, watched."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **options)
    context.set_default_timeout(WAIT * 1000)
    complaints = Complaints()
    complaints.watch(context)
    request.node.stash.setdefault(COMPLAINTS, []).append(complaints)
    yield context
    context.close()
    for line in complaints.problems + complaints.statuses:
        print(f"browser console: {line}")  # shown with the output of a test that failed


@pytest.fixture
def page(browser: "Browser", request: pytest.FixtureRequest) -> Iterator["Page"]:
    """A desktop page, 1280 × 900."""
    with _context(browser, request, viewport=DESKTOP) as context:
        yield context.new_page()


@pytest.fixture
def phone(browser: "Browser", request: pytest.FixtureRequest) -> Iterator["Page"]:
    """A phone's page, 375 × 812, touch."""
    with _context(browser, request, viewport=PHONE, is_mobile=True, has_touch=True) as context:
        yield context.new_page()
