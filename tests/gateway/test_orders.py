"""Orders through every mode and state: created, closed, expired, paid, held, disputed,
authorised, captured, voided; and the misuse of each step."""

from datetime import timedelta

import pytest

from ebank.core.errors import EbankError
from ebank.core.writer import Command
from ebank.gateway import orders
from ebank.gateway.models import OrderView
from ebank.gateway.tables import order_events
from tests.gateway.support import YUAN, Buyer, GatewayBank, Shop
from tests.support import STAFF, VAULT, last_code, sound

PENDING, ESCROW, FEES = "GL-MERCHANT-SETTLEMENT-CNY", "GL-ESCROW-CNY", "GL-FEE-INCOME-CNY"


def refused(code: str, fn, *args, **kwargs) -> None:
    with pytest.raises(EbankError) as caught:
        fn(*args, **kwargs)
    assert caught.value.code == code, caught.value


def run(bank: GatewayBank, command: Command):
    return bank.writer.execute(command)


def test_an_order_number_is_the_merchants_idempotency_key(bank: GatewayBank, shop: Shop) -> None:
    request = shop.request(120 * YUAN)
    first = run(bank, orders.create(VAULT, request))
    again = run(bank, orders.create(VAULT, request))
    assert again.trade_no == first.trade_no and again.status == "created"
    from dataclasses import replace

    refused("ORDER_CONFLICT", run, bank, orders.create(VAULT, replace(request, amount=121 * YUAN)))


def test_another_merchant_may_use_the_same_order_number(bank: GatewayBank, shop: Shop) -> None:
    other = bank.merchant()
    a = shop.order(10 * YUAN, out_trade_no="SAME-1")
    b = other.order(10 * YUAN, out_trade_no="SAME-1")
    assert a.trade_no != b.trade_no
    with bank.engine.connect() as conn:
        refused("ORDER_NOT_FOUND", orders.get, conn, merchant_id=other.id, out_trade_no="nope")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 0), ("amount", -5), ("amount", 10**16), ("mode", "later"),
        ("out_trade_no", "有中文"), ("out_trade_no", "x" * 65), ("notify_url", "ftp://x/y"),
        ("return_url", "javascript:alert(1)"), ("notify_url", "https://user:pw@host/"),
        ("subject", "<\x00>"), ("expire_minutes", 0), ("confirm_days", 31), ("currency", "USD"),
    ],
)  # fmt: skip
def test_a_bad_order_is_refused_and_nothing_is_created(
    bank: GatewayBank, shop: Shop, field: str, value: object
) -> None:
    from dataclasses import replace

    with pytest.raises(EbankError):
        run(bank, orders.create(VAULT, replace(shop.request(10 * YUAN), **{field: value})))
    with bank.engine.connect() as conn:
        assert orders.of_merchant(conn, shop.id) == []


