"""report --by turn: per turn of the stored conversations, and what the prompt cache saved from turn 2 on, from rows
stored on every backend, the expected figures worked out by hand here."""

from __future__ import annotations

import csv
from datetime import timedelta
from decimal import Decimal
import io
import json

import pytest

from benchmarking.cli import main
from benchmarking.report.selection import Selection, select
from benchmarking.report.turns import by_turn, cache_savings

import test_report
from test_report_views import DAY, measured, write

report_here = test_report.report_here  # a fixture: report runs in tmp_path with a clean environment

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
PRICED = dict(price_input_per_mtok=Decimal("3"), price_cached_input_per_mtok=Decimal("0.3"),
              price_cache_write_per_mtok=Decimal("3.75"))


def talk(provider, model, prompt, session, turn, ttft, input_tokens, cached, cost, **changes):
    return measured(provider, model, ttft, ttft + 200, prompt_id=prompt, session_id=session, turn=turn,
                    input_tokens=input_tokens, cached_tokens=cached, cost_usd=Decimal(cost), **changes)


def conversations(start=DAY):
    """anth/m1: one prompt's conversation twice, the second round's turn 2 missing the cache (a matched pair), with
    stored prices; oai/m2: every later turn read the cache, no cached price stored; one row with no turn, one failed
    turn."""
    rows = [
        talk("anth", "m1", "c1", "s1", 1, 500, 1000, 0, "0.004", cache_write_tokens=1000, **PRICED),
        talk("anth", "m1", "c1", "s1", 2, 300, 2000, 1000, "0.003", cache_write_tokens=1000, **PRICED),
        talk("anth", "m1", "c1", "s1", 3, 350, 3000, 2000, "0.005", cache_write_tokens=1000, **PRICED),
        talk("anth", "m1", "c1", "s2", 1, 520, 1000, 0, "0.004", **PRICED),
        talk("anth", "m1", "c1", "s2", 2, 600, 2000, 0, "0.008", **PRICED),
        talk("oai", "m2", "c1", "s3", 1, 100, 100, 0, "0.0001", price_input_per_mtok=Decimal("1")),
        talk("oai", "m2", "c1", "s3", 2, 110, 250, 100, "0.0002", price_input_per_mtok=Decimal("1")),
        talk("oai", "m2", "c2", "s4", 1, 120, 100, 0, "0.0001", price_input_per_mtok=Decimal("1")),
        talk("oai", "m2", "c2", "s4", 2, 130, 250, 150, "0.0002", price_input_per_mtok=Decimal("1")),
        measured("oai", "m2", 999, 1999),  # a single request: no turn
    ]
    failed = measured("oai", "m2", 100, 200, success=False, error_type="timeout", prompt_id="c2", session_id="s5",
                      turn=2, cost_usd=None, ttft_ms=None, latency_ms=None, tokens_per_second=None)
    rows.append(failed)
    return [("eu", "h", start, [(start + timedelta(seconds=i), m) for i, m in enumerate(rows)])]


def test_each_turn_and_what_the_cache_saved_on_every_backend(open_backend):
    with open_backend() as storage:
        storage.prepare()
        write(storage, conversations())
        rows = select(storage, Selection())
    figures = {(f.provider, f.turn): f for f in by_turn(rows)}
    assert sorted(figures) == [("anth", 1), ("anth", 2), ("anth", 3), ("oai", 1), ("oai", 2)]
    anth2 = figures[("anth", 2)]
    assert (anth2.requests, anth2.sessions, anth2.input_tokens_p50) == (2, 2, 2000)
    assert anth2.ttft_ms[50] == pytest.approx(450) and anth2.ttft_ms[90] == pytest.approx(570)
    assert anth2.cached_share == pytest.approx(1000 / 4000)
    assert anth2.cost_mean_usd == Decimal("0.0055")
    assert anth2.ttft_p50_change_ms == pytest.approx(450 - 510)
    assert anth2.cost_mean_change == pytest.approx(0.0055 / 0.004 - 1)
    oai2 = figures[("oai", 2)]
    assert (oai2.requests, oai2.successes, oai2.sessions) == (3, 2, 3)  # the failed turn counts as a request only
    assert oai2.cached_share == pytest.approx(250 / 500)

    anth, oai = cache_savings(rows)
    # turns >= 2: full = (2000 + 2000 + 3000) x 3 $/M; saved = cached x 2.7 - writes x 0.75 (the write dearer)
    assert anth.input_cost_full_usd == Decimal("0.021")
    assert anth.input_cost_saved_usd == Decimal("0.0066")  # (1000 + 2000) x 2.7 - 2 x 1000 x 0.75, per million
    assert anth.ttft_saved_ms == pytest.approx(300) and anth.ttft_matches == 1  # c1 turn 2: 600 missed, 300 read
    assert "input cost saved 31.4 %" in anth.line and "answered 300.0 ms sooner" in anth.line
    assert oai.input_cost_full_usd is None and "not priced" in oai.line  # cached tokens read, no cached price stored
    assert oai.ttft_saved_ms is None and oai.ttft_matches == 0
    assert oai.input_growth == pytest.approx(2.5) and oai.cached_share == pytest.approx(0.5)
    assert ("measured instead: 50.0 % of the input read from the cache, TTFT p50 120.0 ms from turn 2 on against "
            "110.0 ms at turn 1 while the input grew 2.5 times") in oai.line


