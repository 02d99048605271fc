"""Receipts over HTTP: the payer's own receipt as JSON and as the printed PDF, someone else's
answering like none, and the public check of a verification code. SQLite and PostgreSQL."""

from typing import Any

from fastapi.testclient import TestClient

from ebank.channels.api.receipts import ReceiptOut
from ebank.core.clock import FixedClock
from ebank.core.writer import Command, Writer
from ebank.receipts import service as receipts
from ebank.receipts.models import VERIFY_PATH, Receipt
from ebank.receipts.pdf import render_pdf
from tests.channels.api_support import ONLINE, bearer, customer, login
from tests.receipts.test_receipts import data
from tests.support import VAULT

MISSING = "R202611230000009999"


def issued(writer: Writer, payer: int, n: int = 1, **changes: Any) -> Receipt:
    d = data(payer, n, **changes)
    return writer.execute(Command(lambda tx: receipts.issue_receipt(tx, VAULT, d)))


def two_payers(api: TestClient, writer: Writer, clock: FixedClock) -> dict[str, Any]:
    """Me (logged in) and someone else, each with a receipt."""
    me, other = customer(writer, 1, enrolled=ONLINE), customer(writer, 2, enrolled=ONLINE)
    return {
        "token": login(api, clock, me),
        "mine": issued(writer, me.id, 1),
        "theirs": issued(writer, other.id, 2, amount=99_999_00),
    }


def test_my_receipt_shows_what_is_printed_with_the_parties_masked(api, writer, clock):
    s = two_payers(api, writer, clock)
    mine: Receipt = s["mine"]
    answer = api.get(f"/api/v1/me/receipts/{mine.number}", headers=bearer(s["token"]))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "number": mine.number, "amount": "1234.50", "currency": "CNY",
        "amount_in_words": "人民币壹仟贰佰叁拾肆元伍角整",
        "completed_at": "2026-11-23T01:59:30.123456Z",
        "payer_name": "张*三", "payer_account": "621700*********0016",
        "payee_name": "李*", "payee_account": "622202*********3445",
        "payee_bank": "中国工商银行上海分行", "purpose": "房租 11月", "channel": "mobile",
        "reference": "E202611230000001234", "verification_code": mine.code,
    }  # fmt: skip


def test_my_receipt_as_a_pdf_is_the_printed_receipt(api, writer, clock):
    s = two_payers(api, writer, clock)
    mine: Receipt = s["mine"]
    answer = api.get(f"/api/v1/me/receipts/{mine.number}.pdf", headers=bearer(s["token"]))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["cache-control"] == "no-store"
    assert f'filename="{mine.number}.pdf"' in answer.headers["content-disposition"]
    assert answer.content.startswith(b"%PDF-")
    assert answer.content == render_pdf(mine)


def test_someone_elses_receipt_answers_like_a_missing_one(api, writer, clock):
    s = two_payers(api, writer, clock)
    theirs: Receipt = s["theirs"]
    for suffix in ("", ".pdf"):
        got = api.get(f"/api/v1/me/receipts/{theirs.number}{suffix}", headers=bearer(s["token"]))
        missing = api.get(f"/api/v1/me/receipts/{MISSING}{suffix}", headers=bearer(s["token"]))
        assert got.status_code == missing.status_code == 404
        assert got.json() == missing.json()
        assert got.json()["code"] == "RECEIPT_NOT_FOUND"
        assert "99999" not in got.text and theirs.code not in got.text


def test_my_receipts_are_listed_newest_first_page_by_page_and_never_anothers(api, writer, clock):
    s = two_payers(api, writer, clock)
    me = s["mine"].customer_id
    newer = issued(writer, me, 3)
    first = api.get("/api/v1/me/receipts", params={"limit": 1}, headers=bearer(s["token"]))
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    assert [r["number"] for r in first.json()["receipts"]] == [newer.number]
    assert first.json()["receipts"][0]["verification_code"] == newer.code
    older = first.json()["older"]
    rest = api.get(
        "/api/v1/me/receipts", params={"before": older, "since": "2026-11-23"},
        headers=bearer(s["token"]),
    )  # fmt: skip
    assert rest.json() == {"receipts": [ReceiptOut.of_receipt(s["mine"]).model_dump(mode="json")],
                           "older": None}  # fmt: skip
    assert s["theirs"].number not in first.text + rest.text
    elsewhere = api.get("/api/v1/me/receipts", params={"until": "2026-11-22"},
                        headers=bearer(s["token"]))  # fmt: skip
    assert elsewhere.json() == {"receipts": [], "older": None}
    for since in ("2026-13-01", "0001-01-01", "9999-12-31"):  # the last two have no bounds
        bad = api.get("/api/v1/me/receipts", params={"since": since}, headers=bearer(s["token"]))
        assert bad.status_code == 400, since


def test_my_receipts_need_a_login(api, writer, clock):
    s = two_payers(api, writer, clock)
    assert api.get("/api/v1/me/receipts").status_code == 401
    for suffix in ("", ".pdf"):
        answer = api.get(f"/api/v1/me/receipts/{s['mine'].number}{suffix}")
        assert answer.status_code == 401
        assert answer.json()["code"] == "AUTH_REQUIRED"


def test_anybody_checks_a_code_without_logging_in_and_sees_the_parties_masked(api, writer):
    receipt = issued(writer, customer(writer, 1).id)
    answer = api.get(VERIFY_PATH, params={"code": receipt.code.lower()})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    shown = answer.json()
    assert shown["number"] == receipt.number
    assert (shown["amount"], shown["amount_in_words"]) == (
        "1234.50",
        "人民币壹仟贰佰叁拾肆元伍角整",
    )
    assert (shown["payer_name"], shown["payee_name"]) == ("张*三", "李*")
    assert shown["payer_account"] == "621700*********0016"
    assert "purpose" not in shown and "verification_code" not in shown


def test_an_unknown_code_and_a_malformed_one_get_the_same_404(api, writer):
    receipt = issued(writer, customer(writer, 1).id)
    symbols = receipt.code.replace("-", "")
    unknown = ("3" if symbols[0] != "3" else "4") + symbols[1:]
    answers = [api.get(VERIFY_PATH, params={"code": c}) for c in (unknown, symbols[:15] + "-")]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["code"] == "RECEIPT_NOT_FOUND"


def test_text_that_is_no_code_at_all_is_a_400(api):
    for params in ({"code": "O000-1111-IIII-0000"}, {"code": "short"}, {"code": "x" * 65}, {}):
        answer = api.get(VERIFY_PATH, params=params)
        assert answer.status_code == 400, params
        assert answer.json()["code"] == "INVALID_INPUT"
