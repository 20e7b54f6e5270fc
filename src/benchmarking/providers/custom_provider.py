"""Any OpenAI-compatible endpoint declared in benchmark.toml (vLLM, Ollama, llama.cpp, Fireworks, DeepSeek, ...)."""

from __future__ import annotations

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from ..pricing import Price
from .client import PromptInput, Wire, measure

# Prices for these endpoints come from benchmark.toml (input_price, output_price), not from here.
PRICING: dict[str, Price] = {}

# Servers differ in what they accept: send only standard fields, and treat missing usage as missing.
WIRE = Wire(
    sdk_module="openai",
    client_class="OpenAI",
    httpx_module="httpx2",
    default_base_url="http://127.0.0.1:8000/v1",
)


def call_custom(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    return measure(settings.name, prompt, model, settings, wire=WIRE, pricing=PRICING, pricing_file=__file__)
