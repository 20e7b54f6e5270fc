"""OpenAI, through the official `openai` SDK: Chat Completions by default, the Responses API with OPENAI_API=responses
or --api openai=responses."""

from __future__ import annotations

from dataclasses import replace

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from ..pricing import price
from .client import PromptInput, Wire, measure
from .dialects import responses

# USD per 1M tokens. gpt-6-luna is the default: OpenAI names it the replacement of gpt-4o-mini, the MVP's model, which
# shuts down on 2027-01-14 (kept here, with the others, so that old rows can still be priced). gpt-6-luna read on
# 2026-12-07 from https://developers.openai.com/api/docs/models/gpt-6-luna: above 272,000 prompt tokens the whole
# request pays twice the input and cache prices and 1.5x the output price.
PRICING = {
    "gpt-6-luna": price("0.10", "0.50", "2026-12-07", cached_input="0.01", cache_write="0.125",
                        long_context=(272_000, price("0.20", "0.75", "2026-12-07", cached_input="0.02",
                                                     cache_write="0.25"))),
    "gpt-4o-mini": price("0.15", "0.60", "2026-11-28", cached_input="0.075"),
    "gpt-4.1-mini": price("0.40", "1.60", "2026-11-28", cached_input="0.10"),
    "gpt-4.1-nano": price("0.10", "0.40", "2026-11-28", cached_input="0.025"),
}

WIRE = Wire(
    sdk_module="openai",
    client_class="OpenAI",
    httpx_module="httpx2",
    default_base_url="https://api.openai.com/v1",
)

# The same SDK and client, speaking the Responses API (POST /responses).
WIRES = {"chat_completions": WIRE, "responses": replace(WIRE, dialect=responses)}


def wire_for(settings: ProviderSettings) -> Wire:
    """The Wire of the API the settings choose (settings.api), else Chat Completions."""
    return WIRES[settings.api or "chat_completions"]


def call_openai(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    return measure("openai", prompt, model, settings, wire=wire_for(settings), pricing=PRICING,
                   pricing_file=__file__)
