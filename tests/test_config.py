"""Settings: environment, flags and benchmark.toml resolved into providers, with clear errors for bad values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from benchmarking.benchmark_runner import PROVIDERS, plan
from benchmarking.config import load_settings, redact_url
from benchmarking.errors import ConfigError
from benchmarking.providers.custom_provider import call_custom
from benchmarking.providers.groq_provider import WIRE as GROQ
from benchmarking.providers.openai_compatible import normalise_base_url, scrub
from benchmarking.providers.together_provider import WIRE as TOGETHER

BUILTIN = [(name, model) for name, _, model in PROVIDERS]
KEYS = {"OPENAI_API_KEY": "k1", "GROQ_API_KEY": "k2", "TOGETHER_API_KEY": "k3", "OPENROUTER_API_KEY": "k4"}


def settings(environ=None, **kwargs):
    return load_settings(prompt="hi", builtin=BUILTIN, environ={**KEYS, **(environ or {})}, **kwargs)


def test_default_models_replace_the_retired_mvp_ones():
    s = settings()
    assert dict(s.models) == {"openai": "gpt-4o-mini", "groq": "openai/gpt-oss-20b",
                              "together": "openai/gpt-oss-120b", "openrouter": "openai/gpt-4o-mini"}


def test_model_flag_beats_model_variable_beats_default():
    s = settings({"GROQ_MODEL": "openai/gpt-oss-120b", "OPENAI_MODEL": "gpt-6-luna"},
                 model_overrides=["groq=llama-x"])
    assert s.models["groq"] == "llama-x" and s.models["openai"] == "gpt-6-luna"


def test_provider_subset_keeps_the_providers_list_order():
    s = settings(provider_selection="openrouter, openai")
    assert [p.name for p in s.providers] == ["openai", "openrouter"]


def test_missing_key_skips_that_provider_with_the_variable_named():
    s = load_settings(prompt="hi", builtin=BUILTIN, environ={"GROQ_API_KEY": "k"})
    assert [p.name for p in s.providers] == ["groq"]
    assert s.skipped[0] == "skipping openai: set OPENAI_API_KEY in .env or the environment to measure it"


def test_base_url_variables_and_what_each_sdk_expects():
    s = settings({"TOGETHER_BASE_URL": "https://proxy.example/v1/", "GROQ_BASE_URL": "https://g.example/openai/v1"})
    by_name = {p.name: p for p in s.providers}
    # together 3.x appends /v1/chat/completions and groq /openai/v1/...: a copy of that suffix is removed
    assert normalise_base_url(TOGETHER, by_name["together"].base_url) == "https://proxy.example"
    assert normalise_base_url(GROQ, by_name["groq"].base_url) == "https://g.example"
    assert normalise_base_url(TOGETHER, None) == "https://api-inference.together.ai"


def test_unknown_benchmark_variable_warns():
    s = settings({"BENCHMARK_REGON": "eu"})
    assert s.warnings == ("unknown variable BENCHMARK_REGON is set and ignored (a typo?)",)


def test_custom_endpoints_from_toml(tmp_path):
    toml = tmp_path / "b.toml"
    toml.write_text(
        '[[providers]]\nname = "local-vllm"\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "llama"\n'
        'input_price = "0.10"\noutput_price = "0.20"\nprice_as_of = "2026-11-01"\n'
        '[providers.headers]\nX-Team = "bench"\n'
        '[[providers]]\nname = "keyed"\nbase_url = "https://x.example/v1"\nmodel = "m"\napi_key_env = "KEYED_KEY"\n'
    )
    s = settings(config_path=str(toml), model_overrides=["local-vllm=llama-2"])
    names = [p.name for p in s.providers]
    assert names == ["openai", "groq", "together", "openrouter", "local-vllm"]
    assert s.skipped == ("skipping keyed: set KEYED_KEY in .env or the environment to measure it",)
    local = s.providers[-1]
    assert local.price.input == Decimal("0.10") and local.headers == (("X-Team", "bench"),)
    assert plan(s)[-1][1:3] == (call_custom, "llama-2")


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[providers]]\nname = "x"\n', "base_url, model missing"),
        ('[[providers]]\nname = "openai"\nbase_url = "http://a"\nmodel = "m"\n', "already taken"),
        ('[[providers]]\nname = "x"\nbase_url = "ftp://a"\nmodel = "m"\n', "must start with http"),
        ('[[providers]]\nname = "x"\nbase_url = "http://a"\nmodel = "m"\ninput_price = "1"\n', "output_price"),
        ("[[providers]\n", "not valid TOML"),
        ('[bench]\nx = 1\n', "unknown section 'bench'"),
    ],
)
def test_bad_toml_is_a_config_error(tmp_path, text, message):
    toml = tmp_path / "b.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message):
        settings(config_path=str(toml))


def test_empty_prompt_is_refused():
    with pytest.raises(ConfigError, match="prompt is empty"):
        load_settings(prompt="  ", builtin=BUILTIN, environ=KEYS)


def test_scrub_removes_key_shapes_and_known_secrets():
    text = ("Incorrect key sk-proj-abcdef123456 / gsk_abcdefghijk / Authorization: Bearer abc.def "
            "api_key='hunter22' my-own-secret-value\nsecond line")
    clean = scrub(text, secrets=("my-own-secret-value",))
    for leaked in ("abcdef123456", "gsk_abcdefghijk", "abc.def", "hunter22", "my-own-secret-value"):
        assert leaked not in clean
    assert "\n" not in clean and clean.startswith("Incorrect key ****")


def test_redact_url_drops_credentials_and_query():
    assert redact_url("postgresql://user:pw@db.example:5432/x?sslmode=require") == "postgresql://db.example:5432/x"
