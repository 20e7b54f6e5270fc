"""report --by concurrency and the load and prefill charts: rows written here, figures computed here independently."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import datetime, timedelta, timezone
import json
import struct
from uuid import uuid4

import numpy
import pytest

from benchmarking.report.charts import extra_panels, plot, prefill_points, throughput_latency_points
from benchmarking.cli import main
from benchmarking.report.load import by_concurrency, render
from benchmarking.measurement import Measurement
from benchmarking.report.selection import Selection, select
from benchmarking.slo import SloConfig, Targets

from test_report import report_here  # noqa: F401 (a fixture)
from test_storage_sqlite import run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
STOPPED = "error rate 50% at concurrency 16 is above --max-error-rate 10%"


def request(level: int, start_s: float, ttft: float, latency: float, tokens: int, **changes) -> Measurement:
    """A successful request of a load level that started start_s seconds after T0."""
    values = dict(provider="sim", model="m", success=True, started_at=T0 + timedelta(seconds=start_s), stream=True,
                  ttft_ms=ttft, latency_ms=latency, output_tokens=tokens, input_tokens=50,
                  tokens_per_second=(tokens - 1) / ((latency - ttft) / 1000), concurrency=level,
                  level_started_at=T0, start_lag_ms=0.5, node="h")
    values.update(changes)
    return Measurement(**values)


def refused(level: int, start_s: float, error_type: str = "rate_limit") -> Measurement:
    return Measurement(provider="sim", model="m", success=False, started_at=T0 + timedelta(seconds=start_s),
                       stream=True, error_type=error_type, http_status=429 if error_type == "rate_limit" else None,
                       concurrency=level, level_started_at=T0, start_lag_ms=2.0, node="h",
                       ratelimit_remaining_requests=0, ratelimit_remaining_tokens=900)


# Three levels, stored out of order (16 first, so that an order by text or by insertion would show).
LEVEL_1 = [request(1, 0.0, 100, 300, 10), request(1, 0.3, 110, 320, 12), request(1, 0.62, 120, 400, 11)]
LEVEL_2 = [request(2, 10.0, 100, 350, 20, ratelimit_remaining_requests=40, ratelimit_remaining_tokens=5000),
           request(2, 10.0, 140, 380, 20, ratelimit_remaining_requests=38, ratelimit_remaining_tokens=4800),
           request(2, 10.35, 150, 500, 20, start_lag_ms=7.5), request(2, 10.38, 200, 600, 20)]
LEVEL_16 = [request(16, 20.0, 300, 900, 30), request(16, 20.0, 500, 1200, 30), refused(16, 20.1),
            refused(16, 20.2), request(16, 20.0, 700, 1500, 30), refused(16, 20.3, "timeout"), refused(16, 20.3)]
STORED_AT = {id(m): T0 + timedelta(seconds=21.8) for m in LEVEL_16 if not m.success}  # when failures were stored


def store_load_run(storage, measurements, summary, started=T0):
    run = replace(run_info(started_at=started, mode="live"), kind="load")
    storage.create_run(run)
    for index, m in enumerate(measurements):
        created = STORED_AT.get(id(m), m.started_at + timedelta(seconds=5))
        storage.save_result(run.id, uuid4(), created, m)
    storage.finish_run(run.id, "failed", started + timedelta(minutes=1), summary)
    return run.id


def sweep_summary(levels=(1, 2, 16), stopped=STOPPED, cpu=(4.0, 3.0, 2.5)):
    return {"load": {"levels": list(levels), "engine": "local", "sweeps": [{
        "provider": "sim", "model": "m", "stopped": stopped,
        "levels": [{"concurrency": c, "harness_cpu_ms_per_request": ms, "harness_bottleneck": None}
                   for c, ms in zip(levels, cpu)]}]}}


def expected(measurements, failure_end=None):
    """The level's figures, by numpy and by hand from the rows written above."""
    start = min(m.started_at for m in measurements)
    ends = [m.started_at + timedelta(milliseconds=m.latency_ms) for m in measurements if m.latency_ms is not None]
    end = max(ends + ([failure_end] if failure_end else []))
    wall = (end - start).total_seconds()
    ok = [m for m in measurements if m.success]
    return {
        "wall": wall,
        "requests_per_s": len(measurements) / wall,
        "tokens_per_s": sum(m.output_tokens for m in ok) / wall,
        "ttft": [numpy.percentile([m.ttft_ms for m in ok], q) for q in (50, 90, 99)],
        "latency": [numpy.percentile([m.latency_ms for m in ok], q) for q in (50, 90, 99)],
    }


