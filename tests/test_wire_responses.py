"""OpenAI's Responses API, as true as Chat Completions: recorded Responses streams replayed through the real openai
SDK (OPENAI_API=responses, and an endpoint of benchmark.toml with api = "responses") over HTTP and TLS.

The fixtures (tests/fixtures/responses/, their sources in manifest.json and README.md) are public recordings of
OpenAI's and Azure OpenAI's Responses API; WireServer replays them byte for byte on loopback.
"""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path

import pytest

from benchmarking.providers.custom_provider import call_custom
from benchmarking.providers.openai_provider import call_openai

from conftest import settings_for
from test_wire_truth import At, tls_server  # noqa: F401 (a fixture)
from wire_server import Reply, WireServer, sse_parts

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "responses"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


def fixture_reply(entry: dict, gap_s: float = 0.002) -> Reply:
    body = (FIXTURES / entry["file"]).read_bytes()
    if entry["stream"]:
        return Reply(sse_parts(body, gap_s), entry["http_status"], dict(entry["headers"]))
    return Reply([(0.01, body)], entry["http_status"], dict(entry["headers"]), chunked=False)


def measure_openai(server: WireServer, **changes):
    settings = settings_for(At(server.url, "/v1"), "openai", **{"api": "responses", **changes})
    return call_openai("hello", "m", settings)


def event(kind: str, **fields) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def response(status: str, usage: dict | None = None, **fields) -> dict:
    return {"id": "resp_1", "object": "response", "status": status, "output": [], "usage": usage, **fields}


USAGE = {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3,
         "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12}


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["name"])
def test_every_recorded_responses_shape_is_stored_as_what_it_was(entry):
    expect = entry["expect"]
    with WireServer() as server:
        server.reply(fixture_reply(entry))
        m = measure_openai(server, stream=entry["stream"])
        served = server.served[0]
    assert served.path == "/v1/responses"
    assert (served.body["stream"], served.body["store"]) == (entry["stream"], False)
    assert served.body["input"] == [{"role": "user", "content": "hello"}] and "messages" not in served.body
    assert (m.success, m.error_type, m.http_status) == (expect["success"], expect["error_type"],
                                                        expect["http_status"]), m.error_message
    assert m.api == "responses"
    assert (m.response_text or "") == expect["text"]
    assert m.finish_reason == expect["finish_reason"]
    for name in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"):
        assert getattr(m, name) == expect[name], name
    assert m.request_id == expect["request_id"]
    if expect["success"] and entry["stream"]:
        assert 0 < m.ttft_ms <= m.latency_ms
        assert m.answer_ttft_ms is not None and m.answer_ttft_ms >= m.ttft_ms
    if expect["success"] and expect.get("reasoning_first"):
        assert m.answer_ttft_ms > m.ttft_ms  # the summary came first; the function call's arguments after it
    if not expect["success"]:
        assert m.tokens_per_second is None and expect["message_has"] in m.error_message


def test_a_custom_endpoint_declared_with_api_responses_speaks_it():
    entry = next(e for e in MANIFEST if e["name"] == "openai_cached_tokens")
    with WireServer() as server:
        server.reply(fixture_reply(entry))
        settings = settings_for(At(server.url, "/v1"), "openai", api="responses", name="litellm", key_env=None)
        m = call_custom("hello", "m", settings)
        assert server.served[0].path == "/v1/responses"
    assert (m.success, m.api, m.provider) == (True, "responses", "litellm")
    assert (m.input_tokens, m.cached_tokens, m.reasoning_tokens) == (7112, 3072, 64)


def test_chat_completions_stays_the_default_for_openai():
    with WireServer() as server:
        server.reply(Reply(sse_parts(b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, '
                                     b'"finish_reason": "stop"}]}\n\ndata: [DONE]\n\n')))
        m = call_openai("hello", "m", settings_for(At(server.url, "/v1"), "openai"))
        assert server.served[0].path == "/v1/chat/completions"
    assert (m.success, m.api, m.response_text) == (True, "chat_completions", "hi")


