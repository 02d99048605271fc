"""Settlement of merchants' takings: T+0 real time, T+0 end of day, T+N; statements."""

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ebank.core.clock import FixedClock, business_date
from ebank.core.db import make_engine
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.gateway import merchants, orders, refunds, settlement
from ebank.gateway.models import OrderView, RefundView
from ebank.gateway.settlement import FEE_INCOME, PENDING, EndOfDay
from ebank.gateway.tables import settlement_items, settlements
from ebank.migrations import upgrade
from tests.gateway.support import YUAN, GatewayBank, Shop
from tests.support import STAFF, VAULT, code_of, outcome, race_two_writers, sound

FEE = 25  # B2C-0.25 on ¥100


def today(bank: GatewayBank) -> date:
    return business_date(bank.clock.now())


def end_of_day(bank: GatewayBank, day: date, chunk: int = settlement.SWEEP) -> EndOfDay:
    return settlement.end_of_day(bank.writer, business_day=day, chunk=chunk)


def refund(shop: Shop, order: OrderView, amount: int, number: str = "R1") -> RefundView:
    return shop.bank.writer.execute(
        refunds.request(
            VAULT, merchant_id=shop.id, out_trade_no=order.out_trade_no, out_refund_no=number,
            amount=amount, reason="退货", actor="api", review=False, channel="api",
        )
    )  # fmt: skip


def settled(bank: GatewayBank, shop: Shop) -> list[dict]:
    with bank.engine.connect() as conn:
        rows = conn.execute(
            select(settlements).where(settlements.c.merchant_id == shop.id)
            .order_by(settlements.c.id)
        ).mappings()  # fmt: skip
        return [dict(r) for r in rows]


def test_end_of_day_settles_the_days_takings_less_fees_into_the_merchants_account(
    bank, shop, buyer
):
    for _ in range(2):
        buyer.paid(shop.order(100 * YUAN))
    assert shop.settlement_balance() == 0  # T+0 end of day: nothing before the day ends
    assert bank.ledger_balance(PENDING) == 200 * YUAN

    done = end_of_day(bank, today(bank))

    [made] = settled(bank, shop)
    assert list(done.settled) == [made["id"]] and done.carried == ()
    assert (made["items"], made["gross"], made["refunds"], made["fees"], made["net"]) == (
        2, 200 * YUAN, 0, 2 * FEE, 200 * YUAN - 2 * FEE
    )  # fmt: skip
    assert made["business_date"] == today(bank) and made["cycle"] == "t0_eod"
    assert shop.settlement_balance() == 200 * YUAN - 2 * FEE
    assert bank.ledger_balance(PENDING) == 0
    assert bank.ledger_balance(FEE_INCOME) == 2 * FEE
    sound(bank.engine)


def test_running_the_end_of_day_again_settles_nothing_twice(bank, shop, buyer):
    buyer.paid(shop.order(100 * YUAN))
    end_of_day(bank, today(bank))
    again = end_of_day(bank, today(bank))
    assert again.settled == () and len(settled(bank, shop)) == 1
    assert shop.settlement_balance() == 100 * YUAN - FEE


def test_two_processes_running_the_end_of_day_at_once_settle_each_movement_once(
    bank, shop, buyer, engine, clock
):
    buyer.paid(shop.order(100 * YUAN))
    run = settlement.settle_due(business_day=today(bank))
    [(mine, theirs)] = race_two_writers(bank.writer, engine, clock, [run])
    assert sorted(len(o.settled) for o in (mine, theirs)) == [0, 1]
    with engine.connect() as conn:
        assert len(conn.execute(select(settlement_items)).all()) == 1
    assert shop.settlement_balance() == 100 * YUAN - FEE
    sound(engine)


def test_the_end_of_a_day_leaves_the_next_days_takings_for_the_next_run(bank, shop, buyer):
    day = today(bank)
    buyer.paid(shop.order(100 * YUAN))
    bank.clock.set(datetime(2026, 11, 23, 16, 0, 1, tzinfo=UTC))  # 00:00:01 in Shanghai
    buyer.paid(shop.order(300 * YUAN))
    [first] = end_of_day(bank, day).settled
    assert shop.settlement_balance() == 100 * YUAN - FEE
    [second] = end_of_day(bank, day + timedelta(days=1)).settled
    assert second != first and shop.settlement_balance() == 400 * YUAN - 4 * FEE


def test_t_plus_n_settles_n_calendar_days_after_the_payment(bank, buyer):
    shop = bank.merchant(cycle="tn", settle_days=2)
    day = today(bank)
    buyer.paid(shop.order(100 * YUAN))
    assert end_of_day(bank, day).settled == ()
    assert end_of_day(bank, day + timedelta(days=1)).settled == ()
    assert len(end_of_day(bank, day + timedelta(days=2)).settled) == 1
    assert shop.settlement_balance() == 100 * YUAN - FEE
    assert settled(bank, shop)[0]["business_date"] == day + timedelta(days=2)


