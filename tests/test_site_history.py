"""The whole history's chart on every backend: the same rows in SQLite (its kept pass, the reference), PostgreSQL
(percentile_cont per bucket, in SQL) and Supabase (the rows it reads whole) give the same daily, or weekly, medians;
and `report --site` over a PostgreSQL or Supabase database draws the whole history, not only its last 30 days."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import json
import os
import random
from uuid import uuid4

import pytest

from benchmarking.cli import main
from benchmarking.measurement import Measurement
from benchmarking.report.selection import Selection
from benchmarking.settings.values import Secret
from benchmarking.site import whole
from benchmarking.site.data import site_data
from benchmarking.slo import SloConfig, Targets
from benchmarking.storage import ResultFilters
from benchmarking.storage.postgres import PostgresStorage
from benchmarking.storage.sqlite import SQLiteStorage
from benchmarking.storage.supabase import SupabaseStorage

from conftest import SERVICE_KEY
from test_site import measured
from test_storage_sqlite import run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")


def _no_ttft(at: datetime) -> Measurement:
    """A successful request without a first token (not streamed): a latency and no TTFT."""
    return Measurement(provider="groq", model="fast", success=True, started_at=at, stream=False, latency_ms=321.5,
                       output_tokens=10)


def long_history(storages, now: datetime, days: int) -> None:
    """Runs every few days over `days`, the same rows into each storage: values with every bit of a double, even and
    odd counts a day (medians between two values), failures, a day with only failures, a request with no TTFT, and a
    simulated run the default selection leaves out."""
    rng = random.Random(days)
    runs = []
    for age in range(days, 0, -max(1, days // 60)):
        started = now - timedelta(days=age, minutes=rng.randrange(1440))
        rows = [measured("groq", "fast", rng.uniform(40, 900), rng.uniform(300, 3000), started)
                for _ in range(rng.randrange(1, 6))]
        rows += [measured("openai", "gpt", rng.uniform(100, 2000), rng.uniform(500, 9000), started)
                 for _ in range(rng.randrange(0, 4))]
        rows += [measured("openai", "gpt", None, None, started, error="server_error")] * rng.randrange(0, 2)
        if age % 7 == 0:
            rows.append(_no_ttft(started))
        runs.append((run_info(started_at=started, mode="live"), rows))
    failing = now - timedelta(days=days - 1, hours=3)
    runs.append((run_info(started_at=failing, mode="live"),
                 [measured("mistral", "small", None, None, failing, error="timeout")] * 3))
    simulated = now - timedelta(days=days // 2)
    runs.append((run_info(started_at=simulated, mode="simulated"), [measured("groq", "fast", 1.0, 2.0, simulated)]))
    for storage in storages:
        for run, rows in runs:
            storage.create_run(run)
            for index, m in enumerate(rows):
                storage.save_result(run.id, uuid4(), run.started_at + timedelta(seconds=index), m)
            storage.finish_run(run.id, "completed", run.started_at + timedelta(minutes=1))


def _built(storage, selection: Selection, now: datetime, slo: SloConfig = SloConfig()) -> dict:
    whole._KEPT.clear()
    return site_data(storage, selection, slo, now)


@pytest.mark.parametrize("days", [45, 400])  # a day's buckets; a week's (400 days would be more than 360 points)
def test_every_backend_draws_the_whole_history_with_the_same_medians(days, tmp_path, pg_url, supabase_api):
    now = datetime.now(timezone.utc)
    with SQLiteStorage(tmp_path / "benchmarks.db") as lite, PostgresStorage(pg_url, timeout_s=30) as pg:
        long_history([lite, pg], now, days)
        reference = _built(lite, Selection(), now)  # SQLite's pass that keeps what it read, gathering by day
        series = reference["windows"]["all"]["series"]
        assert series["step_s"] == (86400 if days < 360 else 7 * 86400) and series["rolling_s"] is None
        assert series["times"][0] < (now - timedelta(days=days - 2)).timestamp()  # beyond the 30 days read
        assert len(series["models"]) == 2  # the model with only failures draws no line
        since = Selection(since=now - timedelta(days=days + 5))  # the same rows, gathered by read_bucket_medians
        slo = SloConfig(Targets(ttft_ms=500.0))  # the leaderboard then reads every row: the chart comes from those rows
        built = {"sqlite, since": _built(lite, since, now), "sqlite, slo": _built(lite, Selection(), now, slo),
                 "postgres": _built(pg, Selection(), now), "postgres, since": _built(pg, since, now),
                 "postgres, slo": _built(pg, Selection(), now, slo)}
        filters = ResultFilters(include_simulated=False)
        step = series["step_s"]
        assert pg.read_bucket_medians(filters, step) == lite.read_bucket_medians(filters, step)  # unrounded, exact
    with SupabaseStorage(supabase_api.url, Secret(SERVICE_KEY), timeout_s=30) as supabase:
        assert supabase.read_bucket_medians(filters, step) is None  # PostgREST runs no percentile
        built["supabase"] = _built(supabase, Selection(), now)
    for name, data in built.items():
        assert data["windows"]["all"]["series"] == series, name
        assert data["windows"]["all"]["results"] == reference["windows"]["all"]["results"], name


def test_within_the_rows_read_the_chart_is_drawn_from_them_as_before(pg_url):
    now = datetime.now(timezone.utc)
    with PostgresStorage(pg_url, timeout_s=30) as pg:
        long_history([pg], now, 20)
        data = _built(pg, Selection(), now)
    series = data["windows"]["all"]["series"]
    assert series["rolling_s"] is not None and series["step_s"] < 86400  # the 30-day rows' buckets, rolling median


def _without_storage_settings(monkeypatch, tmp_path) -> None:
    for name in list(os.environ):
        if any(part in name for part in ("DATABASE_URL", "SUPABASE_", "BENCHMARK_")) and name != \
                "BENCHMARK_REQUIRE_CHROMIUM":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("backend", ["postgres", "supabase"])
def test_report_site_over_a_database_server_draws_the_whole_history(backend, tmp_path, monkeypatch, capsys, pg_url,
                                                                    supabase_api):
    _without_storage_settings(monkeypatch, tmp_path)
    now = datetime.now(timezone.utc)
    with SQLiteStorage(tmp_path / "reference.db") as lite, PostgresStorage(pg_url, timeout_s=30) as pg:
        long_history([lite, pg], now, 90)
        expected = _built(lite, Selection(), now)["windows"]["all"]["series"]
    if backend == "postgres":
        monkeypatch.setenv("DATABASE_URL", pg_url)
    else:
        monkeypatch.setenv("SUPABASE_URL", supabase_api.url)
        monkeypatch.setenv("SUPABASE_SERVICE_ROLE", SERVICE_KEY)
    assert main(["report", "--site", "site"]) == 0
    assert "site written to site" in capsys.readouterr().err
    data = json.loads((tmp_path / "site" / "data.json").read_text())
    series = data["windows"]["all"]["series"]
    assert series["step_s"] == 86400 and series["times"][0] < (now - timedelta(days=85)).timestamp()
    assert series == expected  # every row is a day old or more: the build's own time moves no bucket
    assert main(["report", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)["providers"]
    shown = [{k: v for k, v in row.items() if k in report[0]} for row in data["windows"]["all"]["models"]]
    assert shown == report
