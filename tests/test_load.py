"""Load runs: closed loops of requests in flight, sweeps that stop on errors or saturation, the harness judged."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import json
from pathlib import Path
import sqlite3
import subprocess
import sys

import pytest

from benchmarking.executors.tickets import Done
from benchmarking.load.levels import LevelStats, sweep_stop
from benchmarking.measurement import Measurement
from benchmarking.simulator import ModelProfile, Simulator

from test_cli import MAIN, clean_env, rows as db_rows, run_main

QUICK = dict(ttft_ms=20, itl_ms=2, output_tokens=10)


def run(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_main(directory, *args, timeout=300, **env)


def rows(directory: Path, sql: str) -> list[sqlite3.Row]:
    """Rows of the default SQLite file that a run in `directory` wrote."""
    return db_rows(directory / "benchmarks.db", sql)


def endpoint(directory: Path, sim: Simulator, model: str = "m") -> None:
    (directory / "benchmark.toml").write_text(
        f'[[providers]]\nname = "local"\nbase_url = "{sim.base_url("local")}"\nmodel = "{model}"\n')


def most_in_flight(records) -> int:
    """The most requests the server was serving at one moment."""
    events = sorted([(r.received_at, 1) for r in records] + [(r.last_token_at, -1) for r in records])
    busy = peak = 0
    for _, step in events:
        busy += step
        peak = max(peak, busy)
    return peak


def test_a_load_run_keeps_its_levels_in_flight_and_stores_every_request(tmp_path):
    with Simulator(profiles={"m": ModelProfile(**QUICK)}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run(tmp_path, "--providers", "local", "--concurrency", "1,4", "--requests", "12")
        records = [r for r in sim.log if r.model == "m"]
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path, "select concurrency, level_started_at, start_lag_ms, node, success, request_id "
                            "from benchmark_results order by created_at")
    assert len(stored) == 24 and all(r["success"] for r in stored)
    assert [r["concurrency"] for r in stored] == [1] * 12 + [4] * 12  # levels in order
    assert len({r["level_started_at"] for r in stored}) == 2
    assert all(r["start_lag_ms"] is not None and r["start_lag_ms"] >= 0 and r["node"] for r in stored)
    # the closed loop: the first level one at a time, the second 4 at a time and never more
    first = [r for r in records if r.request_id in {s["request_id"] for s in stored[:12]}]
    second = [r for r in records if r.request_id in {s["request_id"] for s in stored[12:]}]
    assert most_in_flight(first) == 1 and most_in_flight(second) == 4
    (the_run,) = rows(tmp_path, "select kind, status, summary, settings from runs")
    assert (the_run["kind"], the_run["status"]) == ("load", "completed")
    sweep = json.loads(the_run["summary"])["load"]["sweeps"][0]
    assert [level["concurrency"] for level in sweep["levels"]] == [1, 4] and sweep["stopped"] is None
    assert sweep["levels"][1]["requests"] == 12 and sweep["levels"][1]["error_rate"] == 0
    assert json.loads(the_run["settings"])["load"]["levels"] == [1, 4]
    held = [level["in_flight_mean"] for level in sweep["levels"]]  # never more in flight than the level
    assert 0.5 < held[0] <= 1.0 and 2.0 < held[1] <= 4.0, held
    assert "Load → local / m at concurrency 4: 12 requests in " in done.stdout and "Harness: start lag p99" in done.stdout


def test_a_sweep_stops_when_the_provider_refuses_too_many(tmp_path):
    # A provider that serves 2 at once and refuses the rest with 429: at 8 in flight most requests fail.
    profile = ModelProfile(**QUICK, capacity=2, over_capacity_429=True)
    with Simulator(profiles={"m": profile}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run(tmp_path, "--providers", "local", "--concurrency", "1,8,16", "--requests", "16",
                   "--max-error-rate", "0.2")
    assert done.returncode == 1  # requests failed
    stored = rows(tmp_path, "select concurrency, error_type from benchmark_results")
    assert {r["concurrency"] for r in stored} == {1, 8}  # 16 never ran
    assert sum(r["error_type"] == "rate_limit" for r in stored if r["concurrency"] == 8) > 3
    summary = json.loads(rows(tmp_path, "select summary from runs")[0]["summary"])["load"]["sweeps"][0]
    assert summary["stopped"].startswith("error rate") and "at concurrency 8 is above --max-error-rate 20%" in \
        summary["stopped"]
    assert summary["levels"][1]["errors"]["rate_limit"] > 3
    assert "Sweep stopped: error rate" in done.stdout


def test_a_sweep_stops_when_throughput_stops_rising(tmp_path):
    # A server that serves 2 at once and queues the rest: beyond 2 in flight, throughput cannot grow (a queue in
    # front of it may add a few %, the client's gap between requests it fills).
    profile = ModelProfile(ttft_ms=40, itl_ms=4, output_tokens=10, capacity=2)
    with Simulator(profiles={"m": profile}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run(tmp_path, "--providers", "local", "--concurrency", "1,2,4,8,16", "--requests", "16")
    assert done.returncode == 0, done.stderr
    summary = json.loads(rows(tmp_path, "select summary from runs")[0]["summary"])["load"]["sweeps"][0]
    levels = [level["concurrency"] for level in summary["levels"]]
    assert levels in ([1, 2, 4], [1, 2, 4, 8]), levels  # never 16
    assert summary["stopped"].startswith(f"throughput stopped rising at concurrency {levels[-1]}")


def test_sweep_stop_rules():
    def level(concurrency, requests, successes, tokens, wall_s=1.0):
        """A level whose requests all start at once and last wall_s, the successes' tokens all on the first."""
        stats = LevelStats(concurrency)
        began = datetime(2026, 11, 20, tzinfo=timezone.utc)
        for index in range(requests):
            ok = index < successes
            m = Measurement("p", "m", ok, began, True, latency_ms=wall_s * 1000 if ok else None,
                            output_tokens=(tokens if index == 0 else 0) if ok else None,
                            error_type=None if ok else "server_error")
            stats.add(Done(m, "w", 0.0, 0.0), began + timedelta(seconds=wall_s))
        return stats

    assert sweep_stop([level(1, 10, 10, 100), level(2, 10, 10, 200)], 0.1) is None
    assert sweep_stop([level(1, 10, 10, 100), level(2, 10, 8, 200)], 0.1).startswith("error rate 20% at concurrency 2")
    assert sweep_stop([level(1, 10, 10, 100), level(2, 10, 10, 104)], 0.1).startswith(
        "throughput stopped rising at concurrency 2: 104 output tokens/s, against 100 before")
    assert sweep_stop([level(1, 10, 10, 100)], 0.1) is None


