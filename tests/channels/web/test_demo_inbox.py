"""The demo's inbox page: the codes the bank texted and what the demo people's tokens show,
offered only by the demo bank."""

import time
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank import demo
from ebank.app import create_app
from ebank.core.clock import FixedClock
from ebank.core.settings import Settings
from ebank.core.writer import Writer
from tests.channels.api_support import ONLINE, PASSWORD, customer, sms_codes
from tests.channels.web.support import Pages
from tests.support import VAULT


@pytest.fixture
def demo_app(
    engine: Engine, writer: Writer, clock: FixedClock, fast_hashing: None
) -> Iterator[TestClient]:
    app = create_app(Settings(demo=True), engine=engine, writer=writer, clock=clock, vault=VAULT)
    with TestClient(app) as client:
        yield client


def test_the_inbox_is_offered_by_the_demo_bank_only(api: TestClient) -> None:
    assert api.get("/demo/inbox").status_code == 404


def test_the_inbox_shows_the_code_texted_for_a_login(
    demo_app: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False, enrolled=ONLINE)  # texted the code at once
    Pages(demo_app).submit("/bank/login", "/bank/login", login=person.mobile, password=PASSWORD)
    code = sms_codes(engine, person.id)[-1]
    # The demo app delivers its texts on a thread of its own: the page shows them once sent.
    deadline = time.monotonic() + 10
    while code not in (page := demo_app.get("/demo/inbox")).text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert code in page.text


def test_the_demo_staff_token_code_shown_is_the_one_their_token_makes(
    writer: Writer, engine: Engine, clock: FixedClock, fast_hashing: None
) -> None:
    uris = demo.seed_staff(writer, VAULT)
    with engine.connect() as conn:
        shown = {t.login: t for t in demo.token_codes(conn, VAULT, clock.now())}
    for username, _name, _roles in demo.DEMO_STAFF:
        expected = pyotp.parse_uri(uris[username]).at(clock.now())
        assert shown[username].code == expected and shown[username].holder == "staff"
    assert 0 < shown["teller1"].seconds_left <= demo.TOKEN_STEP
