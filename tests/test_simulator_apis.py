"""The simulator's native APIs through the real SDKs: Anthropic Messages (anthropic), Gemini generate_content
(google-genai) and OpenAI Responses (openai). Each SDK parses every event; text and usage come out as the profile
says; faults raise the SDK's own errors; and the simulator's log of send times agrees with when the events arrive."""

from __future__ import annotations

import time

import anthropic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from hypothesis import HealthCheck, given, settings, strategies as st
import openai
import pytest

from benchmarking.simulator import ModelProfile, Simulator
from benchmarking.simulator.exchange import words
from benchmarking.workloads import tier_prompt

KEY = "sk-test-simulator-apis"
QUICK = dict(ttft_ms=20, itl_ms=2)


@pytest.fixture
def sim():
    with Simulator(profiles={}) as simulator:
        yield simulator


def claude(sim: Simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=sim.base_url("anthropic"), max_retries=0, timeout=10)


def gemini(sim: Simulator, version: str | None = None) -> genai.Client:
    options = genai_types.HttpOptions(base_url=sim.base_url("gemini"), api_version=version, timeout=10_000)
    return genai.Client(api_key=KEY, http_options=options)


def gpt(sim: Simulator) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=sim.base_url("openai"), max_retries=0, timeout=10)


def ask(text: str = "hello") -> list[dict]:
    return [{"role": "user", "content": text}]


# Anthropic Messages

def test_a_messages_stream_has_every_event_in_order_with_thinking_text_and_usage(sim):
    sim.set_profile("claude", ModelProfile(**QUICK, output_tokens=9, reasoning_tokens=4, tokens_per_chunk=2,
                                           input_tokens=300, cached_tokens=200, cache_write_tokens=60))
    with claude(sim).messages.stream(model="claude", max_tokens=100, messages=ask()) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == words(0, 4) and message.content[1].text == words(4, 9)
    assert message.content[0].signature  # a thinking block is signed, as Anthropic's are
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 9
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (40, 200, 60)
    (record,) = sim.requests_for("claude")
    assert record.api == "messages" and record.path == "/anthropic/v1/messages"
    assert record.chunk_count == 5 and record.cache_write_tokens == 60  # thinking 2+2, text 2+2+1
    # the answer starts with the third chunk: two gaps of 2 ms after the first thinking one
    assert record.first_token_at < record.first_answer_at and record.answer_ttft_ms >= 20 + 2 * 2
    assert record.authorization == f"Bearer {KEY}"  # anthropic 2.17.0 sends its key as a bearer token


def test_a_messages_create_is_one_body_cut_by_its_max_tokens(sim):
    sim.set_profile("claude", ModelProfile(**QUICK, output_tokens=12))
    message = claude(sim).messages.create(model="claude", max_tokens=5, messages=ask())
    assert message.stop_reason == "max_tokens" and message.content[0].text == words(0, 5)
    assert message.usage.output_tokens == 5 and message.usage.input_tokens == sim.log[0].prompt_tokens > 0


def test_a_prompt_marked_for_caching_is_written_then_read(sim):
    sim.set_profile("claude", ModelProfile(**QUICK, output_tokens=3))
    long = tier_prompt(2_000).text
    content = [{"type": "text", "text": long, "cache_control": {"type": "ephemeral"}}]
    first, second = (
        claude(sim).messages.create(model="claude", max_tokens=10, messages=[{"role": "user", "content": content}])
        for _ in range(2)
    )
    assert first.usage.cache_creation_input_tokens > 1_900 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens >= 1_024 and second.usage.cache_creation_input_tokens < 1_000
    total = [u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
             for u in (first.usage, second.usage)]
    assert total[0] == total[1] == sim.log[0].prompt_tokens


def test_the_anthropic_models_are_listed_and_looked_up(sim):
    sim.set_profile("claude", ModelProfile())
    client = claude(sim)
    assert [m.id for m in client.models.list().data] == ["claude"]
    assert client.models.retrieve("claude").type == "model"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nothing")


