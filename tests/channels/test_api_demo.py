"""The demo's SMS inbox: only in demo mode, where the app delivers its own SMS to it."""

import time

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.app import create_app
from ebank.core.clock import FixedClock
from ebank.core.settings import Settings
from ebank.core.writer import Writer
from ebank.security.service import binding_of, issue_code
from tests.support import VAULT, WAIT, person


def _client(engine: Engine, writer: Writer, clock: FixedClock, demo: bool) -> TestClient:
    app = create_app(Settings(demo=demo), engine=engine, writer=writer, clock=clock, vault=VAULT)
    return TestClient(app)


def test_the_demo_app_delivers_a_code_to_the_inbox_it_shows(
    engine: Engine, writer: Writer, clock: FixedClock
) -> None:
    customer = person(writer)
    with _client(engine, writer, clock, demo=True) as api:
        writer.execute(
            issue_code(VAULT, customer_id=customer, purpose="login",
                       binding=binding_of(login=1), message="登录网上银行")
        )  # fmt: skip
        deadline = time.monotonic() + WAIT
        while not (messages := api.get("/api/v1/demo/sms").json()["messages"]):
            assert time.monotonic() < deadline, "the code never reached the inbox"
            time.sleep(0.05)
    [message] = messages
    assert message["customer_id"] == customer
    assert "验证码" in message["body"] and "登录网上银行" in message["body"]
    assert "****" in message["mobile"]


def test_outside_demo_mode_there_is_no_inbox(
    engine: Engine, writer: Writer, clock: FixedClock
) -> None:
    with _client(engine, writer, clock, demo=False) as api:
        assert api.get("/api/v1/demo/sms").status_code == 404
