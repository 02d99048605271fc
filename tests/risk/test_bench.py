"""`ebank bench risk` runs a small day end to end and ends with exactly one RESULT line."""

import re
import subprocess
import sys

RESULT = re.compile(
    r"RESULT risk decisions_per_s=(\d+) p99_ms=([\d.]+) caught=([\d.]+) "
    r"false_positive_rate=([\d.]+)$"
)


def test_a_small_day_is_scored_and_reported() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ebank.cli", "bench", "risk", "--customers", "100",
         "--events", "300", "--frauds", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    match = RESULT.match(lines[-1])
    assert match, lines[-1]
    assert int(match.group(1)) > 0
    assert float(match.group(3)) > 0.3  # the watch-list and takeover frauds at least
    assert float(match.group(4)) < 0.1
    assert sum(line.startswith("RESULT") for line in lines) == 1
    assert re.search(r"police-listed payee +1 / 1 +\(block 1\)", done.stdout)