def test_the_harness_says_when_it_set_the_pace():
    busy = LevelStats(32, requests=4, wall_s=1.0, steady_lags_ms=[1.0, 2.0, 50.0], cpu_s={"a": (1.0, 1.95)})
    assert busy.bottleneck() == ("requests started up to 49 ms late (p99, after the ramp); a worker process was on "
                                 "the CPU 95% of the time")
    calm = LevelStats(32, requests=4, wall_s=1.0, steady_lags_ms=[1.0, 2.0], cpu_s={"a": (1.0, 1.2)})
    assert calm.bottleneck() is None
    ramp_only = LevelStats(32, requests=4, wall_s=1.0, start_lags_ms=[80.0], steady_lags_ms=[], cpu_s={})
    assert ramp_only.bottleneck() is None  # the ramp starts in a burst by design


@pytest.mark.parametrize("args, message", [
    (["--concurrency", "0"], "--concurrency (each level) must be at least 1, not 0"),
    (["--concurrency", "1,x"], "--concurrency (each level) must be a whole number, not 'x'"),
    (["--concurrency", "8", "--requests", "4"], "--requests 4 is below the concurrency 8"),
    (["--requests", "4"], "--requests is for load runs: give --concurrency too"),
    (["--concurrency", "2", "--requests", "4", "--duration", "1m"], "give --requests or --duration, not both"),
    (["--concurrency", "2", "--max-error-rate", "2"], "--max-error-rate is a fraction from 0 to 1"),
    (["--concurrency", "100001"], "--concurrency 100001 is more than this machine can hold"),
    (["--concurrency", "1,2", "--workers", "50"], "--workers 50 is more than the 2 slots of the largest level"),
    (["--concurrency", "2", "--workers", "50", "--dry-run"], "--workers 50 is more than the 2 slots"),
])
def test_bad_load_input_is_one_line_exit_2_and_nothing_sent(tmp_path, args, message):
    done = run(tmp_path, "--simulate", *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "benchmarks.db").exists()


