"""Inter-token latency: the gaps between a stream's output events, stored per request, measured through the real SDKs
against a loopback server that paces its events and logs when it sent each one (its own clock, perf_counter)."""

from __future__ import annotations

import json
import math
import random

import pytest

from benchmarking.figures import percentile
from benchmarking.providers.anthropic_provider import call_anthropic
from benchmarking.providers.gaps import Gaps
from benchmarking.providers.gemini_provider import call_gemini
from benchmarking.providers.openai_provider import call_openai

from conftest import settings_for
from test_wire_gemini import GEMINI_FIXTURES, gemini_server
from test_wire_messages import FIXTURES as MESSAGES_FIXTURES, output_parts
from test_wire_responses import FIXTURES as RESPONSES_FIXTURES
from test_wire_truth import USAGE, At, chunk
from wire_server import Reply, WireServer, sse_parts
import test_report

report_here = test_report.report_here  # a fixture: report runs in tmp_path with a clean environment

# Each gap's two ends are the kernel's receive stamps of parts the server wrote just after logging their times: a
# part the server was slow to write after logging moves both gaps around it. 15 ms either way, and the histogram's
# 1 %, are what no slow machine fails; the paced gaps below are 40 ms and more apart, so a wrong event would show.
SLACK_MS = 15.0


def near(stored: float | None, sent: float) -> bool:
    return stored is not None and abs(stored - sent) <= SLACK_MS + sent * 0.01


def sent_gaps_ms(sent_at: list[float], parts: list[int]) -> list[float]:
    """The server's gaps between the parts that carried output, by its own clock."""
    times = [sent_at[i] for i in parts]
    return [(b - a) * 1000 for a, b in zip(times, times[1:])]


def chat_reply(gaps_s: list[float]) -> Reply:
    """A role chunk, then one content chunk after each gap, then a finish chunk, usage and [DONE] right after."""
    events = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": f"w{i} "}) for i in range(len(gaps_s))]
    parts = [(0.01, b"data: " + json.dumps(e).encode() + b"\n\n") for e in events[:1]]
    parts += [(gap, b"data: " + json.dumps(e).encode() + b"\n\n") for gap, e in zip(gaps_s, events[1:])]
    tail = [chunk({}, "stop"), chunk(None, usage={**USAGE, "completion_tokens": len(gaps_s)})]
    parts.append((0.0, b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in tail) + b"data: [DONE]\n\n"))
    return Reply(parts)


def measure_chat(server: WireServer, **changes):
    return call_openai("hello", "m", settings_for(At(server.url, "/v1"), "openai", **changes))


def test_a_paced_stream_stores_the_servers_gaps_and_a_stall_in_the_middle_as_its_longest():
    gaps = [0.04] * 6 + [0.5] + [0.04] * 6  # 14 content events: 13 gaps, one of them a half-second stall
    with WireServer() as server:
        server.reply(chat_reply([0.02] + gaps))
        m = measure_chat(server)
        sent = server.served[0].part_sent_at
    assert m.success and m.output_events == 14
    expected = sorted(sent_gaps_ms(sent, list(range(1, 15))))
    assert near(m.itl_p50_ms, percentile(expected, 50, presorted=True))
    assert near(m.itl_p99_ms, percentile(expected, 99, presorted=True))
    assert near(m.itl_max_ms, expected[-1]) and m.itl_max_ms > 400  # the stall, not a 40 ms gap
    assert m.itl_p50_ms < 100  # the stall is one gap of thirteen: the median is a paced one


def test_events_read_from_the_socket_together_share_one_time_a_gap_of_0():
    # Three events in one write arrive in one read: two gaps of 0 between them, then a paced 80 ms one.
    events = [chunk({"content": w}) for w in ("a", "b", "c", "d")]
    together = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events[:3])
    parts = [(0.01, together), (0.08, b"data: " + json.dumps(events[3]).encode() + b"\n\n"),
             (0.0, b"data: " + json.dumps(chunk({}, "stop", usage=USAGE)).encode() + b"\n\ndata: [DONE]\n\n")]
    with WireServer() as server:
        server.reply(Reply(parts))
        m = measure_chat(server)
        sent = server.served[0].part_sent_at
    assert m.success and m.output_events == 4
    assert m.itl_p50_ms == 0.0  # gaps [0, 0, 80]: the median is a shared read's
    assert near(m.itl_max_ms, (sent[1] - sent[0]) * 1000)


