"""Which API a provider is measured through (OPENAI_API, --api, benchmark.toml's api = ...), and the Responses
dialect's reading of any sequence of events (hypothesis): what is output, and when."""

from __future__ import annotations

import json

from hypothesis import given, settings as hypothesis_settings, strategies as st
import pytest

from benchmarking.errors import ConfigError
from benchmarking.providers.dialects import DIALECTS, dialect_named, responses
from benchmarking.providers.sse import SseSplitter
from benchmarking.settings.apis import APIS, PROVIDER_APIS
from benchmarking.settings.load import load_settings

BUILTIN = [("openai", "gpt-4o-mini"), ("groq", "openai/gpt-oss-20b")]


def settings(environ=None, **kwargs):
    environ = {"OPENAI_API_KEY": "sk-test-0000000000000000", "GROQ_API_KEY": "gsk_test00000000000000", **(environ or {})}
    return load_settings(prompt="hi", builtin=BUILTIN, environ=environ, **kwargs)


def apis_of(loaded) -> dict[str, str | None]:
    return {p.name: p.api for p in loaded.providers}


def test_the_registry_and_the_settings_name_the_same_apis():
    assert tuple(DIALECTS) == APIS
    assert all(api in APIS for choices in PROVIDER_APIS.values() for api in choices)
    for api in ("chat_completions", "responses"):
        assert dialect_named(api).API == api
    with pytest.raises(KeyError):
        dialect_named("grpc")


def test_chat_completions_is_openais_default_and_a_one_api_provider_has_none_to_choose():
    assert apis_of(settings()) == {"openai": "chat_completions", "groq": None}


def test_openai_api_and_the_flag_choose_responses_and_the_flag_wins():
    assert apis_of(settings({"OPENAI_API": "responses"}))["openai"] == "responses"
    assert apis_of(settings(api_overrides=["openai=responses"]))["openai"] == "responses"
    chosen = settings({"OPENAI_API": "responses"}, api_overrides=["openai=chat_completions"])
    assert apis_of(chosen)["openai"] == "chat_completions"


def test_an_endpoint_speaks_the_api_its_table_names_unless_the_flag_says_otherwise(tmp_path):
    toml = tmp_path / "b.toml"
    toml.write_text('[[providers]]\nname = "proxy"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
                    'api = "responses"\n[[providers]]\nname = "vllm"\nbase_url = "http://127.0.0.1:9/v1"\n'
                    'model = "m"\n')
    assert {k: v for k, v in apis_of(settings(config_path=str(toml))).items() if k in ("proxy", "vllm")} == {
        "proxy": "responses", "vllm": "chat_completions"}
    flagged = settings(config_path=str(toml), api_overrides=["vllm=messages"])
    assert apis_of(flagged)["vllm"] == "messages"


@pytest.mark.parametrize("environ, overrides, message", [
    ({"OPENAI_API": "grpc"}, [], "OPENAI_API must be one of chat_completions, responses, not 'grpc'"),
    ({}, ["openai=messages"], "--api openai=API: API must be one of chat_completions, responses, not 'messages'"),
    ({}, ["groq=responses"], "--api groq=...: groq speaks one API (chat_completions)"),
    ({"GROQ_API": "responses"}, [], "GROQ_API is set, but groq speaks one API"),
    ({}, ["=responses"], "--api takes provider=api"),
])
def test_a_bad_choice_is_one_line_naming_where(environ, overrides, message):
    with pytest.raises(ConfigError) as caught:
        settings(environ, api_overrides=overrides)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_naming_the_one_api_a_provider_speaks_is_no_error():
    for environ, overrides in (({"GROQ_API": "chat_completions"}, []), ({}, ["groq=chat_completions"])):
        chosen = settings(environ, api_overrides=overrides)
        assert "groq" in apis_of(chosen) and apis_of(chosen)["groq"] is None  # the one its module speaks


# ---- the Responses dialect over any sequence of events ----------------------------------------------------------

OUTPUT = sorted(responses.ANSWER_DELTAS | responses.TOOL_DELTAS | responses.REASONING_DELTAS)
NOT_OUTPUT = ["response.created", "response.in_progress", "response.output_item.added",
              "response.content_part.added", "response.output_text.done", "response.output_item.done",
              "response.reasoning_summary_part.added", "response.queued", "keepalive"]