def test_a_load_dry_run_counts_requests_and_bounds_their_cost(tmp_path):
    done = run(tmp_path, "--simulate", "--providers", "openai", "--concurrency", "1,4", "--requests", "8",
               "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "load at concurrency 1, 4 (8, 8 requests a level, per model) = 16 requests" in done.stdout
    assert "Upper bound on cost: $" in done.stdout
    timed = run(tmp_path, "--simulate", "--providers", "openai", "--concurrency", "2", "--duration", "30s",
                "--dry-run")
    assert "No upper bound on cost: --duration gives no count of requests" in timed.stdout
    assert not (tmp_path / "benchmarks.db").exists()


def test_ctrl_c_in_a_load_run_lets_the_requests_in_flight_finish_and_marks_the_run_interrupted(tmp_path):
    import signal
    import time

    with Simulator(profiles={"m": ModelProfile(ttft_ms=50, itl_ms=10, output_tokens=10)}, default=None) as sim:
        endpoint(tmp_path, sim)
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--concurrency", "4",
                                    "--requests", "400"], cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len([r for r in sim.log if r.model == "m"]) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        sent = [r for r in sim.log if r.model == "m"]
    assert process.returncode == 130, err
    assert "Traceback" not in err
    stored = rows(tmp_path, "select count(*) as n, sum(success) as ok from benchmark_results")[0]
    assert 12 <= stored["n"] < 400
    assert stored["n"] == len(sent) and stored["ok"] == stored["n"]  # every request sent was finished and stored
    assert rows(tmp_path, "select status from runs")[0]["status"] == "interrupted"


