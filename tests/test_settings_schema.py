"""The environment's schema (settings/variables.py): every variable in one place, each provider's from one table,
checked at once, the first refusal in the order the variables are read; and pydantic only where settings are read."""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys

import pytest

from benchmarking.settings.apis import apis_of
from benchmarking.benchmark_runner import PROVIDERS
from benchmarking.errors import ConfigError
from benchmarking.settings.load import load_settings
from benchmarking.settings.variables import environment_schema

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = [(name, model) for name, _, model in PROVIDERS]


def test_every_variable_of_env_example_is_in_the_schema_and_every_one_of_the_schema_in_env_example():
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    listed.discard("VLLM_API_KEY")  # the example of a variable a benchmark.toml endpoint names (api_key_env)
    schema = set(environment_schema(tuple(name for name, _ in BUILTIN)).model_fields)
    # <PROVIDER>_API is read for every provider (set for one that speaks one API, it is refused), and listed only
    # for those that speak several.
    schema -= {v for v in schema if v.endswith("_API") and len(apis_of(v.removesuffix("_API").lower())) == 1}
    assert listed == schema


def test_a_provider_added_to_the_list_reads_its_own_three_variables():
    builtin = [*BUILTIN, ("newcomer", "new-model")]
    environ = {"NEWCOMER_API_KEY": "k-new", "NEWCOMER_MODEL": "a, b", "NEWCOMER_BASE_URL": "http://127.0.0.1:9/v1"}
    s = load_settings(prompt="hi", builtin=builtin, environ=environ, provider_selection="newcomer")
    (provider,) = s.providers
    assert (provider.key_env, provider.api_key.reveal(), provider.base_url) == (
        "NEWCOMER_API_KEY", "k-new", "http://127.0.0.1:9/v1")
    assert s.models["newcomer"] == ("a", "b") and provider.model_hint.startswith("set NEWCOMER_MODEL or --model")
    s = load_settings(prompt="hi", builtin=builtin, environ={}, provider_selection="newcomer")
    assert s.skipped == ("skipping newcomer: set NEWCOMER_API_KEY in .env or the environment to measure it",)
    with pytest.raises(ConfigError, match="^NEWCOMER_BASE_URL must start with http:// or https://$"):
        load_settings(prompt="hi", builtin=builtin, environ={**environ, "NEWCOMER_BASE_URL": "ftp://x"},
                      provider_selection="newcomer")


def test_the_refusal_shown_is_the_first_variable_read_providers_before_storage():
    environ = {"OPENAI_API_KEY": "k", "DATABASE_URL": "mysql://x", "OPENAI_BASE_URL": "http://127.0.0.1:0/v1",
               "GROQ_MODEL": "g" * 201}
    with pytest.raises(ConfigError) as caught:
        load_settings(prompt="hi", builtin=BUILTIN, environ=environ, provider_selection="openai,groq")
    assert str(caught.value).startswith("OPENAI_BASE_URL has a port")
    with pytest.raises(ConfigError, match="^DATABASE_URL must start with sqlite:/// or postgresql://, not 'mysql'$"):
        load_settings(prompt="hi", builtin=BUILTIN, environ=environ, provider_selection="together")


def test_a_simulated_run_leaves_provider_keys_unchecked_but_not_the_database_key():
    bad = {"OPENAI_API_KEY": "sk one", "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_SERVICE_ROLE": "role two"}
    with pytest.raises(ConfigError, match="^SUPABASE_SERVICE_ROLE contains a space or a line break"):
        load_settings(prompt="hi", builtin=BUILTIN, environ=bad, provider_selection="openai", simulate=True)
    del bad["SUPABASE_SERVICE_ROLE"], bad["SUPABASE_URL"]
    assert load_settings(prompt="hi", builtin=BUILTIN, environ=bad, provider_selection="openai", simulate=True)
    with pytest.raises(ConfigError, match="^OPENAI_API_KEY contains a space or a line break"):
        load_settings(prompt="hi", builtin=BUILTIN, environ=bad, provider_selection="openai")


@pytest.mark.parametrize("variable", ["DATABASE_URL", "BENCHMARK_HOST", "GROQ_MODEL", "SUPABASE_URL"])
def test_an_endpoint_key_in_a_variable_the_tool_reads_for_something_else_is_refused(tmp_path, variable):
    toml = tmp_path / "b.toml"
    toml.write_text(f'[[providers]]\nname = "x"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
                    f'api_key_env = "{variable}"\n')
    with pytest.raises(ConfigError, match=f"^benchmark.toml: api_key_env {variable} is a variable the tool reads for "
                                          "something else: give the key a variable of its own, like VLLM_API_KEY$"):
        load_settings(prompt="hi", builtin=BUILTIN, environ={variable: "v"}, config_path=str(toml))
    # Another provider's key variable is a key all the same: taken, and checked as one.
    toml.write_text(toml.read_text().replace(variable, "GROQ_API_KEY"))
    s = load_settings(prompt="hi", builtin=BUILTIN, environ={"GROQ_API_KEY": "gk"}, config_path=str(toml),
                      provider_selection="x")
    assert s.providers[0].api_key.reveal() == "gk"
    with pytest.raises(ConfigError, match="^GROQ_API_KEY contains a space"):
        load_settings(prompt="hi", builtin=BUILTIN, environ={"GROQ_API_KEY": "g k"}, config_path=str(toml),
                      provider_selection="x")


def modules_after(tmp_path: Path, *args: str) -> str:
    """Runs the command line in this directory with no settings, and says whether pydantic was imported."""
    code = ("import sys; from benchmarking.cli import main; sys.argv[0] = 'main.py'\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('pydantic imported' if 'pydantic' in sys.modules else 'pydantic not imported', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")})
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("command, reading", [(["--help"], ["--simulate", "--dry-run"]),
                                              (["report", "--help"], ["report"]), (["flush", "--help"], ["flush"])])
def test_help_never_imports_pydantic_and_a_command_reading_settings_does(tmp_path, command, reading):
    """pydantic costs about 0.1 s: only a command that reads its settings imports it, so --help stays fast."""
    assert modules_after(tmp_path, *command) == "pydantic not imported"
    assert modules_after(tmp_path, *reading) == "pydantic imported"  # the same check can fail
