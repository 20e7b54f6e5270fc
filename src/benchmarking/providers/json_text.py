"""A provider's JSON, read as untrusted input: an integer too long for any count is infinity (numbers.py leaves it
empty with a warning), and a lone UTF-16 surrogate escaped in a string is U+FFFD, so that every string is text UTF-8
(and every database) can hold."""

from __future__ import annotations

import json
import re
from typing import Any


def _whole_number(digits: str) -> int | float:
    """A JSON integer; one longer than any count (Python refuses to read past 4,300 digits, which made the whole
    event unreadable) is read as infinity, which providers/numbers.py leaves empty with a warning."""
    return int(digits) if len(digits) <= 40 else float("inf") if not digits.startswith("-") else float("-inf")


# A \\uD800-\\uDFFF escape: JSON allows a lone one, which no UTF-8 text (a stored answer, a database) can hold.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _whole_text(value: Any) -> Any:
    """value with each lone surrogate in its strings (keys too) made U+FFFD; a valid pair is one character already."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_whole_text(k): _whole_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_text(v) for v in value]
    return value


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in text, or None if it is not one; its strings are whole UTF-8 text."""
    try:
        value = json.loads(text, parse_int=_whole_number)
        if _SURROGATE_ESCAPE.search(text):
            value = _whole_text(value)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return None
    return value if isinstance(value, dict) else None
