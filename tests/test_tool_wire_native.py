"""Tool calls, structured output and the cache breakpoint in Anthropic's Messages and Gemini's own API, through the
real anthropic and google-genai SDKs on loopback: the body each Exchange makes as the server received it, and the
calls read from recorded tool-use streams (tests/fixtures/messages/, tests/fixtures/gemini/: sources in their
manifest.json and sources.json), timed against the server's own clock."""

from __future__ import annotations

import base64
import json
import re

import pytest

from benchmarking.dialogue import Exchange, Message, ToolCall
from benchmarking.providers.anthropic_provider import call_anthropic
from benchmarking.providers.dialects.tool_calls import KEPT_ARGUMENT_CHARS, MAX_CALLS, ToolCalls
from benchmarking.providers.gemini_provider import call_gemini

from conftest import settings_for
from test_wire_gemini import GEMINI_FIXTURES, MODEL as GEMINI_MODEL, At, gemini_server
from test_wire_messages import FIXTURES, MANIFEST, event, fixture_reply
from wire_server import Reply, WireServer, sse_parts

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time"}}  # no description, no parameters
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}
CALL = ToolCall("get_weather", '{"location": "Paris"}', "toolu_01", None)
SECOND = ToolCall("get_time", "", "toolu_02", None)
CONVERSATION = (Message("system", "Be brief."), Message("user", "Weather and time in Paris?"),
                Message("assistant", "Let me look.", (CALL, SECOND)), Message("tool", "18 C, sunny", answers=CALL),
                Message("tool", '{"time": "14:05"}', answers=SECOND))


def anthropic(server: WireServer, prompt, **changes):
    return call_anthropic(prompt, "claude-haiku-4-5", settings_for(At(server.url), "anthropic", **changes))


def gemini(server: WireServer, prompt, **changes):
    return call_gemini(prompt, GEMINI_MODEL, settings_for(At(server.url), "gemini", **changes))


def entry(name: str) -> dict:
    return next(e for e in MANIFEST if e["name"] == name)


def sent_at_ms(served, part: int) -> float:
    return (served.part_sent_at[part] - served.received_at) * 1000


# ---- Messages: what is sent


