"""Agent-shaped traffic against the simulator, through the real SDKs (openai chat and responses, anthropic,
google-genai): a tool call read back whole with arguments valid against the tool's parameters, a JSON answer valid
against the schema asked, and a conversation whose later turns read the earlier turns' prefix from the prompt cache,
with the shorter TTFT the simulator schedules for it. Validity is checked with the jsonschema library."""

from __future__ import annotations

import json

import anthropic
from google import genai
from google.genai import types as genai_types
import jsonschema
import openai
import pytest

from benchmarking.simulator import ModelProfile, Simulator
from benchmarking.simulator.calls import example
from benchmarking.simulator.state import CACHE_BLOCK_TOKENS, CACHE_MIN_TOKENS, TEMPLATE_TOKENS

KEY = "sk-test-simulator-agent"
QUICK = ModelProfile(ttft_ms=10, itl_ms=1, output_tokens=12)
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
SEARCH = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
TOOLS = [
    {"type": "function", "function": {"name": "search", "description": "Search the web", "parameters": SEARCH}},
    {"type": "function", "function": {"name": "get_weather", "description": "The forecast", "parameters": WEATHER}},
]
ASK_WEATHER = "Use get_weather: what is the forecast for Paris?"  # names the second tool: it is the one called
# A schema with most of what structured output uses: nesting, $defs and $ref, enums, bounds, arrays, nullable options.
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 8},
        "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
        "author": {"$ref": "#/$defs/person"},
        "status": {"enum": ["draft", "final"]},
        "note": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date"}]},
    },
    "required": ["title", "score", "tags", "author", "status", "note"],
    "additionalProperties": False,
    "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer",
                                                                                            "minimum": 18}},
                         "required": ["name", "age"], "additionalProperties": False}},
}


@pytest.fixture
def sim():
    with Simulator(profiles={}, default=QUICK) as simulator:
        yield simulator


def gpt(sim: Simulator) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=sim.base_url("openai"), max_retries=0, timeout=10)


def claude(sim: Simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=sim.base_url("anthropic"), max_retries=0, timeout=10)


def gemini(sim: Simulator) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=genai_types.HttpOptions(base_url=sim.base_url("gemini"),
                                                                          timeout=10_000))


def gemini_tools() -> list[genai_types.Tool]:
    declarations = [genai_types.FunctionDeclaration(name=tool["function"]["name"],
                                                    parameters_json_schema=tool["function"]["parameters"])
                    for tool in TOOLS]
    return [genai_types.Tool(function_declarations=declarations)]


def paced_like_tokens(sim: Simulator, pieces: int) -> None:
    """The server's own schedule: the call's pieces left one an inter-token time apart, after the planned TTFT."""
    (record,) = sim.log
    assert record.tool_call == "get_weather" and record.tools == 2 and record.entries == 1
    assert record.chunk_count == pieces > 10
    assert record.latency_ms >= record.planned_ttft_ms + (pieces - 1) * QUICK.itl_ms


# Tool calls, streamed and whole

def test_a_chat_stream_carries_the_call_in_pieces_with_its_id_and_name_first(sim):
    stream = gpt(sim).chat.completions.create(model="m", messages=[{"role": "user", "content": ASK_WEATHER}],
                                               tools=TOOLS, stream=True)
    deltas, finish = [], None
    for chunk in stream:
        deltas.extend(chunk.choices[0].delta.tool_calls or [])
        finish = chunk.choices[0].finish_reason or finish
    assert deltas[0].id and deltas[0].function.name == "get_weather" and deltas[0].function.arguments == ""
    assert all(d.index == 0 and d.id is None and d.function.name is None for d in deltas[1:])
    arguments = json.loads("".join(d.function.arguments for d in deltas))
    jsonschema.validate(arguments, WEATHER)
    assert finish == "tool_calls"
    paced_like_tokens(sim, len(deltas))


def test_a_whole_chat_answer_is_the_same_call(sim):
    message = gpt(sim).chat.completions.create(model="m", messages=[{"role": "user", "content": ASK_WEATHER}],
                                                tools=TOOLS).choices[0].message
    (call,) = message.tool_calls
    assert message.content is None and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)


