"""Every run flag beside an open loop (--rate, --trace): honoured, or refused in one line with exit status 2, never
silently dropped. The table names each flag of main.py, so a new flag cannot join without a decision."""

from __future__ import annotations

import json

import pytest

from benchmarking.cli.run import build_parser

from test_load import rows, run
from test_trace import LINE, later, refused, write_trace

KEPT = None  # the flag works beside the loop as it does in any run
# flag: (its arguments, what --rate 5 does with them, what --trace of Mooncake lines does with them)
BESIDE = {
    "--providers": (["--providers", "openai"], KEPT, KEPT),
    "--model": (["--model", "openai=m"], KEPT, KEPT),
    "--api": (["--api", "openai=responses"], KEPT, KEPT),
    "--prompt": (["--prompt", "hi"], KEPT, "drop --prompt"),
    "--prompt-file": (["--prompt-file", "p.txt"], KEPT, "drop --prompt-file"),
    "--input-tokens": (["--input-tokens", "100"], KEPT, "drop --input-tokens"),
    "--prompts": (["--prompts", "p.jsonl"], KEPT, "drop --prompts"),
    "--config": (["--config", "benchmark.toml"], KEPT, KEPT),
    "--simulate": (["--simulate"], KEPT, KEPT),
    "--repeat": (["--repeat", "2"], "--repeat is for sequential runs: a load run's requests are --requests or "
                                    "--duration a level (drop --repeat)", "drop --repeat"),
    "--max-tokens": (["--max-tokens", "9"], KEPT,
                     "t.jsonl gives every request its output_length (its max_tokens): drop --max-tokens"),
    "--cache": (["--cache", "warm"], "--cache warm sends an untimed request before each one, which would start "
                                     "--rate's requests off their schedule",
                "--cache warm sends an untimed request before each one, which would start --trace's requests"),
    "--timeout": (["--timeout", "5"], KEPT, KEPT),
    "--retries": (["--retries", "1"], KEPT, KEPT),
    "--no-stream": (["--no-stream"], KEPT, KEPT),
    "--concurrency": (["--concurrency", "4"], "give --rate (an open loop) or --concurrency (a closed loop), not both",
                      "drop --concurrency"),
    "--requests": (["--requests", "3"], KEPT, "drop --requests"),
    "--duration": (["--duration", "2s"], KEPT, "drop --duration"),
    "--max-error-rate": (["--max-error-rate", "0.2"], "--max-error-rate stops a sweep between its levels, and --rate "
                                                      "5 is one level", "and a --trace replay is one level"),
    "--engine": (["--engine", "ray"], "--rate runs on --engine local", "--trace runs on --engine local"),
    "--ray-address": (["--ray-address", "127.0.0.1:6379"], "--rate runs on --engine local (Ray nodes keep clocks of "
                                                           "their own): drop --ray-address",
                      "--trace runs on --engine local (Ray nodes keep clocks of their own): drop --ray-address"),
    "--workers": (["--workers", "1"], KEPT, KEPT),
    "--rate": (["--rate", "5,5"], "--rate lists 5 requests/s twice", "drop --rate"),
    "--arrivals": (["--arrivals", "poisson"], KEPT, "drop --arrivals"),
    "--burstiness": (["--burstiness", "2"], "give --arrivals gamma too", "drop --burstiness"),
    "--seed": (["--seed", "3"], "--seed draws poisson or gamma arrivals", "drop --seed"),
    "--max-concurrency": (["--max-concurrency", "4"], KEPT, KEPT),
    "--trace": (["--trace", "t.jsonl"], "drop --rate", KEPT),
    "--time-scale": (["--time-scale", "2"], "--time-scale stretches a trace: give --trace too", KEPT),
    "--dry-run": (["--dry-run"], KEPT, KEPT),
    "--max-cost": (["--max-cost", "5"], KEPT, KEPT),
    "--run-name": (["--run-name", "x"], KEPT, KEPT),
    "--triggered-by": (["--triggered-by", "x"], KEPT, KEPT),
    "--json": (["--json"], KEPT, KEPT),
    "--traceback": (["--traceback"], KEPT, KEPT),
    "--metrics-file": (["--metrics-file", "m.prom"], KEPT, KEPT),
    "--site": (["--site", "site"], KEPT, KEPT),
}


def test_every_run_flag_has_a_decision_beside_an_open_loop():
    flags = {flag for action in build_parser()._actions for flag in action.option_strings}
    assert flags - {"-h", "--help", "--version"} == set(BESIDE)