def test_an_exchange_is_sent_in_the_messages_form_with_its_cache_breakpoint_on_the_last_result():
    exchange = Exchange(CONVERSATION, tools=(WEATHER, CLOCK), tool_choice="required", schema=SCHEMA, cache_through=4)
    with WireServer() as server:
        server.reply(fixture_reply(MANIFEST[0]))
        m = anthropic(server, exchange, max_tokens=99)
        body = server.served[0].body
    assert m.success
    assert body == {
        "model": "claude-haiku-4-5", "max_tokens": 99, "stream": True, "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}]},
            {"role": "user", "content": [  # consecutive results in one message
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 C, sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": '{"time": "14:05"}',
                 "cache_control": {"type": "ephemeral"}}]}],
        "tools": [{"name": "get_weather", "description": "The weather in a city",
                   "input_schema": WEATHER["function"]["parameters"]},
                  {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any"},
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
    }


def test_calls_that_came_without_ids_are_replayed_with_ids_that_pair_with_their_results():
    first, second = ToolCall("get_weather", '{"location": "Paris"}', None, None), ToolCall("get_time", "", None, None)
    taken = ToolCall("get_time", "{}", "call_0", None)  # an id a server gave: no made-up id may be the same
    messages = (Message("user", "Weather and time?"), Message("assistant", "", (first, second, taken)),
                Message("tool", "18 C", answers=first), Message("tool", "14:05", answers=second),
                Message("tool", "14:06", answers=taken))
    with WireServer() as server:
        server.reply(fixture_reply(MANIFEST[0]))
        assert anthropic(server, Exchange(messages)).success
        body = server.served[0].body
    used = [block["id"] for block in body["messages"][1]["content"]]
    answered = [block["tool_use_id"] for block in body["messages"][2]["content"]]
    assert used == answered == ["call_1", "call_2", "call_0"]


@pytest.mark.parametrize("choice, sent", [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "get_time"}}, {"type": "tool", "name": "get_time"}),
])
def test_each_tool_choice_and_a_breakpoint_on_the_system_message_or_a_user_message(choice, sent):
    messages = (Message("system", "Be brief."), Message("system", "Use tools."), Message("user", "hi"),
                Message("assistant", "hello"), Message("user", "again"))
    with WireServer() as server:
        server.reply(fixture_reply(MANIFEST[0]))
        anthropic(server, Exchange(messages, tools=(CLOCK,), tool_choice=choice, cache_through=1))
        anthropic(server, Exchange(messages, cache_through=3))
        first, second = (s.body for s in server.served)
    assert first["tool_choice"] == sent
    assert first["system"] == [{"type": "text", "text": "Be brief."},
                               {"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}]
    assert first["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                 {"role": "user", "content": "again"}]
    assert second["system"] == "Be brief.\n\nUse tools." and "tools" not in second and "tool_choice" not in second
    assert second["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}


# ---- Messages: what is read


def test_a_call_that_is_the_whole_answer_is_read_and_timed_at_its_last_piece():
    e = entry("tool_use_only")
    parts = sse_parts((FIXTURES / e["file"]).read_bytes(), gap_s=0.03, first_s=0.03)
    pieces = [i for i, (_, p) in enumerate(parts) if re.search(rb'"partial_json":"[^"]', p)]
    stop = next(i for i, (_, p) in enumerate(parts) if b"content_block_stop" in p)
    with WireServer() as server:
        server.reply(Reply(parts, 200, dict(e["headers"])))
        m = anthropic(server, Exchange((Message("user", "What is the weather in SF?"),), tools=(WEATHER,)))
        served = server.served[0]
    assert m.success and m.finish_reason == "tool_use" and m.response_text in (None, "")
    assert json.loads(m.tool_calls) == [{"name": "get_weather",
                                         "arguments": '{"location": "San Francisco, CA", "units": "f"}'}]
    assert [(c.name, c.call_id) for c in m.calls] == [("get_weather", "toolu_018acGYLtfR52q9yDbWaEdQZ")]
    assert len(pieces) == 9 and stop == pieces[-1] + 1
    # Each time is its own event's: after the server wrote it, before it wrote the next one 30 ms later.
    assert sent_at_ms(served, pieces[0]) <= m.ttft_ms < sent_at_ms(served, pieces[1])
    # Its arguments were complete with their last piece, as on every API (the block's stop may come in a later read)
    assert sent_at_ms(served, pieces[-1]) <= m.latency_ms < sent_at_ms(served, stop)
    assert m.tool_args_ms == m.latency_ms


def test_two_calls_are_read_in_order_with_their_ids():
    with WireServer() as server:
        server.reply(fixture_reply(entry("two_tool_uses")))
        m = anthropic(server, "weather in SF and NY?")
    assert m.success and [(c.name, c.call_id, json.loads(c.arguments)) for c in m.calls] == [
        ("get_weather", "toolu_018acGYLtfR52q9yDbWaEdQZ", {"location": "San Francisco, CA", "units": "f"}),
        ("get_weather", "toolu_018acGYLtfR52q9yDbWaEdQa", {"location": "New York, NY", "units": "f"})]
    assert m.tool_args_ms == m.latency_ms  # the second call's last piece: the last output


def stream_of(*events: dict, usage: int = 5) -> bytes:
    head = (FIXTURES / "text.sse").read_bytes().split(b"\n\n")[0] + b"\n\n"  # the recording's message_start
    tail = [{"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": usage}},
            {"type": "message_stop"}]
    return head + b"".join(event(e) for e in (*events, *tail))


def tool_use(index: int, call_id: str, name: str = "get_weather") -> dict:
    return {"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}}}


def piece(index: int, text: str) -> dict:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": text}}


def test_arguments_split_into_a_piece_a_character_are_whole_and_malformed_ones_are_kept_as_sent():
    arguments = json.dumps({"location": "Paris", "days": [1, 2, 3], "note": "é ü"}, ensure_ascii=False)
    broken = '{"location": "Par'
    body = stream_of(tool_use(0, "toolu_a"), *(piece(0, c) for c in arguments), {"type": "content_block_stop",
                                                                                "index": 0},
                     tool_use(1, "toolu_b"), piece(1, broken), {"type": "content_block_stop", "index": 1},
                     piece(7, '{"never": "started"}'))  # a piece for a block that never started is no call's
    with WireServer() as server:
        server.reply(Reply(sse_parts(body, gap_s=0.0)))
        m = anthropic(server, "hi")
    assert m.success
    assert [(c.call_id, c.arguments) for c in m.calls] == [("toolu_a", arguments), ("toolu_b", broken)]


def test_a_hostile_server_gets_128_calls_and_a_megabyte_of_arguments_never_a_crash():
    many = [e for i in range(200) for e in (tool_use(i, f"toolu_{i}"), piece(i, "{}"),
                                            {"type": "content_block_stop", "index": i})]
    huge = "x" * 700_000
    big = stream_of(tool_use(0, "toolu_big"), piece(0, '"' + huge), piece(0, huge), piece(0, huge + '"'),
                    {"type": "content_block_stop", "index": 0}, tool_use(1, "toolu_after"), piece(1, "{}"),
                    {"type": "content_block_start", "index": True, "content_block": {"type": "tool_use"}},
                    {"type": "content_block_start", "index": 2, "content_block": "not a block"})
    with WireServer() as server:
        server.reply(Reply(sse_parts(stream_of(*many), gap_s=0.0)), Reply(sse_parts(big, gap_s=0.0)))
        m = anthropic(server, "hi")
        m_big = anthropic(server, "hi")
    assert m.success and len(m.calls) == MAX_CALLS == 128
    assert m.calls[-1].call_id == "toolu_127"
    # The calls past those kept are still output: the arguments were complete with the last one's piece, as on every
    # API (the 128th call's time was stored), and the row says its calls were cut
    assert m.tool_args_ms == m.latency_ms and m.response_truncated
    assert m_big.success and [c.call_id for c in m_big.calls] == ["toolu_big", "toolu_after"]
    assert len(m_big.calls[0].arguments) == KEPT_ARGUMENT_CHARS and m_big.calls[1].arguments == ""  # no room left
    for cut in (m, m_big):
        assert [w for w in cut.warnings if f"more tool calls than the {MAX_CALLS} kept, or arguments past the "
                f"{KEPT_ARGUMENT_CHARS} characters kept" in w]


def test_a_whole_body_reads_its_calls_and_an_input_that_is_no_object_as_its_json_text():
    e = entry("tool_use_body")
    recorded = json.loads((FIXTURES / e["file"]).read_text())
    odd = {**recorded, "content": recorded["content"] + [{"type": "tool_use", "id": "toolu_x", "name": "f",
                                                          "input": [1, "two"]}]}
    with WireServer() as server:
        server.reply(fixture_reply(e), Reply([(0.0, json.dumps(odd).encode())], 200,
                                              {"content-type": "application/json"}, chunked=False))
        m = anthropic(server, "weather?", stream=False)
        m_odd = anthropic(server, "weather?", stream=False)
    assert m.success and json.loads(m.tool_calls) == [
        {"name": "get_weather", "arguments": json.dumps(recorded["content"][1]["input"])}]
    assert m.calls[0].call_id == recorded["content"][1]["id"] and m.tool_args_ms == m.latency_ms
    assert [c.arguments for c in m_odd.calls][-1] == '[1, "two"]'


# ---- Gemini


SIGNATURE = re.search(r'"thoughtSignature": "([^"]+)"', (GEMINI_FIXTURES / "function_call.sse").read_text())[1]


def recorded_call() -> Reply:
    return Reply(sse_parts((GEMINI_FIXTURES / "function_call.sse").read_bytes(), gap_s=0.03, first_s=0.03))


def test_a_gemini_call_is_read_with_its_signature_and_sent_back_with_it():
    with gemini_server(WireServer()) as server:
        server.reply(recorded_call())
        first = gemini(server, Exchange((Message("user", "Which country?"),), tools=(CLOCK,)))
        served = server.served[0]
        call = first.calls[0]
        # The next turn: the answer's call and its result in the history, as the runner sends them.
        gemini(server, Exchange((Message("user", "Which country?"), Message("assistant", "", first.calls),
                                 Message("tool", "France", answers=call))))
        sent_back = server.served[1].body["contents"]
    assert first.success and json.loads(first.tool_calls) == [{"name": "get_country", "arguments": "{}"}]
    assert (call.call_id, call.signature) == (None, SIGNATURE)
    assert sent_at_ms(served, 0) <= first.tool_args_ms < sent_at_ms(served, 1)  # the chunk that carried it
    assert first.ttft_ms == first.tool_args_ms == first.latency_ms  # one chunk carried the whole call
    model_part = sent_back[1]["parts"][0]
    assert sent_back[1]["role"] == "model" and model_part["functionCall"] == {"name": "get_country", "args": {}}
    # The SDK writes the signature's bytes in URL-safe base64: the same bytes as the recording's.
    assert base64.urlsafe_b64decode(model_part["thoughtSignature"]) == base64.b64decode(SIGNATURE)
    assert sent_back[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_country", "response": {"result": "France"}}}]}


def test_an_exchange_is_sent_in_gemini_form():
    calls = (ToolCall("get_weather", '{"location": "Paris"}', "call-1", SIGNATURE), SECOND)
    messages = (*CONVERSATION[:2], Message("assistant", "Let me look.", calls),
                Message("tool", "18 C, sunny", answers=calls[0]), Message("tool", '{"time": "14:05"}', answers=SECOND))
    exchange = Exchange(messages, tools=(WEATHER, CLOCK), tool_choice={"type": "function", "function": {
        "name": "get_time"}}, schema=SCHEMA, cache_through=4)
    with gemini_server(WireServer()) as server:
        server.reply(recorded_call())
        m = gemini(server, exchange)
        gemini(server, Exchange(messages[:2], tools=(CLOCK,), tool_choice="required"))
        body, other = (s.body for s in server.served)
    assert m.success
    signature = body["contents"][1]["parts"][1].pop("thoughtSignature")
    assert base64.urlsafe_b64decode(signature) == base64.b64decode(SIGNATURE)
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
        {"role": "model", "parts": [{"text": "Let me look."},
                                    {"functionCall": {"id": "call-1", "name": "get_weather",
                                                      "args": {"location": "Paris"}}},
                                    {"functionCall": {"id": "toolu_02", "name": "get_time", "args": {}}}]},
        {"role": "user", "parts": [  # consecutive results in one turn, a JSON object as it is
            {"functionResponse": {"id": "call-1", "name": "get_weather", "response": {"result": "18 C, sunny"}}},
            {"functionResponse": {"id": "toolu_02", "name": "get_time", "response": {"time": "14:05"}}}]}]
    # The installed google-genai (3.6) passes a declaration through under its Python names.
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "The weather in a city",
         "parameters_json_schema": WEATHER["function"]["parameters"]},
        {"name": "get_time"}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}
    assert body["generationConfig"] == {"maxOutputTokens": 256, "responseMimeType": "application/json",
                                        "responseJsonSchema": SCHEMA}
    assert "cachedContent" not in body  # Gemini caches a repeated prefix by itself
    assert other["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert other["generationConfig"] == {"maxOutputTokens": 256}


def test_two_gemini_calls_in_one_chunk_are_read_in_order_and_sent_back_with_their_ids():
    chunk = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}, "id": "a"}},
        {"functionCall": {"name": "get_time", "id": "b"}, "thoughtSignature": "c2lnbmVk"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 9}, "responseId": "r"}
    with gemini_server(WireServer()) as server:
        server.reply(Reply([(0.01, b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")]))
        m = gemini(server, "hi")
        again = gemini(server, Exchange((Message("user", "hi"), Message("assistant", "", m.calls))))
        sent = server.served[1].body["contents"][1]["parts"]
    assert m.success and [(c.name, c.arguments, c.call_id, c.signature) for c in m.calls] == [
        ("get_weather", '{"location": "Paris"}', "a", None), ("get_time", "{}", "b", "c2lnbmVk")]
    assert again.success and sent == [
        {"functionCall": {"id": "a", "name": "get_weather", "args": {"location": "Paris"}}},
        {"functionCall": {"id": "b", "name": "get_time", "args": {}}, "thoughtSignature": "c2lnbmVk"}]


def test_calls_no_sdk_can_parse_are_a_failure_that_keeps_them_never_a_crash():
    chunk = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_time", "args": [1, 2]}, "thoughtSignature": "%%% not base64"},
        {"functionCall": {"name": {"deep": "no"}}}]}, "finishReason": "STOP"}]}
    with gemini_server(WireServer()) as server:
        server.reply(Reply([(0.01, b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")]))
        m = gemini(server, "hi")
        # A signature that is not base64 is not sent back: the SDK would refuse the whole request.
        again = gemini(server, Exchange((Message("user", "hi"), Message("assistant", "", m.calls))))
        sent = server.served[1].body["contents"][1]["parts"]
    assert (m.success, m.error_type) == (False, "bad_response") and "\n" not in m.error_message
    assert [(c.name, c.arguments) for c in m.calls] == [("get_time", "[1, 2]"), ("{'deep': 'no'}", "{}")]
    assert [p["functionCall"]["args"] for p in sent] == [{}, {}] and "thoughtSignature" not in sent[0]
    assert again.error_type == "bad_response"  # the same answer again: served to both requests


def test_the_sdks_note_on_a_chunk_with_a_call_never_reaches_the_console(monkeypatch, caplog):
    from google.genai import types

    monkeypatch.setattr(types, "_response_text_non_text_warning_logged", False)  # it says it once a process
    with gemini_server(WireServer()) as server:
        server.reply(recorded_call())
        m = gemini(server, "Which country?")
    assert m.success and m.calls and not [r for r in caplog.records if r.name.startswith("google_genai")]


@pytest.mark.parametrize("api", ["messages", "generate_content"])
def test_a_plain_exchange_is_the_request_a_plain_prompt_always_made(api):
    from benchmarking.dialogue import exchange_of
    from benchmarking.providers.dialects import dialect_named

    request = dialect_named(api).request
    pairs = [("system", "Be brief."), ("user", "hello"), ("assistant", "hi"), ("user", "again")]
    assert request("m", exchange_of(pairs), 7, True, "none") == request("m", pairs, 7, True, "none")
    assert request("m", exchange_of("hello"), 7, False, "none") == request("m", "hello", 7, False, "none")
    # anything more than plain text is no longer the plain request
    assert request("m", Exchange(exchange_of(pairs).messages, cache_through=0 if api == "messages" else None,
                                 schema=None if api == "messages" else SCHEMA), 7, True, "none") != request(
        "m", pairs, 7, True, "none")


def test_a_signature_is_kept_whole_within_the_arguments_budget_and_a_start_input_gives_way_to_pieces():
    calls = ToolCalls()
    calls.whole(0, 1.0, "f", None, {"a": 1}, "s" * (KEPT_ARGUMENT_CHARS - 20))
    calls.whole(1, 2.0, "g", None, {}, "too long for what is left")  # dropped whole, never a part of it
    assert calls.start(2, "h", "toolu_h", {"given": True})  # more than is left: cut
    calls.piece(2, None, arguments="{}")  # the pieces replace the input the start gave, and give its characters back
    assert calls.start(3, "k", "toolu_k")  # no input given: {}
    assert calls.complete(3, 3.0) and not calls.complete(2, 4.0) and not calls.complete(9, 5.0)
    assert [(c.arguments, c.signature and len(c.signature)) for c in calls.calls()] == [
        ('{"a": 1}', KEPT_ARGUMENT_CHARS - 20), ("{}", None), ("{}", None), ("{}", None)]
    assert calls.truncated and calls.last_at == 3.0  # a stop after pieces is not when they came
