"""`ebank bench gateway` runs create -> pay -> notify end to end over HTTP, verifies what it
did and ends with exactly one RESULT line."""

import re
import subprocess
import sys

RESULT = re.compile(
    r"RESULT gateway db=sqlite flows=(\d+) flows_per_s=(\d+) "
    r"p50_ms=([\d.]+) p99_ms=([\d.]+) cpu_ms_per_flow=([\d.]+)$"
)
FLOOR = re.compile(
    r"RESULT gateway-floor flows=(\d+) flows_per_s=(\d+) p50_ms=([\d.]+) p99_ms=([\d.]+) "
    r"cpu_ms_per_flow=([\d.]+) cores_at_1000_per_s=([\d.]+)$"
)


def bench(*args: str, scenario: str = "gateway") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ebank.cli", "bench", scenario, *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_small_run_pays_and_notifies_every_order_and_reports_one_result_line() -> None:
    done = bench("--flows", "40", "--buyers", "8", "--merchants", "2", "--submitters", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    match = RESULT.match(lines[-1])
    assert match, lines[-1]
    flows, rate, p50, p99, cpu = match.groups()
    assert flows == "40"
    assert int(rate) > 0 and 0 < float(p50) <= float(p99) and float(cpu) > 0
    assert sum(line.startswith("RESULT") for line in lines) == 1
    verdict = next(line for line in lines if line.startswith("40 flows in "))
    assert "every order paid and notified (0 duplicate notices, 0 failed attempts)" in verdict
    assert verdict.endswith("merchant pending equals the payments, invariants hold")
    shares = next(line for line in lines if "CPU per flow:" in line)
    assert all(f"{name} " in shares for name in ("bank", "merchants", "receiver"))


def test_the_floor_pays_and_notifies_every_flow_and_says_what_the_target_would_take() -> None:
    done = bench("--flows", "40", "--merchants", "2", "--submitters", "4", "--buyers", "5",
                 scenario="gateway-floor")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    match = FLOOR.match(lines[-1])
    assert match, lines[-1]
    flows, rate, p50, p99, cpu, cores = match.groups()
    assert flows == "40" and int(rate) > 0 and 0 < float(p50) <= float(p99)
    assert float(cpu) > 0 and abs(float(cores) - float(cpu)) <= 0.01  # 1,000 flows a second
    verdict = next(line for line in lines if line.startswith("40 flows in "))
    assert "every order paid and notified (40 notices recorded delivered)" in verdict


def test_more_flows_than_the_buyers_daily_limits_allow_are_refused_before_anything_runs() -> None:
    done = bench("--flows", "1000", "--buyers", "10")
    assert done.returncode != 0
    assert "give at least one buyer for every 49 flows" in done.stderr
    assert "RESULT" not in done.stdout
