"""The compare page's chooser: any two runs of the last 30 days, compared in the browser by the same bootstrap as
`report --compare A B` (CPython's generator and seed, step for step), give exactly its medians, intervals and
verdicts. In Debian's Chromium through Playwright, as tests/test_site.py drives it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
import json
import random
from uuid import uuid4

from benchmarking.cli import main
from benchmarking.storage.sqlite import SQLiteStorage

import test_site
from test_site import measured, report_json, site_data
from test_storage_sqlite import run_info

here, browser_page = test_site.here, test_site.browser_page  # the fixtures: a history in benchmarks.db, a page


def _tiered_run(storage, started: datetime) -> str:
    """A run at two input sizes, so that like is compared with like: within each input tier."""
    run = run_info(started_at=started, mode="live")
    storage.create_run(run)
    for index in range(6):
        m = replace(measured("groq", "fast", 90.0 + index * 7.5, 300.0 + index * index, started, "0.00002"),
                    input_tier=(100, 10_000)[index % 2])
        storage.save_result(run.id, uuid4(), started + timedelta(seconds=index), m)
    storage.finish_run(run.id, "completed", started + timedelta(minutes=1))
    return str(run.id)


def test_the_page_draws_the_generator_cpython_draws(here, browser_page):
    assert main(["report", "--site", "site"]) == 0
    browser_page.goto((here / "site" / "compare.html").as_uri())
    drawn = browser_page.evaluate("() => { const r = window.BenchBootstrap.generator(0);"
                                  " return Array.from({length: 2000}, () => r()); }")
    rng = random.Random(0)
    assert drawn == [rng.random() for _ in range(2000)]  # past one refill of the 624 words


def test_any_two_runs_chosen_give_what_report_compare_gives(here, browser_page, capsys):
    now = datetime.now(timezone.utc)
    with SQLiteStorage(here / "benchmarks.db") as storage:
        tiered = _tiered_run(storage, now - timedelta(hours=2))
        _tiered_run(storage, now - timedelta(hours=1, minutes=30))
    assert main(["report", "--site", "site"]) == 0
    runs = [run["id"] for run in site_data(here / "site")["runs"]]  # newest first, the simulated run left out
    assert len(runs) == 6 and runs[2] == tiered  # the 40-day-old run is beyond the last 30 days
    page = browser_page
    page.goto((here / "site" / "compare.html").as_uri())
    for a, b in ((runs[2], runs[1]), (runs[5], runs[0]), (runs[0], runs[4]), (runs[3], runs[1]),
                 (runs[4], runs[3])):  # tiers against tiers, oldest to newest, newer first, tiers against none
        page.select_option("#run-a", a)
        page.select_option("#run-b", b)
        page.wait_for_function(f"document.getElementById('chosen').dataset.pair === '{a} {b}'")
        cells = page.eval_on_selector_all("#chosen tbody tr", "rows => rows.map(r => [r.dataset.key, "
                                          "r.dataset.within, r.dataset.metric, r.dataset.verdict, r.dataset.interval,"
                                          " r.dataset.medians])")
        capsys.readouterr()
        expected = report_json(capsys, "--compare", a, b)
        rows = [["\0".join((c["provider"], c["model"])), c["within"] or "", change["metric"], change["verdict"] or "",
                 change["interval"], [change["median_a"], change["median_b"]]]
                for c in expected["comparisons"] for change in c["changes"]]
        shown = [[key, within, metric, verdict, json.loads(interval), json.loads(medians)]
                 for key, within, metric, verdict, interval, medians in cells]
        assert shown == rows, (a, b)
        if (a, b) == (runs[5], runs[0]):
            assert {row[3] for row in rows} >= {"faster", "within noise", ""}  # 20 days apart: a change, noise, none
        if (a, b) == (runs[2], runs[1]):
            assert {row[1] for row in rows} == {"input tier 100", "input tier 10,000"}
    assert not page.problems


def test_the_runs_shipped_are_bounded_newest_first(here, monkeypatch):
    import benchmarking.site.compare_data as compare_data

    assert main(["report", "--site", "site"]) == 0
    every = site_data(here / "site")["runs"]
    monkeypatch.setattr(compare_data, "SAMPLED_RESULTS", 2 * every[0]["results"])  # room for two runs
    assert main(["report", "--site", "site"]) == 0
    assert [run["id"] for run in site_data(here / "site")["runs"]] == [run["id"] for run in every[:2]]
    assert all(a["started"] > b["started"] for a, b in zip(every, every[1:]))
