"""Refunds: full and partial, several per order, idempotent by the merchant's number, never
more than was paid, from escrow, pending money or the settlement account; and the entry /
review split of the merchant portal."""

import pytest

from ebank.core.clock import business_date
from ebank.core.errors import EbankError
from ebank.gateway import orders, refunds, settlement
from ebank.gateway.models import OrderView
from ebank.gateway.tables import movements
from tests.corporate.support import add_operator
from tests.gateway.support import YUAN, Buyer, GatewayBank, Shop
from tests.support import VAULT, sound

PENDING, ESCROW = "GL-MERCHANT-SETTLEMENT-CNY", "GL-ESCROW-CNY"
FUNDS = 100_000 * YUAN


def refund(bank: GatewayBank, shop: Shop, order: OrderView, number: str, amount: int,
           *, review: bool = False, actor: str = "api"):  # fmt: skip
    return bank.writer.execute(
        refunds.request(
            VAULT, merchant_id=shop.id, out_trade_no=order.out_trade_no, out_refund_no=number,
            amount=amount, reason="买家退货", actor=actor, review=review, channel="gateway",
        )
    )  # fmt: skip


def code_of(fn, *args, **kwargs) -> str:
    with pytest.raises(EbankError) as caught:
        fn(*args, **kwargs)
    return caught.value.code


