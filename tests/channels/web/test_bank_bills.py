"""Online banking's bills and scheduled transfers, and the transfer fixes they brought: a bill
looked up and paid with the SMS code moves its amount once and gets its receipt; a bad number
is shown beside its field and changes nothing; a forged form pays nothing; a scheduled
transfer is set up, runs and is cancelled, and someone else's is not there; a removed payee no
longer fills in a transfer; the confirmation shows the payee account in full, the lists
masked. SQLite and PostgreSQL."""

import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.bills import service as bills
from ebank.bills.models import Bill
from ebank.bills.tables import bill_payments
from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.standing import orders
from tests.channels.api_support import ONLINE, account_with_money, count, customer, sms_codes
from tests.channels.web.bank_payments_support import balance, pending_of, to_confirmation
from tests.channels.web.support import Pages, bank_login, csrf_of
from tests.support import STAFF, VAULT

HOME = "0591234567"  # a household's number at the power company


def step(pages: Pages, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
    """Send a confirmation page's form (its token and sealed details) to `action`."""
    data = {"csrf": csrf_of(page), "pending": pending_of(page), **fields}
    pages.last = pages.client.post(action, data=data)
    return pages.last


class Alice:
    """Customer 1, logged in to online banking, with ¥50,000.00; Bob is customer 2."""

    def __init__(self, api: TestClient, writer: Writer, engine: Engine, clock: FixedClock) -> None:
        person = customer(writer, 1, enrolled=ONLINE)
        self.id, self.engine, self.clock = person.id, engine, clock
        self.account = account_with_money(writer, person, [50_000_00])
        self.bob = account_with_money(writer, customer(writer, 2), [])
        self.pages: Pages = bank_login(api, engine, person)

    def code(self) -> str:
        return sms_codes(self.engine, self.id)[-1]

    def bill(self) -> Bill:
        with self.engine.connect() as conn:
            [bill] = bills.inquire(conn, self.clock, biller="FZPOWER", number=HOME).bills
        return bill

    def add_bob(self) -> str:
        """Bob in the payee book, through the payees page; his payee id."""
        payee = {"account": self.bob, "name": "客户2", "bank": "", "alias": "Bob"}
        self.pages.submit("/bank/payees", "/bank/payees", **payee, step="code")
        saved = self.pages.submit("/bank/payees", "/bank/payees", **payee, step="add",
                                  code=self.code())  # fmt: skip
        found = re.search(r"/bank/transfer\?payee=([0-9]+)", saved.text)
        assert found is not None, saved.text
        return found.group(1)

    def order_to_bob(self, payee_id: str) -> httpx.Response:
        """A daily ¥100 to Bob from 10:03 today (it is 10:00), confirmed by SMS: its page."""
        typed = {"payee": payee_id, "from_account": self.account, "amount": "100",
                 "frequency": "daily", "start_on": "2026-11-23", "time": "10:03",
                 "weekday": "1", "month_day": "1", "end_on": "", "count": "",
                 "memo": "房租"}  # fmt: skip
        page = self.pages.submit("/bank/scheduled/new", "/bank/scheduled/new", **typed)
        assert page.status_code == 200 and "¥100.00" in page.text, page.text
        assert self.bob in page.text  # the payee in full, to check before confirming
        sent = step(self.pages, page, "/bank/scheduled/code")
        done = step(self.pages, sent, "/bank/scheduled/confirm", method="sms", code=self.code())
        assert re.fullmatch(r"/bank/scheduled/[0-9]+", done.url.path), done.text
        return done


@pytest.fixture
def alice(api: TestClient, writer: Writer, engine: Engine, clock: FixedClock) -> Alice:
    for code, name, category in (("FZPOWER", "国网福州供电公司 (模拟)", "electricity"),
                                 ("CMFJ", "中国移动福建公司 (模拟)", "phone")):  # fmt: skip
        writer.execute(
            bills.register_biller(
                code=code, name_zh=name, name_en=f"{code} (simulated)", category=category,
                actor=STAFF,
            )
        )  # fmt: skip
    return Alice(api, writer, engine, clock)


def test_a_bill_looked_up_is_paid_once_with_the_sms_code_and_its_receipt_downloads(
    alice: Alice, writer: Writer, engine: Engine
) -> None:
    assert "国网福州供电公司" in alice.pages.get("/bank/bills").text
    bill = alice.bill()
    shown = f"¥{bill.amount // 100:,}.{bill.amount % 100:02d}"
    found = alice.pages.submit("/bank/bills", "/bank/bills/inquire", biller="FZPOWER",
                               number=HOME)  # fmt: skip
    assert found.status_code == 200 and shown in found.text and "******4567" in found.text
    page = alice.pages.submit("/bank/bills", "/bank/bills/pay", biller="FZPOWER", number=HOME,
                              bill_id=bill.bill_id, from_account=alice.account)  # fmt: skip
    assert page.status_code == 200 and shown in page.text and HOME in page.text, page.text
    sent = step(alice.pages, page, "/bank/bills/code")
    assert "短信" in sent.text
    done = step(alice.pages, sent, "/bank/bills/confirm", method="sms", code=alice.code())
    again = step(alice.pages, sent, "/bank/bills/confirm", method="sms", code=alice.code())
    assert done.url.path == again.url.path == "/bank/bills" and "待缴费单位确认" in done.text
    assert balance(engine, alice.account) == 50_000_00 - bill.amount
    assert bills.deliver_bill_payments(writer, VAULT) == 1
    history = alice.pages.get("/bank/bills")
    assert "缴费成功" in history.text and "******4567" in history.text
    link = re.search(r'href="(/bank/payments/[0-9]+/receipt\.pdf)"', history.text)
    assert link is not None
    receipt = alice.pages.get(link.group(1))
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF")


def test_a_bad_bill_number_is_shown_beside_its_field_and_changes_nothing(
    alice: Alice, engine: Engine
) -> None:
    for number, status in (("12ab", 400), ("0591230000", 404)):  # not digits; no such number
        for action in ("/bank/bills/inquire", "/bank/bills/pay"):
            answer = alice.pages.submit("/bank/bills", action, biller="FZPOWER", number=number,
                                        bill_id="x", from_account=alice.account)  # fmt: skip
            assert answer.status_code == status, answer.text
            assert 'id="number-error"' in answer.text and 'name="pending"' not in answer.text
    assert sms_codes(engine, alice.id)[1:] == []  # the login's code only
    assert balance(engine, alice.account) == 50_000_00
    assert count(engine, bill_payments) == 0


def test_a_forged_bill_confirmation_is_refused_and_pays_nothing(
    alice: Alice, engine: Engine
) -> None:
    page = alice.pages.submit("/bank/bills", "/bank/bills/pay", biller="FZPOWER", number=HOME,
                              bill_id=alice.bill().bill_id, from_account=alice.account)  # fmt: skip
    sent = step(alice.pages, page, "/bank/bills/code")
    forged = alice.pages.client.post(
        "/bank/bills/confirm",
        data={"csrf": "not-the-token", "pending": pending_of(sent), "method": "sms",
              "code": alice.code()},
    )  # fmt: skip
    assert forged.status_code == 403
    assert balance(engine, alice.account) == 50_000_00 and count(engine, bill_payments) == 0


def test_a_scheduled_transfer_is_set_up_listed_run_and_cancelled(
    alice: Alice, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    order = alice.order_to_bob(alice.add_bob())
    assert "预约转账已设置" in order.text and "每天" in order.text and "生效中" in order.text
    listed = alice.pages.get("/bank/scheduled")
    assert order.url.path in listed.text and "¥100.00" in listed.text
    assert alice.bob not in listed.text and alice.bob[-4:] in listed.text  # masked in a list
    clock.advance(timedelta(minutes=4))
    assert orders.run_due_orders(writer, VAULT) == 1
    ran = alice.pages.get(order.url.path)
    assert "2026-11-23" in ran.text and re.search(r'href="/bank/payments/[0-9]+"', ran.text)
    cancelled = alice.pages.submit(order.url.path, f"{order.url.path}/cancel")
    assert cancelled.url.path == order.url.path and "已撤销" in cancelled.text
    assert "/cancel" not in cancelled.text  # nothing left to cancel
    assert balance(engine, alice.bob) == 100_00


def test_someone_elses_scheduled_transfer_is_not_found(
    api: TestClient, alice: Alice, writer: Writer, engine: Engine
) -> None:
    order = alice.order_to_bob(alice.add_bob()).url.path
    mallory = bank_login(api, engine, customer(writer, 3, enrolled=ONLINE))
    seen = mallory.get(order)
    assert seen.status_code == 404 and "预约转账不存在" in seen.text
    tried = mallory.submit("/bank/scheduled", f"{order}/cancel")
    assert tried.status_code == 404
    with engine.connect() as conn:
        mine = orders.order_of(conn, customer_id=alice.id, order_id=int(order.rsplit("/", 1)[1]))
    assert mine.status == "active"


def test_a_removed_payee_no_longer_fills_in_nor_pays_a_transfer(alice: Alice) -> None:
    payee_id = alice.add_bob()
    alice.pages.submit("/bank/payees", f"/bank/payees/{payee_id}/delete")
    form = alice.pages.get(f"/bank/transfer?payee={payee_id}")
    assert 'name="payee"' not in form.text and 'name="payee_account"' in form.text
    typed = {"from_account": alice.account, "payee": payee_id, "amount": "10"}
    refused = alice.pages.submit(f"/bank/transfer?payee={payee_id}", "/bank/transfer", **typed,
                                 speed="realtime")  # fmt: skip
    assert refused.status_code == 404 and "收款人名册中没有该收款人" in refused.text
    assert 'name="pending"' not in refused.text


def test_a_transfer_confirmation_shows_the_payee_account_in_full_and_the_list_masked(
    alice: Alice, engine: Engine
) -> None:
    typed = {"from_account": alice.account, "payee_account": alice.bob, "payee_name": "客户2",
             "amount": "10"}  # fmt: skip
    page = to_confirmation(alice.pages, **typed)
    assert page.status_code == 200 and alice.bob in page.text
    sent = step(alice.pages, page, "/bank/transfer/code")
    done = step(alice.pages, sent, "/bank/transfer/confirm", method="sms", code=alice.code())
    assert "/bank/payments/" in done.url.path and balance(engine, alice.bob) == 10_00
    listed = alice.pages.get("/bank/payments")
    assert alice.bob not in listed.text and alice.bob[-4:] in listed.text
