"""What a provider sends is untrusted and bounded: memory by what is kept, numbers by what makes sense, a stream's end
by what it said; and counts from a server's tokenizer are of what the model generated."""

from __future__ import annotations

from dataclasses import replace
import json
import os
from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

from benchmarking.providers.custom_provider import call_custom

from test_custom_endpoints import endpoint, run_in
from test_wire_truth import USAGE, chunk, measure, stream
from wire_server import Reply, WireServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("BENCHMARK_", "DATABASE_URL", "SUPABASE_")):
            monkeypatch.delenv(name)


# ---- [DONE] is not a finish --------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_done_without_any_finish_reason_is_incomplete_never_a_success(route):
    # A llama-cpp-python server interrupting a generation: a token or two, then [DONE], and no finish_reason.
    with WireServer() as server:
        server.reply(stream(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
                            chunk({"content": "lo"})))
        m = measure(server, route)
    assert (m.success, m.error_type) == (False, "incomplete")
    assert "[DONE]" in m.error_message and "finish_reason" in m.error_message
    assert m.response_text == "Hello" and m.tokens_per_second is None


# ---- tokenize: what the model generated, not the tokenizer's BOS --------------------------------------------------
def bos_tokenizer_routes(server: WireServer, kind: str) -> None:
    """A tokenizer that puts a beginning-of-sequence token before every text it counts, whatever it is asked (as
    llama-cpp-python's /extras/tokenize/count does): one token a word, plus the BOS."""
    words = lambda text: len(str(text or "").split()) + 1  # noqa: E731
    if kind == "vllm":
        server.routes["/tokenize"] = lambda body: (200, {"count": words(body.get("prompt") or (
            body.get("messages") or [{}])[0].get("content")), "max_model_len": 8192, "tokens": []})
    elif kind == "llama.cpp":
        server.routes["/apply-template"] = lambda body: (200, {"prompt": f"<u> {body['messages'][0]['content']} <a>"})
        server.routes["/tokenize"] = lambda body: (200, {"tokens": list(range(words(body["content"])))})
    else:
        server.routes["/extras/tokenize/count"] = lambda body: (200, {"count": words(body["input"])})


@pytest.mark.parametrize("kind", ["vllm", "llama.cpp", "llama-cpp-python"])
def test_tokenize_counts_what_the_model_generated_one_token_per_event(kind):
    tokens = [chunk({"reasoning_content": "hmm "})] + [chunk({"content": f"w{i} "}) for i in range(6)]
    with WireServer() as server:
        bos_tokenizer_routes(server, kind)
        server.reply(stream(chunk({"role": "assistant", "content": ""}), *tokens, chunk({}, "stop"), gap_s=0.01))
        m = call_custom("two words", "m", endpoint(server, token_count="tokenize"))
    assert m.success and m.token_source == "tokenize"
    assert m.output_tokens == len(tokens) == 7  # the stream's output events, one token each: not 8 with the BOS


# ---- provider numbers out of range -------------------------------------------------------------------------------
def raw_usage_stream(usage: bytes, headers: dict[str, str] | None = None) -> Reply:
    """A stream whose usage chunk is the given raw JSON text (1e999, NaN and huge integers kept as sent)."""
    body = (b"data: " + json.dumps(chunk({"content": "ok"}, "stop")).encode() + b"\n\n"
            + b'data: {"id": "chatcmpl-x1", "object": "chat.completion.chunk", "choices": [], "usage": ' + usage
            + b"}\n\ndata: [DONE]\n\n")
    return Reply([(0.005, body)], headers={"content-type": "text/event-stream", **(headers or {})})


@pytest.mark.parametrize("raw", [b"3000000000", b"10000000000000000000", b"1000000000000000000", b"1000000001",
                                 b"-1", b"2.5", b"1e999", b"-1e999", b"NaN", b'"12"', b"true", b"[1]", b'{"n": 1}',
                                 b"9" * 5000, b"-" + b"9" * 5000])
