"""Statistics of gateway payments by channel, mode, account type and period; merchants flagged
for fabricated volume are marked and left out of the bank-wide figures."""

from datetime import UTC, date, datetime, timedelta

import pytest

from ebank.core.errors import EbankError
from ebank.gateway import orders, reports
from ebank.gateway.reports import Group, Volume
from tests.gateway.support import YUAN, Buyer, GatewayBank, Shop
from tests.gateway.test_settlement import refund, today
from tests.support import code_of


def statistics(
    bank: GatewayBank, by: tuple[str, ...], *, since: date | None = None,
    until: date | None = None, merchant_id: int | None = None,
) -> reports.Statistics:  # fmt: skip
    with bank.engine.connect() as conn:
        return reports.statistics(
            conn, merchant_id=merchant_id, since=since or today(bank), until=until or today(bank),
            by=by,
        )  # fmt: skip


def test_payments_are_grouped_by_channel_mode_and_account_type(bank: GatewayBank, shop: Shop):
    buyer = bank.buyer(credit_line=10_000 * YUAN)
    bank.enrol(buyer.id, "mobile")
    instant = buyer.paid(shop.order(100 * YUAN))
    buyer.paid(shop.order(200 * YUAN), channel="mobile", card_id=buyer.credit_card)
    buyer.paid(shop.order(50 * YUAN, "escrow"), channel="mobile")
    authorised = buyer.paid(shop.order(300 * YUAN, "authorise"))
    for number, amount in (("C1", 100 * YUAN), ("C2", 100 * YUAN)):
        bank.writer.execute(
            orders.capture(merchant_id=shop.id, out_trade_no=authorised.out_trade_no,
                           capture_no=number, amount=amount, final=False)
        )  # fmt: skip
    refund(shop, instant, 30 * YUAN)
    stats = statistics(bank, ("channel", "mode", "funding"))
    assert stats.groups == (
        Group(("mobile", "escrow", "debit"), Volume(1, 50 * YUAN, 0, 0), False),
        Group(("mobile", "instant", "credit"), Volume(1, 200 * YUAN, 0, 50), False),
        Group(("online", "authorise", "debit"), Volume(2, 200 * YUAN, 0, 50), False),
        Group(("online", "instant", "debit"), Volume(1, 100 * YUAN, 30 * YUAN, 25), False),
    )
    assert stats.totals == Volume(5, 550 * YUAN, 30 * YUAN, 125)
    assert stats.flagged == () and stats.by == ("channel", "mode", "funding")


def test_payments_are_grouped_by_day_and_by_month(bank: GatewayBank, shop: Shop, buyer: Buyer):
    first = today(bank)  # 2026-11-23
    buyer.paid(shop.order(100 * YUAN))
    bank.clock.advance(timedelta(days=8))  # 2026-12-01
    buyer.paid(shop.order(200 * YUAN))
    buyer.paid(shop.order(300 * YUAN))
    days = statistics(bank, ("day",), since=first, until=today(bank))
    assert [(g.key, g.volume.count, g.volume.amount) for g in days.groups] == [
        (("2026-11-23",), 1, 100 * YUAN), (("2026-12-01",), 2, 500 * YUAN)
    ]  # fmt: skip
    months = statistics(bank, ("month", "mode"), since=first, until=today(bank))
    assert [g.key for g in months.groups] == [("2026-11", "instant"), ("2026-12", "instant")]
    assert statistics(bank, ()).groups == (Group((), Volume(2, 500 * YUAN, 0, 125), False),)
    assert statistics(bank, (), since=first, until=first).totals.amount == 100 * YUAN


def test_released_escrow_counts_its_fee_on_the_day_it_was_released(
    bank: GatewayBank, shop: Shop, buyer: Buyer
):
    order = buyer.paid(shop.order(100 * YUAN, "escrow"))
    paid_on = today(bank)
    bank.clock.advance(timedelta(days=1))
    bank.writer.execute(
        orders.confirm_receipt(customer_id=buyer.id, trade_no=order.trade_no, channel="online")
    )
    assert statistics(bank, (), since=paid_on, until=paid_on).totals == Volume(1, 100 * YUAN, 0, 0)
    assert statistics(bank, ()).totals == Volume(0, 0, 0, 25)


def test_a_merchants_report_holds_only_its_own_payments(bank: GatewayBank, buyer: Buyer):
    mine, theirs = bank.merchant(), bank.merchant()
    buyer.paid(mine.order(100 * YUAN))
    buyer.paid(theirs.order(900 * YUAN))
    assert statistics(bank, ("mode",), merchant_id=mine.id).totals.amount == 100 * YUAN
    everyone = statistics(bank, ("merchant",))
    assert [(g.key, g.volume.amount) for g in everyone.groups] == [
        ((mine.merchant.merchant_no,), 100 * YUAN), ((theirs.merchant.merchant_no,), 900 * YUAN)
    ]  # fmt: skip
    assert everyone.totals.amount == 1000 * YUAN


def test_a_merchant_flagged_for_fabricated_volume_is_marked_and_left_out_of_the_banks_figures(
    bank: GatewayBank, buyer: Buyer
):
    fake, honest = bank.merchant(), bank.merchant()
    buyer.paid(honest.order(100 * YUAN))
    for _ in range(30):  # many small orders from one buyer
        buyer.paid(fake.order(1 * YUAN))
    with pytest.raises(EbankError) as refused:  # risk control holds the next one back
        buyer.pay(fake.order(1 * YUAN))
    assert refused.value.code == "RISK_REJECTED"
    number = fake.merchant.merchant_no

    bank_wide = statistics(bank, ())
    assert bank_wide.flagged == (number,)
    assert bank_wide.totals == Volume(1, 100 * YUAN, 0, 25)
    assert bank_wide.groups == (Group((), Volume(1, 100 * YUAN, 0, 25), False),)

    by_merchant = statistics(bank, ("merchant",))
    assert {g.key[0]: g.flagged for g in by_merchant.groups} == {
        number: True, honest.merchant.merchant_no: False
    }  # fmt: skip
    assert by_merchant.totals == bank_wide.totals

    own = statistics(bank, ("mode",), merchant_id=fake.id)
    assert own.flagged == (number,) and own.totals.count == 30
    assert own.groups[0].flagged
    assert statistics(bank, (), merchant_id=honest.id).flagged == ()
    # The flag belongs to the period it was raised in.
    tomorrow = today(bank) + timedelta(days=1)
    assert statistics(bank, (), since=tomorrow, until=tomorrow).flagged == ()


@pytest.mark.parametrize(
    "by", [("day", "month"), ("channel", "channel"), ("nope",), "channel", None, ({},)]
)
def test_a_report_groups_by_known_distinct_dimensions(bank: GatewayBank, by):
    with bank.engine.connect() as conn, pytest.raises(Exception) as refused:
        reports.statistics(conn, since=today(bank), until=today(bank), by=by)
    assert code_of(refused.value) == "INVALID_INPUT"


@pytest.mark.parametrize(
    "since, until",
    [
        (date(2026, 11, 23), date(2026, 11, 22)),
        (date(2025, 1, 1), date(2026, 11, 23)),
        (datetime(2026, 11, 23, tzinfo=UTC), date(2026, 11, 23)),
    ],
)
def test_a_report_period_is_two_dates_forward_within_a_year(bank: GatewayBank, since, until):
    with bank.engine.connect() as conn, pytest.raises(Exception) as refused:
        reports.statistics(conn, since=since, until=until, by=())
    assert code_of(refused.value) == "INVALID_INPUT"
