"""report --site: the figures are the report's for the same selection and window, the directory is swapped whole and
never one of another's, and in a real browser (Debian's Chromium through Playwright) the pages draw without error,
switch windows and percentiles to the right figures, keep hostile names as text and fetch nothing from outside."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
import json
import os
from pathlib import Path
import shutil
from uuid import uuid4

import pytest

from benchmarking.cli import main
from benchmarking.figures import number_text
from benchmarking.measurement import Measurement
from benchmarking.pricing import format_usd
from benchmarking.site.write import MARKER

from test_storage_sqlite import run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
HOSTILE_MODEL = '<img src=x onerror="window.__pwned=1">"</script><script>window.__pwned=2</script>'
HOSTILE_PROVIDER = "evil<b>&amp;</b>"
SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def measured(provider: str, model: str, ttft: float | None, latency: float | None, at: datetime,
             cost: str = "0.0001", error: str | None = None) -> Measurement:
    if error:
        return Measurement(provider=provider, model=model, success=False, started_at=at, stream=True,
                           error_type=error, http_status=503, error_message=f"<b>upstream</b> said no; key {SECRET}")
    return Measurement(provider=provider, model=model, success=True, started_at=at, stream=True, ttft_ms=ttft,
                       latency_ms=latency, output_tokens=100, input_tokens=10, tokens_per_second=99.0 + ttft / 100,
                       cost_usd=Decimal(cost), cost_source="pricing")


def history(storage, now: datetime) -> None:
    """Runs an age apart, so each window holds other rows: 30 min, 5 h, 3 days, 20 days and 40 days ago."""
    for age, base in ((timedelta(minutes=30), 100), (timedelta(hours=5), 200), (timedelta(days=3), 300),
                      (timedelta(days=20), 400), (timedelta(days=40), 500)):
        started = now - age
        run = run_info(started_at=started, mode="live")
        storage.create_run(run)
        rows = [measured("groq", "fast", base + i, 2 * base + 3 * i, started, "0.000021675") for i in range(4)]
        rows += [measured("openai", "gpt", base * 2 + i * i, 5 * base + i, started, "0.0003") for i in range(3)]
        rows += [measured("openai", "gpt", None, None, started, error="server_error")]
        rows += [measured(HOSTILE_PROVIDER, HOSTILE_MODEL, base + 7, base + 9, started, error=None)]
        for index, m in enumerate(rows):
            storage.save_result(run.id, uuid4(), started + timedelta(seconds=index), m)
        storage.finish_run(run.id, "completed", started + timedelta(minutes=1))
    simulated = run_info(started_at=now - timedelta(minutes=10), mode="simulated")
    storage.create_run(simulated)
    storage.save_result(simulated.id, uuid4(), now - timedelta(minutes=10),
                        measured("groq", "fast", 1.0, 2.0, now - timedelta(minutes=10)))
    storage.finish_run(simulated.id, "completed", now - timedelta(minutes=9))


@pytest.fixture
def here(tmp_path, monkeypatch):
    """tmp_path as the working directory, its benchmarks.db holding the history, no storage settings from outside."""
    for name in list(os.environ):
        if any(part in name for part in ("DATABASE_URL", "SUPABASE_", "BENCHMARK_")) and name != \
                "BENCHMARK_REQUIRE_CHROMIUM":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        history(storage, datetime.now(timezone.utc))
    return tmp_path


def report_json(capsys, *args: str) -> dict:
    assert main(["report", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def site_data(directory: Path) -> dict:
    return json.loads((directory / "data.json").read_text())


def test_every_window_holds_the_figures_report_gives_for_it(here, capsys):
    from benchmarking.storage.sqlite import SQLiteStorage

    now = datetime.now(timezone.utc)
    with SQLiteStorage(here / "benchmarks.db") as storage:
        for rule, state in (("slo_breach", "firing"), ("outage", "resolved")):
            assert storage.insert_alert({"id": uuid4(), "rule": rule, "provider": "groq", "model": "fast",
                                         "metric": "ttft_ms" if rule == "slo_breach" else None, "state": state,
                                         "started_at": now - timedelta(hours=2), "last_seen_at": now,
                                         "details": {}, "run_id": None, "host": "h", "notify_attempts": 0})
    assert main(["report", "--site", "site", "--provider", "groq", "--provider", "openai"]) == 0
    assert "site written to site" in capsys.readouterr().err
    data = site_data(here / "site")
    for window, flags in (("1h", ["--window", "1h"]), ("24h", ["--window", "24h"]), ("7d", ["--window", "7d"]),
                          ("30d", ["--window", "30d"]), ("all", [])):
        expected = report_json(capsys, "--provider", "groq", "--provider", "openai", *flags)["providers"]
        shown = [{k: v for k, v in row.items() if k in expected[0]} for row in data["windows"][window]["models"]]
        assert shown == expected, window
    fast = next(r for r in data["windows"]["7d"]["models"] if r["model"] == "fast")
    rolled = [v for v in data["windows"]["7d"]["series"]["models"][fast["key"]]["latency_rolling_ms"] if v is not None]
    day = next(p for p in report_json(capsys, "--window", "24h")["providers"] if p["model"] == "fast")
    assert rolled[-1] == day["latency_p50_ms"]  # the rolling day's median at the newest run: the last 24 h's median
    counts = {name: window["results"] for name, window in data["windows"].items()}
    assert counts == {"1h": 8, "24h": 16, "7d": 24, "30d": 32, "all": 40}  # the simulated row left out
    gpt = next(r for r in data["windows"]["1h"]["models"] if r["model"] == "gpt")
    assert (gpt["cost_mean_text"], gpt["cost_per_1m_output_tokens_text"]) == ("$0.0003", "$3.00")
    failures = data["models"][gpt["key"]]["failures"]
    assert len(failures) == 4 and failures[0]["time"] > failures[1]["time"]  # the last 30 days', newest first
    assert (failures[0]["http_status"], failures[0]["error_type"]) == (503, "server_error")
    assert SECRET not in (here / "site" / "data.js").read_text() and "****" in failures[0]["message"]
    fast = next(r for r in data["windows"]["1h"]["models"] if r["model"] == "fast")
    assert [(a["rule"], a["metric"]) for a in data["models"][fast["key"]]["alerts"]] == [("slo_breach", "ttft_ms")]
    assert data["models"][gpt["key"]]["alerts"] == []  # only the firing one, only for its model
    uptime = data["models"][gpt["key"]]["uptime"]
    assert uptime["1d"] == 0.75 and "5m" not in uptime  # 6 of the day's 8 requests; none in the last 5 minutes


def test_the_site_reads_the_same_figures_on_every_backend(open_backend):
    from benchmarking.report.formats import summary_fields
    from benchmarking.report.selection import Selection, select, window_selection
    from benchmarking.report.views import summarise
    from benchmarking.site.data import site_data as build_data
    from benchmarking.slo import SloConfig

    now = datetime.now(timezone.utc)
    with open_backend() as storage:
        history(storage, now)
    with open_backend() as storage:
        data = build_data(storage, Selection(), SloConfig(), now)
        week = select(storage, window_selection(Selection(), timedelta(days=7), now))
        everything = select(storage, Selection())
    for window, rows in (("7d", week), ("all", everything)):
        expected = [summary_fields(s) for s in summarise(rows)]
        assert [{k: v for k, v in row.items() if k in expected[0]} for row in data["windows"][window]["models"]] \
            == expected, window
    assert data["windows"]["all"]["results"] == 45 and data["windows"]["7d"]["results"] == 27
    gpt = next(m for m in data["models"].values() if m["model"] == "gpt")
    assert len(gpt["failures"]) == 4 and gpt["failures"][0]["message"] == "<b>upstream</b> said no; key ****"


def test_with_slo_targets_the_leaderboard_holds_the_reports_attainment(here, capsys):
    (here / "slo.toml").write_text("[slo]\nttft_ms = 250\n")
    assert main(["report", "--site", "site", "--config", "slo.toml"]) == 0
    data = site_data(here / "site")
    for window, flags in (("7d", ["--window", "7d"]), ("all", [])):
        expected = {p["model"]: p["slo_attainment"]
                    for p in report_json(capsys, "--config", "slo.toml", *flags)["providers"]}
        assert {r["model"]: r["slo_attainment"] for r in data["windows"][window]["models"]} == expected, window
    assert 0 < expected["gpt"] < 1  # some of gpt's requests within 250 ms, some not


def test_the_compare_page_holds_what_report_compare_gives(here, capsys):
    assert main(["report", "--site", "site", "--provider", "groq", "--provider", "openai"]) == 0
    (newest,) = site_data(here / "site")["comparisons"]
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(here / "benchmarks.db") as storage:
        runs = sorted((r for r in storage.read_runs() if r.info.mode == "live"), key=lambda r: r.info.started_at)
    before, after = str(runs[-2].info.id), str(runs[-1].info.id)
    expected = report_json(capsys, "--compare", before, after, "--provider", "groq", "--provider", "openai")
    assert {k: v for k, v in newest.items() if k != "name"} == expected
    assert [c["provider"] for c in newest["comparisons"]] == ["groq", "openai"]
    latency = next(change for change in newest["comparisons"][0]["changes"] if change["metric"] == "latency")
    assert (latency["median_a"], latency["median_b"]) == (404.5, 204.5) and latency["verdict"] == "faster"
    assert newest["name"] == "the newest run against the one before"


def test_the_site_replaces_only_a_site_and_never_the_tools_own_files(here, capsys):
    (here / "site").mkdir()
    assert main(["report", "--site", "site"]) == 0  # an empty directory is fine
    assert main(["report", "--site", "site"]) == 0
    pages = {p.name for p in (here / "site").iterdir()}
    (here / "site" / "CNAME").write_text("bench.example.org\n")  # the user's, put in the site after a build
    (here / "site" / "notes").mkdir()
    (here / "site" / "notes" / "mine.md").write_text("keep me")
    (here / "site" / "link").symlink_to("CNAME")
    assert main(["report", "--site", "site", "--provider", "groq"]) == 0
    now = {p.name for p in (here / "site").iterdir()}
    assert pages - now and (here / "site" / MARKER).exists()  # replaced whole: the other providers' pages gone
    assert (here / "site" / "CNAME").read_text() == "bench.example.org\n"  # the user's files carried over
    assert (here / "site" / "notes" / "mine.md").read_text() == "keep me"
    assert os.readlink(here / "site" / "link") == "CNAME"
    assert main(["report", "--site", "site"]) == 0  # and again, into the next build
    assert (here / "site" / "CNAME").exists() and pages <= {p.name for p in (here / "site").iterdir()}
    assert [p.name for p in here.iterdir() if p.name.startswith(".site.")] == []  # no staging left behind
    killed, recent = here / ".site.new-killed", here / ".site.new-building"  # a build killed an hour ago; one now
    for directory, age_s in ((killed, 7200), (recent, 0)):
        directory.mkdir()
        (directory / "index.html").write_text("half")
        os.utime(directory, (directory.stat().st_atime - age_s, directory.stat().st_mtime - age_s))
    assert main(["report", "--site", "site"]) == 0
    assert not killed.exists() and recent.exists()
    shutil.rmtree(recent)
    (here / "notes").mkdir()
    (here / "notes" / "mine.txt").write_text("keep me")
    capsys.readouterr()
    for target, said in (("notes", "holds files this tool did not write"), (".", "SQLite database"),
                         ("benchmarks.db", "SQLite database"), ("outbox", "outbox")):
        assert main(["report", "--site", target]) == 2, target
        (line,) = capsys.readouterr().err.splitlines()
        assert said in line, line
    assert (here / "notes" / "mine.txt").read_text() == "keep me"
    for flags in (["--window", "24h"], ["--by", "hour"], ["--format", "json"], ["--plot", "x.png"]):
        assert main(["report", "--site", "site2", *flags]) == 2, flags
        assert "--site" in capsys.readouterr().err
    assert not (here / "site2").exists()


def test_a_failed_write_leaves_the_earlier_site_whole(here, monkeypatch, capsys):
    assert main(["report", "--site", "site"]) == 0
    before = {p.name: p.read_bytes() for p in (here / "site").iterdir() if p.is_file()}
    import benchmarking.site.write as write

    calls = []

    def failing(path, data, flag):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_write(path, data, flag)

    real_write = write.write_file
    monkeypatch.setattr(write, "write_file", failing)
    capsys.readouterr()
    assert main(["report", "--site", "site", "--provider", "groq"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert "--site site not written: No space left on device" in line
    assert {p.name: p.read_bytes() for p in (here / "site").iterdir() if p.is_file()} == before
    assert [p.name for p in here.iterdir() if p.name.startswith(".site.")] == []


# ---- in a real browser ------------------------------------------------------------------------------------------

def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("BENCHMARK_REQUIRE_CHROMIUM"):
            pytest.fail("Chromium and Playwright are required (BENCHMARK_REQUIRE_CHROMIUM is set) but not installed")
        pytest.skip("Chromium or Playwright not installed")
    return path


@pytest.fixture
def browser_page():
    """A page in headless Chromium, with what it logged and every URL it asked for."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.problems, page.requests = [], []
            page.on("console", lambda m: page.problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: page.problems.append(str(e)))
            page.on("request", lambda r: page.requests.append(r.url))
            yield page
        finally:
            browser.close()


