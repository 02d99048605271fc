"""The message centre: every notice kept for the customer in the notice's own transaction,
whatever they chose for SMS, written in one statement per batch, read back in the reader's
language without the SMS signature, newest first; marked read one by one or all at once, and
someone else's message answered as none.

Every test runs on SQLite and PostgreSQL."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx, Writer
from ebank.notify import messages, notices
from ebank.notify.tables import customer_messages
from tests.notify.test_notices import AT, PAYEE_ACCOUNT, choose, movement, notify, pay_result
from tests.support import VAULT, in_one_batch, person


def listed(engine: Engine, customer: int, locale: str = "zh-CN", **page: Any) -> list[Any]:
    with engine.connect() as conn:
        return messages.messages_of(conn, customer, locale=locale, **page)


def unread(engine: Engine, customer: int) -> int:
    with engine.connect() as conn:
        return messages.unread(conn, customer)


@pytest.fixture
def inserts(engine: Engine) -> Iterator[list[str]]:
    """The INSERTs into the message centre run on the engine while the test runs."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO customer_messages"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


def test_every_kind_of_notice_is_kept_and_read_in_either_language_without_the_signature(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    due = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    kinds = [
        movement(customer),
        pay_result(customer, EbankError("INSUFFICIENT_FUNDS")),
        lambda tx: notices.scheduled_failed(
            tx, VAULT, customer_id=customer, amount=50_00, payee_name="张三",
            payee_account=PAYEE_ACCOUNT, due_at=due, reason=EbankError("ACCOUNT_FROZEN"),
        ),
        lambda tx: notices.payment_returned(
            tx, VAULT, customer_id=customer, amount=50_00, payee_name="张三",
            payee_account=PAYEE_ACCOUNT, sent_at=AT, reason="AC04",
            account_number="6217001000000000011",
        ),
        lambda tx: notices.payroll_result(
            tx, VAULT, customer_id=customer, reference="P20261122", period="2026-11", paid=3,
            paid_total=30_000_00, failed=1,
        ),
    ]  # fmt: skip
    for kind in kinds:
        notify(writer, kind)
    zh = listed(engine, customer)
    assert [m.title for m in zh] == [
        "代发工资结果通知", "跨行转账退回通知", "预约转账失败通知", "付款结果通知", "账户变动通知",
    ]  # fmt: skip
    assert zh[-1].text == "您尾号0011的账户11月22日14:05转入人民币1,234.50，余额12,345.67。工资"
    assert zh[3].text.endswith("未成功：可用余额不足，请存入资金或减少金额后重试。")
    assert "账户已冻结" in zh[2].text and "账户已销户" in zh[1].text
    en = listed(engine, customer, "en")
    assert en[-1].title == "Account movement"
    assert en[-1].text.startswith("Account ending 0011: income CNY 1,234.50 at 22 Nov 14:05")
    assert "failed: Insufficient available balance" in en[3].text
    assert all("ebank" not in m.text for m in zh + en)
    assert all(m.at == writer.clock.now() and not m.read for m in zh)


def test_movements_are_kept_whatever_the_customer_chose_for_sms(
    writer: Writer, engine: Engine
) -> None:
    quiet, threshold = person(writer, 1), person(writer, 2)
    choose(writer, quiet, movement_sms=False)
    choose(writer, threshold, movement_threshold=1_000_00)
    notify(writer, movement(quiet))
    notify(writer, movement(threshold, 1_00))
    assert len(listed(engine, quiet)) == len(listed(engine, threshold)) == 1


def test_a_failed_payment_or_an_unknown_customer_keeps_no_message(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)

    def payment_that_fails(tx: Tx) -> None:
        movement(customer)(tx)
        raise EbankError("INSUFFICIENT_FUNDS")

    outcomes = in_one_batch(
        writer,
        [Command(payment_that_fails), Command(movement(999_999)), Command(movement(customer))],
    )
    assert isinstance(outcomes[0], EbankError)
    with engine.connect() as conn:
        rows = conn.execute(select(customer_messages.c.customer_id)).scalars().all()
    assert rows == [customer]


def test_the_notices_of_one_payment_are_kept_in_one_statement(
    writer: Writer, engine: Engine, inserts: list[str]
) -> None:
    payer, payee = person(writer, 1), person(writer, 2)

    def transfer(tx: Tx) -> None:  # what a transfer between two customers here tells them
        movement(payer, direction="out")(tx)
        movement(payee)(tx)
        pay_result(payer)(tx)

    notify(writer, transfer)
    assert len(inserts) == 1
    assert [len(listed(engine, c)) for c in (payer, payee)] == [2, 1]


def test_messages_are_paged_newest_first(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    for n in range(5):
        notify(writer, movement(customer, memo=f"第{n}笔"))
    first = listed(engine, customer, limit=3)
    rest = listed(engine, customer, limit=3, before=first[-1].id)
    assert [m.text[-3:] for m in first + rest] == ["第4笔", "第3笔", "第2笔", "第1笔", "第0笔"]


def test_one_message_or_all_are_marked_read_and_anothers_is_not_found(
    writer: Writer, engine: Engine
) -> None:
    customer, other = person(writer, 1), person(writer, 2)
    for _ in range(3):
        notify(writer, movement(customer))
    notify(writer, movement(other))
    [theirs] = listed(engine, other)
    newest = listed(engine, customer)[0]
    assert unread(engine, customer) == 3
    assert writer.execute(messages.mark_read(customer_id=customer, message_id=newest.id)) == 1
    assert writer.execute(messages.mark_read(customer_id=customer, message_id=newest.id)) == 0
    assert [m.read for m in listed(engine, customer)] == [True, False, False]
    for wrong in (theirs.id, theirs.id + 1000, "1"):
        with pytest.raises(EbankError) as caught:
            writer.execute(messages.mark_read(customer_id=customer, message_id=wrong))
        assert caught.value.code == "MESSAGE_NOT_FOUND"
    assert writer.execute(messages.mark_read(customer_id=customer)) == 2
    assert unread(engine, customer) == 0
    assert unread(engine, other) == 1 and not listed(engine, other)[0].read


def test_the_unread_count_stops_at_its_cap(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    cap = messages.UNREAD_COUNTED
    in_one_batch(writer, [Command(movement(customer)) for _ in range(cap + 5)])
    assert unread(engine, customer) == cap
