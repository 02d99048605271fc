"""Online banking's money pages: a transfer confirmed with the SMS code moves exactly its
amount, once, and its e-receipt downloads; a wrong code, a bad amount or a forged form moves
nothing; someone else's statement is not there; the statement filters and downloads as CSV
(safe cells) and PDF. SQLite and PostgreSQL."""

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.accounts.service import get_account
from ebank.core.writer import Writer
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from tests.channels.api_support import ONLINE, account_with_money, customer, sms_codes
from tests.channels.web.bank_payments_support import (
    ask_code,
    balance,
    confirm,
    pending_of,
    to_confirmation,
)
from tests.channels.web.support import Pages, bank_login


class Alice:
    """Customer 1, logged in to online banking, with ¥50,000.00; Bob is customer 2."""

    def __init__(self, api: TestClient, writer: Writer, engine: Engine) -> None:
        person = customer(writer, 1, enrolled=ONLINE)
        self.id = person.id
        self.account = account_with_money(writer, person, [50_000_00])
        self.bob = account_with_money(writer, customer(writer, 2), [])
        self.pages: Pages = bank_login(api, engine, person)
        self.engine = engine

    def to_bob(self, amount: str = "1234.50") -> dict[str, str]:
        return {"from_account": self.account, "payee_account": self.bob, "payee_name": "客户2",
                "amount": amount}  # fmt: skip

    def code(self) -> str:
        return sms_codes(self.engine, self.id)[-1]


@pytest.fixture
def alice(api: TestClient, writer: Writer, engine: Engine) -> Alice:
    return Alice(api, writer, engine)


def test_a_transfer_confirmed_by_sms_moves_exactly_its_amount_and_its_receipt_downloads(
    alice: Alice, engine: Engine
) -> None:
    page = to_confirmation(alice.pages, **alice.to_bob())
    assert page.status_code == 200, page.text
    assert "¥1,234.50" in page.text and "客户2" in page.text
    assert alice.bob in page.text  # the payee in full, for the customer to check
    page = ask_code(alice.pages, page)
    assert "短信" in page.text and sms_codes(engine, alice.id)
    done = confirm(alice.pages, page, method="sms", code=alice.code())
    assert done.status_code == 200 and "/bank/payments/" in str(done.url), done.text
    assert "已完成" in done.text
    home = alice.pages.get("/bank/")
    assert "¥48,765.50" in home.text
    assert (balance(engine, alice.account), balance(engine, alice.bob)) == (48_765_50, 1_234_50)
    receipt = alice.pages.get(f"{done.url.path}/receipt.pdf")
    assert receipt.status_code == 200
    assert receipt.headers["content-type"] == "application/pdf"
    assert receipt.content.startswith(b"%PDF")
    listed = alice.pages.get("/bank/payments")
    assert done.url.path in listed.text and "¥1,234.50" in listed.text


def test_a_wrong_sms_code_is_shown_beside_the_code_field_and_moves_nothing(
    alice: Alice, engine: Engine
) -> None:
    page = ask_code(alice.pages, to_confirmation(alice.pages, **alice.to_bob()))
    wrong = "000000" if alice.code() != "000000" else "111111"
    answer = confirm(alice.pages, page, method="sms", code=wrong)
    assert answer.status_code == 401
    assert 'id="code-error"' in answer.text and pending_of(answer)
    assert f'value="{wrong}"' not in answer.text  # the code is not echoed
    assert balance(engine, alice.account) == 50_000_00 and balance(engine, alice.bob) == 0


def test_a_replayed_confirmation_pays_once(alice: Alice, engine: Engine) -> None:
    page = ask_code(alice.pages, to_confirmation(alice.pages, **alice.to_bob("100")))
    code = alice.code()
    first = confirm(alice.pages, page, method="sms", code=code)
    again = confirm(alice.pages, page, method="sms", code=code)
    assert first.url == again.url and "/bank/payments/" in str(first.url)
    assert balance(engine, alice.account) == 49_900_00 and balance(engine, alice.bob) == 100_00


@pytest.mark.parametrize("typed", ["12.345", "-1", "abc", "1e5"])
def test_a_bad_amount_is_shown_beside_the_amount_field(
    alice: Alice, engine: Engine, typed: str
) -> None:
    answer = to_confirmation(alice.pages, **alice.to_bob(typed))
    assert answer.status_code == 400
    assert 'id="amount-error"' in answer.text and 'name="pending"' not in answer.text
    assert sms_codes(engine, alice.id)[1:] == []  # the login's code only
    assert balance(engine, alice.account) == 50_000_00


