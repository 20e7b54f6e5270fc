"""Google's Gemini API list prices (USD per 1M tokens, paid tier, text input) and the default model of `gemini`.

Read on 2026-12-07 from https://ai.google.dev/gemini-api/docs/pricing (as transcribed on 2026-10-07 and in the
model pages that quote it). Output prices include thinking tokens (Gemini counts thoughts apart from candidates;
both are billed as output). Pro models bill the whole request at a higher tier once the prompt is over 200,000
tokens; Flash and Flash-Lite are one price across their context. Gemini 2.5 models were shut down on 2026-10-16.
"""

from __future__ import annotations

from ..pricing import price

AS_OF = "2026-12-07"

# The newest stable Flash-Lite: Google's fastest, cheapest Gemini model, thinking off unless asked for.
DEFAULT_MODEL = "gemini-3.5-flash-lite"

PRICING = {
    "gemini-3.5-flash-lite": price("0.30", "2.50", AS_OF, cached_input="0.03"),
    "gemini-3.1-flash-lite": price("0.25", "1.50", AS_OF, cached_input="0.025"),
    "gemini-3.5-flash": price("1.50", "9.00", AS_OF),
    "gemini-3.1-pro-preview": price("2.00", "12.00", AS_OF,
                                    long_context=(200_000, price("4.00", "18.00", AS_OF))),
}
# The API names a model `models/<id>` as well as `<id>`; a model given either way is priced.
PRICING.update({f"models/{model}": p for model, p in list(PRICING.items())})
