"""Receipts: one per completed payment, issued inside the payment's command, stored as issued with
the account numbers sealed; fetched by their payer only; verified by anybody holding the code,
which no longer verifies once the stored content is altered; printed as a deterministic PDF.

Every database test runs on SQLite and PostgreSQL."""

import base64
import dataclasses
import re
import zlib
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ebank.core.clock import FixedClock
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR
from ebank.core.writer import Command, Writer
from ebank.receipts import service as receipts
from ebank.receipts.models import Receipt, ReceiptData, mask_party
from ebank.receipts.pdf import render_pdf
from ebank.receipts.tables import receipts as receipts_table
from tests.support import VAULT, code_of, in_one_batch, person, race_two_writers

PAYER_ACCOUNT = "6217001000000000016"
PAYEE_ACCOUNT = "6222020200112233445"
COMPLETED = datetime(2026, 11, 23, 1, 59, 30, 123456, tzinfo=UTC)
OTHER_VAULT = Vault(bytes(range(100, 132)))


def data(payer: int, n: int = 1, **changes: Any) -> ReceiptData:
    base = ReceiptData(
        source=f"payment:{n}", customer_id=payer, payer_name="张小三",
        payer_account=PAYER_ACCOUNT, payee_name="李四", payee_account=PAYEE_ACCOUNT,
        payee_bank="中国工商银行上海分行", amount=123_450, purpose="房租 11月", channel="mobile",
        reference="E202611230000001234", completed_at=COMPLETED,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def issue(d: ReceiptData, vault: Vault = VAULT) -> Command[Receipt]:
    return Command(lambda tx: receipts.issue_receipt(tx, vault, d))


def row_of(engine: Engine, receipt_id: int) -> Any:
    with engine.connect() as conn:
        query = select(receipts_table).where(receipts_table.c.id == receipt_id)
        return conn.execute(query).mappings().one()


def alter(engine: Engine, receipt_id: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            receipts_table.update().where(receipts_table.c.id == receipt_id).values(**values)
        )


def verify(engine: Engine, code: str, vault: Vault = VAULT) -> Any:
    with engine.connect() as conn:
        return receipts.verify(conn, vault, code)


def fetch(engine: Engine, source: str, customer_id: int) -> Receipt:
    with engine.connect() as conn:
        return receipts.receipt_for(conn, VAULT, source, customer_id)


def numbered(engine: Engine, number: str, customer_id: int) -> Receipt:
    with engine.connect() as conn:
        return receipts.receipt_numbered(conn, VAULT, number, customer_id)


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(receipts_table)).scalar_one())


# -- issuing --------------------------------------------------------------------------------
def test_a_receipt_is_stored_as_issued_with_accounts_sealed_and_no_code(
    writer: Writer, engine: Engine
) -> None:
    payer = person(writer, 1)
    receipt = writer.execute(issue(data(payer)))
    row = row_of(engine, receipt.id)
    stored = " ".join(str(value) for value in row.values())
    assert PAYER_ACCOUNT not in stored and PAYEE_ACCOUNT not in stored
    assert receipt.code not in stored and receipt.code.replace("-", "") not in stored
    purpose = receipts.ACCOUNT_PURPOSE
    assert VAULT.decrypt(row["payer_account_sealed"], purpose=purpose) == PAYER_ACCOUNT
    assert VAULT.decrypt(row["payee_account_sealed"], purpose=purpose) == PAYEE_ACCOUNT
    assert (row["amount"], row["currency"], row["customer_id"]) == (123_450, "CNY", payer)
    assert (row["payer_name"], row["payee_name"], row["source"]) == ("张小三", "李四", "payment:1")
    assert receipt.view.payer_account == "621700*********0016"
    assert receipt.view.payee_account == "622202*********3445"
    assert receipt.view.completed_at == COMPLETED
    assert receipt.issued_at == writer.clock.now()


def test_the_number_is_R_the_business_day_in_shanghai_and_the_id(
    writer: Writer, clock: FixedClock
) -> None:
    payer = person(writer, 1)
    first = writer.execute(issue(data(payer, 1)))
    assert first.number == f"R20261123{first.id:010d}"
    clock.set(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))  # 00:30 on the 24th in Shanghai
    second = writer.execute(issue(data(payer, 2)))
    assert second.number == f"R20261124{second.id:010d}"


