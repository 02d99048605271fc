"""Amounts in 大写 as the PBOC's rules for bills and vouchers have them written: a table checked
by hand (the rules' own examples among them) and, over random amounts, agreement with an
independent reference that writes every digit and place and then strips the zeros by rule."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR
from ebank.receipts.models import ReceiptView
from ebank.receipts.words import capital_amount

CASES = [
    (1, "壹分"),  # 0.01
    (5, "伍分"),
    (10, "壹角整"),  # 0.10
    (30, "叁角整"),
    (99, "玖角玖分"),
    (100, "壹元整"),
    (105, "壹元零伍分"),
    (110, "壹元壹角整"),
    (1_000, "壹拾元整"),  # 10.00: 壹拾, never 拾
    (1_001, "壹拾元零壹分"),
    (1_500, "壹拾伍元整"),
    (2_000, "贰拾元整"),
    (10_000, "壹佰元整"),
    (10_005, "壹佰元零伍分"),  # 100.05
    (10_100, "壹佰零壹元整"),
    (11_000, "壹佰壹拾元整"),
    (100_010, "壹仟元壹角整"),
    (100_400, "壹仟零肆元整"),  # 1004.00
    (123_450, "壹仟贰佰叁拾肆元伍角整"),
    (140_950, "壹仟肆佰零玖元伍角整"),  # the rules' example 1,409.50
    (600_714, "陆仟零柒元壹角肆分"),  # 6,007.14: a run of zeros is one 零
    (168_032, "壹仟陆佰捌拾元叁角贰分"),  # 1,680.32: rule 3, written without 零
    (32_504, "叁佰贰拾伍元零肆分"),  # 325.04: 角 zero, 分 not: 零 after 元
    (1_640_902, "壹万陆仟肆佰零玖元零贰分"),  # 16,409.02
    (10_700_053, "壹拾万柒仟元伍角叁分"),  # 107,000.53: rule 3 again
    (1_000_000, "壹万元整"),
    (1_000_100, "壹万零壹元整"),
    (1_001_000, "壹万零壹拾元整"),
    (1_010_000, "壹万零壹佰元整"),
    (1_100_000, "壹万壹仟元整"),
    (6_000_006, "陆万元零陆分"),
    (10_000_000, "壹拾万元整"),  # 100000.00
    (10_001_001, "壹拾万零壹拾元零壹分"),  # 100010.01
    (10_101_010, "壹拾万壹仟零壹拾元壹角整"),
    (100_000_000, "壹佰万元整"),
    (300_000_040, "叁佰万元肆角整"),
    (1_000_000_000, "壹仟万元整"),  # 10,000,000.00
    (1_000_000_100, "壹仟万零壹元整"),
    (1_000_050_000, "壹仟万零伍佰元整"),
    (10_000_000_000, "壹亿元整"),
    (10_000_000_100, "壹亿零壹元整"),
    (10_001_000_000, "壹亿零壹万元整"),  # 100,010,000.00: across 亿, one 零
    (11_000_000_000, "壹亿壹仟万元整"),
    (20_000_000_020, "贰亿元贰角整"),
    (100_000_000_000, "壹拾亿元整"),  # 1,000,000,000.00
    (100_000_000_100, "壹拾亿零壹元整"),
    (100_000_100_000, "壹拾亿零壹仟元整"),  # a 万 group of zeros between digits: one 零
    (100_001_000_000, "壹拾亿零壹万元整"),
    (1_000_000_000_000, "壹佰亿元整"),
    (12_345_678_901_234, "壹仟贰佰叁拾肆亿伍仟陆佰柒拾捌万玖仟零壹拾贰元叁角肆分"),
    (MAX_MINOR - 1, "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    (MAX_MINOR, "壹万亿元整"),  # the largest amount the ledger takes: 1,000,000,000,000.00
]
DIGITS = "零壹贰叁肆伍陆柒捌玖"


@pytest.mark.parametrize(("fen", "words"), CASES)
def test_amounts_are_written_as_banks_write_them(fen: int, words: str) -> None:
    assert capital_amount(fen) == words


def test_the_table_is_long_enough_to_mean_something() -> None:
    assert len(CASES) >= 40 and len({fen for fen, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", [0, -1, -100, MAX_MINOR + 1, True, 1.5, "100", None])
def test_no_capital_amount_for_nothing_a_negative_too_much_or_a_non_integer(bad: object) -> None:
    with pytest.raises(EbankError) as caught:
        capital_amount(bad)  # type: ignore[arg-type]
    assert caught.value.code == "INVALID_AMOUNT"


def test_the_words_on_a_receipt_put_renminbi_right_before_the_numerals() -> None:
    view = ReceiptView("R1", 123_450, "CNY", None, "", "", "", "", "")  # type: ignore[arg-type]
    assert view.amount_in_words == "人民币壹仟贰佰叁拾肆元伍角整"


# -- an independent reference ---------------------------------------------------------------
def reference(fen: int) -> str:
    """Every digit with its place and group unit, then the zeros dealt with as text."""
    yuan, jiao, cent = fen // 100, fen // 10 % 10, fen % 10
    spelled = ""
    for position, digit in enumerate(reversed(str(yuan))):
        group = "" if position % 4 or not position else "万亿万"[position // 4 - 1]
        spelled = DIGITS[int(digit)] + ("", "拾", "佰", "仟")[position % 4] + group + spelled
    spelled = re.sub("零+", "零", re.sub("零[拾佰仟]", "零", spelled))
    spelled = spelled.replace("亿零万", "亿零")  # a 万 group of zeros between: one 零
    spelled = re.sub("零([万亿])", r"\1", spelled)  # zeros closing a group are silent
    spelled = re.sub("零+", "零", spelled).rstrip("零") or "零"
    text = f"{spelled}元{DIGITS[jiao]}角{DIGITS[cent]}分"
    text = re.sub("零角零分$", "整", text)
    text = re.sub("零分$", "整", text)
    text = text.replace("零角", "零")
    if text.startswith("零元"):
        text = text.removeprefix("零元").removeprefix("零")
    return text


def test_the_reference_agrees_with_the_table() -> None:
    assert [reference(fen) for fen, _ in CASES] == [words for _, words in CASES]


# Amounts full of zeros, where the rules bite, as well as any amount at all.
zero_heavy = st.lists(st.sampled_from("0000123456789"), min_size=1, max_size=15).map(
    lambda digits: int("".join(digits))
)


@given(st.one_of(st.integers(1, MAX_MINOR), zero_heavy.filter(lambda n: 0 < n <= MAX_MINOR)))
def test_any_amount_is_written_as_the_reference_writes_it(fen: int) -> None:
    assert capital_amount(fen) == reference(fen)
