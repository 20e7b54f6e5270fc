"""Conversations in the sequential runner: the history each turn sends (the real earlier answers), one row per request
with session_id and turn, a failing turn ending its conversation, think time, tool follow-ups, judging, warm caching.

The history goes through the real openai SDK to a chat server written here, which logs each request's messages and
when it came. Tool calls reach the runner as a dialect hands them over (Measurement.calls): until the dialects read
them from streams, a call function that records each Exchange stands in for the wire.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import sys
import threading
import time

import pytest

from benchmarking import benchmark_runner
from benchmarking.benchmark_runner import run_benchmark
from benchmarking.console import ConsoleReporter
from benchmarking.dialogue import Exchange, ToolCall, exchange_of, stored_calls
from benchmarking.measurement import Measurement
from benchmarking.settings.load import load_settings
from benchmarking.workloads import load_prompt_file

from conftest import FAKE_KEY


class ChatServer:
    """A Chat Completions server on loopback: answers each request with a short stream ("answer N" for the N-th
    request), or with HTTP 400 for the request numbers in `failing`; logs each request's messages and arrival time."""

    def __init__(self, failing: set[int] = frozenset()) -> None:
        self.log: list[tuple[float, list[dict]]] = []
        self.failing = set(failing)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.log.append((time.perf_counter(), body["messages"]))
                number = len(outer.log)
                if number in outer.failing:
                    data = json.dumps({"error": {"message": "bad turn", "type": "invalid_request_error"}}).encode()
                    self.send_response(400)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                events = [{"role": "assistant", "content": ""}, {"content": f"answer {number}"}]
                chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                           "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in events]
                chunks.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                chunks.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                               "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
                data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                data = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "ChatServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write(tmp_path: Path, *entries: dict) -> str:
    path = tmp_path / "agent.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return str(path)


def openai_settings(url: str, prompts: str, cache: str = "bust", repeat: int = 1):
    settings = load_settings(prompt="hi", builtin=[(n, m) for n, _, m in benchmark_runner.PROVIDERS],
                             environ={"OPENAI_API_KEY": FAKE_KEY, "BENCHMARK_HOST": "t"}, provider_selection="openai",
                             model_overrides=["openai=m"], workload=load_prompt_file(prompts, cache), repeat=repeat)
    return settings.pointed_at({"openai": url}, FAKE_KEY)


CONVERSATION = {"id": "chat", "system": "Be brief.", "turns": ["first question", "second question", "third"]}


def test_each_turn_sends_the_real_earlier_answers_and_is_one_row(tmp_path, storage, capsys):
    with ChatServer() as server:
        outcome = run_benchmark(openai_settings(server.url, write(tmp_path, CONVERSATION)), storage,
                                ConsoleReporter(sys.stdout))
    assert outcome.status == "completed"
    sent = [messages for _, messages in server.log]
    assert [len(m) - 1 for m in sent] == [1, 3, 5]  # besides the system message: 1, 3, 5 messages
    marker = sent[0][0]["content"]
    assert marker.startswith("[") and marker.endswith("] Be brief.")  # --cache bust: marked once per conversation
    assert [m[0]["content"] for m in sent] == [marker] * 3  # the same marker on every turn: its prefix can be cached
    assert sent[2][1:] == [
        {"role": "user", "content": "first question"}, {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "second question"}, {"role": "assistant", "content": "answer 2"},
        {"role": "user", "content": "third"}]
    stored = [r.measurement for r in storage.read_results()]
    assert [(m.turn, m.prompt_id, m.success) for m in stored] == [(1, "chat", True), (2, "chat", True),
                                                                   (3, "chat", True)]
    assert len({m.session_id for m in stored}) == 1 and stored[0].session_id
    assert stored[0].tool_calls is None and stored[0].json_valid is None  # no tools, no schema offered
    assert "Turn: 2 (session" in capsys.readouterr().out


