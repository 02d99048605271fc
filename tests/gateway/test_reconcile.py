"""Reconciliation: the merchant's daily file, and the bank's check that orders, movements,
ledger entries and settlements agree."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from ebank.gateway import orders, reconcile
from ebank.gateway.reconcile import COLUMNS, SUMMARY, Break
from ebank.gateway.settlement import PENDING
from ebank.gateway.tables import movements, settlements
from ebank.gateway.tables import orders as order_rows
from ebank.ledger import service as ledger
from tests.gateway.support import YUAN, Buyer, GatewayBank, Shop
from tests.gateway.test_settlement import end_of_day, refund, today
from tests.support import code_of

ESCROW = "GL-ESCROW-CNY"


def read(data: bytes) -> tuple[list[list[str]], list[list[str]]]:
    """The file's movement lines and its summary lines (each after its header)."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    gap = rows.index([])
    assert rows[0] == list(COLUMNS) and rows[gap + 1] == list(SUMMARY)
    return rows[1:gap], rows[gap + 2 :]


def daily_file(bank: GatewayBank, shop: Shop, day: date) -> bytes:
    with bank.engine.connect() as conn:
        return reconcile.daily_file(conn, shop.id, day)


def breaks(bank: GatewayBank, day: date | None = None) -> list[Break]:
    with bank.engine.connect() as conn:
        return reconcile.check(conn, day)


def a_busy_day(bank: GatewayBank, shop: Shop, buyer: Buyer) -> dict[str, object]:
    """Every kind of movement: instant, escrow released and held, captures, refunds out of
    escrow, pending money and the settlement account, and settlements."""
    instant = buyer.paid(shop.order(100 * YUAN, out_trade_no="-1"))
    refund(shop, instant, 40 * YUAN, "-R1")  # out of pending money
    released = buyer.paid(shop.order(200 * YUAN, "escrow"))
    bank.writer.execute(
        orders.confirm_receipt(customer_id=buyer.id, trade_no=released.trade_no, channel="online")
    )
    held = buyer.paid(shop.order(50 * YUAN, "escrow"))
    refund(shop, held, 10 * YUAN, "R2")  # out of escrow
    authorised = buyer.paid(shop.order(300 * YUAN, "authorise"))
    bank.writer.execute(
        orders.capture(merchant_id=shop.id, out_trade_no=authorised.out_trade_no,
                       capture_no="C1", amount=120 * YUAN, final=False)
    )  # fmt: skip
    end_of_day(bank, today(bank))
    refund(shop, instant, 10 * YUAN, "R3")  # settled by now: out of the settlement account
    return {"instant": instant, "released": released, "held": held, "authorised": authorised}


def test_the_daily_file_has_a_line_per_movement_and_the_days_totals(
    bank: GatewayBank, shop: Shop, buyer: Buyer
):
    made = a_busy_day(bank, shop, buyer)
    data = daily_file(bank, shop, today(bank))
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark
    assert data.count(b"\r\n") == data.count(b"\n")  # CRLF line ends only
    lines, summary = read(data)
    picked = [[line[COLUMNS.index(c)] for c in ("type", "source", "amount", "fee", "net")]
              for line in lines]  # fmt: skip
    assert picked == [
        ["pay", "", "100.00", "0.25", "99.75"],
        ["refund", "pending", "40.00", "0.00", "-40.00"],
        ["escrow_in", "", "200.00", "0.00", "0.00"],
        ["release", "", "200.00", "0.50", "199.50"],
        ["escrow_in", "", "50.00", "0.00", "0.00"],
        ["refund", "escrow", "10.00", "0.00", "0.00"],
        ["capture", "", "120.00", "0.30", "119.70"],
        ["refund", "settlement", "10.00", "0.00", "-10.00"],
    ]
    first = dict(zip(COLUMNS, lines[0], strict=True))
    instant = made["instant"]
    assert first["trade_no"] == instant.trade_no
    assert first["out_trade_no"] == "-1"  # a number, which a spreadsheet shows, never runs
    assert (first["mode"], first["funding"], first["channel"]) == ("instant", "debit", "online")
    assert first["time"] == "2026-11-23 10:00:00"  # Beijing time
    second = dict(zip(COLUMNS, lines[1], strict=True))
    assert second["out_refund_no"] == "'-R1" and second["refund_no"].startswith("R")
    assert lines[6][COLUMNS.index("capture_no")] == "C1"
    assert summary == [
        ["pay", "1", "100.00", "0.25", "99.75"],
        ["escrow_in", "2", "250.00", "0.00", "0.00"],
        ["release", "1", "200.00", "0.50", "199.50"],
        ["capture", "1", "120.00", "0.30", "119.70"],
        ["refund", "3", "60.00", "0.00", "-50.00"],
        ["total", "8", "", "1.05", "368.95"],
    ]


