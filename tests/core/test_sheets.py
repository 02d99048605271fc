"""The one writer of the CSV files the bank hands out: every cell that a spreadsheet would run
as a formula comes out as text; numbers, negative amounts included, stay numbers."""

import csv
import io

import pytest

from ebank.core.sheets import csv_text, safe_cell


@pytest.mark.parametrize(
    "cell", ["=1+2", "+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "\r=1", "-", "-1e3"]
)
def test_a_cell_that_starts_like_a_formula_is_text(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-12.50", "0", "1234.50", "42", "张三", "", "6217 0000"])
def test_numbers_and_plain_text_are_left_as_they_are(cell: str) -> None:
    assert safe_cell(cell) == cell


def test_every_cell_of_every_row_goes_through_the_check() -> None:
    text = csv_text([["name", "amount"], ['=HYPERLINK("x")', -1250], [None, "@x"]])
    assert text.endswith("\r\n") and text.count("\r\n") == 3
    assert list(csv.reader(io.StringIO(text))) == [
        ["name", "amount"], ["'=HYPERLINK(\"x\")", "-1250"], ["", "'@x"],
    ]  # fmt: skip
