"""Every stream real providers send is stored as what it was: recorded wire shapes replayed through the real SDKs.

The fixtures (tests/fixtures/wire/, with their sources in manifest.json) are response bodies of OpenAI, Groq,
Together, OpenRouter, vLLM, llama.cpp, Ollama and DeepSeek taken from public recordings; WireServer replays them
byte for byte on loopback, and each is measured through the SDK its provider is used with.
"""

from __future__ import annotations

from decimal import Decimal
import json
import time

import pytest

from benchmarking.providers.custom_provider import call_custom
from benchmarking.providers.groq_provider import call_groq
from benchmarking.providers.openai_provider import call_openai
from benchmarking.providers.openrouter_provider import call_openrouter
from benchmarking.providers.together_provider import call_together

from conftest import FAKE_KEY, settings_for
from wire_server import Reply, WireServer, fixture_reply, manifest, sse_parts

# (call function, path the SDK is given as its base URL) by the provider a recording came from
ROUTES = {
    "openai": (call_openai, "/v1"),
    "groq": (call_groq, ""),
    "together": (call_together, ""),
    "openrouter": (call_openrouter, "/api/v1"),
    "custom": (call_custom, "/v1"),
}


def route_for(entry: dict) -> str:
    provider = entry["provider"].lower()
    for name in ("openrouter", "groq", "together"):
        if provider.startswith(name):
            return name
    return "openai" if provider.startswith(("openai", "azure")) else "custom"


class At:
    """What settings_for needs of a simulator: a base URL per provider."""

    def __init__(self, url: str, path: str) -> None:
        self._base = url + path

    def base_url(self, provider: str) -> str:
        return self._base


def measure(server: WireServer, route: str, **changes):
    call, path = ROUTES[route]
    settings = settings_for(At(server.url, path), "openai" if route == "custom" else route, **changes)
    if route == "custom":
        settings = settings.__class__(**{**settings.__dict__, "name": "vllm", "key_env": None})
    return call("hello", "m", settings)


@pytest.mark.parametrize("entry", manifest(), ids=lambda e: e["name"])
def test_every_recorded_shape_is_stored_as_what_it_was(entry):
    expect = entry["expect"]
    with WireServer() as server:
        server.reply(fixture_reply(entry))
        m = measure(server, route_for(entry), stream=entry["stream"])
    assert (m.success, m.error_type) == (expect["success"], expect["error_type"]), m.error_message
    assert m.http_status == expect["http_status"]
    assert (m.response_text or "") == expect["text"] + (expect["refusal"] or "")
    assert m.finish_reason == expect["finish_reason"]
    for name in ("input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens"):
        assert getattr(m, name) == expect[name], name
    assert m.cost_usd == (Decimal(expect["cost_usd"]) if expect["cost_usd"] is not None else None)
    assert m.upstream_provider == expect["upstream_provider"]
    assert m.request_id == expect["request_id"]
    if expect["success"] and entry["stream"]:
        assert 0 < m.ttft_ms <= m.latency_ms
        # Decode speed exists exactly where tokens were decoded over a measurable window (on a starved machine, the
        # parts of a replay can arrive together).
        hidden = 0 if expect["reasoning_streamed"] else (m.reasoning_tokens or 0)
        decoded = expect["token_events"] > 1 and (m.output_tokens or 0) - hidden > 1 and m.latency_ms > m.ttft_ms
        assert (m.tokens_per_second is not None) == decoded
    if not expect["success"]:
        assert m.tokens_per_second is None and m.error_message


def stream(*events: dict | str, done: bool = True, gap_s: float = 0.005) -> Reply:
    """A stream of the given events (dicts as `data:` JSON, strings as they are), each after gap_s."""
    body = b"".join(
        (e.encode() if isinstance(e, str) else b"data: " + json.dumps(e).encode() + b"\n\n") for e in events
    )
    return Reply(sse_parts(body + (b"data: [DONE]\n\n" if done else b""), gap_s=gap_s, first_s=gap_s))


def chunk(delta: dict | None = None, finish: str | None = None, **extra) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-x1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices,
            **extra}


USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_a_stream_that_simply_ends_is_incomplete_and_keeps_what_came(route):
    with WireServer() as server:
        server.reply(stream(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello"}),
                            chunk({"content": " there"}), chunk(None, usage=USAGE), done=False))
        m = measure(server, route)
    assert (m.success, m.error_type) == (False, "incomplete")
    assert m.error_message == "stream ended before the answer was complete"
    assert m.response_text == "Hello there"
    assert m.ttft_ms is not None and m.latency_ms >= m.ttft_ms
    assert (m.input_tokens, m.output_tokens) == (5, 3)  # the usage that came is kept
    assert m.tokens_per_second is None  # nothing is derived from an answer that did not complete


