"""What a request cost: the provider's own figure where it reports one, else the price list's, whatever the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from ..settings.model import ProviderSettings
from ..pricing import Price, cost_usd, missing_price_warning


def cost_fields(provider: str, model: str, settings: ProviderSettings, pricing: Mapping[str, Price],
                pricing_file: str, reported: Decimal | None, input_tokens: int | None, output_tokens: int | None,
                cached_tokens: int | None) -> tuple[dict[str, Any], tuple[str, ...]]:
    p = settings.price or pricing.get(model)
    fields: dict[str, Any] = {}
    if p is not None:
        fields.update(price_input_per_mtok=p.input, price_cached_input_per_mtok=p.cached_input,
                      price_output_per_mtok=p.output, price_as_of=p.as_of)
    if reported is not None:
        fields.update(cost_usd=reported, cost_source="provider")
    elif p is not None and input_tokens is not None and output_tokens is not None:
        fields.update(cost_usd=cost_usd(p, input_tokens, output_tokens, cached_tokens or 0), cost_source="pricing")
    elif p is None:
        where = "benchmark.toml (input_price, output_price)" if not pricing else f"PRICING in {pricing_file}"
        return fields, (missing_price_warning(provider, model, where),)
    return fields, ()
