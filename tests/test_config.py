"""Settings: environment, flags and benchmark.toml resolved into providers, with clear errors for bad values."""

from __future__ import annotations

from decimal import Decimal
import re
from pathlib import Path

import pytest

from benchmarking.benchmark_runner import PROVIDERS, plan
from benchmarking.settings.load import load_settings
from benchmarking.settings.urls import redact_url
from benchmarking.errors import ConfigError
from benchmarking.providers.custom_provider import call_custom
from benchmarking.providers.groq_provider import WIRE as GROQ
from benchmarking.providers.client import normalise_base_url, scrub
from benchmarking.providers.together_provider import WIRE as TOGETHER

BUILTIN = [(name, model) for name, _, model in PROVIDERS]
KEYS = {"OPENAI_API_KEY": "k1", "GROQ_API_KEY": "k2", "TOGETHER_API_KEY": "k3", "OPENROUTER_API_KEY": "k4",
        "ANTHROPIC_API_KEY": "k5", "GEMINI_API_KEY": "k6"}


def settings(environ=None, **kwargs):
    return load_settings(prompt="hi", builtin=BUILTIN, environ={**KEYS, **(environ or {})}, **kwargs)


def test_default_models_replace_the_retired_mvp_ones():
    s = settings()
    assert dict(s.models) == {"openai": ("gpt-6-luna",), "groq": ("openai/gpt-oss-20b",),
                              "together": ("openai/gpt-oss-120b",), "openrouter": ("openai/gpt-6-luna",),
                              "anthropic": ("claude-haiku-5-5",), "gemini": ("gemini-3.5-flash-lite",)}


def test_model_flag_beats_model_variable_beats_default():
    s = settings({"GROQ_MODEL": "openai/gpt-oss-120b", "OPENAI_MODEL": "gpt-6-luna"},
                 model_overrides=["groq=llama-x"])
    assert s.models["groq"] == ("llama-x",) and s.models["openai"] == ("gpt-6-luna",)


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


def test_unknown_benchmark_variable_warns_naming_the_closest_known_one():
    s = settings({"BENCHMARK_REGON": "eu", "BENCHMARK_ZZZZZZZZZZZZZZZZZ": "1"})
    assert s.warnings == ("unknown variable BENCHMARK_REGON is set and ignored (did you mean BENCHMARK_REGION?)",
                          "unknown variable BENCHMARK_ZZZZZZZZZZZZZZZZZ is set and ignored (a typo?)")


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
    assert names == ["openai", "groq", "together", "openrouter", "anthropic", "gemini", "local-vllm"]
    assert s.skipped == ("skipping keyed: set KEYED_KEY in .env or the environment to measure it",)
    local = s.providers[-1]
    assert local.price.input == Decimal("0.10") and local.headers == (("X-Team", "bench"),)
    assert (plan(s)[-1].call_fn, plan(s)[-1].model) == (call_custom, "llama-2")


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[providers]]\nname = "x"\n', "base_url, model missing"),
        ('[[providers]]\nname = "openai"\nbase_url = "http://a"\nmodel = "m"\n', "already taken"),
        ('[[providers]]\nname = "x"\nbase_url = "ftp://a"\nmodel = "m"\n', "must start with http"),
        ('[[providers]]\nname = "x"\nbase_url = "http://a"\nmodel = "m"\ninput_price = "1"\n', "output_price"),
        ("[[providers]\n", "not valid TOML"),
        ('[bench]\nx = 1\n', "unknown section 'bench'; the sections read are [[providers]], [slo], [alerts] and "),
        ('[alert]\nwindow = "1h"\n', "unknown section 'alert' (did you mean [alerts]?); the sections read are "),
        ('[[provider]]\nname = "x"\n', "unknown section 'provider' (did you mean [[providers]]?)"),
    ],
)
def test_bad_toml_is_a_config_error(tmp_path, text, message):
    toml = tmp_path / "b.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
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


# ---- issue 10: bad input is one line naming the problem (items 5 and 12) ------------------------------------------
ENTRY = '[[providers]]\nname = "x"\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "m"\n'