ERRORS_IN_200 = {
    # shape name: (events, expected error_type, expected http_status)
    "openrouter rate limit": ([chunk({"content": "Hi"}),
                               {"error": {"code": 429, "message": "Rate limit exceeded upstream"},
                                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}],
                              "rate_limit", 429),
    "groq event: error": ([chunk({"content": "Hi"}),
                           'event: error\ndata: {"error": {"message": "Service unavailable", "type": "server_error",'
                           ' "status_code": 503}}\n\n'], "server", 503),
    "vllm object error": ([chunk({"content": "Hi"}),
                           {"object": "error", "message": "out of memory", "type": "InternalServerError",
                            "code": 500}], "server", 500),
    "openai error, no status": ([chunk({"content": "Hi"}),
                                 {"error": {"message": "The server had an error", "type": "server_error"}}],
                                "server", None),
    "bad request code": ([{"error": {"message": "context too long", "code": "context_length_exceeded"}}],
                         "bad_request", None),
    "auth status": ([{"error": {"message": "key revoked", "code": 401}}], "auth", 401),
}


@pytest.mark.parametrize("route", ["openai", "groq", "together"])
@pytest.mark.parametrize("shape", sorted(ERRORS_IN_200))
def test_an_error_inside_an_http_200_is_a_failure_typed_by_its_own_code(route, shape):
    events, error_type, status = ERRORS_IN_200[shape]
    with WireServer() as server:
        server.reply(stream(*events, done=False))
        m = measure(server, route)
    assert (m.success, m.error_type, m.http_status) == (False, error_type, status), m.error_message
    assert "HTTP 200 carrying error" in m.error_message
    assert m.request_id == "chatcmpl-x1" or m.request_id is None and not isinstance(events[0], dict) \
        or "choices" not in events[0]


@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_an_error_inside_a_200_is_retried_like_its_http_twin(route, monkeypatch):
    from benchmarking.providers import client

    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.01)
    busy = stream(chunk({"role": "assistant", "content": ""}),
                  {"error": {"code": 429, "message": "slow down"}}, done=False)
    fine = stream(chunk({"content": "ok"}, "stop"), chunk(None, usage=USAGE))
    with WireServer() as server:
        server.reply(busy, fine)
        m = measure(server, route, retries=2)
        assert len(server.served) == 2
    assert (m.success, m.attempts, m.response_text) == (True, 2, "ok")


@pytest.mark.parametrize("body, error_type, status", [
    ({"error": {"code": 502, "message": "upstream failed"}}, "server", 502),
    ({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400}, "bad_request", 400),
    ({"id": "chatcmpl-y", "object": "chat.completion", "choices": [], "usage": USAGE}, "empty_answer", None),
])
def test_error_objects_and_empty_bodies_in_a_plain_200_are_failures(body, error_type, status):
    reply = Reply([(0.005, json.dumps(body).encode())], headers={"content-type": "application/json"}, chunked=False)
    with WireServer() as server:
        server.reply(reply)
        m = measure(server, "openai", stream=False)
    assert (m.success, m.error_type, m.http_status) == (False, error_type, status)


def test_a_plain_json_answer_to_a_stream_request_is_a_bad_response_that_keeps_its_text():
    body = {"id": "chatcmpl-z", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": USAGE}
    reply = Reply([(0.005, json.dumps(body).encode())], headers={"content-type": "application/json"}, chunked=False)
    with WireServer() as server:
        server.reply(reply)
        m = measure(server, "openai")
    assert (m.success, m.error_type) == (False, "bad_response")
    assert "plain JSON" in m.error_message and m.response_text == "Hi" and m.output_tokens == 3


@pytest.mark.parametrize("events", [
    [chunk({"role": "assistant", "content": ""})],
    [],
    [chunk({"role": "assistant", "content": ""}, "stop"), chunk(None, usage=USAGE)],
], ids=["role only", "done only", "finish without output"])
@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_a_stream_with_no_output_is_an_empty_answer(route, events):
    with WireServer() as server:
        server.reply(stream(*events))
        m = measure(server, route)
    assert (m.success, m.error_type) == (False, "empty_answer")
    assert m.ttft_ms is None and m.latency_ms is None


@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_a_refusal_is_output_with_times_and_text(route):
    with WireServer() as server:
        server.reply(stream(chunk({"role": "assistant", "content": None, "refusal": ""}),
                            chunk({"refusal": "I can't "}), chunk({"refusal": "help with that."}),
                            chunk({}, "stop"), chunk(None, usage=USAGE)))
        m = measure(server, route)
        sent = server.served[0].part_sent_at
        received = server.served[0].received_at
    assert m.success and m.response_text == "I can't help with that."
    assert m.ttft_ms == m.answer_ttft_ms and m.latency_ms >= m.ttft_ms
    assert m.ttft_ms >= (sent[1] - received) * 1000  # the refusal's first part, not the role chunk


@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_a_tool_call_sets_the_answer_ttft_too(route):
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    with WireServer() as server:
        server.reply(stream(chunk({"role": "assistant", "content": None}),
                            chunk({"reasoning": "think"}),
                            chunk({"tool_calls": [call]}),
                            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}, "tool_calls"),
                            chunk(None, usage=USAGE), gap_s=0.04))
        m = measure(server, route)
        sent, received = server.served[0].part_sent_at, server.served[0].received_at
    assert m.success and m.finish_reason == "tool_calls"
    assert m.ttft_ms < m.answer_ttft_ms  # reasoning came first
    assert (sent[2] - received) * 1000 <= m.answer_ttft_ms < (sent[3] - received) * 1000