def test_each_round_is_a_session_of_its_own(tmp_path, storage):
    with ChatServer() as server:
        run_benchmark(openai_settings(server.url, write(tmp_path, CONVERSATION), repeat=2), storage,
                      ConsoleReporter(sys.stdout))
    stored = [r.measurement for r in storage.read_results()]
    assert [(m.round, m.turn) for m in stored] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert len({m.session_id for m in stored[:3]}) == 1 and stored[0].session_id != stored[3].session_id
    firsts = [messages[0]["content"] for _, messages in server.log]
    assert firsts[0] == firsts[2] != firsts[3]  # a new marker for each round's conversation


def test_a_failing_turn_ends_its_conversation(tmp_path, storage, capsys):
    with ChatServer(failing={2}) as server:
        outcome = run_benchmark(openai_settings(server.url, write(tmp_path, CONVERSATION)), storage,
                                ConsoleReporter(sys.stdout))
    assert len(server.log) == 2  # turn 3 never sent
    stored = [r.measurement for r in storage.read_results()]
    assert [(m.turn, m.success) for m in stored] == [(1, True), (2, False)]
    assert outcome.status == "failed"
    out = capsys.readouterr().out
    assert "Conversation chat ended: request 2 failed (" in out and "1 later turn not sent" in out


def test_think_time_passes_between_turns(tmp_path, storage):
    entry = {**CONVERSATION, "think_time_s": 0.3}
    with ChatServer() as server:
        run_benchmark(openai_settings(server.url, write(tmp_path, entry)), storage, ConsoleReporter(sys.stdout))
    arrivals = [at for at, _ in server.log]
    assert len(arrivals) == 3
    assert all(later - earlier >= 0.3 for earlier, later in zip(arrivals, arrivals[1:]))


def test_warm_cache_marks_each_requests_last_message_and_sends_no_warm_up(recorded):
    settings, exchanges = recorded([answer("one"), answer("two"), answer("three")], CONVERSATION, cache="warm")
    run_benchmark(settings, MemoryStorage(), ConsoleReporter(sys.stdout))
    # The new message of each request: written there, it is what the next request reads (from turn 2 on)
    assert [e.cache_through for e in exchanges] == [1, 3, 5]
    assert [len(e.messages) for e in exchanges] == [2, 4, 6]  # no untimed warm-up request
    assert exchanges[0].messages[0].content == "Be brief."  # not marked


# ---- tools and schemas, through a call function that records each Exchange ---------------------------------------

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}}


def answer(text: str = "", calls: tuple[ToolCall, ...] = (), success: bool = True) -> Measurement:
    return Measurement(provider="openai", model="m", success=success, started_at=datetime.now(timezone.utc),
                       stream=True, response_text=text if success else None, calls=calls,
                       tool_calls=stored_calls(calls) if calls else None,
                       error_type=None if success else "http_error")


class MemoryStorage:
    """Storage that keeps rows in a list (the runner's contract, no database needed for these)."""

    backend, location = "memory", "here"

    def __init__(self) -> None:
        self.rows: list[Measurement] = []

    def create_run(self, run):
        return None

    def save_result(self, run_id, result_id, created_at, measurement):
        self.rows.append(measurement)

    def finish_run(self, run_id, status, finished_at):
        return None


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """settings(answers, *entries, cache=...): a run whose openai call function records each Exchange it is given
    (in the list returned beside) and answers the next of `answers`."""

    def settings(answers: list[Measurement], *entries: dict, cache: str = "off"):
        exchanges: list[Exchange] = []

        def call(prompt, model, provider_settings):
            exchanges.append(exchange_of(prompt))
            return answers[len(exchanges) - 1]

        monkeypatch.setattr(benchmark_runner, "PROVIDERS", [("openai", call, "m")])
        return openai_settings("http://127.0.0.1:9/v1", write(tmp_path, *entries), cache), exchanges

    return settings


