"""Prices in USD per 1M tokens, and the Decimal arithmetic that turns token counts into cost."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """One model's list price, USD per 1M tokens, as published on `as_of`.

    Cached reads, cache writes (5-minute, and 1-hour where the provider offers them) are parts of the input, each
    with its own price where the provider publishes one. A long-context tier (`long_context`) is the whole request's
    price once its prompt (every input token: uncached, read and written) is more than `long_context_above` tokens.
    """

    input: Decimal
    output: Decimal
    as_of: str
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None  # a 5-minute write (Anthropic's default), or the provider's one write price
    cache_write_1h: Decimal | None = None  # a 1-hour write (Anthropic)
    long_context_above: int | None = None
    long_context: Price | None = None

    def for_prompt(self, input_tokens: int) -> Price:
        """The price of a request whose prompt is this many tokens: the long-context tier's above its threshold."""
        if self.long_context is not None and self.long_context_above is not None \
                and input_tokens > self.long_context_above:
            return self.long_context
        return self


def _usd(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def price(input: str, output: str, as_of: str, cached_input: str | None = None, cache_write: str | None = None,
          cache_write_1h: str | None = None, long_context: tuple[int, Price] | None = None) -> Price:
    """Build a Price from decimal strings, so that no float rounding enters a PRICING table.

    `long_context` is (threshold in prompt tokens, the Price above it), the latter built by price() too.
    """
    above, tier = long_context if long_context is not None else (None, None)
    return Price(
        input=Decimal(input),
        output=Decimal(output),
        as_of=as_of,
        cached_input=_usd(cached_input),
        cache_write=_usd(cache_write),
        cache_write_1h=_usd(cache_write_1h),
        long_context_above=above,
        long_context=tier,
    )


def cost_usd(p: Price, input_tokens: int, output_tokens: int, cached_tokens: int = 0, cache_write_tokens: int = 0,
             cache_write_1h_tokens: int = 0) -> Decimal:
    """Uncached input, cached reads, 5-minute and 1-hour cache writes and output, each at its price per 1M tokens,
    at the tier the prompt's size falls in (p.for_prompt).

    `cache_write_tokens` counts every write, `cache_write_1h_tokens` the part of them kept for an hour. A price the
    model does not publish falls back to the next one that bills the same tokens: cached reads and 5-minute writes
    to the input price, 1-hour writes to the 5-minute write price. Thinking tokens are in `output_tokens`.
    """
    p = p.for_prompt(input_tokens)
    cached = min(max(cached_tokens, 0), input_tokens)
    written = min(max(cache_write_tokens, 0), input_tokens - cached)
    written_1h = min(max(cache_write_1h_tokens, 0), written)
    cached_rate = p.cached_input if p.cached_input is not None else p.input
    write_rate = p.cache_write if p.cache_write is not None else p.input
    write_1h_rate = p.cache_write_1h if p.cache_write_1h is not None else write_rate
    total = ((input_tokens - cached - written) * p.input + cached * cached_rate
             + (written - written_1h) * write_rate + written_1h * write_1h_rate + output_tokens * p.output)
    return total / MILLION


def upper_bound_usd(p: Price, input_tokens: int, output_tokens: int) -> Decimal:
    """What a request of at most these many tokens can cost: every input token at the dearest input price (a cache
    write costs more than an uncached token), at the tier of its size."""
    p = p.for_prompt(input_tokens)
    dearest = max(rate for rate in (p.input, p.cache_write, p.cache_write_1h) if rate is not None)
    return (input_tokens * dearest + output_tokens * p.output) / MILLION


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