def test_hidden_reasoning_is_not_counted_as_decoded_after_the_first_visible_token():
    # A reasoning model: 60 tokens of hidden reasoning, then 11 visible tokens over 10 gaps of 10 ms.
    usage = {"prompt_tokens": 5, "completion_tokens": 71, "total_tokens": 76,
             "completion_tokens_details": {"reasoning_tokens": 60}}
    events = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": f"w{i} "}) for i in range(11)]
    with WireServer() as server:
        server.reply(stream(*events, chunk({}, "stop"), chunk(None, usage=usage), gap_s=0.02))
        m = measure(server, "openai")
    assert m.success and (m.output_tokens, m.reasoning_tokens) == (71, 60)
    assert m.tokens_per_second == pytest.approx((71 - 60 - 1) / ((m.latency_ms - m.ttft_ms) / 1000))
    assert m.tokens_per_second < 200  # 10 tokens in ~200 ms; counting the hidden 60 would say ~350


def test_streamed_reasoning_counts_as_decoded():
    usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9,
             "completion_tokens_details": {"reasoning_tokens": 2}}
    with WireServer() as server:
        server.reply(stream(chunk({"reasoning_content": "a"}), chunk({"reasoning_content": "b"}),
                            chunk({"content": "c"}), chunk({"content": "d"}, "stop"), chunk(None, usage=usage),
                            gap_s=0.02))
        m = measure(server, "openai")
    assert m.tokens_per_second == pytest.approx(3 / ((m.latency_ms - m.ttft_ms) / 1000))


def test_openrouter_bring_your_own_key_cost_is_the_fee_plus_the_upstream_charge():
    usage = {**USAGE, "cost": 0.0001, "is_byok": True,
             "cost_details": {"upstream_inference_cost": 0.0360795}}
    with WireServer() as server:
        server.reply(stream(chunk({"content": "ok"}, "stop", provider="Amazon Bedrock"),
                            chunk(None, usage=usage, provider="Amazon Bedrock")))
        m = measure(server, "openrouter")
    assert m.cost_usd == Decimal("0.0361795") and m.cost_source == "provider"
    assert m.upstream_provider == "Amazon Bedrock"


@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_timeout_bounds_the_whole_request_even_while_keep_alives_keep_coming(route):
    keep_alives = [(0.05, b": OPENROUTER PROCESSING\n\n")] * 60  # 3 s of comments
    with WireServer() as server:
        server.reply(Reply(keep_alives))
        began = time.perf_counter()
        m = measure(server, route, timeout_s=0.5)
        elapsed = time.perf_counter() - began
    assert (m.success, m.error_type) == (False, "timeout")
    assert elapsed < 2.0  # 0.5 s and the set-up around it; it took the whole 3 s before


@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_every_time_goes_to_its_own_event_whatever_the_sdk_skips(route):
    # Named events and comments: openai yields named events as chunks, groq yields them as {"data", "event"}
    # objects, together skips them; the times must not shift onto other events.
    # 40 ms between the parts that matter: a shift onto a neighbour would show, even on a starved machine.
    parts = [
        (0.01, b": keep-alive\n\n"),
        (0.01, b"event: ping\ndata: {\"type\": \"ping\"}\n\n"),
        (0.01, b"data: " + json.dumps(chunk({"role": "assistant", "content": ""})).encode() + b"\n\n"),
        (0.04, b": still there\n\n"),
        (0.04, b"data: " + json.dumps(chunk({"content": "first"})).encode() + b"\n\n"),
        (0.04, b"event: metrics\ndata: {\"queue_ms\": 3}\n\n"),
        (0.04, b"data: " + json.dumps(chunk({"content": " last"}, "stop")).encode() + b"\n\n"),
        (0.04, b"data: " + json.dumps(chunk(None, usage=USAGE)).encode() + b"\n\n"),
        (0.0, b"data: [DONE]\n\n"),
    ]
    with WireServer() as server:
        server.reply(Reply(parts))
        m = measure(server, route)
        served = server.served[0]
    first, last = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (4, 6))
    assert m.success and m.response_text == "first last"
    assert first <= m.ttft_ms < first + 30  # the next part came 40 ms later: a shift would show
    assert last <= m.latency_ms < last + 30  # the usage chunk came 40 ms after the last token


