"""Fixtures of the API tests: the app on each database, with a fixed clock and the test vault."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.app import create_app
from ebank.core.clock import FixedClock
from ebank.core.settings import Settings
from ebank.core.writer import Writer
from tests.support import VAULT


@pytest.fixture
def api(
    engine: Engine, writer: Writer, clock: FixedClock, fast_hashing: None
) -> Iterator[TestClient]:
    """The app started (its lifespan run), spoken to over HTTP in process."""
    app = create_app(Settings(), engine=engine, writer=writer, clock=clock, vault=VAULT)
    with TestClient(app) as client:
        yield client
