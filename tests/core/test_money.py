"""Money: integer minor units, exact-digit decimal strings at the edge, no floats."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebank.core.errors import EbankError
from ebank.core.money import CURRENCY_DIGITS, MAX_MINOR, Money, format_minor, parse_minor


def _error_code(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(EbankError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value.code


def test_parse_cny_with_two_decimals_gives_fen() -> None:
    assert parse_minor("1234.50", "CNY") == 123450
    assert parse_minor("0.01", "CNY") == 1
    assert parse_minor("0.00", "CNY") == 0
    assert Money.parse("1234.50") == Money(123450, "CNY")


@pytest.mark.parametrize(
    "text",
    [
        "1.5",  # too few digits
        "1.500",  # too many digits
        "1",  # no digits at all for a two-digit currency
        "1.",
        ".50",
        "1e3",
        "1.00e0",
        " 1.00",
        "1.00 ",
        "1.00\n",
        "+1.00",
        "01.00",
        "00.00",
        "1,000.00",
        "1_000.00",
        "",
        "-",
        "--1.00",
        "NaN",
        "Infinity",
        "١.٠٠",  # Arabic-Indic digits: int() would accept them, an amount must not
        "１.００",  # fullwidth digits
    ],
)
def test_parse_refuses_anything_but_exact_plain_decimals(text: str) -> None:
    assert _error_code(parse_minor, text, "CNY", allow_negative=True) == "INVALID_AMOUNT"


@pytest.mark.parametrize("value", [None, 1, 1.5, b"1.00", ["1.00"]])
def test_parse_refuses_non_strings(value: object) -> None:
    assert _error_code(parse_minor, value, "CNY") == "INVALID_AMOUNT"


def test_invalid_amount_error_is_a_400_with_a_reason() -> None:
    with pytest.raises(EbankError) as info:
        parse_minor("1.5", "CNY")
    assert info.value.status == 400
    assert "2" in info.value.details["reason"]
    assert "{reason}" not in info.value.message("en")


def test_negative_refused_unless_allowed() -> None:
    assert _error_code(parse_minor, "-1.00", "CNY") == "INVALID_AMOUNT"
    assert _error_code(parse_minor, "-0.00", "CNY") == "INVALID_AMOUNT"
    assert parse_minor("-1.00", "CNY", allow_negative=True) == -100
    assert parse_minor("-0.00", "CNY", allow_negative=True) == 0
    assert Money.parse("-12.34", "USD", allow_negative=True) == Money(-1234, "USD")


def test_jpy_takes_no_decimals() -> None:
    assert parse_minor("1500", "JPY") == 1500
    assert parse_minor("0", "JPY") == 0
    assert _error_code(parse_minor, "1500.00", "JPY") == "INVALID_AMOUNT"
    assert _error_code(parse_minor, "1500.0", "JPY") == "INVALID_AMOUNT"
    assert _error_code(parse_minor, "1500.", "JPY") == "INVALID_AMOUNT"
    assert format_minor(1500, "JPY") == "1500"


@pytest.mark.parametrize("currency", ["XXX", "cny", "", "RMB"])
def test_unknown_currency_is_refused(currency: str) -> None:
    assert _error_code(parse_minor, "1.00", currency) == "UNKNOWN_CURRENCY"
    assert _error_code(format_minor, 100, currency) == "UNKNOWN_CURRENCY"
    assert _error_code(Money, 100, currency) == "UNKNOWN_CURRENCY"


def test_huge_amounts_are_refused() -> None:
    top = format_minor(MAX_MINOR, "CNY")
    assert parse_minor(top, "CNY") == MAX_MINOR
    assert parse_minor("-" + top, "CNY", allow_negative=True) == -MAX_MINOR
    just_over = format_minor(MAX_MINOR + 1, "CNY")
    assert _error_code(parse_minor, just_over, "CNY") == "INVALID_AMOUNT"
    assert _error_code(parse_minor, "-" + just_over, "CNY", allow_negative=True) == (
        "INVALID_AMOUNT"
    )
    assert _error_code(parse_minor, str(MAX_MINOR + 1), "JPY") == "INVALID_AMOUNT"
    assert _error_code(parse_minor, "9" * 17 + ".00", "CNY") == "INVALID_AMOUNT"
    # A very long string is refused quickly, not turned into a huge int.
    assert _error_code(parse_minor, "9" * 100_000 + ".00", "CNY") == "INVALID_AMOUNT"


def test_format_pads_fraction_and_keeps_sign() -> None:
    assert format_minor(123450, "CNY") == "1234.50"
    assert format_minor(5, "CNY") == "0.05"
    assert format_minor(-5, "CNY") == "-0.05"
    assert format_minor(0, "USD") == "0.00"
    assert str(Money(-123456, "EUR")) == "-1234.56"


@given(
    minor=st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR),
    currency=st.sampled_from(sorted(CURRENCY_DIGITS)),
)
def test_format_round_trips_through_parse(minor: int, currency: str) -> None:
    text = format_minor(minor, currency)
    assert parse_minor(text, currency, allow_negative=True) == minor
    assert Money.parse(text, currency, allow_negative=True) == Money(minor, currency)


@given(minor=st.integers(min_value=0, max_value=MAX_MINOR))
def test_formatted_amount_has_exactly_the_currency_digits(minor: int) -> None:
    for currency, exp in CURRENCY_DIGITS.items():
        text = format_minor(minor, currency)
        if exp == 0:
            assert "." not in text
        else:
            assert len(text.split(".")[1]) == exp


@pytest.mark.parametrize("minor", [1.0, 100.5, True, "100", None])
def test_money_refuses_anything_but_int_minor(minor: object) -> None:
    with pytest.raises(TypeError):
        Money(minor, "CNY")  # type: ignore[arg-type]


def test_money_is_immutable_and_defaults_to_cny() -> None:
    m = Money(100)
    assert m.currency == "CNY"
    with pytest.raises(AttributeError):
        m.minor = 200  # type: ignore[misc]
