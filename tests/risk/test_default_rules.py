"""Every default rule: a scenario that must trigger it and a near miss that must not.
SQLite and PostgreSQL."""

from datetime import timedelta
from typing import Any

from ebank.accounts.models import CustomerAccount
from ebank.core.writer import Command
from ebank.ops import approvals
from ebank.risk import lists, rules
from ebank.risk.models import Context
from tests.risk.conftest import DEVICE, EXT_PAYEE, OTHER_DEVICE, YUAN, World

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def test_every_default_rule_has_a_trigger_and_a_near_miss_here() -> None:
    names = [
        name.removeprefix("test_").split("__")
        for name in globals()
        if name.startswith("test_") and "__" in name
    ]
    triggered = {code for code, case in names if case.startswith("triggers") or "blocks" in case
                 or "steps_up" in case}  # fmt: skip
    missed = {code for code, case in names if case.startswith("near_miss")}
    assert triggered == missed == set(rules.DEFAULTS)


# -- account takeover: new device, new location ------------------------------------------------
def _known_device_customer(world: World) -> int:
    customer, _ = world.aged()
    world.observe(world.ctx(customer, event="login", amount=0, payee=""), ago=30 * DAY)
    return customer


def test_new_device_transfer__triggers_on_a_transfer_from_a_device_first_used_today(world):
    customer = _known_device_customer(world)
    world.observe(world.ctx(customer, event="login", amount=0, payee="", device=OTHER_DEVICE))
    assert "new_device_transfer" in world.hits(
        world.ctx(customer, device=OTHER_DEVICE, amount=2_000 * YUAN)
    )


def test_new_device_transfer__near_miss_a_device_first_used_three_days_ago(world):
    customer = _known_device_customer(world)
    login = world.ctx(customer, event="login", amount=0, payee="", device=OTHER_DEVICE)
    world.observe(login, ago=3 * DAY)
    assert "new_device_transfer" not in world.hits(
        world.ctx(customer, device=OTHER_DEVICE, amount=2_000 * YUAN)
    )
    assert "new_device_transfer" not in world.hits(world.ctx(customer, amount=2_000 * YUAN))


def test_new_location_transfer__triggers_from_a_network_never_seen(world):
    customer = _known_device_customer(world)
    assert "new_location_transfer" in world.hits(
        world.ctx(customer, ip="172.16.5.9", amount=1_000 * YUAN)
    )


def test_new_location_transfer__near_miss_another_address_in_a_known_network(world):
    customer = _known_device_customer(world)
    assert "new_location_transfer" not in world.hits(
        world.ctx(customer, ip="10.0.0.77", amount=1_000 * YUAN)
    )


# -- SIM swap ----------------------------------------------------------------------------------
def _phone_changed(world: World, ago: timedelta) -> int:
    customer, _ = world.aged()
    change = world.ctx(customer, event="phone_change", amount=0, payee="", channel="counter")
    world.observe(change, ago=ago)
    return customer


def test_sms_after_phone_change__triggers_on_an_sms_confirmed_payment_hours_later(world):
    customer = _phone_changed(world, 10 * HOUR)
    assert "sms_after_phone_change" in world.hits(world.ctx(customer, factor="sms"))


def test_sms_after_phone_change__near_miss_73_hours_later_or_with_the_token(world):
    customer = _phone_changed(world, 73 * HOUR)
    assert "sms_after_phone_change" not in world.hits(world.ctx(customer, factor="sms"))
    recent = _phone_changed(world, 10 * HOUR)
    assert "sms_after_phone_change" not in world.hits(world.ctx(recent, factor="token"))


def test_phone_change_new_device__triggers_on_a_change_from_a_device_new_this_week(world):
    customer = _known_device_customer(world)
    change = world.ctx(customer, event="phone_change", amount=0, payee="", device=OTHER_DEVICE)
    assert "phone_change_new_device" in world.hits(change)


def test_phone_change_new_device__near_miss_at_the_counter_or_from_a_known_device(world):
    customer = _known_device_customer(world)
    change = world.ctx(customer, event="phone_change", amount=0, payee="", device=DEVICE)
    assert "phone_change_new_device" not in world.hits(change)
    at_counter = world.ctx(customer, event="phone_change", amount=0, payee="", channel="counter",
                           device=OTHER_DEVICE)  # fmt: skip
    assert "phone_change_new_device" not in world.hits(at_counter)


def test_limit_raise_new_device__triggers_on_a_device_first_used_today(world):
    customer = _known_device_customer(world)
    change = world.ctx(customer, event="limit_change", amount=0, payee="", device=OTHER_DEVICE)
    assert "limit_raise_new_device" in world.hits(change)


