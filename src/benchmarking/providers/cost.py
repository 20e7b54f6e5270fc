"""What a request cost: the provider's own figure where it reports one, else the price list's, whatever the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from ..settings.model import ProviderSettings
from ..pricing import Price, cost_usd, missing_price_warning
from .answer import Tokens


def cost_fields(provider: str, model: str, settings: ProviderSettings, pricing: Mapping[str, Price],
                pricing_file: str, counts: Tokens, billable: bool = True) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The row's cost and the prices it used: those of the tier the prompt's size falls in (long context).

    `billable`: every count the bill rests on made sense. Where one did not (it was left empty), the price list's
    cost is left empty too: pricing the rest would bill the missing part at another rate, a guess stored as a cost.
    """
    listed = settings.price or pricing.get(model)
    input_tokens, output_tokens = counts.input_tokens, counts.output_tokens
    p = listed.for_prompt(input_tokens) if listed is not None and input_tokens is not None else listed
    fields: dict[str, Any] = {}
    if p is not None:
        fields.update(price_input_per_mtok=p.input, price_cached_input_per_mtok=p.cached_input,
                      price_cache_write_per_mtok=p.cache_write, price_output_per_mtok=p.output, price_as_of=p.as_of)
    reported: Decimal | None = counts.reported_cost_usd
    if reported is not None:
        fields.update(cost_usd=reported, cost_source="provider")
    elif listed is not None and input_tokens is not None and output_tokens is not None:
        if not billable:
            return fields, (f"{provider}: cost left empty: a token count it rests on makes no sense",)
        cost = cost_usd(listed, input_tokens, output_tokens, counts.cached_tokens or 0, counts.cache_write_tokens or 0,
                        counts.cache_write_1h_tokens or 0)
        fields.update(cost_usd=cost, cost_source="pricing")
    elif listed is None:
        where = "benchmark.toml (input_price, output_price)" if not pricing else f"PRICING in {pricing_file}"
        return fields, (missing_price_warning(provider, model, where),)
    return fields, ()
