"""Many threads, two racing writers, then several processes: the same accounts at once."""

import random
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from ebank.core.errors import EbankError
from ebank.core.writer import Writer
from ebank.ledger import queries as Q
from ebank.ledger import service as L
from ebank.ledger.models import HoldResult
from tests.ledger.load_worker import (
    Acked,
    assert_sound,
    balance_sum,
    entry_count,
    open_load_accounts,
    post_random_transfers,
    spawn,
)
from tests.support import race_two_writers

THREADS = 16
OPS_PER_THREAD = 100
# 18 customers: a few rich, most poor (they run dry and get refused), two on credit lines.
BALANCES = [5_000_00] * 4 + [20_00] * 10 + [0] * 4
CREDIT_LINES = [0] * 14 + [300_00, 300_00]


def run_threads(target: Any, count: int) -> None:
    errors: list[BaseException] = []

    def guarded(n: int) -> None:
        try:
            target(n)
        except BaseException as exc:  # surfaced in the test's own thread below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_threads_moving_money_at_once_conserve_it_and_post_once_each(writer, engine):
    book = open_load_accounts(writer, BALANCES, CREDIT_LINES)
    fees = writer.execute(
        L.command(
            lambda tx: L.open_account(
                tx, code="L-FEES", name="fees", currency="CNY", kind="internal"
            )
        )
    )
    entries_before = _count(engine)
    customers = list(book.customers)
    lock = threading.Lock()
    tally: Counter[str] = Counter()
    keyed: list[tuple[Any, Any]] = []

    def note(what: str) -> None:
        with lock:
            tally[what] += 1

    def attempt(command: Any, what: str) -> Any:
        try:
            result = writer.execute(command)
        except EbankError as exc:
            note(exc.code)
            return None
        note(what)
        return result

    def work(n: int) -> None:
        rng = random.Random(n)
        for i in range(OPS_PER_THREAD):
            payer, payee = rng.sample(customers, 2)
            if rng.random() < 0.1:
                payee = fees.id
            amount = rng.randint(1, 80_00)
            roll = rng.random()
            if roll < 0.45:
                attempt(
                    L.command(
                        lambda tx, a=payer, b=payee, m=amount: L.transfer(
                            tx, debit=a, credit=b, amount=m
                        ),
                        accounts=(payer, payee),
                    ),
                    "transfer",
                )
            elif roll < 0.8:
                command = L.transfer_command(
                    debit=payer, credit=payee, amount=amount, scope="threads", key=f"{n}-{i}"
                )
                result = attempt(command, "transfer")
                if result is not None:
                    with lock:
                        keyed.append((command, result))
            else:
                hold = attempt(
                    L.command(
                        lambda tx, a=payer, m=amount: L.place_hold(
                            tx, account_id=a, amount=m, expires_at=tx.now + timedelta(hours=1)
                        )
                    ),
                    "hold",
                )
                if hold is None:
                    continue
                part = rng.randint(1, amount)
                attempt(
                    L.command(
                        lambda tx, h=hold.id, b=payee, p=part: L.capture_hold(
                            tx, hold_id=h, to=[(b, p)]
                        )
                    ),
                    "capture",
                )
                if part < amount and rng.random() < 0.5:
                    attempt(
                        L.command(
                            lambda tx, h=hold.id, b=payee, p=amount - part: L.capture_hold(
                                tx, hold_id=h, to=[(b, p)]
                            )
                        ),
                        "capture",
                    )
                elif rng.random() < 0.5:
                    attempt(
                        L.command(lambda tx, h=hold.id: L.release_hold(tx, hold_id=h)), "release"
                    )
                # else: the hold stays pending, still counted against the payer's available

    run_threads(work, THREADS)

    assert set(tally) <= {"transfer", "hold", "capture", "release", "INSUFFICIENT_FUNDS"}, tally
    assert tally["INSUFFICIENT_FUNDS"] > 0, "the load never ran anyone out of money"
    assert tally["transfer"] > 0 and tally["capture"] > 0
    assert writer.batches < writer.commands, "the writer never batched"
    assert _count(engine) - entries_before == tally["transfer"] + tally["capture"]
    assert_sound(engine, book, extra=[fees.id])
    with engine.connect() as conn:
        assert Q.get_account(conn, account_id=fees.id).balance >= 0
    # A replay of any acknowledged keyed transfer returns its result and posts nothing.
    count = _count(engine)
    for command, result in keyed[:: max(1, len(keyed) // 20)]:
        assert writer.execute(command) == result
    assert _count(engine) == count


def outcome_of(writer: Writer, command: Any) -> Any:
    try:
        return writer.execute(command)
    except EbankError as exc:
        return exc


def _count(engine: Any) -> int:
    with engine.connect() as conn:
        return entry_count(conn)


def test_concurrent_holds_on_one_account_never_exceed_what_is_available(writer, engine):
    book = open_load_accounts(writer, [1_000_00, 0])
    pool, shop = book.customers
    placed: list[Any] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for _ in range(10):
            try:
                hold = writer.execute(
                    L.command(
                        lambda tx: L.place_hold(
                            tx, account_id=pool, amount=7_00, expires_at=tx.now + timedelta(hours=1)
                        )
                    )
                )
            except EbankError as exc:
                assert exc.code == "INSUFFICIENT_FUNDS"
                continue
            with lock:
                placed.append(hold)

    run_threads(work, THREADS)
    assert len(placed) == 1_000_00 // 7_00  # 142 fit, the other 18 of 160 must not
    with engine.connect() as conn:
        view = Q.get_account(conn, account_id=pool)
    assert (view.balance, view.held) == (1_000_00, 142 * 7_00)

    def capture_all(n: int) -> None:
        for hold in placed[n::THREADS]:
            writer.execute(
                L.command(
                    lambda tx, h=hold.id: L.capture_hold(
                        tx, hold_id=h, to=[(shop, 3_00)], final=True
                    )
                )
            )

    run_threads(capture_all, THREADS)
    with engine.connect() as conn:
        view = Q.get_account(conn, account_id=pool)
        assert balance_sum(conn, [shop]) == 142 * 3_00
    assert (view.balance, view.held) == (1_000_00 - 142 * 3_00, 0)
    assert_sound(engine, book)


def test_two_writers_reversing_the_same_entries_reverse_each_once(writer, engine, clock):
    book = open_load_accounts(writer, [1_000_00, 0], prefix="R")
    rich, sink = book.customers
    originals = [
        writer.execute(L.command(lambda tx, n=n: L.transfer(
            tx, debit=rich, credit=sink, amount=1_00 + n)))
        for n in range(40)
    ]  # fmt: skip
    before = _count(engine)
    commands = [L.command(lambda tx, e=e.id: L.reverse(tx, entry_id=e)) for e in originals]
    for pair in race_two_writers(writer, engine, clock, commands):
        codes = sorted(getattr(x, "code", "ok") for x in pair)
        assert codes == ["ALREADY_REVERSED", "ok"], pair
    assert _count(engine) - before == 40
    with engine.connect() as conn:
        assert balance_sum(conn, [rich]) == 1_000_00
    assert_sound(engine, book)


def test_two_writers_given_the_same_keys_post_once_and_answer_alike(writer, engine, clock):
    book = open_load_accounts(writer, [1_000_00, 0], prefix="I")
    rich, sink = book.customers
    before = _count(engine)
    commands = [
        *(L.transfer_command(debit=rich, credit=sink, amount=1_00, scope="race", key=f"k{n}")
          for n in range(40)),
        # Keyed commands that name no accounts to prefetch: nothing is locked before the
        # writer looks their keys up.
        *(L.command(lambda tx: L.place_hold(tx, account_id=rich, amount=1_00,
                                            expires_at=tx.now + timedelta(hours=1)),
                    idempotency=L.idempotent("race", f"h{n}", HoldResult, op="hold",
                                             account=rich, amount=1_00))
          for n in range(20)),
    ]  # fmt: skip
    for mine, theirs in race_two_writers(writer, engine, clock, commands):
        assert not isinstance(mine, BaseException) and mine == theirs, (mine, theirs)
    assert _count(engine) - before == 40
    with engine.connect() as conn:
        assert Q.get_account(conn, account_id=rich).held == 20 * 1_00
    assert_sound(engine, book)


def test_two_writers_draining_one_account_never_overdraw_it(writer, engine, clock):
    book = open_load_accounts(writer, [30_00, 0], prefix="D")
    poor, sink = book.customers
    command = L.command(lambda tx: L.transfer(tx, debit=poor, credit=sink, amount=5_00))
    outcomes = [x for pair in race_two_writers(writer, engine, clock, [command] * 20) for x in pair]
    wins = [x for x in outcomes if not isinstance(x, BaseException)]
    assert all(x.code == "INSUFFICIENT_FUNDS" for x in outcomes if x not in wins)
    assert len(wins) == 30_00 // 5_00, "the account paid more (or less) than it had"
    with engine.connect() as conn:
        assert Q.get_account(conn, account_id=poor).balance == 0
    assert_sound(engine, book)


@pytest.mark.slow
def test_several_processes_sharing_one_database_conserve_money(db_url, writer, engine):
    book = open_load_accounts(writer, [2_000_00] * 3 + [30_00] * 5 + [0] * 2, prefix="P")
    before = _count(engine)
    # Two of the three run the same seed: the same keys with the same parameters, racing.
    # Enough transfers that the processes overlap however unevenly a loaded machine starts
    # them (each takes a second or so just to import).
    workers = [spawn(db_url, book.customers, transfers=1500, seed=seed) for seed in (1, 2, 2)]
    acked: list[Acked] = []
    for proc in workers:
        out, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, err
        assert "DONE" in err and "ok=" in err, err
        acked += [Acked.parse(line) for line in out.splitlines()]
    by_key: dict[str, Acked] = {}
    for ack in acked:
        assert by_key.setdefault(ack.key, ack) == ack, "one key, two different answers"
    assert len(by_key) > 300
    assert len({a.reference for a in by_key.values()}) == len(by_key)
    assert _count(engine) - before == len(by_key), "a key posted twice, or a posting is lost"
    assert len(acked) > len(by_key), "the racing twins never both acknowledged a key"
    times: dict[str, list[Any]] = {"1": [], "2": []}
    with engine.connect() as conn:
        for ack in by_key.values():
            entry = Q.get_entry(conn, reference=ack.reference)
            assert [(p.account_id, p.side, p.amount) for p in entry.postings] == [
                (ack.debit, "D", ack.amount),
                (ack.credit, "C", ack.amount),
            ]
            times[ack.key.split("-")[0]].append(entry.created_at)
    assert max(map(min, times.values())) < min(map(max, times.values())), "ran one at a time"
    assert_sound(engine, book)

    # This process's writer (whose cache predates the children's work) carries on correctly.
    post_random_transfers(
        writer, book.customers, count=30, seed=9, scope="parent", max_amount=200_00
    )
    assert_sound(engine, book)