def test_a_token_count_out_of_range_is_left_empty_with_a_warning(raw):
    usage = b'{"prompt_tokens": ' + raw + b', "completion_tokens": 3, "total_tokens": 8}'
    with WireServer() as server:
        server.reply(raw_usage_stream(usage))
        m = call_custom("hello", "m", endpoint(server))
    assert m.success and (m.input_tokens, m.output_tokens) == (None, 3)
    assert [w for w in m.warnings if "prompt_tokens" in w and "not a token count" in w]


def test_a_token_count_at_the_bound_is_kept():
    with WireServer() as server:
        server.reply(raw_usage_stream(b'{"prompt_tokens": 1000000000, "completion_tokens": 3.0}'))
        m = call_custom("hello", "m", endpoint(server))
    assert (m.input_tokens, m.output_tokens) == (1_000_000_000, 3) and not m.warnings[1:]


@pytest.mark.parametrize("raw", [b"1e300", b"-0.5", b"1000001", b'"1e400"', b"1e-400"])
def test_a_provider_cost_out_of_range_falls_back_to_the_price_list(raw):
    with WireServer() as server:
        server.reply(raw_usage_stream(b'{"prompt_tokens": 5, "completion_tokens": 3, "cost": ' + raw + b"}"))
        m = call_custom("hello", "m", endpoint(server))
    assert m.success and m.cost_source != "provider" or m.cost_usd is not None and 0 <= m.cost_usd <= 1_000_000
    if raw != b"1e-400":
        assert m.cost_source is None and any("usage cost" in w for w in m.warnings)


@pytest.mark.parametrize("value", ["99999999999999999999", "\u00b2", "-5", "1e3", "\u00b9\u00b2", "1000000001"])
def test_a_rate_limit_header_that_is_no_sane_count_is_left_empty(value):
    headers = {"x-ratelimit-remaining-tokens": value, "x-ratelimit-remaining-requests": "42"}
    with WireServer() as server:
        server.reply(Reply(stream(chunk({"content": "ok"}, "stop"), chunk(None, usage=USAGE)).parts,
                           headers={"content-type": "text/event-stream", **headers}))
        m = call_custom("hello", "m", endpoint(server))
    assert m.success and (m.ratelimit_remaining_tokens, m.ratelimit_remaining_requests) == (None, 42)


def test_an_error_status_in_a_200_that_is_no_ascii_number_is_read_by_its_words():
    with WireServer() as server:
        server.reply(stream({"error": {"message": "overloaded", "code": "\u00b2", "status": "\u0665\u0660\u0663"}},
                            done=False))
        m = call_custom("hello", "m", endpoint(server))
    assert (m.success, m.error_type, m.http_status) == (False, "server", None)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_numbers_no_database_can_hold_never_cost_the_row(tmp_path, backend, request):
    usage = (b'{"prompt_tokens": 3000000000, "completion_tokens": 10000000000000000000, "total_tokens": 1e999, '
             b'"cost": 1e300, "prompt_tokens_details": {"cached_tokens": 1000000000000000000}}')
    env = {}
    if backend == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("pg_url")
    with WireServer() as server:
        server.reply(raw_usage_stream(usage, {"x-ratelimit-remaining-tokens": "9" * 30}))
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "local"\nbase_url = "{server.url}/v1"\nmodel = "m"\n'
            'input_price = "1"\noutput_price = "2"\n')
        done = run_in(tmp_path, "--providers", "local", "--repeat", "2", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "outbox" not in done.stdout.lower()
    query = ("select success, input_tokens, output_tokens, cached_tokens, cost_usd, ratelimit_remaining_tokens "
             "from benchmark_results")
    if backend == "postgres":
        from conftest import pg_rows

        stored = pg_rows(env["DATABASE_URL"], query)
    else:
        from test_cli import rows

        stored = [tuple(r) for r in rows(tmp_path / "benchmarks.db", query)]
    assert stored == [(1, None, None, None, None, None)] * 2 or stored == [(True, None, None, None, None, None)] * 2
    # each warning printed once for the provider and model, at its first request, and counted in the summary
    assert done.stdout.count("Warning: local sent a value that makes no sense: usage prompt_tokens = 3000000000") == 1
    assert "Warning (local / m, 2 of 2 requests): local sent a value that makes no sense: usage prompt_tokens = " \
           "3000000000 is not a token count: left empty" in done.stdout


# ---- property: whatever usage a provider sends, a row is stored ---------------------------------------------------
def _usage_texts():
    from hypothesis import strategies as st

    keys = st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "cost", "cached_tokens", "is_byok",
                            "prompt_tokens_details", "completion_tokens_details", "cost_details", "reasoning_tokens",
                            "upstream_inference_cost"])
    numbers = st.one_of(
        st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "0.1e400", "-0", "1E+20",
                         "true", "false", "null", '"12"', '"\\u00b2"', '"1e999"', '"NaN"', '""', "[]", "{}"]),
        st.text(max_size=20).map(json.dumps),
    )
    nested = st.integers(min_value=1, max_value=50_000).map(lambda depth: "[" * depth + "1" + "]" * depth)

    def objects(children):
        return st.dictionaries(keys, children, max_size=6).map(
            lambda d: "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in d.items()) + "}")

    return st.recursive(st.one_of(numbers, nested), objects, max_leaves=20).filter(lambda t: t.startswith("{")) \
        | objects(numbers)


