"""OpenRouter, through the `openai` SDK at its OpenAI-compatible endpoint, with attribution headers."""

from __future__ import annotations

from dataclasses import replace

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from ..pricing import price
from .client import PromptInput, Wire, measure

# USD per 1M tokens, used only when OpenRouter's own usage.cost is missing (it is preferred: cost_source='provider').
PRICING = {
    "openai/gpt-4o-mini": price("0.15", "0.60", "2026-11-28"),
}

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
