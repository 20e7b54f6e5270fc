"""Anthropic's list prices (USD per 1M tokens) and the default model of provider `anthropic`.

Read on 2026-12-07 from https://platform.claude.com/docs/en/about-claude/pricing (model pricing table) and
https://platform.claude.com/docs/en/models/haiku-5-5/overview (Haiku 5.5's two tiers). A 5-minute cache write is
1.25x the input price, a 1-hour write 2x, a cache read 0.1x; Haiku 5.5 bills the whole request at its higher tier
once the prompt (cache reads and writes included) is over 100,000 tokens. Thinking tokens are billed as output.
"""

from __future__ import annotations

from ..pricing import price

AS_OF = "2026-12-07"

# The smallest and fastest current Claude model: what a user comparing fast, cheap models picks.
DEFAULT_MODEL = "claude-haiku-5-5"

_HAIKU_4_5 = price("1", "5", AS_OF, cached_input="0.10", cache_write="1.25", cache_write_1h="2")

PRICING = {
    "claude-haiku-5-5": price(
        "0.10", "0.50", AS_OF, cached_input="0.01", cache_write="0.125", cache_write_1h="0.20",
        long_context=(100_000, price("0.50", "2.50", AS_OF, cached_input="0.05", cache_write="0.625",
                                     cache_write_1h="1")),
    ),
    "claude-haiku-4-5": _HAIKU_4_5,
    "claude-haiku-4-5-20251001": _HAIKU_4_5,
}