def test_real_time_merchants_are_settled_at_once_and_not_again_at_the_end_of_day(bank, buyer):
    shop = bank.merchant(cycle="t0_realtime")
    buyer.paid(shop.order(100 * YUAN))
    assert shop.settlement_balance() == 100 * YUAN - FEE
    assert end_of_day(bank, today(bank)).settled == ()
    assert len(settled(bank, shop)) == 1


def test_takings_from_before_a_move_to_real_time_are_settled_at_the_end_of_the_day(
    bank, shop, buyer
):
    buyer.paid(shop.order(100 * YUAN))
    bank.writer.execute(
        merchants.change_terms(merchant_id=shop.id, fee_plan="B2C-0.25", cycle="t0_realtime",
                               settle_days=0, actor=STAFF)
    )  # fmt: skip
    buyer.paid(shop.order(100 * YUAN))  # settled at once
    assert shop.settlement_balance() == 100 * YUAN - FEE
    assert len(end_of_day(bank, today(bank)).settled) == 1
    assert shop.settlement_balance() == 200 * YUAN - 2 * FEE


def test_a_refund_out_of_pending_money_is_settled_with_the_takings_it_came_from(bank, buyer):
    shop = bank.merchant(cycle="tn", settle_days=3)
    day = today(bank)
    order = buyer.paid(shop.order(100 * YUAN))
    bank.clock.advance(timedelta(days=1))
    refund(shop, order, 40 * YUAN)
    assert [m.source for m in shop.movements() if m.kind == "refund"] == ["pending"]
    # Day + 3: the payment is due; its refund (a day younger) goes with it, so that pending
    # money never pays out what was already refunded from it.
    assert len(end_of_day(bank, day + timedelta(days=3)).settled) == 1
    [row] = settled(bank, shop)
    assert (row["items"], row["gross"], row["refunds"], row["net"]) == (
        2, 100 * YUAN, 40 * YUAN, 60 * YUAN - FEE
    )  # fmt: skip
    assert bank.ledger_balance(PENDING) == 0
    assert end_of_day(bank, day + timedelta(days=4)).settled == ()
    sound(bank.engine)


def test_escrow_money_is_settled_once_released_not_while_held(bank, shop, buyer):
    order = buyer.paid(shop.order(100 * YUAN, "escrow"))
    assert end_of_day(bank, today(bank)).settled == ()
    bank.writer.execute(
        orders.confirm_receipt(customer_id=buyer.id, trade_no=order.trade_no, channel="online")
    )
    assert len(end_of_day(bank, today(bank)).settled) == 1
    assert shop.settlement_balance() == 100 * YUAN - FEE
    assert [m.kind for m in shop.movements()] == ["escrow_in", "release"]


def test_a_negative_net_is_taken_from_the_merchants_account_when_it_can_pay(bank, shop, buyer):
    buyer.paid(shop.order(100 * YUAN))
    end_of_day(bank, today(bank))  # the account now holds ¥99.75
    bank.clock.advance(timedelta(days=1))
    order = buyer.paid(shop.order(100 * YUAN))
    refund(shop, order, 100 * YUAN)  # out of pending: the fee stays the bank's
    assert len(end_of_day(bank, today(bank)).settled) == 1
    assert settled(bank, shop)[-1]["net"] == -FEE
    assert shop.settlement_balance() == 100 * YUAN - 2 * FEE
    sound(bank.engine)


def test_a_negative_net_the_account_cannot_pay_is_carried_over_and_reported(bank, shop, buyer):
    order = buyer.paid(shop.order(100 * YUAN))
    refund(shop, order, 100 * YUAN)  # net: minus the fee, and the account is empty
    done = end_of_day(bank, today(bank))
    assert done.settled == ()
    [carried] = done.carried
    assert (carried.merchant_no, carried.items, carried.net, carried.code) == (
        shop.merchant.merchant_no, 2, -FEE, "INSUFFICIENT_FUNDS"
    )  # fmt: skip
    assert settled(bank, shop) == [] and bank.ledger_balance(PENDING) == 0
    with bank.engine.connect() as conn:
        [record] = conn.execute(
            select(audit_log).where(audit_log.c.action == "gateway.settlement.carried")
        ).mappings()  # fmt: skip
    assert record["outcome"] == "failed" and record["subject"] == shop.merchant.subject
    assert json.loads(record["detail"])["net"] == -FEE
    # Once the account can pay, the next run books it.
    bank.fund(shop.account, FEE)
    assert len(end_of_day(bank, today(bank) + timedelta(days=1)).settled) == 1
    assert shop.settlement_balance() == 0 and settled(bank, shop)[0]["net"] == -FEE
    sound(bank.engine)