def test_a_responses_stream_adds_the_call_item_then_its_argument_deltas(sim):
    tools = [{"type": "function", "name": t["function"]["name"], "parameters": t["function"]["parameters"],
              "strict": True} for t in TOOLS]
    with gpt(sim).responses.stream(model="m", input=ASK_WEATHER, tools=tools) as stream:
        events = list(stream)
        response = stream.get_final_response()
    kinds = [event.type for event in events]
    deltas = [event for event in events if event.type == "response.function_call_arguments.delta"]
    assert kinds[2] == "response.output_item.added" and events[2].item.name == "get_weather"
    assert kinds[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    (call,) = response.output
    assert call.type == "function_call" and call.arguments == "".join(d.delta for d in deltas)
    jsonschema.validate(json.loads(call.arguments), WEATHER)
    paced_like_tokens(sim, len(deltas) + 1)  # the item's addition is the name's token


def test_a_messages_stream_is_a_tool_use_block_of_input_json_deltas(sim):
    tools = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in TOOLS]
    with claude(sim).messages.stream(model="m", max_tokens=200, tools=tools,
                                     messages=[{"role": "user", "content": ASK_WEATHER}]) as stream:
        deltas = [e.delta.partial_json for e in stream if e.type == "content_block_delta"]
        message = stream.get_final_message()
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "get_weather" and message.stop_reason == "tool_use"
    assert block.input == json.loads("".join(deltas))
    jsonschema.validate(block.input, WEATHER)
    paced_like_tokens(sim, len(deltas) + 1)  # the block's start is the name's token


def test_gemini_sends_the_call_whole_once_its_arguments_are_done(sim):
    config = genai_types.GenerateContentConfig(tools=gemini_tools())
    client = gemini(sim)  # held: a client that is collected closes its connections
    chunks = list(client.models.generate_content_stream(model="m", contents=ASK_WEATHER, config=config))
    (chunk,) = chunks
    (call,) = chunk.function_calls
    assert call.name == "get_weather" and chunk.candidates[0].finish_reason == genai_types.FinishReason.STOP
    jsonschema.validate(call.args, WEATHER)
    assert chunk.candidates[0].content.parts[0].thought_signature  # to be sent back with the call, as Gemini 3 asks
    (record,) = sim.log
    assert record.tool_call == "get_weather" and record.chunk_count == 1 and record.output_tokens > 10
    assert record.latency_ms >= record.planned_ttft_ms + (record.output_tokens - 1) * QUICK.itl_ms


# Which tool, and when none

def test_the_tool_choice_names_the_tool_else_the_message_does_else_the_first(sim):
    client = gpt(sim)

    def called(content: str, **options) -> str | None:
        message = client.chat.completions.create(model="m", messages=[{"role": "user", "content": content}],
                                                  tools=TOOLS, **options).choices[0].message
        return message.tool_calls[0].function.name if message.tool_calls else None

    assert called(ASK_WEATHER, tool_choice={"type": "function", "function": {"name": "search"}}) == "search"
    assert called(ASK_WEATHER) == "get_weather"
    assert called("anything at all", tool_choice="required") == "search"
    assert called(ASK_WEATHER, tool_choice="none") is None