def test_a_forged_confirmation_is_refused_and_moves_nothing(alice: Alice, engine: Engine) -> None:
    page = ask_code(alice.pages, to_confirmation(alice.pages, **alice.to_bob()))
    forged = alice.pages.client.post(
        "/bank/transfer/confirm",
        data={"csrf": "not-the-token", "pending": pending_of(page), "method": "sms",
              "code": alice.code()},
    )  # fmt: skip
    assert forged.status_code == 403
    assert balance(engine, alice.account) == 50_000_00


def test_someone_elses_statement_is_not_found(alice: Alice) -> None:
    for path in ("", ".csv", ".pdf"):
        answer = alice.pages.get(f"/bank/accounts/{alice.bob}/statement{path}")
        assert answer.status_code == 404 and "账户不存在" in answer.text


def test_the_statement_filters_and_downloads_as_csv_with_safe_cells_and_as_pdf(
    alice: Alice, writer: Writer, engine: Engine
) -> None:
    chart = writer.execute(ledger.command(ensure_chart))
    with engine.connect() as conn:
        ledger_id = get_account(conn, number=alice.account).ledger_account_id
    writer.execute(
        ledger.transfer_command(
            debit=ledger_id, credit=chart["GL-CASH-CNY"], amount=12_00, memo="=HYPERLINK(1)",
            scope="test", key="hostile-memo",
        )
    )  # fmt: skip
    path = f"/bank/accounts/{alice.account}/statement"
    page = alice.pages.get(path)
    assert page.status_code == 200 and "¥49,988.00" in page.text and "deposit 0" in page.text
    out = alice.pages.get(f"{path}?direction=out")
    assert "=HYPERLINK(1)" in out.text and "deposit 0" not in out.text
    bad = alice.pages.get(f"{path}?min=1e5")
    assert bad.status_code == 400 and 'id="min-error"' in bad.text
    sheet = alice.pages.get(f"{path}.csv?direction=out")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["时间", "流水号", "摘要"] and len(rows) == 2
    assert rows[1][2] == "'=HYPERLINK(1)" and rows[1][4] == "12.00"
    alice.pages.get("/lang/en?next=/bank/")
    english = alice.pages.get(f"{path}.csv").content.decode("utf-8-sig")
    assert english.startswith("Time,Reference,Memo,Money in,Money out,Balance,Currency")
    printed = alice.pages.get(f"{path}.pdf")
    assert printed.headers["content-type"] == "application/pdf"
    assert printed.content.startswith(b"%PDF")


def test_a_payee_saved_with_its_code_prefills_a_transfer_masked_and_can_be_removed(
    alice: Alice, engine: Engine
) -> None:
    payee = {"account": alice.bob, "name": "客户2", "bank": "", "alias": "Bob"}
    alice.pages.submit("/bank/payees", "/bank/payees", **payee, step="code")
    saved = alice.pages.submit("/bank/payees", "/bank/payees", **payee, step="add",
                               code=alice.code())  # fmt: skip
    assert saved.url.path == "/bank/payees" and "收款人已保存" in saved.text
    assert alice.bob not in saved.text and alice.bob[-4:] in saved.text
    link = re.search(r'href="(/bank/transfer\?payee=[0-9]+)"', saved.text)
    assert link is not None
    form = alice.pages.get(link.group(1))
    assert alice.bob not in form.text and 'name="payee"' in form.text
    token = re.search(r'name="payee" value="([0-9]+)"', form.text)
    assert token is not None
    typed = {"from_account": alice.account, "payee": token.group(1), "amount": "10"}
    page = alice.pages.submit(link.group(1), "/bank/transfer", **typed, speed="realtime")
    assert "¥10.00" in page.text and pending_of(page) and alice.bob in page.text
    removed = alice.pages.submit("/bank/payees", f"/bank/payees/{token.group(1)}/delete")
    assert "收款人已删除" in removed.text and alice.bob[-4:] not in removed.text


def test_a_deferred_transfer_is_revoked_and_its_money_is_available_again(
    alice: Alice, engine: Engine
) -> None:
    page = to_confirmation(alice.pages, **alice.to_bob("100"), speed="normal")
    done = confirm(alice.pages, ask_code(alice.pages, page), method="sms", code=alice.code())
    assert "已预约" in done.text and "¥49,900.00" in alice.pages.get("/bank/").text
    revoked = alice.pages.submit(done.url.path, f"{done.url.path}/revoke")
    assert "已撤销" in revoked.text
    with engine.connect() as conn:
        assert get_account(conn, number=alice.account).available == 50_000_00
    assert balance(engine, alice.bob) == 0