@pytest.mark.parametrize("fault, error, status", [
    ("overloaded", anthropic.OverloadedError, 529),
    ("rate_limit", anthropic.RateLimitError, 429),
    ("auth", anthropic.AuthenticationError, 401),
    ("server", anthropic.InternalServerError, 500),
    ("stream_error", anthropic.APIStatusError, 200),  # an `event: error` inside the 200 stream
])
def test_messages_faults_raise_the_sdks_errors(sim, fault, error, status):
    sim.set_profile("claude", ModelProfile(**QUICK, output_tokens=8, fault=fault))
    seen = []
    with pytest.raises(error) as raised:
        for event in claude(sim).messages.create(model="claude", max_tokens=50, stream=True, messages=ask()):
            seen.append(event.type)
    assert raised.value.status_code == status
    if fault == "stream_error":
        assert raised.value.body["error"]["type"] == "overloaded_error" and seen.count("content_block_delta") == 3
    if fault == "rate_limit":
        assert raised.value.response.headers["retry-after"] == "1"
    if fault == "auth":
        assert KEY in str(raised.value)  # echoed, as careless servers do: the client's scrubbing has work to do
    assert raised.value.response.headers["request-id"] == sim.log[0].request_id


def test_a_cut_messages_stream_ends_without_message_stop(sim):
    sim.set_profile("claude", ModelProfile(**QUICK, output_tokens=8, fault="cut", cut_after_tokens=2))
    seen = []
    with pytest.raises(anthropic.APIConnectionError):
        for event in claude(sim).messages.create(model="claude", max_tokens=50, stream=True, messages=ask()):
            seen.append(event.type)
    assert seen.count("content_block_delta") == 2 and "message_stop" not in seen


def test_a_refusal_stops_the_message_with_its_reason(sim):
    sim.set_profile("claude", ModelProfile(**QUICK, output_tokens=8, fault="refusal"))
    with claude(sim).messages.stream(model="claude", max_tokens=50, messages=ask()) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "refusal" and message.usage.output_tokens == 3


# Gemini generate_content

def test_a_gemini_stream_sends_tokens_per_chunk_and_the_usage_on_the_last(sim):
    sim.set_profile("flash", ModelProfile(**QUICK, output_tokens=10, tokens_per_chunk=4, input_tokens=500,
                                          cached_tokens=300))
    client = gemini(sim)
    chunks = list(client.models.generate_content_stream(model="flash", contents="hello"))
    assert [c.text for c in chunks] == [words(0, 4), words(4, 8), words(8, 10)]
    assert [c.candidates[0].finish_reason for c in chunks] == [None, None, genai_types.FinishReason.STOP]
    usage = chunks[-1].usage_metadata
    assert (usage.prompt_token_count, usage.cached_content_token_count, usage.candidates_token_count) == (500, 300, 10)
    assert usage.total_token_count == 510 and chunks[0].usage_metadata.candidates_token_count is None
    (record,) = sim.requests_for("flash")
    assert record.api == "generate_content" and record.chunk_count == 3


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_gemini_accepts_the_api_version_the_sdk_chooses(sim, version):
    sim.set_profile("flash", ModelProfile(**QUICK, output_tokens=4))
    client = gemini(sim, version)
    answer = client.models.generate_content(model="models/flash", contents="hello")
    assert answer.text == words(0, 4) and answer.usage_metadata.candidates_token_count == 4
    assert sim.log[0].path == f"/gemini/{version}/models/flash:generateContent" and sim.log[0].model == "flash"


def test_gemini_thinking_is_counted_apart_and_shown_only_when_asked(sim):
    sim.set_profile("flash", ModelProfile(**QUICK, output_tokens=8, reasoning_tokens=3))
    client = gemini(sim)
    hidden = list(client.models.generate_content_stream(model="flash", contents="hi"))
    config = genai_types.GenerateContentConfig(thinking_config=genai_types.ThinkingConfig(include_thoughts=True))
    shown = list(client.models.generate_content_stream(model="flash", contents="hi", config=config))
    assert "".join(c.text for c in hidden) == words(3, 8)
    assert [bool(c.candidates[0].content.parts[0].thought) for c in shown] == [True] * 3 + [False] * 5
    for chunks in (hidden, shown):
        usage = chunks[-1].usage_metadata
        assert (usage.thoughts_token_count, usage.candidates_token_count) == (3, 5)
    hidden_record, shown_record = sim.log
    # hidden thinking still takes its time: the first text leaves after the thinking's three tokens
    assert hidden_record.ttft_ms >= 20 + 3 * 2 and hidden_record.chunk_count == 5 and shown_record.chunk_count == 8
    assert hidden_record.first_answer_at == hidden_record.first_token_at  # nothing before the answer was sent
    assert shown_record.first_answer_at > shown_record.first_token_at and shown_record.answer_ttft_ms >= 20 + 3 * 2


