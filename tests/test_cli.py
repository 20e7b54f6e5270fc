"""main.py end to end: the simulated run as a subprocess, exit statuses, one-line errors, --json, Ctrl-C."""

from __future__ import annotations

from dataclasses import replace
import json
import os
from pathlib import Path
import sqlite3
import subprocess
import sys

import pytest

from benchmarking import benchmark_runner
from benchmarking.benchmark_runner import RunInterrupted, run_benchmark
from benchmarking.cli import ExitStatus, main
from benchmarking.settings.load import load_settings
from benchmarking.settings.values import Secret
from benchmarking.console import ConsoleReporter
from benchmarking.simulator import ModelProfile

from conftest import FAKE_KEY

MAIN = Path(__file__).resolve().parent.parent / "main.py"
READ_VARIABLES = ("_API_KEY", "_MODEL", "_BASE_URL", "DATABASE_URL", "SUPABASE_", "BENCHMARK_")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not any(part in k for part in READ_VARIABLES)}
    env.update(extra)
    return env


def run_main(tmp_path: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *args], cwd=tmp_path, env=clean_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def rows(db: Path, sql: str) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql).fetchall()


def test_simulated_run_stores_every_result_in_sqlite(tmp_path):
    done = run_main(tmp_path, "--simulate", "--run-name", "ci", BENCHMARK_HOST="box-1", BENCHMARK_REGION="eu-west")
    assert done.returncode == 0, done.stderr
    assert "Testing → groq / openai/gpt-oss-20b" in done.stdout
    assert "Summary: run" in done.stdout

    (run,) = rows(tmp_path / "benchmarks.db", "select * from runs")
    assert (run["run_name"], run["triggered_by"], run["status"], run["mode"]) == ("ci", "cli", "completed", "simulated")
    assert (run["host"], run["region"]) == ("box-1", "eu-west")
    assert run["finished_at"] > run["started_at"]
    settings = json.loads(run["settings"])
    assert settings["max_tokens"] == 256 and settings["stream"] is True and settings["repeat"] == 1
    assert settings["providers"]["together"] == "openai/gpt-oss-120b"

    results = rows(tmp_path / "benchmarks.db", "select * from benchmark_results order by created_at")
    assert [r["provider"] for r in results] == ["openai", "groq", "together", "openrouter", "anthropic", "gemini"]
    for r in results:
        assert r["run_id"] == run["id"] and r["success"] == 1
        assert r["ttft_ms"] > 0 and r["latency_ms"] > r["ttft_ms"] and r["output_tokens"] > 0
        assert r["cost_usd"] > 0
    assert {r["cost_source"] for r in results} == {"pricing", "provider"}


def test_database_url_picks_the_sqlite_file(tmp_path):
    done = run_main(tmp_path, "--simulate", "--providers", "groq", "--repeat", "2",
                    DATABASE_URL="sqlite:///data/bench.db")
    assert done.returncode == 0, done.stderr
    assert len(rows(tmp_path / "data" / "bench.db", "select * from benchmark_results")) == 2
    assert not (tmp_path / "benchmarks.db").exists()