def test_a_slot_s_first_request_of_a_level_is_due_at_the_level_s_start(tmp_path):
    # At 2 in flight, 5 requests: one slot ends a request earlier than the other and waits for the next level. Its
    # first request there is due when that level started, not when its own last request ended, a request before.
    profile = ModelProfile(ttft_ms=100, itl_ms=5, output_tokens=20)
    with Simulator(profiles={"m": profile}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run(tmp_path, "--providers", "local", "--concurrency", "2,4", "--requests", "5", "--workers", "1")
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path, "select concurrency, started_at, level_started_at, start_lag_ms from benchmark_results")
    assert {r["concurrency"] for r in stored} == {2, 4}
    for r in stored:
        # when the closed loop let it start, on the wall clock: never before its level started
        due = datetime.fromisoformat(r["started_at"]) - timedelta(milliseconds=r["start_lag_ms"])
        assert due >= datetime.fromisoformat(r["level_started_at"]) - timedelta(milliseconds=5), dict(r)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (its children, theirs, ...), from /proc."""
    import os

    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_sigkilled_load_run_leaves_no_worker_process_behind(tmp_path):
    import os
    import signal
    import time

    slow = ModelProfile(ttft_ms=300, itl_ms=20, output_tokens=50)  # requests in flight for over a second
    with Simulator(profiles={"m": slow}, default=None) as sim:
        endpoint(tmp_path, sim)
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--concurrency", "4",
                                    "--requests", "400", "--workers", "2"], cwd=tmp_path, env=clean_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers: set[int] = set()
        try:
            deadline = time.monotonic() + 120
            while len([r for r in sim.log if r.model == "m"]) < 6:  # mid-level, requests in flight
                assert process.poll() is None and time.monotonic() < deadline, "the load run did not start"
                time.sleep(0.05)
            workers = descendants(process.pid)
            assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
            process.kill()
            process.wait(timeout=30)
            deadline = time.monotonic() + 20
            while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = {pid for pid in workers if alive(pid)}
        finally:
            for pid in descendants(process.pid) | workers:  # by pid, whatever the outcome
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            if process.poll() is None:
                process.kill()
    assert not left, f"worker processes outlived their SIGKILLed parent: {sorted(left)}"


@pytest.mark.parametrize("when", ["starting", "mid-level"])
def test_sigterm_to_the_process_group_ends_a_load_run_interrupted_with_its_requests_stored(tmp_path, when):
    """As timeout, systemd and cron send it: to the whole group, workers included. It once hung for ever while the
    workers started (they died, the main process waited), and mid-level lost the requests in flight."""
    import os
    import signal
    import time

    slow = ModelProfile(ttft_ms=300, itl_ms=20, output_tokens=20)
    with Simulator(profiles={"m": slow}, default=None) as sim:
        endpoint(tmp_path, sim)
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--concurrency", "4",
                                    "--requests", "400", "--workers", "2"], cwd=tmp_path, env=clean_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        workers: set[int] = set()
        try:
            deadline = time.monotonic() + 120
            if when == "starting":  # the workers are there, their slots not all ready: nothing sent yet
                while len(descendants(process.pid)) < 2:
                    assert process.poll() is None and time.monotonic() < deadline, "no worker started"
                    time.sleep(0.01)
            else:
                while len([r for r in sim.log if r.model == "m"]) < 6:
                    assert process.poll() is None and time.monotonic() < deadline, "the load run did not start"
                    time.sleep(0.05)
            workers = descendants(process.pid)
            os.killpg(process.pid, signal.SIGTERM)
            _, err = process.communicate(timeout=90)
        finally:
            for pid in descendants(process.pid) | workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            if process.poll() is None:
                process.kill()
    assert process.returncode == 143, err
    runs = rows(tmp_path, "select id, status from runs")
    assert all(r["status"] == "interrupted" for r in runs), err
    if when == "mid-level":  # every request the server saw has its row
        assert len(runs) == 1
        sent = len([r for r in sim.log if r.model == "m"])
        assert len(rows(tmp_path, "select id from benchmark_results")) == sent, err


def test_a_level_beyond_the_descriptor_limit_is_refused_in_one_line_before_anything_starts(tmp_path):
    import resource

    def low_limit() -> None:  # as `ulimit -n 256` would set it, soft and hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    command = [sys.executable, str(MAIN), "--simulate", "--providers", "openai", "--concurrency", "1,400",
               "--workers", "1"]
    done = subprocess.run(command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120,
                          preexec_fn=low_limit)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "--concurrency 400 is more than this machine can hold" in lines[0] and "limit of 256" in lines[0]
    assert not (tmp_path / "benchmarks.db").exists()


def test_the_memory_bound_counts_a_megabyte_a_slot_and_the_workers(monkeypatch):
    from benchmarking.executors import capacity
    from benchmarking.errors import ConfigError

    monkeypatch.setattr(capacity, "available_memory_bytes", lambda: 4 * 2**30)  # 4 GiB: 80 % is 3277 MiB
    monkeypatch.setattr(capacity, "descriptor_limit", lambda: None)
    capacity.check_local_load(3000, 2, 16)  # 3000 + 2 x 60 MiB fit
    with pytest.raises(ConfigError, match=r"--concurrency 5000 is more than this machine can hold: 3156 slots fit"):
        capacity.check_local_load(5000, 2, 16)
    with pytest.raises(ConfigError, match="--workers 3 is more than the 2 slots"):
        capacity.check_local_load(2, 3, 16)
    assert capacity.default_workers(2, 16) == 1 and capacity.default_workers(10_000, 16) <= 10_000


def test_rows_that_passed_through_the_outbox_are_counted_and_the_run_exits_0_once_all_reached_the_database(
        tmp_path, pg_url):
    import re
    import time

    from conftest import apply_schema, pg_rows
    from tcp_proxy import TcpProxy

    apply_schema(pg_url)
    with Simulator(profiles={"m": ModelProfile(**QUICK)}, default=None) as sim, \
            TcpProxy("127.0.0.1", 5432) as proxy:
        endpoint(tmp_path, sim)
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--concurrency", "4",
                                    "--requests", "400"], cwd=tmp_path, env=clean_env(DATABASE_URL=url),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while pg_rows(pg_url, "select count(*) from benchmark_results")[0][0] < 20:
                assert process.poll() is None and time.monotonic() < deadline, "no row reached the database"
                time.sleep(0.05)
            proxy.down()  # PostgreSQL cut for a moment, mid-level: the rows meanwhile go to the outbox
            time.sleep(0.5)
            proxy.up()
            out, err = process.communicate(timeout=240)
        finally:
            if process.poll() is None:
                process.kill()
    stored = pg_rows(pg_url, "select count(*), count(distinct id) from benchmark_results")[0]
    assert stored == (400, 400), err
    assert pg_rows(pg_url, "select status from runs") == [("completed",)]
    kept = re.search(r"400 requests, 400 stored in the database \((\d+) of them through the outbox", out)
    assert kept and int(kept.group(1)) > 0, out + err
    assert process.returncode == 0, err  # every row reached the database before the run ended
    pending = tmp_path / "outbox" / "pending.jsonl"
    assert not pending.exists() or not pending.read_text().strip()


def test_a_level_measures_how_many_requests_it_kept_in_flight_and_says_when_it_fell_short():
    held = LevelStats(4, requests=40, wall_s=10.0, busy_s=38.0)
    assert held.in_flight == pytest.approx(3.8) and held.short_of_level() is None
    short = LevelStats(4, requests=40, wall_s=10.0, busy_s=22.0)
    assert short.short_of_level() == "2.2 requests in flight on average, 55% of the level's 4"
    assert short.summary()["in_flight_mean"] == 2.2
    assert LevelStats(4).in_flight is None and LevelStats(4).short_of_level() is None



@pytest.mark.parametrize("one_clock, held", [(True, True), (False, False)], ids=["local", "ray"])
def test_a_level_s_time_ends_when_its_last_request_ended_not_when_its_row_came_back(one_clock, held):
    """A wave of 1,024 requests that end together comes back row by row, seconds apart (the driver stores each): a
    level held for its requests' whole 33 s read as not held. Local workers' end times are this host's clock; a
    Ray actor's are its node's, so there the time its row came back stands."""
    began = 100.0
    stats = LevelStats(8)
    at = datetime(2026, 12, 8, tzinfo=timezone.utc)
    for index in range(8):
        m = Measurement("p", "m", True, at, True, latency_ms=10_000.0)
        done = Done(m, "w", 0.0, ended=began + 10.0, busy_s=10.0)
        stats.add(done, at)
        stats.request_ended(done, received=began + 10.0 + 0.5 * index, began=began, one_clock=one_clock)
    assert stats.held_s == pytest.approx(10.0 if one_clock else 13.5)
    assert (stats.short_of_level() is None) is held


def test_a_level_s_time_in_flight_is_its_requests_not_the_reading_of_their_answers_after():
    """A slot holds its request while it reads the answer it recorded; 1,024 slots ending together on a worker short
    of CPU read theirs for seconds. The provider saw each request from when it left to its answer's last byte: that
    is its time in flight (not its latency, which ends at the last token), and the level's time ends at the last."""
    began = 100.0
    stats = LevelStats(8)
    at = datetime(2026, 12, 8, tzinfo=timezone.utc)
    for index in range(8):
        read_s = 1.0 + index  # the answer read for 1 to 8 s after it ended
        # Its last token at 9.5 s, the stream's end (usage, [DONE]) at 10 s: in flight until then.
        m = Measurement("p", "m", True, at, True, latency_ms=9_500.0, sent_at_s=began, answered_at_s=began + 10.0)
        done = Done(m, "w", 0.0, ended=began + 10.0 + read_s, busy_s=10.0 + read_s)
        stats.add(done, at)
        stats.request_ended(done, received=began + 10.0 + read_s, began=began, one_clock=True)
    failed = Measurement("p", "m", False, at, True, error_type="timeout")  # no latency: its slot's time stands
    stats.add(Done(failed, "w", 0.0, ended=began + 3.0, busy_s=3.0), at)
    assert stats.busy_s == pytest.approx(8 * 10.0 + 3.0)
    assert stats.held_s == pytest.approx(10.0)
    assert stats.short_of_level() is None  # by the slots' time, 8 requests held for 18 s read as 6.2 in flight

