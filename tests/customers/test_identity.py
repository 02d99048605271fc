"""Identity numbers: resident ID (GB 11643), unified social credit code (GB 32100), mobiles."""

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebank.core.errors import EbankError
from ebank.customers.identity import (
    ResidentId,
    check_digit_for,
    credit_check_for,
    credit_code,
    mobile,
    resident_id,
    same_name,
)

TODAY = date(2026, 11, 23)
VALID_ID = "11010519491231002X"  # born 1949-12-31, female
VALID_CODE = "91350100M000100Y43"
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def make_id(region: str, born: date, sequence: str) -> str:
    first17 = f"{region}{born:%Y%m%d}{sequence}"
    return first17 + check_digit_for(first17)


def make_code(first17: str) -> str:
    return first17 + credit_check_for(first17)


def refused(check: Callable[[], Any]) -> EbankError:
    with pytest.raises(EbankError) as caught:
        check()
    assert caught.value.code == "INVALID_INPUT"
    return caught.value


def shows(error: EbankError, text: str) -> bool:
    """Whether anything the error would tell a caller or a log contains `text`."""
    told = [str(error), error.message("zh"), error.message("en"), repr(error.details)]
    return any(text in part for part in told)


# -- resident ID -----------------------------------------------------------------------------
def test_a_valid_resident_id_gives_birth_date_region_and_sex() -> None:
    checked = resident_id(VALID_ID, today=TODAY)
    assert checked == ResidentId(VALID_ID, date(1949, 12, 31), "110105", False)


def test_the_seventeenth_digit_tells_the_sex() -> None:
    man = make_id("440305", date(1990, 6, 15), "123")
    woman = make_id("440305", date(1990, 6, 15), "124")
    assert resident_id(man, today=TODAY).male is True
    assert resident_id(woman, today=TODAY).male is False


@pytest.mark.parametrize(
    "text", ["11010519491231002x", "  11010519491231002X  ", "\t11010519491231002x\n"]
)
def test_lower_case_x_and_surrounding_space_are_normalised(text: str) -> None:
    assert resident_id(text, today=TODAY).number == VALID_ID


@pytest.mark.parametrize("wrong", "0123456789")
def test_a_wrong_check_digit_is_refused(wrong: str) -> None:
    refused(lambda: resident_id(VALID_ID[:17] + wrong, today=TODAY))


@pytest.mark.parametrize(
    "text",
    [
        VALID_ID[:17],  # 17
        VALID_ID + "1",  # 19
        "",
        "   ",
        "110105194912310",  # the old 15-digit form
        "11010519491231002XX",
    ],
)
def test_a_wrong_length_is_refused(text: str) -> None:
    refused(lambda: resident_id(text, today=TODAY))


@pytest.mark.parametrize(
    "text",
    [
        "1101051949123100AX",
        "A1010519491231002X",
        "11010519491231X02X",
        "110105 19491231002X",
        "110105-19491231-002X",
        "11010519491231002Y",
    ],
)
def test_letters_and_separators_inside_are_refused(text: str) -> None:
    refused(lambda: resident_id(text, today=TODAY))


def test_a_leading_zero_is_refused_even_with_a_matching_check_digit() -> None:
    refused(lambda: resident_id(make_id("010105", date(1980, 1, 1), "001"), today=TODAY))


@pytest.mark.parametrize(
    "birth",
    ["20230230", "19990229", "19901301", "19900001", "19900100", "19900431", "00000101"],
)
def test_impossible_birth_dates_are_refused(birth: str) -> None:
    first17 = f"110105{birth}001"
    refused(lambda: resident_id(first17 + check_digit_for(first17), today=TODAY))


def test_a_leap_day_birth_is_accepted() -> None:
    number = make_id("110105", date(2000, 2, 29), "001")
    assert resident_id(number, today=TODAY).birth_date == date(2000, 2, 29)


def test_a_future_birth_date_is_refused() -> None:
    tomorrow = make_id("110105", TODAY + timedelta(days=1), "001")
    refused(lambda: resident_id(tomorrow, today=TODAY))
    refused(lambda: resident_id(make_id("110105", date(2090, 1, 1), "001"), today=TODAY))