def test_the_code_is_four_groups_of_four_with_nothing_to_misread(writer: Writer) -> None:
    payer = person(writer, 1)
    codes = [writer.execute(issue(data(payer, n))).code for n in range(1, 6)]
    for code in codes:
        assert re.fullmatch(r"([2-9A-HJ-NP-Z]{4}-){3}[2-9A-HJ-NP-Z]{4}", code), code
    assert len(set(codes)) == len(codes)


def test_a_second_issue_for_the_same_source_returns_the_first_receipt_unchanged(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    payer = person(writer, 1)
    first = writer.execute(issue(data(payer)))
    clock.set(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    again = writer.execute(issue(data(payer, amount=1, payee_name="王五")))
    assert again == first
    assert count(engine) == 1


def test_two_issues_for_one_source_in_one_batch_make_one_receipt(
    writer: Writer, engine: Engine
) -> None:
    payer = person(writer, 1)
    first, second = in_one_batch(writer, [issue(data(payer)), issue(data(payer))])
    assert first == second and count(engine) == 1


def test_two_writers_issuing_for_one_source_at_once_make_one_receipt(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    payer = person(writer, 1)
    [(mine, theirs)] = race_two_writers(writer, engine, clock, [issue(data(payer))])
    assert code_of(mine) == code_of(theirs) == "ok"
    assert mine == theirs and count(engine) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 0}, {"amount": -100}, {"amount": MAX_MINOR + 1}, {"amount": 12.5},
        {"currency": "USD"}, {"completed_at": datetime(2026, 11, 23, 10, 0)},
        {"source": "123"}, {"source": "payment:" + "9" * 40}, {"payer_account": "6217 0010"},
        {"payee_account": "12345"}, {"payee_name": ""}, {"purpose": "x" * 201},
        {"channel": "mobile\n"}, {"customer_id": 0}, {"payee_enterprise": 1},
    ],
)  # fmt: skip
def test_bad_receipt_data_is_refused_and_nothing_is_stored(
    writer: Writer, engine: Engine, changes: dict[str, Any]
) -> None:
    payer = person(writer, 1)
    with pytest.raises(EbankError) as caught:
        writer.execute(issue(data(payer, **changes)))
    assert caught.value.code == "INVALID_INPUT"
    assert count(engine) == 0


# -- the owner ------------------------------------------------------------------------------
def test_the_payer_fetches_the_receipt_by_source_and_by_number(
    writer: Writer, engine: Engine
) -> None:
    payer = person(writer, 1)
    issued = writer.execute(issue(data(payer)))
    assert fetch(engine, "payment:1", payer) == issued
    assert numbered(engine, issued.number, payer) == issued


def test_someone_elses_receipt_answers_like_one_that_does_not_exist(
    writer: Writer, engine: Engine
) -> None:
    payer, other = person(writer, 1), person(writer, 2)
    issued = writer.execute(issue(data(payer)))
    wrong_day = issued.number.replace("R20261123", "R20261122")
    attempts = [
        lambda: fetch(engine, "payment:1", other),
        lambda: fetch(engine, "payment:2", payer),
        lambda: numbered(engine, issued.number, other),
        lambda: numbered(engine, wrong_day, payer),
        lambda: numbered(engine, f"R20261123{issued.id + 1:010d}", payer),
        lambda: numbered(engine, "E202611230000000001", payer),
        lambda: numbered(engine, "R2026-11-23", payer),
    ]
    for attempt in attempts:
        with pytest.raises(EbankError) as caught:
            attempt()
        assert caught.value.code == "RECEIPT_NOT_FOUND"
        assert caught.value.details == {}


def test_an_altered_receipt_is_not_handed_to_its_owner(writer: Writer, engine: Engine) -> None:
    payer = person(writer, 1)
    issued = writer.execute(issue(data(payer)))
    alter(engine, issued.id, amount=1_234_500)
    with pytest.raises(EbankError) as caught:
        fetch(engine, "payment:1", payer)
    assert caught.value.code == "RECEIPT_UNAVAILABLE"


# -- the owner's list -----------------------------------------------------------------------
def listed(engine: Engine, customer_id: int, **how: Any) -> receipts.ReceiptPage:
    with engine.connect() as conn:
        return receipts.receipts_of(conn, VAULT, customer_id, **how)


