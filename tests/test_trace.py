"""--trace: a trace replayed open-loop against a local server's own log, Mooncake's hash_ids as shared prefixes, every
refusal in one line, and report --by rate's goodput and chart from the rows stored."""

from __future__ import annotations

from datetime import datetime, timedelta
import json
import os

import pytest

from benchmarking.cli import main
from benchmarking.figures import percentile
from benchmarking.load import trace as trace_module
from benchmarking.load.trace import TraceRequest, read_trace, trace_prompt
from benchmarking.report.charts import rate_latency_points
from benchmarking.report.rate import by_rate
from benchmarking.simulator import ModelProfile, Simulator
from benchmarking.workloads import TRACE_BLOCK_TOKENS, block_text

from test_load import QUICK, endpoint, rows, run

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "trace.jsonl")
TIMES_MS = [0, 100, 150, 400, 420, 700, 1000, 1010, 1300, 1600]


def write_trace(path, lines) -> str:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def shared_trace(path) -> str:
    """Ten requests sharing three leading blocks (1,536 tokens), each with a block of its own after them."""
    return write_trace(path, [{"timestamp": 5000 + t, "input_length": 4 * TRACE_BLOCK_TOKENS - 100, "output_length": 5,
                               "hash_ids": [1, 2, 3, 100 + i]} for i, t in enumerate(TIMES_MS)])


def request(ids, length, line=1) -> TraceRequest:
    from array import array

    return TraceRequest(line, 0.0, length, 8, array("q", ids), None)


# ---- prompts ------------------------------------------------------------------------------------------------------

def test_equal_leading_hash_ids_share_exactly_their_blocks_and_no_more():
    a, b = trace_prompt(request([7, 8, 9, 10], 2000)).text, trace_prompt(request([7, 8, 11], 1500, 2)).text
    shared = os.path.commonprefix([a, b])
    # exactly the two equal leading blocks: the next ones part at their keys (a block is led by "Part <key>.")
    assert shared == block_text("7") + block_text("8") + "Part "
    assert a.startswith(shared + "9.") and b.startswith(shared + "11.")
    other = trace_prompt(request([99, 8, 9], 1500, 3)).text  # the same later ids behind another first one share nothing
    assert os.path.commonprefix([a, other]) == "Part "
    # about input_length tokens: the synthetic document's words and periods, as the tiers count them
    assert len(a.split()) * 1.093 == pytest.approx(2000, rel=0.03)
    assert len(b.split()) * 1.093 == pytest.approx(1500, rel=0.03)


def test_tokens_past_the_hash_ids_come_from_a_block_of_the_request_s_own_and_lengths_alone_build_a_tier_prompt():
    long = trace_prompt(request([5], 1500, line=4)).text
    assert long.startswith(block_text("5") + "Part line4-1.")
    alone = trace_prompt(TraceRequest(3, 0.0, 1000, 40, None, None))
    assert alone.prompt_id == "trace-3" and alone.max_tokens == 40 and alone.text.startswith("Read the document")


def test_a_block_is_built_once_however_many_long_prompts_use_it():
    trace_module._block.cache_clear()
    ids = list(range(195))  # 100k tokens: 196 blocks, the last the request's own tail
    prompts = [trace_prompt(request(ids, 100_000, line=n)) for n in range(1, 21)]
    info = trace_module._block.cache_info()
    assert info.misses == 195 + 20 and info.hits == 19 * 195  # each shared block built once
    assert all(len(p.text.split()) * 1.093 == pytest.approx(100_000, rel=0.02) for p in prompts)
    assert info.currsize <= trace_module.BLOCK_CACHE


def test_the_example_trace_is_mooncake_shaped_and_read_whole():
    trace = read_trace(EXAMPLE)
    assert 20 <= len(trace.requests) <= 50 and trace.requests[0].offset_ms == 0
    lines = [json.loads(line) for line in open(EXAMPLE)]
    assert all(set(line) == {"timestamp", "input_length", "output_length", "hash_ids"} for line in lines)
    assert trace.mean_rate == pytest.approx((len(lines) - 1) / ((lines[-1]["timestamp"] - lines[0]["timestamp"]) / 1000))
    assert read_trace(EXAMPLE, 2.0).mean_rate == pytest.approx(trace.mean_rate / 2)


# ---- refusals -----------------------------------------------------------------------------------------------------

LINE = {"timestamp": 0, "input_length": 100, "output_length": 10}


def later(**changes):
    return {**LINE, "timestamp": 500, **changes}


