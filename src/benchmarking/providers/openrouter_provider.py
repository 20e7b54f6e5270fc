"""OpenRouter, through the `openai` SDK at its OpenAI-compatible endpoint, with attribution headers."""

from __future__ import annotations

from dataclasses import replace

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from ..pricing import price
from .client import PromptInput, Wire, measure

# USD per 1M tokens, used only when OpenRouter's own usage.cost is missing (it is preferred: cost_source='provider').
# openai/gpt-6-luna is the default (OpenAI's prices, which OpenRouter passes on); openai/gpt-4o-mini, the MVP's, follows
# OpenAI's shutdown on 2027-01-14 and stays priced for old rows.
PRICING = {
    "openai/gpt-6-luna": price("0.10", "0.50", "2026-12-07", cached_input="0.01"),
    "openai/gpt-4o-mini": price("0.15", "0.60", "2026-11-28"),
}

# Shutdown dates OpenRouter's GET /models does not announce: those of the upstream provider's models it passes on.
SHUTDOWNS = {"openai/gpt-4o-mini": "2027-01-14"}

ATTRIBUTION_HEADERS = (("X-OpenRouter-Title", "Benchmark Engine"), ("X-Title", "Benchmark Engine"))

WIRE = Wire(
    sdk_module="openai",
    client_class="OpenAI",
    httpx_module="httpx2",
    default_base_url="https://openrouter.ai/api/v1",
)


def call_openrouter(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    settings = replace(settings, headers=ATTRIBUTION_HEADERS + settings.headers)
    return measure("openrouter", prompt, model, settings, wire=WIRE, pricing=PRICING, pricing_file=__file__)
