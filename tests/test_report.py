"""report: known rows in, exact numbers out, the same on every backend; filters, formats, export, plot, compare."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from decimal import Decimal
import json
import os
import shutil
import subprocess
from uuid import uuid4

import pytest

from benchmarking.cli import main
from benchmarking.figures import percentile
from benchmarking.measurement import Measurement
from benchmarking.report.compare import bootstrap_interval
from benchmarking.report.selection import Selection, select
from benchmarking.report.views import summarise, summarise_stored

from test_storage_sqlite import run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def ok(provider, model, ttft, latency, cost, output_tokens):
    return Measurement(provider=provider, model=model, success=True, started_at=T0, stream=True, ttft_ms=ttft,
                       latency_ms=latency, output_tokens=output_tokens, input_tokens=10,
                       tokens_per_second=(output_tokens - 1) / ((latency - ttft) / 1000),
                       cost_usd=Decimal(cost), cost_source="pricing")


def failed(provider, model, error_type):
    return Measurement(provider=provider, model=model, success=False, started_at=T0, stream=True,
                       error_type=error_type, error_message="x")


def store(storage, measurements, started, mode="live", name="r"):
    run = run_info(started_at=started, mode=mode, run_name=name)
    storage.create_run(run)
    for index, m in enumerate(measurements):
        storage.save_result(run.id, uuid4(), started + timedelta(seconds=index), m)
    storage.finish_run(run.id, "completed", started + timedelta(minutes=1))
    return run.id


def known_rows(storage):
    """Two live runs a day apart, and a simulated one that must not count by default."""
    first = store(storage, [ok("openai", "gpt-4o-mini", t, lat, "0.001", 100)
                            for t, lat in ((10, 100), (20, 200), (30, 300))]
                  + [failed("openai", "gpt-4o-mini", "rate_limit")]
                  + [ok("groq", "openai/gpt-oss-20b", 5, 50, "0.0001", 200), failed("groq", "openai/gpt-oss-20b",
                                                                                  "timeout")], T0)
    second = store(storage, [ok("openai", "gpt-4o-mini", t, lat, "0.001", 100) for t, lat in ((40, 400), (50, 1000))]
                   + [ok("groq", "openai/gpt-oss-20b", 6, 60, "0.0001", 200),
                      failed("groq", "openai/gpt-oss-20b", "timeout"), failed("groq", "openai/gpt-oss-20b", "auth")],
                   T0 + timedelta(days=1))
    store(storage, [ok("together", "openai/gpt-oss-120b", 1, 2, "0", 10)] * 2, T0 + timedelta(days=2), "simulated")
    return first, second


def test_percentiles_interpolate_between_closest_ranks_and_need_two_samples_but_the_median_one():
    values = [100, 200, 300, 400, 1000]
    assert [percentile(values, q) for q in (50, 90, 95, 99)] == pytest.approx([300, 760, 880, 976])
    assert percentile([7.0], 50) == 7.0  # the median of one request is that request
    assert percentile([7.0], 90) is None and percentile([], 50) is None and percentile([], 99) is None
    assert percentile([1, 2], 50) == 1.5


def test_known_rows_give_exact_numbers_on_every_backend(open_backend):
    with open_backend() as storage:
        storage.prepare()
        known_rows(storage)
        summaries = summarise(select(storage, Selection()))
    assert [(s.provider, s.requests, s.successes) for s in summaries] == [("groq", 5, 2), ("openai", 6, 5)]
    groq, openai = summaries
    assert openai.success_rate == pytest.approx(5 / 6)
    assert [openai.latency_ms[q] for q in (50, 90, 95, 99)] == pytest.approx([300, 760, 880, 976])
    assert [openai.ttft_ms[q] for q in (50, 90, 95, 99)] == pytest.approx([30, 46, 48, 49.6])
    assert openai.cost_mean_usd == Decimal("0.001") and openai.cost_total_usd == Decimal("0.005")
    assert openai.cost_per_1k_output_tokens_usd == Decimal("0.01")  # 0.005 $ for 500 output tokens
    assert openai.top_errors == (("rate_limit", 1),)
    assert groq.latency_ms[50] == pytest.approx(55) and groq.ttft_ms[50] == pytest.approx(5.5)
    assert groq.cost_per_1k_output_tokens_usd == Decimal("0.0005")
    assert groq.top_errors == (("timeout", 2), ("auth", 1))
    assert (groq.fastest, groq.cheapest, openai.fastest, openai.cheapest) == (True, True, False, False)


def test_filters(open_backend):
    with open_backend() as storage:
        storage.prepare()
        first, second = known_rows(storage)
        count = lambda **kw: len(select(storage, Selection(**kw)))  # noqa: E731
        assert count() == 11
        assert count(include_simulated=True) == 13
        assert count(run_ids=frozenset({first})) == 6
        assert count(last=True) == 5
        assert count(last=True, include_simulated=True) == 2  # the newest run is the simulated one
        assert count(since=T0 + timedelta(hours=12)) == 5
        assert count(until=T0 + timedelta(hours=12)) == 6
        assert count(providers=frozenset({"groq"})) == 5
        assert count(models=frozenset({"gpt-4o-mini"}), run_ids=frozenset({second})) == 2
        assert count(run_ids=frozenset({uuid4()})) == 0


def test_a_selection_in_time_reads_only_its_runs_and_gives_the_rows_the_whole_read_gives(open_backend, monkeypatch):
    import benchmarking.report.selection as selection

    with open_backend() as storage:
        storage.prepare()
        known_rows(storage)
        read = []
        for name in ("read_report_runs", "read_runs_by_id"):
            monkeypatch.setattr(storage, name, lambda *a, _name=name, _real=getattr(storage, name): (
                read.append(_name), _real(*a))[1])
        for simulated in (False, True):
            for since in (T0 + timedelta(hours=12), T0 + timedelta(days=1, seconds=2), T0 - timedelta(days=1)):
                whole = [r for r in select(storage, Selection(include_simulated=simulated))
                         if r.result.created_at >= since]
                read.clear()
                rows = select(storage, Selection(since=since, include_simulated=simulated))
                assert read == ["read_runs_by_id"]  # only the runs of the results found
                assert [(r.result.id, r.run.info.id) for r in rows] == [(r.result.id, r.run.info.id) for r in whole]
        monkeypatch.setattr(selection, "NARROW_RUNS", 1)  # more runs than that: every run read, as before
        read.clear()
        assert len(select(storage, Selection(since=T0 - timedelta(days=1)))) == 11 and read == ["read_report_runs"]


def test_compare_marks_a_change_beyond_the_noise_and_not_one_within_it():
    steady = [100.0, 102.0, 98.0, 101.0, 99.0, 100.5]
    slower = [v + 50 for v in steady]
    low, high = bootstrap_interval(steady, slower)
    assert 45 <= low <= 50 <= high <= 55
    low, high = bootstrap_interval(steady, list(reversed(steady)))
    assert low <= 0 <= high
    assert bootstrap_interval([1.0], slower) is None


@pytest.fixture
def report_here(tmp_path, monkeypatch):
    """Run report in tmp_path with no storage settings from the environment: it reads tmp_path/benchmarks.db."""
    for name in list(os.environ):
        if any(part in name for part in ("DATABASE_URL", "SUPABASE_", "BENCHMARK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def report_dir(report_here, tmp_path):
    """A directory whose benchmarks.db holds the known rows; report runs there with a clean environment."""
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        ids = known_rows(storage)
    return tmp_path, ids


def test_report_command_formats_carry_the_same_fields(report_dir, capsys):
    assert main(["report", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"] == 11 and payload["runs"] == 2
    openai = payload["providers"][1]
    assert openai["latency_p99_ms"] == 976.0 and openai["ttft_p50_ms"] == 30.0
    assert openai["cost_per_1k_output_tokens_usd"] == "0.01" and openai["success_rate"] == 0.8333

    assert main(["report", "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert list(rows[1]) == list(openai) and rows[1]["latency_p90_ms"] == "760.0"

    assert main(["report"]) == 0
    table = capsys.readouterr().out
    assert "300.0 / 760.0 / 880.0 / 976.0" in table and "fastest cheapest" in table
    assert table.splitlines()[0].startswith("11 results from 2 run(s), 2026-11-20 12:00 to 2026-11-21 12:00 UTC")

    assert main(["report", "--format", "markdown", "--provider", "groq"]) == 0
    markdown = capsys.readouterr().out
    assert "| groq | openai/gpt-oss-20b | 5 | 40 |" in markdown and "openai |" not in markdown


def test_empty_selection_is_one_line_and_exit_0_and_bad_filters_exit_2(report_dir, capsys):
    assert main(["report", "--provider", "nobody"]) == 0
    assert capsys.readouterr().out.strip() == "no results match: provider nobody; live runs only"
    assert main(["report", "--since", "soon"]) == 2
    assert main(["report", "--run", "not-a-uuid"]) == 2
    assert main(["report", "--export", "rows.xlsx"]) == 2
    assert main(["report", "--plot", "chart.svg"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("main.py: error: ") for line in err)


def test_export_writes_every_matching_row(report_dir):
    directory, (first, _) = report_dir
    assert main(["report", "--run", str(first), "--export", "out/rows.csv"]) == 0
    rows = list(csv.DictReader((directory / "out" / "rows.csv").open()))
    assert len(rows) == 6 and {r["run_id"] for r in rows} == {str(first)}
    assert rows[0]["latency_ms"] == "100.0" and rows[0]["mode"] == "live" and "run_name" in rows[0]
    assert main(["report", "--export", "rows.jsonl", "--include-simulated"]) == 0
    lines = (directory / "rows.jsonl").read_text().splitlines()
    assert len(lines) == 13 and json.loads(lines[-1])["mode"] == "simulated"


def test_compare_two_runs_from_the_command_line(report_dir, capsys):
    _, (first, second) = report_dir
    assert main(["report", "--compare", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "openai / gpt-4o-mini (4 -> 2 requests)" in out
    assert "latency: 200.0 -> 700.0 ms (+500.0" in out and "SLOWER" in out
    assert main(["report", "--compare", "2026-11-20..2026-11-21", "2026-11-21.."]) == 0
    assert "groq / openai/gpt-oss-20b" in capsys.readouterr().out


def test_compare_of_two_single_request_runs_gives_their_medians(report_here, capsys):
    """Two `python main.py` runs of one request each: their medians are those requests, not dashes."""
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        first = store(storage, [ok("groq", "m", 10, 100, "0.001", 50)], T0)
        second = store(storage, [ok("groq", "m", 12, 130, "0.002", 50)], T0 + timedelta(hours=1))
    assert main(["report", "--compare", str(first), str(second), "--format", "json"]) == 0
    (groq,) = json.loads(capsys.readouterr().out)["comparisons"]
    latency = next(change for change in groq["changes"] if change["metric"] == "latency")
    assert (latency["median_a"], latency["median_b"], latency["difference"]) == (100.0, 130.0, 30.0)
    assert latency["interval"] is None  # one sample a side: no interval, so no verdict


def test_tables_show_costs_to_three_significant_figures_and_json_and_csv_keep_them_exact(report_here, capsys):
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        store(storage, [ok("groq", "openai/gpt-oss-20b", 61, 123, "0.000021675", 64)], T0)
    assert main(["report"]) == 0
    header, row = capsys.readouterr().out.splitlines()[1:3]
    assert "$ per 1M out" in header
    assert row.split()[-4:-1] == ["$0.0000217", "$0.0000217", "$0.339"]  # mean, total, per 1M output tokens
    assert main(["report", "--format", "markdown"]) == 0
    assert "| $0.0000217 | $0.0000217 | $0.339 |" in capsys.readouterr().out
    assert main(["report", "--format", "json"]) == 0
    (groq,) = json.loads(capsys.readouterr().out)["providers"]
    assert (groq["cost_mean_usd"], groq["cost_per_1k_output_tokens_usd"]) == ("0.000021675", "0.000338671875")
    assert main(["report", "--format", "csv"]) == 0
    (record,) = csv.DictReader(capsys.readouterr().out.splitlines())
    assert record["cost_total_usd"] == "0.000021675"


def test_compare_as_json_carries_the_same_changes_as_the_text(report_dir, capsys):
    _, (first, second) = report_dir
    assert main(["report", "--compare", str(first), str(second), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    openai = next(c for c in payload["comparisons"] if c["provider"] == "openai")
    assert (openai["model"], openai["requests_a"], openai["requests_b"]) == ("gpt-4o-mini", 4, 2)
    latency = next(change for change in openai["changes"] if change["metric"] == "latency")
    assert (latency["median_a"], latency["median_b"], latency["difference"]) == (200.0, 700.0, 500.0)
    assert latency["verdict"] == "slower" and latency["interval"][0] > 0  # "SLOWER" in the text
    assert main(["report", "--compare", str(first), str(second), "--format", "csv"]) == 2
    assert "--compare prints a table or json, not csv" in capsys.readouterr().err


def test_plot_png_and_html_render_in_headless_chromium(report_dir, tmp_path):
    directory, _ = report_dir
    assert main(["report", "--plot", "chart.png"]) == 0
    png = (directory / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000
    assert main(["report", "--plot", "chart.html"]) == 0
    page = (directory / "chart.html").read_text()
    assert "data:image/png;base64," in page and "http" not in page.replace("data:image", "")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("BENCHMARK_REQUIRE_CHROMIUM"):
            pytest.fail("Chromium is required (BENCHMARK_REQUIRE_CHROMIUM is set) but not installed")
        pytest.skip("Chromium not installed")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1300"]
    url = (directory / "chart.html").as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table id="summary">' in dom.stdout and "gpt-oss-20b" in dom.stdout
    shot = tmp_path / "screenshot.png"
    done = subprocess.run([chromium, *flags, f"--screenshot={shot}", url], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert len(shot.read_bytes()) > 50_000  # a blank page is a few kB; the chart and table make it far more


def test_a_significant_but_tiny_change_is_not_called_a_slowdown():
    from benchmarking.report.compare import Change

    steady = [100.0, 100.1, 100.2, 100.3]
    wobble = [v + 0.5 for v in steady]
    change = Change("latency", "ms", percentile(steady, 50), percentile(wobble, 50), bootstrap_interval(steady, wobble))
    assert change.interval[0] > 0 and change.verdict == "same"
    slower = [v * 1.5 for v in steady]
    assert Change("latency", "ms", 100.15, 150.2, bootstrap_interval(steady, slower)).verdict == "up"


def test_the_upstream_that_served_each_openrouter_request_is_reported_filtered_and_exported(open_backend, tmp_path):
    from dataclasses import replace

    from benchmarking.report.formats import export, format_table, summary_fields

    served = ["Google", "Google", "Amazon Bedrock", None]
    with open_backend() as storage:
        storage.prepare()
        store(storage, [replace(ok("openrouter", "openai/gpt-4o-mini", 10, 100, "0.001", 50), upstream_provider=u)
                        for u in served] + [ok("groq", "openai/gpt-oss-20b", 5, 50, "0.0001", 200)], T0)
        rows = select(storage, Selection(providers=frozenset({"openrouter"})))
        groq_rows = select(storage, Selection(providers=frozenset({"groq"})))
    (summary,) = summarise(rows)
    assert summary.upstream_providers == (("Google", 2), ("Amazon Bedrock", 1))
    assert summary_fields(summary)["upstream_providers"] == "Google x2, Amazon Bedrock x1"
    table = format_table([summary], "t")
    assert "served by" in table.splitlines()[1] and "Google x2, Amazon Bedrock x1" in table
    assert export(rows, tmp_path / "rows.jsonl") == 4
    exported = [json.loads(line)["upstream_provider"] for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert exported == served
    # a report without a router has no such column
    assert "served by" not in format_table(summarise(groq_rows), "t")


def test_a_nan_an_older_version_stored_is_read_as_null_and_a_report_never_sums_to_nan(pg_url):
    import psycopg

    from benchmarking.storage.postgres import PostgresStorage

    with PostgresStorage(pg_url, timeout_s=5) as storage:
        storage.prepare()
        run_id = store(storage, [ok("openrouter", "m", 10, 100, "0.002", 50) for _ in range(3)], T0)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # what an older version could write: NaN and infinity
        conn.execute("update benchmark_results set cost_usd = 'NaN', tokens_per_second = 'Infinity' where id = "
                     "(select id from benchmark_results where run_id = %s order by created_at limit 1)", (run_id,))
    with PostgresStorage(pg_url, timeout_s=5) as storage:
        rows = select(storage, Selection())
        (gathered,), _ = summarise_stored(storage, Selection())  # the database's own aggregate skips them too
    assert gathered.cost_total_usd == Decimal("0.004") and gathered.tokens_per_second_p50 < 1000
    costs = sorted((r.result.measurement.cost_usd for r in rows), key=lambda c: (c is not None, c))
    assert costs == [None, Decimal("0.002"), Decimal("0.002")]
    (summary,) = summarise(rows)
    assert summary.cost_total_usd == Decimal("0.004") and summary.cost_mean_usd == Decimal("0.002")
    assert summary.tokens_per_second_p50 is not None and summary.tokens_per_second_p50 < 1000
