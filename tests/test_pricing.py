"""Cost in Decimal: uncached, cached and output tokens priced apart; unknown models cost NULL, never 0."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, strategies as st
import pytest

from benchmarking.pricing import cost_usd, price, upper_bound_usd
from benchmarking.providers import (
    anthropic_prices, gemini_prices, groq_provider, openai_provider, openrouter_provider, together_provider,
)
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
              "anthropic": anthropic_prices.PRICING, "gemini": gemini_prices.PRICING}
    defaults = [(name, model) for name, _, model in PROVIDERS] + [
        ("anthropic", anthropic_prices.DEFAULT_MODEL), ("gemini", gemini_prices.DEFAULT_MODEL)]
    for name, model in defaults:
        assert model in tables[name], f"{name} default {model} has no price"
    # gpt-4o-mini shuts down on 2027-01-14: no default may be a model that stops answering
    assert not {model for _, model in defaults} & {"gpt-4o-mini", "openai/gpt-4o-mini"}
    for name, model in [("groq", "llama-3.1-8b-instant"), ("together", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
                        ("openai", "gpt-4o-mini"), ("openrouter", "openai/gpt-4o-mini")]:
        assert model in tables[name], f"the MVP's {model} must stay priced for old rows"
    for table in tables.values():
        for p in table.values():
            for tier in (p, p.long_context) if p.long_context else (p,):
                assert len(tier.as_of) == 10 and tier.input >= 0 and tier.output >= 0
            if p.long_context:  # dearer above the threshold, never cheaper
                assert p.long_context_above > 0 and p.long_context.input > p.input
                assert p.long_context.output >= p.output


def test_anthropic_cache_prices_are_the_published_multiples_of_the_input_price():
    # 5-minute writes 1.25x, 1-hour writes 2x, reads 0.1x: in each tier of each model
    for model, p in anthropic_prices.PRICING.items():
        for tier in (p, p.long_context) if p.long_context else (p,):
            assert (tier.cache_write, tier.cache_write_1h, tier.cached_input) == (
                tier.input * Decimal("1.25"), tier.input * 2, tier.input * Decimal("0.1")), model


def test_cached_reads_and_5_minute_and_1_hour_cache_writes_are_billed_each_at_its_price():
    p = anthropic_prices.PRICING["claude-haiku-5-5"]
    # 10,000 input = 5,000 uncached * 0.10 + 2,000 read * 0.01 + 2,000 5m writes * 0.125 + 1,000 1h writes * 0.20;
    # 800 output (thinking included) * 0.50: 500 + 20 + 250 + 200 + 400 = 1,370 per 1M
    assert cost_usd(p, 10_000, 800, cached_tokens=2_000, cache_write_tokens=3_000,
                    cache_write_1h_tokens=1_000) == Decimal("0.00137")
    # Haiku 4.5, one price: 3,000 uncached * 1 + 1,000 written for 5 minutes * 1.25 + 1,000 for an hour * 2 + 10 * 5
    assert cost_usd(anthropic_prices.PRICING["claude-haiku-4-5"], 5_000, 10, cache_write_tokens=2_000,
                    cache_write_1h_tokens=1_000) == Decimal("0.00630")


def test_a_prompt_above_the_long_context_threshold_bills_the_whole_request_at_the_higher_tier():
    haiku = anthropic_prices.PRICING["claude-haiku-5-5"]
    # 150,000 input (reads and writes count toward the threshold): 80,000 * 0.50 + 50,000 read * 0.05
    # + 20,000 written * 0.625, and 2,000 out * 2.50: 40,000 + 2,500 + 12,500 + 5,000 = 60,000 per 1M
    assert cost_usd(haiku, 150_000, 2_000, cached_tokens=50_000, cache_write_tokens=20_000) == Decimal("0.06")
    assert cost_usd(haiku, 100_000, 0) == Decimal("0.01")  # up to 100,000: the lower tier
    assert cost_usd(haiku, 100_001, 0) == Decimal("0.0500005")
    pro = gemini_prices.PRICING["gemini-3.1-pro-preview"]
    assert cost_usd(pro, 200_000, 1_000) == Decimal("0.412")  # 200,000 * 2 + 1,000 * 12
    assert cost_usd(pro, 250_000, 1_000) == Decimal("1.018")  # 250,000 * 4 + 1,000 * 18
    luna = openai_provider.PRICING["gpt-6-luna"]
    # above 272,000: input and cache twice, output 1.5x: 200,000 * 0.20 + 100,000 read * 0.02 + 1,000 * 0.75
    assert cost_usd(luna, 300_000, 1_000, cached_tokens=100_000) == Decimal("0.04275")
    assert luna.for_prompt(272_000) is luna and luna.for_prompt(272_001) is luna.long_context


def test_a_cache_price_not_published_falls_back_to_the_price_that_bills_the_same_tokens():
    plain = price("2", "8", "2026-12-07")
    # writes at the input price: 1,000 * 2 + 10 * 8
    assert cost_usd(plain, 1_000, 10, cache_write_tokens=600, cache_write_1h_tokens=200) == Decimal("0.00208")
    five_minutes_only = price("2", "8", "2026-12-07", cache_write="2.5")
    # 400 uncached * 2 + 600 written (1-hour ones at the 5-minute price) * 2.5
    assert cost_usd(five_minutes_only, 1_000, 0, cache_write_tokens=600, cache_write_1h_tokens=200) == \
        Decimal("0.0023")


def test_reads_and_writes_beyond_the_input_are_capped_never_billed_twice():
    p = price("1", "0", "2026-12-07", cached_input="0.1", cache_write="1.25", cache_write_1h="2")
    # 1,000 input: 700 read (0.1) and the writes capped to the 300 left, of which 300 for an hour (2)
    assert cost_usd(p, 1_000, 0, cached_tokens=700, cache_write_tokens=900, cache_write_1h_tokens=950) == \
        Decimal("0.00067")
    assert cost_usd(p, 1_000, 0, cached_tokens=-5, cache_write_tokens=-5) == Decimal("0.001")


def test_the_cost_bound_takes_the_dearest_input_price_at_the_prompts_tier():
    haiku = anthropic_prices.PRICING["claude-haiku-5-5"]
    assert upper_bound_usd(haiku, 1_000, 100) == Decimal("0.00025")  # 1,000 * 0.20 (1-hour write) + 100 * 0.50
    assert upper_bound_usd(haiku, 200_000, 0) == Decimal("0.2")  # 200,000 * 1 (the long tier's 1-hour write)
    assert upper_bound_usd(price("1", "2", "2026-12-07", cached_input="0.5"), 1_000, 10) == Decimal("0.00102")
    assert upper_bound_usd(haiku, 1_000, 100) >= cost_usd(haiku, 1_000, 100, cache_write_tokens=1_000,
                                                          cache_write_1h_tokens=1_000)


def test_the_row_stores_the_prices_of_the_tier_it_paid_and_its_cache_write_price(sim):
    from benchmarking.providers.answer import Tokens
    from benchmarking.providers.cost import cost_fields

    settings = settings_for(sim, "anthropic")
    short = Tokens(input_tokens=4_000, output_tokens=100, cached_tokens=1_000, cache_write_tokens=2_000,
                   cache_write_1h_tokens=0, reasoning_tokens=60)
    fields, warnings = cost_fields("anthropic", "claude-haiku-5-5", settings, anthropic_prices.PRICING, "f.py", short)
    # 1,000 * 0.10 + 1,000 read * 0.01 + 2,000 written * 0.125 + 100 out (60 of them thinking) * 0.50
    assert (fields["cost_usd"], fields["cost_source"], warnings) == (Decimal("0.00041"), "pricing", ())
    assert (fields["price_input_per_mtok"], fields["price_cached_input_per_mtok"],
            fields["price_cache_write_per_mtok"], fields["price_output_per_mtok"], fields["price_as_of"]) == (
        Decimal("0.10"), Decimal("0.01"), Decimal("0.125"), Decimal("0.50"), anthropic_prices.AS_OF)
    long = Tokens(input_tokens=120_000, output_tokens=10, cache_write_tokens=100_000, cache_write_1h_tokens=100_000)
    fields, _ = cost_fields("anthropic", "claude-haiku-5-5", settings, anthropic_prices.PRICING, "f.py", long)
    # 20,000 * 0.50 + 100,000 written for an hour * 1 + 10 * 2.50
    assert fields["cost_usd"] == Decimal("0.110025")
    assert (fields["price_input_per_mtok"], fields["price_cache_write_per_mtok"]) == (Decimal("0.50"),
                                                                                     Decimal("0.625"))


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


TOKENS = st.integers(min_value=0, max_value=2_000_000)


@given(input_tokens=TOKENS, output_tokens=TOKENS, cached=TOKENS, written=TOKENS, written_1h=TOKENS,
       p=st.sampled_from([*anthropic_prices.PRICING.values(), *gemini_prices.PRICING.values(),
                          *openai_provider.PRICING.values(), price("0.59", "0.79", "2026-11-28")]))
def test_a_cost_is_never_negative_never_over_the_bound_and_never_more_than_all_tokens_at_the_dearest_price(
        input_tokens, output_tokens, cached, written, written_1h, p):
    cost = cost_usd(p, input_tokens, output_tokens, cached, written, written_1h)
    assert Decimal(0) <= cost <= upper_bound_usd(p, input_tokens, output_tokens)
    tier = p.for_prompt(input_tokens)
    assert tier is (p.long_context if input_tokens > (p.long_context_above or input_tokens) else p)
    # cache reads and writes only change what the input costs, never what the output costs
    assert cost - cost_usd(p, input_tokens, 0, cached, written, written_1h) == output_tokens * tier.output / 1_000_000


def test_a_gemini_model_named_with_or_without_models_prefix_is_priced_the_same():
    assert gemini_prices.PRICING[f"models/{gemini_prices.DEFAULT_MODEL}"] is \
        gemini_prices.PRICING[gemini_prices.DEFAULT_MODEL]
