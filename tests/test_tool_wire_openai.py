"""Tool calls and structured output on OpenAI's two APIs, through the real openai SDK against a loopback server: the
body an Exchange (a history with a tool call and its result, tools, tool_choice, a schema) becomes as the server got
it, and the tool calls read back from recorded streams (tests/fixtures/tool_calls/, tests/fixtures/responses/) and
whole bodies, timed against the server's own clock; a hostile stream's calls stay within bounds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarking.dialogue import Exchange, Message, ToolCall
from benchmarking.providers.dialects import chat_completions, responses
from benchmarking.providers.dialects.tool_calls import KEPT_ARGUMENT_CHARS, MAX_CALLS, replayed_ids
from benchmarking.providers.answer import MAX_NAME_CHARS
from benchmarking.providers.openai_provider import call_openai
from benchmarking.providers.sse import SseEvent

from conftest import settings_for
from test_wire_truth import At
from wire_server import Reply, WireServer, sse_parts

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ONE_CALL = (FIXTURES / "tool_calls" / "chat_one_call.sse").read_bytes()
TWO_CALLS = (FIXTURES / "tool_calls" / "chat_two_calls.sse").read_bytes()
TWO_CALLS_BODY = (FIXTURES / "tool_calls" / "chat_two_calls.json").read_bytes()
RESPONSES_CALL = (FIXTURES / "responses" / "azure_function_call.sse").read_bytes()

WEATHER = ToolCall("GetWeatherArgs", '{"city":"Edinburgh","country":"UK","units":"c"}', "call_c91SqDXlYFuETYv8mUHzz6pp")
TOOLS = ({"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}, "strict": True}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}})
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}
ASKED = ToolCall("get_weather", '{"city": "Paris"}', "call_1")
UNNAMED = ToolCall("get_time", "{}", None)  # a server that sent no id
HISTORY = Exchange(
    (Message("system", "Be brief."), Message("user", "Weather and time in Paris?"),
     Message("assistant", "", (ASKED, UNNAMED)), Message("tool", "sunny", answers=ASKED),
     Message("tool", "noon", answers=UNNAMED), Message("assistant", "Sunny at noon."), Message("user", "Tomorrow?")),
    tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_weather"}}, schema=SCHEMA)


def events(body: bytes) -> list[bytes]:
    return [part for _, part in sse_parts(body)]


def measure(server: WireServer, prompt, **changes):
    return call_openai(prompt, "m", settings_for(At(server.url, "/v1"), "openai", **changes))


def served(reply: Reply, prompt=HISTORY, **changes):
    with WireServer() as server:
        server.reply(reply)
        m = measure(server, prompt, **changes)
        return m, server.served[0]


def test_a_history_with_a_tool_call_its_results_tools_and_a_schema_as_chat_completions_gets_them():
    m, got = served(Reply(sse_parts(ONE_CALL)))
    assert m.success, m.error_message
    assert got.path == "/v1/chat/completions"
    assert got.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_0", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_0", "content": "noon"},
        {"role": "assistant", "content": "Sunny at noon."},
        {"role": "user", "content": "Tomorrow?"},
    ]
    assert got.body["tools"] == list(TOOLS)
    assert got.body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert got.body["response_format"] == {"type": "json_schema",
                                           "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}


def test_a_history_as_the_responses_api_gets_it():
    m, got = served(Reply(sse_parts(RESPONSES_CALL)), api="responses")
    assert m.success, m.error_message
    assert got.path == "/v1/responses"
    assert got.body["instructions"] == "Be brief."
    assert got.body["input"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call", "call_id": "call_0", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_0", "output": "noon"},
        {"role": "assistant", "content": "Sunny at noon."},
        {"role": "user", "content": "Tomorrow?"},
    ]
    assert got.body["tools"] == [
        {"type": "function", "name": "get_weather", "description": "The weather in a city",
         "parameters": TOOLS[0]["function"]["parameters"], "strict": True},
        {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}]
    assert got.body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert got.body["text"] == {"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}}


@pytest.mark.parametrize("choice", ["auto", "required", "none"])
def test_a_named_tool_choice_goes_as_it_is_to_both_apis(choice):
    exchange = Exchange((Message("user", "hi"),), tools=TOOLS, tool_choice=choice)
    assert chat_completions.request("m", exchange, 5, True, "none")["tool_choice"] == choice
    assert responses.request("m", exchange, 5, True, "none")["tool_choice"] == choice


@pytest.mark.parametrize("dialect", [chat_completions, responses])
def test_a_plain_prompt_sends_the_same_bytes_whatever_form_it_comes_in(dialect):
    pairs = [("system", "Be brief."), ("user", "hi"), ("assistant", "hello"), ("user", "again")]
    plain = Exchange(tuple(Message(role, content) for role, content in pairs))
    for prompt, same in (("hello", Exchange((Message("user", "hello"),))), (pairs, plain)):
        body = dialect.request("m", prompt, 5, True, "stream_options")
        assert json.dumps(body) == json.dumps(dialect.request("m", same, 5, True, "stream_options"))
        assert not {"tools", "tool_choice", "response_format", "text"} & set(body)
    assert chat_completions.request("m", "hello", 5, True, "stream_options") == {
        "model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5, "stream": True,
        "stream_options": {"include_usage": True}}
    assert chat_completions.messages_of(plain) == [{"role": role, "content": content} for role, content in pairs]


def test_a_call_streamed_in_fourteen_pieces_is_read_whole():
    m, _ = served(Reply(sse_parts(ONE_CALL)), prompt="weather?")
    assert (m.success, m.finish_reason, m.response_text) == (True, "tool_calls", "")
    assert m.calls == (WEATHER,) and m.calls[0].call_id == WEATHER.call_id
    assert json.loads(m.tool_calls) == [{"name": "GetWeatherArgs", "arguments": WEATHER.arguments}]
    assert 0 < m.ttft_ms <= m.tool_args_ms == m.latency_ms


def interleaved(body: bytes) -> bytes:
    """The stream's chunks, the pieces of its two calls alternating (the first piece of each still its first)."""
    parts = events(body)
    pieces = {0: [], 1: []}
    for part in parts:
        text = part.decode()
        if '"tool_calls":[{"index":' in text:
            pieces[json.loads(text[6:])["choices"][0]["delta"]["tool_calls"][0]["index"]].append(part)
    rest = [p for p in parts if p not in pieces[0] and p not in pieces[1]]
    mixed = [p for pair in zip(pieces[0], pieces[1]) for p in pair]
    mixed += pieces[0][len(pieces[1]):] + pieces[1][len(pieces[0]):]
    return b"".join(rest[:1] + mixed + rest[1:])


