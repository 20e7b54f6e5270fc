"""A real Prometheus server (Debian's `prometheus`) scrapes a real schedule's /metrics and, through node_exporter's
textfile collector (Debian's `prometheus-node-exporter`), the textfile over the stored history; the test asks
Prometheus's HTTP API for the series and compares them with the rows in the database.

Skipped where either program is missing, unless BENCHMARK_REQUIRE_PROMETHEUS is set (CI), where it fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from urllib.parse import urlencode
from urllib.request import urlopen
from uuid import uuid4

import pytest

from benchmarking.simulator import ModelProfile, Simulator

from test_cli import READ_VARIABLES
from test_prometheus import free_port

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
DEADLINE_S = 90


def require_programs() -> None:
    missing = [name for name, path in (("prometheus", PROMETHEUS), ("prometheus-node-exporter", NODE_EXPORTER))
               if path is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not installed (apt-get install prometheus prometheus-node-exporter)"
    if os.environ.get("BENCHMARK_REQUIRE_PROMETHEUS"):
        pytest.fail(f"required (BENCHMARK_REQUIRE_PROMETHEUS is set): {reason}")
    pytest.skip(reason)


def wait_for(what: str, check, process: subprocess.Popen | None = None):
    """Poll until check() returns something truthy, with a deadline (never a fixed sleep)."""
    deadline = time.monotonic() + DEADLINE_S
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process ended early with {process.returncode}")
        try:
            last = check()
            if last:
                return last
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {DEADLINE_S} s (last: {last!r})")


def query(port: int, promql: str) -> dict[tuple, float]:
    """An instant query: {(label, value) pairs without __name__: value}."""
    with urlopen(f"http://127.0.0.1:{port}/api/v1/query?{urlencode({'query': promql})}", timeout=5) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return {tuple(sorted((k, v) for k, v in item["metric"].items() if k != "__name__")): float(item["value"][1])
            for item in body["data"]["result"]}


def by(result: dict[tuple, float], *names: str) -> dict[tuple, float]:
    """Values keyed by these labels; a label with an empty value is no label to Prometheus: it reads as ''."""
    return {tuple(dict(key).get(n, "") for n in names): value for key, value in result.items()}


def start(command: list[str], log: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, **kwargs)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def simulator():
    profiles = {"fast": ModelProfile(ttft_ms=30, itl_ms=3, output_tokens=12),
                "broken": ModelProfile(ttft_ms=10, itl_ms=1, output_tokens=4, fault="server")}
    with Simulator(profiles=profiles, default=None) as sim:
        yield sim


def test_prometheus_scrapes_the_live_endpoint_and_the_textfile_and_both_match_the_database(tmp_path, simulator):
    require_programs()
    work, textfiles = tmp_path / "work", tmp_path / "textfiles"
    work.mkdir()
    textfiles.mkdir()
    (work / "benchmark.toml").write_text(
        f'[[providers]]\nname = "good"\nbase_url = "{simulator.base_url("good")}"\nmodel = "fast"\n'
        'input_price = "1.00"\noutput_price = "2.00"\n'
        f'[[providers]]\nname = "bad"\nbase_url = "{simulator.base_url("bad")}"\nmodel = "broken"\n'
    )
    database = work / "benchmarks.db"
    env = {k: v for k, v in os.environ.items() if not any(part in k for part in READ_VARIABLES)}
    env.update(DATABASE_URL=f"sqlite:///{database}", PYTHONUNBUFFERED="1")
    common = ["--providers", "good,bad", "--repeat", "2"]

    # History before the schedule: one run the textfile counts and the live endpoint (this process's runs) does not.
    before = subprocess.run([sys.executable, str(ROOT / "main.py"), *common], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert before.returncode == 1, before.stderr  # the broken model fails: exit 1
    with sqlite3.connect(database) as db:
        # An alert as the rules open one (or as the run's own evaluation already did: then this adds nothing).
        db.execute("insert into alerts (id, rule, provider, model, metric, state, started_at, last_seen_at) values "
                   "(?, 'outage', 'bad', 'broken', NULL, 'firing', ?, ?) on conflict do nothing",
                   (str(uuid4()), "2026-11-29T00:00:00+00:00", "2026-11-29T00:00:00+00:00"))

    live_port, node_port, prometheus_port = free_port(), free_port(), free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
        f"  - job_name: live\n    static_configs:\n      - targets: ['127.0.0.1:{live_port}']\n"
        f"  - job_name: textfile\n    static_configs:\n      - targets: ['127.0.0.1:{node_port}']\n"
    )
    processes = []
    try:
        processes.append(start([NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
                                f"--collector.textfile.directory={textfiles}",
                                f"--web.listen-address=127.0.0.1:{node_port}"], tmp_path / "node.log"))
        processes.append(start([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{prometheus_port}"], tmp_path / "prometheus.log"))
        schedule = start([sys.executable, str(ROOT / "run_scheduled.py"), *common, "--runs", "2", "--interval", "1h",
                          "--metrics-port", f"127.0.0.1:{live_port}",
                          "--metrics-file", str(textfiles / "benchmark.prom")],
                         tmp_path / "schedule.log", cwd=work, env=env)
        processes.append(schedule)

        def scraped() -> bool:
            totals = by(query(prometheus_port, "sum by (job) (benchmark_engine_requests_total)"), "job")
            return totals == {("live",): 4.0, ("textfile",): 8.0}  # the schedule's first run; both runs

        wait_for("Prometheus has both jobs' requests", scraped, schedule)
        with sqlite3.connect(database) as db:
            rows = db.execute(
                "select r.run_id, r.provider, r.success, r.error_type, r.ttft_ms, r.latency_ms, r.cost_usd, "
                "r.created_at from benchmark_results r order by r.created_at").fetchall()
        newest_run = rows[-1][0]
        for job, wanted in (("live", [r for r in rows if r[0] == newest_run]), ("textfile", rows)):
            requests = by(query(prometheus_port, f'benchmark_engine_requests_total{{job="{job}"}}'),
                          "provider", "outcome", "error_type", "mode")
            # Every provider's success counter exists, at 0 until its first success.
            expected: dict[tuple, float] = {(r[1], "success", "", "live"): 0 for r in wanted}
            for _, provider, success, error_type, *_ in wanted:
                key = (provider, "success" if success else "failure", "" if success else error_type, "live")
                expected[key] = expected.get(key, 0) + 1
            assert requests == expected, job
            successes = [r for r in wanted if r[2]]
            ttft_sum = by(query(prometheus_port, f'benchmark_engine_ttft_seconds_sum{{job="{job}"}}'), "provider")
            assert ttft_sum[("good",)] == pytest.approx(sum(r[4] for r in successes) / 1000, rel=1e-9)
            assert ttft_sum[("bad",)] == 0
            latency_count = by(query(prometheus_port, f'benchmark_engine_latency_seconds_count{{job="{job}"}}'),
                               "provider")
            assert latency_count == {("good",): len(successes), ("bad",): 0}
            last_cost = by(query(prometheus_port, f'benchmark_engine_last_cost_usd{{job="{job}"}}'), "provider")
            assert last_cost == {("good",): pytest.approx(successes[-1][6], rel=1e-12)}
            alerts = by(query(prometheus_port, f'benchmark_engine_alert_firing{{job="{job}"}}'),
                        "rule", "provider", "model", "metric")
            assert alerts == {("outage", "bad", "broken", ""): 1.0}
        schedule.send_signal(signal.SIGTERM)  # waiting for its second run (in an hour): stopped between runs
        assert schedule.wait(timeout=30) == 143, (tmp_path / "schedule.log").read_text()
    finally:
        for process in reversed(processes):
            stop(process)