def test_any_usage_a_provider_sends_is_stored_as_a_row_never_a_traceback(tmp_path, pg_url):
    from datetime import datetime, timezone
    from uuid import uuid4

    from hypothesis import HealthCheck, given, settings

    from benchmarking.storage.postgres import PostgresStorage
    from benchmarking.storage.sqlite import SQLiteStorage

    from test_storage_sqlite import run_info

    with WireServer() as server, SQLiteStorage(tmp_path / "b.db") as lite, PostgresStorage(pg_url, timeout_s=10) as pg:
        runs = {}
        for db in (lite, pg):
            run = run_info()
            db.create_run(run)
            runs[db] = run.id
        saved = [0]

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(_usage_texts())
        def check(usage):
            server.reply(raw_usage_stream(usage.encode()))
            m = call_custom("hello", "m", endpoint(server))
            for db, run_id in runs.items():
                db.save_result(run_id, uuid4(), datetime.now(timezone.utc), m)
            saved[0] += 1
            for count in (m.input_tokens, m.output_tokens, m.cached_tokens, m.reasoning_tokens):
                assert count is None or type(count) is int and 0 <= count <= 1_000_000_000
            assert m.cost_usd is None or 0 <= m.cost_usd <= 1_000_000
            assert m.success or m.error_type == "bad_response"  # the usage chunk itself was unreadable

        check()
        assert len(lite.read_results()) == len(pg.read_results()) == saved[0] > 0


# ---- memory: bounded by what is kept -----------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import resource, sys
    from dataclasses import replace
    sys.path[:0] = [{src!r}, {tests!r}]
    from benchmarking.simulator import ModelProfile, Simulator
    from benchmarking.providers.openai_provider import call_openai
    from benchmarking.storage.sqlite import SQLiteStorage
    from conftest import settings_for
    from test_storage_sqlite import run_info
    from datetime import datetime, timezone
    from uuid import uuid4

    # A run away from this bound fails the test instead of the machine
    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024 ** 3, 3 * 1024 ** 3))

    def peak_mb():
        # This process's own peak (VmHWM): ru_maxrss keeps the parent's peak across exec, and the parent is pytest.
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:"))
    profile = ModelProfile(ttft_ms=0, fault={fault!r}, flood_bytes={size})
    with Simulator(profiles={{"m": profile}}) as sim, SQLiteStorage({db!r}) as db:
        m = call_openai("hello", "m", replace(settings_for(sim, "openai"), timeout_s=120))
        run = run_info()
        db.create_run(run)
        db.save_result(run.id, uuid4(), datetime.now(timezone.utc), m)
    print(peak_mb(), m.success, m.error_type, m.response_truncated,
          len((m.response_text or "").encode()), m.error_message)