def test_after_a_tool_result_the_answer_is_text_so_the_loop_ends(sim):
    client, asked = gpt(sim), [{"role": "user", "content": ASK_WEATHER}]
    first = client.chat.completions.create(model="m", messages=asked, tools=TOOLS).choices[0].message
    result = {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": '{"forecast": "sunny"}'}
    second = client.chat.completions.create(model="m", tools=TOOLS,
                                            messages=[*asked, first.model_dump(exclude_none=True), result])
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls
    assert second.choices[0].finish_reason == "stop"
    assert [r.entries for r in sim.log] == [1, 3] and [r.tool_call for r in sim.log] == ["get_weather", None]


def test_gemini_mode_any_with_one_allowed_name_calls_it(sim):
    calling = genai_types.FunctionCallingConfig(mode="ANY", allowed_function_names=["search"])
    config = genai_types.GenerateContentConfig(tools=gemini_tools(),
                                               tool_config=genai_types.ToolConfig(function_calling_config=calling))
    client = gemini(sim)
    response = client.models.generate_content(model="m", contents=ASK_WEATHER, config=config)
    assert [call.name for call in response.function_calls] == ["search"]
    jsonschema.validate(response.function_calls[0].args, SEARCH)


# Structured output

def test_a_chat_schema_answer_streams_in_pieces_and_validates(sim):
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": ANSWER_SCHEMA, "strict": True}}
    stream = gpt(sim).chat.completions.create(model="m", messages=[{"role": "user", "content": "review"}],
                                               response_format=response_format, stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 20
    jsonschema.validate(json.loads("".join(pieces)), ANSWER_SCHEMA)
    assert sim.log[0].schema and sim.log[0].tools == 0


def test_a_responses_schema_answer_validates(sim):
    text = {"format": {"type": "json_schema", "name": "a", "schema": ANSWER_SCHEMA, "strict": True}}
    response = gpt(sim).responses.create(model="m", input="review", text=text)
    jsonschema.validate(json.loads(response.output_text), ANSWER_SCHEMA)


def test_an_anthropic_output_config_answer_validates(sim):
    message = claude(sim).messages.create(model="m", max_tokens=500, messages=[{"role": "user", "content": "review"}],
                                          output_config={"format": {"type": "json_schema", "schema": ANSWER_SCHEMA}})
    jsonschema.validate(json.loads(message.content[0].text), ANSWER_SCHEMA)


def test_a_gemini_response_json_schema_answer_validates_streamed(sim):
    config = genai_types.GenerateContentConfig(response_mime_type="application/json",
                                               response_json_schema=ANSWER_SCHEMA)
    client = gemini(sim)
    chunks = client.models.generate_content_stream(model="m", contents="review", config=config)
    jsonschema.validate(json.loads("".join(chunk.text for chunk in chunks)), ANSWER_SCHEMA)


def test_an_answer_cut_by_its_cap_is_json_that_does_not_parse(sim):
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": ANSWER_SCHEMA}}
    choice = gpt(sim).chat.completions.create(model="m", messages=[{"role": "user", "content": "review"}],
                                              response_format=response_format, max_tokens=5).choices[0]
    assert choice.finish_reason == "length"
    with pytest.raises(ValueError):
        json.loads(choice.message.content)


@pytest.mark.parametrize("schema", [
    ANSWER_SCHEMA,
    {"type": "OBJECT", "properties": {"n": {"type": "INTEGER", "minimum": 3}, "s": {"type": "STRING"}},
     "required": ["n"]},  # Gemini's Schema form (checked in JSON Schema's spelling)
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
               {"properties": {"b": {"type": "number", "multipleOf": 0.5, "minimum": 2.2}}, "required": ["b"]}]},
    {"type": "array", "prefixItems": [{"type": "boolean"}, {"const": 7}], "maxItems": 2},
    {"type": "object", "properties": {"child": {"$ref": "#"}}},  # recursive: optional below the top
    {"type": ["string", "null"], "format": "email"},
])
def test_example_values_validate_against_their_schema(schema):
    lowered = json.loads(json.dumps(schema).replace('"OBJECT"', '"object"').replace('"INTEGER"', '"integer"')
                         .replace('"STRING"', '"string"'))
    jsonschema.validate(example(schema), lowered)
    assert example(schema) == example(schema)  # deterministic


# The prompt cache across a conversation's turns

SYSTEM = " ".join(f"rule{i}" for i in range(1_100))  # a prefix past the 1,024 tokens a cache needs
COLD_SYSTEM = " ".join(f"other{i}" for i in range(1_100))  # the same size, never seen


@pytest.mark.parametrize("prefill", [20_000, None])
def test_turn_two_of_a_chat_conversation_reads_turn_ones_prefix_and_is_scheduled_sooner(prefill):
    profile = ModelProfile(ttft_ms=40, itl_ms=1, output_tokens=100, prefill_tokens_per_s=prefill)
    with Simulator(profiles={"m": profile}) as sim:
        client, messages, cached = gpt(sim), [{"role": "system", "content": SYSTEM}], []
        for question in ("First question?", "Second question?", "Third question?"):
            messages.append({"role": "user", "content": question})
            stream = client.chat.completions.create(model="m", messages=messages, stream=True,
                                                    stream_options={"include_usage": True})
            chunks = list(stream)
            usage = chunks[-1].usage
            cached.append(usage.prompt_tokens_details.cached_tokens)
            answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            messages.append({"role": "assistant", "content": answer})  # the real answer goes back
        turns = list(sim.log)
        cold = client.chat.completions.create(model="m", messages=[{"role": "system", "content": COLD_SYSTEM},
                                                                   *messages[1:4]])
        (_, _, _, cold_record) = sim.log
    assert [r.entries for r in turns] == [1, 3, 5]
    assert turns[1].body["messages"][2] == messages[2] and turns[2].body["messages"][4] == messages[4]
    assert cached[0] == 0 and CACHE_MIN_TOKENS <= cached[1] < cached[2]
    # turn 2 reads turn 1's whole blocks (a chat template's tokens are counted, but are no text to cache)
    assert cached[1] == (turns[0].prompt_tokens - TEMPLATE_TOKENS) // CACHE_BLOCK_TOKENS * CACHE_BLOCK_TOKENS
    assert [r.cached_tokens for r in turns] == cached
    assert cold.usage.prompt_tokens == turns[1].prompt_tokens and cold.usage.prompt_tokens_details.cached_tokens == 0
    assert turns[1].planned_ttft_ms < cold_record.planned_ttft_ms
    assert turns[1].latency_ms >= turns[1].planned_ttft_ms  # its tokens left on the schedule, not before


