"""Each built-in provider's module, by name, and what is read from it: its PRICING, the Wire (SDK and API) its
requests go through, the model name as its API spells it. Any other name is a benchmark.toml endpoint."""

from __future__ import annotations

from types import ModuleType

from ..settings.model import ProviderSettings
from . import anthropic_provider, custom_provider, gemini_provider, groq_provider, openai_provider
from . import openrouter_provider, together_provider
from .client import Wire

PROVIDER_MODULES: dict[str, ModuleType] = {
    "openai": openai_provider,
    "groq": groq_provider,
    "together": together_provider,
    "openrouter": openrouter_provider,
    "anthropic": anthropic_provider,
    "gemini": gemini_provider,
}


def provider_module(name: str) -> ModuleType:
    return PROVIDER_MODULES.get(name, custom_provider)


def provider_wire(name: str, settings: ProviderSettings) -> Wire:
    """The Wire a provider's requests go through: the one of the API its settings choose, where it speaks several
    (its module's wire_for), else its module's WIRE."""
    module = provider_module(name)
    wire_for = getattr(module, "wire_for", None)
    return wire_for(settings) if wire_for is not None else module.WIRE


def model_name(settings: ProviderSettings, model: str) -> str:
    """A model as its API's listings and prices name it, however it was written (Gemini's with or without
    `models/`): the name planned, priced, checked and stored."""
    return getattr(provider_wire(settings.name, settings).dialect, "bare_model", str)(model)