def test_each_level_s_figures_match_what_the_rows_say_on_every_backend(open_backend):
    with open_backend() as storage:
        storage.prepare()
        store_load_run(storage, LEVEL_16 + LEVEL_2 + LEVEL_1, sweep_summary())
        # a sequential run's rows are not part of the load report
        sequential = run_info(started_at=T0, mode="live")
        storage.create_run(sequential)
        storage.save_result(sequential.id, uuid4(), T0, replace(LEVEL_1[0], concurrency=None))
        rows = select(storage, Selection())
    # this model's own targets, not the defaults, decide
    slo = SloConfig(defaults=Targets(ttft_ms=1), overrides={"sim/m": Targets(ttft_ms=450, latency_ms=550)})
    levels = by_concurrency(rows, slo)
    assert [level.concurrency for level in levels] == [1, 2, 16]
    one, two, sixteen = levels
    for level, measurements, failure_end in ((one, LEVEL_1, None), (two, LEVEL_2, None),
                                             (sixteen, LEVEL_16, T0 + timedelta(seconds=21.8))):
        want = expected(measurements, failure_end)
        assert level.requests == len(measurements) and level.runs == 1
        assert level.wall_s == pytest.approx(want["wall"])
        assert level.requests_per_s == pytest.approx(want["requests_per_s"])
        assert level.output_tokens_per_s == pytest.approx(want["tokens_per_s"])
        assert [level.ttft_ms[q] for q in (50, 90, 99)] == pytest.approx(want["ttft"])
        assert [level.latency_ms[q] for q in (50, 90, 99)] == pytest.approx(want["latency"])
    # level 1: 0.0 s to 0.62 + 0.4 s; 33 tokens
    assert one.wall_s == pytest.approx(1.02) and one.output_tokens_per_s == pytest.approx(33 / 1.02)
    # level 16: from 20.0 s to 21.8 s, when its failures (no latency) were stored, after its last success's end
    assert sixteen.wall_s == pytest.approx(1.8)
    assert sixteen.errors == (("rate_limit", 3), ("timeout", 1))
    assert sixteen.error_rate == pytest.approx(4 / 7) and sixteen.rate_limited_rate == pytest.approx(3 / 7)
    assert (two.ratelimit_remaining_requests_min, two.ratelimit_remaining_tokens_min) == (38, 4800)
    assert (sixteen.ratelimit_remaining_requests_min, sixteen.ratelimit_remaining_tokens_min) == (0, 900)
    assert (one.ratelimit_remaining_requests_min, one.error_rate) == (None, 0.0)
    assert two.start_lag_ms[50] == pytest.approx(0.5) and two.start_lag_ms[99] == pytest.approx(
        numpy.percentile([0.5, 0.5, 7.5, 0.5], 99))
    # goodput: successes within 450 ms to the first token and 550 ms in all, a second
    def within(ms):
        return sum(m.success and m.ttft_ms <= 450 and m.latency_ms <= 550 for m in ms)

    assert [level.slo_met for level in levels] == [within(LEVEL_1), within(LEVEL_2), within(LEVEL_16)] == [3, 3, 0]
    assert two.goodput_per_s == pytest.approx(3 / expected(LEVEL_2)["wall"]) and two.slo_met_rate == 0.75
    assert sixteen.goodput_per_s == 0
    # from the run's summary: where the sweep stopped, and the harness's CPU
    assert (one.stopped, two.stopped, sixteen.stopped) == ((), (), (STOPPED,))
    assert [level.harness_cpu_ms_per_request for level in levels] == [4.0, 3.0, 2.5]
    # without SLOs, no goodput
    assert all(level.slo_met is None and level.goodput_per_s is None for level in by_concurrency(rows))


