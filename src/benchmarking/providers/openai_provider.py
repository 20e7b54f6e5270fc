"""OpenAI, through the official `openai` SDK."""

from __future__ import annotations

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from ..pricing import price
from .client import PromptInput, Wire, measure

# USD per 1M tokens. gpt-4o-mini was the MVP's model and stays the default until OpenAI shuts it down (2027-01-14).
PRICING = {
    "gpt-4o-mini": price("0.15", "0.60", "2026-11-28", cached_input="0.075"),
    "gpt-4.1-mini": price("0.40", "1.60", "2026-11-28", cached_input="0.10"),
    "gpt-4.1-nano": price("0.10", "0.40", "2026-11-28", cached_input="0.025"),
    "gpt-6-luna": price("0.10", "0.50", "2026-11-28"),
}

WIRE = Wire(
    sdk_module="openai",
    client_class="OpenAI",
    httpx_module="httpx2",
    default_base_url="https://api.openai.com/v1",
)


def call_openai(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    return measure("openai", prompt, model, settings, wire=WIRE, pricing=PRICING, pricing_file=__file__)