def test_limit_raise_new_device__near_miss_a_device_known_for_a_week(world):
    customer = _known_device_customer(world)
    world.observe(world.ctx(customer, event="login", amount=0, payee="", device=OTHER_DEVICE),
                  ago=7 * DAY)  # fmt: skip
    change = world.ctx(customer, event="limit_change", amount=0, payee="", device=OTHER_DEVICE)
    assert "limit_raise_new_device" not in world.hits(change)


# -- mules and funnels -------------------------------------------------------------------------
def _mule_with_inflows(world: World, inflows: list[int]) -> tuple[int, object]:
    """A new account that received these amounts from different payers this morning."""
    customer = world.person()
    account = world.account(customer, funds=0)
    for n, amount in enumerate(inflows):
        payer = 9_000 + n  # observing needs no customer row: keys are only text
        world.observe(
            world.ctx(payer, amount=amount, payee=f"acct:{account.ledger_account_id}",
                      payee_account_id=account.ledger_account_id, device="", ip=""),
            ago=(n + 1) * HOUR,
        )  # fmt: skip
    return customer, account


def test_mule_rapid_in_out__triggers_when_a_new_account_sends_most_of_what_came_in(world):
    customer, account = _mule_with_inflows(world, [3_000 * YUAN, 3_000 * YUAN, 3_000 * YUAN])
    ctx = world.ctx(customer, account, amount=7_500 * YUAN)
    assert "mule_rapid_in_out" in world.hits(ctx)


def test_mule_rapid_in_out__near_miss_sending_on_less_than_80_percent(world):
    customer, account = _mule_with_inflows(world, [3_000 * YUAN, 3_000 * YUAN, 3_000 * YUAN])
    ctx = world.ctx(customer, account, amount=7_100 * YUAN)
    assert "mule_rapid_in_out" not in world.hits(ctx)


def test_mule_rapid_in_out__triggers_on_a_dormant_account_woken_by_money_coming_in(world):
    customer, account = world.aged(days=400, funds=10 * YUAN)  # last moved 400 days ago
    world.fund(account, 6_000 * YUAN)  # money arrives now...
    world.observe(world.ctx(9_001, amount=6_000 * YUAN, payee=f"acct:{account.ledger_account_id}",
                            payee_account_id=account.ledger_account_id))  # fmt: skip
    ctx = world.ctx(customer, account, amount=5_000 * YUAN)  # ...and leaves
    assert "mule_rapid_in_out" in world.hits(ctx)


def test_mule_rapid_in_out__near_miss_an_old_account_last_used_40_days_ago(world):
    customer, account = world.aged(days=400, funds=10 * YUAN)
    world.clock.advance(-40 * DAY)
    world.fund(account, 10 * YUAN)
    world.clock.advance(40 * DAY)
    world.fund(account, 6_000 * YUAN)
    world.observe(world.ctx(9_001, amount=6_000 * YUAN, payee=f"acct:{account.ledger_account_id}",
                            payee_account_id=account.ledger_account_id))  # fmt: skip
    assert "mule_rapid_in_out" not in world.hits(world.ctx(customer, account, amount=5_000 * YUAN))


def _funnel(world: World, payers: int) -> None:
    for n in range(payers):
        world.observe(world.ctx(8_000 + n, amount=500 * YUAN, device="", ip=""), ago=n * HOUR)


def test_funnel_many_to_one__triggers_once_five_others_paid_a_new_payee_today(world):
    customer, _ = world.aged()
    _funnel(world, 5)
    assert "funnel_many_to_one" in world.hits(world.ctx(customer, payee_is_new=True))


def test_funnel_many_to_one__near_miss_four_payers_or_a_payee_already_known(world):
    customer, _ = world.aged()
    _funnel(world, 4)
    assert "funnel_many_to_one" not in world.hits(world.ctx(customer, payee_is_new=True))
    _funnel(world, 8)
    assert "funnel_many_to_one" not in world.hits(world.ctx(customer))


def _to_account(world: World, customer: int, payee: CustomerAccount, **extra: Any) -> Context:
    ledger_id = payee.ledger_account_id
    return world.ctx(customer, payee=f"acct:{ledger_id}", payee_account_id=ledger_id,
                     payee_is_new=True, **extra)  # fmt: skip


def test_new_account_payee__triggers_on_2000_yuan_to_an_account_opened_this_week(world):
    customer, _ = world.aged()
    _, fresh = world.aged(days=5)
    assert "new_account_payee" in world.hits(_to_account(world, customer, fresh,
                                                         amount=2_000 * YUAN))  # fmt: skip