@pytest.mark.parametrize(
    "text, message",
    [
        ("providers = 5\n", "b.toml: providers must be [[providers]] tables, not a number"),
        ('[[providers]]\nname = 7\nbase_url = "http://a"\nmodel = "m"\n',
         'name must be one string in quotes, like name = "local-vllm", not a number'),
        ('[[providers]]\nname = "x"\nbase_url = "http://a"\nmodel = ["a", "b"]\n',
         'model must be one string in quotes, like model = "llama3.2", not a list'),
        (ENTRY + "api_key_env = 5\n", 'api_key_env must be one string in quotes, like api_key_env = "VLLM_API_KEY"'),
        (ENTRY + 'api_key_env = "sk-not-a-variable"\n', "api_key_env must name an environment variable"),
        ('[[providers]]\nname = "x"\nbase_url = 8000\nmodel = "m"\n', "base_url must be one string in quotes"),
        ('[[providers]]\nname = "x"\nbaseurl = "http://a"\nmodel = "m"\n',
         "#1: unknown key 'baseurl' (did you mean base_url?); allowed: api, api_key_env, base_url, cached_input_price, "
         "headers, input_price, model, models, name, output_price, price_as_of, token_count"),
        (ENTRY + 'input_price = -1\noutput_price = "0.2"\n',
         'input_price must be a number of USD per 1M tokens, 0 or more, like input_price = "0.10", not -1'),
        (ENTRY + 'input_price = "0.1"\noutput_price = nan\n', "output_price must be a number of USD per 1M tokens"),
        (ENTRY + 'input_price = "0.1"\noutput_price = "inf"\n', "output_price must be a number of USD per 1M tokens"),
        (ENTRY + 'input_price = "0.1"\noutput_price = "0.2"\ncached_input_price = -inf\n',
         "cached_input_price must be a number of USD per 1M tokens"),
        (ENTRY + 'input_price = true\noutput_price = "0.2"\n', "input_price must be a number of USD per 1M tokens"),
        (ENTRY + 'input_price = "0.1"\noutput_price = "0.2"\nprice_as_of = 5\n', "price_as_of must be a date"),
        ('[[providers]]\nname = "x"\nbase_url = "http://127.0.0.1:99999/v1"\nmodel = "m"\n',
         "base_url has a port that is not a number from 1 to 65535"),
        ('[[providers]]\nname = "x"\nbase_url = "http://127.0.0.1:0/v1"\nmodel = "m"\n', "1 to 65535"),
        ('[[providers]]\nname = "x"\nbase_url = "http://:8000/v1"\nmodel = "m"\n', "base_url has no host"),
        (ENTRY + 'token_count = "guess"\n', "token_count must be one of usage, tokenize, not 'guess'"),
        (ENTRY + '[providers.headers]\nX-Team = ["a"]\n', "header X-Team must be a string, not a list"),
        (ENTRY + '[providers.headers]\nX-Team = "caf\u00e9"\n', "header X-Team must be plain ASCII text on one line"),
        (ENTRY + '[providers.headers]\nX-Team = "a\\r\\nInjected: 1"\n', "header X-Team must be plain ASCII"),
        (ENTRY + '[providers.headers]\n"X Team" = "a"\n', "header name 'X Team' may hold only"),
        (f'[[providers]]\nname = "{"x" * 201}"\nbase_url = "http://a"\nmodel = "m"\n',
         "#1: name is 201 characters long; names are limited to 200: shorten it"),
        (f'[[providers]]\nname = "x"\nbase_url = "http://a"\nmodel = "{"m" * 201}"\n',
         "#1: model is 201 characters long; names are limited to 200: shorten it"),
    ],
)
def test_bad_toml_values_are_named_in_one_line(tmp_path, text, message):
    toml = tmp_path / "b.toml"
    toml.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        settings(config_path=str(toml))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_every_allowed_toml_key_is_read_and_token_count_is_accepted(tmp_path):
    from datetime import date

    from benchmarking.settings.tables import PROVIDER_TABLE_KEYS

    toml = tmp_path / "b.toml"
    toml.write_text(ENTRY + 'api_key_env = "X_KEY"\ninput_price = 0.1\noutput_price = "0.2"\ncached_input_price = 0\n'
                    'price_as_of = 2026-11-28\ntoken_count = "usage"\napi = "responses"\n[providers.headers]\nX-Team = "bench"\n')
    # every key but `models`, which stands instead of `model` (a test of its own below)
    assert set(__import__("tomllib").loads(toml.read_text())["providers"][0]) == PROVIDER_TABLE_KEYS - {"models"}
    (endpoint,) = [p for p in settings({"X_KEY": "k"}, config_path=str(toml)).providers if p.name == "x"]
    assert endpoint.price.input == Decimal("0.1") and endpoint.price.cached_input == Decimal(0)
    assert endpoint.price.as_of == str(date(2026, 11, 28)) and endpoint.headers == (("X-Team", "bench"),)
    assert endpoint.api == "responses"