def test_levels_of_several_runs_add_their_wall_times_and_keep_each_run_s_stop(open_backend):
    later = T0 + timedelta(days=1)
    second = [replace(m, started_at=m.started_at + timedelta(days=1)) for m in LEVEL_1]
    with open_backend() as storage:
        storage.prepare()
        store_load_run(storage, LEVEL_1, sweep_summary(levels=(1,), stopped=None, cpu=(4.0,)))
        store_load_run(storage, second, sweep_summary(levels=(1,), stopped="throughput stopped rising", cpu=(2.0,)),
                       started=later)
        rows = select(storage, Selection())
    (level,) = by_concurrency(rows)
    assert (level.runs, level.requests) == (2, 6)
    assert level.wall_s == pytest.approx(2 * 1.02)  # not the day between the runs
    assert level.requests_per_s == pytest.approx(6 / 2.04)
    assert level.stopped == ("throughput stopped rising",)
    assert level.harness_cpu_ms_per_request == pytest.approx(3.0)  # 3 requests at 4.0, 3 at 2.0


@pytest.fixture
def load_dir(report_here, tmp_path):
    """A directory whose benchmarks.db holds the load run above; report runs there with a clean environment."""
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        store_load_run(storage, LEVEL_16 + LEVEL_2 + LEVEL_1, sweep_summary())
    return tmp_path