def test_a_system_message_becomes_instructions_and_the_output_cap_the_api_minimum():
    with WireServer() as server:
        server.reply(Reply(sse_parts(event("response.output_text.delta", delta="ok")
                                     + event("response.completed", response=response("completed", USAGE)))))
        settings = settings_for(At(server.url, "/v1"), "openai", api="responses", max_tokens=1)
        m = call_openai([("system", "Be brief."), ("user", "hi"), ("assistant", "hello"), ("user", "again")], "m",
                        settings)
        body = server.served[0].body
    assert m.success
    assert body["instructions"] == "Be brief."
    assert body["input"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                             {"role": "user", "content": "again"}]
    assert body["max_output_tokens"] == 16  # the API refuses fewer


def test_times_go_to_the_output_events_not_to_the_events_around_them():
    # 40 ms between the parts that matter: a shift onto a neighbour would show, even on a starved machine.
    parts = [
        (0.01, event("response.created", response=response("in_progress"))),
        (0.04, event("response.in_progress", response=response("in_progress"))),
        (0.04, event("response.output_item.added", output_index=0, item={"type": "message", "content": []})),
        (0.04, event("response.content_part.added", output_index=0, content_index=0, part={"type": "output_text"})),
        (0.04, event("response.output_text.delta", delta="first")),
        (0.04, event("response.output_text.delta", delta=" last")),
        (0.04, event("response.output_text.done", text="first last")),
        (0.04, event("response.completed", response=response("completed", USAGE))),
    ]
    with WireServer() as server:
        server.reply(Reply(parts))
        m = measure_openai(server)
        served = server.served[0]
    first, last = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (4, 5))
    assert m.success and m.response_text == "first last" and m.finish_reason == "completed"
    assert first <= m.ttft_ms < first + 30
    assert last <= m.latency_ms < last + 30  # not the done events, nor response.completed 40 and 80 ms later
    assert m.answer_ttft_ms == m.ttft_ms


def test_https_answers_are_timed_at_the_wire_through_a_burst(tls_server):
    parts = [(0.02, event("response.created", response=response("in_progress"))),
             (0.04, event("response.output_text.delta", delta="first"))]
    # then, after a pause, a burst of 800 deltas: the SDK would take tens of ms to parse them
    parts += [(0.05 if i == 0 else 0.0, event("response.output_text.delta", delta=" x")) for i in range(800)]
    parts += [(0.0, event("response.output_text.delta", delta=" last")),
              (0.08, event("response.completed", response=response("completed", USAGE)))]
    tls_server.reply(Reply(parts))
    m = measure_openai(tls_server)
    served = tls_server.served[0]
    first, last = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (1, len(parts) - 2))
    assert m.success and m.endpoint.startswith("https://") and m.response_text.endswith(" x last")
    assert first <= m.ttft_ms < first + 25
    assert last <= m.latency_ms < last + 25


def test_recorded_fixtures_replay_over_tls_too(tls_server):
    entry = next(e for e in MANIFEST if e["name"] == "azure_function_call")
    tls_server.reply(fixture_reply(entry))
    m = measure_openai(tls_server)
    assert (m.success, m.input_tokens, m.output_tokens) == (True, 45, 24)
    assert m.response_text == "" and m.ttft_ms is not None


def test_summarised_reasoning_hides_its_tokens_from_the_decode_and_raw_reasoning_does_not():
    usage = {**USAGE, "output_tokens": 21, "output_tokens_details": {"reasoning_tokens": 10}}

    def run(kind: str):
        parts = [(0.01, event(kind, delta="think")), (0.02, event("response.output_text.delta", delta="a")),
                 (0.02, event("response.output_text.delta", delta="b")),
                 (0.01, event("response.completed", response=response("completed", usage)))]
        with WireServer() as server:
            server.reply(Reply(parts))
            return measure_openai(server)

    summary, raw = run("response.reasoning_summary_text.delta"), run("response.reasoning_text.delta")
    for m in (summary, raw):
        assert m.success and m.ttft_ms < m.answer_ttft_ms and m.reasoning_tokens == 10
    # decode speed: (output - hidden - 1) / (latency - start); the summary's 10 reasoning tokens are hidden, so the
    # decode they leave starts at the answer's first token, not at the summary streamed before it
    assert summary.tokens_per_second == pytest.approx(10 / ((summary.latency_ms - summary.answer_ttft_ms) / 1000))
    assert raw.tokens_per_second == pytest.approx(20 / ((raw.latency_ms - raw.ttft_ms) / 1000))


