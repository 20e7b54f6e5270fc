"""CSV cells that a spreadsheet shows as text: stored names and answers are untrusted, and a cell starting with
= + - @ (or a tab or a carriage return) would be run as a formula when the file is opened (OWASP's CSV injection).

Such text cells get a single quote in front; numbers, booleans and empty cells stay as they are (a negative number is
a number, not text, also where it is written as text: exports carry Decimals as exact strings). Imports nothing of
ours.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: object) -> object:
    """The value as a CSV cell that no spreadsheet runs."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_records(records: Iterable[Mapping[str, object]]) -> list[dict[str, object]]:
    """Every text cell of every record made safe (for csv.DictWriter)."""
    return [{name: safe_cell(value) for name, value in record.items()} for record in records]