@pytest.mark.parametrize("lines, message", [
    ([LINE, later(timestamp=1e300)], "timestamp must be milliseconds from 0 to 1e+13"),
    ([LINE, later(timestamp=-5)], "timestamp must be milliseconds from 0"),
    ([LINE, later(timestamp=float("nan"))], "not valid JSON"),  # json.dumps writes NaN, json.loads refuses... or not
    ([later(), LINE], "line 2: timestamp 0 is before the line above's 500: a trace is in time order"),
    ([LINE, later(input_length=0)], "input_length must be a whole number from 1 to 200,000, not 0"),
    ([LINE, later(input_length=10**9)], "input_length must be a whole number from 1 to 200,000"),
    ([LINE, later(output_length=0)], "output_length must be a whole number from 1 to 200,000, not 0"),
    ([LINE, later(output_length=10**9)], "output_length must be a whole number from 1"),
    ([LINE, later(input_length=True)], "input_length must be a whole number"),
    ([LINE, later(hash_ids=list(range(10**6)))], "1,000,000 hash_ids are more blocks of 512 tokens than input_length"),
    ([LINE, later(hash_ids=[-1])], "hash_ids must be a list of whole numbers from 0"),
    ([LINE, later(hash_ids="1,2")], "hash_ids must be a list"),
    ([LINE, later(session="x")], "unknown key 'session'"),
    ([LINE, {"timestamp": 9, "messages": [{"role": "user", "content": "hi"}], "input_length": 5}], "not both"),
    ([LINE, {"timestamp": 9, "messages": [{"role": "robot", "content": "hi"}]}], "messages must be a list"),
    ([LINE, {"timestamp": 9}], "give input_length and output_length (tokens), or messages"),
    ([LINE, [1]], "each line must be a JSON object"),
    ([LINE], "needs at least two requests at different times"),
    ([LINE, {**LINE}], "needs at least two requests at different times"),
    ([LINE, later(timestamp=9e12)], "spans 104166.7 days at --time-scale 1"),
    # found by hostile testing: a span that rounds to 0 s divided by zero; one a few ulps long stored 1e303 requests/s
    ([{**LINE, "timestamp": 0}, later(timestamp=5e-324)], "more than 10000 requests/s on average"),
    ([{**LINE, "timestamp": 0}, later(timestamp=1e-300)], "more than 10000 requests/s on average"),
    ([LINE, {**later(), "timestamp": 600, "timestamp ": 1}], "unknown key"),
])
def test_a_bad_trace_is_one_line_exit_2_and_nothing_sent(tmp_path, monkeypatch, capsys, lines, message):
    if message == "unknown key":  # a key twice in one object: JSON leaves it open, the last one won silently
        (tmp_path / "t.jsonl").write_text(json.dumps(LINE) + '\n{"timestamp": 600, "timestamp": 1, '
                                          '"input_length": 5, "output_length": 5}\n')
        path = str(tmp_path / "t.jsonl")
        message = "line 2: the key 'timestamp' appears twice in one object"
    elif message == "not valid JSON":
        (tmp_path / "t.jsonl").write_text(json.dumps(LINE) + '\n{"timestamp": NaN, "input_length": 1}\n')
        path = str(tmp_path / "t.jsonl")
        message = "timestamp must be milliseconds"  # Python's json reads NaN: refused as a timestamp all the same
    else:
        path = write_trace(tmp_path / "t.jsonl", lines)
    refused(tmp_path, monkeypatch, capsys, ["--trace", path], message)


@pytest.mark.parametrize("content, flags, message", [
    (b'{}\n' * 10_000_000, [], "holds more than 100,000 requests: split the trace"),
    (b'{"timestamp": 0, "input_length": 5, "output_length": 5}\n\xff\n', [], "is not UTF-8 text (line 2)"),
    (None, ["--time-scale", "0"], "--time-scale must be from 0.001 to 1000, not '0'"),
    (None, ["--time-scale", "nan"], "--time-scale must be from"),
    (None, ["--time-scale", "x"], "--time-scale takes a factor"),
    (None, ["--rate", "5"], "--trace sets its own requests, times and prompts: drop --rate"),
    (None, ["--concurrency", "4"], "drop --concurrency"),
    (None, ["--prompts", "p.jsonl"], "drop --prompts"),
    (None, ["--input-tokens", "100"], "drop --input-tokens"),
    (None, ["--requests", "3"], "drop --requests"),
    (None, ["--seed", "3"], "drop --seed"),
    (None, ["--engine", "ray"], "--trace runs on --engine local"),
    (None, ["--max-concurrency", "0"], "--max-concurrency must be at least 1"),
])
def test_bad_trace_flags_and_files_are_one_line_exit_2(tmp_path, monkeypatch, capsys, content, flags, message):
    path = tmp_path / "t.jsonl"
    if content is None:
        write_trace(path, [LINE, later()])
    else:
        path.write_bytes(content)
    refused(tmp_path, monkeypatch, capsys, ["--trace", str(path), *flags], message)


def test_time_scale_needs_a_trace(tmp_path, monkeypatch, capsys):
    refused(tmp_path, monkeypatch, capsys, ["--time-scale", "2"], "--time-scale stretches a trace: give --trace too")