def test_two_parallel_calls_read_the_same_recorded_in_turn_or_interleaved():
    mixed = interleaved(TWO_CALLS)
    assert mixed != TWO_CALLS and sorted(events(mixed)) == sorted(events(TWO_CALLS))
    recorded, _ = served(Reply(sse_parts(TWO_CALLS)), prompt="weather and AAPL?")
    alternating, _ = served(Reply(sse_parts(mixed)), prompt="weather and AAPL?")
    assert recorded.success and alternating.success
    assert recorded.calls == alternating.calls
    assert [(c.name, c.call_id) for c in recorded.calls] == [("GetWeatherArgs", "call_JMW1whyEaYG438VE1OIflxA2"),
                                                             ("get_stock_price", "call_DNYTawLBoN8fj3KN6qU9N1Ou")]
    assert [json.loads(c.arguments) for c in recorded.calls] == [
        {"city": "Edinburgh", "country": "GB", "units": "c"}, {"ticker": "AAPL", "exchange": "NASDAQ"}]


def test_arguments_that_are_not_json_are_kept_as_sent():
    parts = events(ONE_CALL)
    cut = b"".join(parts[:14] + parts[15:])  # without the closing '"}' piece
    m, _ = served(Reply(sse_parts(cut)), prompt="weather?")
    assert m.success and m.calls[0].arguments == '{"city":"Edinburgh","country":"UK","units":"c'
    with pytest.raises(ValueError):
        m.calls[0].parsed_arguments()
    assert json.loads(m.tool_calls)[0]["arguments"] == m.calls[0].arguments


def test_the_last_argument_piece_times_tool_args_and_latency_on_the_servers_clock():
    # 40 ms before and after the last argument piece: a time put on a neighbour would show, even on a slow machine.
    parts = sse_parts(ONE_CALL)
    last = 14  # role, name and id first; 14 argument pieces; then the finish chunk, usage, [DONE]
    parts = [(0.04 if i in (last, last + 1) else delay, part) for i, (delay, part) in enumerate(parts)]
    m, got = served(Reply(parts), prompt="weather?")
    sent = (got.part_sent_at[last] - got.received_at) * 1000
    assert m.success and m.calls == (WEATHER,)
    assert sent <= m.tool_args_ms < sent + 30
    assert m.latency_ms == m.tool_args_ms  # the finish chunk and usage 40 ms later are not output


