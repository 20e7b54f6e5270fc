"""Open-loop load (--rate): the arrival schedule (pure), requests that keep it against the server's own log, the
harness judged when it falls behind, the flags at their edges, and `report --by rate`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import json
import statistics

import pytest

from benchmarking.executors.tickets import Done
from benchmarking.load.arrivals import ARRIVALS, DEFAULT_SEED, gaps, level_seed, schedule
from benchmarking.load.levels import LevelStats, LoadSettings, lag_growth
from benchmarking.load.open import default_max_concurrency
from benchmarking.measurement import Measurement
from benchmarking.simulator import ModelProfile, Simulator

from test_load import QUICK, endpoint, rows, run


def cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


def between(offsets: list[float]) -> list[float]:
    return [b - a for a, b in zip(offsets, offsets[1:])]


# ---- the schedule (pure) -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ARRIVALS)
def test_the_same_seed_gives_the_same_schedule_and_another_seed_another(kind):
    first = schedule(kind, 20.0, seed=7, burstiness=0.5, requests=500)
    assert first == schedule(kind, 20.0, seed=7, burstiness=0.5, requests=500) and len(first) == 500
    assert first[0] == 0.0 and all(b >= a for a, b in zip(first, first[1:]))
    assert (first == schedule(kind, 20.0, seed=8, burstiness=0.5, requests=500)) is (kind == "constant")


def test_constant_arrivals_are_exactly_one_over_the_rate_apart():
    offsets = schedule("constant", 20.0, seed=1, requests=101)
    assert offsets[-1] == pytest.approx(5.0) and max(between(offsets)) == pytest.approx(min(between(offsets)))


def test_poisson_gaps_have_a_mean_of_one_over_the_rate_and_a_coefficient_of_variation_near_1():
    drawn = list(schedule("poisson", 20.0, seed=42, requests=20_001))
    assert statistics.fmean(between(drawn)) == pytest.approx(0.05, rel=0.03)
    assert cv(between(drawn)) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_gaps_keep_the_mean_and_their_burstiness_sets_the_spread(burstiness):
    drawn = [gap for gap, _ in zip(gaps("gamma", 10.0, seed=3, burstiness=burstiness), range(20_000))]
    assert statistics.fmean(drawn) == pytest.approx(0.1, rel=0.05)
    assert cv(drawn) == pytest.approx(burstiness ** -0.5, rel=0.08)  # 1 is Poisson's


def test_a_duration_bounds_the_schedule_and_each_rate_of_a_sweep_draws_its_own():
    offsets = schedule("poisson", 50.0, seed=5, duration_s=2.0)
    assert offsets and max(offsets) < 2.0 and 60 < len(offsets) < 140
    assert level_seed(5, 0) != level_seed(5, 1) and level_seed(5, 1) == level_seed(5, 1)


def test_the_default_slots_follow_little_s_law_within_bounds():
    assert default_max_concurrency((1.0,), None) == 16  # 10 in flight at most: the floor
    assert default_max_concurrency((1.0, 5.0, 20.0), None) == 200  # 20/s, requests of up to 10 s
    assert default_max_concurrency((1000.0,), None) == 256
    assert default_max_concurrency((20.0,), 40) == 40  # never more slots than a level's requests


# ---- the harness judged ---------------------------------------------------------------------------------------------

def done(lag_ms: float, due: datetime, waited: bool = False) -> Done:
    m = Measurement(provider="p", model="m", success=True, started_at=due, stream=True, latency_ms=100.0,
                    ttft_ms=10.0, output_tokens=10, start_lag_ms=lag_ms, scheduled_at=due, request_rate=20.0)
    return Done(m, "local-0", 0.0, 0.0, waited_for_slot=waited)


def test_lags_that_grow_over_a_rate_mark_it_harness_bound_and_steady_small_ones_do_not():
    assert lag_growth([1.0] * 40) is None and lag_growth([1.0, 9.0]) is None  # too few to tell
    assert "from 1 ms" in (lag_growth([1.0] * 10 + [5.0] * 20 + [40.0] * 10) or "")
    start = datetime(2026, 12, 7, tzinfo=timezone.utc)
    steady, growing, falling = (LevelStats(16, rate=20.0) for _ in range(3))
    for index in reversed(range(40)):  # rows come back out of order: lags are read in the order they were due
        due = start + timedelta(seconds=index / 20)
        steady.add(done(1.0 + index % 3, due), due)
        growing.add(done(index * 0.25, due), due)  # p99 under 10 ms: only the growth tells
        falling.add(done((39 - index) * 0.25, due), due)
    assert steady.bottleneck() is None and steady.short_of_level() is None
    assert "start lags grew over the level, from 1 ms" in (growing.bottleneck() or "")
    assert "requests started up to" not in (growing.bottleneck() or "")
    assert "grew" not in (falling.bottleneck() or "")
    waited = LevelStats(4, rate=20.0)
    for index in range(8):
        due = start + timedelta(seconds=index / 20)
        waited.add(done(1.0, due, waited=index > 3), due)
    assert "4 requests were due while all 4 slots were busy" in (waited.bottleneck() or "")
    assert waited.summary()["waited_for_slot"] == 4 and waited.summary()["request_rate"] == 20.0


def test_a_rate_s_requests_default_to_ten_seconds_of_its_arrivals():
    load = LoadSettings(levels=(), rates=(0.5, 20.0), max_concurrency=8)
    assert [load.requests_at(rate) for rate in load.steps] == [10, 200] and load.slots == 8
    assert LoadSettings(levels=(), rates=(5.0,), duration_s=3.0).requests_at(5.0) is None


# ---- the flags at their edges ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--rate", "0"], "--rate must be from 0.01 to 10000 requests per second, not '0'"),
    (["--rate", "-5"], "--rate must be from"),
    (["--rate", "nan"], "--rate must be from"),
    (["--rate", "inf"], "--rate must be from"),
    (["--rate", "1e400"], "--rate must be from"),
    (["--rate", "1e9"], "--rate must be from"),
    (["--rate", "fast"], "--rate takes requests per second"),
    (["--rate", "1,,5"], "--rate takes requests per second"),
    (["--rate", ""], "--rate takes requests per second"),
    (["--rate", "5", "--concurrency", "4"], "give --rate (an open loop) or --concurrency (a closed loop), not both"),
    (["--rate", "5", "--requests", "0"], "--requests must be at least 1"),
    (["--rate", "5", "--requests", "4", "--duration", "1m"], "give --requests or --duration, not both"),
    (["--rate", "5", "--burstiness", "2"], "--burstiness is gamma's shape: give --arrivals gamma too"),
    (["--rate", "5", "--arrivals", "gamma", "--burstiness", "0"], "--burstiness must be from 0.01 to 100"),
    (["--rate", "5", "--arrivals", "gamma", "--burstiness", "nan"], "--burstiness must be from"),
    (["--rate", "5", "--arrivals", "gamma", "--burstiness=-inf"], "--burstiness must be from"),
    (["--rate", "5", "--arrivals", "gamma", "--burstiness", "x"], "--burstiness takes a number"),
    (["--rate", "5", "--seed", "-1"], "--seed must be at least 0"),
    (["--rate", "5", "--seed", "1.5"], "--seed must be a whole number"),
    (["--rate", "5", "--seed", str(2**64)], "--seed must be at most"),
    (["--rate", "5", "--max-concurrency", "0"], "--max-concurrency must be at least 1"),
    (["--rate", "5", "--max-concurrency", "-3"], "--max-concurrency must be at least 1"),
    (["--rate", "5", "--requests", "200000", "--max-concurrency", "100001"],
     "--max-concurrency 100001 is more than this machine can hold"),
    (["--rate", "5", "--engine", "ray"], "--rate runs on --engine local"),
    (["--arrivals", "poisson"], "--arrivals is for open-loop runs: give --rate too"),
    (["--concurrency", "2", "--seed", "3"], "--seed is for open-loop runs: give --rate too"),
    (["--max-concurrency", "3"], "--max-concurrency is for open-loop runs: give --rate too"),
])
def test_bad_open_loop_input_is_one_line_exit_2_and_nothing_sent(tmp_path, args, message):
    done = run(tmp_path, "--simulate", *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "benchmarks.db").exists()


def test_an_open_loop_dry_run_counts_each_rate_s_requests(tmp_path):
    done = run(tmp_path, "--simulate", "--providers", "openai", "--rate", "1,5", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "load at constant arrivals at 1, 5 requests/s, at most 50 in flight (10, 50 requests a level" in done.stdout
    assert "= 60 requests" in done.stdout and not (tmp_path / "benchmarks.db").exists()


# ---- against the server's own log ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ARRIVALS)
def test_each_arrival_kind_keeps_its_schedule_against_the_server_s_log(tmp_path, kind):
    # The server's clock of arrivals against the stored schedule: bounds a busy 2-core machine cannot fail (the
    # tight figures, 5 % and 5 ms, are benchmarks/open_loop.py's).
    seed = 11 if kind != "constant" else DEFAULT_SEED  # constant arrivals draw nothing: --seed is refused there
    with Simulator(profiles={"m": ModelProfile(**QUICK)}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run(tmp_path, "--providers", "local", "--rate", "20", "--requests", "30", "--arrivals", kind,
                   *(["--seed", str(seed)] if kind != "constant" else []),
                   *(["--burstiness", "0.5"] if kind == "gamma" else []))
        received = {r.request_id: r.received_at for r in sim.log if r.model == "m"}
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path, "select request_id, scheduled_at, request_rate, start_lag_ms, concurrency, success "
                            "from benchmark_results order by scheduled_at")
    assert len(stored) == 30 and all(r["success"] and r["request_rate"] == 20.0 for r in stored)
    assert all(r["concurrency"] is None for r in stored)  # a rate, not a level of requests in flight
    scheduled = [datetime.fromisoformat(r["scheduled_at"]) for r in stored]
    due = [(at - scheduled[0]).total_seconds() for at in scheduled]
    assert due == pytest.approx(schedule(kind, 20.0, level_seed(seed, 0), 0.5 if kind == "gamma" else 1.0,
                                         requests=30), abs=1e-5)  # the stored schedule is the seed's
    arrived = [received[r["request_id"]] - received[stored[0]["request_id"]] for r in stored]
    off = [a - d for a, d in zip(arrived, due)]
    assert max(abs(x) for x in off) < 0.5, off
    assert (arrived[-1] / 29) == pytest.approx(due[-1] / 29, rel=0.25)  # the mean gap
    (the_run,) = rows(tmp_path, "select settings, summary from runs")
    load = json.loads(the_run["settings"])["load"]
    assert (load["rates"], load["arrivals"], load["seed"], load["max_concurrency"]) == ([20.0], kind, seed, 30)
    assert json.loads(the_run["summary"])["load"]["sweeps"][0]["levels"][0]["request_rate"] == 20.0


def test_a_slow_provider_under_a_slot_cap_makes_requests_wait_counted_and_reported_from_the_scheduled_start(
        tmp_path):
    # 2 slots, requests of about 200 ms, 20 arriving a second: most wait for a slot; their response time counts it.
    with Simulator(profiles={"m": ModelProfile(ttft_ms=150, itl_ms=5, output_tokens=10)}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run(tmp_path, "--providers", "local", "--rate", "20", "--requests", "16", "--max-concurrency", "2")
        records = [r for r in sim.log if r.model == "m"]
    assert done.returncode == 0, done.stderr
    assert "slots were busy (--max-concurrency)" in done.stdout and "a lower --rate" in done.stdout
    from test_load import most_in_flight

    assert most_in_flight(records) <= 2
    stored = rows(tmp_path, "select latency_ms, start_lag_ms from benchmark_results order by scheduled_at")
    assert stored[-1]["start_lag_ms"] > 500  # 16 requests of ~200 ms on 2 slots: the last starts ~1.6 s late
    (summary,) = rows(tmp_path, "select summary from runs")
    level = json.loads(summary["summary"])["load"]["sweeps"][0]["levels"][0]
    assert level["waited_for_slot"] >= 8 and "slots were busy" in level["harness_bottleneck"]

    report = run(tmp_path, "report", "--by", "rate", "--format", "json")
    assert report.returncode == 0, report.stderr
    (rate,) = json.loads(report.stdout)["rates"]
    from benchmarking.figures import percentile

    responses = [r["latency_ms"] + r["start_lag_ms"] for r in stored]
    assert rate["response_p90_ms"] == pytest.approx(percentile(responses, 90), abs=0.01)
    assert rate["response_p50_ms"] > rate["latency_p50_ms"] + 200  # the wait is in the response time
    assert rate["requests"] == 16 and rate["rate_limited"] == 0 and "slots were busy" in rate["harness_bound"]
    table = run(tmp_path, "report", "--by", "rate")
    assert "harness-bound" in table.stdout and "at 20 requests/s: harness-bound" in table.stdout
    csv_out = run(tmp_path, "report", "--by", "rate", "--format", "csv").stdout.splitlines()
    assert len(csv_out) == 2 and csv_out[0].startswith("provider,model,request_rate,")
    assert run(tmp_path, "report", "--by", "concurrency").stdout.startswith("no load runs match")


def test_ctrl_c_drops_an_open_loop_s_tickets_not_yet_due_instead_of_waiting_for_them(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from test_cli import MAIN, clean_env

    # A request every 5 s, 16 slots each holding a ticket due up to 75 s ahead (and more queued behind them): a stop
    # must not wait for them, and every request that was sent is stored.
    with Simulator(profiles={"m": ModelProfile(**QUICK)}, default=None) as sim:
        endpoint(tmp_path, sim)
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--rate", "0.2", "--requests",
                                    "100", "--max-concurrency", "16"], cwd=tmp_path, env=clean_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while len([r for r in sim.log if r.model == "m"]) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        out, err = process.communicate(timeout=120)
        stopped_after_s = time.monotonic() - signalled
        sent = [r for r in sim.log if r.model == "m"]
    assert process.returncode == 130 and "Traceback" not in err, err
    # the tickets held ahead were due up to 75 s later: a stop that waited for them would take that long
    assert stopped_after_s < 30, stopped_after_s
    stored = rows(tmp_path, "select count(*) as n from benchmark_results")[0]["n"]
    assert 1 <= stored == len(sent) < 100
    assert rows(tmp_path, "select status from runs")[0]["status"] == "interrupted"


def test_a_second_ctrl_c_stops_at_once_not_after_the_requests_in_flight(tmp_path):
    """It waited for the workers' requests in flight (up to --timeout each) and then stored none of them."""
    import signal
    import subprocess
    import sys
    import time

    from test_cli import MAIN, clean_env

    stalling = ModelProfile(ttft_ms=120_000, itl_ms=1, output_tokens=2)  # answers after --timeout: never, here
    with Simulator(profiles={"m": stalling}, default=None) as sim:
        endpoint(tmp_path, sim)
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--rate", "5", "--requests",
                                    "20", "--max-concurrency", "4", "--timeout", "100"], cwd=tmp_path,
                                   env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while len([r for r in sim.log if r.model == "m"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        out, err = process.communicate(timeout=150)
        stopped_after_s = time.monotonic() - signalled
    assert process.returncode == 130 and "Traceback" not in err, err
    # waiting for the requests in flight held it until --timeout, or the workers' 30 s join: at least 30 s
    assert stopped_after_s < 20, stopped_after_s
    assert rows(tmp_path, "select status from runs")[0]["status"] == "interrupted"


def test_retries_are_part_of_the_response_time_from_the_scheduled_start():
    """A row's times are its last attempt's: the earlier attempts and their back-off were left out of the response
    time (a request that waited 540 ms read 31.5 ms)."""
    from benchmarking.report.rate import from_scheduled_start, waited_ms

    scheduled = datetime(2026, 12, 1, tzinfo=timezone.utc)
    once = Measurement("p", "m", True, scheduled + timedelta(milliseconds=3), True, ttft_ms=10.0, latency_ms=30.0,
                       start_lag_ms=2.5, scheduled_at=scheduled)
    retried = Measurement("p", "m", True, scheduled + timedelta(milliseconds=509), True, attempts=2, ttft_ms=10.0,
                          latency_ms=30.0, start_lag_ms=0.2, scheduled_at=scheduled)
    assert waited_ms(once) == 2.5  # one attempt: its start lag, to the microsecond
    assert waited_ms(retried) == pytest.approx(509)  # the first attempt, the back-off, then the one that counted
    assert from_scheduled_start(retried).latency_ms == pytest.approx(539)


def test_an_open_loop_timed_by_duration_is_counted_ahead_so_its_cost_is_bounded(tmp_path):
    """--rate R --duration D had no cost bound ("--duration gives no count"): its schedule is drawn ahead."""
    from benchmarking.load.arrivals import level_seed, schedule

    load = LoadSettings(levels=(), duration_s=10.0, rates=(5.0, 20.0), arrivals="poisson", seed=7)
    drawn = [len(schedule("poisson", rate, level_seed(7, index), duration_s=10.0))
             for index, rate in enumerate(load.rates)]
    assert load.planned() == drawn  # exactly what the run draws: its upper bound
    plan = run(tmp_path, "--simulate", "--rate", "10000", "--duration", "1h", "--dry-run")
    assert plan.returncode == 2 and "schedules more than 1,000,000 requests per model" in plan.stderr


@pytest.mark.parametrize("rate, duration_s, expected", [(10.0, 1.0, 10), (5.0, 2.0, 10), (10.0, 10.0, 100),
                                                        (3.0, 1.0, 3), (7.0, 3.0, 21)])
def test_a_constant_schedule_over_a_duration_holds_rate_times_duration_requests(rate, duration_s, expected):
    # 1 / rate added up drifts below i / rate (ten gaps of 0.1 s make 0.9999999 s): 10/s for 1 s sent 11.
    assert len(schedule("constant", rate, seed=1, duration_s=duration_s)) == expected


def test_an_open_loop_never_keeps_more_slots_than_its_requests_whatever_sets_their_count(tmp_path):
    """Slots are threads and connections warmed before the level: capped at the rate's requests whether --requests,
    --duration's schedule or the default sets them (only --requests capped them: 10/s for 1 s warmed 100 slots)."""
    plan = run(tmp_path, "--simulate", "--providers", "groq", "--rate", "10", "--duration", "1s", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "at most 10 in flight (10 requests a level" in plan.stdout
    plan = run(tmp_path, "--simulate", "--providers", "groq", "--rate", "1", "--max-concurrency", "64", "--dry-run")
    assert "at most 10 in flight (10 requests a level" in plan.stdout  # the default: ten seconds of arrivals
    refused = run(tmp_path, "--simulate", "--providers", "groq", "--rate", "1", "--max-concurrency", "64",
                  "--workers", "30", "--dry-run")
    assert refused.returncode == 2 and "--workers 30 is more than the 10 slots" in refused.stderr
