"""Online banking's records: the e-receipts page lists the customer's own receipts (number,
verification code, the PDF's link), filtered by date, never another's; the message centre lists
what the bank told them in the page's language and marks messages read, never another's; and
a forged form changes nothing. SQLite and PostgreSQL."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.core.errors import EbankError
from ebank.core.writer import Command, Writer
from ebank.notify import messages
from tests.channels.api_support import ONLINE, Person, customer
from tests.channels.web.support import Pages, bank_login
from tests.notify.test_notices import movement, pay_result
from tests.receipts.test_api_receipts import issued


def tell(writer: Writer, person: Person, times: int = 1) -> None:
    """The bank tells the person of a movement, `times` times, and of a failed payment."""
    for _ in range(times):
        writer.execute(Command(movement(person.id)))
    writer.execute(Command(pay_result(person.id, EbankError("INSUFFICIENT_FUNDS"))))


def unread(engine: Engine, person: Person) -> int:
    with engine.connect() as conn:
        return messages.unread(conn, person.id)


def first_message(engine: Engine, person: Person) -> int:
    with engine.connect() as conn:
        return messages.messages_of(conn, person.id, locale="en")[0].id


def test_the_receipts_page_lists_my_receipts_with_code_and_pdf_and_never_anothers(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    me, other = customer(writer, 1, enrolled=ONLINE), customer(writer, 2, enrolled=ONLINE)
    mine, theirs = issued(writer, me.id, 1), issued(writer, other.id, 2, amount=99_999_00)
    pages = bank_login(api, engine, me)
    page = pages.get("/bank/receipts")
    assert page.status_code == 200
    assert mine.number in page.text and mine.code in page.text and "¥1,234.50" in page.text
    assert 'href="/bank/payments/1/receipt.pdf"' in page.text
    assert theirs.number not in page.text and theirs.code not in page.text
    assert "99,999" not in page.text
    same_day = pages.get("/bank/receipts?from=2026-11-23&to=2026-11-23")
    assert mine.number in same_day.text
    later = pages.get("/bank/receipts?from=2026-11-24")
    assert mine.number not in later.text and "没有符合条件的电子回单" in later.text
    backwards = pages.get("/bank/receipts?from=2026-11-23&to=2026-11-22")
    assert backwards.status_code == 400 and 'id="to-error"' in backwards.text
    assert 'value="2026-11-22"' in backwards.text and mine.number not in backwards.text
    for day in ("2026-13-01", "0001-01-01"):
        assert 'id="from-error"' in pages.get(f"/bank/receipts?from={day}").text


def test_the_message_centre_shows_notices_in_the_pages_language_and_marks_them_read(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    me, other = customer(writer, 1, enrolled=ONLINE), customer(writer, 2, enrolled=ONLINE)
    tell(writer, me, times=2)
    tell(writer, other)
    pages = bank_login(api, engine, me)
    page = pages.get("/bank/messages")
    assert page.status_code == 200 and "未读消息：3 条" in page.text
    assert "账户变动通知" in page.text and "余额12,345.67。工资" in page.text
    assert "可用余额不足" in page.text and "【ebank】" not in page.text
    assert 'href="/bank/notifications"' in page.text
    newest = first_message(engine, me)
    one = pages.submit("/bank/messages", f"/bank/messages/{newest}/read")
    assert one.url.path == "/bank/messages" and "未读消息：2 条" in one.text
    theirs = first_message(engine, other)
    refused = pages.submit("/bank/messages", f"/bank/messages/{theirs}/read")
    assert refused.status_code == 404 and "消息不存在" in refused.text
    assert unread(engine, other) == 2
    everything = pages.submit("/bank/messages", "/bank/messages/read")
    assert "没有未读消息" in everything.text and unread(engine, me) == 0
    pages.get("/lang/en?next=/bank/messages")
    english = pages.get("/bank/messages")
    assert "Account movement" in english.text and "income CNY 1,234.50" in english.text


def test_a_forged_form_is_refused_and_marks_nothing_read(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    me = customer(writer, 1, enrolled=ONLINE)
    tell(writer, me)
    bank_login(api, engine, me)
    newest = first_message(engine, me)
    for action in ("/bank/messages/read", f"/bank/messages/{newest}/read"):
        assert api.post(action, data={"csrf": "forged"}).status_code == 403
        assert api.post(action).status_code == 403
    assert unread(engine, me) == 2
    assert Pages(api).get("/bank/messages").status_code == 200  # still logged in
