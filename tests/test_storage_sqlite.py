"""SQLite storage: same columns as schema.sql, exact round trip, idempotent inserts, upgrades of an MVP database."""

from __future__ import annotations

from datetime import datetime, timezone
import json
from decimal import Decimal
from pathlib import Path
import re
import sqlite3
from uuid import uuid4

from benchmarking.measurement import Measurement
from benchmarking.storage import RunInfo
from benchmarking.storage.schema import ALERTS_COLUMNS, RESULTS_COLUMNS, RUNS_COLUMNS
from benchmarking.storage.sqlite import SQLITE_TYPES, SQLiteStorage

SCHEMA_SQL = Path(__file__).resolve().parent.parent / "schema.sql"
MVP_RESULTS = ["id", "run_id", "provider", "model", "input_tokens", "output_tokens", "latency_ms", "cost_usd",
               "success", "error_message", "response_text", "created_at"]
MVP_RUNS = ["id", "run_name", "triggered_by", "started_at", "finished_at"]


def schema_sql_columns() -> dict[str, list[tuple[str, str]]]:
    """Columns per table as schema.sql declares them, in order: create table, then each add column."""
    sql = re.sub(r"--[^\n]*", "", SCHEMA_SQL.read_text())
    tables: dict[str, list[tuple[str, str]]] = {}
    type_pattern = r"(uuid|text|timestamptz|jsonb|double precision|integer|boolean|numeric)"
    for name, body in re.findall(r"create table if not exists (\w+) \((.*?)\n\);", sql, re.S):
        tables[name] = re.findall(r"^\s*(\w+) " + type_pattern, body, re.M)
    for table, column, pg_type in re.findall(
        r"alter table (\w+) add column if not exists (\w+) " + type_pattern, sql
    ):
        tables[table].append((column, pg_type))
    return tables


def run_info(**changes) -> RunInfo:
    values = dict(id=uuid4(), run_name="r", triggered_by="test", started_at=datetime.now(timezone.utc),
                  mode="simulated", host="h", region="eu", tool_version="0", settings={"prompt": "p", "repeat": 2})
    values.update(changes)
    return RunInfo(**values)


def full_measurement() -> Measurement:
    return Measurement(
        provider="openai", model="gpt-4o-mini", success=True,
        started_at=datetime(2026, 11, 28, 16, 0, 0, 123456, tzinfo=timezone.utc), stream=True, attempts=2,
        ttft_ms=181.25, answer_ttft_ms=190.5, latency_ms=744.75, input_tokens=28, output_tokens=48,
        cached_tokens=4, reasoning_tokens=0, tokens_per_second=83.4, finish_reason="stop", request_id="req_1",
        response_text="héllo", response_truncated=False, cost_usd=Decimal("0.0000327"), cost_source="pricing",
        price_input_per_mtok=Decimal("0.15"), price_cached_input_per_mtok=Decimal("0.075"),
        price_output_per_mtok=Decimal("0.60"), price_as_of="2026-11-28", endpoint="http://127.0.0.1:1/v1",
        upstream_provider="Google", token_source="usage",
        api="chat_completions", cache_write_tokens=3, price_cache_write_per_mtok=Decimal("0.1875"),
    )


def test_schema_sql_and_the_sqlite_ddl_have_the_same_columns_and_types(storage):
    declared = schema_sql_columns()
    assert declared["runs"] == list(RUNS_COLUMNS)
    assert declared["benchmark_results"] == list(RESULTS_COLUMNS)
    assert declared["alerts"] == list(ALERTS_COLUMNS)
    for table, columns in (("runs", RUNS_COLUMNS), ("benchmark_results", RESULTS_COLUMNS),
                           ("alerts", ALERTS_COLUMNS)):
        info = [(row[1], row[2]) for row in storage._db.execute(f"PRAGMA table_info({table})")]
        assert info == [(name, SQLITE_TYPES[pg_type]) for name, pg_type in columns]