def time_in_flight(spans: list[tuple[float, float]]) -> float:
    """The time-weighted mean of how many spans were open, from the first start to the last end."""
    return sum(end - start for start, end in spans) / (max(e for _, e in spans) - min(s for s, _ in spans))


def test_counting_tokens_with_the_server_s_tokenizer_never_holds_a_load_slot(tmp_path):
    import time

    from test_wire_truth import chunk, stream
    from wire_server import WireServer

    def slow_count(body):  # a tokenizer that answers after 0.2 s, as one queued behind generation does
        time.sleep(0.2)
        if "messages" in body:
            return 200, {"count": 7, "max_model_len": 8192, "tokens": []}
        return 200, {"count": len(str(body["prompt"]).split()), "max_model_len": 8192, "tokens": []}

    with WireServer() as server:
        server.routes["/tokenize"] = slow_count  # vLLM's
        # generation 0.1 s, no usage: the rows' tokens come from /tokenize
        server.reply(stream(chunk({"content": "one two "}), chunk({"content": "three four five"}, "stop"),
                            gap_s=0.05))
        (tmp_path / "benchmark.toml").write_text(f'[[providers]]\nname = "local"\nbase_url = "{server.url}/v1"\n'
                                                 'model = "m"\ntoken_count = "tokenize"\n')
        done = run(tmp_path, "--providers", "local", "--concurrency", "2", "--requests", "24", "--workers", "1")
        spans = [(s.received_at, s.part_sent_at[-1]) for s in server.served]
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path, "select output_tokens, input_tokens, token_source, tokens_per_second "
                            "from benchmark_results")
    assert len(stored) == 24 and len(spans) == 24
    assert {(r["output_tokens"], r["input_tokens"], r["token_source"]) for r in stored} == {(5, 7, "tokenize")}
    assert all(r["tokens_per_second"] is not None for r in stored)
    # the server had 2 generations in flight nearly all the time (with 0.4 s of counting in each slot: 0.5)
    assert time_in_flight(spans) > 1.5
    level = json.loads(rows(tmp_path, "select summary from runs")[0]["summary"])["load"]["sweeps"][0]["levels"][0]
    assert 1.5 < level["in_flight_mean"] <= 2.0
    # The console says the level was not held exactly when its figure is under 90 % (a busy machine may hold it at
    # 1.79: then it says so, and truly). The stored figure is rounded to 0.01: a stored 1.8 was 1.795 to 1.805, on
    # either side of the line (seen in CI with both cores busy: 1.7996, said not held, stored 1.8).
    said = "this level was not held" in done.stdout
    if level["in_flight_mean"] != 1.8:
        assert said == (level["in_flight_mean"] < 1.8)
    else:
        assert ("90% of the level's 2" not in done.stdout) and (not said or "89% of the level's 2" in done.stdout)


