"""A rebuild in the same process (`run_scheduled.py --site`, `serve`) reads only what was stored since the last one:
its figures are exactly those of a build from nothing and of `report --format json`, with a result an outbox replays
late (an old time, a new rowid), a simulated run, and a database that lost a result or was replaced."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import json
import random
import shutil
from uuid import uuid4

from benchmarking.report.selection import Selection
from benchmarking.site import recent, whole
from benchmarking.site.data import site_data
from benchmarking.slo import SloConfig
from benchmarking.storage.report_read import gather_group_values
from benchmarking.storage.sqlite import SQLiteStorage

import test_site
from test_site import measured, report_json
from test_storage_sqlite import run_info

here = test_site.here  # the fixture: a history of runs in benchmarks.db, the working directory


def _fresh(storage, selection: Selection, now: datetime) -> dict:
    """The site's data built from nothing."""
    kept = dict(recent._KEPT), dict(whole._KEPT)
    recent._KEPT.clear()
    whole._KEPT.clear()
    try:
        return site_data(storage, selection, SloConfig(), now)
    finally:
        recent._KEPT.update(kept[0])
        whole._KEPT.update(kept[1])


def _text(data: dict) -> str:
    return json.dumps(data, sort_keys=True)


def _run(storage, started: datetime, base: float, mode: str = "live") -> None:
    run = run_info(started_at=started, mode=mode)
    storage.create_run(run)
    for index in range(3):
        storage.save_result(run.id, uuid4(), started + timedelta(seconds=index),
                            measured("groq", "fast", base + index, 2 * base + index, started))
    storage.save_result(run.id, uuid4(), started, measured("openai", "gpt", None, None, started, error="timeout"))
    storage.finish_run(run.id, "completed", started + timedelta(minutes=1))


def test_a_rebuild_reads_what_is_new_and_gives_the_figures_of_a_build_from_nothing(here, capsys):
    now = datetime.now(timezone.utc)
    for selection, flags in ((Selection(), []), (Selection(include_simulated=True), ["--include-simulated"]),
                             (Selection(providers=frozenset({"groq"})), ["--provider", "groq"])):
        with SQLiteStorage(here / "benchmarks.db") as storage:
            first = site_data(storage, selection, SloConfig(), now, keep=True)
            assert any(key[1] == str(here / "benchmarks.db") for key in whole._KEPT) and recent._KEPT  # kept
            assert _text(first) == _text(_fresh(storage, selection, now))
            _run(storage, now - timedelta(minutes=2, seconds=len(flags)), 1000.0)
            _run(storage, now - timedelta(days=3, minutes=5), 3000.0)  # replayed late from an outbox
            _run(storage, now - timedelta(minutes=1, seconds=len(flags)), 5.0, mode="simulated")
            later = site_data(storage, selection, SloConfig(), now, keep=True)
            assert _text(later) == _text(_fresh(storage, selection, now))
            assert later["windows"]["all"]["results"] > first["windows"]["all"]["results"]
            assert later["windows"]["7d"]["results"] > first["windows"]["7d"]["results"]
        expected = report_json(capsys, *flags)["providers"]
        shown = [{k: v for k, v in row.items() if k in expected[0]} for row in later["windows"]["all"]["models"]]
        assert shown == expected, flags


def test_a_database_that_lost_a_result_or_was_replaced_is_read_whole_again(here):
    now = datetime.now(timezone.utc)
    path = here / "benchmarks.db"
    shutil.copy(path, here / "before.db")
    with SQLiteStorage(path) as storage:
        site_data(storage, Selection(), SloConfig(), now, keep=True)
        _run(storage, now - timedelta(minutes=2), 1000.0)
        grown = site_data(storage, Selection(), SloConfig(), now, keep=True)
        storage._db.execute("delete from benchmark_results where rowid = (select min(rowid) from benchmark_results)")
        storage._db.commit()
        shrunk = site_data(storage, Selection(), SloConfig(), now, keep=True)
        assert shrunk["windows"]["all"]["results"] == grown["windows"]["all"]["results"] - 1
        assert _text(shrunk) == _text(_fresh(storage, Selection(), now))
    shutil.copy(here / "before.db", path)  # another database in its place, as many results as the one read
    with SQLiteStorage(path) as storage:
        _run(storage, now - timedelta(minutes=3), 7000.0)
        replaced = site_data(storage, Selection(), SloConfig(), now, keep=True)
        assert _text(replaced) == _text(_fresh(storage, Selection(), now))
        assert replaced["windows"]["all"]["results"] == grown["windows"]["all"]["results"]


