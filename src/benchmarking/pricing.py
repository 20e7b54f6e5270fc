"""Prices in USD per 1M tokens, and the Decimal arithmetic that turns token counts into cost."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """One model's list price, USD per 1M tokens, as published on `as_of`."""

    input: Decimal
    output: Decimal
    as_of: str
    cached_input: Decimal | None = None


def price(input: str, output: str, as_of: str, cached_input: str | None = None) -> Price:
    """Build a Price from decimal strings, so that no float rounding enters a PRICING table."""
    return Price(
        input=Decimal(input),
        output=Decimal(output),
        as_of=as_of,
        cached_input=Decimal(cached_input) if cached_input is not None else None,
    )


def cost_usd(p: Price, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Decimal:
    """(input - cached) * input + cached * cached_input + output * output, all per 1M tokens.

    A model without a cached-input price bills cached tokens at the full input price.
    """
    cached = min(max(cached_tokens, 0), input_tokens)
    cached_rate = p.cached_input if p.cached_input is not None else p.input
    total = (input_tokens - cached) * p.input + cached * cached_rate + output_tokens * p.output
    return total / MILLION


def missing_price_warning(provider: str, model: str, where: str) -> str:
    """The one line shown when a model has no price, saying where to add it."""
    return f"no price for {provider} model {model!r}: cost left empty; add its price to {where}"


TINY_USD = Decimal("1e-9")  # below a billionth of a dollar, a row of zeros says less than an exponent


def format_usd(amount: Decimal) -> str:
    """$1.50, $0.0421, $0.000034: enough decimals to show the first few digits that are not zero; below TINY_USD
    three significant digits and an exponent ($1e-30), never a row of zeros nor $0.00 for what is not 0."""
    if amount >= 1 or amount == 0:
        return f"${amount:.2f}"
    if abs(amount) < TINY_USD:
        return f"${amount:.3g}"
    text = f"{amount:.{max(2, -amount.adjusted() + 2)}f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"