def test_the_example_toml_holds_only_allowed_keys():
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "benchmark.example.toml"
    s = settings(config_path=str(example))
    assert [p.name for p in s.providers][-3:] == ["vllm", "ollama", "llamacpp"]
    assert s.slo.for_model("groq", "openai/gpt-oss-20b").ttft_ms == 300
    assert s.slo.for_model("groq", "openai/gpt-oss-20b").success_rate == 0.99  # filled in from [slo]
    assert s.slo.for_model("openai", "gpt-4o-mini").ttft_ms == 800


@pytest.mark.parametrize("encoding_problem, line", [(b"\xff\xfe", 2), (b"caf\xe9", 2), (b"ok\n\x80", 3)])
def test_a_toml_file_that_is_not_utf8_is_named_with_its_line(tmp_path, encoding_problem, line):
    toml = tmp_path / "b.toml"
    toml.write_bytes(b"# comment\n" + encoding_problem + b"\n")
    with pytest.raises(ConfigError, match=rf"config file .*b.toml is not UTF-8 text \(line {line}\): save it as UTF-8"):
        settings(config_path=str(toml))


def test_names_up_to_200_characters_are_taken_and_201_refused():
    ok = settings({"GROQ_MODEL": "g" * 200, "BENCHMARK_HOST": "h" * 200, "BENCHMARK_REGION": "r" * 200},
                  model_overrides=["openai=" + "o" * 200], run_name="n" * 200, triggered_by="t" * 200)
    assert ok.models["groq"] == ("g" * 200,) and ok.models["openai"] == ("o" * 200,)
    cases = [
        (dict(run_name="n" * 201), "--run-name is 201 characters long"),
        (dict(triggered_by="t" * 201), "--triggered-by is 201 characters long"),
        (dict(model_overrides=["groq=" + "g" * 201]), "--model groq=MODEL: the model name is 201 characters long"),
        (dict(environ={"GROQ_MODEL": "g" * 3000}), "GROQ_MODEL is 3000 characters long"),
        (dict(environ={"BENCHMARK_HOST": "h" * 201}), "BENCHMARK_HOST is 201 characters long"),
        (dict(environ={"BENCHMARK_REGION": "r" * 201}), "BENCHMARK_REGION is 201 characters long"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message + "; names are limited to 200: shorten it"):
            settings(**kwargs)


def test_a_model_variable_of_a_provider_not_selected_is_not_checked():
    s = settings({"GROQ_MODEL": "g" * 3000}, provider_selection="openai")
    assert [p.name for p in s.providers] == ["openai"]


def test_prompt_limit_is_5_mb_and_text_must_be_utf8():
    from benchmarking.textfile import MAX_PROMPT_BYTES

    assert MAX_PROMPT_BYTES == 5_000_000
    assert load_settings(prompt="a" * MAX_PROMPT_BYTES, builtin=BUILTIN, environ=KEYS).prompt
    with pytest.raises(ConfigError, match=r"^the prompt is 5\.0 MB; prompts are limited to 5 MB \(a 10,000-token "):
        load_settings(prompt="\u00e9" * (MAX_PROMPT_BYTES // 2 + 1), builtin=BUILTIN, environ=KEYS)
    with pytest.raises(ConfigError, match="the prompt is not UTF-8 text"):
        load_settings(prompt="caf\udce9", builtin=BUILTIN, environ=KEYS)  # a byte that was not UTF-8, from argv
    with pytest.raises(ConfigError, match="--run-name is not UTF-8 text"):
        settings(run_name="caf\udce9")


@pytest.mark.parametrize("text", ["inf", "-inf", "1e300", "86401", "nan", "NaN", "0", "-1"])
def test_timeouts_that_are_not_a_number_of_seconds_up_to_a_day_are_refused(text):
    from benchmarking.settings.values import positive_float

    refused = r"^--timeout must be (a number of seconds|more than 0|at most 86400 seconds)"
    with pytest.raises(ConfigError, match=refused):
        positive_float(text, "--timeout")
    assert positive_float("86400", "--timeout") == 86400.0 and positive_float("0.5", "--timeout") == 0.5


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"OPENAI_BASE_URL": "http://127.0.0.1:99999/v1"}, "OPENAI_BASE_URL has a port that is not a number from 1"),
        ({"GROQ_BASE_URL": "https://api.groq.com:http"}, "GROQ_BASE_URL has a port that is not a number"),
        ({"TOGETHER_BASE_URL": "api.together.xyz/v1"}, "TOGETHER_BASE_URL must start with http:// or https://"),
        ({"OPENROUTER_BASE_URL": "http:///v1"}, "OPENROUTER_BASE_URL has no host"),
    ],
)
def test_bad_base_url_variables_are_refused(environ, message):
    with pytest.raises(ConfigError, match=message):
        settings(environ)


