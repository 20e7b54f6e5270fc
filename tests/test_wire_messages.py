"""Anthropic's Messages API, measured natively: recorded streams replayed through the real `anthropic` SDK.

The fixtures (tests/fixtures/messages/, with their sources in manifest.json) come from the SDK's own test streams,
VCR cassettes recorded against api.anthropic.com, and the API's docs; WireServer replays them byte for byte on
loopback, over HTTP and TLS, and every time is checked against the server's own clock.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarking.providers import client
from benchmarking.providers.anthropic_provider import WIRE, call_anthropic
from benchmarking.providers.client import list_models

from conftest import FAKE_KEY, settings_for
from wire_server import Reply, WireServer, sse_parts

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "messages"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


class At:
    """What settings_for needs of a simulator: a base URL per provider."""

    def __init__(self, url: str) -> None:
        self._base = url

    def base_url(self, provider: str) -> str:
        return self._base


def measure(server: WireServer, prompt="hello", **changes):
    return call_anthropic(prompt, "claude-haiku-4-5", settings_for(At(server.url), "anthropic", **changes))


def fixture_reply(entry: dict, gap_s: float = 0.002) -> Reply:
    body = (FIXTURES / entry["file"]).read_bytes()
    if entry["file"].endswith(".sse"):
        return Reply(sse_parts(body, gap_s), entry["http_status"], dict(entry["headers"]), chunked=True)
    return Reply([(0.01, body)], entry["http_status"], dict(entry["headers"]), chunked=False)


def output_parts(parts: list[tuple[float, bytes]]) -> tuple[list[int], list[int]]:
    """Which parts carry output, and which of those carry answer output (not thinking), read apart from the code
    under test: non-empty text_delta, thinking_delta or input_json_delta."""
    fields = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
    output, answer = [], []
    for i, (_, part) in enumerate(parts):
        for line in part.decode().splitlines():
            if not line.startswith("data: "):
                continue
            try:
                payload = json.loads(line[6:])
            except ValueError:
                continue
            delta = payload.get("delta") or {}
            if payload.get("type") == "content_block_delta" and delta.get(fields.get(delta.get("type"), "-")):
                output.append(i)
                if delta["type"] != "thinking_delta":
                    answer.append(i)
    return output, answer


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["name"])
def test_every_recorded_messages_shape_is_stored_as_what_it_was(entry):
    expect = entry["expect"]
    reply = fixture_reply(entry)
    with WireServer() as server:
        server.reply(reply)
        m = measure(server, stream=entry["stream"])
        served = server.served[0]
    assert (m.success, m.error_type) == (expect["success"], expect["error_type"]), m.error_message
    assert m.http_status == expect["http_status"]
    assert m.api == "messages" and served.path == "/v1/messages"
    assert (m.response_text or "") == expect["text"]
    assert m.finish_reason == expect["finish_reason"]
    for name in ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens"):
        assert getattr(m, name) == expect[name], name
    assert m.request_id == expect["request_id"]
    output, answer = output_parts(reply.parts) if entry["file"].endswith(".sse") else ([], [])
    if entry["file"].endswith(".sse"):
        assert len(answer) == expect["answer_events"] and len(output) - len(answer) == expect["thinking_events"]
    if output and entry["stream"]:
        # Never before the server wrote the first part that carries output, nor the end before the last one.
        received = served.received_at
        assert m.ttft_ms >= (served.part_sent_at[output[0]] - received) * 1000
        assert m.answer_ttft_ms >= (served.part_sent_at[answer[0]] - received) * 1000
        assert m.latency_ms >= (served.part_sent_at[output[-1]] - received) * 1000 >= 0
        assert m.ttft_ms <= m.answer_ttft_ms <= m.latency_ms
    if not expect["success"]:
        assert m.tokens_per_second is None and m.error_message


def test_only_deltas_that_carry_output_set_the_times_never_the_events_around_them():
    # 40 ms between parts: a time that slipped onto a neighbour would show, even on a starved machine.
    parts = sse_parts((FIXTURES / "text.sse").read_bytes(), gap_s=0.04, first_s=0.04)
    with WireServer() as server:
        server.reply(Reply(parts))
        m = measure(server)
        served = server.served[0]
    first, last, delta = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (3, 5, 7))
    assert m.success and m.response_text == "Hello there!"
    assert first <= m.ttft_ms < first + 30  # message_start, content_block_start and ping came 40-120 ms earlier
    assert last <= m.latency_ms < delta  # message_delta and message_stop, 40 and 80 ms later, do not move the end
    assert m.ttft_ms == m.answer_ttft_ms
    assert m.tokens_per_second == pytest.approx((6 - 1) / ((m.latency_ms - m.ttft_ms) / 1000))


def test_thinking_comes_first_and_the_answer_ttft_is_the_first_text():
    parts = sse_parts((FIXTURES / "thinking_then_refusal.sse").read_bytes(), gap_s=0.03, first_s=0.03)
    with WireServer() as server:
        server.reply(Reply(parts))
        m = measure(server)
        served = server.served[0]
    output, answer = output_parts(parts)
    thought, text = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (output[0], answer[0]))
    assert m.success and m.finish_reason == "refusal" and m.response_text == "Hi"
    assert thought <= m.ttft_ms < text <= m.answer_ttft_ms
    assert m.reasoning_tokens == 67
    # The thinking was streamed: every output token was decoded after the first one.
    assert m.tokens_per_second == pytest.approx((106 - 1) / ((m.latency_ms - m.ttft_ms) / 1000))


def test_tool_input_is_answer_output_and_an_empty_delta_is_none():
    parts = sse_parts((FIXTURES / "tool_use.sse").read_bytes(), gap_s=0.002)
    # Drop the text: the tool's input is then the whole answer.
    parts = [p for p in parts if b"text_delta" not in p[1]]
    with WireServer() as server:
        server.reply(Reply(parts))
        m = measure(server)
        served = server.served[0]
    first_json = next(i for i, (_, p) in enumerate(parts) if b'"partial_json":"{' in p)
    assert m.success and m.finish_reason == "tool_use" and m.response_text == ""
    assert m.answer_ttft_ms >= (served.part_sent_at[first_json] - served.received_at) * 1000


def test_hidden_thinking_is_not_counted_as_decoded():
    # A redacted thinking block is whole in its content_block_start: its tokens are output, never streamed.
    usage = {"output_tokens": 71, "output_tokens_details": {"thinking_tokens": 60}}
    body = (FIXTURES / "text.sse").read_bytes().replace(b'"usage":{"output_tokens":6}',
                                                        b'"usage":' + json.dumps(usage).encode())
    with WireServer() as server:
        server.reply(Reply(sse_parts(body, gap_s=0.02)))
        m = measure(server)
    assert m.success and (m.output_tokens, m.reasoning_tokens) == (71, 60)
    assert m.tokens_per_second == pytest.approx((71 - 60 - 1) / ((m.latency_ms - m.ttft_ms) / 1000))


@pytest.mark.parametrize("name, retried", [("error_overloaded", True), ("error_api", True),
                                           ("error_rate_limit", True), ("http_529_overloaded", True)])
def test_an_error_the_api_calls_transient_is_retried_like_its_http_twin(name, retried, monkeypatch):
    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.01)
    entry = next(e for e in MANIFEST if e["name"] == name)
    fine = fixture_reply(next(e for e in MANIFEST if e["name"] == "text"))
    with WireServer() as server:
        server.reply(fixture_reply(entry), fine)
        m = measure(server, retries=2)
        assert len(server.served) == 2
    assert (m.success, m.attempts, m.response_text) == (True, 2, "Hello there!")


def test_a_mid_stream_error_says_what_it_was():
    with WireServer() as server:
        server.reply(fixture_reply(next(e for e in MANIFEST if e["name"] == "error_overloaded")))
        m = measure(server)
    assert m.error_message == "HTTP 200 carrying error overloaded_error: Overloaded"
    assert m.response_text == "Hello" and m.latency_ms >= m.ttft_ms


@pytest.mark.parametrize("status, error, error_type, hint", [
    (401, {"type": "authentication_error", "message": "invalid x-api-key"}, "auth", "check ANTHROPIC_API_KEY"),
    (404, {"type": "not_found_error", "message": "model: claude-nope"}, "not_found", "ANTHROPIC_MODEL"),
    (400, {"type": "invalid_request_error", "message": "max_tokens: too large"}, "bad_request", "max_tokens"),
])
def test_http_errors_are_typed_and_say_what_to_change(status, error, error_type, hint):
    body = json.dumps({"type": "error", "error": error}).encode()
    with WireServer() as server:
        server.reply(Reply([(0.0, body)], status, {"content-type": "application/json"}, chunked=False))
        m = measure(server)
    assert (m.success, m.error_type, m.http_status) == (False, error_type, status)
    assert hint in m.error_message and f"HTTP {status}" in m.error_message


def test_a_mid_stream_error_of_a_kind_not_retried_is_not_retried(monkeypatch):
    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.01)
    body = (FIXTURES / "error_api.sse").read_bytes().replace(b'"api_error"', b'"invalid_request_error"')
    with WireServer() as server:
        server.reply(Reply(sse_parts(body)))
        m = measure(server, retries=2)
        assert len(server.served) == 1
    assert (m.success, m.error_type, m.attempts) == (False, "bad_request", 1)


def test_the_request_is_the_messages_shape_with_the_system_prompt_apart():
    with WireServer() as server:
        server.reply(fixture_reply(MANIFEST[0]))
        m = measure(server, prompt=[("system", "Be brief."), ("user", "hello"), ("assistant", "hi"),
                                    ("user", "again")], max_tokens=77)
        served = server.served[0]
    assert m.success
    assert served.body == {"model": "claude-haiku-4-5", "max_tokens": 77, "stream": True, "system": "Be brief.",
                           "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
                                        {"role": "user", "content": "again"}]}


def test_the_warm_up_and_check_carry_the_key_as_the_sdk_does_and_find_aliases_on_every_page():
    pages = {
        None: {"data": [{"id": "claude-opus-4-1-20250805", "type": "model"}], "has_more": True,
               "first_id": "claude-opus-4-1-20250805", "last_id": "claude-opus-4-1-20250805"},
        "claude-opus-4-1-20250805": {"data": [{"id": "claude-haiku-4-5-20251001", "type": "model",
                                               "retires_at": "2027-10-15T00:00:00Z"},
                                              {"id": "claude-fable-5", "type": "model"}], "has_more": False,
                                     "first_id": "claude-haiku-4-5-20251001", "last_id": "claude-fable-5"},
    }

    def page(path: str) -> dict:
        after = path.split("after_id=")[1].split("&")[0] if "after_id=" in path else None
        return pages[after]

    with WireServer() as server:
        server.model_list = page
        listed = list_models(WIRE, settings_for(At(server.url), "anthropic"))
        paths_and_headers = list(server.listed)
    assert listed == {"claude-opus-4-1-20250805": None, "claude-opus-4-1": None,
                      "claude-haiku-4-5-20251001": "2027-10-15T00:00:00Z", "claude-haiku-4-5": "2027-10-15T00:00:00Z",
                      "claude-fable-5": None}
    assert [p.split("?")[0] for p, _ in paths_and_headers] == ["/v1/models", "/v1/models"]
    for _, headers in paths_and_headers:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["authorization"] == f"Bearer {FAKE_KEY}" and lowered["anthropic-version"] == "2026-10-21"


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """A WireServer on https with a certificate for 127.0.0.1 that the client is made to trust."""
    import ssl

    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with WireServer(tls=server_context) as server:
        yield server


def event(payload: dict) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + json.dumps(payload).encode() + b"\n\n"


def text_delta(text: str) -> bytes:
    return event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})


def test_https_answers_are_timed_at_the_wire_even_through_a_burst_of_800_events(tls_server):
    head = (FIXTURES / "text.sse").read_bytes().split(b"\n\n")[:3]  # message_start, content_block_start, ping
    parts = [(0.02, b"\n\n".join(head) + b"\n\n"), (0.04, text_delta("first"))]
    parts += [(0.05 if i == 0 else 0.0, text_delta(" x")) for i in range(800)]
    parts += [(0.0, text_delta(" last")),
              (0.08, event({"type": "content_block_stop", "index": 0})
               + event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 802}})
               + event({"type": "message_stop"}))]
    tls_server.reply(Reply(parts))
    m = measure(tls_server)
    served = tls_server.served[0]
    first, last = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (1, len(parts) - 2))
    assert m.success and m.endpoint.startswith("https://") and m.response_text.endswith(" x last")
    assert first <= m.ttft_ms < first + 25
    assert last <= m.latency_ms < last + 25  # not when anything got round to reading the last of 800 events
    assert m.output_tokens == 802 and m.input_tokens == 11


def test_check_finds_a_model_by_its_alias_and_warns_of_its_retirement_without_spending_a_token():
    from datetime import date

    from benchmarking.benchmark_runner import PROVIDERS
    from benchmarking.check import check_providers
    from benchmarking.settings.load import load_settings

    with WireServer() as server:
        server.model_list = lambda path: {"data": [{"id": "claude-haiku-4-5-20251001", "type": "model",
                                                    "retires_at": "2027-01-20T00:00:00Z"}], "has_more": False}
        settings = load_settings(prompt="hi", builtin=[(n, m) for n, _, m in PROVIDERS], provider_selection="anthropic",
                                 model_overrides=["anthropic=claude-haiku-4-5"],
                                 environ={"ANTHROPIC_API_KEY": FAKE_KEY, "ANTHROPIC_BASE_URL": server.url + "/v1"})
        lines = check_providers(settings, today=date(2026, 12, 7))
        assert server.served == []  # no message was sent
    assert [(line.ok, line.warning) for line in lines] == [(True, False), (True, True)]
    assert lines[0].text == "anthropic: key set (ANTHROPIC_API_KEY), model claude-haiku-4-5 is listed"
    assert "claude-haiku-4-5 shuts down on 2027-01-20 (in 44 days)" in lines[1].text


def test_the_usage_of_cache_reads_and_writes_and_of_an_hour_of_writes():
    from benchmarking.providers.dialects import messages

    problems: list[str] = []
    usage = {"input_tokens": 2048, "cache_read_input_tokens": 1800, "cache_creation_input_tokens": 248,
             "cache_creation": {"ephemeral_1h_input_tokens": 100, "ephemeral_5m_input_tokens": 148},
             "output_tokens": 503}
    counts = messages.tokens(usage, problems)
    assert (counts.input_tokens, counts.cached_tokens, counts.cache_write_tokens, counts.cache_write_1h_tokens,
            counts.output_tokens) == (4096, 1800, 248, 100, 503) and problems == []
    # A part that is no count leaves the whole empty too: no bill may rest on it.
    counts = messages.tokens({**usage, "cache_read_input_tokens": -5}, problems)
    assert (counts.input_tokens, counts.cached_tokens) == (None, None) and len(problems) == 1


def test_an_event_named_error_is_an_error_whatever_its_data_says():
    body = (FIXTURES / "text.sse").read_bytes().replace(b"event: message_delta", b"event: error")
    with WireServer() as server:
        server.reply(Reply(sse_parts(body)))
        m = measure(server)
    assert (m.success, m.error_type) == (False, "server") and m.response_text == "Hello there!"


def test_pings_do_not_hold_the_request_past_its_timeout():
    import time

    import anthropic  # noqa: F401  (imported before the clock: it takes seconds on a cold machine)

    head = (FIXTURES / "text.sse").read_bytes().split(b"\n\n")[0] + b"\n\n"  # message_start
    with WireServer() as server:
        server.reply(Reply([(0.0, head)] + [(0.05, b'event: ping\ndata: {"type": "ping"}\n\n')] * 60))  # 3 s
        began = time.perf_counter()
        m = measure(server, timeout_s=0.5)
        elapsed = time.perf_counter() - began
    assert (m.success, m.error_type, m.ttft_ms) == (False, "timeout", None)
    assert elapsed < 2.0


def test_every_error_type_inside_a_stream_is_typed_as_its_http_twin():
    from benchmarking.providers.dialects import messages
    from benchmarking.providers.failures import kind_for_status

    for name, status in messages.ERROR_STATUS.items():
        body = (FIXTURES / "error_api.sse").read_bytes().replace(b'"api_error"', f'"{name}"'.encode())
        with WireServer() as server:
            server.reply(Reply(sse_parts(body)))
            m = measure(server)
        assert (m.success, m.error_type, m.http_status) == (False, kind_for_status(status), None), name
        assert m.error_message.startswith(f"HTTP 200 carrying error {name}: ")


def test_a_whole_message_to_a_stream_request_is_a_bad_response_that_keeps_its_text():
    entry = next(e for e in MANIFEST if e["name"] == "body_text")
    with WireServer() as server:
        server.reply(fixture_reply(entry))
        m = measure(server)
    assert (m.success, m.error_type) == (False, "bad_response") and "plain JSON" in m.error_message
    assert m.response_text == "Hi! My name is Claude." and (m.input_tokens, m.output_tokens) == (2095, 503)


@pytest.mark.parametrize("api", ["messages", "chat_completions"])
def test_half_a_character_in_an_answer_is_stored_as_a_replacement_character_never_a_crash(api, tmp_path):
    from benchmarking.storage.sqlite import SQLiteStorage
    from test_wire_truth import USAGE, chunk, measure as measure_chat, stream

    with WireServer() as server:
        if api == "messages":
            body = (FIXTURES / "text.sse").read_bytes().replace(b'"text":"!"', b'"text":"!\\ud800"')
            server.reply(Reply(sse_parts(body)))
            m = measure(server)
        else:
            server.reply(stream(chunk({"content": "Hello there!\ud800"}, "stop"), chunk(None, usage=USAGE)))
            m = measure_chat(server, "openai")
    assert m.success and m.response_text == "Hello there!\ufffd"
    from datetime import datetime, timezone
    from uuid import uuid4

    from test_storage_sqlite import run_info

    with SQLiteStorage(tmp_path / "b.db") as storage:
        run = run_info()
        storage.create_run(run)
        storage.save_result(run.id, uuid4(), datetime.now(timezone.utc), m)
        assert storage.read_results(run.id)[0].measurement.response_text == "Hello there!\ufffd"


def test_an_endpoint_that_speaks_messages_is_measured_through_the_anthropic_sdk():
    from benchmarking.providers.custom_provider import call_custom

    with WireServer() as server:
        server.reply(fixture_reply(MANIFEST[0]))
        settings = settings_for(At(server.url + "/v1"), "litellm", api="messages", key_env=None)
        m = call_custom("hello", "claude-via-proxy", settings)
        served = server.served[0]
    assert (m.success, m.api, m.provider, m.response_text) == (True, "messages", "litellm", "Hello there!")
    assert served.path == "/v1/messages" and served.body["model"] == "claude-via-proxy"


def test_cache_reads_and_both_kinds_of_writes_are_priced_apart():
    from decimal import Decimal

    with WireServer() as server:
        server.reply(fixture_reply(next(e for e in MANIFEST if e["name"] == "cache_reads_and_writes")))
        m = measure(server)
    # claude-haiku-4-5 at $1 / $5 per 1M: 2048 uncached + 1800 read at 0.1 + 148 written for 5 minutes at 1.25
    # + 100 written for an hour at 2, and 503 output.
    assert m.cost_usd == Decimal("0.005128") and m.cost_source == "pricing"
    assert (m.price_cached_input_per_mtok, m.price_cache_write_per_mtok) == (Decimal("0.10"), Decimal("1.25"))


def test_a_stream_cut_after_message_start_is_incomplete_not_an_empty_answer():
    start = {"type": "message_start", "message": {"id": "msg_cut", "type": "message", "role": "assistant",
                                                  "content": [], "model": "m", "stop_reason": None,
                                                  "usage": {"input_tokens": 10, "output_tokens": 1}}}
    body = f"event: message_start\ndata: {json.dumps(start)}\n\n".encode()
    with WireServer() as server:
        server.reply(Reply(sse_parts(body)))
        m = measure(server)
    assert not m.success and m.error_type == "incomplete" and "message_stop" in m.error_message
