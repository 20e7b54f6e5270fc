"""Property-based tests (hypothesis): whatever a Gemini stream holds, it is read into an answer and judged, never a
traceback: token counts are sane whole numbers or empty, times run forward, and a success has output and a finish."""

from __future__ import annotations

from datetime import datetime, timezone
import json

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from benchmarking.measurement import Measurement
from benchmarking.providers.dialects import generate_content
from benchmarking.providers.gemini_provider import PRICING
from benchmarking.providers.outcome import Attempt, measurement_of
from benchmarking.providers.sse import SseEvent, SseSplitter

from conftest import FAKE_KEY, settings_for

NUMBERS = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 2**31, 10**9, 10**9 + 1]))
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["\ud800", "\x00", "\r\n", FAKE_KEY, "STOP", "SAFETY"]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
ANY = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)
PART = st.one_of(st.fixed_dictionaries({"text": st.one_of(TEXT, TEXT, ANY)},
                                       optional={"thought": st.one_of(st.booleans(), ANY)}),
                 st.fixed_dictionaries({"functionCall": st.one_of(st.just({"name": "f", "args": {}}), ANY)}), ANY)
REASON = st.one_of(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "MALFORMED_FUNCTION_CALL",
                                    "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"]), ANY)
CANDIDATE = st.one_of(st.fixed_dictionaries(
    {"content": st.one_of(st.fixed_dictionaries({"parts": st.one_of(st.lists(PART, max_size=3), ANY)}), ANY)},
    optional={"finishReason": REASON, "index": ANY}), ANY)
USAGE = st.one_of(st.dictionaries(st.sampled_from(["promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
                                                   "cachedContentTokenCount", "totalTokenCount"]), NUMBERS), ANY)
RETRY_INFO = st.one_of(st.lists(st.fixed_dictionaries(
    {"@type": st.just("type.googleapis.com/google.rpc.RetryInfo"),
     "retryDelay": st.one_of(st.sampled_from(["19s", "0.5s", "1e9s", "-1s", "nan", "s", "9" * 30 + "s"]), ANY)}),
    max_size=2), ANY)
CHUNK = st.one_of(
    st.fixed_dictionaries({"candidates": st.one_of(st.lists(CANDIDATE, max_size=2), ANY)},
                          optional={"usageMetadata": USAGE, "responseId": st.one_of(TEXT, ANY),
                                    "promptFeedback": st.one_of(st.fixed_dictionaries({"blockReason": REASON}), ANY),
                                    "error": st.one_of(st.fixed_dictionaries(
                                        {"code": st.one_of(NUMBERS, ANY), "status": st.one_of(TEXT, ANY),
                                         "message": st.one_of(TEXT, ANY)}, optional={"details": RETRY_INFO}), ANY)}),
    ANY)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A stream's bytes: JSON chunks, now and then one that is not JSON, framed with LF or CRLF, cut anywhere."""
    end = draw(st.sampled_from([b"\n\n", b"\r\n\r\n"]))
    events = []
    for payload in draw(st.lists(CHUNK, max_size=5)):
        if draw(st.integers(0, 9)) == 0:
            events.append(b"data: " + draw(st.binary(max_size=20)) + end)
        else:
            events.append(b"data: " + json.dumps(payload).encode("utf-8", "surrogatepass") + end)
    body = b"".join(events)
    return body[:draw(st.integers(0, len(body)))] if draw(st.booleans()) else body


def read(body: bytes):
    reader = generate_content.EventReader()
    splitter = SseSplitter()
    for i in range(0, len(body), 7):  # pieces as a socket might give them, each a millisecond later
        reader.read(splitter.feed(body[i:i + 7], 1.0 + i / 1000))
    reader.read(splitter.close())
    return reader.answer()


