"""Together AI, through the official `together` SDK (3.x appends /v1/chat/completions to its base URL)."""

from __future__ import annotations

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from ..pricing import price
from .client import PromptInput, Wire, measure

# USD per 1M tokens. Mixtral-8x7B was the MVP's model; Together deprecated it on 2026-04-16 (kept for old rows).
PRICING = {
    "openai/gpt-oss-120b": price("0.15", "0.60", "2026-11-28"),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": price("0.60", "0.60", "2026-11-28"),
    "meta-llama/Llama-3.3-70B-Instruct-Turbo": price("0.88", "0.88", "2026-11-28"),
}

# Together's create() has no stream_options argument, and the API sends usage on the last chunk unasked.
# The SDK's own default sends chat to api-inference.together.ai; we name that host so the warm-up reaches it too.
WIRE = Wire(
    sdk_module="together",
    client_class="Together",
    httpx_module="httpx",
    default_base_url="https://api-inference.together.ai",
    api_root="/v1",
    usage_request="none",
)


def call_together(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    return measure("together", prompt, model, settings, wire=WIRE, pricing=PRICING, pricing_file=__file__)
