"""The benchmark scripts still run: each with its tiny settings, its tables and figures where they should be.

The figures themselves are not held to the targets here (a loaded CI machine would make that flaky); the scripts
print whether the targets are met.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"[+-]?\d+\.\d+"


def run_script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args],
                          capture_output=True, text=True, timeout=600)  # a bound for a hang, not a speed
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_accuracy_quick_prints_a_table_per_provider():
    out = run_script("accuracy.py", "--quick")
    assert out.startswith("accuracy: measured minus the simulator's own record")
    assert "machine: " in out
    chat = "chat_completions"
    for provider, sdk, api in (("openai", "openai", chat), ("groq", "groq", chat), ("together", "together", chat),
                               ("openrouter", "openai", chat), ("anthropic", "anthropic", "messages"),
                               ("gemini", "google-genai", "generate_content"), ("openai:responses", "openai",
                                                                                "responses")):
        section = out.split(f"\n{provider} (SDK: {sdk}, API: {api})\n", 1)[1].split("\n\n", 1)[0]
        total = re.search(rf"all targeted\s+3\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+3/3\s+"
                          rf"({NUMBER})\s+({NUMBER})", section)
        assert total, section
        ttft_p50, _, latency_p50, _, client_cpu, process_cpu = map(float, total.groups())
        # A sanity bound, not the target: a clock read after the SDK's parsing was once 90 ms late.
        assert abs(ttft_p50) < 25 and abs(latency_p50) < 25, section
        assert 0 < client_cpu <= process_cpu, section
        assert re.search(rf"first request of the process \(50ms/5ms/10\): TTFT error {NUMBER} ms", section), section
        assert re.search(r"targets: \|error\| p50 .*: (ok|MISSED); p99 .*; tokens exact: ok; first request", section)
    # A row per API, over the providers that speak it (the per-dialect target)
    dialects = out.split("\nper API (dialect)", 1)[1].split("\n\n", 1)[0]
    for api, n in ((chat, 12), ("messages", 3), ("generate_content", 3), ("responses", 3)):
        assert re.search(rf"^  {api}\s+{n}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+(ok|MISSED)$", dialects,
                         re.M), dialects
    assert re.search(r"^(all targets met|MISSED: .+)$", out, re.M)


def test_startup_quick_times_help_and_a_simulated_run():
    out = run_script("startup.py", "--quick")
    assert re.search(rf"main.py --help\s+{NUMBER} s \(min .*\)\s+target < 0.3 s: (ok|MISSED)", out), out
    assert re.search(rf"main.py --simulate --providers openai\s+{NUMBER} s", out), out
    assert re.search(rf"of which the simulated request itself {NUMBER} s .* the tool around it: {NUMBER} s", out)
    assert re.search(r"main.py --help: \d+ ms of imports in all\n    top-level imports, cumulative:  benchmarking\.cli",
                     out), out
    assert "main.py --simulate --providers openai: " in out and "openai" in out.split("imports that dominate")[1]


def test_storage_quick_times_saves_and_reads_on_each_backend():
    out = run_script("storage.py", "--quick")
    sqlite = out.split("\nSQLite", 1)[1].split("\n\n", 1)[0]
    for size in ("10", "100"):
        assert re.search(rf"^\s+{size}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", sqlite, re.M), sqlite
    assert re.search(rf"read_results\(with_text=False\) on 105 results: {NUMBER} s", sqlite), sqlite
    for args in ("", "--by hour", "--by region", "--window 72h", "--last", "--since 7d"):
        assert re.search(rf"python main.py report {args}\s+on 105 results: {NUMBER} s", sqlite), (args, sqlite)
    if "PostgreSQL: not reachable" in out:
        assert not os.environ.get("BENCHMARK_REQUIRE_POSTGRES")
    else:
        postgres = out.split("\nPostgreSQL", 1)[1]
        assert re.search(rf"^\s+100\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", postgres, re.M), postgres
        assert re.search(rf"read_results\(with_text=False\) on 105 results: {NUMBER} s", postgres), postgres
        assert re.search(rf"python main.py report --by hour\s+on 105 results: {NUMBER} s", postgres), postgres


def test_workloads_quick_times_prompt_building_and_planning():
    out = run_script("workloads.py", "--quick")
    assert re.search(rf"100,000 tokens\s+({NUMBER}) ms", out), out
    assert re.search(rf"planning 1,000 cells \(4 providers x 5 models x 50 prompts\): ({NUMBER}) ms", out), out
    assert "tier sizes by the o200k vocabulary" in out
    assert re.search(r"^(all targets met|MISSED: .+)$", out, re.M)


def test_metrics_quick_times_the_history_read_and_the_textfile():
    out = run_script("metrics.py", "--quick")
    sqlite = out.split("\nSQLite\n", 1)[1].split("\n\n", 1)[0]
    assert re.search(rf"history_metrics\(\) on 100 results: {NUMBER} s \(narrow read", sqlite), sqlite
    assert re.search(rf"the same from read_results\(with_text=False\): {NUMBER} s", sqlite), sqlite
    assert re.search(rf"write_textfile\(\): {NUMBER} s \([\d,]+ bytes\)", sqlite), sqlite
    if "PostgreSQL: not reachable" in out:
        assert not os.environ.get("BENCHMARK_REQUIRE_POSTGRES")
    else:
        assert re.search(rf"history_metrics\(\) on 100 results: {NUMBER} s", out.split("\nPostgreSQL\n", 1)[1])


def test_site_quick_times_report_site_beside_plain_report():
    out = run_script("site.py", "--quick")
    assert "machine: " in out
    assert re.search(rf"^\s+1,000 results: report --site {NUMBER} s, CPU {NUMBER} s \(median of 3; .*\); plain "
                     rf"`report` {NUMBER} s, CPU {NUMBER} s; data.js \d+ kB, the whole site \d+ kB$", out, re.M), out


def test_open_loop_quick_prints_each_arrival_kind_against_the_server_s_log():
    out = run_script("open_loop.py", "--quick")
    assert out.startswith("open loop: arrivals at 20 requests/s against the simulator's own log")
    for kind in ("constant", "poisson", "gamma"):
        line = re.search(rf"^  {kind}\s+40\s+({NUMBER}) %\s+({NUMBER}) %(\s+{NUMBER}){{5}}\s+(ok|MISSED)$", out, re.M)
        assert line, out
        assert abs(float(line.group(2))) < 25, line.group(0)  # a sanity bound, not the target
    assert re.search(r"^targets \(mean gap within 5% of 1/rate, off-schedule p99 <= 5 ms\): (all met|MISSED for .+)$",
                     out, re.M)
