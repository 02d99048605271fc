"""Fixtures shared by the whole suite.

Every test that takes `db_url` (or anything built on it: `engine`, `writer`) runs twice: on
SQLite and on a throwaway PostgreSQL cluster started for the session. Where PostgreSQL is
missing those runs are skipped, unless EBANK_TEST_REQUIRE names `postgres`: then they fail.
"""

import atexit
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from sqlalchemy import Engine

from ebank.core.clock import FixedClock
from ebank.core.db import make_engine
from ebank.core.pgcluster import PgCluster, find_pg_bin
from ebank.core.writer import Writer
from ebank.migrations import upgrade
from ebank.security import service as security

# The jobs queue is made when ebank.jobs is imported: keep the suite's out of the work tree.
_JOBS_DIR = tempfile.mkdtemp(prefix="ebank-test-jobs-")
atexit.register(shutil.rmtree, _JOBS_DIR, True)
os.environ.setdefault("EBANK_JOBS_PATH", os.path.join(_JOBS_DIR, "jobs.db"))
# And the gateway's signing key, made on first use.
os.environ.setdefault("EBANK_GATEWAY_KEY_PATH", os.path.join(_JOBS_DIR, "gateway-key.pem"))
# The suite's merchants listen on loopback (tests of the refusal turn it off again).
os.environ.setdefault("EBANK_GATEWAY_PRIVATE_NOTIFY", "true")

REQUIRED = {s.strip() for s in os.environ.get("EBANK_TEST_REQUIRE", "").split(",") if s.strip()}
TEMPLATE_DB = "ebank_template"
_counter = itertools.count()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail at once, not test by test, when a required service cannot be had here."""
    unknown = REQUIRED - {"postgres", "browser"}
    if unknown:
        raise pytest.UsageError(f"EBANK_TEST_REQUIRE names unknown services: {sorted(unknown)}")
    if "postgres" in REQUIRED and find_pg_bin() is None:
        raise pytest.UsageError("EBANK_TEST_REQUIRE has postgres, but initdb was not found")
    if "browser" in REQUIRED and not (shutil.which("chromium") or shutil.which("chromium-browser")):
        raise pytest.UsageError("EBANK_TEST_REQUIRE has browser, but chromium was not found")


def missing(service: str, reason: str) -> None:
    """Skip for want of a service, or fail where the run requires it."""
    if service in REQUIRED:
        pytest.fail(f"{service} is required (EBANK_TEST_REQUIRE) but {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database that each test copies instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "ebank.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if find_pg_bin() is None:
        missing("postgres", "no PostgreSQL binaries (initdb) were found")
    cluster = PgCluster().start()
    try:
        cluster.create_database(TEMPLATE_DB)
        upgrade(cluster.url(TEMPLATE_DB))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "ebank.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = f"t{os.getpid()}_{next(_counter)}"
    url = cluster.create_database(name, template=TEMPLATE_DB)
    yield url
    cluster.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FixedClock:
    # 10:00 in Shanghai on a weekday: inside the business day, far from midnight.
    return FixedClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


@pytest.fixture
def writer(engine: Engine, clock: FixedClock) -> Iterator[Writer]:
    w = Writer(engine, clock=clock)
    yield w
    w.close()


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id: the tests log in hundreds of times."""
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, type=Argon2Type.ID)
    for kind in security.HASHERS:
        monkeypatch.setitem(security.HASHERS, kind, cheap)