def test_report_by_concurrency_in_every_format(load_dir, capsys):
    assert main(["report", "--by", "concurrency", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"] == 14 and [level["concurrency"] for level in payload["levels"]] == [1, 2, 16]
    sixteen = payload["levels"][2]
    assert sixteen["rate_limited_rate"] == round(3 / 7, 4) and sixteen["errors"] == "rate_limit x3, timeout x1"
    assert sixteen["requests_per_s"] == round(7 / 1.8, 3) and sixteen["stopped"] == STOPPED
    assert sixteen["ratelimit_remaining_requests_min"] == 0 and sixteen["goodput_per_s"] is None

    assert main(["report", "--by", "concurrency", "--format", "csv"]) == 0
    records = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert list(records[0]) == list(sixteen) and records[0]["output_tokens_per_s"] == "32.35"  # 4 significant digits

    assert main(["report", "--by", "concurrency"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:3] == ["provider", "model", "in"]
    assert [line.split()[2] for line in table[2:5]] == ["1", "2", "16"] and table[4].endswith("stopped")
    assert f"sim / m: the sweep stopped after concurrency 16: {STOPPED}" in table

    assert main(["report", "--by", "concurrency", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| sim | m | 16 | 7 | 3.889 |" in markdown and "- sim / m: the sweep stopped" in markdown

    with pytest.raises(SystemExit) as refused_by:
        main(["report", "--by", "nothing"])
    assert refused_by.value.code == 2 and "invalid choice: 'nothing'" in capsys.readouterr().err


def test_a_selection_without_load_runs_says_so():
    assert render([], "table", "t", Selection()).startswith("no load runs match: `report --by concurrency`")


def test_throughput_latency_points_are_the_levels_figures_in_level_order(open_backend):
    with open_backend() as storage:
        storage.prepare()
        store_load_run(storage, LEVEL_16 + LEVEL_2 + LEVEL_1, sweep_summary())
        rows = select(storage, Selection())
    levels = by_concurrency(rows)
    (points,) = throughput_latency_points(levels).values()
    assert [p.concurrency for p in points] == [1, 2, 16]
    assert [p.output_tokens_per_s for p in points] == pytest.approx(
        [expected(LEVEL_1)["tokens_per_s"], expected(LEVEL_2)["tokens_per_s"], 90 / 1.8])
    assert [p.latency_p50_ms for p in points] == pytest.approx(
        [numpy.percentile([m.latency_ms for m in ms if m.success], 50) for ms in (LEVEL_1, LEVEL_2, LEVEL_16)])
    assert points[2].error_rate == pytest.approx(4 / 7)
    # a level with no latency p50 (no success) has no point
    assert throughput_latency_points([replace(levels[0], latency_ms={50: None, 90: None, 99: None})]) == {}


def tier_request(provider, tier, tokens, ttft, concurrency=None):
    return Measurement(provider=provider, model="m", success=True, started_at=T0, stream=True, ttft_ms=ttft,
                       latency_ms=ttft + 100, input_tokens=tokens, output_tokens=10, input_tier=tier,
                       concurrency=concurrency)


def test_prefill_points_one_per_input_size_from_requests_made_one_at_a_time(open_backend):
    measurements = [tier_request("a", 100, 150, 60), tier_request("a", 100, 152, 64), tier_request("a", 100, 151, 80),
                    tier_request("a", 10000, 15000, 200), tier_request("a", 10000, 15010, 220),
                    tier_request("a", 1000, 1500, 90, concurrency=1),
                    tier_request("a", 1000, 1500, 900, concurrency=8),  # queueing under load, not prefill
                    tier_request("b", None, 40, 30), tier_request("b", None, 40, 34), tier_request("b", None, 4000, 70),
                    replace(tier_request("b", None, 90000, 5), success=False)]
    with open_backend() as storage:
        storage.prepare()
        run = run_info(started_at=T0, mode="live")
        storage.create_run(run)
        for m in measurements:
            storage.save_result(run.id, uuid4(), T0, m)
        rows = select(storage, Selection())
    points = prefill_points(rows)
    a, b = points["a / m"], points["b / m"]
    assert [(p.input_tier, p.input_tokens, p.ttft_p50_ms, p.requests) for p in a] == [
        (100, 151, 64, 3), (1000, 1500, 90, 1), (10000, 15005, 210, 2)]
    assert [(p.input_tokens, p.ttft_p50_ms) for p in b] == [(40, 32), (4000, 70)]
    assert [panel.title for panel in extra_panels(rows)] == [  # the two load levels: one request each, a median each
        "Time to first token against input tokens (prefill), one request at a time",
        "Latency against throughput per load level (labels: requests in flight)"]
    # one size per provider and model: nothing to draw
    assert extra_panels([row for row in rows if row.result.measurement.input_tier == 100]) == []


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_png_and_html_carry_the_load_and_prefill_panels(load_dir):
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(load_dir / "benchmarks.db") as storage:
        run = run_info(started_at=T0, mode="live")
        storage.create_run(run)
        for m in (tier_request("sim", 100, 150, 60), tier_request("sim", 10000, 15000, 200)):
            storage.save_result(run.id, uuid4(), T0, m)
    assert main(["report", "--plot", "all.png"]) == 0
    assert main(["report", "--plot", "all.html"]) == 0
    with SQLiteStorage(load_dir / "benchmarks.db") as storage:
        only_tiers = select(storage, Selection(run_ids=frozenset({run.id})))
    plot(only_tiers[:1], [], "one tier", load_dir / "plain.png")  # one size, no load: the four panels only
    width, height = png_size((load_dir / "all.png").read_bytes())
    assert (width, height) == (1400, 1350)  # a third row of panels under the four
    assert png_size((load_dir / "plain.png").read_bytes()) == (1400, 900)
    page = (load_dir / "all.html").read_text()
    assert "Time to first token against input tokens (prefill)" in page
    assert "Latency against throughput per load level" in page