def test_the_daily_file_holds_only_that_day_and_that_merchant(
    bank: GatewayBank, shop: Shop, buyer: Buyer
):
    other = bank.merchant()
    buyer.paid(other.order(100 * YUAN))
    buyer.paid(shop.order(100 * YUAN))
    bank.clock.advance(timedelta(days=1))
    buyer.paid(shop.order(70 * YUAN))
    lines, _ = read(daily_file(bank, shop, today(bank) - timedelta(days=1)))
    assert [line[COLUMNS.index("amount")] for line in lines] == ["100.00"]
    empty, totals = read(daily_file(bank, shop, today(bank) + timedelta(days=1)))
    assert empty == [] and totals[-1] == ["total", "0", "", "0.00", "0.00"]


@pytest.mark.parametrize("day", ["2026-11-23", datetime(2026, 11, 23, tzinfo=UTC), None])
def test_a_day_that_is_not_a_date_is_refused(bank: GatewayBank, shop: Shop, day):
    with bank.engine.connect() as conn:
        for read_it in (lambda: reconcile.daily_file(conn, shop.id, day),
                        lambda: reconcile.check(conn, day or "x")):  # fmt: skip
            with pytest.raises(Exception) as refused:
                read_it()
            assert code_of(refused.value) == "INVALID_INPUT"


def test_a_clean_day_reports_no_break(bank: GatewayBank, shop: Shop, buyer: Buyer):
    a_busy_day(bank, shop, buyer)
    realtime = bank.merchant(cycle="t0_realtime")
    buyer.paid(realtime.order(100 * YUAN))
    assert breaks(bank, today(bank)) == []
    assert breaks(bank) == []


def test_a_past_day_is_checked_as_it_stood_at_its_end(bank: GatewayBank, shop: Shop, buyer: Buyer):
    buyer.paid(shop.order(100 * YUAN))
    day = today(bank)
    bank.clock.advance(timedelta(days=1))
    end_of_day(bank, day)  # settled the next morning: pending was still full that night
    buyer.paid(shop.order(30 * YUAN, "escrow"))
    assert breaks(bank, day) == [] and breaks(bank, today(bank)) == [] and breaks(bank) == []


def test_money_put_into_pending_behind_the_gateways_back_is_a_break(
    bank: GatewayBank, shop: Shop, buyer: Buyer
):
    buyer.paid(shop.order(100 * YUAN))
    bank.writer.execute(
        ledger.command(lambda tx: ledger.transfer(
            tx, debit=ledger.account_id_of(tx, "GL-SUSPENSE-CNY"),
            credit=ledger.account_id_of(tx, PENDING), amount=7 * YUAN,
        ))
    )  # fmt: skip
    expected = Break("pending account balance", PENDING, 100 * YUAN, 107 * YUAN)
    assert breaks(bank, today(bank)) == [expected]
    assert breaks(bank) == [expected]


def test_money_taken_out_of_escrow_behind_the_gateways_back_is_a_break(
    bank: GatewayBank, shop: Shop, buyer: Buyer
):
    buyer.paid(shop.order(100 * YUAN, "escrow"))
    bank.writer.execute(
        ledger.command(lambda tx: ledger.transfer(
            tx, debit=ledger.account_id_of(tx, ESCROW),
            credit=ledger.account_id_of(tx, "GL-SUSPENSE-CNY"), amount=1,
        ))
    )  # fmt: skip
    assert breaks(bank) == [Break("escrow account balance", ESCROW, 100 * YUAN, 100 * YUAN - 1)]


