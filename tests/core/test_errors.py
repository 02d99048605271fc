"""Domain errors: stable codes, zh-CN and English messages, an HTTP status, a JSON shape."""

import json
import re
import string

import pytest

from ebank.core.errors import CATALOGUE, EbankError

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_catalogue_code_builds_with_zh_en_messages_and_an_error_status(code: str) -> None:
    kind = CATALOGUE[code]
    names = _placeholders(kind.zh) | _placeholders(kind.en)
    # zh and en ask for the same details, so a channel can switch language freely.
    assert _placeholders(kind.zh) == _placeholders(kind.en)
    err = EbankError(code, **{name: f"<{name}>" for name in names})
    assert err.code == code
    assert 400 <= err.status <= 599
    zh, en = err.message("zh"), err.message("en")
    assert zh and en and zh != en
    assert _CJK.search(zh), f"{code}: the zh message has no Chinese"
    assert not _CJK.search(en), f"{code}: the en message has Chinese"
    for name in names:
        assert f"<{name}>" in zh and f"<{name}>" in en
    assert "{" not in zh and "{" not in en


def test_codes_are_upper_snake_case() -> None:
    for code in CATALOGUE:
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", code), code


def test_placeholders_fill_from_details() -> None:
    err = EbankError("INVALID_STATUS_CHANGE", from_status="closed", to_status="active")
    assert err.message("en") == "Account status cannot change from closed to active"
    assert err.message("zh") == "账户状态不能从 closed 变为 active"
    assert "closed" in str(err) and "INVALID_STATUS_CHANGE" in str(err)


def test_a_detail_named_code_fills_the_code_placeholder() -> None:
    # ACCOUNT_EXISTS's template says {code}, and the ledger raises it with code=...
    err = EbankError("ACCOUNT_EXISTS", code="6222-0001")
    assert err.code == "ACCOUNT_EXISTS"
    assert err.details == {"code": "6222-0001"}
    assert err.message("en") == "Account 6222-0001 already exists"
    assert err.to_dict("en")["code"] == "ACCOUNT_EXISTS"


def test_language_tags_select_the_message() -> None:
    err = EbankError("UNKNOWN_CURRENCY", currency="XYZ")
    assert err.message("zh-CN") == err.message("zh") == "不支持的币种 XYZ"
    assert err.message("en-GB") == err.message("en") == "Unsupported currency XYZ"
    assert err.message() == err.message("zh")  # zh-CN is the default


def test_missing_detail_leaves_the_template_usable() -> None:
    err = EbankError("INVALID_STATUS_CHANGE", from_status="closed")  # no to_status
    assert err.message("en") == CATALOGUE["INVALID_STATUS_CHANGE"].en
    assert err.message("zh") == CATALOGUE["INVALID_STATUS_CHANGE"].zh
    assert err.to_dict("en")["message"] == CATALOGUE["INVALID_STATUS_CHANGE"].en


def test_braces_in_a_detail_value_are_not_interpreted() -> None:
    err = EbankError("INVALID_INPUT", reason="{currency} {0} }{")
    assert err.message("en") == "Invalid input: {currency} {0} }{"


def test_unknown_code_raises_key_error() -> None:
    with pytest.raises(KeyError, match="NO_SUCH_CODE"):
        EbankError("NO_SUCH_CODE")


def test_to_dict_shape() -> None:
    err = EbankError("IDEMPOTENCY_CONFLICT", key="k-1")
    body = err.to_dict("en")
    assert set(body) == {"code", "message", "details"}
    assert body == {
        "code": "IDEMPOTENCY_CONFLICT",
        "message": "This idempotency key was already used for a different request",
        "details": {"key": "k-1"},
    }
    assert err.to_dict()["message"] == "该请求编号已用于另一笔不同的请求"
    assert json.loads(json.dumps(body, ensure_ascii=False)) == body


def test_error_is_an_exception_with_status_from_the_catalogue() -> None:
    err = EbankError("INSUFFICIENT_FUNDS")
    assert isinstance(err, Exception)
    assert err.status == CATALOGUE["INSUFFICIENT_FUNDS"].status == 422
    assert EbankError("METHOD_NOT_ALLOWED").status == 405
    assert EbankError("ACCOUNT_NOT_FOUND").status == 404
    assert EbankError("IDEMPOTENCY_CONFLICT", key="k").status == 409


# -- one code, several wordings ---------------------------------------------------------------
_VARIANTS = [(code, name) for code, kind in sorted(CATALOGUE.items()) for name in kind.variants]


def test_the_catalogue_has_variant_messages() -> None:
    assert ("LIMIT_EXCEEDED", "sms_daily") in _VARIANTS
    assert all(CATALOGUE[code].by for code, _ in _VARIANTS)  # variants are picked by a detail


@pytest.mark.parametrize(("code", "variant"), _VARIANTS, ids=lambda v: str(v))
def test_every_variant_reads_in_zh_and_en_with_the_same_details(code: str, variant: str) -> None:
    kind = CATALOGUE[code]
    zh_template, en_template = kind.variants[variant]
    names = _placeholders(zh_template)
    assert names == _placeholders(en_template), f"{code}/{variant}: zh and en differ"
    assert kind.by not in names  # the selector is not a figure to show
    err = EbankError(code, **{name: f"<{name}>" for name in names}, **{kind.by: variant})
    zh, en = err.message("zh"), err.message("en")
    assert _CJK.search(zh), f"{code}/{variant}: the zh message has no Chinese"
    assert not _CJK.search(en), f"{code}/{variant}: the en message has Chinese"
    for name in names:
        assert f"<{name}>" in zh and f"<{name}>" in en
    assert "{" not in zh and "{" not in en
    # The variant is what is shown, not the generic wording.
    generic = EbankError(code, **{name: f"<{name}>" for name in names})
    assert (zh, en) != (generic.message("zh"), generic.message("en"))


def test_the_detail_named_by_the_code_picks_the_wording() -> None:
    err = EbankError("LIMIT_EXCEEDED", limit="sms_daily", cap="20000.00", remaining="5000.00")
    assert err.message("en") == (
        "Above the daily limit for SMS codes (¥20000.00; ¥5000.00 left today): use your token "
        "or certificate"
    )
    assert err.message("zh").startswith("超过短信验证码的日累计限额 ¥20000.00")
    assert err.to_dict("en")["details"]["limit"] == "sms_daily"


@pytest.mark.parametrize("limit", ["no_such_limit", "", None, 7, "SMS_DAILY"])
def test_an_unknown_variant_falls_back_to_the_generic_wording(limit: object) -> None:
    err = EbankError("LIMIT_EXCEEDED", limit=limit, cap="1000.00", remaining="250.00")
    kind = CATALOGUE["LIMIT_EXCEEDED"]
    assert err.message("en") == kind.en.format(cap="1000.00", remaining="250.00")
    assert err.message("zh") == kind.zh.format(cap="1000.00", remaining="250.00")
    assert err.message("en") == "Above a limit of ¥1000.00 (¥250.00 left today)"


def test_without_the_selecting_detail_the_generic_wording_is_used() -> None:
    err = EbankError("LIMIT_EXCEEDED", cap="1.00", remaining="0.00")
    assert err.message("zh") == "超过限额 ¥1.00（今日还可支付 ¥0.00）"


def test_a_variant_missing_a_detail_leaves_its_template_usable() -> None:
    err = EbankError("LIMIT_EXCEEDED", limit="tier_daily", cap="10000.00", remaining="0.00")
    assert err.message("en") == CATALOGUE["LIMIT_EXCEEDED"].variants["tier_daily"][1]
