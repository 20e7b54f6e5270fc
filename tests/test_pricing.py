"""Cost in Decimal: uncached, cached and output tokens priced apart; unknown models cost NULL, never 0."""

from __future__ import annotations

from decimal import Decimal

import pytest

from benchmarking.pricing import cost_usd, price
from benchmarking.providers import gemini_provider, groq_provider, openai_provider, openrouter_provider, together_provider
from benchmarking.simulator import ModelProfile

from conftest import CALLS, settings_for


def test_cost_prices_uncached_cached_and_output_tokens_separately():
    p = price("0.15", "0.60", "2026-11-28", cached_input="0.075")
    # 1000 uncached * 0.15 + 200 cached * 0.075 + 500 out * 0.60, per 1M tokens
    assert cost_usd(p, input_tokens=1200, output_tokens=500, cached_tokens=200) == Decimal("0.000465")


def test_cached_tokens_without_a_cached_price_pay_the_input_price():
    p = price("0.59", "0.79", "2026-11-28")
    assert cost_usd(p, 1000, 1000, cached_tokens=400) == Decimal("0.00138")


def test_decimal_arithmetic_has_no_float_residue():
    p = price("0.1", "0.2", "2026-11-28")
    assert cost_usd(p, 3, 3) == Decimal("9E-7")
    assert str(cost_usd(p, 1_000_000, 0)) == "0.1"


def test_every_default_and_mvp_model_has_a_dated_price():
    from benchmarking.benchmark_runner import PROVIDERS

    tables = {"openai": openai_provider.PRICING, "groq": groq_provider.PRICING,
              "together": together_provider.PRICING, "openrouter": openrouter_provider.PRICING,
              "gemini": gemini_provider.PRICING}
    for name, _, model in PROVIDERS:
        assert model in tables[name], f"{name} default {model} has no price"
    for name, model in [("groq", "llama-3.1-8b-instant"), ("together", "mistralai/Mixtral-8x7B-Instruct-v0.1")]:
        assert model in tables[name], f"the MVP's {model} must stay priced for old rows"
    for table in tables.values():
        for p in table.values():
            assert len(p.as_of) == 10 and p.input >= 0 and p.output >= 0


def test_measured_cost_uses_the_reported_tokens_and_stores_the_prices_used(sim):
    sim.set_profile("gpt-4o-mini", ModelProfile(ttft_ms=5, itl_ms=1, output_tokens=500, tokens_per_chunk=50,
                                                input_tokens=1200, cached_tokens=200))
    m = CALLS["openai"]("hello", "gpt-4o-mini", settings_for(sim, "openai", max_tokens=1000))
    assert (m.input_tokens, m.cached_tokens, m.output_tokens) == (1200, 200, 500)
    assert m.cost_usd == Decimal("0.000465")
    assert m.cost_source == "pricing"
    assert (m.price_input_per_mtok, m.price_cached_input_per_mtok, m.price_output_per_mtok) == (
        Decimal("0.15"), Decimal("0.075"), Decimal("0.60"))
    assert m.price_as_of == "2026-11-28"


def test_openrouter_reported_cost_is_preferred_and_marked(sim):
    sim.set_profile("openai/gpt-4o-mini", ModelProfile(ttft_ms=5, itl_ms=1, output_tokens=4,
                                                       cost_usd=Decimal("0.00123")))
    m = CALLS["openrouter"]("hello", "openai/gpt-4o-mini", settings_for(sim, "openrouter"))
    assert (m.cost_usd, m.cost_source) == (Decimal("0.00123"), "provider")
    assert m.price_input_per_mtok == Decimal("0.15")  # the list price is still kept beside it


@pytest.mark.parametrize("provider", ["openai", "groq"])
def test_unknown_model_has_no_cost_and_a_warning_saying_where_to_add_it(sim, provider):
    m = CALLS[provider]("hello", "brand-new-model", settings_for(sim, provider))
    assert m.success and m.output_tokens == 8
    assert m.cost_usd is None and m.cost_source is None and m.price_input_per_mtok is None
    assert len(m.warnings) == 1
    assert "brand-new-model" in m.warnings[0]
    assert f"providers/{provider}_provider.py" in m.warnings[0]


def test_custom_endpoint_price_comes_from_its_settings(sim):
    from benchmarking.providers.custom_provider import call_custom

    settings = settings_for(sim, "openai", name="local", price=price("1", "2", "2026-11-01"))
    m = call_custom("hello", "whatever", settings)
    assert m.provider == "local"
    assert m.cost_usd == Decimal(m.input_tokens * 1 + 8 * 2) / Decimal(1_000_000)


def test_custom_endpoint_without_price_warns_about_benchmark_toml(sim):
    from benchmarking.providers.custom_provider import call_custom

    m = call_custom("hello", "whatever", settings_for(sim, "openai", name="local"))
    assert m.cost_usd is None
    assert "benchmark.toml" in m.warnings[0]