def test_good_base_urls_with_ports_and_ipv6_hosts_are_taken():
    s = settings({"OPENAI_BASE_URL": "http://[::1]:8000/v1", "GROQ_BASE_URL": "https://g.example:65535"})
    assert s.providers[0].base_url == "http://[::1]:8000/v1"


@pytest.mark.parametrize("bad_part, problem", [("\u2019", "not ASCII"), (" ", "a space or a line break"),
                                               ("\n", "a space or a line break"), ("\x07", "a control character")])
def test_a_key_that_cannot_be_sent_is_named_never_shown(bad_part, problem):
    from conftest import FAKE_KEY

    key = FAKE_KEY + bad_part
    with pytest.raises(ConfigError) as caught:
        settings({"GROQ_API_KEY": key})
    assert str(caught.value).startswith(f"GROQ_API_KEY contains {'a character that is ' if 'ASCII' in problem else ''}")
    assert problem in str(caught.value) and FAKE_KEY[3:] not in str(caught.value)
    # Not sent anywhere under --simulate, and not checked for a provider that is not selected.
    assert settings({"GROQ_API_KEY": key}, simulate=True).providers
    assert settings({"GROQ_API_KEY": key}, provider_selection="openai").providers


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"DATABASE_URL": "postgresql://bench:Secr3t/pw@127.0.0.1:5432/db"}, "holds a /, ? or # that is not percent"),
        ({"DATABASE_URL": "postgresql://bench:Secr3t?pw@127.0.0.1:5432/db"}, "write / as %2F, ? as %3F and # as %23"),
        ({"DATABASE_URL": "postgresql://bench:Secr3t#pw@127.0.0.1:5432/db"}, "holds a /, ? or # that is not percent"),
        ({"DATABASE_URL": "postgresql://"}, "DATABASE_URL has no host: give one, like postgresql://user:password@"),
        ({"DATABASE_URL": "postgres://bench:Secr3t@/db"}, "DATABASE_URL has no host"),
        ({"DATABASE_URL": "postgresql://bench:Secr3t@127.0.0.1:99999/db"}, "DATABASE_URL has a port that is not a "),
        ({"DATABASE_URL": "postgresql://bench:Secr3t@h1:5432,h2:5432/db"}, "DATABASE_URL names several hosts"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "DATABASE_URL=sqlite:///:memory: would keep nothing after the run"),
        ({"SUPABASE_URL": "https://x.supabase.co:123456", "SUPABASE_SERVICE_ROLE": "Secr3t"},
         "SUPABASE_URL has a port that is not a number"),
        ({"SUPABASE_URL": "https://x.supabase.co", "SUPABASE_SERVICE_ROLE": "Secr3t \n"},
         "SUPABASE_SERVICE_ROLE contains a space or a line break"),
        ({"BENCHMARK_NO_MIGRATE": "maybe"},
         "BENCHMARK_NO_MIGRATE takes 1, true or yes, or 0, false or no, not 'maybe'"),
        ({"BENCHMARK_NO_MIGRATE": "2"}, "BENCHMARK_NO_MIGRATE takes 1, true or yes"),
    ],
)
def test_bad_storage_variables_are_refused_without_showing_the_password(environ, message):
    from benchmarking.settings.environment import storage_settings

    with pytest.raises(ConfigError) as caught:
        storage_settings(environ)
    assert message in str(caught.value) and "Secr3t" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["postgresql://bench:Secr3t%2Fpw%3F%23@127.0.0.1:5432/db?sslmode=require", "postgresql:///db?host=/run/postgresql",
     "postgres://db.example/x", "postgresql://[::1]:5432/x", "sqlite:///data/bench.db", "sqlite:///"],
)
def test_good_database_urls_are_taken(url):
    from benchmarking.settings.environment import storage_settings

    assert storage_settings({"DATABASE_URL": url})["database_url"] == url