def test_instant_payment_pays_the_merchant_with_its_fee(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    before = buyer.balance()
    order = shop.order(200 * YUAN)
    paid = buyer.paid(order)
    assert paid.status == "paid" and paid.paid_amount == 200 * YUAN and paid.funding == "debit"
    assert buyer.balance() == before - 200 * YUAN
    assert bank.ledger_balance(PENDING) == 200 * YUAN
    [move] = shop.movements()
    assert (move.kind, move.amount, move.fee) == ("pay", 200 * YUAN, 50)  # 0.25%
    sound(bank.engine)


def test_an_order_is_paid_once(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    order = shop.order(20 * YUAN)
    buyer.paid(order)
    refused("ORDER_STATE", buyer.pay, order)
    assert buyer.balance() == 100_000 * YUAN - 20 * YUAN


def test_a_wrong_pin_pays_nothing_and_counts(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    order = shop.order(20 * YUAN)
    answer = buyer.pay(order, pin="000000")
    assert not answer.verdict.ok
    assert shop.refresh(order).status == "created" and buyer.balance() == 100_000 * YUAN


def test_someone_elses_card_cannot_pay(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    thief = bank.buyer()
    order = shop.order(20 * YUAN)
    refused("CARD_NOT_FOUND", thief.pay, order, card_id=buyer.debit_card)
    assert buyer.balance() == 100_000 * YUAN


def test_a_credit_card_pays_on_its_credit_line(bank: GatewayBank, shop: Shop) -> None:
    buyer = bank.buyer(credit_line=5_000 * YUAN)
    paid = buyer.paid(shop.order(300 * YUAN), card_id=buyer.credit_card)
    assert paid.funding == "credit" and buyer.balance() == 100_000 * YUAN


def test_above_the_uncertified_limit_only_a_certificate_will_do(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(1_000 * YUAN + 1)  # PBOC: ¥1,000 per payment without a certificate
    with bank.engine.connect() as conn:
        token = orders.pay_token(VAULT, order.trade_no)
        [debit] = orders.options(
            conn, token=token, customer_id=buyer.id, channel="online", now=bank.clock.now()
        )
    assert debit.methods == ("certificate",)
    refused("LIMIT_EXCEEDED", buyer.pay, order)
    assert buyer.balance() == 100_000 * YUAN


def test_an_sms_code_confirms_only_the_order_it_was_sent_for(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order, other = shop.order(300 * YUAN), shop.order(300 * YUAN)  # same merchant, same amount
    token = orders.pay_token(VAULT, order.trade_no)
    run(bank, orders.send_code(VAULT, token=token, customer_id=buyer.id,
                               card_id=buyer.debit_card, channel="online"))  # fmt: skip
    code = last_code(bank.engine)
    assert not buyer.pay(other, method="sms", code=code).verdict.ok
    assert buyer.paid(order, method="sms", code=code).status == "paid"


def test_an_unpaid_order_expires_and_cannot_be_paid(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(20 * YUAN, expire_minutes=15)
    bank.clock.advance(timedelta(minutes=15))
    refused("ORDER_EXPIRED", buyer.pay, order)
    assert run(bank, orders.sweep()) == 1
    assert shop.refresh(order).status == "expired"
    refused("ORDER_STATE", buyer.pay, order)


def test_a_closed_order_cannot_be_paid_and_a_paid_one_cannot_be_closed(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(20 * YUAN)
    closed = run(bank, orders.close(merchant_id=shop.id, out_trade_no=order.out_trade_no))
    assert closed.status == "closed"
    assert (
        run(bank, orders.close(merchant_id=shop.id, out_trade_no=order.out_trade_no)).status
        == "closed"
    )
    refused("ORDER_STATE", buyer.pay, order)
    paid = shop.order(20 * YUAN)
    buyer.paid(paid)
    refused(
        "ORDER_STATE", run, bank, orders.close(merchant_id=shop.id, out_trade_no=paid.out_trade_no)
    )


def test_escrow_holds_until_the_buyer_confirms_receipt(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(500 * YUAN, "escrow")
    held = buyer.paid(order)
    assert held.status == "held" and bank.ledger_balance(ESCROW) == 500 * YUAN
    assert bank.ledger_balance(PENDING) == 0
    stranger = bank.buyer()
    refused("ORDER_NOT_FOUND", run, bank, orders.confirm_receipt(
        customer_id=stranger.id, trade_no=order.trade_no, channel="online"))  # fmt: skip
    done = run(bank, orders.confirm_receipt(customer_id=buyer.id, trade_no=order.trade_no,
                                            channel="online"))  # fmt: skip
    assert done.status == "paid" and bank.ledger_balance(ESCROW) == 0
    assert bank.ledger_balance(PENDING) == 500 * YUAN
    assert [m.kind for m in shop.movements()] == ["escrow_in", "release"]
    assert [m.fee for m in shop.movements()] == [0, 125]


def test_escrow_releases_itself_when_the_time_to_confirm_has_passed(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(500 * YUAN, "escrow", confirm_days=3)
    buyer.paid(order)
    bank.clock.advance(timedelta(days=3) - timedelta(seconds=1))
    assert run(bank, orders.sweep()) == 0
    bank.clock.advance(timedelta(seconds=1))
    assert run(bank, orders.sweep()) == 1
    assert shop.refresh(order).status == "paid" and bank.ledger_balance(ESCROW) == 0


def test_a_disputed_order_stays_held_until_staff_decide(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(500 * YUAN, "escrow", confirm_days=3)
    buyer.paid(order)
    run(bank, orders.dispute(customer_id=buyer.id, trade_no=order.trade_no,
                             reason="货不对板", channel="online"))  # fmt: skip
    bank.clock.advance(timedelta(days=10))
    run(bank, orders.sweep())
    assert shop.refresh(order).status == "disputed" and bank.ledger_balance(ESCROW) == 500 * YUAN
    decided = run(bank, orders.decide_dispute(VAULT, trade_no=order.trade_no, outcome="refund",
                                              note="商户无法举证", actor=STAFF))  # fmt: skip
    assert decided.status == "refunded" and decided.refunded_amount == 500 * YUAN
    assert buyer.balance() == 100_000 * YUAN and bank.ledger_balance(ESCROW) == 0
    sound(bank.engine)


def test_staff_may_decide_a_dispute_for_the_merchant(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(500 * YUAN, "escrow")
    buyer.paid(order)
    run(bank, orders.dispute(customer_id=buyer.id, trade_no=order.trade_no, reason="慢",
                             channel="online"))  # fmt: skip
    refused("ORDER_STATE", run, bank, orders.confirm_receipt(
        customer_id=buyer.id, trade_no=order.trade_no, channel="online"))  # fmt: skip
    decided = run(bank, orders.decide_dispute(VAULT, trade_no=order.trade_no, outcome="release",
                                              note="已签收", actor=STAFF))  # fmt: skip
    assert decided.status == "paid" and bank.ledger_balance(PENDING) == 500 * YUAN


def test_an_authorisation_holds_and_is_captured_in_parts(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(800 * YUAN, "authorise")
    held = buyer.paid(order)
    assert held.status == "authorised" and buyer.balance() == 100_000 * YUAN

    def capture(no: str, amount: int, final: bool = False):
        return run(bank, orders.capture(merchant_id=shop.id, out_trade_no=order.out_trade_no,
                                        capture_no=no, amount=amount, final=final))  # fmt: skip

    assert capture("C1", 300 * YUAN).paid_amount == 300 * YUAN
    assert capture("C1", 300 * YUAN).paid_amount == 300 * YUAN  # a retry takes nothing more
    refused("IDEMPOTENCY_CONFLICT", capture, "C1", 301 * YUAN)
    refused("CAPTURE_EXCEEDS_AUTHORISATION", capture, "C2", 500 * YUAN + 1)
    done = capture("C2", 200 * YUAN, final=True)
    assert done.status == "paid" and done.paid_amount == 500 * YUAN
    assert buyer.balance() == 100_000 * YUAN - 500 * YUAN
    refused("ORDER_STATE", capture, "C3", 1)
    sound(bank.engine)


def test_a_void_releases_the_hold(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    order = shop.order(800 * YUAN, "authorise")
    buyer.paid(order)
    voided = run(bank, orders.void(merchant_id=shop.id, out_trade_no=order.out_trade_no))
    assert voided.status == "voided"
    with bank.engine.connect() as conn:
        from ebank.accounts.service import get_account

        assert get_account(conn, number=buyer.account.number).available == 100_000 * YUAN


def test_an_authorisation_expires_with_its_hold(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(800 * YUAN, "authorise", auth_days=2)
    buyer.paid(order)
    bank.clock.advance(timedelta(days=2))
    assert run(bank, orders.sweep()) == 1
    assert shop.refresh(order).status == "expired"
    refused("ORDER_STATE", run, bank, orders.capture(
        merchant_id=shop.id, out_trade_no=order.out_trade_no, capture_no="late", amount=1,
        final=False))  # fmt: skip


def test_every_change_is_an_order_event(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    order = shop.order(500 * YUAN, "escrow")
    buyer.paid(order)
    run(bank, orders.confirm_receipt(customer_id=buyer.id, trade_no=order.trade_no,
                                     channel="online"))  # fmt: skip
    with bank.engine.connect() as conn:
        seen = [e["what"] for e in orders.events_of(conn, order.id)]
        assert conn.execute(order_events.select()).all()
    assert seen == ["created", "held", "released"]


def test_a_suspended_merchant_takes_no_payment(bank: GatewayBank, shop: Shop, buyer: Buyer) -> None:
    from ebank.gateway import merchants

    order = shop.order(20 * YUAN)
    run(bank, merchants.set_status(merchant_id=shop.id, status="suspended", actor=STAFF,
                                   channel="console"))  # fmt: skip
    refused("MERCHANT_SUSPENDED", buyer.pay, order)
    refused("MERCHANT_SUSPENDED", shop.order, 20 * YUAN)


def test_a_buyer_cannot_dispute_once_the_escrow_is_due_to_the_merchant(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(500 * YUAN, "escrow", confirm_days=3)
    buyer.paid(order)
    bank.clock.advance(timedelta(days=3))  # due, though the sweep has not run yet
    refused("ORDER_STATE", run, bank, orders.dispute(
        customer_id=buyer.id, trade_no=order.trade_no, reason="晚了", channel="online",
    ))  # fmt: skip


def test_a_capture_number_asked_again_as_final_is_a_conflict(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    order = shop.order(800 * YUAN, "authorise")
    buyer.paid(order)

    def capture(final: bool):
        return run(bank, orders.capture(
            merchant_id=shop.id, out_trade_no=order.out_trade_no, capture_no="C1",
            amount=100 * YUAN, final=final,
        ))  # fmt: skip

    capture(False)
    refused("IDEMPOTENCY_CONFLICT", capture, True)
    assert shop.refresh(order).status == "authorised"


def test_the_portal_search_reads_times_in_any_offset(bank: GatewayBank, shop: Shop) -> None:
    from datetime import timezone

    order = shop.order(10 * YUAN)
    shanghai = timezone(timedelta(hours=8))
    just_before = (order.created_at - timedelta(seconds=1)).astimezone(shanghai)
    with bank.engine.connect() as conn:
        found = orders.of_merchant(conn, shop.id, since=just_before)
        later = orders.of_merchant(conn, shop.id, since=just_before + timedelta(seconds=2))
    assert [o.trade_no for o in found] == [order.trade_no] and later == []


def test_the_portal_search_filters_by_payment_mode(bank: GatewayBank, shop: Shop) -> None:
    made = {mode: shop.order(10 * YUAN, mode) for mode in ("instant", "escrow", "authorise")}
    with bank.engine.connect() as conn:
        for mode, order in made.items():
            assert [o.trade_no for o in orders.of_merchant(conn, shop.id, mode=mode)] == [
                order.trade_no
            ]
        assert len(orders.of_merchant(conn, shop.id)) == 3
        with pytest.raises(EbankError) as refused:
            orders.of_merchant(conn, shop.id, mode="cash")
    assert refused.value.code == "INVALID_INPUT"


def test_above_the_uncertified_limit_the_buyers_certificate_signs_exactly_this_payment(
    bank: GatewayBank, shop: Shop, buyer: Buyer
) -> None:
    from ebank.security import certificates
    from tests.security.test_certificates import csr_for, new_key, sign_challenge

    key = new_key()
    bank.writer.execute(certificates.issue_certificate(
        VAULT, customer_id=buyer.id, csr_pem=csr_for(key), actor=STAFF))  # fmt: skip
    order, other = shop.order(3_000 * YUAN), shop.order(3_000 * YUAN)

    def signed(paid: OrderView) -> dict[str, object]:
        challenge = run(bank, orders.start_signing(
            token=orders.pay_token(VAULT, paid.trade_no), customer_id=buyer.id,
            card_id=buyer.debit_card, channel="online"))  # fmt: skip
        return {"method": "certificate", "challenge_id": challenge.id,
                "signature": sign_challenge(key, challenge)}  # fmt: skip

    # A signature over one order (its merchant and amount) confirms no other.
    mine = signed(order)
    assert not buyer.pay(other, **mine).verdict.ok
    assert buyer.paid(order, **signed(order)).status == "paid"
    assert buyer.balance() == 100_000 * YUAN - 3_000 * YUAN
