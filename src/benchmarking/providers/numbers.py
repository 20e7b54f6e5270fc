"""Numbers a provider sends (usage, costs, rate-limit headers, a tokenizer's counts), bounded where they come in.

A value that is no number, or one outside a sane range, is no measurement: it is left empty (NULL) with a warning,
never stored as sent. A count of 3,000,000,000 tokens cannot be true, and no database column holds every integer:
PostgreSQL's integer stops at 2^31 - 1, SQLite's at 2^63 - 1, and a row that a database refuses would be lost.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

# More tokens than any answer or context holds, and more than any rate limit counts; within a 32-bit integer.
MAX_COUNT = 1_000_000_000
# More than any one request can cost.
MAX_COST_USD = Decimal(1_000_000)
# Finer than any price is given: a provider's cost is kept to this many decimal places.
COST_PLACES = Decimal("1e-20")


def whole_count(value: Any) -> int | None:
    """A whole number from 0 to MAX_COUNT (1.0 counts as 1), else None: fractions, negatives, NaN and infinities,
    strings, booleans, lists and objects are no counts."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        return None
    return value


def text_count(text: str | None) -> int | None:
    """A count written in ASCII digits (a header), else None: '²' and other Unicode digits are not read."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_COUNT)):
        return None
    return whole_count(int(text))


def usage_count(usage: Mapping[str, Any] | None, path: tuple[str, ...], problems: list[str]) -> int | None:
    """The token count at `path` in a usage object, or None (with a problem noted if one was sent but makes no
    sense)."""
    value: Any = usage
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    if value is None:
        return None
    count = whole_count(value)
    if count is None:
        problems.append(f"usage {'.'.join(path)} = {_shown(value)} is not a token count: left empty")
    return count


def usd_amount(value: Any) -> Decimal | None:
    """An amount of USD from 0 to MAX_COST_USD, from a JSON number or a numeric string, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or isinstance(value, str) and \
            len(value) > 100:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or not 0 <= amount <= MAX_COST_USD:
        return None
    if amount.as_tuple().exponent < COST_PLACES.as_tuple().exponent:  # type: ignore[operator]
        amount = amount.quantize(COST_PLACES)
    return amount


def provider_cost(usage: Mapping[str, Any] | None, problems: list[str]) -> Decimal | None:
    """The cost the provider reported (OpenRouter), in USD; with bring-your-own-key, its fee plus the upstream's."""
    if usage is None or "cost" not in usage:
        return None
    total = Decimal(0)
    details = usage.get("cost_details")
    parts = [("cost", usage.get("cost"))]
    if usage.get("is_byok") and isinstance(details, Mapping):
        parts.append(("cost_details.upstream_inference_cost", details.get("upstream_inference_cost")))
    for name, value in parts:
        amount = usd_amount(value)
        if amount is None:
            problems.append(f"usage {name} = {_shown(value)} is not an amount of USD: cost left to the price list")
            return None
        total += amount
    return total if total <= MAX_COST_USD else None


def _shown(value: Any) -> str:
    """The value as a warning shows it: short, whatever was sent (a list nested thousands deep, a long string)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deep; an int too long for repr
        text = f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def part_of(part: int | None, whole: int | None, names: tuple[str, str], problems: list[str]) -> int | None:
    """A count that is part of another (cached of prompt tokens, reasoning of output tokens), or None (with a
    problem noted) where it is larger than the whole: one of the two is wrong, and the part is what no bill may rest
    on. (A recorded OpenRouter answer capped at 10 tokens counts 11 reasoning beside 10 completion tokens: one of
    its counts is wrong, as OpenAI defines reasoning_tokens as a part of completion_tokens.)"""
    if part is not None and whole is not None and part > whole:
        problems.append(f"usage {names[0]} = {part} is more than {names[1]} = {whole}: left empty")
        return None
    return part