def leaderboard(page) -> dict[str, dict[str, str]]:
    """The leaderboard as shown: per model's cell text, header -> cell."""
    return page.evaluate("""() => {
        const table = document.getElementById("leaderboard");
        const header = Array.from(table.tHead.rows[0].cells, (c) => c.textContent);
        const rows = {};
        for (const tr of table.tBodies[0].rows) {
            const cells = Array.from(tr.cells, (c) => c.textContent);
            rows[cells[1]] = Object.fromEntries(header.map((h, i) => [h, cells[i]]));
        }
        return rows;
    }""")


def shown(value) -> str:
    """A figure as the page shows it: the json's number in plain digits (157.0 as 157), '-' where undefined."""
    return number_text(value)


def test_the_leaderboard_in_chromium_shows_the_reports_figures_for_each_window_and_percentile(here, capsys,
                                                                                             browser_page):
    page = browser_page
    assert main(["report", "--site", "site"]) == 0
    page.goto((here / "site" / "index.html").as_uri())
    page.wait_for_selector("#leaderboard tbody tr")
    assert page.input_value("#window") == "24h"
    for window, q in (("24h", 50), ("24h", 90), ("7d", 99), ("1h", 95), ("30d", 50)):
        page.select_option("#window", window)
        page.select_option("#percentile", f"p{q}")
        expected = {p["model"]: p for p in report_json(capsys, "--window", window)["providers"]}
        table = leaderboard(page)
        assert set(table) == set(expected), window
        for model, figures in expected.items():
            row = table[model]
            assert row[f"TTFT ms p{q}"] == shown(figures[f"ttft_p{q}_ms"]), (window, q, model)
            assert row[f"latency ms p{q}"] == shown(figures[f"latency_p{q}_ms"]), (window, q, model)
            assert row["requests"] == str(figures["requests"])
            marks = " ".join(mark for mark in ("fastest", "cheapest") if figures[mark]) or "-"
            assert row["marks"] == marks, (window, model)
            cost = figures["cost_mean_usd"]
            assert row["$ per request"] == (format_usd(Decimal(cost)) if cost else "-")
    page.select_option("#window", "7d")
    page.check("#rolling")
    assert page.text_content("#rolling-length") == "24 h"
    page.uncheck("#rolling")
    sevens = leaderboard(page)
    page.select_option("#window", "1h")
    assert leaderboard(page)["fast"]["TTFT ms p50"] != sevens["fast"]["TTFT ms p50"]  # the switch changed them
    page.click("#leaderboard th:has-text('latency ms')")
    page.click("#leaderboard th:has-text('latency ms')")  # descending
    latencies = [float(row["latency ms p50"]) for row in leaderboard(page).values()]
    order = page.eval_on_selector_all("#leaderboard tbody tr td:nth-child(6)", "cells => cells.map(c => c.textContent)")
    assert [float(v) for v in order] == sorted(latencies, reverse=True)
    assert page.eval_on_selector_all("#chart-ttft canvas", "nodes => nodes.length") >= 1
    page.select_option("#window", "7d")
    page.select_option("#heatmap-metric", "latency_p50_ms")
    by_hour = report_json(capsys, "--window", "7d", "--by", "hour")["providers"]
    assert len(by_hour) in (6, 9)  # three runs in the week, at two or three hours of day, each with three models
    for figures in by_hour:
        key = next(row["key"] for row in site_data(here / "site")["windows"]["7d"]["models"]
                   if row["model"] == figures["model"])
        cell = page.get_attribute(f"#heatmap tr[data-key='{key}'] td[data-hour='{int(figures['hour'])}']", "title")
        assert cell == shown(figures["latency_p50_ms"]), figures
    page.click("a:text-is('Compare')")
    page.wait_for_selector("#comparisons tr[data-metric='latency']")
    verdicts = page.eval_on_selector_all("#comparisons section:first-child tbody tr",
                                         "rows => rows.map(r => r.lastChild.textContent)")
    assert "faster" in verdicts and page.is_hidden("#controls")
    page.go_back()
    page.wait_for_selector("#leaderboard tbody tr")
    page.click("#leaderboard a:text-is('groq')")  # the provider's page keeps the window and percentile
    page.wait_for_selector("#windows tbody tr")
    assert (page.input_value("#window"), page.input_value("#percentile")) == ("7d", "p50")
    assert page.problems == []