@pytest.fixture
def turns_dir(report_here):
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        write(storage, conversations())
    return report_here


def test_report_by_turn_in_every_format(turns_dir, capsys):
    assert main(["report", "--by", "turn", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"] == 10 and payload["left_out_without_turn"] == 1
    assert [(t["provider"], t["turn"]) for t in payload["turns"]] == [
        ("anth", 1), ("anth", 2), ("anth", 3), ("oai", 1), ("oai", 2)]
    assert payload["turns"][1]["cost_mean_usd"] == "0.0055" and payload["turns"][1]["ttft_p50_change_ms"] == -60.0
    assert payload["cache_from_turn_2"][0]["input_cost_saved_share"] == 0.3143
    assert payload["cache_from_turn_2"][1]["input_cost_saved_usd"] is None

    assert main(["report", "--by", "turn", "--format", "csv"]) == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["turn"] for r in records] == ["1", "2", "3", "1", "2"] and records[4]["cached_input_share"] == "0.5"

    assert main(["report", "--by", "turn"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "cached %" in table[1] and "vs turn 1 TTFT / $" in table[1]
    anth2 = next(line for line in table if line.split()[:3] == ["anth", "m1", "2"])
    assert anth2.split()[-5:] == ["-60.0", "ms", "/", "+38", "%"] and " 25 " in anth2
    assert any(line.startswith("anth / m1 from turn 2 on: input cost saved 31.4 %") for line in table)


def test_rows_without_a_turn_say_so_in_one_line_and_machines_still_read(report_here, capsys):
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        write(storage, [("eu", "h", DAY, [(DAY, measured("a", "m", 10, 100))])])
    assert main(["report", "--by", "turn"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no conversation rows match") and len(out.splitlines()) == 1
    assert main(["report", "--by", "turn", "--format", "json"]) == 0
    done = capsys.readouterr()
    assert json.loads(done.out)["turns"] == [] and "no conversation rows" in done.err
    assert main(["report", "--by", "turn", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("provider,model,turn,requests")


def agent_prompts():
    """A prompt with tools (one request not judged: no expect_tool), one with a schema, a conversation of three
    sessions (one with a turn that has no latency), and a plain prompt."""
    calls = '[{"name": "get_weather", "arguments": "{}"}]'
    rows = [measured("a", "m", 50, 400, prompt_id="tools", tool_calls=calls, tool_ok=ok, answer_ok=ok,
                     tool_args_ms=args) for ok, args in ((True, 100.0), (True, 200.0), (False, 300.0), (None, None))]
    # a follow-up after the tool's result: judged (its arguments parse), but no choice of tool to judge
    rows.append(measured("a", "m", 50, 400, prompt_id="tools", tool_calls="[]", answer_ok=False, turn=2))
    rows += [measured("a", "m", 50, 400, prompt_id="schema", json_valid=valid, answer_ok=valid)
             for valid in (True, False, True, True)]
    # a session end to end: from its first start to its last end (s1: 0 s + 0.3 s, then 1 s + 0.4 s: 1,400 ms;
    # s2: 2,600 ms, its think time included)
    rows += [measured("a", "m", 50, latency, prompt_id="conv", session_id=session, turn=turn,
                      started_at=DAY + timedelta(seconds=start))
             for session, turn, start, latency in (("s1", 1, 0, 300), ("s1", 2, 1, 400), ("s2", 1, 0, 500),
                                                   ("s2", 2, 2, 600), ("s3", 1, 0, 450))]
    rows.append(measured("a", "m", 50, 400, prompt_id="conv", session_id="s3", turn=2, success=False,
                         latency_ms=None, ttft_ms=None, tokens_per_second=None, error_type="timeout"))
    rows.append(measured("a", "m", 50, 400, prompt_id="plain"))
    return [("eu", "h", DAY, [(DAY + timedelta(seconds=i), m) for i, m in enumerate(rows)])]


def test_per_prompt_tool_choice_tool_arguments_schema_and_conversation_time_on_every_backend(open_backend):
    from benchmarking.report.views import summarise, with_agent

    with open_backend() as storage:
        storage.prepare()
        write(storage, agent_prompts())
        rows = select(storage, Selection())
    agent = {s.group[1]: s.agent for s in with_agent(summarise(rows, "prompt"), rows, "prompt")}
    tools, schema, conv, plain = agent["tools"], agent["schema"], agent["conv"], agent["plain"]
    assert (tools.tool_judged, tools.tool_correct_rate) == (3, pytest.approx(2 / 3))
    assert tools.tool_args_ms == pytest.approx({50: 200.0, 90: 280.0})
    assert (schema.schema_judged, schema.schema_valid_rate, schema.tool_judged) == (4, 0.75, 0)
    assert (conv.conversations, conv.conversation_ms_p50) == (2, pytest.approx(2000))  # s3 has a turn with no time
    assert (plain.tool_correct_rate, plain.schema_valid_rate, plain.conversation_ms_p50) == (None, None, None)


def test_report_by_prompt_shows_the_agent_columns_and_carries_them_in_json_and_csv(report_here, capsys):
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        write(storage, agent_prompts())
    assert main(["report", "--by", "prompt"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "tool ok %" in table[1] and "conversation ms p50" in table[1]
    tools = next(line for line in table if line.startswith("tools"))
    assert tools.split()[-6:] == ["67", "200.0", "/", "280.0", "-", "-"]
    conv = next(line for line in table if line.startswith("conv"))
    assert conv.split()[-6:] == ["-", "-", "/", "-", "-", "2000.0"]
    assert any(line.startswith("tool ok %: expect_tool met") for line in table)
    assert main(["report", "--by", "prompt", "--format", "json"]) == 0
    by_prompt = {p["prompt"]: p for p in json.loads(capsys.readouterr().out)["providers"]}
    assert by_prompt["schema"]["schema_valid_rate"] == 0.75 and by_prompt["tools"]["tool_args_p90_ms"] == 280.0
    assert by_prompt["conv"]["conversation_p50_ms"] == 2000.0
    assert main(["report", "--by", "prompt", "--format", "csv"]) == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["prompt"]: r["tool_choice_accuracy"] for r in records}["tools"] == "0.6667"


def test_the_plot_gains_a_ttft_by_turn_panel_where_conversations_are_stored(turns_dir, capsys):
    from benchmarking.report.charts import extra_panels, turn_panel
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(turns_dir / "benchmarks.db") as storage:
        rows = select(storage, Selection())
    titles = [panel.title for panel in extra_panels(rows)]
    assert "Time to first token by turn of the conversations (report --by turn)" in titles
    assert turn_panel([row for row in rows if row.result.measurement.turn is None]) is None
    assert main(["report", "--plot", "turns.html"]) == 0
    page = (turns_dir / "turns.html").read_text()
    assert "Time to first token by turn of the conversations" in page and "data:image/png;base64," in page


def test_the_site_holds_the_conversations_by_turn_as_report_gives_them(report_here, capsys):
    from datetime import datetime, timezone

    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        write(storage, conversations(datetime.now(timezone.utc) - timedelta(hours=1)))
    assert main(["report", "--site", "site"]) == 0
    capsys.readouterr()
    data = json.loads((report_here / "site" / "data.json").read_text())["conversations"]
    assert main(["report", "--by", "turn", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [{k: v for k, v in t.items() if k != "key"} for t in data["turns"]] == report["turns"]
    assert data["cache_from_turn_2"] == report["cache_from_turn_2"]
    script = (report_here / "site" / "assets" / "load.js").read_text()
    turns = script[script.index("function drawTurns"):script.index("site.drawPrefill")]
    assert "innerHTML" not in turns and 'el("td", shown(cell))' in turns  # values inserted as text
    assert 'id="turns"' in (report_here / "site" / "load.html").read_text()
