"""Files the bank hands out that people open in a spreadsheet (CSV).

Every such file is written by `csv_text`, which passes every cell through `safe_cell`: a cell
that a spreadsheet would run as a formula (CSV injection) is made text, whoever typed it.
"""

import csv
import io
import re
from collections.abc import Iterable

NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # an amount or a count: a spreadsheet's number


def safe_cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula: one that starts like a
    formula is prefixed with an apostrophe, unless it is a plain number ("-12.50", a refund's
    amount, is a number, not a formula)."""
    if NUMBER.fullmatch(text):
        return text
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """Rows as CSV with CRLF line ends, each cell as text (None as empty) made safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell("" if cell is None else str(cell)) for cell in row])
    return out.getvalue()