def test_the_payer_lists_their_own_receipts_newest_first_page_by_page(
    writer: Writer, engine: Engine
) -> None:
    payer, other = person(writer, 1), person(writer, 2)
    mine = [writer.execute(issue(data(payer, n))) for n in range(1, 6)]
    theirs = writer.execute(issue(data(other, 9)))
    first = listed(engine, payer, limit=3)
    assert first.receipts == mine[:1:-1] and first.older == mine[2].id
    rest = listed(engine, payer, limit=3, before=first.older)
    assert rest.receipts == mine[1::-1] and rest.older is None
    assert listed(engine, other).receipts == [theirs]
    with pytest.raises(EbankError) as caught:
        listed(engine, payer, limit=0)
    assert caught.value.code == "INVALID_INPUT"


def test_the_list_takes_whole_business_days_in_shanghai(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    payer = person(writer, 1)
    issued = []
    for n, at in enumerate([(22, 15, 59), (22, 16, 0), (23, 15, 59), (23, 16, 0)], 1):
        clock.set(datetime(2026, 11, at[0], at[1], at[2], tzinfo=UTC))
        issued.append(writer.execute(issue(data(payer, n))))
    # Shanghai: the 22nd 23:59, the 23rd 00:00, the 23rd 23:59, the 24th 00:00.
    day = date(2026, 11, 23)
    assert listed(engine, payer, since=day, until=day).receipts == issued[2:0:-1]
    assert listed(engine, payer, since=day).receipts == issued[:0:-1]
    assert listed(engine, payer, until=day).receipts == issued[2::-1]


def test_an_altered_receipt_is_left_out_of_the_list_and_the_pages_go_on(
    writer: Writer, engine: Engine
) -> None:
    payer = person(writer, 1)
    issued = [writer.execute(issue(data(payer, n))) for n in range(1, 4)]
    alter(engine, issued[2].id, amount=1)
    first = listed(engine, payer, limit=2)
    assert first.receipts == [issued[1]] and first.older == issued[1].id
    assert listed(engine, payer, limit=2, before=first.older).receipts == [issued[0]]


# -- verifying ------------------------------------------------------------------------------
def test_a_genuine_code_shows_the_receipt_with_the_parties_masked(
    writer: Writer, engine: Engine
) -> None:
    payer = person(writer, 1)
    issued = writer.execute(
        issue(data(payer, payee_name="上海某某贸易有限公司", payee_enterprise=True))
    )
    view = verify(engine, issued.code)
    assert view == issued.view
    assert (view.payer_name, view.payee_name) == ("张*三", "上海某某贸易有限公司")
    assert (view.payer_account, view.payee_account) == (
        "621700*********0016",
        "622202*********3445",
    )
    assert view.amount_in_words == "人民币壹仟贰佰叁拾肆元伍角整"
    assert (view.number, view.amount, view.completed_at) == (issued.number, 123_450, COMPLETED)


def test_a_code_is_accepted_in_lower_case_and_without_its_dashes(
    writer: Writer, engine: Engine
) -> None:
    issued = writer.execute(issue(data(person(writer, 1))))
    assert verify(engine, issued.code.lower()) == issued.view
    assert verify(engine, issued.code.replace("-", "")) == issued.view


@pytest.mark.parametrize(
    "column",
    ["amount", "payee_name", "payer_name", "payee_bank", "purpose", "reference", "channel",
     "completed_at", "issued_at", "source", "payee_account_sealed", "payee_enterprise",
     "customer_id"],
)  # fmt: skip
def test_a_receipt_whose_stored_content_was_altered_no_longer_verifies(
    writer: Writer, engine: Engine, column: str
) -> None:
    payer, other = person(writer, 1), person(writer, 2)
    issued = writer.execute(issue(data(payer)))
    assert verify(engine, issued.code) is not None
    forged = {
        "amount": 12_345_000, "payee_name": "王五", "payer_name": "张小四",
        "payee_bank": "中国银行", "purpose": "货款", "reference": "E202611230000009999",
        "channel": "online", "completed_at": datetime(2026, 11, 22, 1, 0, tzinfo=UTC),
        "issued_at": datetime(2026, 11, 23, 3, 0, tzinfo=UTC), "source": "payment:2",
        "payee_account_sealed": VAULT.encrypt("6222020200999999999",
                                              purpose=receipts.ACCOUNT_PURPOSE),
        "payee_enterprise": True, "customer_id": other,
    }  # fmt: skip
    alter(engine, issued.id, **{column: forged[column]})
    assert verify(engine, issued.code) is None


def test_a_sealed_account_that_no_longer_opens_does_not_verify(
    writer: Writer, engine: Engine
) -> None:
    issued = writer.execute(issue(data(person(writer, 1))))
    sealed = row_of(engine, issued.id)["payer_account_sealed"]
    tampered = sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB")
    alter(engine, issued.id, payer_account_sealed=tampered)
    assert verify(engine, issued.code) is None


def test_unknown_codes_and_codes_under_another_key_find_nothing(
    writer: Writer, engine: Engine
) -> None:
    issued = writer.execute(issue(data(person(writer, 1))))
    symbols = issued.code.replace("-", "")
    other = ("3" if symbols[0] != "3" else "4") + symbols[1:]
    assert verify(engine, other) is None
    assert verify(engine, issued.code, OTHER_VAULT) is None  # made under another key


@pytest.mark.parametrize(
    "typed", ["2345-6789-ABCD-EFG", "23456789ABCDEFGHJ", "23456789ABCDEFGHJKL", "---2345678ABCDEFG"]
)
def test_text_of_the_right_symbols_that_is_no_code_finds_nothing(
    writer: Writer, engine: Engine, typed: str
) -> None:
    writer.execute(issue(data(person(writer, 1))))
    assert verify(engine, typed) is None


@pytest.mark.parametrize(
    "typed",
    ["", "2345-6789", "2345-6789-ABCD-EFGH-JKLM", "0345-6789-ABCD-EFGH", "1345-6789-ABCD-EFGH",
     "O345-6789-ABCD-EFGH", "I345-6789-ABCD-EFGH", "2345 6789 ABCD EFGH",
     "２３４５６７８９ABCDEFGH", "2345-6789-ABCD-EFG\u212a", "2345_6789_ABCD_EFGH"],
)  # fmt: skip
def test_text_that_is_not_shaped_like_a_code_is_refused(engine: Engine, typed: str) -> None:
    with pytest.raises(EbankError) as caught:
        verify(engine, typed)
    assert caught.value.code == "INVALID_INPUT"


# -- names as printed -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "enterprise", "shown"),
    [("张三", False, "张*"), ("张小三", False, "张*三"), ("欧阳小锋", False, "欧**锋"),
     ("李", False, "*"), ("上海某某贸易有限公司", True, "上海某某贸易有限公司")],
)  # fmt: skip
def test_names_are_printed_the_way_banks_mask_them(name: str, enterprise: bool, shown: str) -> None:
    assert mask_party(name, enterprise=enterprise) == shown


