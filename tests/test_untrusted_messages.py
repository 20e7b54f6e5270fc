"""Property-based tests (hypothesis): hostile and garbage Messages streams, read into rows.

Whatever a server that claims to speak Anthropic's Messages API sends (events out of order, fields of the wrong type,
numbers no count can be, error events of any shape, bytes that are no JSON, a stream cut anywhere), the answer is
read into a Measurement without an exception, with every number bounded, and a success only where the API's own end
(message_stop, a stop_reason) and some output came.
"""

from __future__ import annotations

from datetime import datetime, timezone
import json

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from benchmarking.providers.answer import KEPT_CHARS, MAX_NAME_CHARS
from benchmarking.providers.anthropic_provider import PRICING
from benchmarking.providers.dialects import messages
from benchmarking.providers.numbers import MAX_COUNT
from benchmarking.providers.outcome import Attempt, measurement_of
from benchmarking.providers.reader import AnswerReader
from benchmarking.providers.wire import WireRecord

from conftest import settings_for
from test_wire_messages import At, measure
from wire_server import Reply, WireServer, sse_parts

NUMBERS = st.one_of(st.integers(min_value=-10**30, max_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, -1, 2**31, 2**63, MAX_COUNT, MAX_COUNT + 1, 10**19]))
TEXT = st.one_of(st.text(max_size=20), st.sampled_from(["", "\ud800", "\x00", "\r\n", "data: x", "event: error"]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)
EVENT_TYPES = ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
               "message_delta", "message_stop", "error", "unknown_future_event"]
DELTA_TYPES = ["text_delta", "thinking_delta", "input_json_delta", "signature_delta", "citations_delta"]
USAGE_KEYS = ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
              "cache_creation", "output_tokens_details"]
USAGE = st.dictionaries(st.sampled_from(USAGE_KEYS), st.one_of(NUMBERS, NUMBERS, VALUES,
                        st.fixed_dictionaries({"ephemeral_1h_input_tokens": NUMBERS, "thinking_tokens": NUMBERS})),
                        max_size=6)


@st.composite
def payloads(draw: st.DrawFn) -> object:
    """One event's data: mostly the API's shapes with values of any kind, now and then anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(VALUES)
    kind = draw(st.sampled_from(EVENT_TYPES))
    payload: dict[str, object] = {"type": kind}
    if kind == "content_block_delta":
        delta_type = draw(st.sampled_from(DELTA_TYPES))
        field = {"text_delta": "text", "thinking_delta": "thinking"}.get(delta_type, "partial_json")
        payload["delta"] = {"type": delta_type, field: draw(st.one_of(TEXT, TEXT, VALUES))}
    elif kind == "message_start":
        payload["message"] = {"id": draw(st.one_of(TEXT, VALUES)), "usage": draw(st.one_of(USAGE, USAGE, VALUES))}
    elif kind == "message_delta":
        payload["delta"] = {"stop_reason": draw(st.one_of(st.sampled_from(["end_turn", "max_tokens", "refusal",
                                                                            "tool_use"]), VALUES))}
        payload["usage"] = draw(st.one_of(USAGE, VALUES))
    elif kind == "error":
        payload["error"] = draw(st.one_of(st.fixed_dictionaries({"type": st.sampled_from(
            list(messages.ERROR_STATUS) + ["new_error"]), "message": TEXT}), VALUES))
    return payload


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    events = draw(st.lists(payloads(), max_size=12))
    if draw(st.booleans()):  # inside a well-formed answer, which what comes between may break or not
        events = [{"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 5}}},
                  {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}}, *events,
                  {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
                  {"type": "message_stop"}]
    parts = []
    for payload in events:
        name = payload.get("type") if isinstance(payload, dict) else draw(st.sampled_from(EVENT_TYPES))
        style = draw(st.sampled_from(["named"] * 6 + ["unnamed", "junk", "deep", "digits"]))
        data = json.dumps(payload, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        if style == "junk":
            data = draw(st.binary(max_size=30)).replace(b"\n", b" ").replace(b"\r", b" ")
        elif style == "deep":
            depth = draw(st.integers(1, 5000))
            data = b'{"type": "message_delta", "usage": ' + b"[" * depth + b"]" * depth + b"}"
        elif style == "digits":
            data = b'{"type": "message_delta", "usage": {"output_tokens": ' + b"9" * draw(st.integers(1, 5000)) + b"}}"
        head = b"event: " + str(name).encode("utf-8", "replace") + b"\n" if style != "unnamed" else b""
        parts.append(head + b"data: " + data + b"\n\n")
    body = b"".join(parts)
    return body[:draw(st.integers(0, len(body)))] if draw(st.integers(0, 4)) == 0 else body


def read(body: bytes, stream: bool = True):
    """The body, as the wire would hold it, read into a Measurement the way a request's is."""
    sim = At("http://127.0.0.1:9")
    provider = settings_for(sim, "anthropic", stream=stream)
    record = WireRecord(sent_at=0.0, deadline=60.0, status=200, headers={"content-type": "text/event-stream"},
                        pieces=[body], arrived=[1.0], last_byte_at=1.0)
    answer = AnswerReader(stream, messages).answer(record)
    failure = messages.judge(record, answer, None, provider, "claude-haiku-4-5", "http://127.0.0.1:9")
    return answer, measurement_of("anthropic", "claude-haiku-4-5", provider, PRICING, "prices.py", "endpoint",
                                  datetime.now(timezone.utc), 1, Attempt(record, answer, failure), None, messages)


