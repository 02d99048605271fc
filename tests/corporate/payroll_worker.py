"""A child process that pays approved payroll rows, a few per pass, as `ebank worker` would:

    python -m tests.corporate.payroll_worker --url URL --now 2026-11-23T02:00:00+00:00

After each pass it prints and flushes `paid <n>` (rows that pass paid, committed). It runs
until no row is left, so a test can kill it with SIGKILL half-way.
"""

import argparse
from datetime import datetime

from ebank.core.clock import FixedClock
from ebank.core.db import make_engine
from ebank.core.writer import Writer
from ebank.corporate import payroll
from tests.support import VAULT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--now", required=True)
    args = parser.parse_args()
    writer = Writer(make_engine(args.url), clock=FixedClock(datetime.fromisoformat(args.now)))
    while paid := payroll.execute_due(writer, VAULT, limit=3):
        print(f"paid {paid}", flush=True)
    writer.close()


if __name__ == "__main__":
    main()