def refused(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["--simulate", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "benchmarks.db").exists()


# ---- against the server's own log ---------------------------------------------------------------------------------

def test_a_trace_is_replayed_at_its_time_scaled_gaps_with_its_prefixes_cached_then_reported(tmp_path):
    path = shared_trace(tmp_path / "trace.jsonl")
    with Simulator(profiles={"m": ModelProfile(**QUICK)}, default=None) as sim:
        endpoint(tmp_path, sim)
        for scale in ("0.5", "2"):
            done = run(tmp_path, "--providers", "local", "--trace", path, "--time-scale", scale)
            assert done.returncode == 0, done.stderr
        received = {r.request_id: r.received_at for r in sim.log if r.model == "m"}
    stored = rows(tmp_path, "select request_id, scheduled_at, request_rate, start_lag_ms, concurrency, success, "
                            "cached_tokens, prompt_id, input_tier, started_at, latency_ms, ttft_ms "
                            "from benchmark_results order by scheduled_at")
    assert len(stored) == 20 and all(r["success"] and r["concurrency"] is None for r in stored)
    for scale, these in ((0.5, stored[:10]), (2.0, stored[10:])):
        assert [r["request_rate"] for r in these] == pytest.approx([9 / (1.6 * scale)] * 10)  # the mean rate
        scheduled = [datetime.fromisoformat(r["scheduled_at"]) for r in these]
        due = [(at - scheduled[0]).total_seconds() for at in scheduled]
        assert due == pytest.approx([t / 1000 * scale for t in TIMES_MS], abs=1e-5)
        arrived = [received[r["request_id"]] - received[these[0]["request_id"]] for r in these]
        # generous bounds a busy 2-core machine cannot fail: each arrival within 0.3 s of its scaled trace time
        assert max(abs(a - d) for a, d in zip(arrived, due)) < 0.3, (arrived, due)
        assert [r["prompt_id"] for r in these] == [f"trace-{n}" for n in range(1, 11)]
        assert {r["input_tier"] for r in these} == {4 * TRACE_BLOCK_TOKENS - 100}
    first = stored[:10]
    assert first[0]["cached_tokens"] == 0  # nothing seen before it
    assert all(r["cached_tokens"] >= 1024 for r in first[1:])  # the three shared blocks, from the cache
    (the_run, _) = rows(tmp_path, "select settings from runs order by started_at")
    load = json.loads(the_run["settings"])["load"]
    assert (load["arrivals"], load["trace"], load["time_scale"]) == ("trace", "trace.jsonl", 0.5)

    # goodput per rate, from the rows stored: judged from the scheduled start (TTFT and latency plus the start lag)
    waited = [r["ttft_ms"] + r["start_lag_ms"] for r in stored]
    target = percentile(waited, 50)
    (tmp_path / "slo.toml").write_text(f"[slo]\nttft_ms = {target}\n")
    report = run(tmp_path, "report", "--by", "rate", "--format", "json", "--config", "slo.toml")
    assert report.returncode == 0, report.stderr
    rates = json.loads(report.stdout)["rates"]
    assert [r["request_rate"] for r in rates] == pytest.approx([9 / 3.2, 9 / 0.8])
    for figures, these in zip(rates, (stored[10:], stored[:10])):
        met = sum(r["ttft_ms"] + r["start_lag_ms"] <= target for r in these)
        starts = [datetime.fromisoformat(r["started_at"]) for r in these]
        ends = [s + timedelta(milliseconds=r["latency_ms"]) for s, r in zip(starts, these)]
        wall = (max(ends) - min(starts)).total_seconds()
        assert figures["slo_met_rate"] == pytest.approx(met / 10, abs=1e-4)
        assert figures["goodput_per_s"] == pytest.approx(met / wall, rel=0.01)
    assert 0 < sum(round(f["slo_met_rate"] * 10) for f in rates) < 20  # the target splits the requests
    table = run(tmp_path, "report", "--by", "rate", "--config", "slo.toml").stdout
    assert "SLO met %" in table and "goodput/s" in table and "judged from the scheduled start" in table
    assert "goodput" not in run(tmp_path, "report", "--by", "rate").stdout  # no [slo]: no goodput

    # the latency-against-throughput chart gains the rate sweep: a point per rate
    for name in ("chart.html", "chart.png"):
        drawn = run(tmp_path, "report", "--plot", name)
        assert drawn.returncode == 0, drawn.stderr
    page = (tmp_path / "chart.html").read_text()
    assert "Latency against achieved requests/s per arrival rate" in page
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
    from benchmarking.report.selection import Selection, select
    from benchmarking.storage.sqlite import SQLiteStorage

    with SQLiteStorage(str(tmp_path / "benchmarks.db")) as storage:
        (series,) = rate_latency_points(by_rate(select(storage, Selection()))).values()
    assert [p.request_rate for p in series] == pytest.approx([9 / 3.2, 9 / 0.8])
    assert all(p.achieved_requests_per_s > 0 and p.latency_p99_ms >= p.latency_p50_ms for p in series)