def mooncake_trace(directory) -> str:
    """Two Mooncake lines: each gives its output_length and hash_ids."""
    return write_trace(directory / "t.jsonl", [{**LINE, "hash_ids": [1]}, {**later(), "hash_ids": [2]}])


@pytest.mark.parametrize("flag", [flag for flag, (_, rate, _) in BESIDE.items() if rate is not KEPT])
def test_a_flag_an_open_loop_cannot_honour_is_refused_in_one_line(tmp_path, monkeypatch, capsys, flag):
    arguments, message, _ = BESIDE[flag]
    mooncake_trace(tmp_path)
    refused(tmp_path, monkeypatch, capsys, ["--dry-run", "--rate", "5", *arguments], message)


@pytest.mark.parametrize("flag", [flag for flag, (_, _, trace) in BESIDE.items() if trace is not KEPT])
def test_a_flag_a_trace_cannot_honour_is_refused_in_one_line(tmp_path, monkeypatch, capsys, flag):
    arguments, _, message = BESIDE[flag]
    (tmp_path / "p.txt").write_text("a prompt")
    refused(tmp_path, monkeypatch, capsys, ["--dry-run", "--trace", mooncake_trace(tmp_path), *arguments], message)


@pytest.mark.parametrize("args, message", [
    (["--rate", "1,5,1"], "--rate lists 1 requests/s twice: each rate of a sweep is measured once (drop one)"),
    (["--rate", "5,5.0"], "--rate lists 5 requests/s twice"),
    (["--concurrency", "4,4"], "--concurrency lists 4 twice: each level of a sweep is measured once (drop one)"),
    (["--concurrency", "2", "--repeat", "3"], "--repeat is for sequential runs"),
    (["--concurrency", "2", "--max-error-rate", "0.2"], "and --concurrency 2 is one level"),
    (["--max-error-rate", "0.2"], "--max-error-rate is for load runs: give --concurrency too"),
    (["--concurrency", "2", "--ray-address", "127.0.0.1:6379"], "--ray-address is for --engine ray"),
])
def test_a_level_listed_twice_and_what_one_level_cannot_use_are_refused_for_every_loop(tmp_path, monkeypatch, capsys, args, message):
    refused(tmp_path, monkeypatch, capsys, ["--dry-run", *args], message)


def test_warm_caching_and_max_error_rate_are_refused_beside_any_trace(tmp_path, monkeypatch, capsys):
    """Not only beside Mooncake lines: warm never keeps a schedule, and a replay is one level whatever its lines."""
    lines = [{**LINE, "hash_ids": [1]}, {"timestamp": 900, "messages": [{"role": "user", "content": "hi"}]}]
    path = write_trace(tmp_path / "t.jsonl", lines)
    for flags, message in ((["--cache", "warm"], "--cache warm sends an untimed"),
                           (["--max-error-rate", "0.5"], "is one level")):
        refused(tmp_path, monkeypatch, capsys, ["--dry-run", "--trace", path, *flags], message)


def test_max_tokens_and_cache_reach_the_trace_lines_that_leave_them_open_and_no_other(tmp_path):
    lines = [{"timestamp": 0, "messages": [{"role": "user", "content": "hi"}], "output_length": 20},
             {"timestamp": 100, "messages": [{"role": "user", "content": "hi"}]}]
    path = write_trace(tmp_path / "t.jsonl", lines)
    done = run(tmp_path, "--simulate", "--providers", "openai", "--trace", path, "--max-tokens", "3",
               "--cache", "off")
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path, "select prompt_id, output_tokens, cache_mode from benchmark_results order by prompt_id")
    assert [tuple(r) for r in stored] == [("trace-1", 20, "off"), ("trace-2", 3, "off")]


def test_an_open_loop_sends_the_prompt_file_with_max_tokens_and_the_cache_mode_given(tmp_path):
    (tmp_path / "p.txt").write_text("word " * 3000)
    done = run(tmp_path, "--simulate", "--providers", "openai", "--rate", "20", "--requests", "2", "--prompt-file",
               "p.txt", "--max-tokens", "7", "--cache", "off")
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path, "select input_tokens, output_tokens, cache_mode from benchmark_results")
    assert [(r["output_tokens"], r["cache_mode"]) for r in stored] == [(7, "off")] * 2
    assert all(r["input_tokens"] >= 3000 for r in stored)  # the file's, not the built-in prompt (a few dozen)
    (the_run,) = rows(tmp_path, "select settings from runs")
    assert json.loads(the_run["settings"])["max_tokens"] == 7