def test_json_prints_the_results_on_stdout_and_progress_on_stderr(tmp_path):
    done = run_main(tmp_path, "--simulate", "--providers", "openai,together", "--json", "--no-stream")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["run"]["status"] == "completed" and payload["run"]["mode"] == "simulated"
    assert [r["provider"] for r in payload["results"]] == ["openai", "together"]
    assert all(r["stream"] is False and r["ttft_ms"] is None and r["saved"] for r in payload["results"])
    assert "Testing → openai" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--repeat", "0"], "--repeat must be at least 1"),
        (["--timeout", "soon"], "--timeout must be a number of seconds"),
        (["--providers", "openai,nope"], "unknown provider 'nope'; known: openai, groq, together, openrouter"),
        (["--model", "gpt-4o"], "--model takes provider=model"),
        (["--model", "azure=gpt-4o"], "unknown provider 'azure'"),
        (["--prompt-file", "missing.txt"], "cannot read --prompt-file missing.txt"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--config", "nope.toml"], "config file nope.toml does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(tmp_path, args, message):
    done = run_main(tmp_path, "--simulate", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "benchmarks.db").exists()


def test_no_keys_and_no_simulate_exits_2_naming_each_variable(tmp_path):
    done = run_main(tmp_path)
    assert done.returncode == 2
    for variable in ("OPENAI_API_KEY", "GROQ_API_KEY", "TOGETHER_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY"):
        assert f"set {variable}" in done.stderr
    assert "--simulate" in done.stderr and ".env.example" in done.stderr
    assert not (tmp_path / "benchmarks.db").exists()


def test_env_file_is_read_and_keys_never_printed_or_stored(tmp_path):
    # A live run whose endpoint rejects the key: the key comes from .env, the failure is recorded, exit 1.
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={FAKE_KEY}\nOPENAI_BASE_URL=http://127.0.0.1:9/v1\n")
    done = run_main(tmp_path, "--timeout", "2")
    assert done.returncode == 1, done.stderr
    assert "skipping groq: set GROQ_API_KEY" in done.stderr
    (result,) = rows(tmp_path / "benchmarks.db", "select * from benchmark_results")
    assert (result["provider"], result["success"], result["error_type"]) == ("openai", 0, "connection")
    stored = " ".join(str(v) for r in rows(tmp_path / "benchmarks.db", "select * from runs") for v in r)
    stored += " ".join(str(v) for v in result)
    for text in (done.stdout, done.stderr, stored):
        assert FAKE_KEY not in text


def simulated_settings(sim, tmp_path, **changes):
    settings = load_settings(prompt="hi", builtin=[(n, m) for n, _, m in benchmark_runner.PROVIDERS],
                             environ={"BENCHMARK_HOST": "t"}, simulate=True)
    settings = settings.pointed_at({p.name: sim.base_url(p.name) for p in settings.providers}, FAKE_KEY)
    return replace(settings, **changes)


def test_a_failing_provider_is_recorded_and_the_run_goes_on(sim, storage, tmp_path, capsys):
    sim.set_profile("openai/gpt-oss-20b", ModelProfile(fault="auth"))  # groq's default model
    settings = simulated_settings(sim, tmp_path)
    outcome = run_benchmark(settings, storage, ConsoleReporter(sys.stdout))
    assert outcome.status == "failed" and not outcome.all_succeeded
    stored = storage.read_results()
    assert [(r.measurement.provider, r.measurement.success) for r in stored] == [
        ("openai", True), ("groq", False), ("together", True), ("openrouter", True), ("anthropic", True),
        ("gemini", True)]
    assert storage.read_runs()[0].status == "failed"
    out = capsys.readouterr().out
    assert "Failed (groq): auth" in out and FAKE_KEY not in out


def test_ctrl_c_marks_the_run_interrupted_and_keeps_what_was_measured(sim, storage, tmp_path, monkeypatch):
    calls = []

    def interrupted(prompt, model, settings):
        calls.append(model)
        raise KeyboardInterrupt

    real = benchmark_runner.PROVIDERS
    monkeypatch.setattr(benchmark_runner, "PROVIDERS", [real[0], ("groq", interrupted, real[1][2]), *real[2:]])
    with pytest.raises(RunInterrupted) as caught:
        run_benchmark(simulated_settings(sim, tmp_path), storage, ConsoleReporter(sys.stdout))
    assert len(caught.value.outcome.results) == 1
    (run,) = storage.read_runs()
    assert run.status == "interrupted" and run.finished_at is not None
    assert [r.measurement.provider for r in storage.read_results()] == ["openai"]
    assert calls == ["openai/gpt-oss-20b"]


def test_main_maps_ctrl_c_to_exit_130(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if any(part in name for part in READ_VARIABLES):
            monkeypatch.delenv(name)

    def interrupted(prompt, model, settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark_runner, "PROVIDERS", [("openai", interrupted, "gpt-4o-mini")])
    assert main(["--simulate"]) == ExitStatus.INTERRUPTED == 130
    assert "marked interrupted; 0 results stored in the database" in capsys.readouterr().err
    assert rows(tmp_path / "benchmarks.db", "select status from runs")[0]["status"] == "interrupted"


def test_secret_never_shows_itself():
    secret = Secret(FAKE_KEY)
    assert FAKE_KEY not in repr(secret) and FAKE_KEY not in f"{secret}" and secret.reveal() == FAKE_KEY