def test_a_tool_call_and_its_result_are_part_of_the_cached_prefix(sim):
    client, messages = gpt(sim), [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK_WEATHER}]
    call = client.chat.completions.create(model="m", messages=messages, tools=TOOLS).choices[0].message
    messages += [call.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.tool_calls[0].id, "content": " ".join(["sunny"] * 200)}]
    client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    messages.append({"role": "user", "content": "And tomorrow?"})
    third = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    first, second, _ = sim.log
    assert second.prompt_tokens > first.prompt_tokens + 200  # the call and its result are read
    assert third.usage.prompt_tokens_details.cached_tokens > second.prompt_tokens - CACHE_BLOCK_TOKENS - 10


def test_responses_and_gemini_report_the_cache_on_turn_two(sim):
    first = gpt(sim).responses.create(model="m", instructions=SYSTEM, input="First question?")
    again = [{"role": "user", "content": "First question?"}, {"role": "assistant", "content": first.output_text},
             {"role": "user", "content": "Second?"}]
    second = gpt(sim).responses.create(model="m", instructions=SYSTEM, input=again)
    assert first.usage.input_tokens_details.cached_tokens == 0
    assert second.usage.input_tokens_details.cached_tokens >= CACHE_MIN_TOKENS
    client = gemini(sim)
    config = genai_types.GenerateContentConfig(system_instruction=COLD_SYSTEM)
    one = client.models.generate_content(model="m", contents="First question?", config=config)
    contents = [genai_types.Content(role="user", parts=[genai_types.Part(text="First question?")]),
                one.candidates[0].content, genai_types.Content(role="user", parts=[genai_types.Part(text="Second?")])]
    two = client.models.generate_content(model="m", contents=contents, config=config)
    assert one.usage_metadata.cached_content_token_count is None
    assert two.usage_metadata.cached_content_token_count >= CACHE_MIN_TOKENS
    assert [r.entries for r in sim.log] == [1, 3, 1, 3]


def test_anthropic_reads_only_through_a_cache_control_breakpoint(sim):
    client = claude(sim)

    def ask(messages: list[dict], system: object = SYSTEM) -> anthropic.types.Usage:
        return client.messages.create(model="m", max_tokens=50, system=system, messages=messages).usage

    plain = [{"role": "user", "content": "First question?"}]
    assert ask(plain).cache_read_input_tokens == ask(plain).cache_read_input_tokens == 0  # no breakpoint: no cache
    marked = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    written = ask(plain, marked)
    assert written.cache_creation_input_tokens == 1_100 and written.cache_read_input_tokens == 0
    turn_two = [*plain, {"role": "assistant", "content": "An answer."}, {"role": "user", "content": "Second?"}]
    read = ask(turn_two, marked)
    assert read.cache_read_input_tokens == 1_024 and read.cache_creation_input_tokens == 1_100 - 1_024
    assert sim.log[-1].cacheable_tokens == 1_100


def test_a_schema_that_asks_for_too_much_gets_a_bounded_answer_at_once(sim):
    """References that multiply (ten properties a level, ten levels), a billion items, a billion characters: the
    answer is made within fixed bounds, and the server goes on serving."""
    level = {"type": "object", "properties": {f"p{i}": {"$ref": "#/$defs/level"} for i in range(10)},
             "required": [f"p{i}" for i in range(10)]}
    huge = {"type": "object", "$defs": {"level": level},
            "properties": {"tree": {"$ref": "#/$defs/level"},
                           "many": {"type": "array", "items": {"type": "string"}, "minItems": 10**9},
                           "long": {"type": "string", "minLength": 10**9}},
            "required": ["tree", "many", "long"]}
    made = json.dumps(example(huge))
    assert len(made) < 1_000_000
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": huge}}
    answer = gpt(sim).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                              response_format=response_format, max_tokens=50).choices[0]
    assert answer.finish_reason == "length" and sim.log[0].output_tokens == 50
