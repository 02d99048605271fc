"""Fixtures of the API tests: the app on each database, with a fixed clock and the test vault."""

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.app import create_app
from ebank.core.clock import FixedClock
from ebank.core.settings import Settings
from ebank.core.writer import Writer
from ebank.security import service as security
from tests.support import VAULT


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id: the tests log in hundreds of times."""
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, type=Argon2Type.ID)
    monkeypatch.setattr(security, "_hasher", cheap)


@pytest.fixture
def api(
    engine: Engine, writer: Writer, clock: FixedClock, fast_hashing: None
) -> Iterator[TestClient]:
    """The app started (its lifespan run), spoken to over HTTP in process."""
    app = create_app(Settings(), engine=engine, writer=writer, clock=clock, vault=VAULT)
    with TestClient(app) as client:
        yield client