def test_hostile_names_stay_text_and_nothing_is_fetched_from_outside_the_site(here, browser_page):
    page = browser_page
    assert main(["report", "--site", "site"]) == 0
    site = here / "site"
    for html in site.glob("*.html"):
        text = html.read_text()
        assert 'http-equiv="Content-Security-Policy"' in text and "script-src 'self'" in text
        assert "<script>" not in text and "http" not in text.replace("http-equiv", "")
    page.goto((site / "index.html").as_uri())
    page.wait_for_selector("#leaderboard tbody tr")
    assert HOSTILE_MODEL in leaderboard(page)
    assert page.evaluate("() => window.__pwned") is None
    assert page.evaluate("() => document.querySelectorAll('#leaderboard img, #leaderboard b').length") == 0
    page.click(f"#leaderboard a:text-is('{HOSTILE_PROVIDER}')")
    page.wait_for_selector("#windows tbody tr")
    assert page.text_content("#heading") == f"\u2014 {HOSTILE_PROVIDER} / {HOSTILE_MODEL}"
    assert page.evaluate("() => window.__pwned") is None
    page.goto((site / "index.html").as_uri())
    page.wait_for_selector("#leaderboard tbody tr")
    page.click("#leaderboard a:text-is('openai')")
    page.wait_for_selector("#failures tbody tr")
    message = page.text_content("#failures tbody tr td:last-child")
    assert message.startswith("<b>upstream</b> said no; key ") and SECRET not in message
    assert page.evaluate("() => document.querySelectorAll('#failures b').length") == 0
    for other in ("compare.html", "load.html"):  # every page draws the names: as text everywhere
        page.goto((site / other).as_uri())
        page.wait_for_selector("#title:not(:empty)")
        assert page.evaluate("() => window.__pwned") is None
        assert page.evaluate("() => document.querySelectorAll('main img, main b, main script').length") == 0
        if other == "compare.html":
            assert HOSTILE_MODEL in page.text_content("#comparisons")  # compared, and shown as it is
    inside = site.resolve().as_uri() + "/"
    assert page.requests and all(url.startswith(inside) for url in page.requests), page.requests
    assert page.problems == []