def test_new_account_payee__near_miss_an_account_30_days_old_or_a_smaller_amount(world):
    customer, _ = world.aged()
    _, month_old = world.aged(days=30)
    _, fresh = world.aged(days=5)
    assert "new_account_payee" not in world.hits(
        _to_account(world, customer, month_old, amount=2_000 * YUAN)
    )
    assert "new_account_payee" not in world.hits(
        _to_account(world, customer, fresh, amount=2_000 * YUAN - 1)
    )


# -- amounts -----------------------------------------------------------------------------------
def test_new_payee_large__triggers_at_50000_yuan_to_a_new_payee(world):
    customer, _ = world.aged()
    assert "new_payee_large" in world.hits(
        world.ctx(customer, amount=50_000 * YUAN, payee_is_new=True)
    )


def test_new_payee_large__near_miss_a_fen_less_or_a_known_payee(world):
    customer, _ = world.aged()
    assert "new_payee_large" not in world.hits(
        world.ctx(customer, amount=50_000 * YUAN - 1, payee_is_new=True)
    )
    assert "new_payee_large" not in world.hits(world.ctx(customer, amount=50_000 * YUAN))


def _usual(world: World, payments: int, amount: int = 300 * YUAN) -> int:
    customer, _ = world.aged()
    for n in range(payments):
        world.observe(world.ctx(customer, amount=amount), ago=(n + 2) * DAY)
    return customer


def test_amount_above_usual__triggers_at_ten_times_the_usual(world):
    customer = _usual(world, 5)
    assert "amount_above_usual" in world.hits(world.ctx(customer, amount=6_000 * YUAN))


def test_amount_above_usual__near_miss_too_little_history_or_under_5000_yuan(world):
    customer = _usual(world, 4)
    assert "amount_above_usual" not in world.hits(world.ctx(customer, amount=6_000 * YUAN))
    known = _usual(world, 5)
    assert "amount_above_usual" not in world.hits(world.ctx(known, amount=5_000 * YUAN - 1))


def test_night_large__triggers_at_two_in_the_morning(world):
    customer, _ = world.aged()
    world.at_shanghai(2)
    assert "night_large" in world.hits(world.ctx(customer, amount=20_000 * YUAN))


def test_night_large__near_miss_at_six_or_smaller(world):
    customer, _ = world.aged()
    world.at_shanghai(6)
    assert "night_large" not in world.hits(world.ctx(customer, amount=20_000 * YUAN))
    world.at_shanghai(2)
    assert "night_large" not in world.hits(world.ctx(customer, amount=19_999 * YUAN))


def test_repeated_similar_amounts__triggers_on_the_fourth_near_equal_amount(world):
    customer, _ = world.aged()
    for n, amount in enumerate((5_000, 4_990, 5_020)):
        world.observe(world.ctx(customer, amount=amount * YUAN), ago=(n + 1) * HOUR)
    assert "repeated_similar_amounts" in world.hits(world.ctx(customer, amount=5_010 * YUAN))


def test_repeated_similar_amounts__near_miss_different_amounts(world):
    customer, _ = world.aged()
    for n, amount in enumerate((5_000, 6_000, 7_000)):
        world.observe(world.ctx(customer, amount=amount * YUAN), ago=(n + 1) * HOUR)
    assert "repeated_similar_amounts" not in world.hits(world.ctx(customer, amount=5_010 * YUAN))


def test_velocity__triggers_on_the_sixth_payment_in_ten_minutes(world):
    customer, _ = world.aged()
    for n in range(5):
        world.observe(world.ctx(customer, amount=(n + 1) * YUAN), ago=n * MINUTE)
    assert "velocity" in world.hits(world.ctx(customer, amount=7 * YUAN))


def test_velocity__near_miss_the_fifth_or_older_ones(world):
    customer, _ = world.aged()
    for n in range(4):
        world.observe(world.ctx(customer, amount=(n + 1) * YUAN), ago=n * MINUTE)
    world.observe(world.ctx(customer, amount=9 * YUAN), ago=11 * MINUTE)
    assert "velocity" not in world.hits(world.ctx(customer, amount=7 * YUAN))


def test_payee_add_burst__triggers_on_the_sixth_payee_in_a_day(world):
    customer, _ = world.aged()
    add = world.ctx(customer, event="payee_add", amount=0)
    for n in range(5):
        world.observe(add, ago=n * HOUR)
    assert "payee_add_burst" in world.hits(add)