@given(bodies())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_gemini_stream_is_read_and_judged_never_a_traceback(body):
    provider = settings_for(type("At", (), {"base_url": lambda self, p: "http://127.0.0.1:9"})(), "gemini")
    answer = read(body)
    failure = generate_content.judge(None, answer, None, provider, "gemini-3.5-flash-lite", "http://127.0.0.1:9")
    if answer.first_output_at is not None:
        assert answer.first_output_at <= answer.last_output_at
        assert answer.first_answer_at is None or answer.first_answer_at >= answer.first_output_at
    if failure is None:
        assert answer.has_output and answer.finish_reason in ("stop", "length")
    else:
        assert failure.error_type in ("bad_request", "bad_response", "server", "rate_limit", "auth", "not_found",
                                      "empty_answer", "incomplete")
        assert "\n" not in failure.message and FAKE_KEY not in failure.message
        assert failure.retry_after_s is None or 0 <= failure.retry_after_s < 10**10
    m = measurement_of("gemini", "gemini-3.5-flash-lite", provider, PRICING, "gemini_prices.py", "http://127.0.0.1:9",
                       datetime.now(timezone.utc), 1, Attempt(None, answer, failure), None, generate_content)
    assert isinstance(m, Measurement) and m.success == (failure is None) and m.api == "generate_content"
    for count in (m.input_tokens, m.output_tokens, m.cached_tokens, m.reasoning_tokens):
        assert count is None or (isinstance(count, int) and 0 <= count <= 2 * 10**9)
    assert m.cached_tokens is None or m.input_tokens is None or m.cached_tokens <= m.input_tokens


@pytest.mark.parametrize("name", ["thoughts", "function_call"])
def test_a_recording_cut_at_any_byte_is_never_a_success_without_its_finish(name):
    from test_wire_gemini import GEMINI_FIXTURES

    body = (GEMINI_FIXTURES / f"{name}.sse").read_bytes()
    last = body.rstrip().rfind(b"data: ")
    for cut in range(0, len(body), 97):
        answer = read(body[:cut])
        provider = settings_for(type("At", (), {"base_url": lambda self, p: "http://127.0.0.1:9"})(), "gemini")
        failure = generate_content.judge(None, answer, None, provider, "m", "http://127.0.0.1:9")
        assert (failure is None) == (cut > last and answer.complete), cut
        if cut <= last:
            assert failure.error_type in ("incomplete", "empty_answer")


@pytest.mark.parametrize("usage, expected", [
    ({"promptTokenCount": 5, "candidatesTokenCount": 3}, (5, 3, 0, 0)),
    ({"promptTokenCount": 5, "candidatesTokenCount": 3, "thoughtsTokenCount": 4}, (5, 7, 0, 4)),
    ({"promptTokenCount": 5, "thoughtsTokenCount": 4}, (5, 4, 0, 4)),  # all thoughts so far
    ({"promptTokenCount": 5}, (5, None, 0, 0)),
    ({"promptTokenCount": 5, "candidatesTokenCount": -3, "thoughtsTokenCount": 4}, (5, None, 0, 4)),
    ({"promptTokenCount": 5, "candidatesTokenCount": 3, "cachedContentTokenCount": "many"}, (5, 3, None, 0)),
    ({"promptTokenCount": 5, "candidatesTokenCount": 3, "thoughtsTokenCount": 1.5}, (5, None, 0, None)),
    (None, (None, None, None, None)),
])
def test_a_count_gemini_leaves_out_is_0_and_one_that_makes_no_sense_is_empty(usage, expected):
    problems: list[str] = []
    counts = generate_content.tokens(usage, problems)
    assert (counts.input_tokens, counts.output_tokens, counts.cached_tokens, counts.reasoning_tokens) == expected
    assert bool(problems) == (usage is not None and any(not isinstance(v, int) or v < 0 for v in usage.values()))


@pytest.mark.parametrize("dialect", ["chat_completions", "generate_content"])
def test_a_lone_surrogate_escaped_in_an_answer_is_stored_as_whole_text(dialect):
    # JSON may escape half of a UTF-16 pair alone ("\ud800"); no UTF-8 text, and no database, can hold it.
    from test_wire_gemini import MODEL, gemini_server, measure as measure_gemini
    from test_wire_truth import measure as measure_chat
    from wire_server import Reply, WireServer, sse_parts

    text = r'x\ud800y \ud83d\ude00'
    if dialect == "chat_completions":
        body = ('data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "%s"}, "finish_reason": "stop"}]}'
                '\n\ndata: [DONE]\n\n' % text)
    else:
        body = ('data: {"candidates": [{"content": {"parts": [{"text": "%s"}]}, "finishReason": "STOP"}], '
                '"responseId": "r\\udfff"}\r\n\r\n' % text)
    with gemini_server(WireServer()) as server:
        server.answer_paths += ("/chat/completions",)
        server.reply(Reply(sse_parts(body.encode())))
        m = measure_chat(server, "openai") if dialect == "chat_completions" else measure_gemini(server, MODEL)
    assert m.success and m.response_text == "x\ufffdy \U0001F600"
    assert (m.request_id or "").encode("utf-8")  # every stored string is UTF-8 text
