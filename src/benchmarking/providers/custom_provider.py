"""Any endpoint declared in benchmark.toml (vLLM, Ollama, llama.cpp, Fireworks, DeepSeek, LiteLLM, a proxy, ...), in
the API its `api = ...` names: Chat Completions by default."""

from __future__ import annotations

from dataclasses import replace
import importlib

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from ..pricing import Price
from .client import PromptInput, Wire, measure
from .dialects import dialect_named

# Prices for these endpoints come from benchmark.toml (input_price, output_price), not from here.
PRICING: dict[str, Price] = {}

# Servers differ in what they accept: send only standard fields, and treat missing usage as missing.
WIRE = Wire(
    sdk_module="openai",
    client_class="OpenAI",
    httpx_module="httpx2",
    default_base_url="http://127.0.0.1:8000/v1",
)

# The provider module whose SDK speaks each API that the openai SDK does not: its WIRE (SDK, client, paths) is used
# with the endpoint's base URL.
NATIVE_SDK_MODULES = {"messages": "anthropic_provider", "generate_content": "gemini_provider"}


def wire_for(settings: ProviderSettings) -> Wire:
    """The Wire of the endpoint's API (settings.api): the openai SDK for Chat Completions and Responses, the API's
    own SDK for the others."""
    api = settings.api or "chat_completions"
    if api in NATIVE_SDK_MODULES:
        wire: Wire = importlib.import_module(f"{__package__}.{NATIVE_SDK_MODULES[api]}").WIRE
        return wire
    return WIRE if api == WIRE.dialect.API else replace(WIRE, dialect=dialect_named(api))


def call_custom(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    return measure(settings.name, prompt, model, settings, wire=wire_for(settings), pricing=PRICING,
                   pricing_file=__file__)