def test_one_merchant_carried_over_does_not_stop_the_others(bank, buyer):
    short, fine = bank.merchant(), bank.merchant()
    order = buyer.paid(short.order(100 * YUAN))
    refund(short, order, 100 * YUAN)
    buyer.paid(fine.order(100 * YUAN))
    done = end_of_day(bank, today(bank))
    assert [c.merchant_id for c in done.carried] == [short.id] and len(done.settled) == 1
    assert fine.settlement_balance() == 100 * YUAN - FEE


def test_the_end_of_day_walks_every_merchant_in_chunks(bank, buyer):
    shops = [bank.merchant() for _ in range(3)]
    for shop in shops:
        buyer.paid(shop.order(10 * YUAN))
    done = end_of_day(bank, today(bank), chunk=1)
    assert len(done.settled) == 3 and done.last_merchant is None
    assert all(s.settlement_balance() == 10 * YUAN - 3 for s in shops)  # 2.5 fen rounds up


def test_a_business_day_must_be_a_date(bank):
    for day in (datetime(2026, 11, 23, tzinfo=UTC), "2026-11-23", None):
        result = outcome(bank.writer.submit(settlement.settle_due(business_day=day)))
        assert code_of(result) == "INVALID_INPUT"


def test_the_worker_settles_the_business_day_that_ended_last(bank, shop, buyer):
    from ebank import jobs

    buyer.paid(shop.order(100 * YUAN))
    late_that_day = datetime(2026, 11, 23, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    assert jobs.settle_merchants(bank.writer, late_that_day).settled == ()
    after_midnight = datetime(2026, 11, 23, 16, 5, tzinfo=UTC)
    assert len(jobs.settle_merchants(bank.writer, after_midnight).settled) == 1
    assert shop.settlement_balance() == 100 * YUAN - FEE


def test_a_statement_lists_settlements_with_their_movements(bank, buyer):
    shop = bank.merchant()
    first = buyer.paid(shop.order(100 * YUAN))
    second = buyer.paid(shop.order(50 * YUAN))
    made = refund(shop, second, 20 * YUAN)
    end_of_day(bank, today(bank))
    with bank.engine.connect() as conn:
        [view] = settlement.statement(conn, shop.id, today(bank), today(bank))
        assert settlement.statement(conn, shop.id, today(bank) + timedelta(days=1),
                                    today(bank) + timedelta(days=9)) == []  # fmt: skip
    assert (view.gross, view.refunds, view.fees, view.net) == (
        150 * YUAN, 20 * YUAN, FEE + 13, 130 * YUAN - FEE - 13
    )  # fmt: skip
    assert view.entry is not None and view.entry.startswith("E")
    assert [(i.trade_no, i.out_trade_no, i.kind, i.amount, i.fee, i.refund_no)
            for i in view.items] == [
        (first.trade_no, first.out_trade_no, "pay", 100 * YUAN, FEE, None),
        (second.trade_no, second.out_trade_no, "pay", 50 * YUAN, 13, None),
        (second.trade_no, second.out_trade_no, "refund", 20 * YUAN, 0, made.refund_no),
    ]  # fmt: skip


def test_a_statement_shows_only_the_merchants_own_settlements(bank, buyer):
    mine, theirs = bank.merchant(), bank.merchant()
    buyer.paid(theirs.order(100 * YUAN))
    end_of_day(bank, today(bank))
    with bank.engine.connect() as conn:
        assert settlement.statement(conn, mine.id, today(bank), today(bank)) == []
        assert len(settlement.statement(conn, theirs.id, today(bank), today(bank))) == 1


@pytest.mark.parametrize(
    "since, until",
    [
        (date(2026, 11, 23), date(2026, 11, 22)),  # backwards
        (date(2025, 1, 1), date(2026, 11, 23)),  # longer than a year
        (datetime(2026, 11, 23, tzinfo=UTC), date(2026, 11, 23)),
        ("2026-11-01", "2026-11-30"),
    ],
)
def test_a_statement_period_is_two_dates_forward_within_a_year(bank, shop, since, until):
    with bank.engine.connect() as conn, pytest.raises(Exception) as refused:
        settlement.statement(conn, shop.id, since, until)
    assert code_of(refused.value) == "INVALID_INPUT"


def test_ebank_eod_settles_a_business_day_from_the_command_line(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ebank.db'}"
    upgrade(url)
    engine = make_engine(url)
    writer = Writer(engine, clock=FixedClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC)))
    try:
        bank = GatewayBank(writer, engine, writer.clock)
        shop, buyer = bank.merchant(), bank.buyer()
        buyer.paid(shop.order(100 * YUAN))
    finally:
        writer.close()

    def eod() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ebank.cli", "eod", "--day", "2026-11-23"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "EBANK_DATABASE_URL": url},
        )  # fmt: skip

    first, second = eod(), eod()
    assert first.returncode == 0, first.stderr
    assert "1 merchant settlements" in first.stdout
    assert "0 merchant settlements" in second.stdout
    assert bank.balance_of(shop.account) == 100 * YUAN - FEE
    engine.dispose()
