"""The management KPIs against a small bank made by hand, whose figures are known: two buyers
(one whose card has not moved in the period), two merchants (one idle), a gateway payment and
payments on the online and counter channels. On SQLite and PostgreSQL."""

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx, Writer
from ebank.ops import kpis
from ebank.payments.tables import payment_events, payments
from tests.gateway.support import YUAN, Buyer, GatewayBank

PERIOD = (date(2026, 11, 25), date(2026, 11, 25))  # the clock starts on 23 November


def _payment(writer: Writer, buyer: Buyer, *, channel: str, amount: int, completed: bool) -> None:
    """A payment as the payments service leaves it, written straight to its tables."""

    def run(tx: Tx) -> None:
        payment_id = tx.conn.execute(
            payments.insert().values(
                customer_id=buyer.id, channel=channel, kind="intra",
                from_account_id=buyer.account.id, payee_account_sealed="-",
                payee_account_hash="-", payee_account_masked="6222****0001", payee_name="李四",
                amount=amount, currency="CNY", speed="realtime", memo="",
                status="completed" if completed else "failed", due_at=tx.now, created_at=tx.now,
            )
        ).inserted_primary_key[0]  # fmt: skip
        tx.conn.execute(
            payment_events.insert().values(
                payment_id=payment_id, status="completed" if completed else "failed",
                actor="test", at=tx.now,
            )
        )  # fmt: skip

    writer.execute(Command(run))


@pytest.fixture
def board(writer: Writer, engine: Engine, clock: FixedClock, fast_hashing: None) -> Any:
    bank = GatewayBank(writer, engine, clock)
    shop = bank.merchant()
    bank.merchant()  # signed up, takes nothing: inactive
    idle = bank.buyer()  # funded, enrolled online and carded on the 23rd
    _payment(writer, idle, channel="online", amount=700 * YUAN, completed=True)  # the 23rd
    clock.advance(timedelta(days=2))
    busy = bank.buyer()  # funded on the 25th: its card moved
    busy.paid(shop.order(100 * YUAN))  # online, B2C 0.25%: a fee of ¥0.25
    _payment(writer, busy, channel="online", amount=50 * YUAN, completed=True)
    _payment(writer, busy, channel="online", amount=999 * YUAN, completed=False)
    _payment(writer, idle, channel="counter", amount=30 * YUAN, completed=True)
    with engine.connect() as conn:
        return kpis.dashboard(conn, *PERIOD)


def test_transactions_per_channel_and_day_count_completed_payments_and_gateway_payments(
    board: kpis.Dashboard,
) -> None:
    assert board.flows == [
        kpis.Flow(date(2026, 11, 25), "counter", 1, 30 * YUAN),
        kpis.Flow(date(2026, 11, 25), "online", 2, 150 * YUAN),
    ]


def test_the_substitution_rate_is_e_channel_transactions_over_all_counter_included(
    board: kpis.Dashboard,
) -> None:
    assert (board.substitution.part, board.substitution.whole) == (2, 3)
    assert board.substitution.percent == 66.67


def test_a_card_is_active_when_its_account_moved_in_the_period(board: kpis.Dashboard) -> None:
    figures = board.cards
    assert (figures.in_issue, figures.active, figures.dormant) == (2, 1, 1)
    assert figures.active_rate.percent == 50.0
    # Both debit cards' accounts: ¥100,000 each, less the ¥100 paid to the shop.
    assert figures.deposits == 200_000 * YUAN - 100 * YUAN


def test_customers_enrolled_and_active_per_channel(board: kpis.Dashboard) -> None:
    assert board.channels[0] == kpis.ChannelUse("online", 2, 1)
    assert [(c.enrolled, c.active) for c in board.channels[1:]] == [(0, 0)] * 3


def test_fee_income_and_merchant_figures(board: kpis.Dashboard) -> None:
    assert board.fees_by_day == {date(2026, 11, 25): 25}
    assert board.fees_booked == 0  # booked when the merchant is settled, at the day's end
    m = board.merchants
    assert (m.by_industry, m.by_status) == ({"retail": 2}, {"active": 2, "suspended": 0,
                                                            "closed": 0})  # fmt: skip
    assert (m.inactive, m.payments, m.amount, m.flagged) == (1, 1, 100 * YUAN, ())


def test_a_period_running_backwards_or_past_a_year_is_refused(engine: Engine) -> None:
    with engine.connect() as conn:
        for since, until in ((date(2026, 2, 1), date(2026, 1, 1)),
                             (date(2025, 1, 1), date(2026, 1, 2))):  # fmt: skip
            with pytest.raises(EbankError) as raised:
                kpis.dashboard(conn, since, until)
            assert raised.value.code == "INVALID_INPUT"