def test_a_birth_date_on_today_is_accepted() -> None:
    newborn = make_id("110105", TODAY, "001")
    assert resident_id(newborn, today=TODAY).birth_date == TODAY


def test_birth_dates_before_1900_are_refused() -> None:
    refused(lambda: resident_id(make_id("110105", date(1899, 12, 31), "001"), today=TODAY))
    refused(lambda: resident_id(make_id("110105", date(1800, 6, 1), "001"), today=TODAY))
    assert resident_id(make_id("110105", date(1900, 1, 1), "001"), today=TODAY)


@pytest.mark.parametrize("value", [None, 11010519491231002, b"11010519491231002X", ["x"]])
def test_a_resident_id_that_is_not_text_is_refused(value: Any) -> None:
    refused(lambda: resident_id(value, today=TODAY))


def test_non_ascii_digits_in_a_resident_id_are_refused_or_made_ascii() -> None:
    # Full-width digits (as an IME types them) after an ASCII first digit.
    text = VALID_ID[0] + VALID_ID[1:17].translate(FULL_WIDTH) + VALID_ID[17]
    try:
        checked = resident_id(text, today=TODAY)
    except EbankError as error:
        assert error.code == "INVALID_INPUT"
    else:
        # Accepting it is only right in canonical form: otherwise the same person gets a second
        # look-up hash, and so a second customer record.
        assert checked.number == VALID_ID
        assert checked.region == VALID_ID[:6]


@pytest.mark.parametrize(
    "text",
    [
        VALID_ID[:17] + "1",  # check digit
        VALID_ID[:-1],  # length
        make_id("110105", date(2030, 1, 1), "001"),  # future
        make_id("110105", date(1880, 1, 1), "001"),  # too early
        "110105" + "20230230" + "001" + check_digit_for("11010520230230001"),  # not a date
        "11010519491231ABCD",  # shape
    ],
)
def test_resident_id_errors_never_echo_the_number(text: str) -> None:
    error = refused(lambda: resident_id(text, today=TODAY))
    assert not shows(error, text.strip())
    assert not shows(error, text[6:14])  # nor the birth date


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    region = draw(st.integers(100000, 999999))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.integers(0, 999))
    return make_id(str(region), born, f"{sequence:03d}")


@given(valid_ids())
def test_every_well_built_resident_id_is_accepted(number: str) -> None:
    checked = resident_id(number, today=TODAY)
    assert checked.number == number
    assert f"{checked.birth_date:%Y%m%d}" == number[6:14]
    assert checked.male == (int(number[16]) % 2 == 1)