def test_rows_kept_in_an_outbox_that_cannot_be_read_at_the_end_are_never_said_to_have_reached_the_database(tmp_path):
    from uuid import uuid4

    from benchmarking.benchmark_runner import SavedMeasurement
    from benchmarking.app.delivery import settle_notes
    from benchmarking.measurement import Measurement, utc_now
    from benchmarking.storage.outbox import Outbox

    outbox = Outbox(tmp_path / "outbox", warn=lambda line: None)
    measured = Measurement(provider="p", model="m", success=True, started_at=utc_now(), stream=True)
    kept = SavedMeasurement(uuid4(), utc_now(), measured,
                            storage_note="database unavailable: kept in outbox/pending.jsonl")
    stored = SavedMeasurement(uuid4(), utc_now(), measured)
    assert outbox.waiting_ids("db") == set()  # no outbox at all: nothing waits
    (tmp_path / "outbox" / "pending.jsonl").mkdir(parents=True)  # there, and unreadable
    waiting = outbox.waiting_ids("db")
    assert waiting is None
    delivery = settle_notes("run", [kept, stored], ["kept in outbox"], waiting, [])
    assert delivery.waiting == 1 and delivery.results[0].storage_note is not None
    assert delivery.run_notes == ("kept in outbox",)
    assert "1 still waiting" in delivery.stored_line("outbox")
    gone = settle_notes("run", [kept, stored], ["kept in outbox"], set(), [])  # read, and the row is not there
    assert gone.waiting == 0 and gone.results[0].storage_note is None and gone.run_notes == ()


