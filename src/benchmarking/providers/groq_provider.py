"""Groq, through the official `groq` SDK (which appends /openai/v1 to its base URL)."""

from __future__ import annotations

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from ..pricing import price
from .client import PromptInput, Wire, measure

# USD per 1M tokens. The llama models were the MVP's; Groq decommissioned them on 2026-08-16 (kept for old rows).
PRICING = {
    "openai/gpt-oss-20b": price("0.075", "0.30", "2026-11-28"),
    "openai/gpt-oss-120b": price("0.15", "0.60", "2026-11-28"),
    "llama-3.1-8b-instant": price("0.05", "0.08", "2026-11-28"),
    "llama-3.3-70b-versatile": price("0.59", "0.79", "2026-11-28"),
}

# groq's create() rejects stream_options= as a keyword; the API takes it in the body.
WIRE = Wire(
    sdk_module="groq",
    client_class="Groq",
    httpx_module="httpx",
    default_base_url="https://api.groq.com",
    api_root="/openai/v1",
    usage_request="extra_body",
)


def call_groq(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    return measure("groq", prompt, model, settings, wire=WIRE, pricing=PRICING, pricing_file=__file__)