@given(valid_ids(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_character_change_of_a_resident_id_is_refused(
    number: str, position: int, replacement: str
) -> None:
    if number[position] == replacement:
        replacement = "0123456789X"[("0123456789X".index(replacement) + 1) % 11]
    changed = number[:position] + replacement + number[position + 1 :]
    assert changed != number
    refused(lambda: resident_id(changed, today=TODAY))


# -- unified social credit code --------------------------------------------------------------
def test_a_valid_credit_code_is_returned() -> None:
    assert credit_code(VALID_CODE) == VALID_CODE


@pytest.mark.parametrize("text", ["91350100m000100y43", "  91350100M000100Y43\n"])
def test_credit_code_case_and_surrounding_space_are_normalised(text: str) -> None:
    assert credit_code(text) == VALID_CODE


@pytest.mark.parametrize("wrong", [c for c in USCC_CHARS if c != VALID_CODE[-1]])
def test_a_wrong_credit_check_character_is_refused(wrong: str) -> None:
    refused(lambda: credit_code(VALID_CODE[:17] + wrong))


@pytest.mark.parametrize("letter", "IOZSV")
@pytest.mark.parametrize("position", [0, 8, 12, 17])
def test_letters_outside_gb_32100_are_refused(letter: str, position: int) -> None:
    text = VALID_CODE[:position] + letter + VALID_CODE[position + 1 :]
    refused(lambda: credit_code(text))


def test_letters_in_the_region_digits_are_refused() -> None:
    refused(lambda: credit_code(make_code("9135A100M000100Y4")))


@pytest.mark.parametrize("text", [VALID_CODE[:17], VALID_CODE + "1", "", "9135"])
def test_a_credit_code_of_the_wrong_length_is_refused(text: str) -> None:
    refused(lambda: credit_code(text))


@pytest.mark.parametrize("value", [None, 913501, b"91350100M000100Y43"])
def test_a_credit_code_that_is_not_text_is_refused(value: Any) -> None:
    refused(lambda: credit_code(value))


def test_non_ascii_digits_in_a_credit_code_are_refused_or_made_ascii() -> None:
    text = VALID_CODE[:2] + VALID_CODE[2:8].translate(FULL_WIDTH) + VALID_CODE[8:]
    try:
        code = credit_code(text)
    except EbankError as error:
        assert error.code == "INVALID_INPUT"
    else:
        assert code == VALID_CODE


@pytest.mark.parametrize("text", [VALID_CODE[:17] + "0", VALID_CODE[:17], "9I350100M000100Y43"])
def test_credit_code_errors_never_echo_the_code(text: str) -> None:
    error = refused(lambda: credit_code(text))
    assert not shows(error, text)


@st.composite
def valid_codes(draw: st.DrawFn) -> str:
    head = draw(st.text(USCC_CHARS, min_size=2, max_size=2))
    region = draw(st.text("0123456789", min_size=6, max_size=6))
    body = draw(st.text(USCC_CHARS, min_size=9, max_size=9))
    return make_code(head + region + body)


@given(valid_codes())
def test_every_well_built_credit_code_is_accepted(code: str) -> None:
    assert credit_code(code) == code
    assert credit_code(code.lower()) == code


@given(valid_codes(), st.integers(0, 17), st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
def test_any_single_character_change_of_a_credit_code_is_refused(
    code: str, position: int, replacement: str
) -> None:
    if code[position] == replacement:
        replacement = "1" if replacement == "0" else "0"
    changed = code[:position] + replacement + code[position + 1 :]
    refused(lambda: credit_code(changed))


# -- mobile ----------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["13", "14", "15", "16", "17", "18", "19"])
def test_mobiles_from_13x_to_19x_are_accepted(prefix: str) -> None:
    number = prefix + "800138000"
    assert mobile(number) == number


@pytest.mark.parametrize(
    "text",
    ["+86 138 0013 8000", "+8613800138000", "138-0013-8000", " 13800138000 ", "+86-138-0013-8000"],
)
def test_mobile_formats_are_normalised(text: str) -> None:
    assert mobile(text) == "13800138000"


@pytest.mark.parametrize(
    "text",
    [
        "12800138000",  # 12x
        "11800138000",
        "10800138000",
        "23800138000",
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "1380013800a",
        "abcdefghijk",
        "",
        "+87 138 0013 8000",
        "+86",
        "０１３８００１３８０００",
    ],
)
def test_other_mobiles_are_refused(text: str) -> None:
    error = refused(lambda: mobile(text))
    if text:
        assert not shows(error, text)


@pytest.mark.parametrize("value", [None, 13800138000, b"13800138000"])
def test_a_mobile_that_is_not_text_is_refused(value: Any) -> None:
    refused(lambda: mobile(value))


def test_non_ascii_digits_in_a_mobile_are_refused_or_made_ascii() -> None:
    text = "13" + "800138000".translate(FULL_WIDTH)
    try:
        number = mobile(text)
    except EbankError as error:
        assert error.code == "INVALID_INPUT"
    else:
        assert number == "13800138000"


@given(st.sampled_from("3456789"), st.text("0123456789", min_size=9, max_size=9))
def test_every_eleven_digit_mobile_from_13_to_19_is_accepted(second: str, rest: str) -> None:
    number = "1" + second + rest
    assert mobile(number) == number
    assert mobile("+86 " + number) == number


def test_names_match_whatever_the_spaces_but_nothing_else() -> None:
    assert same_name("李雷", " 李　雷 ")
    assert same_name("Simulated Corp", "SimulatedCorp")
    assert not same_name("李雷", "李蕾")
    assert not same_name("Simulated Corp", "simulated corp")