def test_payee_add_burst__near_miss_the_fifth(world):
    customer, _ = world.aged()
    add = world.ctx(customer, event="payee_add", amount=0)
    for n in range(4):
        world.observe(add, ago=n * HOUR)
    assert "payee_add_burst" not in world.hits(add)


def _device_shared_by(world: World, others: int) -> int:
    customer, _ = world.aged()
    for n in range(others):
        world.observe(world.ctx(7_000 + n, event="login", amount=0, payee=""), ago=n * HOUR)
    return customer


def test_shared_device__triggers_when_three_other_customers_used_the_device(world):
    customer = _device_shared_by(world, 3)
    assert "shared_device" in world.hits(world.ctx(customer, event="login", amount=0, payee=""))


def test_shared_device__near_miss_two_others(world):
    customer = _device_shared_by(world, 2)
    assert "shared_device" not in world.hits(world.ctx(customer, event="login", amount=0, payee=""))


# -- watch lists -------------------------------------------------------------------------------
def _listed(world: World, list_: str, key: str) -> int:
    return world.writer.execute(
        Command(lambda tx: lists.add(tx, list_=list_, key=key, label="test", reason="公安协查",
                                     maker="staff:1", checker="staff:2"))
    )  # fmt: skip


def test_police_listed__blocks_a_payment_to_a_police_designated_account(world):
    customer, _ = world.aged()
    _listed(world, "police", EXT_PAYEE)
    decision = world.decide(world.ctx(customer))
    assert "police_listed" in {r.code for r in decision.reasons}
    assert decision.outcome == "block"


def test_police_listed__near_miss_an_entry_removed(world):
    customer, _ = world.aged()
    entry = _listed(world, "police", EXT_PAYEE)
    request = world.writer.execute(lists.propose_remove(entry, reason="解除", maker="staff:1"))
    world.writer.execute(approvals.approve(request, checker="staff:2"))
    assert world.decide(world.ctx(customer)).outcome == "allow"


def test_sanctioned_party__blocks_a_listed_customer(world):
    customer, _ = world.aged()
    _listed(world, "sanctioned", f"c:{customer}")
    assert world.decide(world.ctx(customer)).outcome == "block"


def test_sanctioned_party__near_miss_someone_else_listed(world):
    customer, _ = world.aged()
    _listed(world, "sanctioned", f"c:{customer + 1000}")
    _listed(world, "compromised", f"c:{customer}")
    assert "sanctioned_party" not in world.hits(world.ctx(customer))


def test_compromised_credentials__steps_up_a_login_from_a_leaked_device(world):
    customer, _ = world.aged()
    _listed(world, "compromised", f"d:{DEVICE}")
    decision = world.decide(world.ctx(customer, event="login", amount=0, payee=""))
    assert decision.outcome == "step_up"


def test_compromised_credentials__near_miss_another_device(world):
    customer, _ = world.aged()
    _listed(world, "compromised", f"d:{DEVICE}")
    login = world.ctx(customer, event="login", amount=0, payee="", device=OTHER_DEVICE)
    assert "compromised_credentials" not in world.hits(login)


# -- merchants ---------------------------------------------------------------------------------
def _orders(world: World, orders: int, buyers: int, amount: int = 50 * YUAN) -> None:
    for n in range(orders):
        world.observe(world.ctx(6_000 + n % buyers, event="gateway_payment", amount=amount,
                                channel="gateway", merchant_id=5, device="", ip=""),
                      ago=n * MINUTE)  # fmt: skip


def _order(world: World, customer: int, **extra: object) -> object:
    return world.ctx(customer, event="gateway_payment", channel="gateway", merchant_id=5,
                     amount=50 * YUAN, **extra)  # fmt: skip


def test_merchant_fabricated_volume__triggers_on_30_small_orders_from_3_buyers(world):
    customer, _ = world.aged()
    _orders(world, 30, 3)
    assert "merchant_fabricated_volume" in world.hits(_order(world, customer))


def test_merchant_fabricated_volume__near_miss_many_buyers_or_bigger_orders(world):
    customer, _ = world.aged()
    _orders(world, 30, 10)
    assert "merchant_fabricated_volume" not in world.hits(_order(world, customer))


def test_merchant_related_buyer__triggers_on_a_related_buyer(world):
    customer, _ = world.aged()
    assert "merchant_related_buyer" in world.hits(_order(world, customer, buyer_related=True))


def test_merchant_related_buyer__near_miss_an_unrelated_buyer(world):
    customer, _ = world.aged()
    assert "merchant_related_buyer" not in world.hits(_order(world, customer))