def test_a_gemini_answer_cut_by_its_cap_says_max_tokens(sim):
    sim.set_profile("flash", ModelProfile(**QUICK, output_tokens=8))
    config = genai_types.GenerateContentConfig(max_output_tokens=3)
    client = gemini(sim)
    chunks = list(client.models.generate_content_stream(model="flash", contents="hi", config=config))
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.MAX_TOKENS and len(chunks) == 3


def test_the_gemini_models_are_listed_and_got(sim):
    sim.set_profile("flash", ModelProfile())
    client = gemini(sim)
    assert [m.name for m in client.models.list()] == ["models/flash"]
    assert client.models.get(model="flash").name == "models/flash"
    with pytest.raises(genai_errors.ClientError) as missing:
        client.models.get(model="nothing")
    assert missing.value.code == 404


@pytest.mark.parametrize("fault, error, code, status", [
    ("rate_limit", genai_errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    ("overloaded", genai_errors.ServerError, 503, "UNAVAILABLE"),
    ("stream_error", genai_errors.ServerError, 503, "UNAVAILABLE"),  # an error object inside the 200 stream
    ("auth", genai_errors.ClientError, 400, "INVALID_ARGUMENT"),
])
def test_gemini_faults_raise_the_sdks_errors(sim, fault, error, code, status):
    sim.set_profile("flash", ModelProfile(**QUICK, output_tokens=8, fault=fault))
    texts, client = [], gemini(sim)
    with pytest.raises(error) as raised:
        for chunk in client.models.generate_content_stream(model="flash", contents="hi"):
            texts.append(chunk.text)
    assert (raised.value.code, raised.value.status) == (code, status)
    assert texts == ([words(i, i + 1) for i in range(3)] if fault == "stream_error" else [])


def test_a_gemini_safety_stop_and_a_cut_stream(sim):
    sim.set_profile("flash", ModelProfile(**QUICK, output_tokens=8, fault="refusal", cut_after_tokens=2))
    client = gemini(sim)
    chunks = list(client.models.generate_content_stream(model="flash", contents="hi"))
    assert [c.candidates[0].finish_reason for c in chunks][-1] == genai_types.FinishReason.SAFETY
    assert chunks[-1].candidates[0].content is None and chunks[-1].usage_metadata.candidates_token_count == 2
    sim.set_profile("flash", ModelProfile(**QUICK, output_tokens=8, fault="cut", cut_after_tokens=2))
    texts = []
    with pytest.raises(Exception) as raised:  # the SDK lets httpx's error through
        for chunk in client.models.generate_content_stream(model="flash", contents="hi"):
            texts.append(chunk.text)
    assert "peer closed connection" in str(raised.value) and len(texts) == 2


# OpenAI Responses

def test_a_responses_stream_numbers_every_event_and_ends_with_the_usage(sim):
    sim.set_profile("o", ModelProfile(**QUICK, output_tokens=7, reasoning_tokens=2, input_tokens=50, cached_tokens=20))
    events = list(gpt(sim).responses.create(model="o", input="hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.output_item.done"]  # the reasoning item, hidden: no text of its own
    assert kinds[-5:] == ["response.output_text.delta", "response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == words(2, 7)
    usage = events[-1].response.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (50, 20)
    assert (usage.output_tokens, usage.output_tokens_details.reasoning_tokens) == (7, 2)
    assert events[-1].response.output_text == words(2, 7)
    assert sim.log[0].api == "responses" and sim.log[0].path == "/v1/responses"


def test_a_reasoning_summary_streams_when_asked(sim):
    sim.set_profile("o", ModelProfile(**QUICK, output_tokens=6, reasoning_tokens=3))
    events = list(gpt(sim).responses.create(model="o", input="hi", stream=True, reasoning={"summary": "auto"}))
    summary = [e.delta for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert "".join(summary) == words(0, 3) and sim.log[0].chunk_count == 6


def test_a_response_cut_by_max_output_tokens_is_incomplete(sim):
    sim.set_profile("o", ModelProfile(**QUICK, output_tokens=9))
    client = gpt(sim)
    whole = client.responses.create(model="o", input="hi", max_output_tokens=4)
    events = list(client.responses.create(model="o", input="hi", max_output_tokens=4, stream=True))
    assert (whole.status, whole.incomplete_details.reason, whole.output_text) == ("incomplete", "max_output_tokens",
                                                                                  words(0, 4))
    assert events[-1].type == "response.incomplete" and events[-1].response.usage.output_tokens == 4


@pytest.mark.parametrize("fault, last", [
    ("failed", "response.failed"), ("stream_error", "error"), ("refusal", "response.incomplete"),
])
def test_responses_failures_arrive_as_their_events(sim, fault, last):
    sim.set_profile("o", ModelProfile(**QUICK, output_tokens=8, fault=fault))
    events = list(gpt(sim).responses.create(model="o", input="hi", stream=True))
    assert events[-1].type == last and sum(e.type == "response.output_text.delta" for e in events) == 3
    if fault == "failed":
        assert events[-1].response.error.code == "server_error"
    if fault == "refusal":
        assert events[-1].response.incomplete_details.reason == "content_filter"


def test_responses_http_faults_and_a_cut_stream_raise_the_sdks_errors(sim):
    client = gpt(sim)
    sim.set_profile("o", ModelProfile(**QUICK, fault="rate_limit"))
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="o", input="hi", stream=True)
    sim.set_profile("o", ModelProfile(**QUICK, output_tokens=8, fault="cut"))
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for event in client.responses.create(model="o", input="hi", stream=True):
            seen.append(event.type)
    assert seen.count("response.output_text.delta") == 3 and "response.completed" not in seen


# What every API shares

def _stream_claude(sim):
    for event in claude(sim).messages.create(model="m", max_tokens=500, stream=True, messages=ask()):
        if event.type == "content_block_delta":
            yield


def _stream_gemini(sim):
    client = gemini(sim)
    for chunk in client.models.generate_content_stream(model="m", contents="hello"):
        if chunk.text:
            yield


def _stream_responses(sim):
    for event in gpt(sim).responses.create(model="m", input="hello", stream=True):
        if event.type == "response.output_text.delta":
            yield


@pytest.mark.parametrize("stream", [_stream_claude, _stream_gemini, _stream_responses])
def test_the_log_of_send_times_matches_when_the_events_arrive(sim, stream):
    sim.set_profile("m", ModelProfile(ttft_ms=40, itl_ms=5, output_tokens=30, tokens_per_chunk=3))
    started = time.perf_counter()
    arrivals = [time.perf_counter() for _ in stream(sim)]
    (record,) = sim.requests_for("m")
    assert len(arrivals) == record.chunk_count == 10 and record.output_tokens == 30
    # Same clock, same process: no event arrives before the server logged it leaving, and none long after
    # (loosely: a busy machine may be slow, never early).
    assert record.first_token_at <= arrivals[0] < record.first_token_at + 1.0
    assert record.last_token_at <= arrivals[-1] < record.last_token_at + 1.0
    assert started < record.received_at and record.ttft_ms >= 40
    assert record.latency_ms >= 40 + 9 * 5


def test_every_api_counts_the_same_prompt_as_the_tier_builder_sized_it(sim):
    sim.set_profile("m", ModelProfile(**QUICK, output_tokens=1))
    text = tier_prompt(1_000).text
    claude(sim).messages.create(model="m", max_tokens=5, messages=ask(text))
    client = gemini(sim)
    client.models.generate_content(model="m", contents=text)
    gpt(sim).responses.create(model="m", input=text)
    gpt(sim).chat.completions.create(model="m", messages=ask(text))
    counts = [r.prompt_tokens for r in sim.requests_for("m")]
    assert len(counts) == 4 and len(set(counts)) == 1 and abs(counts[0] - 1_000) <= 30


def _flood_claude(sim):
    with claude(sim).messages.stream(model="m", max_tokens=50, messages=ask()) as stream:
        return "".join(stream.text_stream), stream.get_final_message().stop_reason


def _flood_gemini(sim):
    client = gemini(sim)
    chunks = list(client.models.generate_content_stream(model="m", contents="hi"))
    return "".join(c.text or "" for c in chunks), chunks[-1].candidates[0].finish_reason.value


def _flood_responses(sim):
    events = list(gpt(sim).responses.create(model="m", input="hi", stream=True))
    return "".join(e.delta for e in events if e.type == "response.output_text.delta"), events[-1].response.status


@pytest.mark.parametrize("fault, size", [("flood", 4 * 64 * 1024), ("long_line", 2 * 1024 * 1024)])
@pytest.mark.parametrize("read, finished", [
    (_flood_claude, "end_turn"), (_flood_gemini, "STOP"), (_flood_responses, "completed"),
])
def test_every_api_floods_in_its_own_events_then_ends_as_usual(sim, read, finished, fault, size):
    # Small here (events of 64 KiB, or one line in pieces of 1 MiB): the tool's own bounds against the full 300 MB
    # are tests/test_wire_bounds.py's.
    sim.set_profile("m", ModelProfile(**QUICK, fault=fault, flood_bytes=size))
    text, how = read(sim)
    assert len(text) == size and set(text) == {"x"} and how == finished


def _whole_claude(sim):
    return claude(sim).messages.create(model="m", max_tokens=50, messages=ask()).content[0].text


def _whole_gemini(sim):
    client = gemini(sim)  # held: a client nobody holds closes its connections
    return client.models.generate_content(model="m", contents="hi").text


def _whole_responses(sim):
    return gpt(sim).responses.create(model="m", input="hi").output_text


def _whole_chat(sim):
    return gpt(sim).chat.completions.create(model="m", messages=ask()).choices[0].message.content


@pytest.mark.parametrize("fault, status", [("cut", None), ("malformed", 200), ("stream_error", 500)])
@pytest.mark.parametrize("read", [_whole_claude, _whole_gemini, _whole_responses, _whole_chat])
def test_a_streams_fault_in_a_whole_answer_is_an_error_never_the_answer(sim, read, fault, status):
    sim.set_profile("m", ModelProfile(**QUICK, output_tokens=6, fault=fault))
    with pytest.raises(Exception) as raised:
        read(sim)
    code = getattr(raised.value, "status_code", None) or getattr(raised.value, "code", None)
    if status == 500:
        assert code == 500
    else:  # the SDK could not read an answer: a closed connection or broken JSON, never a status of the server's
        assert code in (None, 200) and "500" not in str(raised.value)
    assert sim.log[0].status == (500 if status == 500 else 200)


def _answer_claude(sim, cap):
    with claude(sim).messages.stream(model="m", max_tokens=cap, messages=ask()) as stream:
        message = stream.get_final_message()
    thinking = "".join(b.thinking for b in message.content if b.type == "thinking")
    text = "".join(b.text for b in message.content if b.type == "text")
    return thinking, text, message.usage.output_tokens, 0


def _answer_gemini(sim, cap):
    client = gemini(sim)
    thoughts = genai_types.ThinkingConfig(include_thoughts=True)
    config = genai_types.GenerateContentConfig(max_output_tokens=cap, thinking_config=thoughts)
    chunks = list(client.models.generate_content_stream(model="m", contents="hi", config=config))
    parts = [p for c in chunks if c.candidates[0].content for p in c.candidates[0].content.parts]
    usage = chunks[-1].usage_metadata
    thinking, text = ("".join(p.text for p in parts if bool(p.thought) == thought) for thought in (True, False))
    return thinking, text, usage.candidates_token_count, usage.thoughts_token_count or 0


def _answer_responses(sim, cap):
    events = list(gpt(sim).responses.create(model="m", input="hi", stream=True, max_output_tokens=cap,
                                            reasoning={"summary": "auto"}))
    thinking = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    return thinking, text, events[-1].response.usage.output_tokens, 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.integers(1, 40), thinking=st.integers(0, 40), per_chunk=st.integers(1, 7), cap=st.integers(1, 50),
       read=st.sampled_from([_answer_claude, _answer_gemini, _answer_responses]))
def test_any_profile_streams_exactly_its_tokens_and_counts_them(sim, tokens, thinking, per_chunk, cap, read):
    sim.set_profile("m", ModelProfile(ttft_ms=0, itl_ms=0, output_tokens=tokens, tokens_per_chunk=per_chunk,
                                      reasoning_tokens=min(thinking, tokens)))
    sent = min(tokens, cap)
    reasoning = min(thinking, sent)
    shown_thinking, text, counted, counted_apart = read(sim, cap)
    assert (shown_thinking, text) == (words(0, reasoning), words(reasoning, sent))
    assert counted + counted_apart == sent  # Gemini counts thoughts apart from the candidates
    record = sim.log[-1]
    chunks = len(range(0, reasoning, per_chunk)) + len(range(reasoning, sent, per_chunk))  # never thinking and text
    assert record.output_tokens == sent and record.chunk_count == chunks
