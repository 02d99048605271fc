"""Background jobs: what the worker does on schedule, run here directly."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from ebank.core import audit
from ebank.core.clock import business_date
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log, idempotency_keys
from ebank.core.writer import Command
from ebank.jobs import (
    forget_old_idempotency_keys,
    purge_risk_aggregates,
    purge_spent_security_rows,
    purge_spent_security_rows_hourly,
    release_expired_holds,
)
from ebank.ledger import queries
from ebank.ledger import service as ledger
from ebank.limits.tables import limit_usage
from ebank.ops import staff
from ebank.risk import service as risk
from ebank.risk.models import Context as RiskContext
from ebank.risk.tables import risk_buckets, risk_members
from ebank.security import login, sessions
from ebank.security import service as security
from ebank.security.certificates import start_signing
from ebank.security.tables import (
    login_challenges,
    one_time_codes,
    payment_signatures,
    signing_challenges,
)
from ebank.security.tables import sessions as sessions_table
from tests.channels.api_support import PASSWORD, customer, sms_codes
from tests.security.test_certificates import PAYMENT, enrolled, sign_challenge, verify
from tests.support import VAULT, person


def open_funded(writer, code: str, amount: int) -> int:
    def fn(tx):
        cash = ledger.open_account(
            tx, code="GL-CASH", name="cash", currency="CNY", kind="internal",
            normal_side="D", overdraft_allowed=True, exist_ok=True,
        )  # fmt: skip
        acc = ledger.open_account(tx, code=code, name=code, currency="CNY")
        ledger.transfer(tx, debit=cash.id, credit=acc.id, amount=amount)
        return acc.id

    return writer.execute(Command(fn, sql=False))


def hold(writer, account: int, amount: int, minutes: int):
    return writer.execute(
        ledger.command(
            lambda tx: ledger.place_hold(
                tx,
                account_id=account,
                amount=amount,
                expires_at=tx.now + timedelta(minutes=minutes),
            )
        )
    )


def test_the_sweep_releases_expired_holds_only_and_restores_the_available_balance(
    writer, engine, clock
):
    account = open_funded(writer, "A", 100_00)
    short = hold(writer, account, 30_00, minutes=5)
    long = hold(writer, account, 20_00, minutes=60)
    clock.advance(timedelta(minutes=10))
    assert release_expired_holds(writer) == 1
    with engine.connect() as conn:
        assert queries.get_hold(conn, short.id).status == "expired"
        assert queries.get_hold(conn, long.id).status == "pending"
        assert queries.get_account(conn, account_id=account).available == 80_00
        assert queries.check_invariants(conn) == []
    assert release_expired_holds(writer) == 0  # a second sweep finds nothing more


def test_the_sweep_works_through_more_holds_than_one_chunk(writer, engine, clock, monkeypatch):
    monkeypatch.setattr("ebank.jobs.SWEEP_CHUNK", 3)
    account = open_funded(writer, "A", 100_00)
    for _ in range(7):
        hold(writer, account, 1_00, minutes=1)
    clock.advance(timedelta(minutes=2))
    assert release_expired_holds(writer) == 7
    with engine.connect() as conn:
        assert queries.get_account(conn, account_id=account).held == 0


def test_old_idempotency_keys_are_forgotten_and_recent_ones_kept(writer, engine, clock):
    a = open_funded(writer, "A", 100_00)
    b = open_funded(writer, "B", 1)
    first = writer.execute(
        ledger.transfer_command(debit=a, credit=b, amount=1_00, scope="c:1", key="old")
    )
    clock.advance(timedelta(hours=30))
    writer.execute(ledger.transfer_command(debit=a, credit=b, amount=1_00, scope="c:1", key="new"))
    assert forget_old_idempotency_keys(writer, timedelta(hours=24)) == 1
    with engine.connect() as conn:
        keys = conn.execute(select(idempotency_keys.c.key)).scalars().all()
    assert keys == ["new"]
    # Past retention a repeat is a new request: it posts again.
    again = writer.execute(
        ledger.transfer_command(debit=a, credit=b, amount=1_00, scope="c:1", key="old")
    )
    assert again.id != first.id
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one()
    assert count == 2


def test_the_worker_command_starts_and_stops_cleanly(tmp_path: Path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "EBANK_DATABASE_URL": f"sqlite:///{tmp_path / 'ebank.db'}",
        "EBANK_JOBS_PATH": str(tmp_path / "jobs.db"),
    }
    assert subprocess.run(
        [sys.executable, "-m", "ebank.cli", "db", "upgrade"], env=env, capture_output=True,
        timeout=60,
    ).returncode == 0  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "ebank.cli", "worker", "--workers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(2)
        assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
        worker.send_signal(signal.SIGINT)
        out, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, out
    assert (tmp_path / "jobs.db").exists()


# -- housekeeping of spent security rows ----------------------------------------------------------
def rows(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


NOTHING = {
    "login_challenges": 0, "one_time_codes": 0, "signing_challenges": 0, "sessions": 0,
    "limit_usage": 0,
}  # fmt: skip


def issue_code(writer, customer: int, purpose: str = "transfer") -> str:
    writer.execute(
        security.issue_code(
            VAULT, customer_id=customer, purpose=purpose, binding="b", message="转账 ¥1.00"
        )
    )
    return sms_codes(writer.engine, customer)[-1]


def test_spent_challenges_and_codes_go_seven_days_after_they_expired_or_were_used(
    writer, engine, clock, fast_hashing
):
    me = customer(writer, 1, enrolled=("online",))
    writer.execute(login.begin(VAULT, login=me.mobile, password=PASSWORD, channel="online"))
    used = issue_code(writer, me.id, "used")
    assert writer.execute(
        security.check_code(VAULT, customer_id=me.id, purpose="used", binding="b", code=used)
    ).ok
    issue_code(writer, me.id, "unused")
    signer, key, _ = enrolled(writer, 2)
    signed = writer.execute(start_signing(customer_id=signer, **PAYMENT))
    assert verify(writer, signer, signed.id, sign_challenge(key, signed))
    writer.execute(start_signing(customer_id=signer, **PAYMENT))  # never signed
    began = clock.now()
    clock.advance(timedelta(days=7) - timedelta(minutes=1))
    writer.execute(login.begin(VAULT, login=me.mobile, password=PASSWORD, channel="online"))
    issue_code(writer, me.id, "recent")
    recent = writer.execute(start_signing(customer_id=signer, **PAYMENT))
    # Seven days to the second after the code's use and the rest's issue: nothing goes yet.
    assert purge_spent_security_rows(writer, began + timedelta(days=7)) == NOTHING
    ttl = timedelta(seconds=get_settings().sms_code_ttl_seconds)
    after = began + timedelta(days=7) + ttl + timedelta(seconds=1)
    spent = {"login_challenges": 1, "one_time_codes": 2, "signing_challenges": 1}
    assert purge_spent_security_rows(writer, after) == {**NOTHING, **spent}
    assert rows(engine, login_challenges) == rows(engine, one_time_codes) == 1
    with engine.connect() as conn:
        kept = set(conn.execute(select(signing_challenges.c.id)).scalars())
    assert kept == {signed.id, recent.id}  # the signature's evidence stays, whatever its age
    assert rows(engine, payment_signatures) == 1
    much_later = clock.now() + timedelta(days=3650)
    assert purge_spent_security_rows(writer, much_later)["signing_challenges"] == 1
    with engine.connect() as conn:
        assert set(conn.execute(select(signing_challenges.c.id)).scalars()) == {signed.id}


def test_used_rows_go_seven_days_after_their_use(writer, engine, clock):
    me = person(writer, 1)
    used = issue_code(writer, me, "used")
    writer.execute(
        security.check_code(VAULT, customer_id=me, purpose="used", binding="b", code=used)
    )
    cutoff = clock.now() + timedelta(days=7)
    assert purge_spent_security_rows(writer, cutoff)["one_time_codes"] == 0
    later = cutoff + timedelta(seconds=1)
    assert purge_spent_security_rows(writer, later)["one_time_codes"] == 1


def test_sessions_go_ninety_days_after_they_ended_or_ran_out(writer, engine, clock, fast_hashing):
    me = person(writer, 1)
    teller = writer.execute(
        staff.add(VAULT, username="teller1", name="T", roles=("teller",), password="staff2026pass",
                  actor="x")
    ).member  # fmt: skip
    began = clock.now()
    logged_out = writer.execute(sessions.start(customer_id=me, channel="online"))
    writer.execute(sessions.end(customer_id=me, session_id=logged_out.session.id))
    console = writer.execute(sessions.start(staff_id=teller.id, channel="console"))
    writer.execute(sessions.end(staff_id=teller.id, session_id=console.session.id))
    writer.execute(sessions.start(customer_id=me, channel="mobile"))  # never ended: runs out
    idle = timedelta(seconds=get_settings().session_idle_seconds)
    ninety = began + timedelta(days=90)
    clock.set(ninety - timedelta(days=1))
    later_one = writer.execute(sessions.start(customer_id=me, channel="online"))
    writer.execute(sessions.end(customer_id=me, session_id=later_one.session.id))
    clock.set(ninety + idle)
    live = writer.execute(sessions.start(customer_id=me, channel="online"))
    assert purge_spent_security_rows(writer, ninety) == NOTHING
    purged = purge_spent_security_rows(writer, ninety + timedelta(seconds=1))
    assert purged == {**NOTHING, "sessions": 2}  # the two ended: the run-out one not yet
    later = ninety + idle + timedelta(seconds=1)
    assert purge_spent_security_rows(writer, later) == {**NOTHING, "sessions": 1}
    with engine.connect() as conn:
        kept = set(conn.execute(select(sessions_table.c.id)).scalars())
    assert kept == {later_one.session.id, live.session.id}
    writer.execute(sessions.resume(live.token))


def test_limit_counts_go_after_forty_days_and_years_before_last_year(writer, engine, clock):
    me = person(writer, 1)
    today = business_date(clock.now())
    periods = [
        (today - timedelta(days=41)).isoformat(), (today - timedelta(days=40)).isoformat(),
        today.isoformat(), str(today.year - 2), str(today.year - 1), str(today.year),
    ]  # fmt: skip
    with engine.begin() as conn:
        for scope in ("others", "channel:online"):
            conn.execute(
                insert(limit_usage),
                [{"customer_id": me, "scope": scope, "period": p, "amount": 100, "payments": 1}
                 for p in periods],
            )  # fmt: skip
    assert purge_spent_security_rows(writer, clock.now()) == {**NOTHING, "limit_usage": 4}
    with engine.connect() as conn:
        kept = set(conn.execute(select(limit_usage.c.period)).scalars())
    assert kept == set(periods[1:3] + periods[4:])


def test_the_purge_works_through_more_rows_than_one_chunk(writer, engine, clock, monkeypatch):
    monkeypatch.setattr("ebank.jobs.SWEEP_CHUNK", 2)
    me = person(writer, 1)
    for n in range(5):
        issue_code(writer, me, f"p{n}")
    later = clock.now() + timedelta(days=8)
    assert purge_spent_security_rows(writer, later)["one_time_codes"] == 5
    assert rows(engine, one_time_codes) == 0


def test_a_purge_that_drops_rows_is_audited_and_one_that_finds_none_is_not(writer, engine, clock):
    me = person(writer, 1)
    issue_code(writer, me)
    later = clock.now() + timedelta(days=8)
    purge_spent_security_rows(writer, later)
    purge_spent_security_rows(writer, later)
    with engine.connect() as conn:
        records = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.action == "security.purge"
            )
        ).all()
        assert audit.verify(conn).ok
    assert [(actor, json.loads(detail)) for actor, detail in records] == [
        ("system", {**NOTHING, "one_time_codes": 1})
    ]


def test_the_purge_runs_hourly():
    task = purge_spent_security_rows_hourly.s()
    at = datetime(2026, 11, 23, 2, 23)
    assert [task.validate_datetime(at.replace(hour=h)) for h in (0, 13)] == [True, True]
    assert not task.validate_datetime(at.replace(minute=24))


def test_risk_counters_go_once_no_window_reaches_them(writer, engine, clock):
    seen = RiskContext(
        event="payment", customer_id=None, channel="clearing", amount=100_00,
        payee="acct:1", payee_account_id=1,
    )  # fmt: skip
    writer.execute(Command(lambda tx: risk.observe(tx, seen)))
    assert purge_risk_aggregates(writer) == 0  # every window still reaches them
    counted = count_rows(engine, risk_buckets)
    assert counted > 0
    clock.advance(timedelta(days=101))  # past the longest window kept
    assert purge_risk_aggregates(writer) == counted + count_rows(engine, risk_members)
    assert count_rows(engine, risk_buckets) == 0


def count_rows(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()