def test_the_mvp_columns_come_first_and_keep_their_names():
    assert [n for n, _ in RESULTS_COLUMNS[: len(MVP_RESULTS)]] == MVP_RESULTS
    assert [n for n, _ in RUNS_COLUMNS[: len(MVP_RUNS)]] == MVP_RUNS
    assert dict(RESULTS_COLUMNS)["cost_usd"] == "double precision"
    assert dict(RESULTS_COLUMNS)["latency_ms"] == "double precision"


def test_a_result_round_trips_exactly(storage):
    run = run_info()
    storage.create_run(run)
    m = full_measurement()
    result_id, created = uuid4(), datetime.now(timezone.utc)
    storage.save_result(run.id, result_id, created, m)
    (stored,) = storage.read_results(run.id)
    assert (stored.id, stored.run_id, stored.created_at) == (result_id, run.id, created)
    assert stored.measurement == m


def test_inserts_are_idempotent_by_id(storage):
    run = run_info()
    storage.create_run(run)
    storage.create_run(run)
    result_id = uuid4()
    for _ in range(3):
        storage.save_result(run.id, result_id, datetime.now(timezone.utc), full_measurement())
    assert len(storage.read_runs()) == 1
    assert len(storage.read_results()) == 1


def test_a_run_is_created_running_and_finished_with_status_and_time(storage):
    run = run_info()
    storage.create_run(run)
    (started,) = storage.read_runs()
    assert (started.status, started.finished_at) == ("running", None)
    assert started.info == run
    finished_at = datetime.now(timezone.utc)
    storage.finish_run(run.id, "interrupted", finished_at)
    (done,) = storage.read_runs()
    assert (done.status, done.finished_at) == ("interrupted", finished_at)


def test_an_mvp_database_is_upgraded_without_losing_rows(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, run_name TEXT, triggered_by TEXT, started_at TEXT,"
                   " finished_at TEXT)")
        db.execute("CREATE TABLE benchmark_results (id TEXT PRIMARY KEY, run_id TEXT, provider TEXT, model TEXT,"
                   " input_tokens INTEGER, output_tokens INTEGER, latency_ms REAL, cost_usd REAL, success INTEGER,"
                   " error_message TEXT, response_text TEXT, created_at TEXT)")
        run_id, result_id = str(uuid4()), str(uuid4())
        db.execute("INSERT INTO runs VALUES (?, 'mvp', 'system', '2026-01-01T00:00:00+00:00', NULL)", (run_id,))
        db.execute("INSERT INTO benchmark_results VALUES (?, ?, 'groq', 'llama-3.1-8b-instant', 10, 20, 321.5,"
                   " 0.0000021, 1, NULL, 'hi', '2026-01-01T00:00:01+00:00')", (result_id, run_id))
    with SQLiteStorage(path) as storage:
        (old,) = storage.read_results()
        assert (old.measurement.model, old.measurement.latency_ms, old.measurement.output_tokens) == (
            "llama-3.1-8b-instant", 321.5, 20)
        assert old.measurement.ttft_ms is None
        columns = [row[1] for row in storage._db.execute("PRAGMA table_info(benchmark_results)")]
        assert columns == [name for name, _ in RESULTS_COLUMNS]
    with SQLiteStorage(path) as again:  # migrating twice changes nothing
        assert len(again.read_results()) == 1


def test_stored_tool_calls_stay_json_when_an_argument_echoes_a_secret(tmp_path):
    """Scrubbing the calls' JSON text whole took the closing quote with a key ("Bearer ****") and stored JSON that
    no longer parsed: each string is scrubbed on its own."""
    from benchmarking.dialogue import ToolCall, stored_calls
    from benchmarking.redaction import register
    from benchmarking.storage.schema import result_row

    register("sk-canary-secret-7f3a9-abcdef")
    calls = stored_calls((ToolCall("lookup", json.dumps({"k": "Bearer sk-canary-secret-7f3a9-abcdef"})),))
    row = result_row(uuid4(), uuid4(), datetime.now(timezone.utc), Measurement("p", "m", True, datetime.now(timezone.utc), True, tool_calls=calls))
    (stored,) = json.loads(row["tool_calls"])
    assert stored["name"] == "lookup" and "canary" not in row["tool_calls"]
    assert json.loads(stored["arguments"])["k"].startswith("Bearer ")
