"""Notice templates: both languages for every kind with the same fields, strict filling (a
missing or unknown field is a programming error), amounts with thousands separators, times in
Asia/Shanghai, and Chinese SMS within one 70-character segment for typical values."""

from datetime import UTC, datetime

import pytest

from ebank.notify import templates
from ebank.notify.templates import (
    LOCALES,
    SUBJECTS,
    TEMPLATES,
    day,
    fit,
    moment,
    phrase,
    render,
    return_reason,
    sms_segment,
    subject,
    yuan,
)

AT = datetime(2026, 11, 22, 6, 5, tzinfo=UTC)  # 14:05 in Shanghai


def fields_of(template: str) -> set[str]:
    from string import Formatter

    return {name for _, name, _, _ in Formatter().parse(template) if name}


def typical(kind: str, locale: str) -> dict[str, str]:
    """Fields as notices write them, for ordinary values."""
    payee = phrase("payee", locale, name="张*三" if locale == "zh-CN" else "Z**n", last4="0001")
    values = {
        "last4": "0011",
        "time": moment(AT, locale),
        "date": day(AT, locale),
        "direction": phrase("out", locale),
        "amount": yuan(1_234_50),
        "balance": yuan(12_345_67),
        "memo": "工资",
        "payee": payee,
        "outcome": phrase("failed", locale, reason="可用余额不足，请存入资金或减少金额后重试"),
        "reference": "W202611220000000042",
        "period": "2026-11",
        "paid": "120",
        "paid_total": yuan(1_020_000_00),
        "failed": "2",
        "reason": "可用余额不足，请存入资金或减少金额后重试"
        if kind == "scheduled.failed"
        else return_reason("BE01", locale),
    }
    return {name: values[name] for name in fields_of(TEMPLATES[kind][LOCALES.index(locale)])}


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_every_kind_has_both_languages_with_the_same_fields_and_a_subject(kind: str) -> None:
    zh, en = TEMPLATES[kind]
    assert fields_of(zh) == fields_of(en)
    assert zh.endswith("【ebank】") and en.startswith("[ebank]")
    assert en.isascii(), "English notices stay GSM-7"
    assert kind in SUBJECTS


def test_the_required_kinds_exist() -> None:
    assert {"account.movement", "payment.result", "scheduled.failed", "payment.returned"} <= set(
        TEMPLATES
    )


def test_the_account_movement_reads_as_the_bank_writes_it() -> None:
    text = render(
        "account.movement", "zh-CN", last4="0011", time=moment(AT, "zh-CN"),
        direction=phrase("in", "zh-CN"), amount=yuan(1_234_50), balance=yuan(12_345_67),
        memo="工资",
    )  # fmt: skip
    assert text == "您尾号0011的账户11月22日14:05转入人民币1,234.50，余额12,345.67。工资【ebank】"
    english = render(
        "account.movement", "en", last4="0011", time=moment(AT, "en"),
        direction=phrase("out", "en"), amount=yuan(1_234_50), balance=yuan(12_345_67), memo="",
    )  # fmt: skip
    assert english == (
        "[ebank] Account ending 0011: expense CNY 1,234.50 at 22 Nov 14:05, balance CNY 12,345.67."
    )


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_a_chinese_notice_with_typical_values_fits_one_sms(kind: str) -> None:
    text = render(kind, "zh-CN", **typical(kind, "zh-CN"))
    assert len(text) <= 70, text
    assert len(render(kind, "en", **typical(kind, "en"))) <= 160


def test_an_unknown_kind_or_locale_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        render("account.moved", "zh-CN")
    with pytest.raises(ValueError):
        render("payment.result", "fr", payee="x", amount="1.00", outcome="ok")
    with pytest.raises(KeyError):
        subject("no.such.kind")


def test_a_missing_field_raises_instead_of_rendering_a_gap() -> None:
    with pytest.raises(KeyError, match="outcome"):
        render("payment.result", "zh-CN", payee="张*三(尾号0001)", amount="1.00")


def test_a_field_the_template_does_not_use_raises() -> None:
    with pytest.raises(ValueError, match="balanse"):
        render("payment.result", "en", payee="x", amount="1.00", outcome="ok", balanse="1")


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (1_00, "1.00"),
        (999_999, "9,999.99"),
        (1_234_567_89, "1,234,567.89"),
        (-1_234_50, "-1,234.50"),
        (10**14, "1,000,000,000,000.00"),
    ],
)
def test_amounts_have_thousands_separators_and_exact_fen(fen: int, shown: str) -> None:
    assert yuan(fen) == shown


def test_times_are_written_in_shanghai_time() -> None:
    late = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 January in Shanghai
    assert moment(late, "zh-CN") == "1月1日00:30"
    assert moment(late, "en") == "1 Jan 00:30"
    assert day(late, "zh-CN") == "1月1日" and day(late, "en") == "1 Jan"
    with pytest.raises(ValueError):
        moment(datetime(2026, 11, 22, 14, 5), "zh-CN")


def test_return_reasons_are_explained_and_unknown_codes_quoted() -> None:
    assert return_reason("AC01", "zh-CN") == "账号有误"
    assert return_reason("AC04", "en") == "account closed"
    assert return_reason("ZZ99", "zh-CN") == "原因代码ZZ99"
    assert return_reason("ZZ99", "en") == "reason code ZZ99"


def test_the_email_subject_carries_both_languages() -> None:
    assert subject("payment.result") == "【ebank】付款结果通知 / Payment result"


def test_fit_cuts_a_long_memo_to_keep_one_segment() -> None:
    base = typical("account.movement", "zh-CN")
    long_memo = "这是付给您的一笔很长很长很长很长的附言内容请注意查收"
    text = fit("account.movement", "zh-CN", shrink="memo", **base | {"memo": long_memo})
    assert len(text) == 70
    assert text.endswith("…【ebank】")
    assert long_memo[:5] in text and "余额12,345.67。" in text


def test_fit_leaves_a_short_memo_whole() -> None:
    base = typical("account.movement", "zh-CN")
    assert fit("account.movement", "zh-CN", shrink="memo", **base) == render(
        "account.movement", "zh-CN", **base
    )


def test_fit_drops_a_chinese_memo_from_an_english_sms_rather_than_take_two_segments() -> None:
    base = typical("account.movement", "en")
    text = fit("account.movement", "en", shrink="memo", **base | {"memo": "房租"})
    assert text.isascii() and len(text) <= sms_segment(text) == 160
    assert text.endswith("balance CNY 12,345.67.")


def test_fit_keeps_everything_but_the_memo_even_when_that_is_too_long() -> None:
    base = typical("account.movement", "zh-CN") | {"amount": yuan(10**14), "balance": yuan(10**14)}
    text = fit("account.movement", "zh-CN", shrink="memo", **base | {"memo": "附言" * 20})
    assert "1,000,000,000,000.00" in text and "附言" not in text


def test_templates_are_plain_data() -> None:
    for table in (templates.TEMPLATES, templates.SUBJECTS, templates.PHRASES):
        assert all(isinstance(v, tuple) and len(v) == 2 for v in table.values())