def test_a_movement_altered_in_place_is_a_break_wherever_it_shows(
    bank: GatewayBank, shop: Shop, buyer: Buyer
):
    order = buyer.paid(shop.order(100 * YUAN))
    [moved] = shop.movements()
    with bank.engine.begin() as conn:
        conn.execute(update(movements).where(movements.c.id == moved.id).values(amount=90 * YUAN))
    found = {b.what: b for b in breaks(bank, today(bank))}
    assert set(found) == {"pay entry", "order paid_amount", "merchant pending money",
                          "pending account balance"}  # fmt: skip
    entry = found["pay entry"]
    where = f"merchant {shop.merchant.merchant_no} order {order.trade_no} movement {moved.id}"
    assert entry.where == where
    assert "C GL-MERCHANT-SETTLEMENT-CNY 90.00" in entry.expected
    assert "C GL-MERCHANT-SETTLEMENT-CNY 100.00" in entry.found
    assert found["order paid_amount"].expected == 90 * YUAN
    assert found["order paid_amount"].found == 100 * YUAN
    assert (found["merchant pending money"].expected, found["merchant pending money"].found) == (
        90 * YUAN, 100 * YUAN
    )  # fmt: skip


def test_an_order_total_altered_in_place_is_a_break(bank: GatewayBank, shop: Shop, buyer: Buyer):
    order = buyer.paid(shop.order(100 * YUAN))
    refund(shop, order, 30 * YUAN)
    with bank.engine.begin() as conn:
        conn.execute(
            update(order_rows).where(order_rows.c.id == order.id).values(refunded_amount=0)
        )
    assert breaks(bank) == [
        Break("order refunded_amount", f"merchant {shop.merchant.merchant_no} order "
              f"{order.trade_no}", 30 * YUAN, 0)
    ]  # fmt: skip


def test_an_order_claiming_money_it_never_took_is_a_break(bank: GatewayBank, shop: Shop):
    order = shop.order(100 * YUAN)  # never paid: no movement at all
    with bank.engine.begin() as conn:
        conn.execute(
            update(order_rows).where(order_rows.c.id == order.id).values(paid_amount=100 * YUAN)
        )
    where = f"merchant {shop.merchant.merchant_no} order {order.trade_no}"
    assert breaks(bank) == [Break("order paid_amount", where, 0, 100 * YUAN)]


def test_a_settlement_that_disagrees_with_its_items_is_a_break(
    bank: GatewayBank, shop: Shop, buyer: Buyer
):
    buyer.paid(shop.order(100 * YUAN))
    [made] = end_of_day(bank, today(bank)).settled
    with bank.engine.begin() as conn:
        conn.execute(update(settlements).where(settlements.c.id == made).values(fees=0))
    [found] = breaks(bank, today(bank))
    assert (found.what, found.expected, found.found) == ("settlement fees", 25, 0)
    assert found.where.startswith(f"merchant {shop.merchant.merchant_no} settlement S")


def test_a_settlement_entry_that_posts_other_figures_is_a_break(
    bank: GatewayBank, shop: Shop, buyer: Buyer
):
    buyer.paid(shop.order(100 * YUAN))
    [made] = end_of_day(bank, today(bank)).settled
    other = bank.merchant()  # the entry is said to be another settlement's
    buyer.paid(other.order(50 * YUAN))
    [theirs] = end_of_day(bank, today(bank)).settled
    with bank.engine.begin() as conn:
        entry = conn.execute(
            settlements.select().where(settlements.c.id == theirs)
        ).one().entry_id  # fmt: skip
        conn.execute(update(settlements).where(settlements.c.id == made).values(entry_id=entry))
    found = {b.what for b in breaks(bank, today(bank))}
    assert "settlement entry" in found and "merchant pending money" in found