@pytest.mark.parametrize("status,error_type", [(429, "rate_limit"), (401, "auth"), (500, "server")])
def test_http_errors_are_typed_as_for_chat_completions(status, error_type):
    body = json.dumps({"error": {"message": "no", "type": "x", "code": None}}).encode()
    with WireServer() as server:
        server.reply(Reply([(0.0, body)], status, {"content-type": "application/json"}, chunked=False))
        m = measure_openai(server)
    assert (m.success, m.error_type, m.http_status, m.api) == (False, error_type, status, "responses")


def test_a_failed_response_is_retried_like_its_http_twin():
    failed = event("response.failed", response=response("failed", error={"code": "server_error",
                                                                          "message": "The server had an error"}))
    ok = event("response.output_text.delta", delta="ok") + event("response.completed",
                                                                  response=response("completed", USAGE))
    with WireServer() as server:
        server.reply(Reply(sse_parts(failed)), Reply(sse_parts(ok)))
        m = measure_openai(server, retries=1)
    assert (m.success, m.attempts, m.response_text) == (True, 2, "ok")


def test_an_error_event_with_its_fields_at_the_top_is_read_too():
    # OpenAI's API reference shows the error event's code and message beside its type, not nested
    body = event("response.output_text.delta", delta="Hi") + event("error", code="server_error",
                                                                   message="upstream broke", param=None)
    with WireServer() as server:
        server.reply(Reply(sse_parts(body)))
        m = measure_openai(server)
    assert (m.success, m.error_type, m.response_text) == (False, "server", "Hi")
    assert "upstream broke" in m.error_message


