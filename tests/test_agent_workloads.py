"""A prompt file's agent keys (turns, tools, tool_choice, expect_tool, tool_results, schema, think_time_s): each wrong
shape refused in one line naming the file, line and key, with nothing sent; what is stored with the run; the judging
of answers in bounded time; a conversation's requests in the plan and the cost bound."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import time

import pytest

from benchmarking.agent_workloads import ExpectedTool, MAX_FOLLOW_UPS, judged, schema_valid
from benchmarking.benchmark_runner import cost_bound, plan
from benchmarking.dialogue import ToolCall
from benchmarking.errors import ConfigError
from benchmarking.expectations import Expectation
from benchmarking.providers.conversation import input_bounds, requests_per_round
from benchmarking.workloads import load_prompt_file, prompt_record

from test_cli import rows, run_main

MAIN = Path(__file__).resolve().parent.parent / "main.py"

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def loaded(tmp_path: Path, *entries: object):
    path = tmp_path / "set.jsonl"
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries))
    return load_prompt_file(str(path))


def deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


TOOLS = {"tools": [WEATHER]}


@pytest.mark.parametrize("entry, message", [
    ({"turns": []}, "turns must be a non-empty list"),
    ({"turns": "hi"}, "turns must be a non-empty list"),
    ({"turns": ["hi", 3]}, "turns item 2 must be text"),
    ({"turns": [{"text": "hi", "exp": "x"}]}, "turns item 1: unknown key 'exp'"),
    ({"turns": [{"text": "hi", "expect": 3}]}, "turns item 1: expect must be text"),
    ({"turns": ["hi"] * 101}, "turns holds 101 messages; a conversation has at most 100"),
    ({"turns": ["hi"], "prompt": "hi"}, "give turns, or prompt/messages, not both"),
    ({"turns": ["hi"], "system": 3}, "system must be text"),
    ({"turns": ["hi"], "think_time_s": -1}, "think_time_s must be a number of seconds from 0 to 3600"),
    ({"turns": ["hi"], "think_time_s": 1e9}, "think_time_s must be"),
    ({"turns": ["hi"], "think_time_s": True}, "think_time_s must be"),
    ({"prompt": "hi", "think_time_s": 1}, "think_time_s is the pause between the turns"),
    ({"prompt": "hi", "tools": {}}, "tools must be a non-empty list"),
    ({"prompt": "hi", "tools": []}, "tools must be a non-empty list"),
    ({"prompt": "hi", "tools": [{}] * 100_000}, "tools holds 100,000 tools; at most 128"),
    ({"prompt": "hi", "tools": [{"type": "web"}]}, "tools item 1 must be {\"type\": \"function\""),
    ({"prompt": "hi", "tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools item 1: name must be 1"),
    ({"prompt": "hi", "tools": [{"type": "function", "function": {"name": "x" * 1_000_000}}]},
     "name must be 1 to 64 letters, digits, _ or -, not 'xxxxx"),
    ({"prompt": "hi", "tools": [WEATHER, WEATHER]}, "tools item 2: tool name 'get_weather' appears twice"),
    ({"prompt": "hi", "tools": [{"type": "function", "function": {"name": "f", "params": {}}}]},
     "unknown key 'params' in function"),
    ({"prompt": "hi", "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]},
     "tools item 1: parameters is not a valid JSON Schema"),
    ({"prompt": "hi", "tool_choice": "auto"}, "tool_choice needs tools"),
    ({"prompt": "hi", **TOOLS, "tool_choice": "any"}, "tool_choice must be 'auto', 'required', 'none'"),
    ({"prompt": "hi", **TOOLS, "tool_choice": {"type": "function", "function": {"name": "other"}}},
     "tool_choice names 'other', which is no tool of this entry"),
    ({"prompt": "hi", **TOOLS, "expect_tool": "other"}, "expect_tool names 'other', which is no tool of this entry"),
    ({"prompt": "hi", **TOOLS, "expect_tool": {"name": "get_weather", "arguments": []}},
     "expect_tool's arguments must be an object"),
    ({"prompt": "hi", **TOOLS, "expect_tool": 3}, "expect_tool must be a tool's name"),
    ({"prompt": "hi", "expect_tool": "get_weather"}, "expect_tool needs tools"),
    ({"prompt": "hi", **TOOLS, "tool_results": {"other": "x"}}, "tool_results names 'other'"),
    ({"prompt": "hi", **TOOLS, "tool_results": []}, "tool_results must be an object"),
    ({"prompt": "hi", "schema": "object"}, "schema must be a JSON Schema object"),
    ({"prompt": "hi", "schema": {"type": "nothing"}}, "schema is not a valid JSON Schema"),
    ({"prompt": "hi", "schema": deep(500)}, "schema nests more than 64 levels deep"),
    ({"prompt": "hi", "schema": {"type": "string", "pattern": "(a)\\1"}}, "cannot be matched in linear time"),
    ({"prompt": "hi", "schema": {"type": "object", "patternProperties": {"a": {}}}}, "uses patternProperties"),
])
def test_wrong_shapes_are_refused_naming_file_line_and_key(tmp_path, entry, message):
    with pytest.raises(ConfigError) as refused:
        loaded(tmp_path, {"prompt": "first"}, entry)
    line = str(refused.value)
    assert "\n" not in line and len(line) < 400
    assert line.startswith(f"{tmp_path / 'set.jsonl'} line 2: ") and message in line, line


def test_a_schema_nested_10000_deep_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="line 1: nested too deeply"):
        loaded(tmp_path, '{"prompt": "hi", "schema": ' + '{"items": ' * 10_000 + "{}" + "}" * 10_001)


@pytest.mark.parametrize("entry, words", [
    ({"id": "c", "turns": []}, "turns must be a non-empty list"),
    ({"id": "t", "prompt": "hi", "tools": [WEATHER], "expect_tool": "nope"}, "expect_tool names 'nope'"),
])
def test_main_refuses_in_one_line_with_exit_2_and_stores_nothing(tmp_path, entry, words):
    (tmp_path / "set.jsonl").write_text(json.dumps(entry) + "\n")
    done = run_main(tmp_path, "--simulate", "--prompts", "set.jsonl")
    assert done.returncode == 2
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "benchmarks.db").exists() or rows(tmp_path / "benchmarks.db",
                                                             "select * from benchmark_results") == []


def test_a_load_run_refuses_a_conversation(tmp_path):
    (tmp_path / "set.jsonl").write_text(json.dumps({"id": "c", "turns": ["a", "b"]}) + "\n")
    done = run_main(tmp_path, "--simulate", "--prompts", "set.jsonl", "--concurrency", "2", "--requests", "4")
    assert done.returncode == 2
    assert "prompt 'c' is a conversation" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_keys_are_read_and_stored_with_the_run(tmp_path):
    workload = loaded(
        tmp_path,
        {"id": "chat", "system": "S", "turns": ["one", {"text": "two", "expect": "/x/i"}], "expect": "y",
         "think_time_s": 2.5},
        {"id": "tool", "prompt": "p", "tools": [WEATHER], "tool_choice": "required",
         "expect_tool": {"name": "get_weather", "arguments": {"city": "Paris"}}, "tool_results": {"get_weather": [1]}},
        {"id": "json", "prompt": "p", "schema": {"type": "object"}},
    )
    chat, tool, schema = workload.prompts
    assert chat.messages == (("system", "S"), ("user", "one"), ("user", "two"))
    assert chat.turns[1].expect.text == "/x/i" and chat.think_time_s == 2.5
    assert tool.tool_results == {"get_weather": "[1]"} and tool.expect_tool == ExpectedTool("get_weather",
                                                                                          {"city": "Paris"})
    assert prompt_record(chat) == {"id": "chat", "expect": "y", "system": "S", "think_time_s": 2.5,
                                   "turns": [{"text": "one"}, {"text": "two", "expect": "/x/i"}]}
    assert prompt_record(tool)["tool_choice"] == "required" and prompt_record(tool)["tools"] == [WEATHER]
    assert prompt_record(tool)["expect_tool"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert prompt_record(schema)["schema"] == {"type": "object"}
    assert (requests_per_round(chat), requests_per_round(tool), requests_per_round(schema)) == \
        (2, 1 + MAX_FOLLOW_UPS, 1)


def test_a_txt_file_is_read_as_before(tmp_path):
    path = tmp_path / "set.txt"
    path.write_text("turns\n---\ntools\n")
    assert [p.text for p in load_prompt_file(str(path)).prompts] == ["turns", "tools"]


def test_the_cost_bound_counts_each_request_and_the_growing_input(tmp_path):
    from benchmarking.settings.load import load_settings
    from benchmarking import benchmark_runner

    workload = loaded(tmp_path, {"id": "c", "system": "S" * 100, "turns": ["a" * 10, "b" * 10, "c" * 10]})
    settings = load_settings(prompt="hi", builtin=[(n, m) for n, _, m in benchmark_runner.PROVIDERS],
                             environ={"OPENAI_API_KEY": "k" * 20}, provider_selection="openai", workload=workload,
                             max_tokens=50)
    cells = plan(settings)
    bounds = input_bounds(cells[0].prompt, 50)
    assert len(bounds) == 3 and bounds[1] - bounds[0] >= 50 + 10 and bounds[2] - bounds[1] >= 50 + 10
    bound = cost_bound(cells, 2, "bust")
    assert bound.requests == 6 and bound.per_model[0][2] == 6


def test_dry_run_counts_a_conversations_requests(tmp_path):
    (tmp_path / "set.jsonl").write_text(json.dumps({"id": "c", "turns": ["a", "b", "c"]}) + "\n")
    done = run_main(tmp_path, "--simulate", "--providers", "openai", "--prompts", "set.jsonl", "--repeat", "2",
                    "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "= 6 requests" in done.stdout


# ---- judging --------------------------------------------------------------------------------------------------------

def test_judging_is_the_and_of_the_checks_that_apply():
    paris = ToolCall("get_weather", '{"city": "Paris", "days": 1}')
    expected = ExpectedTool("get_weather", {"city": "Paris"})
    # (answer_ok, json_valid, tool_ok)
    assert judged("hello", ()) == (None, None, None)
    assert judged("hello", (paris,), expect_tool=expected) == (True, None, True)
    assert judged("", (ToolCall("get_weather", '{"city": 1}'),), expect_tool=expected) == (False, None, False)
    assert judged("", (ToolCall("other", "{oops"),)) == (False, None, None)  # arguments that do not parse
    assert judged('{"a": 1}', (), schema={"type": "object"}) == (True, True, None)
    assert judged("[1]", (), schema={"type": "object"}) == (False, False, None)
    # the right tool, and an answer that misses its expect: the tool choice stands on its own
    assert judged("no", (paris,), expect=Expectation("yes"), expect_tool=expected) == (False, None, True)
    assert ExpectedTool("f", {"n": 1}).met_by((ToolCall("f", '{"n": 1.0}'),))
    assert not ExpectedTool("f", {"n": 1}).met_by((ToolCall("f", '{"n": true}'),))


@pytest.mark.parametrize("text", [
    "[" * 1_000_000,  # a megabyte of nesting
    json.dumps(["a" * 40 + "!"]),  # a pattern that backtracks for ages in Python's re
    json.dumps(list(range(50_000)) + [{"x": 1}]),  # uniqueItems over many unhashable-mixed items
])
def test_validation_is_bounded(text):
    schema = {"type": "array", "uniqueItems": True, "items": {"anyOf": [{"type": "string", "pattern": "^(a+)+$"},
                                                                        {"type": "integer"}, {"type": "object"}]}}
    began = time.perf_counter()
    assert schema_valid(text, schema) is (text.startswith("[0"))
    assert time.perf_counter() - began < 60  # minutes with Python's re and jsonschema's pairwise uniqueItems


def test_load_rows_are_judged_as_sequential_ones(tmp_path):
    (tmp_path / "set.jsonl").write_text(json.dumps({"id": "l", "prompt": "hi", "expect": "/lorem/i"}) + "\n"
                                        + json.dumps({"id": "n", "prompt": "hi", "expect": "no such words"}) + "\n")
    done = run_main(tmp_path, "--simulate", "--providers", "openai", "--prompts", "set.jsonl", "--concurrency", "2",
                    "--requests", "4")
    assert done.returncode == 0, done.stderr
    stored = rows(tmp_path / "benchmarks.db", "select prompt_id, answer_ok, tool_calls from benchmark_results")
    assert sorted((r["prompt_id"], r["answer_ok"]) for r in stored) == [("l", 1), ("l", 1), ("n", 0), ("n", 0)]


# ---- what hostile testing found ---------------------------------------------------------------------------------

@pytest.mark.parametrize("schema, words", [
    ({"$ref": "#/definitions/nope"}, "points to nothing in the schema"),  # crashed the run at judging, row lost
    ({"$ref": "http://127.0.0.1:9/s.json"}, "only references inside the schema"),  # judging fetched it, unbounded
    ({"properties": {"a": {"$ref": "file:///etc/passwd"}}}, "nothing is fetched"),
    ({"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(5_001)}}, "more than 5,000 objects"),
])
def test_a_schema_judging_could_not_apply_is_refused_when_the_file_is_read(tmp_path, schema, words):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "x", "schema": schema}) + "\n")
    with pytest.raises(ConfigError, match=words):
        load_prompt_file(str(path))


def test_references_inside_a_schema_are_followed_and_nothing_outside_is_fetched():
    schema = {"$defs": {"n": {"type": "integer"}}, "properties": {"x": {"$ref": "#/$defs/n"}}}
    assert schema_valid('{"x": 1}', schema) is True and schema_valid('{"x": "1"}', schema) is False
    # a schema that judging cannot apply (the checks above keep it from a file) is no verdict on the answer
    assert schema_valid('{"x": 1}', {"$ref": "http://127.0.0.1:9/never-fetched.json"}) is None


def test_a_key_given_twice_on_one_line_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"turns": ["a"], "turns": ["b", "c"]}\n')
    with pytest.raises(ConfigError, match="the key 'turns' appears twice in one object"):
        load_prompt_file(str(path))


def test_a_pattern_re2_refuses_is_one_line_and_re2_writes_none_of_its_own(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "x", "schema": {"type": "string", "pattern": "(a)\\1"}}) + "\n")
    done = subprocess.run([sys.executable, str(MAIN), "--simulate", "--prompts", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "linear time" in done.stderr, done.stderr