""")


@pytest.mark.parametrize("fault", ["flood", "long_line"])
def test_a_300_mb_answer_costs_memory_for_what_is_kept_not_what_was_sent(tmp_path, fault):
    from test_cli import rows

    size = 300_000_000
    code = CHILD.format(src=str(ROOT / "src"), tests=str(ROOT / "tests"), fault=fault, size=size,
                        db=str(tmp_path / "b.db"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mb, success, error_type, truncated, kept, *message = done.stdout.split()
    assert int(peak_mb) < 250, f"peak RSS {peak_mb} MB for a {size // 10 ** 6} MB answer"
    stored = rows(tmp_path / "b.db", "select success, error_type, response_truncated, length(response_text) as n "
                                     "from benchmark_results")
    assert len(stored) == 1
    if fault == "flood":  # text capped at 1 MB, the answer itself whole and successful
        assert (success, truncated, int(kept)) == ("True", "True", 1_000_000)
        assert (stored[0]["success"], stored[0]["response_truncated"], stored[0]["n"]) == (1, 1, 1_000_000)
    else:  # one line longer than any event is read: the answer is unreadable from there on
        assert (success, error_type) == ("False", "bad_response") and "MiB" in " ".join(message)
        assert (stored[0]["success"], stored[0]["error_type"]) == (0, "bad_response")


# ---- the piecewise reading finds the same events at the same times as reading the whole body ----------------------
def whole_body_events(pieces: list[bytes], arrived: list[float]) -> list[tuple[float, str | None, str]]:
    """The events of the body read as a whole (as before reading piece by piece): the reference."""
    import re

    body = b"".join(pieces)
    piece_ends, total = [], 0
    for piece in pieces:
        total += len(piece)
        piece_ends.append(total)
    events, name, data, position, index = [], None, [], 0, 0
    for match in re.finditer(rb"\r\n|\r|\n", body):
        line = body[position:match.start()].decode("utf-8", errors="replace")
        position = match.end()
        if line:
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "data":
                data.append(value)
            elif key == "event":
                name = value
            continue
        if data:
            while piece_ends[index] < position:
                index += 1
            events.append((arrived[index], name or None, "\n".join(data)))
        name, data = None, []
    return events


def test_events_and_their_times_are_those_of_the_whole_body_however_it_is_cut():
    from hypothesis import given, settings, strategies as st

    from benchmarking.providers.sse import SseSplitter

    lines = st.lists(st.sampled_from([b"data: {\"a\": 1}", b"data:x", b"data", b"event: error", b"event:", b": c",
                                      b"", b"", b"retry: 5", b"data: \xff\xfe", b"id: 3", b"data: [DONE]"]),
                     max_size=30)
    ends = st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=30, max_size=30)

    @settings(max_examples=300, deadline=None)
    @given(lines, ends, st.lists(st.integers(min_value=0, max_value=400), max_size=12))
    def check(body_lines, line_ends, cuts):
        body = b"".join(line + end for line, end in zip(body_lines, line_ends))
        bounds = sorted({0, len(body), *(c for c in cuts if c < len(body))})
        pieces = [body[a:b] for a, b in zip(bounds, bounds[1:])] or [b""]
        arrived = [float(i) for i in range(len(pieces))]
        splitter = SseSplitter()
        got = [e for piece, at in zip(pieces, arrived) for e in splitter.feed(piece, at)] + splitter.close()
        assert [(e.arrived_at, e.event, e.data) for e in got] == whole_body_events(pieces, arrived)

    check()


def test_a_line_past_the_bound_is_dropped_and_marks_its_event_oversized():
    from benchmarking.providers.sse import SseSplitter

    splitter = SseSplitter(max_event_bytes=100)
    events = splitter.feed(b"data: " + b"x" * 60, 1.0) + splitter.feed(b"y" * 60 + b"\n\n", 2.0)
    events += splitter.feed(b": " + b"c" * 300 + b"\ndata: ok\n\n", 3.0)
    assert [(e.arrived_at, e.data, e.oversized) for e in events] == [(2.0, "", True), (3.0, "ok", False)]


BODY_CHILD = textwrap.dedent("""
    import resource, sys
    from dataclasses import replace
    sys.path[:0] = [{src!r}, {tests!r}]
    from benchmarking.providers.openai_provider import call_openai
    from conftest import settings_for
    from wire_server import Reply, WireServer
    from test_wire_truth import At

    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024 ** 3, 3 * 1024 ** 3))

    def peak_mb():
        # This process's own peak (VmHWM): ru_maxrss keeps the parent's peak across exec, and the parent is pytest.
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:"))
    piece = b'{{"error": {{"message": "' + b"x" * (1024 * 1024)
    parts = ((0.0, piece) for _ in range({size} // len(piece)))
    with WireServer() as server:
        server.reply(Reply(parts, {status}, {{"content-type": "application/json"}}, chunked=True))
        m = call_openai("hello", "m", replace(settings_for(At(server.url, "/v1"), "openai"), timeout_s=120,
                                             stream={stream}))
    print(peak_mb(), m.success, m.error_type, m.http_status)
""")


@pytest.mark.parametrize("status, stream", [(500, True), (200, False)], ids=["error body", "plain body"])
def test_a_300_mb_body_read_whole_costs_memory_for_what_is_kept(status, stream):
    code = BODY_CHILD.format(src=str(ROOT / "src"), tests=str(ROOT / "tests"), size=300_000_000, status=status,
                             stream=stream)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mb, success, error_type, http_status = done.stdout.split()
    assert int(peak_mb) < 250, f"peak RSS {peak_mb} MB for a 300 MB body"
    assert (success, error_type, http_status) == (("False", "server", "500") if status == 500
                                                  else ("False", "bad_response", "None"))


def test_names_a_provider_gives_are_kept_short_whatever_it_sends():
    long = "n" * 100_000
    with WireServer() as server:
        server.reply(stream(chunk({"content": "ok"}, long, provider=long, id=long)))
        m = call_custom("hello", "m", endpoint(server))
    assert m.success and len(m.finish_reason) == len(m.upstream_provider) == len(m.request_id) == 256


def test_text_of_a_million_tiny_events_is_held_as_a_few_strings():
    from benchmarking.providers.dialects.chat_completions import _Builder

    builder = _Builder()
    for i in range(5000):
        builder.chunk({"choices": [{"index": 0, "delta": {"content": "x", "reasoning": "y"}}]}, float(i), "delta")
    assert len(builder.parts) < 1024 and len(builder.reasoning) < 1024
    answer = builder.build()
    assert (answer.text, answer.reasoning_text, answer.output_events) == ("x" * 5000, "y" * 5000, 5000)


def test_an_answer_longer_than_what_is_kept_is_not_counted_by_the_tokenizer():
    from test_custom_endpoints import tokenizer_routes

    with WireServer() as server:
        tokenizer_routes(server, "vllm")
        server.reply(stream(chunk({"content": "word " * 220_000}), chunk({}, "stop")))
        m = call_custom("hello", "m", endpoint(server, token_count="tokenize"))
    assert m.success and m.response_truncated and len(m.response_text.encode()) == 1_000_000
    assert m.output_tokens is None and any("longer than what is kept" in w for w in m.warnings)


@pytest.mark.parametrize("usage, empty", [
    (b'{"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 500}}', "cached"),
    (b'{"prompt_tokens": 10, "completion_tokens": 3, "cached_tokens": 11}', "cached"),
])
def test_a_part_larger_than_its_whole_is_left_empty_with_a_warning(usage, empty):
    with WireServer() as server:
        server.reply(raw_usage_stream(usage))
        m = call_custom("hello", "m", endpoint(server))
    assert m.success and (m.input_tokens, m.output_tokens) == (10, 3)
    assert getattr(m, f"{empty}_tokens") is None
    assert [w for w in m.warnings if f"{empty}_tokens" in w and "is more than" in w]