# -- the PDF --------------------------------------------------------------------------------
def shown_text(pdf: bytes) -> str:
    """The strings a PDF's content streams show, Latin-1 and UTF-16 (the CID font) alike."""
    texts = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        # reportlab's filters: ASCII85, then Flate.
        content = zlib.decompress(base64.a85decode(stream.strip().removesuffix(b"~>")))
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", content, re.S):
            raw = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: bytes([int(m[1], 8)]) if m[1][:1].isdigit() else m[1],
                literal,
            )
            texts.append(raw.decode("latin-1"))
            if len(raw) % 2 == 0:
                texts.append(raw.decode("utf-16-be", errors="replace"))
    return "\n".join(texts)


def test_the_pdf_shows_what_the_receipt_says_with_its_code(writer: Writer, engine: Engine) -> None:
    issued = writer.execute(issue(data(person(writer, 1))))
    pdf = render_pdf(fetch(engine, "payment:1", issued.customer_id))
    assert pdf.startswith(b"%PDF-")
    assert b"/MediaBox [ 0 0 595.2756 419.5276 ]" in pdf  # A5 landscape
    text = shown_text(pdf)
    for shown in (issued.number, issued.code, "E202611230000001234", "1,234.50",
                  "2026-11-23 09:59:30", "621700*********0016", "张*三", "李*",
                  "人民币壹仟贰佰叁拾肆元伍角整", "电子回单", "电子回单专用章",
                  "/api/v1/receipts/verify"):  # fmt: skip
        assert shown in text, shown
    assert PAYER_ACCOUNT not in text and "张小三" not in text


def test_the_same_receipt_always_prints_the_same_bytes_and_another_prints_others(
    writer: Writer, engine: Engine
) -> None:
    payer = person(writer, 1)
    first = writer.execute(issue(data(payer, 1)))
    second = writer.execute(issue(data(payer, 2)))
    pdf = render_pdf(first)
    assert render_pdf(fetch(engine, "payment:1", payer)) == pdf == render_pdf(first)
    assert render_pdf(second) != pdf