def test_a_key_echoed_in_an_answer_or_request_id_is_scrubbed_in_any_form():
    from urllib.parse import quote

    from benchmarking.settings.values import Secret
    from conftest import CANARY_KEY

    key = CANARY_KEY  # changes when URL-encoded, so that the encoded echo is a form of its own
    echoes = f"plain {key} upper {key.upper()} cut {key[3:18]} encoded {quote(key, safe='')}"
    with WireServer() as server:
        server.reply(Reply(sse_parts(b"data: " + json.dumps(chunk({"content": echoes}, "stop")).encode()
                                     + b"\n\ndata: [DONE]\n\n"), headers={"content-type": "text/event-stream",
                                                                          "x-request-id": f"req-{key[5:20]}"}))
        m = measure(server, "openai", api_key=Secret(key))
    assert m.response_text == "plain **** upper **** cut **** encoded ****"
    assert m.request_id == "req-****"


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """A WireServer on https with a certificate for 127.0.0.1 that the clients are made to trust."""
    import ssl

    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # the SDKs' transports read it
    with WireServer(tls=server_context) as server:
        yield server


@pytest.mark.parametrize("route", ["openai", "groq", "together"])
def test_https_answers_are_timed_at_the_wire_like_plain_ones(tls_server, route):
    parts = [(0.02, b"data: " + json.dumps(chunk({"role": "assistant", "content": ""})).encode() + b"\n\n"),
             (0.04, b"data: " + json.dumps(chunk({"content": "first"})).encode() + b"\n\n")]
    # then, after a pause, a burst of 800 chunks: the SDKs take 40-60 ms to parse them
    parts += [(0.05 if i == 0 else 0.0, b"data: " + json.dumps(chunk({"content": " x"})).encode() + b"\n\n")
              for i in range(800)]
    parts += [(0.0, b"data: " + json.dumps(chunk({"content": " last"}, "stop")).encode() + b"\n\n"),
              (0.08, b"data: " + json.dumps(chunk(None, usage=USAGE)).encode() + b"\n\ndata: [DONE]\n\n")]
    tls_server.reply(Reply(parts))
    m = measure(tls_server, route)
    served = tls_server.served[0]
    first, last = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (1, len(parts) - 2))
    assert m.success and m.endpoint.startswith("https://") and m.response_text.endswith(" x last")
    assert first <= m.ttft_ms < first + 25
    assert last <= m.latency_ms < last + 25  # not when the SDK got round to the last of 800 chunks


def test_every_dialect_module_defines_what_a_dialect_is_and_every_provider_names_one():
    """A next API is one module in providers/dialects/: what it must define is Dialect's list, checked here."""
    import importlib
    import pkgutil

    from benchmarking import providers
    from benchmarking.providers import dialects

    wanted = {name for name in dialects.Dialect.__annotations__} | {
        name for name, value in vars(dialects.Dialect).items() if callable(value) and not name.startswith("_")}
    assert {"REHEARSAL_STREAM", "EventReader", "request", "read_body", "judge", "tokens"} <= wanted
    names = [info.name for info in pkgutil.iter_modules(dialects.__path__)]
    assert "chat_completions" in names
    assert set(names) - {"common", "tool_calls"} <= set(dialects.DIALECTS.values())  # what dialects share
    for name in set(names) & set(dialects.DIALECTS.values()):
        module = importlib.import_module(f"{dialects.__name__}.{name}")
        assert wanted <= set(vars(module)), f"dialect {name} lacks {sorted(wanted - set(vars(module)))}"
    spoken = {importlib.import_module(f"{providers.__name__}.{info.name}").WIRE.dialect.__name__
              for info in pkgutil.iter_modules(providers.__path__) if info.name.endswith("_provider")}
    assert f"{dialects.__name__}.chat_completions" in spoken
    assert spoken <= {f"{dialects.__name__}.{name}" for name in names}