def test_an_unstreamed_answer_has_no_gaps_and_one_output_event():
    body = {"id": "chatcmpl-z", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": USAGE}
    with WireServer() as server:
        server.reply(Reply([(0.005, json.dumps(body).encode())], headers={"content-type": "application/json"},
                           chunked=False))
        m = measure_chat(server, stream=False)
    assert m.success and m.output_events == 1
    assert (m.itl_p50_ms, m.itl_p99_ms, m.itl_max_ms) == (None, None, None)


def _gemini_output(part: bytes) -> bool:
    for line in part.decode().splitlines():
        if line.startswith("data: "):
            for candidate in json.loads(line[6:]).get("candidates") or ():
                for piece in (candidate.get("content") or {}).get("parts") or ():
                    if piece.get("text") or piece.get("functionCall"):
                        return True
    return False


def _responses_output(part: bytes) -> bool:
    for line in part.decode().splitlines():
        if line.startswith("data: "):
            payload = json.loads(line[6:])
            if payload.get("type", "").endswith(".delta") and payload.get("delta"):
                return True
    return False


def _measure_gemini(server: WireServer):
    gemini_server(server)
    return call_gemini("hello", "gemini-3.5-flash-lite", settings_for(At(server.url, ""), "gemini"))


def _measure_messages(server: WireServer):
    return call_anthropic("hello", "claude-haiku-4-5", settings_for(At(server.url, ""), "anthropic"))


def _measure_responses(server: WireServer):
    return call_openai("hello", "m", settings_for(At(server.url, "/v1"), "openai", api="responses"))


API_CASES = {
    # api: (recorded stream, measure, which parts carry output: read apart from the code under test)
    "generate_content": (GEMINI_FIXTURES / "thoughts.sse", _measure_gemini, _gemini_output),
    "messages": (MESSAGES_FIXTURES / "text.sse", _measure_messages,
                 lambda part: bool(output_parts([(0.0, part)])[0])),
    "responses": (RESPONSES_FIXTURES / "openai_cached_tokens.sse", _measure_responses, _responses_output),
}


@pytest.mark.parametrize("api", sorted(API_CASES))
def test_every_api_stores_the_gaps_between_its_output_events_as_the_server_sent_them(api):
    path, measure, carries_output = API_CASES[api]
    parts = sse_parts(path.read_bytes(), gap_s=0.04, first_s=0.01)
    output = [i for i, (_, part) in enumerate(parts) if carries_output(part)]
    assert len(output) >= 2, "the recording has too few output events to have a gap"
    stall = output[len(output) // 2]  # a stall before an output event in the middle
    parts[stall] = (0.4, parts[stall][1])
    with WireServer() as server:
        server.reply(Reply(parts))
        m = measure(server)
        sent = server.served[0].part_sent_at
    assert m.success, m.error_message
    assert m.output_events == len(output)
    expected = sorted(sent_gaps_ms(sent, output))
    assert near(m.itl_max_ms, expected[-1]) and m.itl_max_ms > 350
    assert near(m.itl_p50_ms, percentile(expected, 50, presorted=True))
    assert near(m.itl_p99_ms, percentile(expected, 99, presorted=True))


def test_large_chunks_show_as_many_tokens_per_event():
    # Gemini sends its answer in a few large chunks: thoughts.sse carries 1,256 output tokens in a handful of events.
    path, measure, carries_output = API_CASES["generate_content"]
    parts = sse_parts(path.read_bytes(), gap_s=0.04, first_s=0.01)
    with WireServer() as server:
        server.reply(Reply(parts))
        m = measure(server)
    events = sum(carries_output(part) for _, part in parts)
    assert m.output_events == events and m.output_tokens == 1256
    assert m.output_tokens / m.output_events > 50


def test_a_million_gaps_are_held_in_a_bounded_histogram_true_to_within_1_percent():
    rng = random.Random(7)
    gaps = Gaps()
    at, exact = 0.0, []
    for i in range(1_000_000):
        gap = 0.0 if i % 10 == 0 else rng.lognormvariate(math.log(0.02), 1.0)  # a tenth share a read
        at += gap
        exact.append(gap)
        gaps.arrived(at)
    exact.sort()
    assert gaps.count == 999_999  # the first event opens no gap
    assert len(gaps._counts) < 1300  # one counter per bucket touched, whatever the stream's length
    for q in (50, 90, 99, 99.9):
        true = percentile(exact[1:], q, presorted=True)
        assert gaps.percentile(q) == pytest.approx(true, rel=0.01, abs=1e-6), q
    assert gaps.figures()[2] == pytest.approx(exact[-1], rel=1e-9)  # the longest is exact


ITL_COLUMNS = ("itl_p50_ms", "itl_p99_ms", "itl_max_ms", "output_events")


def itl_rows():
    """A streamed row with its gaps, and an unstreamed one without."""
    from dataclasses import replace

    from test_storage_sqlite import full_measurement

    streamed = replace(full_measurement(), stream=True, itl_p50_ms=21.5, itl_p99_ms=84.25, itl_max_ms=1250.125,
                       output_events=40)
    plain = replace(full_measurement(), stream=False, itl_p50_ms=None, itl_p99_ms=None, itl_max_ms=None,
                    output_events=1)
    return streamed, plain


@pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
def test_every_backend_stores_the_itl_columns_and_the_report_reads_them(open_backend):
    from datetime import datetime, timezone
    from uuid import uuid4

    from benchmarking.storage.base import ResultFilters
    from test_storage_sqlite import run_info

    run, streamed, plain = run_info(), *itl_rows()
    ids = uuid4(), uuid4()
    with open_backend() as storage:
        storage.prepare()
        storage.create_run(run)
        for result_id, m, minute in zip(ids, (streamed, plain), (0, 1)):
            storage.save_result(run.id, result_id, datetime(2026, 12, 7, 19, minute, tzinfo=timezone.utc), m)
    with open_backend() as storage:
        stored = {r.id: r.measurement for r in storage.read_results(run.id)}
        reported = {r.id: r.measurement for r in storage.read_report_results(ResultFilters())}
    for got in (stored, reported):
        assert tuple(getattr(got[ids[0]], c) for c in ITL_COLUMNS) == (21.5, 84.25, 1250.125, 40)
        assert tuple(getattr(got[ids[1]], c) for c in ITL_COLUMNS) == (None, None, None, 1)
    assert stored[ids[0]] == streamed and stored[ids[1]] == plain


@pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
def test_prometheus_has_a_histogram_of_each_streamed_successs_median_gap_from_the_stored_rows(open_backend, tmp_path):
    from dataclasses import replace
    from datetime import datetime, timezone
    from uuid import uuid4

    from prometheus_client.parser import text_string_to_metric_families

    from benchmarking.watch.exposition import write_textfile
    from benchmarking.watch.metrics import history_metrics
    from test_storage_sqlite import full_measurement, run_info

    ok = full_measurement()
    rows = [replace(ok, itl_p50_ms=4.0), replace(ok, itl_p50_ms=25.0), replace(ok, itl_p50_ms=900.0),
            replace(ok, stream=False, itl_p50_ms=None, itl_p99_ms=None, itl_max_ms=None),
            replace(ok, success=False, error_type="incomplete", itl_p50_ms=30.0)]
    run = run_info(mode="live")
    with open_backend() as storage:
        storage.prepare()
        storage.create_run(run)
        for minute, m in enumerate(rows):
            storage.save_result(run.id, uuid4(), datetime(2026, 12, 7, 19, minute, tzinfo=timezone.utc), m)
        write_textfile(tmp_path / "b.prom", history_metrics(storage))
    got = {(s.name, s.labels.get("le")): s.value for family in text_string_to_metric_families(
        (tmp_path / "b.prom").read_text()) for s in family.samples if s.name.startswith("benchmark_engine_itl")}
    assert got["benchmark_engine_itl_p50_seconds_count", None] == 3  # successes with gaps: not the failure's
    assert got["benchmark_engine_itl_p50_seconds_sum", None] == pytest.approx(0.929)
    assert got["benchmark_engine_itl_p50_seconds_bucket", "0.005"] == 1
    assert got["benchmark_engine_itl_p50_seconds_bucket", "0.025"] == 2  # 25 ms on a bound counts in it
    assert got["benchmark_engine_itl_p50_seconds_bucket", "0.75"] == 2
    assert got["benchmark_engine_itl_p50_seconds_bucket", "1.0"] == 3


def itl_history():
    """gem/flash: two streams in large chunks (one with a 1.5 s stall), one unstreamed; oai/mini: three paced streams
    and a failure."""
    from datetime import timedelta

    from test_report_views import DAY, measured

    def row(provider, model, p50, p99, longest, events, tokens, **changes):
        return measured(provider, model, 100, 900, itl_p50_ms=p50, itl_p99_ms=p99, itl_max_ms=longest,
                        output_events=events, output_tokens=tokens, **changes)

    results = [row("gem", "flash", 120.0, 300.0, 1500.0, 5, 500), row("gem", "flash", 100.0, 200.0, 250.0, 3, 300),
               row("gem", "flash", None, None, None, 1, 90, stream=False),
               row("oai", "mini", 10.0, 30.0, 40.0, 101, 100), row("oai", "mini", 20.0, 50.0, 60.0, 11, 10),
               row("oai", "mini", 12.0, 90.0, 1200.0, 51, 50),
               row("oai", "mini", 15.0, 15.0, 15.0, 2, 1, success=False, error_type="incomplete")]
    return [("eu", "h1", DAY, [(DAY + timedelta(seconds=i), m) for i, m in enumerate(results)])]


def test_report_by_itl_from_stored_rows_in_every_format(report_here, capsys):
    import csv
    import io

    from benchmarking.cli import main
    from benchmarking.storage.sqlite import SQLiteStorage
    from test_report_views import write

    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        write(storage, itl_history())
    assert main(["report", "--by", "itl", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    got = {r["provider"]: r for r in payload["itl"]}
    # gem: gaps 4 and 2; weighted median of p50s: 120 (weight 4 of 6 reaches half); one stall over 1 s.
    assert (got["gem"]["requests"], got["gem"]["gaps"]) == (2, 6)
    assert got["gem"]["itl_p50_of_request_p50s_ms"] == 120.0 and got["gem"]["itl_p99_of_request_p99s_ms"] == 300.0
    assert (got["gem"]["longest_stall_ms"], got["gem"]["stalls_over_1s"]) == (1500.0, 1)
    assert got["gem"]["tokens_per_event"] == 100.0  # streams only: not the unstreamed body's one event of 90
    # oai: gaps 100, 10, 50 (the failure left out); p50s 10 (100), 12 (50), 20 (10): 10 reaches 100 of 160.
    assert (got["oai"]["requests"], got["oai"]["gaps"]) == (3, 160)
    assert got["oai"]["itl_p50_of_request_p50s_ms"] == 10.0 and got["oai"]["itl_p99_of_request_p99s_ms"] == 90.0
    assert (got["oai"]["stalls_over_1s"], got["oai"]["tokens_per_event"]) == (1, round(160 / 163, 2))
    assert main(["report", "--by", "itl", "--format", "csv"]) == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["provider"], r["stalls_over_1s"]) for r in records] == [("gem", "1"), ("oai", "1")]
    assert main(["report", "--by", "itl"]) == 0
    table = capsys.readouterr().out
    assert "ITL ms p50 (of request p50s)" in table and "tokens/event" in table and "100.0" in table
