"""The `ebank` command as an operator uses it."""

import re
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from sqlalchemy import update

from ebank import demo
from ebank.core.clock import SystemClock, business_date
from ebank.core.crypto import Vault
from ebank.core.db import make_engine
from ebank.core.pgcluster import find_pg_bin
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.gateway import fees
from ebank.ledger import queries
from ebank.ledger.chart import CHART
from ebank.ops import kpis, staff
from ebank.security import service as security
from tests.conftest import missing

RESULT = re.compile(
    r"^RESULT ledger db=(sqlite|postgres) transfers=(\d+) transfers_per_s=(\d+) "
    r"p50_ms=([\d.]+) p99_ms=([\d.]+)$"
)


def ebank(
    *args: str, url: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command as an operator would, in `cwd` (where its var/ files go)."""
    env = {"PATH": "/usr/bin:/bin", "EBANK_DATABASE_URL": url or ""}
    return subprocess.run(
        [sys.executable, "-m", "ebank.cli", *args],
        cwd=cwd or tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in env.items() if v},
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'ebank.db'}"


def test_db_upgrade_creates_the_schema_and_the_chart_of_accounts_and_can_repeat(sqlite_url):
    for _ in range(2):
        done = ebank("db", "upgrade", url=sqlite_url)
        assert done.returncode == 0, done.stderr
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        internal = queries.list_accounts(conn, kind="internal")
        plans = [p.code for p in fees.plans(conn)]
    engine.dispose()
    assert sorted(a.code for a in internal) == sorted(item.code for item in CHART)
    assert plans == sorted(p.code for p in fees.DEFAULT_PLANS)  # the gateway's fee plans


def test_demo_seeds_once_however_often_it_runs_and_prints_the_customers(sqlite_url, tmp_path):
    first = ebank("demo", "--no-serve", url=sqlite_url, cwd=tmp_path)
    second = ebank("demo", "--no-serve", url=sqlite_url, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "张三 Zhang San" in first.stdout

    def account_lines(out: str) -> list[str]:
        return [line for line in out.splitlines() if "6217001" in line]

    assert len(account_lines(first.stdout)) == 4
    assert account_lines(first.stdout) == account_lines(second.stdout)  # no money moved again
    # Tokens of the customers, the staff and the operators, enrolled once, shown once.
    tokens = 4 + len(demo.DEMO_STAFF) + len(demo.DEMO_OPERATORS)
    assert first.stdout.count("otpauth://totp/") == tokens
    assert "otpauth://" not in second.stdout
    # What it prints logs a customer in: the password, and a code from the token URI.
    uri = next(w for w in first.stdout.split() if w.startswith("otpauth://"))
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    customer = int(uri.split("customer-")[1].split("?")[0])
    vault = Vault.from_text((tmp_path / "var" / "data.key").read_text())
    engine = make_engine(sqlite_url)
    writer = Writer(engine)
    try:
        assert writer.execute(
            security.check_secret(
                customer_id=customer, kind="login_password", secret=demo.DEMO_PASSWORD
            )
        ).ok
        code = pyotp.TOTP(secret).now()
        assert writer.execute(security.check_token(vault, customer_id=customer, code=code)).ok
        # And a member of staff, with the password and a code of the token printed for them.
        staff_uri = next(w for w in first.stdout.split() if "staff-teller1" in w)
        challenge = writer.execute(
            staff.begin_login(username="teller1", password=demo.DEMO_STAFF_PASSWORD)
        ).value()
        code = pyotp.TOTP(parse_qs(urlparse(staff_uri).query)["secret"][0]).now()
        done = writer.execute(staff.complete_login(vault, challenge=challenge.token, code=code))
        assert done.value().member.username == "teller1"
    finally:
        writer.close()
        engine.dispose()
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert queries.check_invariants(conn) == []
        # Weeks of business lived through the services: the dashboard's default period shows
        # transactions and fees on most days, and the shop was settled every evening.
        today = business_date(SystemClock().now())
        board = kpis.dashboard(conn, today - timedelta(days=29), today)
    engine.dispose()
    busy_days = {flow.day for flow in board.flows}
    assert len(busy_days) >= demo.HISTORY_DAYS - 3, sorted(busy_days)
    assert {flow.channel for flow in board.flows} >= {"online", "mobile", "phone"}
    assert sum(1 for fee in board.fees_by_day.values() if fee) >= demo.HISTORY_DAYS - 3
    assert board.fees_booked > 0 and board.cards.active == board.cards.in_issue == 3


def test_audit_verify_passes_an_intact_log_and_fails_an_altered_one(sqlite_url, tmp_path):
    assert ebank("demo", "--no-serve", url=sqlite_url, cwd=tmp_path).returncode == 0
    intact = ebank("audit", "verify", url=sqlite_url)
    assert intact.returncode == 0 and "intact" in intact.stdout
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == 1).values(actor="someone else"))
    engine.dispose()
    broken = ebank("audit", "verify", url=sqlite_url)
    assert broken.returncode == 1
    assert "BROKEN at record 1" in broken.stdout


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_the_ledger_benchmark_verifies_the_ledger_and_ends_with_one_result_line(db):
    if db == "postgres" and find_pg_bin() is None:
        missing("postgres", "no PostgreSQL binaries (initdb) were found")
    done = ebank(
        "bench",
        "ledger",
        "--db",
        db,
        "--transfers",
        "600",
        "--accounts",
        "40",
        "--submitters",
        "16",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    match = RESULT.match(lines[-1])
    assert match, lines[-1]
    assert match.group(1) == db and match.group(2) == "600"
    assert int(match.group(3)) > 0
    assert "invariants hold" in done.stdout
    assert sum(line.startswith("RESULT") for line in lines) == 1


STORAGE_RESULT = re.compile(
    r"^RESULT storage db=(sqlite|postgres) transfers=(\d+) batch=(\d+) transfers_per_s=(\d+)$"
)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_the_storage_benchmark_writes_a_sound_ledger_and_ends_with_one_result_line(db):
    if db == "postgres" and find_pg_bin() is None:
        missing("postgres", "no PostgreSQL binaries (initdb) were found")
    done = ebank("bench", "storage", "--db", db, "--transfers", "700", "--accounts", "30",
                 "--batch", "64")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    match = STORAGE_RESULT.match(lines[-1])
    assert match, lines[-1]
    assert match.groups()[:3] == (db, "700", "64") and int(match.group(4)) > 0
    assert "11 commits" in done.stdout and "invariants hold" in done.stdout


def test_an_unknown_command_is_refused_with_usage():
    done = ebank("launch-rockets")
    assert done.returncode == 2
    assert "usage: ebank" in done.stderr
