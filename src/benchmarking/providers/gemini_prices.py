"""Gemini's prices and default model (a minimal table until the pricing work lands: see README's provider table).

USD per 1M tokens for prompts up to 200k tokens, from ai.google.dev/gemini-api/docs/pricing (standard tier, text),
as read on 2026-12-07. Thinking tokens are billed as output.
"""

from __future__ import annotations

from ..pricing import price

# A small, fast model: the one a user comparing cheap models would pick.
DEFAULT_MODEL = "gemini-2.5-flash-lite"

PRICING = {
    "gemini-2.5-flash-lite": price("0.10", "0.40", "2026-12-07", cached_input="0.01"),
    "gemini-2.5-flash": price("0.30", "2.50", "2026-12-07", cached_input="0.03"),
}
