"""Workloads: input-length tiers, prompt sets, several models, fair order, prompt caching, the cost guard, progress."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from benchmarking.benchmark_runner import Cell, plan, rounds
from benchmarking.settings.load import load_settings
from benchmarking.errors import ConfigError
from benchmarking.simulator import Simulator
from benchmarking.workloads import (
    Expectation, load_prompt_file, parse_tiers, synthetic_document, tier_output_cap, tier_prompt, tier_workload,
)

from test_cli import MAIN, clean_env, run_main
from test_load import rows
from test_wire_truth import USAGE, chunk, stream
from wire_server import WireServer

BUILTIN = [("openai", "gpt-4o-mini"), ("groq", "openai/gpt-oss-20b"), ("together", "openai/gpt-oss-120b"),
           ("openrouter", "openai/gpt-4o-mini")]
KEYS = {f"{name.upper()}_API_KEY": f"key-{name}-0123456789" for name, _ in BUILTIN}


def run(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_main(directory, *args, timeout=180, **env)


# ---- 1. tiers ---------------------------------------------------------------------------------------------------

def test_tier_prompts_are_deterministic_sized_and_capped():
    assert tier_prompt(1000) == tier_prompt(1000) and tier_prompt(1000).text != tier_prompt(2000).text
    for tokens in (100, 1_000, 10_000, 100_000):
        prompt = tier_prompt(tokens)
        words = len(prompt.text.split())
        # Calibrated on the o200k vocabulary: one token a word, plus sentence ends; the template's few on top.
        assert 0.85 * tokens <= words * 1.093 + 7 <= 1.15 * tokens, (tokens, words)
        assert prompt.input_tier == tokens and prompt.prompt_id == f"tier-{tokens}"
    assert [tier_output_cap(t) for t in (100, 1_000, 10_000, 100_000, 50, 5_000, 150_000)] == \
        [300, 1_000, 1_500, 2_000, 300, 1_500, 2_000]
    assert synthetic_document(500, seed=1) != synthetic_document(500, seed=2)


@pytest.mark.parametrize("text, tiers", [("100,1000,10000", (100, 1000, 10000)), ("10k, 100", (10000, 100)),
                                         ("100,100", (100,))])
def test_tier_lists(text, tiers):
    assert parse_tiers(text) == tiers


@pytest.mark.parametrize("text, message", [
    ("100,big", "--input-tokens takes sizes like 100,1000,10k, not 'big'"),
    ("300000", "--input-tokens: 300,000 is outside 1..200,000 tokens"),
    ("0", "--input-tokens: 0 is outside"),
    (",", "--input-tokens takes sizes"),
])
def test_bad_tiers_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_tiers(text)


def test_a_tiers_run_stores_the_tier_and_the_providers_count_with_caps_that_fit(tmp_path):
    done = run(tmp_path, "--simulate", "--providers", "openai,groq", "--input-tokens", "100,1000,10000")
    assert done.returncode == 0, done.stderr
    results = rows(tmp_path, "select provider, input_tier, input_tokens, workload, prompt_id, cache_mode, "
                             "ttft_ms from benchmark_results order by created_at")
    assert [(r["provider"], r["input_tier"]) for r in results] == [
        ("openai", 100), ("openai", 1000), ("openai", 10000), ("groq", 100), ("groq", 1000), ("groq", 10000)]
    assert {(r["workload"], r["cache_mode"]) for r in results} == {("tiers", "bust")}
    for r in results:  # the simulator counts as the tiers are built (a word or a mark a token): the tier's size
        assert abs(r["input_tokens"] - r["input_tier"]) <= 0.03 * r["input_tier"] + 5, r
        assert r["prompt_id"] == f"tier-{r['input_tier']}"
    # the simulator prefills at a model's rate: a bigger prompt takes longer to its first token
    openai = [r["ttft_ms"] for r in results if r["provider"] == "openai"]
    assert openai[0] < openai[1] < openai[2]
    (run_row,) = rows(tmp_path, "select settings from runs")
    stored = json.loads(run_row["settings"])["workload"]
    assert stored["name"] == "tiers" and [p["tier"] for p in stored["prompts"]] == [100, 1000, 10000]
    assert "messages" not in stored["prompts"][2] and len(stored["prompts"][2]["sha256"]) == 64  # not the text
    assert "Testing → openai / gpt-6-luna · tier-1000" in done.stdout


def test_output_caps_come_from_the_prompt_then_the_flag_then_the_tier(tmp_path):
    def caps(**kwargs):
        settings = load_settings(prompt="hi", builtin=BUILTIN, environ=KEYS, provider_selection="openai", **kwargs)
        return [cell.settings.max_tokens for cell in plan(settings)]

    assert caps(workload=tier_workload((100, 10_000))) == [300, 1_500]
    assert caps(workload=tier_workload((100, 10_000)), max_tokens=50) == [50, 50]
    assert caps() == [256]
    file = tmp_path / "p.jsonl"
    file.write_text('{"prompt": "a", "max_tokens": 7}\n{"prompt": "b"}\n')
    assert caps(workload=load_prompt_file(str(file)), max_tokens=50) == [7, 50]


# ---- 2. prompt sets ---------------------------------------------------------------------------------------------

def test_prompt_files_txt_and_jsonl(tmp_path):
    txt = tmp_path / "set.txt"
    txt.write_text("first prompt\nover two lines\n---\nsecond\n---  \n\n")
    workload = load_prompt_file(str(txt))
    assert [p.text for p in workload.prompts] == ["first prompt\nover two lines", "second"]
    assert workload.name == "set.txt" and workload.cache_mode == "bust"
    assert len({p.prompt_id for p in workload.prompts}) == 2  # a short hash of the content
    assert load_prompt_file(str(txt)).prompts[0].prompt_id == workload.prompts[0].prompt_id  # stable

    jsonl = tmp_path / "set.jsonl"
    jsonl.write_text('{"id": "capital", "prompt": "Capital of France?", "expect": "Paris"}\n\n'
                     '{"messages": [{"role": "user", "content": "2+2?"}], "system": "Be brief.", "expect": "/\\\\b4\\\\b/"}\n'
                     '{"prompt": "Say hi", "expect": "/HELLO|hi/i", "max_tokens": 5, "id": 7}\n')
    capital, math, hello = load_prompt_file(str(jsonl)).prompts
    assert capital.prompt_id == "capital" and capital.expect.met_by("It is Paris.")
    assert not capital.expect.met_by("It is Lyon.") and not capital.expect.met_by(None)
    assert math.messages == (("system", "Be brief."), ("user", "2+2?")) and math.expect.met_by("= 4.")
    assert not math.expect.met_by("42")
    assert hello.prompt_id == "7" and hello.max_tokens == 5 and hello.expect.met_by("Hello there")


@pytest.mark.parametrize("name, content, message", [
    ("e.txt", "\n---\n   \n", "holds no prompt"),
    ("e.jsonl", "", "holds no prompt"),
    ("bad.jsonl", '{"prompt": "ok"}\n{"prompt": \n', "bad.jsonl line 2: not valid JSON"),
    ("shape.jsonl", '{"prompt": "ok"}\n["a"]\n', "shape.jsonl line 2: each line must be a JSON object"),
    ("key.jsonl", '{"prompt": "ok", "expected": "x"}\n', "unknown key 'expected'"),
    ("none.jsonl", '{"id": "x"}\n', 'give "prompt" \\(text\\) or "messages"'),
    ("regex.jsonl", '{"prompt": "ok", "expect": "/(unclosed/"}\n', "is not a valid regular expression"),
    ("twice.jsonl", '{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', "prompt id 'a' appears twice"),
    ("cap.jsonl", '{"prompt": "x", "max_tokens": 0}\n', "max_tokens must be a whole number"),
    ("p.csv", "a,b\n", "takes a .txt or .jsonl file, not 'p.csv'"),
])
def test_bad_prompt_files_are_refused_in_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_prompt_file(str(path))
    assert "\n" not in str(caught.value)


def test_bad_workload_input_on_the_command_line_is_one_line_exit_2_and_nothing_sent(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "x"}\n{nope}\n')
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    cases = [
        (["--input-tokens", "100,huge"], "--input-tokens takes sizes like"),
        (["--input-tokens", "250000"], "is outside 1..200,000 tokens"),
        (["--prompts", "bad.jsonl"], "bad.jsonl line 2: not valid JSON"),
        (["--prompts", "missing.txt"], "cannot read --prompts missing.txt"),
        (["--prompts", "latin1.txt"], "is not UTF-8 text"),
        (["--max-cost", "0"], "--max-cost must be more than 0 USD"),
        (["--max-cost", "cheap"], "--max-cost takes an amount of USD"),
        (["--input-tokens", "100", "--prompts", "bad.jsonl"], "not allowed with argument"),
    ]
    for args, message in cases:
        done = run(tmp_path, "--simulate", *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], (args, done.stderr)
    assert not (tmp_path / "benchmarks.db").exists()


def test_answers_are_checked_against_expect_and_stored_as_answer_ok(tmp_path):
    (tmp_path / "set.jsonl").write_text('{"id": "capital", "prompt": "Capital of France?", "expect": "Paris"}\n'
                                        '{"id": "other", "prompt": "Capital of Italy?", "expect": "/^Rome/"}\n'
                                        '{"id": "free", "prompt": "Anything"}\n')
    answer = stream(chunk({"content": "Paris is the capital."}, "stop"), chunk(None, usage=USAGE))
    with WireServer() as server:
        server.reply(answer)
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "local"\nbase_url = "{server.url}/v1"\nmodel = "m"\n')
        done = run(tmp_path, "--providers", "local", "--prompts", "set.jsonl", "--cache", "off")
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path, "select prompt_id, answer_ok, workload from benchmark_results order by position")
    assert [(r["prompt_id"], r["answer_ok"]) for r in stored] == [("capital", 1), ("other", 0), ("free", None)]
    assert "correct" in done.stdout and "1/1" in done.stdout
    sent = [s.body["messages"][0]["content"] for s in server.served]
    assert sent == ["Capital of France?", "Capital of Italy?", "Anything"]  # --cache off: exactly as given


# ---- 3. several models ------------------------------------------------------------------------------------------

def test_several_models_per_provider_from_flags_environment_and_toml(tmp_path):
    flags = load_settings(prompt="hi", builtin=BUILTIN, environ=KEYS, provider_selection="openai",
                          model_overrides=["openai=gpt-4o-mini", "openai=gpt-4.1-nano", "openai=gpt-4o-mini"])
    assert flags.models["openai"] == ("gpt-4o-mini", "gpt-4.1-nano")
    assert [cell.model for cell in plan(flags)] == ["gpt-4o-mini", "gpt-4.1-nano"]
    env = load_settings(prompt="hi", builtin=BUILTIN, environ={**KEYS, "OPENAI_MODEL": "gpt-4o-mini, gpt-4.1-nano"},
                        provider_selection="openai")
    assert env.models["openai"] == ("gpt-4o-mini", "gpt-4.1-nano")
    toml = tmp_path / "b.toml"
    toml.write_text('[[providers]]\nname = "local"\nbase_url = "http://127.0.0.1:8000/v1"\nmodels = ["a", "b"]\n')
    endpoint = load_settings(prompt="hi", builtin=BUILTIN, environ=KEYS, config_path=str(toml),
                             provider_selection="local")
    assert endpoint.models["local"] == ("a", "b")
    assert endpoint.run_settings()["providers"] == {"local": ["a", "b"]}
    for bad, message in (('models = "a"', "models must be a list of model names"),
                         ('models = []', "model missing"),
                         ('model = "a"\nmodels = ["b"]', "give model or models, not both")):
        toml.write_text(f'[[providers]]\nname = "local"\nbase_url = "http://127.0.0.1:8000/v1"\n{bad}\n')
        with pytest.raises(ConfigError, match=message):
            load_settings(prompt="hi", builtin=BUILTIN, environ=KEYS, config_path=str(toml))


def test_a_model_that_shuts_down_soon_is_named_by_check_and_at_a_runs_start(tmp_path):
    # OpenAI's listing announces gpt-4o-mini's date; OpenRouter's does not, and its module knows it (SHUTDOWNS)
    old = ("--model", "openai=gpt-4o-mini", "--model", "openrouter=openai/gpt-4o-mini")
    done = run(tmp_path, "--simulate", "--providers", "openai,groq,openrouter", *old)
    first, second = done.stderr.splitlines()[:2]
    assert first.startswith("warning: openai: model gpt-4o-mini shuts down on 2027-01-14 (in ")
    assert first.endswith("days): set OPENAI_MODEL or --model openai=MODEL")
    assert second.startswith("warning: openrouter: model openai/gpt-4o-mini shuts down on 2027-01-14 (in ")
    assert "groq" not in done.stderr  # no shutdown announced for it
    defaults = run(tmp_path, "--simulate", "--providers", "openai,openrouter")
    assert "shuts down" not in defaults.stderr  # the defaults moved to a model that stays
    with Simulator() as sim:
        keys = dict(OPENAI_API_KEY=KEYS["OPENAI_API_KEY"], OPENAI_BASE_URL=sim.base_url("openai"),
                    OPENROUTER_API_KEY=KEYS["OPENROUTER_API_KEY"], OPENROUTER_BASE_URL=sim.base_url("openrouter"))
        checked = run(tmp_path, "check", "--providers", "openai,openrouter", *old, **keys)
        current = run(tmp_path, "check", "--providers", "openai,openrouter", **keys)
    assert "warning  openai: model gpt-4o-mini shuts down on 2027-01-14" in checked.stdout
    assert "ok       openai: key set (OPENAI_API_KEY), model gpt-4o-mini is listed" in checked.stdout
    assert "warning  openrouter: model openai/gpt-4o-mini shuts down on 2027-01-14" in checked.stdout
    assert "ok       openai: key set (OPENAI_API_KEY), model gpt-6-luna is listed" in current.stdout
    assert "shuts down" not in current.stdout


def test_shutdown_dates_far_away_or_unknown_say_nothing():
    from datetime import date

    from benchmarking.check import shutdown_warning

    today = date(2026, 11, 29)
    assert shutdown_warning("openai", "m", "2027-01-28", "set X", today) == \
        "openai: model m shuts down on 2027-01-28 (in 60 days): set X"
    assert shutdown_warning("openai", "m", "2026-11-01", "set X", today) == \
        "openai: model m was shut down on 2026-11-01: set X"
    assert shutdown_warning("openai", "m", "2027-01-29", "set X", today) is None
    assert shutdown_warning("openai", "m", None, "set X", today) is None
    assert shutdown_warning("openai", "m", "soon", "set X", today) is None


# ---- 4. fair order ----------------------------------------------------------------------------------------------

def test_rounds_rotate_so_that_no_cell_is_always_first():
    cells = list("abcd")
    order = [(r, p, c) for r, p, c in rounds(cells, 4)]  # type: ignore[arg-type]
    by_round = [[c for r, _, c in order if r == n] for n in (1, 2, 3, 4)]
    assert by_round == [list("abcd"), list("dabc"), list("cdab"), list("bcda")]
    assert [p for r, p, _ in order if r == 2] == [1, 2, 3, 4]
    # each cell is at every position once over as many rounds as there are cells
    assert all(sorted(p for _, p, c in order if c == cell) == [1, 2, 3, 4] for cell in cells)


def test_a_repeated_run_stores_round_and_position_and_rotates(tmp_path):
    done = run(tmp_path, "--simulate", "--providers", "groq,together", "--model", "groq=a", "--model", "groq=b",
               "--repeat", "3")
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path, "select provider, model, round, position from benchmark_results order by created_at")
    assert len(stored) == 9
    firsts = [(r["provider"], r["model"]) for r in stored if r["position"] == 1]
    assert firsts == [("groq", "a"), ("together", "openai/gpt-oss-120b"), ("groq", "b")]
    assert [r["round"] for r in stored] == [1, 1, 1, 2, 2, 2, 3, 3, 3]


# ---- 5. prompt caching ------------------------------------------------------------------------------------------

def test_cache_bust_warm_and_off_give_the_rows_their_names_say(tmp_path):
    file = tmp_path / "long.txt"
    file.write_text("Summarise this. " + "The cache holds prefixes of long prompts. " * 200)  # ~2,000 tokens
    stored = {}
    for mode in ("bust", "warm", "off"):
        directory = tmp_path / mode
        directory.mkdir()
        done = run(directory, "--simulate", "--providers", "openai", "--prompts", str(file), "--cache", mode,
                   "--repeat", "2")
        assert done.returncode == 0, done.stderr
        stored[mode] = rows(directory, "select cached_tokens, input_tokens, cache_mode, ttft_ms from "
                                       "benchmark_results order by created_at")
    assert [r["cached_tokens"] for r in stored["bust"]] == [0, 0]  # a unique marker in front: never cached
    assert all(r["cached_tokens"] >= 1024 for r in stored["warm"])  # each measured after an untimed warm-up
    assert stored["off"][0]["cached_tokens"] == 0 and stored["off"][1]["cached_tokens"] >= 1024  # the repeat hits
    assert {r["cache_mode"] for mode in stored for r in stored[mode]} == {"bust", "warm", "off"}
    # what the cache saves shows in TTFT (the simulator prefills only what the cache did not hold)
    assert max(r["ttft_ms"] for r in stored["warm"]) < min(r["ttft_ms"] for r in stored["bust"])


def test_cache_bust_sends_a_different_marker_each_time_and_the_default_run_sends_the_prompt_as_is(tmp_path):
    with Simulator() as sim:
        env = dict(OPENAI_API_KEY=KEYS["OPENAI_API_KEY"], OPENAI_BASE_URL=sim.base_url("openai"))
        assert run(tmp_path, "--providers", "openai", "--prompt", "hello there", "--cache", "bust", "--repeat", "2",
                   **env).returncode == 0
        assert run(tmp_path, "--providers", "openai", "--prompt", "hello there", **env).returncode == 0
        sent = [r.body["messages"][0]["content"] for r in sim.log if r.body]
    busted, plain = sent[:2], sent[2]
    assert all(text.endswith("] hello there") and text.startswith("[") for text in busted)
    assert busted[0] != busted[1]
    assert plain == "hello there"


# ---- 6. before spending money -----------------------------------------------------------------------------------

def test_dry_run_prints_the_plan_and_its_cost_bound_and_sends_nothing(tmp_path):
    with Simulator() as sim:
        done = run(tmp_path, "--providers", "openai", "--input-tokens", "100,1000", "--repeat", "3", "--dry-run",
                   OPENAI_API_KEY=KEYS["OPENAI_API_KEY"], OPENAI_BASE_URL=sim.base_url("openai"))
        assert sim.log == []
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ("Plan (tiers workload, cache bust): 1 providers, 1 models, 2 prompts = 2 cells; 3 rounds = "
                        "6 requests")
    assert lines[1].split() == ["openai", "/", "gpt-6-luna", "6", "requests", "up", "to", lines[1].split()[-1]]
    assert lines[-1] == "Nothing was sent (--dry-run)." and "Within --max-cost $1.00." in done.stdout
    assert not (tmp_path / "benchmarks.db").exists()


def test_a_live_run_that_could_cost_more_than_max_cost_stops_before_sending_anything(tmp_path):
    with Simulator() as sim:
        env = dict(OPENAI_API_KEY=KEYS["OPENAI_API_KEY"], OPENAI_BASE_URL=sim.base_url("openai"))
        done = run(tmp_path, "--providers", "openai", "--input-tokens", "100000", "--repeat", "30", **env)
        assert sim.log == []
        (tmp_path / "b.toml").write_text('[[providers]]\nname = "local"\nbase_url = "http://127.0.0.1:9/v1"\n'
                                         'model = "m"\n')
        unpriced = run(tmp_path, "--providers", "local", "--config", "b.toml", "--dry-run")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "this could cost up to $" in done.stderr and "more than --max-cost $1.00: raise --max-cost" in done.stderr
    assert not (tmp_path / "benchmarks.db").exists()
    assert "local / m" in unpriced.stdout and "unknown (no price)" in unpriced.stdout
    assert "not counted, with no price: local / m" in unpriced.stdout


def test_the_cost_bound_is_an_upper_bound_on_what_the_simulator_charged(tmp_path):
    from benchmarking.benchmark_runner import cost_bound

    settings = load_settings(prompt="hi", builtin=BUILTIN, environ=KEYS, provider_selection="openai",
                             workload=tier_workload((1000,)), simulate=True)
    bound = cost_bound(plan(settings), 1, "bust")
    done = run(tmp_path, "--simulate", "--providers", "openai", "--input-tokens", "1000")
    (charged,) = rows(tmp_path, "select cost_usd from benchmark_results")
    assert 0 < charged["cost_usd"] <= float(bound.usd)


# ---- 7. progress -------------------------------------------------------------------------------------------------

def test_a_live_progress_line_on_a_terminal_and_none_in_a_log(tmp_path):
    import pty

    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, str(MAIN), "--simulate", "--providers", "groq,together",
                                "--repeat", "2"], cwd=tmp_path, env=clean_env(), stdout=secondary,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(secondary)
    output = b""
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        output += data
    process.wait(timeout=120)
    os.close(primary)
    text = output.decode()
    assert process.returncode == 0
    assert "[1/4 requests, " in text and "[3/4 requests, " in text and "left]" in text
    assert "\x1b[K" in text  # the live line is cleared before other lines, and at the end

    logged = run(tmp_path, "--simulate", "--providers", "groq,together", "--repeat", "2")
    assert "requests, " not in logged.stdout and "\x1b[K" not in logged.stdout
    assert logged.stdout.count("Testing → ") == 4  # the per-request lines stay as they are


def test_the_plan_is_cells_of_each_provider_model_and_prompt_in_order():
    settings = load_settings(prompt="hi", builtin=BUILTIN, environ=KEYS, provider_selection="openai,groq",
                             model_overrides=["groq=a", "groq=b"], workload=tier_workload((100, 1000)))
    cells = plan(settings)
    assert [(c.provider, c.model, c.prompt.prompt_id) for c in cells] == [
        ("openai", "gpt-4o-mini", "tier-100"), ("openai", "gpt-4o-mini", "tier-1000"),
        ("groq", "a", "tier-100"), ("groq", "a", "tier-1000"), ("groq", "b", "tier-100"), ("groq", "b", "tier-1000")]
    assert all(isinstance(c, Cell) for c in cells)


def test_expectations_parse_substrings_and_regular_expressions():
    assert Expectation.parse("a/b", "x").pattern is None  # not /.../: a plain substring
    assert Expectation.parse("/a.c/s", "x").met_by("a\nc")
    with pytest.raises(ConfigError, match="x: expect '/\\[/' is not a valid regular expression"):
        Expectation.parse("/[/", "x")
