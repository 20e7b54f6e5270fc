"""Anthropic, through the official `anthropic` SDK, in its own API (Messages)."""

from __future__ import annotations

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from .anthropic_prices import DEFAULT_MODEL, PRICING
from .client import PromptInput, Wire, measure
from .dialects import messages

__all__ = ["DEFAULT_MODEL", "PRICING", "WIRE", "call_anthropic"]

WIRE = Wire(
    sdk_module="anthropic",
    client_class="Anthropic",
    httpx_module="httpx2",
    default_base_url="https://api.anthropic.com",
    api_root="/v1",  # the SDK posts to {base}/v1/messages and lists models at {base}/v1/models
    usage_request="none",  # usage comes in message_start and message_delta unasked
    dialect=messages,
)


def call_anthropic(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    return measure("anthropic", prompt, model, settings, wire=WIRE, pricing=PRICING, pricing_file=__file__)