def test_a_called_tool_with_a_canned_result_is_followed_by_the_call_and_its_result(recorded):
    call = ToolCall("get_weather", '{"city": "Paris"}', call_id="call_1")
    entry = {"id": "tool", "prompt": "Weather in Paris?", "tools": [WEATHER], "tool_results": {"get_weather": {"c": 18}},
             "expect_tool": {"name": "get_weather", "arguments": {"city": "Paris"}}, "expect": "18"}
    settings, exchanges = recorded([answer(calls=(call,)), answer("It is 18 C")], entry)
    storage = MemoryStorage()
    run_benchmark(settings, storage, ConsoleReporter(sys.stdout))
    assert len(exchanges) == 2
    follow_up = exchanges[1].messages
    assert [m.role for m in follow_up] == ["user", "assistant", "tool"]
    assert follow_up[1].tool_calls == (call,) and follow_up[2].answers == call and follow_up[2].content == '{"c": 18}'
    assert exchanges[1].tools == (WEATHER,)
    rows = storage.rows
    assert [(m.turn, m.answer_ok, m.tool_calls) for m in rows] == [
        (1, True, '[{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}]'),  # expect_tool met
        (2, True, "[]"),  # the final answer: expect met, tools offered and none called
    ]


@pytest.mark.parametrize("calls, ok", [
    ((ToolCall("get_weather", '{"city": "Rome"}'),), False),  # other arguments
    ((ToolCall("get_weather", '{"city": "Paris", "unit": "C"}'),), True),  # other keys allowed
    ((ToolCall("get_weather", '{"city": "Par'),), False),  # arguments that do not parse
    ((), False),  # no call
])
def test_expect_tool_judges_the_first_answer(recorded, calls, ok):
    entry = {"id": "tool", "prompt": "Weather in Paris?", "tools": [WEATHER],
             "expect_tool": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    storage = MemoryStorage()
    run_benchmark(recorded([answer(calls=calls)], entry)[0], storage, ConsoleReporter(sys.stdout))
    assert [(m.answer_ok, m.tool_ok, m.success, m.turn) for m in storage.rows] == [(ok, ok, True, None)]


def test_calls_cut_at_what_is_kept_are_left_unjudged_not_held_against_the_model(recorded):
    entry = {"id": "tool", "prompt": "Weather in Paris?", "tools": [WEATHER],
             "expect_tool": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    cut = replace(answer(calls=(ToolCall("get_weather", '{"city": "Paris", "notes": "xxxx'),)), response_truncated=True)
    storage = MemoryStorage()
    run_benchmark(recorded([cut], entry)[0], storage, ConsoleReporter(sys.stdout))
    assert [(m.answer_ok, m.tool_ok, m.success) for m in storage.rows] == [(None, None, True)]


def test_a_call_with_no_canned_result_ends_the_conversation(recorded, capsys):
    entry = {"id": "chat", "turns": ["weather?", "and tomorrow?"], "tools": [WEATHER],
             "tool_results": {"get_weather": "sunny"}}
    calls = (ToolCall("get_weather", "{}"), ToolCall("get_time", "{}"))
    storage = MemoryStorage()
    run_benchmark(recorded([answer(calls=calls)], entry)[0], storage, ConsoleReporter(sys.stdout))
    assert len(storage.rows) == 1
    assert "request 1 called get_time, with no result in tool_results" in capsys.readouterr().out


@pytest.mark.parametrize("text, valid", [('{"name": "Ada"}', True), ('{"name": 3}', False), ("not json", False),
                                         ("[" * 200_000 + "]" * 200_000, False)])
def test_schema_answers_are_judged_and_stay_successes(recorded, text, valid):
    entry = {"id": "json", "prompt": "A user", "schema": {"type": "object", "required": ["name"],
                                                           "properties": {"name": {"type": "string"}}}}
    settings, exchanges = recorded([answer(text)], entry)
    storage = MemoryStorage()
    run_benchmark(settings, storage, ConsoleReporter(sys.stdout))
    assert exchanges[0].schema == entry["schema"]
    assert [(m.success, m.json_valid, m.answer_ok) for m in storage.rows] == [(True, valid, valid)]
