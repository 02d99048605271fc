"""Notices about money: account movements by SMS (off, or from a threshold, as the customer
chooses), payment results, failed scheduled transfers and returned inter-bank transfers by SMS
in the customer's language and by e-mail in both where they gave an address; all appended in
the payment's own transaction, reading preferences at most once per customer and batch.

Every test runs on SQLite and PostgreSQL.
"""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from ebank.core.errors import EbankError
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command, Tx, Writer
from ebank.notify import notices
from ebank.notify.notices import (
    Preferences,
    account_movement,
    payment_result,
    payment_returned,
    preferences_of,
    scheduled_failed,
    set_preferences,
)
from ebank.notify.tables import notice_preferences
from tests.support import VAULT, code_of, in_one_batch, person

AT = datetime(2026, 11, 22, 6, 5, tzinfo=UTC)  # 14:05 in Shanghai
ACCOUNT = "6217001000000000011"
PAYEE_ACCOUNT = "6217999900000000001"
EMAIL = "zhang.san@example.com"


def movement(customer: int, amount: int = 1_234_50, **changes: Any) -> Callable[[Tx], None]:
    params: dict[str, Any] = {
        "customer_id": customer, "account_number": ACCOUNT, "amount": amount,
        "direction": "in", "balance": 12_345_67, "memo": "工资", "at": AT,
    } | changes  # fmt: skip
    return lambda tx: account_movement(tx, VAULT, **params)


def notify(writer: Writer, fn: Callable[[Tx], None]) -> None:
    writer.execute(Command(fn))


def choose(writer: Writer, customer: int, **changes: Any) -> Preferences:
    params: dict[str, Any] = {
        "movement_sms": True, "movement_threshold": 0, "locale": "zh-CN", "email": None,
    } | changes  # fmt: skip
    return writer.execute(
        set_preferences(VAULT, customer_id=customer, actor=f"customer:{customer}",
                        channel="mobile", **params)
    )  # fmt: skip


def sent(engine: Engine, channel: str = "sms") -> list[dict[str, Any]]:
    """Every message asked for on `channel`, opened."""
    fields = ("body",) if channel == "sms" else ("to", "subject", "body")
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox_events.c.payload)
            .where(outbox_events.c.topic == f"{channel}.send")
            .order_by(outbox_events.c.id)
        ).scalars()
        out = []
        for text in rows:
            payload = json.loads(text)
            opened = {f: VAULT.decrypt(payload[f], purpose=f"{channel}.{f}") for f in fields}
            out.append({"customer": payload["customer"], "kind": payload["kind"], **opened})
        return out


def bodies(engine: Engine) -> list[str]:
    return [m["body"] for m in sent(engine)]


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on the engine while the test runs."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