def test_a_worker_process_killed_mid_level_ends_the_run_failed_with_a_line_instead_of_waiting_forever(tmp_path):
    import os
    import signal
    import time

    slow = ModelProfile(ttft_ms=300, itl_ms=20, output_tokens=20)
    with Simulator(profiles={"m": slow}, default=None) as sim:
        endpoint(tmp_path, sim)
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--concurrency", "4",
                                    "--requests", "400", "--workers", "2"], cwd=tmp_path, env=clean_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while len([r for r in sim.log if r.model == "m"]) < 6:
                assert process.poll() is None and time.monotonic() < deadline, "the load run did not start"
                time.sleep(0.05)
            workers = [pid for pid in descendants(process.pid)
                       if "resource_tracker" not in open(f"/proc/{pid}/cmdline").read()]
            os.kill(workers[0], signal.SIGKILL)  # as the OOM killer would
            out, err = process.communicate(timeout=90)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 1, err
    assert "Traceback" not in err and "worker process local-" in err and "ended" in err, err
    assert rows(tmp_path, "select status from runs")[0]["status"] == "failed"
    assert 0 < rows(tmp_path, "select count(*) as n from benchmark_results")[0]["n"] < 400


def test_a_failure_ends_when_it_failed_not_at_its_last_output():
    """A stream that stopped after its first token and timed out at 3 s stores a latency of 45 ms (when its last
    output came); two such waves of 3 s at 2 in flight read as 4 requests in 3.0 s, 1.33 requests/s, where they took
    6 s. A failure ends when it was stored; a success at its start plus its latency."""
    from benchmarking.figures import level_figures

    began = datetime(2026, 12, 8, tzinfo=timezone.utc)
    rows = []
    for wave in range(2):
        for _ in range(2):
            started = began + timedelta(seconds=3 * wave)
            m = Measurement("p", "m", False, started, True, ttft_ms=45.0, latency_ms=45.0, error_type="timeout")
            rows.append((None, m, started + timedelta(seconds=3.0)))
    figures = level_figures(rows, (50,))
    assert figures.wall_s == pytest.approx(6.0)
    assert figures.requests_per_s == pytest.approx(4 / 6.0, rel=1e-3)
