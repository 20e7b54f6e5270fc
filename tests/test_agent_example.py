"""Issue 20's done-when, end to end: examples/agent.jsonl through `main.py --simulate` (the real SDKs of all four
APIs against the built-in simulator, stored in SQLite), then `report --by turn` says what the cache saved.

Each kind of entry is checked on what was stored: a conversation's rows (session, turns 1..4, the cache read from
turn 2 on), the tool entry's call, its canned result and the answer after it, the schema entry's valid JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
import sqlite3
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "main.py"
# Chat Completions (openai), Responses (openai through --api), Messages (anthropic), generateContent (gemini)
APIS = {"openai": "chat_completions", "anthropic": "messages", "gemini": "generate_content"}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    """The example without its think time (the rest as shipped), run once as it is (bust) and once warm."""
    directory = tmp_path_factory.mktemp("agent")
    entries = [json.loads(line) for line in (ROOT / "examples" / "agent.jsonl").read_text().splitlines() if line]
    for entry in entries:
        entry.pop("think_time_s", None)
    (directory / "agent.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    for cache in ("bust", "warm"):
        for api in ("chat_completions", "responses"):
            done = run(directory, "--simulate", "--prompts", "agent.jsonl", "--providers", "openai,anthropic,gemini",
                       "--api", f"openai={api}", "--cache", cache)
            assert done.returncode == 0, done.stderr
    return directory


def rows(directory: Path, where: str = "1=1") -> list[dict]:
    with sqlite3.connect(directory / "benchmarks.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"select * from benchmark_results where {where} "
                                            "order by created_at")]


def test_every_request_succeeded_on_every_api(measured):
    stored = rows(measured)
    assert stored and all(r["success"] for r in stored)
    assert {r["api"] for r in stored} == {"chat_completions", "responses", "messages", "generate_content"}


def test_a_conversation_is_one_session_of_four_turns_each_round(measured):
    chat = rows(measured, "prompt_id = 'support-chat'")
    sessions: dict[str, list[int]] = {}
    for r in chat:
        sessions.setdefault(r["session_id"], []).append(r["turn"])
    assert len(sessions) == 4 * 3  # 2 cache modes x 2 OpenAI APIs x 3 providers
    assert all(turns == [1, 2, 3, 4] for turns in sessions.values())
    for r in chat:  # each turn sends more than the one before: the earlier answers go with it
        later = [o for o in chat if o["session_id"] == r["session_id"] and o["turn"] == (r["turn"] or 0) + 1]
        assert all(o["input_tokens"] > r["input_tokens"] for o in later)


def test_the_tool_entry_calls_gets_its_result_and_answers(measured):
    tool = rows(measured, "prompt_id = 'tool-status'")
    first = [r for r in tool if r["turn"] == 1]
    after = [r for r in tool if r["turn"] == 2]
    assert len(first) == len(after) == 12
    for r in first:
        (call,) = json.loads(r["tool_calls"])
        assert call["name"] == "find_train" and set(json.loads(call["arguments"])) >= {"from_station", "to_station"}
        assert r["answer_ok"] == 1  # expect_tool: find_train
        assert r["tool_args_ms"] is not None and 0 < r["tool_args_ms"] <= r["latency_ms"]
    for r in after:  # the answer after the canned result: text, no further call
        assert json.loads(r["tool_calls"]) == [] and r["response_text"]


def test_the_schema_entry_answers_valid_json(measured):
    schema = rows(measured, "prompt_id = 'delay-form'")
    assert len(schema) == 12
    assert all(r["json_valid"] == 1 and r["answer_ok"] == 1 for r in schema)
    assert all(isinstance(json.loads(r["response_text"])["refund_percent"], int) for r in schema)


def test_report_by_turn_says_what_the_cache_saved_for_each_provider(measured):
    done = run(measured, "report", "--by", "turn", "--include-simulated", "--format", "json")
    assert done.returncode == 0, done.stderr
    saved = {(s["provider"], s["model"]): s for s in json.loads(done.stdout)["cache_from_turn_2"]}
    assert {provider for provider, _ in saved} == set(APIS)
    for summary in saved.values():
        assert summary["input_cost_saved_share"] > 0.3
        assert summary["cached_input_share"] > 0.3
        assert "input cost saved" in summary["line"]
    # Anthropic reads its cache only where told: the bust runs missed it and the warm runs read it, for the same
    # prompts and turns, so the saving in time is measured on matched pairs.
    anthropic = next(s for (provider, _), s in saved.items() if provider == "anthropic")
    assert anthropic["ttft_matched_pairs"] > 0 and anthropic["ttft_saved_ms"] > 0
    table = run(measured, "report", "--by", "turn", "--include-simulated")
    assert table.returncode == 0 and "from turn 2 on: input cost saved" in table.stdout