def test_partial_refunds_until_everything_paid_is_back(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    assert refund(bank, shop, order, "R1", 30 * YUAN).status == "succeeded"
    assert shop.refresh(order).status == "paid"
    assert code_of(refund, bank, shop, order, "R2", 70 * YUAN + 1) == "REFUND_EXCEEDS_PAID"
    refund(bank, shop, order, "R2", 70 * YUAN)
    done = shop.refresh(order)
    assert done.status == "refunded" and done.refunded_amount == 100 * YUAN
    assert buyer.balance() == FUNDS and bank.ledger_balance(PENDING) == 0
    assert code_of(refund, bank, shop, order, "R3", 1) == "ORDER_STATE"
    sound(bank.engine)


def test_a_refund_number_is_idempotent(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    first = refund(bank, shop, order, "R1", 30 * YUAN)
    again = refund(bank, shop, order, "R1", 30 * YUAN)
    assert again.refund_no == first.refund_no
    assert buyer.balance() == FUNDS - 70 * YUAN  # paid back once
    assert code_of(refund, bank, shop, order, "R1", 31 * YUAN) == "REFUND_CONFLICT"


@pytest.mark.parametrize("amount", [0, -1, 10**16])
def test_a_bad_refund_amount_changes_nothing(
    bank: GatewayBank, shop: Shop, buyer: Buyer, amount: int
) -> None:
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    assert code_of(refund, bank, shop, order, "R1", amount) == "INVALID_AMOUNT"
    assert shop.refresh(order).refunded_amount == 0


def test_an_unpaid_order_cannot_be_refunded(bank: GatewayBank, shop: Shop) -> None:
    order = shop.order(100 * YUAN)
    assert code_of(refund, bank, shop, order, "R1", 1) == "ORDER_STATE"


def test_another_merchants_order_is_not_found(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    other = bank.merchant()
    assert code_of(refund, bank, other, order, "R1", 1) == "ORDER_NOT_FOUND"


def test_an_escrow_refund_comes_out_of_escrow(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    order = shop.order(100 * YUAN, "escrow")
    buyer.paid(order)
    refund(bank, shop, order, "R1", 40 * YUAN)
    assert bank.ledger_balance(ESCROW) == 60 * YUAN
    bank.writer.execute(orders.confirm_receipt(customer_id=buyer.id, trade_no=order.trade_no,
                                               channel="online"))  # fmt: skip
    assert bank.ledger_balance(ESCROW) == 0 and bank.ledger_balance(PENDING) == 60 * YUAN
    assert [(m.kind, m.source) for m in shop.movements()] == [
        ("escrow_in", None), ("refund", "escrow"), ("release", None)]  # fmt: skip
    sound(bank.engine)


def test_once_settled_a_refund_debits_the_settlement_account(
    bank: GatewayBank, buyer: Buyer
) -> None:
    shop = bank.merchant(cycle="t0_realtime")
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    assert shop.settlement_balance() == 100 * YUAN - 25  # 0.25% kept as the fee
    refund(bank, shop, order, "R1", 50 * YUAN)
    assert shop.settlement_balance() == 50 * YUAN - 25
    [source] = [m.source for m in shop.movements() if m.kind == "refund"]
    assert source == "settlement"
    # More than the settlement account holds cannot go back: nothing changes.
    assert code_of(refund, bank, shop, order, "R2", 50 * YUAN) == "INSUFFICIENT_FUNDS"
    assert shop.refresh(order).refunded_amount == 50 * YUAN
    sound(bank.engine)


def test_an_unsettled_refund_comes_out_of_pending_money(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    refund(bank, shop, order, "R1", 100 * YUAN)
    with bank.engine.connect() as conn:
        assert settlement.unsettled_of_order(conn, order.id) == 0
        [source] = conn.execute(
            movements.select().with_only_columns(movements.c.source)
            .where(movements.c.kind == "refund")
        ).scalars().all()  # fmt: skip
    assert source == "pending" and shop.settlement_balance() == 0


def test_a_captured_authorisation_can_be_refunded_up_to_what_was_captured(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(800 * YUAN, "authorise")
    buyer.paid(order)
    bank.writer.execute(orders.capture(merchant_id=shop.id, out_trade_no=order.out_trade_no,
                                       capture_no="C1", amount=300 * YUAN, final=True))  # fmt: skip
    assert code_of(refund, bank, shop, order, "R1", 300 * YUAN + 1) == "REFUND_EXCEEDS_PAID"
    refund(bank, shop, order, "R1", 300 * YUAN)
    assert shop.refresh(order).status == "refunded" and buyer.balance() == FUNDS


# -- entry and review ------------------------------------------------------------------------
def test_a_refund_entered_waits_for_another_person_to_review_it(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    entry = add_operator(bank.writer, shop.merchant.customer_id, "entry.li", "maker")
    review = add_operator(bank.writer, shop.merchant.customer_id, "review.wang", "checker")
    both = add_operator(bank.writer, shop.merchant.customer_id, "boss.zhao", "maker", "checker")
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    asked = refund(bank, shop, order, "R1", 60 * YUAN, review=True,
                   actor=entry.operator.actor)  # fmt: skip
    assert asked.status == "requested" and buyer.balance() == FUNDS - 100 * YUAN
    # What waits for review counts: no second refund may take the same money meanwhile.
    assert code_of(refund, bank, shop, order, "R2", 41 * YUAN) == "REFUND_EXCEEDS_PAID"

    def approve(who, code: str):
        return bank.writer.execute(refunds.approve(
            VAULT, merchant_id=shop.id, refund_id=asked.id, operator=who.operator, code=code,
        ))  # fmt: skip

    # The entry role alone cannot approve, nor can anyone approve their own request.
    assert code_of(approve, entry, entry.code(bank.clock)) == "FORBIDDEN"
    mine = refund(bank, shop, order, "R3", 10 * YUAN, review=True, actor=both.operator.actor)
    assert code_of(lambda: bank.writer.execute(refunds.approve(
        VAULT, merchant_id=shop.id, refund_id=mine.id, operator=both.operator,
        code=both.code(bank.clock)))) == "REFUND_OWN_REQUEST"  # fmt: skip
    assert code_of(approve, review, "000000") == "AUTH_FAILED"
    assert buyer.balance() == FUNDS - 100 * YUAN
    done = approve(review, review.code(bank.clock))
    assert done.status == "succeeded" and buyer.balance() == FUNDS - 40 * YUAN
    assert code_of(approve, review, review.code(bank.clock)) == "REFUND_DECIDED"
    sound(bank.engine)


def test_a_rejected_refund_frees_what_it_held_back(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    entry = add_operator(bank.writer, shop.merchant.customer_id, "entry.li", "maker")
    review = add_operator(bank.writer, shop.merchant.customer_id, "review.wang", "checker")
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    asked = refund(bank, shop, order, "R1", 100 * YUAN, review=True, actor=entry.operator.actor)
    rejected = bank.writer.execute(refunds.reject(
        VAULT, merchant_id=shop.id, refund_id=asked.id, operator=review.operator,
        code=review.code(bank.clock), note="未收到退货"))  # fmt: skip
    assert rejected.status == "rejected" and shop.refresh(order).refunded_amount == 0
    assert refund(bank, shop, order, "R2", 100 * YUAN).status == "succeeded"


def test_another_merchants_refund_cannot_be_reviewed(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    entry = add_operator(bank.writer, shop.merchant.customer_id, "entry.li", "maker")
    order = shop.order(100 * YUAN)
    buyer.paid(order)
    asked = refund(bank, shop, order, "R1", 10 * YUAN, review=True, actor=entry.operator.actor)
    other = bank.merchant()
    outsider = add_operator(bank.writer, other.merchant.customer_id, "review.x", "checker")
    assert code_of(lambda: bank.writer.execute(refunds.approve(
        VAULT, merchant_id=other.id, refund_id=asked.id, operator=outsider.operator,
        code=outsider.code(bank.clock)))) == "REFUND_NOT_FOUND"  # fmt: skip


def test_an_order_is_refunded_only_once_every_fen_is_back_not_when_some_waits(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    entry = add_operator(bank.writer, shop.merchant.customer_id, "entry.li", "maker")
    review = add_operator(bank.writer, shop.merchant.customer_id, "review.wang", "checker")
    order = shop.order(100 * YUAN, "escrow")
    buyer.paid(order)
    first = refund(bank, shop, order, "R1", 60 * YUAN, review=True, actor=entry.operator.actor)
    second = refund(bank, shop, order, "R2", 40 * YUAN, review=True, actor=entry.operator.actor)
    for asked in (first, second):
        bank.writer.execute(refunds.approve(
            VAULT, merchant_id=shop.id, refund_id=asked.id, operator=review.operator,
            code=review.code(bank.clock)))  # fmt: skip
        status = shop.refresh(order).status
        assert status == ("held" if asked is first else "refunded")
    assert buyer.balance() == FUNDS and bank.ledger_balance(ESCROW) == 0
    sound(bank.engine)


def test_a_dispute_refund_sets_waiting_refunds_aside_and_pays_back_the_rest(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    entry = add_operator(bank.writer, shop.merchant.customer_id, "entry.li", "maker")
    order = shop.order(100 * YUAN, "escrow")
    buyer.paid(order)
    refund(bank, shop, order, "R1", 10 * YUAN)
    waiting = refund(bank, shop, order, "R2", 30 * YUAN, review=True, actor=entry.operator.actor)
    # The merchant cannot take the number the bank gives a dispute's refund.
    assert code_of(refund, bank, shop, order, f"DISPUTE:{order.trade_no}", 1) == "INVALID_INPUT"
    bank.writer.execute(orders.dispute(customer_id=buyer.id, trade_no=order.trade_no,
                                       reason="假货", channel="online"))  # fmt: skip
    decided = bank.writer.execute(orders.decide_dispute(
        VAULT, trade_no=order.trade_no, outcome="refund", note="商户认可", actor="staff:1",
    ))  # fmt: skip
    assert decided.status == "refunded" and decided.refunded_amount == 100 * YUAN
    assert buyer.balance() == FUNDS and bank.ledger_balance(ESCROW) == 0
    with bank.engine.connect() as conn:
        set_aside = refunds.get(conn, merchant_id=shop.id, out_refund_no=waiting.out_refund_no)
    assert set_aside.status == "rejected"
    sound(bank.engine)


def test_an_authorisation_whose_captures_all_went_back_ends_refunded(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(100 * YUAN, "authorise")
    buyer.paid(order)
    bank.writer.execute(orders.capture(merchant_id=shop.id, out_trade_no=order.out_trade_no,
                                       capture_no="C1", amount=40 * YUAN, final=False))  # fmt: skip
    refund(bank, shop, order, "R1", 40 * YUAN)
    ended = bank.writer.execute(orders.void(merchant_id=shop.id, out_trade_no=order.out_trade_no))
    assert ended.status == "refunded" and buyer.balance() == FUNDS


def test_a_realtime_merchant_whose_account_cannot_take_money_is_settled_later(
    bank: GatewayBank, buyer: Buyer
) -> None:
    shop = bank.merchant(cycle="t0_realtime")
    bank.decide("account.suspend", {"account": shop.account.number})  # 涉案: takes nothing
    order = shop.order(100 * YUAN)
    assert buyer.paid(order).status == "paid"  # the payment stands; the settlement waits
    assert bank.ledger_balance(PENDING) == 100 * YUAN and shop.settlement_balance() == 0
    bank.decide("account.reinstate", {"account": shop.account.number})
    today = business_date(bank.clock.now())
    settlement.end_of_day(bank.writer, business_day=today)
    assert shop.settlement_balance() == 100 * YUAN - 25 and bank.ledger_balance(PENDING) == 0
    sound(bank.engine)