def test_the_whole_history_is_drawn_by_day_with_the_medians_report_gives_for_each_day(here, capsys):
    now = datetime.now(timezone.utc)
    with SQLiteStorage(here / "benchmarks.db") as storage:
        _run(storage, now - timedelta(days=40, minutes=30), 2000.0)  # a second run on a day of the history
        data = site_data(storage, Selection(), SloConfig(), now)
    series = data["windows"]["all"]["series"]
    assert series["step_s"] == 86400 and series["rolling_s"] is None
    ages = (timedelta(minutes=30), timedelta(hours=5), timedelta(days=3), timedelta(days=20), timedelta(days=40),
            timedelta(days=40, minutes=30))  # history()'s runs and the one above
    assert len(series["times"]) == len({(now - age).date() for age in ages})
    assert series["times"][0] <= (now - timedelta(days=40, minutes=30)).timestamp() < series["times"][0] + 86400
    for index, start in enumerate(series["times"]):
        day = datetime.fromtimestamp(start, timezone.utc)
        until = (day + timedelta(days=1) - timedelta(microseconds=1)).isoformat()
        expected = report_json(capsys, "--since", day.isoformat(), "--until", until)["providers"]
        for row in data["windows"]["all"]["models"]:
            figures = next((p for p in expected if (p["provider"], p["model"]) == (row["provider"], row["model"])),
                           None)
            drawn = series["models"][row["key"]]
            assert drawn["ttft_p50_ms"][index] == (figures["ttft_p50_ms"] if figures else None), (day, row["model"])
            assert drawn["latency_p50_ms"][index] == (figures["latency_p50_ms"] if figures else None)


def test_values_cut_by_day_in_one_pass_are_those_grouped_by_day_in_any_row_order():
    """gather_group_values' days (the whole history's chart, from one pass grouped by provider and model) against
    the same rows grouped by their day: rows in time order, shuffled, and a late one on an old day."""
    generator = random.Random(22)
    start = datetime(2026, 11, 28, 22, tzinfo=timezone.utc)
    records = []
    for index in range(400):
        created = (start + timedelta(minutes=7 * index)).isoformat()
        provider, model = generator.choice([("groq", "fast"), ("openai", "gpt"), ("groq", "<b>x</b>")])
        success = generator.random() > 0.1
        ttft = generator.uniform(50, 500) if success and generator.random() > 0.05 else None
        latency = generator.uniform(500, 900) if success else None
        records.append((None, provider, model, success, ttft, latency, None, None, None, None, None, None,
                        f"run-{index // 4}", created))
    late = records[3]
    for rows in (records, generator.sample(records, len(records)), records + [late]):
        days: dict = {}
        gather_group_values(rows, days=days)
        by_day: dict = {}
        for _, provider, model, success, ttft, latency, *_, created in rows:
            if success:
                values = by_day.setdefault((None, provider, model), {}).setdefault(created[:10], ([], []))
                values[0].extend([ttft] if ttft is not None else [])
                values[1].extend([latency] if latency is not None else [])
        assert {key: {day: (sorted(t), sorted(l)) for day, (t, l) in cut.items()} for key, cut in days.items()} == {
            key: {day: (sorted(t), sorted(l)) for day, (t, l) in cut.items()} for key, cut in by_day.items()}
        assert len(days[(None, "groq", "fast")]) == 3  # three days


def test_the_rebuild_after_a_scheduled_run_reads_only_what_is_new_through_the_outbox(here, monkeypatch):
    """A scheduled run's storage is the backend behind its outbox (ResilientStorage): the site's rebuild after each
    run must read what is new through it, as over the backend itself (it read every result again each time), and
    show what a build over the backend shows (its pages had no failure messages and no firing alerts)."""
    from benchmarking.storage.outbox.replay import Outbox
    from benchmarking.storage.outbox.resilient import ResilientStorage

    now = datetime.now(timezone.utc)
    with SQLiteStorage(here / "benchmarks.db") as backend:
        storage = ResilientStorage(backend, Outbox(here / "outbox"))
        marks = []
        reader = backend.read_group_values_after

        def read_after(filters, after):
            marks.append(after)
            return reader(filters, after)

        monkeypatch.setattr(backend, "read_group_values_after", read_after)
        site_data(storage, Selection(), SloConfig(), now, keep=True)
        _run(storage, now - timedelta(minutes=1), 1000.0)
        later = site_data(storage, Selection(), SloConfig(), now, keep=True)
        assert marks[0] is None and marks[-1] is not None  # the second build read after the first one's mark
        # The same site as a build from nothing over the backend itself: failures' messages and alerts included.
        assert _text(later) == _text(_fresh(backend, Selection(), now))


def test_serve_does_not_rebuild_again_and_again_for_a_result_dated_ahead(here):
    """A result dated in the future (a host whose clock runs ahead) is 'after' every build until its time comes:
    serve rebuilt the whole site at each look for it. Once a build holds it, it is not new; a later result is."""
    from contextlib import contextmanager

    from benchmarking.site.serve import Rebuilder

    @contextmanager
    def open_storage():
        with SQLiteStorage(here / "benchmarks.db") as storage:
            yield storage

    now = datetime.now(timezone.utc)
    with SQLiteStorage(here / "benchmarks.db") as storage:
        _run(storage, now + timedelta(hours=24), 50.0)  # a day ahead
    rebuilder = Rebuilder(open_storage, Selection(), SloConfig(), str(here / "site"), print)
    assert rebuilder.changed()
    rebuilder.build()
    assert not rebuilder.changed()  # nothing new since: the result ahead is in the site already
    with SQLiteStorage(here / "benchmarks.db") as storage:
        _run(storage, now + timedelta(seconds=1), 60.0)
    assert rebuilder.changed()
