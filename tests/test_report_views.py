"""report --by KEY, --window, correct-answer % and --compare within a tier: figures checked against the rows written,
computed here independently (statistics.median), on every backend."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
import json
import random
from statistics import median
from uuid import uuid4

import pytest

from benchmarking.cli import main
from benchmarking.measurement import Measurement
from benchmarking.report.formats import format_csv, format_markdown, format_table
from benchmarking.report.groups import NO_VALUE
from benchmarking.report.selection import Selection, select
from benchmarking.report.views import summarise

from test_report import report_here  # noqa: F401  (a fixture)
from test_storage_sqlite import run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)
PROBES = (("eu-west", "probe-eu"), ("us-east", "probe-us"), (None, "laptop"))  # a probe with no region set


def measured(provider, model, ttft, latency, **changes):
    values = dict(provider=provider, model=model, success=True, started_at=DAY, stream=True, ttft_ms=ttft,
                  latency_ms=latency, output_tokens=50, input_tokens=10, cost_usd=Decimal("0.001"),
                  tokens_per_second=49 / ((latency - ttft) / 1000))
    values.update(changes)
    return Measurement(**values)


def write(storage, runs):
    """runs: [(region, host, started_at, [(created_at, Measurement)])]; every result at its chosen created_at."""
    for region, host, started, results in runs:
        run = run_info(started_at=started, mode="live", region=region, host=host)
        storage.create_run(run)
        for created, m in results:
            storage.save_result(run.id, uuid4(), created, m)
        storage.finish_run(run.id, "completed", started + timedelta(minutes=1))


def history(seed=3):
    """Runs of two providers from three probes at hours 02, 09 and 17 UTC over three days; OpenRouter's rows say
    who served them, some rows carry an input tier and a prompt id, and one groq row in nine failed."""
    rng = random.Random(seed)
    runs = []
    for day in range(3):
        for hour in (2, 9, 17):
            for region, host in PROBES:
                started = DAY + timedelta(days=day, hours=hour, minutes=rng.randrange(50))
                tier = rng.choice((None, 100, 1000))
                results = [
                    (started + timedelta(seconds=1),
                     measured("groq", "openai/gpt-oss-20b", rng.uniform(40, 80) + hour, rng.uniform(100, 200) + hour,
                              input_tier=tier, prompt_id="p1" if tier else None)),
                    (started + timedelta(seconds=2),
                     measured("openrouter", "openai/gpt-4o-mini", rng.uniform(200, 300), rng.uniform(700, 900),
                              upstream_provider=rng.choice(("Google", "Azure", None)), input_tier=tier)),
                    # a provider's native API beside its OpenAI-compatible endpoint, and a row from before the column
                    (started + timedelta(seconds=4),
                     measured("anthropic", "claude-haiku-5-5", rng.uniform(300, 400), rng.uniform(900, 1100),
                              api=rng.choice(("messages", "chat_completions", None)))),
                ]
                if hour == 9 and host == "laptop":
                    results.append((started + timedelta(seconds=3), Measurement(
                        provider="groq", model="openai/gpt-oss-20b", success=False, started_at=DAY, stream=True,
                        error_type="timeout")))
                runs.append((region, host, started, results))
    return runs


def expected(runs, value_of):
    """{(group, provider, model): (requests, median TTFT, median latency)} from the rows as written."""
    groups = defaultdict(list)
    for region, host, _, results in runs:
        for created, m in results:
            groups[(value_of(created, region, host, m), m.provider, m.model)].append(m)
    return {
        key: (len(ms), median([m.ttft_ms for m in ms if m.success]), median([m.latency_ms for m in ms if m.success]))
        for key, ms in groups.items()
    }


VALUE_OF = {
    "hour": lambda created, region, host, m: created.hour,
    "region": lambda created, region, host, m: region,
    "host": lambda created, region, host, m: host,
    "upstream": lambda created, region, host, m: m.upstream_provider,
    "tier": lambda created, region, host, m: m.input_tier,
    "prompt": lambda created, region, host, m: m.prompt_id,
    "model": lambda created, region, host, m: m.model,
    "api": lambda created, region, host, m: m.api or "chat_completions",  # older rows: the API there was
}


def test_every_grouping_key_gives_the_figures_of_its_rows_on_every_backend(open_backend):
    runs = history()
    with open_backend() as storage:
        storage.prepare()
        write(storage, runs)
        rows = select(storage, Selection())
    assert len(rows) == sum(len(r[3]) for r in runs)
    for by, value_of in VALUE_OF.items():
        summaries = summarise(rows, by)
        got = {(s.group[1], s.provider, s.model): (s.requests, s.ttft_ms[50], s.latency_ms[50]) for s in summaries}
        want = expected(runs, value_of)
        assert got.keys() == want.keys(), by
        for key, (requests, ttft, latency) in want.items():
            assert got[key][0] == requests and got[key][1:] == pytest.approx((ttft, latency)), (by, key)
        # groups in the key's order, the rows without the key last, each group's rows together
        order = [s.group[1] for s in summaries]
        distinct = list(dict.fromkeys(order))
        assert distinct == sorted((v for v in distinct if v is not None)) + ([None] if None in distinct else [])
        assert all(order.count(v) == len([k for k in want if k[0] == v]) for v in distinct)


def test_fastest_is_marked_within_each_group():
    runs = [("eu", "h", DAY, [(DAY + timedelta(hours=hour, seconds=i), measured(p, "m", 10, latency))
                              for i in range(2) for p, latency in (("a", 100 if hour < 12 else 300), ("b", 200))])
            for hour in (1, 13)]
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(":memory:") as storage:
        write(storage, runs)
        summaries = summarise(select(storage, Selection()), "hour")
    assert [(s.group[1], s.provider, s.fastest) for s in summaries if s.fastest] == [(1, "a", True), (13, "b", True)]


@pytest.fixture
def report_dir(report_here):
    """A directory whose benchmarks.db holds the history; report runs there with a clean environment."""
    from benchmarking.storage.sqlite import SQLiteStorage

    runs = history()
    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        write(storage, runs)
    return runs


def test_every_format_carries_the_grouping(report_dir, capsys):
    want = expected(report_dir, VALUE_OF["region"])
    assert main(["report", "--by", "region", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["by"] == "region"
    got = {(p["region"], p["provider"], p["model"]): p["requests"] for p in payload["providers"]}
    assert got == {key: value[0] for key, value in want.items()}

    assert main(["report", "--by", "region", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("region,provider,model,requests,")
    assert sum(line.startswith(",") for line in lines[1:]) == 3  # the probe with no region: an empty cell

    assert main(["report", "--by", "hour"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert ", by hour UTC" in table[0] and table[1].startswith("hour UTC")
    assert [line[:5] for line in table[2:-1]] == ["02:00"] * 3 + ["09:00"] * 3 + ["17:00"] * 3

    assert main(["report", "--by", "upstream", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| served by | provider |" in markdown and f"| {NO_VALUE} | groq |" in markdown
    assert "| Google | openrouter |" in markdown


def test_by_api_puts_a_native_api_beside_the_openai_compatible_endpoint_and_older_rows_with_it(report_dir, capsys):
    assert main(["report", "--by", "api", "--format", "json"]) == 0
    got = {(p["api"], p["provider"]): p["requests"] for p in json.loads(capsys.readouterr().out)["providers"]}
    rows = [m for *_, results in report_dir for _, m in results]
    assert got == {
        ("chat_completions", "anthropic"): sum(m.provider == "anthropic" and m.api != "messages" for m in rows),
        ("messages", "anthropic"): sum(m.provider == "anthropic" and m.api == "messages" for m in rows),
        ("chat_completions", "groq"): sum(m.provider == "groq" for m in rows),
        ("chat_completions", "openrouter"): sum(m.provider == "openrouter" for m in rows),
    }
    assert any(m.api is None for m in rows) and NO_VALUE not in {api for api, _ in got}
    assert main(["report", "--by", "api"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert ", by api" in table[0] and table[1].startswith("api")
    assert [line.split()[:2] for line in table[2:-1] if "anthropic" in line] == [
        ["chat_completions", "anthropic"], ["messages", "anthropic"]]


def test_a_line_break_in_a_name_keeps_each_table_row_on_one_line(tmp_path, monkeypatch, capsys):
    """A model name may hold anything (`--model groq=...`, a benchmark.toml endpoint's models) and a region anything
    BENCHMARK_REGION holds: a line break split the row in two and broke the markdown table."""
    from benchmarking.storage.sqlite import SQLiteStorage

    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "SUPABASE_URL", "BENCHMARK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    odd_model, odd_region = 'we|ird,mo"del\nline two', "eu|west\r\nb"
    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        write(storage, [(odd_region, "h", DAY, [(DAY + timedelta(seconds=s), measured("groq", odd_model, 50 + s, 150))
                                                for s in range(3)])])
    for by in ("provider", "region"):
        assert main(["report", "--by", by, "--format", "markdown"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 5 and lines[4].startswith("| ") and lines[4].endswith(" |"), lines
        assert "we\\|ird,mo\"del<br>line two" in lines[4]
        assert main(["report", "--by", by]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 4 and "we|ird,mo\"del\\nline two" in lines[2], lines
    assert main(["report", "--by", "region", "--format", "markdown"]) == 0
    assert "eu\\|west<br>b" in capsys.readouterr().out
    assert main(["report", "--by", "region", "--format", "json"]) == 0  # JSON and CSV keep the names as they are
    assert json.loads(capsys.readouterr().out)["providers"][0]["model"] == odd_model


def test_an_unknown_key_exits_2(report_dir, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["report", "--by", "weekday"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--by: invalid choice: 'weekday'" in err[0]


def test_formatting_functions_take_grouped_summaries(report_dir):
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage("benchmarks.db") as storage:
        summaries = summarise(select(storage, Selection()), "tier")
    assert format_csv(summaries).splitlines()[0].startswith("tier,provider")
    assert "| input tier |" in format_markdown(summaries, "t")
    assert "1,000" in format_table(summaries, "t") and NO_VALUE in format_table(summaries, "t")
    assert replace(summaries[0], group=None).group is None


def test_rolling_median_is_the_median_of_the_window_ending_at_each_point():
    rng = random.Random(5)
    points, when = [], 0.0
    for _ in range(400):
        when += rng.choice((0.0, 60.0, 900.0, 3600.0))  # equal times too
        points.append((when, rng.uniform(50, 500)))
    window_s = 6 * 3600
    from benchmarking.report.statistics import rolling_median

    rolled = rolling_median(points, window_s)
    brute = [(t, median([v for u, v in points if t - window_s <= u <= t])) for t, _ in points]
    # equal times: the last of them sees them all; brute force gives every one the full set
    last_of_each_time = {t: i for i, (t, _) in enumerate(points)}
    assert [rolled[i][0] for i in last_of_each_time.values()] == [brute[i][0] for i in last_of_each_time.values()]
    assert [rolled[i][1] for i in last_of_each_time.values()] == pytest.approx(
        [brute[i][1] for i in last_of_each_time.values()])


def window_runs(now):
    """Rows at 80 h, 50 h, 20 h and 1 h before now: a 72 h window ending now holds the last three."""
    return [("eu", "h", now - timedelta(hours=age), [
        (now - timedelta(hours=age, seconds=-i), measured("groq", "m", 10 + age + i, 100 + 2 * age + i))
        for i in range(3)]) for age in (80, 50, 20, 1)]


def test_window_ending_now_and_ending_at_until_on_every_backend(open_backend):
    from benchmarking.report.selection import parse_duration, window_selection

    now = datetime.now(timezone.utc).replace(microsecond=0)
    runs = window_runs(now)
    with open_backend() as storage:
        storage.prepare()
        write(storage, runs)
        recent = select(storage, window_selection(Selection(), parse_duration("72h", "--window")))
        earlier = select(storage, window_selection(Selection(until=now - timedelta(hours=30)),
                                                   parse_duration("3d", "--window")))
    for rows, ages in ((recent, (50, 20, 1)), (earlier, (80, 50))):
        written = [m for _, _, started, results in runs for _, m in results
                   if round((now - started).total_seconds() / 3600) in ages]
        (summary,) = summarise(rows)
        assert summary.requests == len(written)
        assert summary.latency_ms[50] == pytest.approx(median(m.latency_ms for m in written))
        assert summary.ttft_ms[50] == pytest.approx(median(m.ttft_ms for m in written))


def test_window_on_the_command_line_and_its_bad_forms(tmp_path, monkeypatch, capsys):
    import os

    from benchmarking.storage.sqlite import SQLiteStorage

    for name in list(os.environ):
        if any(part in name for part in ("DATABASE_URL", "SUPABASE_", "BENCHMARK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    now = datetime.now(timezone.utc)
    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        write(storage, window_runs(now))
    assert main(["report", "--window", "72h", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"] == 9 and payload["window_hours"] == 72
    assert "the 72 h window to" in payload["selection"]
    assert main(["report", "--window", "30m"]) == 0  # nothing in the last half hour
    assert "no results match: the 30 min window to" in capsys.readouterr().out
    assert main(["report", "--window", "72h", "--plot", "chart.png"]) == 0
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    for bad in (["--window", "soon"], ["--window", "0h"], ["--window", "2h", "--since", "1d"],
                ["--window", "2h", "--compare", "4h..2h", "2h.."]):
        assert main(["report", *bad]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("main.py: error: ") for line in err)
    assert "--window and --since" in err[2]


def test_correct_answer_share_per_group_where_answers_were_judged(open_backend):
    rng = random.Random(11)
    judged = {("p1", "groq"): [rng.random() < 0.8 for _ in range(7)], ("p1", "openai"): [True, False, False],
              ("p2", "groq"): [None] * 4}  # p2 had no `expect`
    written = [(prompt, provider, okay) for (prompt, provider), oks in judged.items() for okay in oks]
    results = [(DAY + timedelta(seconds=i), measured(provider, "m", 10, 100 + i, prompt_id=prompt, answer_ok=okay))
               for i, (prompt, provider, okay) in enumerate(written)]
    with open_backend() as storage:
        storage.prepare()
        write(storage, [("eu", "h", DAY, results)])
        summaries = summarise(select(storage, Selection()), "prompt")
    got = {(s.group[1], s.provider): (s.answers_judged, s.correct_rate) for s in summaries}
    for key, oks in judged.items():
        seen = [o for o in oks if o is not None]
        assert got[key] == (len(seen), pytest.approx(sum(seen) / len(seen)) if seen else None)
    table = format_table(summaries, "t").splitlines()
    assert table[1].split()[-1] == "%" and "correct %" in table[1]
    p2 = next(line for line in table if line.startswith("p2"))
    assert "correct" not in p2 and p2.split()[-1] == "-"  # nothing judged: empty, not 0


def compare_runs(slower_by):
    """A: tier 100 and tier 10,000 rows; B: the same tier-100 TTFTs, tier-10,000 TTFTs `slower_by` ms later."""
    rng = random.Random(2)
    sides = []
    for side, (start, extra) in enumerate(((DAY, 0), (DAY + timedelta(days=1), slower_by))):
        results = []
        for i in range(12):
            tier = 100 if i % 3 else 10_000  # a third of the rows at 10k on each side
            ttft = rng.uniform(40, 60) if tier == 100 else rng.uniform(480, 520) + extra
            results.append((start + timedelta(hours=i % 2 * 6, seconds=i),
                            measured("groq", "m", ttft, ttft + 100, input_tier=tier)))
        sides.append(("eu", "h", start, results))
    return sides


def test_compare_keeps_each_load_level_apart(open_backend):
    """A: requests one at a time; B: a load run at 1 and at 8 in flight, the 8 much slower. Their medians were
    pooled into one per provider (with --by concurrency too): a level's queueing read as the provider's change."""
    from benchmarking.report.compare import compare

    rng = random.Random(4)
    one_at_a_time = [(DAY + timedelta(seconds=i), measured("groq", "m", rng.uniform(40, 60), 150)) for i in range(8)]
    load = [(DAY + timedelta(days=1, seconds=i),
             measured("groq", "m", rng.uniform(40, 60) + (500 if level == 8 else 0), 700, concurrency=level))
            for i, level in enumerate([1] * 8 + [8] * 8)]
    with open_backend() as storage:
        storage.prepare()
        write(storage, [("eu", "h", DAY, one_at_a_time), ("eu", "h", DAY + timedelta(days=1), load)])
        before = select(storage, Selection(until=DAY + timedelta(hours=20)))
        after = select(storage, Selection(since=DAY + timedelta(hours=20)))
        both = select(storage, Selection())
    assert [(c.within, c.requests) for c in compare(both, after)] == [("in flight 1", (8, 8)), ("in flight 8", (8, 8))]
    assert compare(before, after) == []  # nothing sent one at a time in B, no level in A: nothing alike to compare
    assert [c.within for c in compare(both, both, "region")] == ["region eu, in flight 1", "region eu, in flight 8",
                                                                  "region eu, one at a time"]


def test_compare_within_each_input_tier_and_within_each_group(open_backend):
    from benchmarking.report.compare import compare, format_comparison

    runs = compare_runs(slower_by=300)
    with open_backend() as storage:
        storage.prepare()
        write(storage, runs)
        before = select(storage, Selection(until=DAY + timedelta(hours=20)))
        after = select(storage, Selection(since=DAY + timedelta(hours=20)))
    comparisons = compare(before, after)
    assert [(c.within, c.requests) for c in comparisons] == [("input tier 100", (8, 8)),
                                                             ("input tier 10,000", (4, 4))]
    for c, tier in zip(comparisons, (100, 10_000)):
        medians = [median(m.ttft_ms for _, m in run[3] if m.input_tier == tier) for run in runs]
        assert (c.changes[0].before, c.changes[0].after) == pytest.approx(medians)
    assert [c.changes[0].verdict for c in comparisons] == ["same", "up"]
    text = format_comparison(comparisons, "a", "b")
    assert "groq / m, input tier 10,000 (4 -> 4 requests)" in text and "SLOWER" in text

    by_hour = compare(before, after, "hour")
    assert [c.within for c in by_hour] == ["hour UTC 00:00, input tier 100", "hour UTC 00:00, input tier 10,000",
                                           "hour UTC 06:00, input tier 100", "hour UTC 06:00, input tier 10,000"]
    assert sum(c.requests[0] for c in by_hour) == len(before)
    assert [c.within for c in compare(before, after, "tier")] == ["input tier 100", "input tier 10,000"]


def same_summaries(gathered, read):
    """Equal figure for figure, floats bit for bit: both paths start from the stored values themselves."""
    assert [(s.group and s.group[1], s.provider, s.model) for s in gathered] == \
        [(s.group and s.group[1], s.provider, s.model) for s in read]
    for a, b in zip(gathered, read):
        for name, value in a.__dict__.items():
            assert value == getattr(b, name), name


def odd_results():
    """What a summary must read the same either way: an empty error type and an empty 'served by', costs with
    17 significant digits, the same cost many times, output tokens 0 and unknown."""
    cost = Decimal("0.000012345678901234567")  # stored as a float: its shortest repr has 17 digits
    return [
        measured("groq", "openai/gpt-oss-20b", 51.123456789012345, 150.98765432109876, cost_usd=cost),
        measured("groq", "openai/gpt-oss-20b", 52.5, 151.25, cost_usd=cost, output_tokens=0),
        measured("groq", "openai/gpt-oss-20b", 53.5, 152.25, cost_usd=Decimal("0.1") + Decimal("0.2"),
                 output_tokens=None, upstream_provider=""),
        Measurement(provider="groq", model="openai/gpt-oss-20b", success=False, started_at=DAY, stream=True,
                    error_type=""),
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_figures_the_database_gathers_equal_those_read_from_the_rows(backend, tmp_path, request):
    from benchmarking.report.views import summarise_stored
    from benchmarking.storage.postgres import PostgresStorage
    from benchmarking.storage.sqlite import SQLiteStorage

    runs = history(seed=8)
    storage = SQLiteStorage(tmp_path / "b.db") if backend == "sqlite" else PostgresStorage(
        request.getfixturevalue("pg_url"), timeout_s=5)
    with storage:
        storage.prepare()
        write(storage, runs)
        write(storage, [("eu-west", "probe-eu", DAY + timedelta(days=4), [
            (DAY + timedelta(days=4, seconds=i), m) for i, m in enumerate(odd_results())])])
        simulated = run_info(started_at=DAY + timedelta(days=5), mode="simulated")
        storage.create_run(simulated)
        storage.save_result(simulated.id, uuid4(), DAY + timedelta(days=5),
                            measured("groq", "openai/gpt-oss-20b", 1, 2))
        some_runs = frozenset(run.info.id for run in storage.read_runs()[3:9])
        selections = [Selection(), Selection(include_simulated=True), Selection(last=True),
                      Selection(last=True, include_simulated=True), Selection(run_ids=some_runs),
                      Selection(run_ids=some_runs, last=True), Selection(since=DAY + timedelta(days=1, hours=5)),
                      Selection(until=DAY + timedelta(days=1), providers=frozenset({"groq"})),
                      Selection(models=frozenset({"openai/gpt-4o-mini"})), Selection(run_ids=frozenset({uuid4()}))]
        for selection in selections:
            rows = select(storage, selection)
            for by in ("provider", *VALUE_OF):
                summaries, span = summarise_stored(storage, selection, by)
                same_summaries(summaries, summarise(rows, by))
                assert (span.results, span.runs, span.first, span.last) == (
                    (len(rows), len({r.run.info.id for r in rows}), rows[0].result.created_at,
                     rows[-1].result.created_at) if rows else (None,) * 4) if span else not rows


def test_supabase_reads_the_rows_and_gives_the_same_figures(open_backend):
    from benchmarking.report.views import summarise_stored

    with open_backend() as storage:
        storage.prepare()
        write(storage, history(seed=9))
        gathered = summarise_stored(storage, Selection(), "hour")
        rows = select(storage, Selection())
        if storage.backend == "supabase":
            assert gathered is None  # PostgREST cannot group: the report reads the rows
        else:
            same_summaries(gathered[0], summarise(rows, "hour"))


def test_hour_of_day_panels_draw_each_providers_median_by_hour_and_only_when_hours_differ():
    import struct

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarking.report.charts import _figure, extra_panels, hour_of_day_panels
    from benchmarking.storage.sqlite import SQLiteStorage

    runs = history(seed=4)
    with SQLiteStorage(":memory:") as storage:
        write(storage, runs)
        rows = select(storage, Selection())
    panels = hour_of_day_panels(rows)
    assert [panel.title for panel in panels] == ["Median TTFT by hour of day (UTC)",
                                                 "Median latency by hour of day (UTC)"]
    figure, axes = plt.subplots(1, 2)
    for panel, ax in zip(panels, axes):
        panel.draw(ax)
    want = expected(runs, VALUE_OF["hour"])
    for ax, index in zip(axes, (1, 2)):
        drawn = {(line.get_label(), hour): value for line in ax.lines
                 for hour, value in zip(line.get_xdata(), line.get_ydata())}
        assert drawn == pytest.approx({(f"{p} / {m}", hour): figures[index]
                                       for (hour, p, m), figures in want.items()})
    plt.close(figure)

    def height(png):  # from the PNG's IHDR chunk
        return struct.unpack(">I", png[20:24])[0]

    one_hour = [row for row in rows if row.result.created_at.hour == 9]
    assert hour_of_day_panels(one_hour) == []
    # a third row of panels, only with hours
    with_hours = _figure(rows, "t", extra_panels(rows))
    assert height(with_hours) > height(_figure(one_hour, "t", extra_panels(one_hour)))


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty directory of our own to run main() in, with no database or notify variable from outside."""
    import os

    for name in list(os.environ):
        if any(part in name for part in ("DATABASE_URL", "SUPABASE_", "BENCHMARK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


WINDOWS_TAKEN = ["72h", "30m", "7d", "2w", "90s", "1h30m", "0.5h", "3600", "365d"]
WINDOWS_REFUSED = ["", "soon", "0h", "-1h", "1y", "366d", "53w", "9" * 40 + "h", "1h 30m"]


@pytest.mark.parametrize("window", WINDOWS_TAKEN + WINDOWS_REFUSED)
def test_report_window_and_alerts_window_take_the_same_lengths_with_the_same_limits(here, capsys, window):
    """report --window took 2w but not 90s or 1h30m, with no upper limit; [alerts] window took 90s and 1h30m but
    not 2w, and at most 365d: the same length of time was good in one place and refused in the other."""
    assert main(["report", f"--window={window}", "--format", "json"]) == (0 if window in WINDOWS_TAKEN else 2)
    report = capsys.readouterr()
    (here / "benchmark.toml").write_text(f'[alerts]\nwindow = "{window}"\n')
    assert main(["watch"]) == (0 if window in WINDOWS_TAKEN else 2)
    watch = capsys.readouterr()
    if window in WINDOWS_REFUSED:
        report_says = report.err.strip().removeprefix("main.py: error: --window")
        watch_says = watch.err.strip().removeprefix("main.py: error: benchmark.toml [alerts]: window")
        assert report_says == watch_says and len(report.err.splitlines()) == 1, (report.err, watch.err)


@pytest.mark.parametrize("args, message", [
    (["--compare", "4h..8h", "2h.."], "--compare 4h..8h ends before it starts: give the earlier time first, like "
                                      "8h..4h"),
    (["--compare", "8h..4h", "2026-11-08..2026-11-01"], "--compare 2026-11-08..2026-11-01 ends before it starts"),
    (["--compare", "8h..4h", "4h..4h"], "--compare 4h..4h ends before it starts"),
    (["--compare", "8h..4h", "2999-01-01.."], "--compare 2999-01-01.. ends before it starts"),
    (["--since", "1d", "--until", "2d"], "--since 1d is not before --until 2d: give the earlier time to --since"),
    (["--since", "1d", "--until", "24h"], "--since 1d is not before --until 24h"),
])
def test_a_reversed_window_is_refused_not_reported_as_empty(here, capsys, args, message):
    """A window whose end comes before its start selects nothing: it was read and said only 'no results match ...:
    nothing to compare', exit 0, as if the provider had not run."""
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (here / "benchmarks.db").exists()  # refused before anything was opened