def test_a_whole_response_body_is_read_when_not_streamed():
    body = response("completed", USAGE, output=[
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Paris."}]}])
    with WireServer() as server:
        server.reply(Reply([(0.01, json.dumps(body).encode())], 200, {"content-type": "application/json"},
                           chunked=False))
        m = measure_openai(server, stream=False)
        assert server.served[0].body["stream"] is False
    assert (m.success, m.response_text, m.finish_reason, m.output_tokens) == (True, "Paris.", "completed", 3)
    assert m.ttft_ms is None and m.latency_ms > 0


def test_a_plain_body_to_a_stream_request_is_a_bad_response():
    body = response("completed", USAGE, output=[{"type": "message", "content": [{"type": "output_text",
                                                                                 "text": "Paris."}]}])
    with WireServer() as server:
        server.reply(Reply([(0.01, json.dumps(body).encode())], 200, {"content-type": "application/json"},
                           chunked=False))
        m = measure_openai(server)
    assert (m.success, m.error_type, m.response_text) == (False, "bad_response", "Paris.")


def test_only_status_events_is_an_empty_answer():
    body = event("response.created", response=response("in_progress")) + event(
        "response.completed", response=response("completed", {**USAGE, "output_tokens": 0}))
    with WireServer() as server:
        server.reply(Reply(sse_parts(body)))
        m = measure_openai(server)
    assert (m.success, m.error_type, m.ttft_ms) == (False, "empty_answer", None)


def test_the_api_reaches_the_stored_row(storage):
    from uuid import uuid4

    from benchmarking.measurement import utc_now
    from benchmarking.storage import RunInfo

    with WireServer() as server:
        server.reply(Reply(sse_parts(event("response.output_text.delta", delta="ok")
                                     + event("response.completed", response=response("completed", USAGE)))))
        m = measure_openai(server)
    run = RunInfo(id=uuid4(), run_name="t", triggered_by="test", started_at=utc_now(), mode="live", host="h",
                  region=None, tool_version="0", settings={}, pid=1)
    storage.create_run(run)
    storage.save_result(run.id, uuid4(), utc_now(), m)
    assert storage.read_rows("benchmark_results", ["api", "provider"]) == [("responses", "openai")]


def test_the_rehearsal_stream_reads_as_an_answer():
    from benchmarking.providers.dialects import responses
    from benchmarking.providers.sse import SseSplitter

    reader = responses.EventReader()
    reader.read(SseSplitter().feed(responses.REHEARSAL_STREAM, 1.0))
    answer = reader.answer()
    assert (answer.text, answer.finish_reason, answer.done, answer.usage["output_tokens"]) == ("ok", "completed",
                                                                                              True, 1)


def test_a_settings_change_of_api_builds_another_client():
    from benchmarking.providers.registry import provider_wire
    from benchmarking.providers.client import client_key

    chat = settings_for(At("http://127.0.0.1:1", "/v1"), "openai")
    native = replace(chat, api="responses")
    assert provider_wire("openai", native).dialect.API == "responses"
    assert provider_wire("openai", chat).dialect.API == "chat_completions"
    assert client_key(provider_wire("openai", chat), chat) != client_key(provider_wire("openai", native), native)
    assert provider_wire("vllm", replace(native, name="vllm")).dialect.API == "responses"


def test_a_run_through_the_responses_api_stores_it_and_a_chat_endpoint_beside_it(tmp_path):
    from test_cli import rows, run_main

    answer = sse_parts(event("response.output_text.delta", delta="ok")
                       + event("response.completed", response=response("completed", USAGE)))
    chat = sse_parts(b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}\n\n'
                     b'data: [DONE]\n\n')
    with WireServer() as server:
        server.reply(Reply(answer), Reply(chat))
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "shim"\nbase_url = "{server.url}/v1"\nmodel = "m"\napi = "chat_completions"\n')
        done = run_main(tmp_path, "--providers", "openai,shim", "--api", "openai=responses", "--model", "openai=m",
                        OPENAI_API_KEY="sk-test-000000000000000000", OPENAI_BASE_URL=f"{server.url}/v1")
        paths = [s.path for s in server.served]
    assert done.returncode == 0, done.stderr
    assert paths == ["/v1/responses", "/v1/chat/completions"]
    stored = rows(tmp_path / "benchmarks.db", "select provider, api, success, response_text from benchmark_results")
    assert [tuple(r) for r in stored] == [("openai", "responses", 1, "ok"), ("shim", "chat_completions", 1, "hi")]


def test_a_key_echoed_in_a_failed_response_is_scrubbed():
    from benchmarking.settings.values import Secret
    from conftest import CANARY_KEY

    failed = event("response.failed", response=response("failed", error={
        "code": "invalid_api_key", "message": f"Incorrect API key provided: {CANARY_KEY}"}))
    with WireServer() as server:
        server.reply(Reply(sse_parts(failed)))
        m = measure_openai(server, api_key=Secret(CANARY_KEY))
    assert (m.success, m.error_type) == (False, "auth")
    assert CANARY_KEY not in m.error_message and "****" in m.error_message


def json_reply(body: bytes, content_type: str = "application/json") -> Reply:
    return Reply([(0.01, body)], 200, {"content-type": content_type}, chunked=False)


MESSAGE = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi there"}]}]
# A response object, and whether it is an answer: completed, or cut at the output cap the request set.
STATUSES = [
    ({"status": "completed"}, True),
    ({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}, True),
    ({"status": "incomplete", "incomplete_details": {"reason": "content_filter"}}, False),
    ({"status": "cancelled"}, False),
    ({"status": "in_progress"}, False),
    ({"status": "queued"}, False),
    ({"status": 1}, False),
    ({"status": None}, False),
    ({}, False),
]


@pytest.mark.parametrize("fields,answered,stream", [
    (fields, answered, stream) for fields, answered in STATUSES for stream in (False, True)
    if not stream or "status" in fields  # an ending event without a status has the one its name says
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v))
def test_a_response_is_an_answer_only_when_its_status_says_it_completed(fields, answered, stream):
    # one rule for a whole body and a stream's ending event: the response's own status, whatever event carries it
    whole = {"id": "resp_1", "object": "response", "output": MESSAGE, "usage": USAGE, **fields}
    ending = event("response.completed", response={**whole, "output": []})
    reply = Reply(sse_parts(event("response.output_text.delta", delta="hi there") + ending)) if stream else \
        json_reply(json.dumps(whole).encode())
    with WireServer() as server:
        server.reply(reply)
        m = measure_openai(server, stream=stream)
    assert m.response_text == "hi there"
    assert (m.success, m.error_type) == ((True, None) if answered else (False, "incomplete")), m.error_message
    if not answered:
        assert m.tokens_per_second is None and "did not complete" in m.error_message


@pytest.mark.parametrize("stream", [False, True], ids=["body", "response.completed"])
@pytest.mark.parametrize("error", [{"code": "server_error", "message": "The server had an error"},
                                   "The server had an error"], ids=["object", "string"])
def test_a_response_whose_status_is_failed_fails_with_its_error_whatever_event_carries_it(error, stream):
    whole = {**response("failed", USAGE, error=error), "output": MESSAGE}
    ending = event("response.completed", response={**whole, "output": []})
    reply = Reply(sse_parts(event("response.output_text.delta", delta="hi there") + ending)) if stream else \
        json_reply(json.dumps(whole).encode())
    with WireServer() as server:
        server.reply(reply)
        m = measure_openai(server, stream=stream)
    assert (m.success, m.error_type, m.finish_reason) == (False, "server", "failed")
    assert "The server had an error" in m.error_message


@pytest.mark.parametrize("carrier", ["response.created", "response.in_progress"])
def test_usage_is_read_from_the_ending_event_only(carrier):
    early = {**USAGE, "output_tokens": 3333}
    for ending in ({**response("completed"), "usage": None}, {k: v for k, v in response("completed").items()
                                                              if k != "usage"}):
        body = (event(carrier, response=response("in_progress", early))
                + event("response.output_text.delta", delta="a") + event("response.output_text.delta", delta="b")
                + event("response.completed", response=ending))
        with WireServer() as server:
            server.reply(Reply(sse_parts(body)))
            m = measure_openai(server)
        assert m.success and m.response_text == "ab"
        assert (m.input_tokens, m.output_tokens, m.cost_usd) == (None, None, None)
        assert any("sent no token usage" in w for w in m.warnings)


# Answers to a request not streamed that are no response object (nor chat completion): each is no answer at all.
NOT_AN_ANSWER = [
    (b"<html><script>alert(1)</script>down for maintenance</html>", "text/html"),
    (b"", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'event: response.completed\ndata: {"type": "response.completed"}\n\n', "text/event-stream"),
    (b"null", "application/json"),
]


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
@pytest.mark.parametrize("body,content_type", NOT_AN_ANSWER, ids=["html", "empty", "array", "sse", "null"])
def test_a_body_that_is_no_json_object_is_a_bad_response_in_every_dialect(body, content_type, api):
    with WireServer() as server:
        server.reply(json_reply(body, content_type))
        m = measure_openai(server, stream=False, api=api)
    assert (m.success, m.error_type, m.api) == (False, "bad_response", api), m.error_message
    assert m.error_message.startswith("unreadable response: not a JSON object")


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
def test_an_error_given_as_a_string_is_the_error_with_its_message_in_every_dialect(api):
    with WireServer() as server:
        server.reply(json_reply(json.dumps({"error": "denied: the model is overloaded"}).encode()))
        m = measure_openai(server, stream=False, api=api)
    assert (m.success, m.error_type) == (False, "server")
    assert "denied: the model is overloaded" in m.error_message


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
@pytest.mark.parametrize("reasoning,kept", [(50, None), (10, 10), (4, 4)])
def test_reasoning_tokens_more_than_the_output_are_left_empty_with_a_warning_in_every_dialect(api, reasoning, kept):
    if api == "responses":
        usage = {**USAGE, "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": reasoning}}
        body = event("response.output_text.delta", delta="a") + event("response.output_text.delta", delta="b") + \
            event("response.completed", response=response("completed", usage))
    else:
        usage = {"prompt_tokens": 9, "completion_tokens": 10, "completion_tokens_details": {
            "reasoning_tokens": reasoning}}
        body = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in (
            {"choices": [{"index": 0, "delta": {"content": "a"}}]},
            {"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]},
            {"choices": [], "usage": usage})) + b"data: [DONE]\n\n"
    with WireServer() as server:
        server.reply(Reply(sse_parts(body, 0.01)))
        m = measure_openai(server, api=api)
    assert m.success and (m.output_tokens, m.reasoning_tokens) == (10, kept)
    wrong = [w for w in m.warnings if "reasoning_tokens" in w]
    assert wrong == ([] if kept is not None else [
        f"openai sent a value that makes no sense: usage reasoning_tokens = {reasoning} is more than "
        "output_tokens = 10: left empty"])