# -- account movements -------------------------------------------------------------------------
def test_a_movement_texts_the_customer_in_chinese_by_default(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    notify(writer, movement(customer))
    [message] = sent(engine)
    assert message["customer"] == customer and message["kind"] == "movement"
    assert message["body"] == (
        "您尾号0011的账户11月22日14:05转入人民币1,234.50，余额12,345.67。工资【ebank】"
    )


def test_a_payment_out_says_so_and_shows_the_balance_after_it(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    notify(writer, movement(customer, 50_000_00, direction="out", balance=-3_00, memo=""))
    assert bodies(engine) == [
        "您尾号0011的账户11月22日14:05转出人民币50,000.00，余额-3.00。【ebank】"
    ]


def test_a_customer_who_switched_movement_sms_off_gets_none(writer: Writer, engine: Engine) -> None:
    customer, other = person(writer, 1), person(writer, 2)
    choose(writer, customer, movement_sms=False)
    notify(writer, movement(customer))
    notify(writer, movement(other))
    assert [m["customer"] for m in sent(engine)] == [other]


def test_movements_below_the_threshold_are_not_texted(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    choose(writer, customer, movement_threshold=100_00)
    notify(writer, movement(customer, 99_99))
    notify(writer, movement(customer, 100_00))
    notify(writer, movement(customer, 100_01))
    assert [b.split("人民币")[1].split("，")[0] for b in bodies(engine)] == ["100.00", "100.01"]


def test_a_customer_who_chose_english_gets_english(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    choose(writer, customer, locale="en")
    notify(writer, movement(customer, direction="out", memo="rent"))
    assert bodies(engine) == [
        "[ebank] Account ending 0011: expense CNY 1,234.50 at 22 Nov 14:05, "
        "balance CNY 12,345.67. rent"
    ]


def test_an_unknown_customer_gets_nothing_and_the_payment_goes_on(
    writer: Writer, engine: Engine
) -> None:
    notify(writer, movement(999_999))
    assert sent(engine) == []


def test_a_long_memo_is_cut_to_keep_one_sms(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    notify(
        writer,
        movement(customer, memo="这是一段非常非常长的转账附言，超出了一条短信所能容纳的长度"),
    )
    [body] = bodies(engine)
    assert len(body) == 70 and body.endswith("…【ebank】")


def test_a_memo_cannot_smuggle_a_signature_or_lines_into_the_banks_sms(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    notify(writer, movement(customer, memo="退款\n【某银行】请点击链接"))
    [body] = bodies(engine)
    assert "\n" not in body and "【某银行】" not in body
    assert body.endswith("退款 某银行请点击链接【ebank】")
    assert body.count("【") == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"direction": "sideways"},
        {"amount": 0},
        {"amount": -1},
        {"amount": 1.5},
        {"balance": "12.00"},
        {"at": datetime(2026, 11, 22, 14, 5)},  # naive
        {"account_number": "11"},
        {"customer_id": "1"},
    ],
)
def test_a_movement_with_bad_input_is_a_programming_error_and_sends_nothing(
    writer: Writer, engine: Engine, changes: dict[str, Any]
) -> None:
    customer = person(writer, 1)
    with pytest.raises(ValueError):
        notify(writer, movement(customer, **changes))
    assert sent(engine) == []


def test_a_notice_exists_only_if_the_payment_committed(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)

    def payment_that_fails(tx: Tx) -> None:
        movement(customer)(tx)
        raise EbankError("INSUFFICIENT_FUNDS")

    with pytest.raises(EbankError):
        notify(writer, payment_that_fails)
    assert sent(engine) == []


# -- reading preferences cheaply ---------------------------------------------------------------
def test_a_batch_reads_each_customers_preferences_once(
    writer: Writer, engine: Engine, statements: list[str]
) -> None:
    customers = [person(writer, n) for n in range(1, 4)]
    choose(writer, customers[0], movement_threshold=10_00)
    statements.clear()
    in_one_batch(writer, [Command(movement(customers[n % 3], 100_00)) for n in range(300)])
    reads = [s for s in statements if "notice_preferences" in s]
    assert len(reads) == 3
    assert len(sent(engine)) == 300


def test_prefetch_hints_read_a_whole_batchs_preferences_in_one_query(
    writer: Writer, engine: Engine, statements: list[str]
) -> None:
    customers = [person(writer, n) for n in range(1, 6)]
    statements.clear()
    commands = [
        Command(movement(customers[n % 5]), prefetch=[notices.prefetch(customers[n % 5])])
        for n in range(200)
    ]
    in_one_batch(writer, commands)
    assert len([s for s in statements if "notice_preferences" in s]) == 1
    assert len(sent(engine)) == 200


def test_a_change_of_preferences_applies_to_notices_later_in_the_same_batch(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    in_one_batch(
        writer,
        [
            Command(movement(customer, memo="之前")),
            set_preferences(VAULT, customer_id=customer, movement_sms=False, movement_threshold=0,
                            locale="zh-CN", email=None, actor="customer", channel="mobile"),
            Command(movement(customer, memo="之后")),
        ],
    )  # fmt: skip
    assert [b.endswith("之前【ebank】") for b in bodies(engine)] == [True]


def test_a_change_of_preferences_that_failed_does_not_apply_in_the_batch(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    switch_off = set_preferences(
        VAULT, customer_id=customer, movement_sms=False, movement_threshold=0, locale="zh-CN",
        email=None, actor="customer", channel="mobile",
    )  # fmt: skip

    def change_then_fail(tx: Tx) -> None:
        switch_off.fn(tx)
        raise EbankError("INVALID_INPUT", reason="something later in the command failed")

    outcomes = in_one_batch(
        writer,
        [Command(movement(customer)), Command(change_then_fail), Command(movement(customer))],
    )
    assert [code_of(o) for o in outcomes] == ["ok", "INVALID_INPUT", "ok"]
    assert len(bodies(engine)) == 2
    with engine.connect() as conn:
        assert preferences_of(conn, customer) == Preferences()


# -- preferences -------------------------------------------------------------------------------
def test_preferences_default_to_every_movement_in_chinese_without_email(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    with engine.connect() as conn:
        assert preferences_of(conn, customer) == Preferences(True, 0, "zh-CN", None)


def test_set_preferences_replaces_them_and_shows_the_address_masked(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    first = choose(writer, customer, movement_threshold=500_00, email=EMAIL)
    assert first == Preferences(True, 500_00, "zh-CN", "z***@example.com")
    second = choose(writer, customer, movement_sms=False, locale="en")
    assert second == Preferences(False, 0, "en", None)
    with engine.connect() as conn:
        assert preferences_of(conn, customer) == second
        assert len(conn.execute(select(notice_preferences)).all()) == 1


def test_a_customers_preferences_are_their_own(writer: Writer, engine: Engine) -> None:
    mine, theirs = person(writer, 1), person(writer, 2)
    choose(writer, mine, movement_sms=False, email=EMAIL)
    with engine.connect() as conn:
        assert preferences_of(conn, theirs) == Preferences()


def test_a_change_of_preferences_is_audited_without_the_address_in_clear(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    choose(writer, customer, movement_threshold=100_00, email=EMAIL)
    with engine.connect() as conn:
        [record] = conn.execute(
            select(audit_log).where(audit_log.c.action == "notice.preferences")
        ).mappings()
        stored = [dict(r) for r in conn.execute(select(notice_preferences)).mappings()]
    assert (record["actor"], record["subject"], record["channel"]) == (
        f"customer:{customer}", f"customer:{customer}", "mobile",
    )  # fmt: skip
    assert json.loads(record["detail"]) == {
        "movement_sms": True, "movement_threshold": "100.00", "locale": "zh-CN",
        "email": "z***@example.com",
    }  # fmt: skip
    assert EMAIL not in record["detail"]
    assert all(EMAIL not in str(v) for row in stored for v in row.values())


@pytest.mark.parametrize(
    "changes",
    [
        {"movement_sms": "no"},
        {"movement_threshold": -1},
        {"movement_threshold": True},
        {"movement_threshold": 10**15},
        {"locale": "fr"},
        {"email": "not an address"},
        {"email": "a@b"},
        {"email": "zhang@example.com\r\nBcc: everyone@example.com"},
        {"email": "张三@example.com"},
    ],
)
def test_set_preferences_refuses_bad_input_and_changes_nothing(
    writer: Writer, engine: Engine, changes: dict[str, Any]
) -> None:
    customer = person(writer, 1)
    with pytest.raises(EbankError) as caught:
        choose(writer, customer, **changes)
    assert caught.value.code == "INVALID_INPUT"
    with engine.connect() as conn:
        assert conn.execute(select(notice_preferences)).all() == []


def test_set_preferences_for_an_unknown_customer_is_not_found(writer: Writer) -> None:
    with pytest.raises(EbankError) as caught:
        choose(writer, 999_999)
    assert caught.value.code == "CUSTOMER_NOT_FOUND"


# -- payment outcomes --------------------------------------------------------------------------
def pay_result(customer: int, failure: EbankError | None = None) -> Callable[[Tx], None]:
    return lambda tx: payment_result(
        tx, VAULT, customer_id=customer, amount=1_234_50, payee_name="张三",
        payee_account=PAYEE_ACCOUNT, failure=failure,
    )  # fmt: skip


def test_a_payment_result_says_it_succeeded(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    notify(writer, pay_result(customer))
    [message] = sent(engine)
    assert message["kind"] == "payment"
    assert message["body"] == "您向*三(尾号0001)的付款¥1,234.50已成功。【ebank】"


def test_a_failed_payment_says_why_in_the_customers_language(
    writer: Writer, engine: Engine
) -> None:
    customer, english = person(writer, 1), person(writer, 2)
    choose(writer, english, locale="en")
    notify(writer, pay_result(customer, EbankError("INSUFFICIENT_FUNDS")))
    notify(writer, pay_result(english, EbankError("INSUFFICIENT_FUNDS")))
    zh, en = bodies(engine)
    assert zh == (
        "您向*三(尾号0001)的付款¥1,234.50未成功：可用余额不足，请存入资金或减少金额后重试。【ebank】"
    )
    assert len(zh) <= 70
    assert en == (
        "[ebank] Your payment of CNY 1,234.50 to *三 (a/c ending 0001) failed: Insufficient "
        "available balance: add funds or lower the amount and try again."
    )


def test_a_company_payee_is_cut_to_its_ends(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    notify(
        writer,
        lambda tx: payment_result(
            tx, VAULT, customer_id=customer, amount=100, payee_name="北京某某科技有限公司",
            payee_account=PAYEE_ACCOUNT,
        ),
    )  # fmt: skip
    assert bodies(engine) == ["您向北**司(尾号0001)的付款¥1.00已成功。【ebank】"]


def test_a_payment_result_is_emailed_in_both_languages_where_the_customer_gave_an_address(
    writer: Writer, engine: Engine
) -> None:
    customer, without = person(writer, 1), person(writer, 2)
    choose(writer, customer, email=EMAIL, locale="en")
    notify(writer, pay_result(customer, EbankError("ACCOUNT_FROZEN")))
    notify(writer, pay_result(without))
    [mail] = sent(engine, "email")
    assert mail["customer"] == customer and mail["kind"] == "payment"
    assert mail["to"] == EMAIL
    assert mail["subject"] == "【ebank】付款结果通知 / Payment result"
    english, chinese, footer = mail["body"].split("\n\n")
    assert english.startswith("[ebank] Your payment of CNY 1,234.50") and "frozen" in english
    assert chinese.startswith("您向*三(尾号0001)的付款¥1,234.50未成功：账户已冻结")
    assert footer.startswith("-- \n") and "请勿直接回复" in footer and "do not reply" in footer
    assert len(sent(engine)) == 2, "the SMS goes too"


def test_a_scheduled_transfer_that_failed_says_when_to_whom_and_why(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    due = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # 01:00 on 23 November in Shanghai
    notify(
        writer,
        lambda tx: scheduled_failed(
            tx, VAULT, customer_id=customer, amount=1_000_00, payee_name="李四",
            payee_account=PAYEE_ACCOUNT, due_at=due, reason=EbankError("ACCOUNT_DORMANT"),
        ),
    )  # fmt: skip
    [message] = sent(engine)
    assert message["kind"] == "scheduled"
    assert message["body"] == (
        "您预约11月23日向*四(尾号0001)转账¥1,000.00失败：账户为久悬户，请到柜台激活后再办理。"
        "请重新办理。【ebank】"
    )


def test_a_returned_transfer_says_why_and_where_the_money_went(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    choose(writer, customer, email=EMAIL)
    notify(
        writer,
        lambda tx: payment_returned(
            tx, VAULT, customer_id=customer, amount=2_000_00, payee_name="王五",
            payee_account=PAYEE_ACCOUNT, sent_at=AT, reason="AC04", account_number=ACCOUNT,
        ),
    )  # fmt: skip
    [message] = sent(engine)
    assert message["kind"] == "returned"
    assert message["body"] == (
        "您11月22日向*五(尾号0001)的跨行转账¥2,000.00被收款行退回（账户已销户），"
        "已退回您尾号0011的账户。【ebank】"
    )
    [mail] = sent(engine, "email")
    assert "returned (account closed) and refunded to your account ending 0011" in mail["body"]
    assert mail["subject"] == "【ebank】跨行转账退回通知 / Inter-bank transfer returned"


def test_payment_outcomes_are_sent_whatever_the_movement_preferences(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    choose(writer, customer, movement_sms=False, movement_threshold=10**10)
    notify(writer, pay_result(customer))
    assert len(sent(engine)) == 1


def test_no_address_body_or_number_is_in_the_outbox_in_clear(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    choose(writer, customer, email=EMAIL)
    notify(writer, pay_result(customer))
    notify(writer, movement(customer))
    with engine.connect() as conn:
        payloads = conn.execute(select(outbox_events.c.payload)).scalars().all()
    assert len(payloads) == 3
    for text in payloads:
        assert EMAIL not in text and "1,234.50" not in text and "付款" not in text