@pytest.mark.parametrize("text, migrate", [("", True), ("0", True), ("false", True), ("No", True), (" FALSE ", True),
                                           ("1", False), ("true", False), ("YES", False), ("True", False)])
def test_no_migrate_takes_yes_and_no_words_in_any_case(text, migrate):
    from benchmarking.settings.environment import storage_settings

    assert storage_settings({"BENCHMARK_NO_MIGRATE": text})["migrate"] is migrate


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "missing"])
def test_a_config_naming_a_fifo_a_device_or_a_directory_says_so(tmp_path, kind):
    """--config /dev/zero or a FIFO said 'config file ... does not exist', though it does: one line saying what it
    is, exit 2, and a FIFO is never opened (with no writer, opening it would wait for ever)."""
    import os

    from test_cli import run_main

    path = {"fifo": tmp_path / "config.fifo", "device": Path("/dev/zero"), "directory": tmp_path / "conf.d",
            "missing": tmp_path / "nope.toml"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    said = {"fifo": f"config file {path} is a FIFO, not a file: give a benchmark.toml",
            "device": f"config file {path} is a device, not a file: give a benchmark.toml",
            "directory": f"config file {path} is a directory, not a file: give a benchmark.toml",
            "missing": f"config file {path} does not exist"}[kind]
    for args, env in ((["--simulate", "--config", str(path)], {}), (["watch"], {"BENCHMARK_CONFIG": str(path)})):
        done = run_main(tmp_path, *args, timeout=60, **env)
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"main.py: error: {said}\n"
    assert not (tmp_path / "benchmarks.db").exists()


def test_an_empty_config_flag_is_refused_not_ignored_and_an_empty_variable_is_not_set(tmp_path):
    """--config '' (a shell variable that was not set) was taken as no --config at all: BENCHMARK_CONFIG or
    ./benchmark.toml was read instead, silently. An empty BENCHMARK_CONFIG said 'config file  does not exist'; empty,
    like every variable the tool reads, it is not set."""
    from test_cli import run_main

    (tmp_path / "benchmark.toml").write_text("[alerts]\nwindow = \"2h\"\n")
    done = run_main(tmp_path, "watch", "--config", "")
    assert done.returncode == 2
    assert done.stderr == "main.py: error: --config takes the path of a benchmark.toml, not ''\n"
    assert not (tmp_path / "benchmarks.db").exists()
    done = run_main(tmp_path, "watch", BENCHMARK_CONFIG="")
    assert done.returncode == 0, done.stderr
    assert "window 2h)" in done.stdout  # ./benchmark.toml, read as without the variable


@pytest.mark.parametrize("entry, args", [
    ("main", ["--help"]), ("main", ["check", "--help"]), ("main", ["flush", "--help"]),
    ("main", ["report", "--help"]), ("main", ["serve", "--help"]), ("main", ["watch", "--help"]),
    ("scheduled_main", ["--help"]),
])
def test_every_variable_a_help_text_names_is_one_the_tool_reads(entry, args, capsys):
    from benchmarking import cli
    from benchmarking.settings.variables import PROVIDER_VARIABLES, Environment

    with pytest.raises(SystemExit):
        getattr(cli, entry)(args)
    text = re.sub(r"-[\w-]+[ =][A-Z_]+", "", " ".join(capsys.readouterr().out.split()))  # a flag's metavar
    named = set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b", text))
    unread = {name for name in named
              if name not in Environment.model_fields and not name.endswith(tuple(PROVIDER_VARIABLES))}
    assert not unread, f"{' '.join(args)} names variables the tool never reads: {sorted(unread)}"
