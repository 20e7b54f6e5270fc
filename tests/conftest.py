"""Shared fixtures: a fresh simulator per test, provider settings pointed at it, and a temp-dir SQLite file."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarking.config import ProviderSettings, Secret
from benchmarking.providers.groq_provider import call_groq
from benchmarking.providers.openai_provider import call_openai
from benchmarking.providers.openrouter_provider import call_openrouter
from benchmarking.providers.together_provider import call_together
from benchmarking.simulator import ModelProfile, Simulator
from benchmarking.storage.sqlite import SQLiteStorage

# A key shaped like a real one, so that a leak of it into any output is caught.
FAKE_KEY = "sk-test-FAKEkey0123456789abcdefghij"

CALLS = {
    "openai": call_openai,
    "groq": call_groq,
    "together": call_together,
    "openrouter": call_openrouter,
}


@pytest.fixture
def sim():
    with Simulator(profiles={}, default=ModelProfile(ttft_ms=20, itl_ms=2, output_tokens=8)) as simulator:
        yield simulator


def settings_for(sim: Simulator, provider: str, **changes) -> ProviderSettings:
    settings = ProviderSettings(
        name=provider,
        api_key=Secret(FAKE_KEY),
        key_env=f"{provider.upper()}_API_KEY",
        model_hint=f"set {provider.upper()}_MODEL or --model {provider}=MODEL",
        base_url=sim.base_url(provider),
        timeout_s=10.0,
    )
    return replace(settings, **changes)


@pytest.fixture
def storage(tmp_path):
    with SQLiteStorage(tmp_path / "benchmarks.db") as db:
        yield db
