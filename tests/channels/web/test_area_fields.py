"""What the pages read from people: amounts as typed, ids, dates; anything else is an error
beside its field, never a different number or a server error."""

import pytest

from ebank.channels.web.area import (
    typed_amount,
    typed_day,
    typed_id,
    typed_percent,
    typed_secret,
)
from ebank.core.errors import EbankError


@pytest.mark.parametrize(
    ("typed", "fen"),
    [("100", 10_000), ("12.5", 1_250), ("12.50", 1_250), ("1,234.50", 123_450),
     ("1,234,567", 123_456_700), (" 0.01 ", 1)],
)  # fmt: skip
def test_amounts_are_read_as_people_type_them(typed: str, fen: int) -> None:
    assert typed_amount(typed, "amount") == fen


@pytest.mark.parametrize("typed", ["1,50", "1,0,0", "12,34.5", "12.345", "-1", "abc", "1e5", "²"])
def test_anything_else_is_refused_beside_its_field(typed: str) -> None:
    with pytest.raises(EbankError) as refused:
        typed_amount(typed, "amount")
    assert refused.value.details["field"] == "amount"


def test_ids_are_ascii_digits_within_64_bits() -> None:
    assert typed_id("42") == 42 and typed_id(" 7 ") == 7
    for bad in ("²", "１", "0", "-3", "", None, "9" * 20, "4.0"):
        assert typed_id(bad) is None


def test_days_are_iso_dates_or_nothing() -> None:
    assert typed_day("", "from") is None
    assert str(typed_day("2026-11-30", "from")) == "2026-11-30"
    for bad in ("2026-13-01", "30/11/2026", "２０２６-11-30", "0001-01-01", "9999-12-31"):
        with pytest.raises(EbankError):
            typed_day(bad, "from")


def test_a_fee_rate_is_a_short_percentage_never_an_overflow() -> None:
    def _rate_ppm(text: str) -> int:  # as the console's fee plans read it
        return typed_percent(text, "rate", 10_000)

    assert _rate_ppm("0.25") == 2_500 and _rate_ppm("100") == 1_000_000
    for bad in ("1e999999", "101", "0.00001", "-1", "NaN", "abc"):
        with pytest.raises(EbankError):
            _rate_ppm(bad)


def test_a_secret_is_taken_exactly_as_typed_and_only_an_empty_one_is_refused() -> None:
    """The API and the counter keep a password's spaces; a page trimming them would lock the
    customer out of the pages."""
    assert typed_secret({"password": " Sunrise 2026 "}, "password", "Login password") == (
        " Sunrise 2026 "
    )
    with pytest.raises(EbankError) as caught:
        typed_secret({"password": ""}, "password", "Login password")
    assert caught.value.details["field"] == "password"