# ---- rebuilt after a run ----------------------------------------------------------------------------------------

def test_a_run_with_site_rebuilds_it_and_a_site_it_cannot_write_never_fails_the_run(tmp_path, monkeypatch, capsys):
    from test_cli import run_main

    done = run_main(tmp_path, "--simulate", "--providers", "groq,openai", "--site", "site")
    assert done.returncode == 0, done.stderr
    data = site_data(tmp_path / "site")
    assert data["windows"]["1h"]["results"] == 2  # a simulated run's site shows simulated runs
    assert {m["provider"] for m in data["models"].values()} == {"groq", "openai"}
    done = run_main(tmp_path, "report", "--site", "live")
    assert done.returncode == 0 and "(0 results; live runs only) (simulated results match: add " \
                                   "--include-simulated to see them): open live/index.html" in done.stderr
    done = run_main(tmp_path, "--simulate", "--providers", "groq", "--site", "benchmarks.db")
    assert done.returncode == 2 and "SQLite database" in done.stderr and "Testing" not in done.stdout

    import benchmarking.site.build as build
    from benchmarking.errors import OutputUnwritable

    def full_disk(directory, files, flag):
        raise OutputUnwritable(f"{flag} {directory} not written: No space left on device; any earlier site there "
                               "is left as it was")

    for name in list(os.environ):
        if any(part in name for part in ("DATABASE_URL", "SUPABASE_", "BENCHMARK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build, "write_site", full_disk)
    capsys.readouterr()
    assert main(["--simulate", "--providers", "groq", "--site", "site"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "--site" in line]
    assert warnings == ["warning: --site site not rebuilt: --site site not written: No space left on device; any "
                        "earlier site there is left as it was"]
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        assert len(storage.read_results()) == 3  # this run's result stored all the same (the refused run: none)
    assert site_data(tmp_path / "site")["windows"]["1h"]["results"] == 2  # the earlier site kept


@pytest.mark.parametrize("entry", ["main", "scheduled"])
def test_a_site_in_a_place_that_cannot_be_written_is_a_warning_and_the_run_measures(tmp_path, entry):
    import subprocess
    import sys

    from test_cli import MAIN, clean_env

    command = [str(MAIN)] if entry == "main" else [str(MAIN.with_name("run_scheduled.py")), "--runs", "1"]
    done = subprocess.run([sys.executable, *command, "--simulate", "--providers", "groq", "--site",
                           "/sys/benchmark-site"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "/sys/benchmark-site" in line]
    assert warnings and all(line.startswith("warning: --site /sys/benchmark-site") for line in warnings), warnings
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        assert len(storage.read_results()) == 1  # measured and stored all the same


# ---- serve ------------------------------------------------------------------------------------------------------

def test_serve_serves_the_site_on_loopback_and_rebuilds_it_when_a_result_is_stored(here):
    import subprocess
    import sys
    import time
    import urllib.request

    from test_cli import MAIN, clean_env

    server = subprocess.Popen([sys.executable, str(MAIN), "serve", "--port", "0", "--every", "0.3s"], cwd=here,
                              env=clean_env(), stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        assert line.startswith("serving site (45 results; live runs only) at http://127.0.0.1:"), line
        base = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(base + "index.html", timeout=10) as response:
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            assert 'data-page="index"' in response.read().decode()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(base + "assets/", timeout=10)  # no directory listing

        def served_results() -> int:
            with urllib.request.urlopen(base + "data.json", timeout=10) as response:
                return json.loads(response.read())["windows"]["all"]["results"]

        assert served_results() == 45
        from benchmarking.storage.sqlite import SQLiteStorage

        now = datetime.now(timezone.utc)
        with SQLiteStorage(here / "benchmarks.db") as storage:
            run = run_info(started_at=now, mode="live")
            storage.create_run(run)
            storage.save_result(run.id, uuid4(), now, measured("groq", "fast", 50.0, 90.0, now))
        deadline = time.monotonic() + 60
        while served_results() == 45 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert served_results() == 46
        # The line comes after the new site is swapped in (and so may come after it is served): read up to it.
        said = [server.stderr.readline() for _ in range(1)]
        while "site rebuilt" not in said[-1] and said[-1] and len(said) < 20:
            said.append(server.stderr.readline())
        assert said[-1].strip() == "serve: site rebuilt (46 results)", said
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_a_bad_port_and_a_directory_of_anothers_in_one_line(here, capsys):
    assert main(["serve", "--port", "http"]) == 2
    assert capsys.readouterr().err.strip() == "main.py: error: --port takes a port number from 0 to 65535, like " \
                                              "8321, not 'http'"
    assert main(["serve", "--port", "\u0661\u0662\u0663"]) == 2  # Arabic-Indic digits: int() reads them as 123
    assert "--port takes a port number" in capsys.readouterr().err
    (here / "docs").mkdir()
    (here / "docs" / "notes.md").write_text("mine")
    assert main(["serve", "--site", "docs"]) == 2
    assert "holds files this tool did not write" in capsys.readouterr().err


def test_the_load_page_finds_the_highest_load_each_model_holds_for_the_targets_set(tmp_path, browser_page, capsys,
                                                                                  monkeypatch):
    from test_cli import run_main

    done = run_main(tmp_path, "--simulate", "--providers", "groq,openai", "--concurrency", "1,2", "--requests", "4")
    assert done.returncode == 0, done.stderr
    for name in list(os.environ):
        if any(part in name for part in ("DATABASE_URL", "SUPABASE_", "BENCHMARK_")) and name != \
                "BENCHMARK_REQUIRE_CHROMIUM":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--site", "site", "--include-simulated"]) == 0
    levels = report_json(capsys, "--by", "concurrency", "--include-simulated")["levels"]
    assert {(level["provider"], level["concurrency"]) for level in levels} == {
        ("groq", 1), ("groq", 2), ("openai", 1), ("openai", 2)}
    page = browser_page
    page.goto((tmp_path / "site" / "load.html").as_uri())
    page.wait_for_selector("#holds tbody tr")

    def held(q: str, ttft: float, latency: float) -> dict[str, str]:
        """What the page says each model holds with these targets, and what the report's levels say."""
        page.select_option("#load-percentile", q)
        for slider, value in (("#ttft-target", ttft), ("#latency-target", latency)):
            page.eval_on_selector(slider, "(node, value) => { node.value = value; "
                                          "node.dispatchEvent(new Event('input')); }", str(value))
        shown = {cells[0]: cells[2] for cells in page.eval_on_selector_all(
            "#holds tbody tr", "rows => rows.map(r => Array.from(r.cells, c => c.textContent))")}
        expected = {}
        for provider in ("groq", "openai"):
            best = "none"
            for level in sorted((lv for lv in levels if lv["provider"] == provider), key=lambda lv: lv["concurrency"]):
                t, lat = level[f"ttft_{q}_ms"], level[f"latency_{q}_ms"]
                if t is None or lat is None or t > ttft or lat > latency or level["error_rate"] > 0.01:
                    break
                best = str(level["concurrency"])
            expected[provider] = best
        assert shown == expected, (q, ttft, latency)
        return shown

    slowest = max(level["latency_p99_ms"] for level in levels)
    groq_latency = max(level["latency_p90_ms"] for level in levels if level["provider"] == "groq")
    assert held("p90", 10_000, slowest + 1) == {"groq": "2", "openai": "2"}  # loose targets: every level holds
    assert held("p90", 10_000, groq_latency + 1)["openai"] == "none"  # groq's latency: too tight for openai
    assert held("p50", 1, 10_000) == {"groq": "none", "openai": "none"}  # a 1 ms TTFT: nobody
    assert page.problems == []


def test_the_prefill_chart_shows_ttft_at_each_input_tier_as_report_by_tier_gives_it(tmp_path, browser_page, capsys,
                                                                                   monkeypatch):
    from test_cli import run_main

    done = run_main(tmp_path, "--simulate", "--providers", "groq", "--input-tokens", "100,10000")
    assert done.returncode == 0, done.stderr
    for name in list(os.environ):
        if any(part in name for part in ("DATABASE_URL", "SUPABASE_", "BENCHMARK_")) and name != \
                "BENCHMARK_REQUIRE_CHROMIUM":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--site", "site", "--include-simulated"]) == 0
    tiers = {p["tier"]: p["ttft_p50_ms"]
             for p in report_json(capsys, "--by", "tier", "--include-simulated")["providers"]}
    page = browser_page
    page.goto((tmp_path / "site" / "load.html").as_uri())
    page.wait_for_selector("#prefill tbody tr")
    shown_rows = page.eval_on_selector_all("#prefill tbody tr",
                                           "rows => rows.map(r => Array.from(r.cells, c => c.textContent))")
    assert {int(tier): float(ttft) for _, _, tier, _, ttft in shown_rows} == tiers
    assert tiers[10000] > tiers[100]  # the simulator's prefill: a longer prompt, a later first token
    assert page.is_hidden("#sweep") and page.is_visible("#no-load")  # no load run here
    assert page.eval_on_selector_all("#chart-prefill canvas", "nodes => nodes.length") >= 1
    assert page.problems == []


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The serve command's server over a small site in tmp_path/site, in a thread; yields (site, port)."""
    import threading

    import benchmarking.site.serve as serve

    monkeypatch.setattr(serve.SiteHandler, "timeout", 1.0)
    monkeypatch.setattr(serve, "MAX_CONNECTIONS", 2)
    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<p>the site</p>")
    (tmp_path / "secret.txt").write_text("outside the site")
    server = serve.bind("127.0.0.1", 0, str(site))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def raw_request(port: int, target: bytes) -> bytes:
    """The status line the server answers to `GET target` sent byte for byte (no client escapes anything)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return reply.split(b"\r\n", 1)[0]


def test_serve_answers_any_request_it_cannot_map_with_400_or_404_never_a_traceback(served, capfd):
    site, port = served
    (site / "out.txt").symlink_to(site.parent / "secret.txt")  # a link out of the site is not followed
    (site / "assets" / "up").symlink_to(site.parent)
    assert raw_request(port, b"/index.html") == raw_request(port, b"/") == b"HTTP/1.0 200 OK"
    for target in (b"/index.html%00.js", b"/%00", b"/%ff%fe.html", b"/%ed%a0%80", b"/" + b"a" * 5000,
                   b"/" + b"a/" * 3000 + b"x", b"/out.txt", b"/assets/up/secret.txt", b"/assets/"):
        status = raw_request(port, target)
        assert status.split()[1] in (b"400", b"404"), (target[:40], status)
    assert "Traceback" not in capfd.readouterr().err


def test_serve_closes_an_idle_connection_and_bounds_its_connections(served, capfd):
    import socket
    import time

    site, port = served
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]  # MAX_CONNECTIONS here
    time.sleep(0.1)
    started = time.monotonic()
    assert raw_request(port, b"/index.html") == b""  # a third: closed at once, no thread for it
    assert time.monotonic() - started < 0.5
    for connection in idle:
        assert connection.recv(100) == b""  # closed by the server after its timeout
        connection.close()
    assert time.monotonic() - started < 5
    assert raw_request(port, b"/index.html") == b"HTTP/1.0 200 OK"  # their threads gone, served again
    assert "Traceback" not in capfd.readouterr().err


def test_serve_refuses_an_empty_host_and_listens_on_ipv6(here, capsys):
    from benchmarking.errors import ConfigError
    from benchmarking.site.serve import bind, url_of

    assert main(["serve", "--host", ""]) == 2
    assert capsys.readouterr().err.strip() == "main.py: error: --host needs an address, like 127.0.0.1 (this " \
                                              "machine only), ::1, or 0.0.0.0 (every one)"
    assert not (here / "site").exists()  # refused before anything was built
    for host in ("no-such-host.invalid", "a\0b", "x" * 300):
        with pytest.raises(ConfigError, match="serve: cannot listen on"):
            bind(host, 0, str(here))
    server = bind("::1", 0, str(here))
    try:
        assert url_of(server).startswith("http://[::1]:")
    finally:
        server.server_close()