def assert_bounded(m) -> None:
    for name in ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens"):
        value = getattr(m, name)
        assert value is None or (isinstance(value, int) and 0 <= value <= MAX_COUNT), (name, value)
    if m.input_tokens is not None:
        assert (m.cached_tokens or 0) <= m.input_tokens and (m.cache_write_tokens or 0) <= m.input_tokens
    assert m.finish_reason is None or len(m.finish_reason) <= MAX_NAME_CHARS
    assert m.request_id is None or len(m.request_id) <= MAX_NAME_CHARS
    assert len(m.response_text or "") <= KEPT_CHARS
    assert m.error_message is None or ("\n" not in m.error_message and len(m.error_message) <= 500)
    assert m.success == (m.error_type is None)
    assert all("\n" not in w for w in m.warnings)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_any_messages_stream_is_read_into_a_bounded_row_never_an_exception(body):
    answer, m = read(body)
    assert_bounded(m)
    if m.success:
        # Only what the API calls an end: message_stop after a stop_reason, and some output before it.
        assert answer.done and answer.finish_reason is not None and answer.has_output
        assert b"message_stop" in body and m.ttft_ms <= m.latency_ms


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.one_of(VALUES, st.fixed_dictionaries({"type": st.sampled_from(["message", "error"]),
                                                "content": st.one_of(VALUES, st.lists(st.fixed_dictionaries({
                                                    "type": st.sampled_from(["text", "thinking", "tool_use"]),
                                                    "text": VALUES, "thinking": VALUES, "input": VALUES}),
                                                    max_size=3)),
                                                "usage": st.one_of(USAGE, VALUES), "stop_reason": VALUES,
                                                "error": VALUES})))
def test_any_whole_body_is_read_into_a_bounded_row_never_an_exception(body):
    data = json.dumps(body).encode("utf-8", "surrogatepass")
    answer, m = read(data, stream=False)
    assert_bounded(m)
    if m.success:
        assert isinstance(body, dict) and body.get("type") == "message" and answer.has_output


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])
@given(bodies())
def test_garbage_through_the_real_sdk_is_a_row_too(body):
    with WireServer() as server:
        server.reply(Reply(sse_parts(body) or [(0.0, b"")]))
        m = measure(server, timeout_s=5.0)
    assert_bounded(m)
    assert m.success == (m.error_type is None) and m.api == "messages"


def test_a_hundred_thousand_usages_of_new_names_cost_what_one_does():
    import time

    events = b"".join(b'event: message_delta\ndata: {"type": "message_delta", "usage": {"output_tokens": %d, '
                      b'"k%d": 1, "l%d": 2}}\n\n' % (i, i, i) for i in range(100_000))
    body = (b'event: message_start\ndata: {"type": "message_start", "message": {"id": "m", "usage": '
            b'{"input_tokens": 3}}}\n\n'
            b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"type": "text_delta", '
            b'"text": "x"}}\n\n' + events
            + b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}\n\n'
              b'event: message_stop\ndata: {"type": "message_stop"}\n\n')
    began = time.process_time()
    answer, m = read(body)
    assert m.success and (m.input_tokens, m.output_tokens) == (3, 99_999)
    assert set(answer.usage) == {"input_tokens", "output_tokens"}
    assert time.process_time() - began < 30  # linear: a quadratic merge took minutes
