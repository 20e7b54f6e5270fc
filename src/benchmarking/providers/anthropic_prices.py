"""Anthropic's list prices, USD per 1M tokens, and the default model.

A stand-in until the pricing work lands (cache writes at 1.25x and 2x input, long context): prices from Anthropic's
pricing page (https://platform.claude.com/docs/en/about-claude/pricing) as quoted, with that page named as their
source, by the synaps crate's pricing module (docs.rs/synaps 0.10.2, verified there 2026-10-10).
"""

from __future__ import annotations

from ..pricing import price

DEFAULT_MODEL = "claude-haiku-4-5"

PRICING = {
    "claude-haiku-4-5": price("1.00", "5.00", "2026-10-10", cached_input="0.10"),
}