def test_a_responses_call_is_timed_at_its_last_delta_not_at_the_events_that_close_it():
    parts = sse_parts(RESPONSES_CALL)
    # created, in_progress, output_item.added, six argument deltas (3-8), arguments.done, output_item.done, completed
    last = 8
    parts = [(0.04 if i >= last else delay, part) for i, (delay, part) in enumerate(parts)]
    m, got = served(Reply(parts), prompt="weather?", api="responses")
    sent = (got.part_sent_at[last] - got.received_at) * 1000
    added = (got.part_sent_at[2] - got.received_at) * 1000
    assert m.success and m.calls == (ToolCall("weather", '{"location":"San Francisco"}',
                                              "call_H5DxLSFnsGhiROnUiDHmgyc8"),)
    assert sent <= m.tool_args_ms < sent + 30 and m.latency_ms == m.tool_args_ms
    assert added <= m.ttft_ms == m.answer_ttft_ms < sent  # the call's name came first: the answer began there


def test_whole_bodies_give_their_calls_in_order_timed_at_the_last_byte():
    with WireServer() as server:
        server.reply(Reply([(0.01, TWO_CALLS_BODY)], headers={"content-type": "application/json"}, chunked=False))
        m = measure(server, "weather and AAPL?", stream=False)
    assert m.success and [c.name for c in m.calls] == ["GetWeatherArgs", "get_stock_price"]
    assert m.calls[1] == ToolCall("get_stock_price", '{"ticker": "AAPL", "exchange": "NASDAQ"}',
                                  "call_h1DWI1POMJLb0KwIyQHWXD4p")
    assert m.tool_args_ms == m.latency_ms > 0

    completed = next(json.loads(p.decode().split("data: ", 1)[1]) for p in events(RESPONSES_CALL)
                     if b'"response.completed"' in p)
    with WireServer() as server:  # the response object the stream ended with, as a whole body
        server.reply(Reply([(0.01, json.dumps(completed["response"]).encode())],
                           headers={"content-type": "application/json"}, chunked=False))
        m = measure(server, "weather?", stream=False, api="responses")
    assert m.success and m.calls == (ToolCall("weather", '{"location":"San Francisco"}',
                                              "call_H5DxLSFnsGhiROnUiDHmgyc8"),)
    assert m.tool_args_ms == m.latency_ms > 0


def read_chat(*chunks) -> object:
    reader = chat_completions.EventReader()
    reader.read([SseEvent(float(i), None, json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [c]}}]}))
                 for i, c in enumerate(chunks)])
    return reader.answer()


def test_a_hostile_streams_calls_stay_within_bounds():
    many = read_chat(*({"index": i, "id": f"c{i}", "function": {"name": f"f{i}", "arguments": "{}"}}
                       for i in range(MAX_CALLS + 72)))
    assert len(many.tool_calls) == MAX_CALLS and many.output_events == MAX_CALLS + 72
    assert many.tool_args_at == many.last_output_at == MAX_CALLS + 71

    odd = read_chat({"index": 0, "function": {"name": "n" * 5000}}, {"index": 1, "function": {"name": 7}},
                    {"index": "2", "function": {"name": "x"}}, {"index": -1, "function": {"name": "x"}},
                    {"index": 2 ** 40, "function": {"name": "x"}}, {"index": True, "function": {"name": "x"}},
                    {"function": {"name": "x"}}, {"index": 3, "id": 5, "function": {"arguments": {"a": 1}}})
    assert [c.name for c in odd.tool_calls] == ["n" * MAX_NAME_CHARS, "7", ""]
    assert odd.tool_calls[2] == ToolCall("", '{"a": 1}', None)  # arguments sent as an object: its JSON text
    assert odd.output_events == 8  # every piece is output, kept or not

    piece = "x" * (KEPT_ARGUMENT_CHARS // 2 + 1000)
    big = read_chat({"index": 0, "function": {"name": "a", "arguments": piece}},
                    {"index": 1, "function": {"name": "b", "arguments": piece}},
                    {"index": 0, "function": {"arguments": piece}})
    assert sum(len(c.arguments) for c in big.tool_calls) == KEPT_ARGUMENT_CHARS
    assert big.tool_args_at == 2.0


def test_a_responses_piece_without_a_position_is_output_but_no_call():
    reader = responses.EventReader()
    reader.read([SseEvent(1.0, None, json.dumps({"type": "response.function_call_arguments.delta", "delta": "{}"})),
                 SseEvent(2.0, None, json.dumps({"type": "response.output_item.added", "output_index": "0",
                                                 "item": {"type": "function_call", "name": "f"}}))])
    answer = reader.answer()
    assert answer.tool_calls == () and answer.output_events == 2 and answer.last_output_at == 2.0


def test_ids_replayed_never_collide_with_ids_the_server_gave():
    given, missing = ToolCall("a", "{}", "call_0"), ToolCall("b", "{}")
    ids = replayed_ids((Message("assistant", "", (given, missing)), Message("tool", "1", answers=missing),
                        Message("tool", "2", answers=given)))
    assert ids == [("call_0", "call_1"), ("call_1",), ("call_0",)]