DELTAS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
EVENTS = st.lists(st.one_of(
    st.tuples(st.sampled_from(OUTPUT), DELTAS),
    st.tuples(st.sampled_from(NOT_OUTPUT), st.just("")),
), max_size=30)


def read(events: list[tuple[str, str]], ending: str | None) -> responses.Answer:
    body = b""
    for kind, delta in events:
        payload = {"type": kind, "delta": delta} if kind in OUTPUT else {
            "type": kind, "response": {"id": "resp_x", "status": "in_progress", "output": [],
                                       "usage": {"input_tokens": 1, "output_tokens": 3333}}}
        body += f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()
    if ending:
        status = ending.removeprefix("response.")  # the status an ending event's response carries
        body += f"data: {json.dumps({'type': ending, 'response': {'id': 'r', 'status': status, 'usage': {'input_tokens': 1}, 'incomplete_details': {'reason': 'max_output_tokens'}}})}\n\n".encode()
        body += b"data: " + json.dumps({"type": "response.output_text.delta", "delta": "after"}).encode() + b"\n\n"
    reader = responses.EventReader()
    splitter = SseSplitter()
    for at, line in enumerate(body.split(b"\n\n")):  # each event arrives at its own time: its index
        reader.read(splitter.feed(line + b"\n\n", float(at)))
    return reader.answer()


@hypothesis_settings(max_examples=200, deadline=None)
@given(EVENTS, st.sampled_from([None, "response.completed", "response.incomplete"]))
def test_only_output_deltas_are_output_and_the_end_ends_the_reading(events, ending):
    answer = read(events, ending)
    output_at = [float(i) for i, (kind, delta) in enumerate(events) if kind in OUTPUT and delta]
    answer_at = [float(i) for i, (kind, delta) in enumerate(events)
                 if kind in responses.ANSWER_DELTAS | responses.TOOL_DELTAS and delta]
    assert answer.output_events == len(output_at)
    assert answer.first_output_at == (output_at[0] if output_at else None)
    assert answer.last_output_at == (output_at[-1] if output_at else None)
    assert answer.first_answer_at == (answer_at[0] if answer_at else None)
    assert answer.text == "".join(d for kind, d in events if kind in responses.ANSWER_DELTAS)
    assert "after" not in answer.text  # nothing after the end is read
    assert answer.finish_reason == {None: None, "response.completed": "completed",
                                    "response.incomplete": "max_output_tokens"}[ending]
    assert answer.usage == ({"input_tokens": 1} if ending else None)  # the ending's usage, never another's


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=3), max_leaves=12),
       st.sampled_from(["response.completed", "response.failed", "response.incomplete", "error",
                        "response.output_text.delta", "response.function_call_arguments.delta"]))
def test_any_json_in_any_event_reads_without_raising_and_usage_is_bounded(value, kind):
    from benchmarking.providers.numbers import MAX_COUNT

    payload = {"type": kind, "delta": value, "response": value, "error": value,
               **({"usage": value} if isinstance(value, dict) else {})}
    reader = responses.EventReader()
    reader.read(SseSplitter().feed(f"data: {json.dumps(payload)}\n\n".encode(), 1.0))
    answer = reader.answer()
    problems: list[str] = []
    counts = responses.tokens(answer.usage, problems)
    for count in (counts.input_tokens, counts.output_tokens, counts.cached_tokens, counts.reasoning_tokens):
        assert count is None or 0 <= count <= MAX_COUNT
    assert answer.output_events in (0, 1)


def test_the_cost_bound_counts_the_output_cap_the_responses_api_is_sent():
    from decimal import Decimal

    from benchmarking.benchmark_runner import cost_bound, plan

    def bound(environ: dict, cache_mode: str) -> Decimal:
        loaded = settings(environ, provider_selection="openai", max_tokens=1)
        return cost_bound(plan(loaded), 1, cache_mode).usd

    chat, native = bound({}, "warm"), bound({"OPENAI_API": "responses"}, "warm")
    # gpt-4o-mini: 0.60 USD per 1M output tokens; the measured and the warming request are each sent 16, not 1
    assert native - chat == 2 * 15 * Decimal("0.60") / 1_000_000
