"""One suite over SQLite, PostgreSQL and Supabase: same rows, same columns, same behaviour."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
import json
from uuid import uuid4

import pytest

from benchmarking.errors import ConfigError, StorageRejected, StorageUnavailable
from benchmarking.measurement import Measurement

from conftest import SERVICE_KEY, apply_schema, pg_rows
from test_storage_sqlite import full_measurement, run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")


def failure() -> Measurement:
    return Measurement(provider="groq", model="gone", success=False,
                       started_at=datetime(2026, 11, 28, 16, 1, tzinfo=timezone.utc), stream=True, attempts=1,
                       error_type="not_found", http_status=404, error_message="HTTP 404: gone (set GROQ_MODEL)",
                       request_id="req_9")


def test_runs_and_results_round_trip_the_same_on_every_backend(open_backend):
    run = run_info()
    with open_backend() as storage:
        storage.prepare()
        storage.create_run(run)
        ok_id, failed_id = uuid4(), uuid4()
        first = datetime(2026, 11, 28, 16, 0, 1, 500000, tzinfo=timezone.utc)
        storage.save_result(run.id, ok_id, first, full_measurement())
        storage.save_result(run.id, failed_id, first.replace(second=2), failure())
        storage.finish_run(run.id, "failed", first.replace(second=3))
    with open_backend() as storage:  # a new connection sees exactly what was written
        (stored_run,) = storage.read_runs()
        assert stored_run.info == run
        assert (stored_run.status, stored_run.finished_at) == ("failed", first.replace(second=3))
        ok, failed = storage.read_results(run.id)
        assert (ok.id, ok.run_id, ok.created_at) == (ok_id, run.id, first)
        assert ok.measurement == full_measurement()
        assert failed.id == failed_id and failed.measurement == failure()
        assert failed.measurement.latency_ms is None and failed.measurement.cost_usd is None


def test_writing_the_same_ids_again_inserts_nothing_twice(open_backend):
    run, result_id = run_info(), uuid4()
    with open_backend() as storage:
        storage.prepare()
        for _ in range(2):
            storage.create_run(run)
            storage.save_result(run.id, result_id, datetime.now(timezone.utc), full_measurement())
        assert len(storage.read_runs()) == 1
        assert len(storage.read_results()) == 1


def test_a_row_the_database_refuses_is_rejected_not_unavailable(open_backend):
    with open_backend() as storage:
        storage.prepare()
        # no run with this id: the foreign key refuses the result on every backend
        with pytest.raises(StorageRejected):
            storage.save_result(uuid4(), uuid4(), datetime.now(timezone.utc), full_measurement())
        assert storage.read_results() == []


# ---- PostgreSQL: schema.sql applied by the backend, idempotent, upgrades older databases -------------------------

MVP_SCHEMA = """
create table runs (id uuid primary key, run_name text, triggered_by text,
                   started_at timestamptz not null default now(), finished_at timestamptz);
create table benchmark_results (id uuid primary key, run_id uuid references runs(id), provider text, model text,
    input_tokens integer, output_tokens integer, latency_ms double precision, cost_usd double precision,
    success boolean, error_message text, response_text text, created_at timestamptz not null default now());
insert into runs (id, run_name, triggered_by) values ('00000000-0000-0000-0000-000000000001', 'mvp', 'system');
insert into benchmark_results (id, run_id, provider, model, latency_ms, success)
    values ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', 'groq',
            'llama-3.1-8b-instant', 321.5, true);
"""


def columns(url: str, table: str) -> list[str]:
    return [r[0] for r in pg_rows(url, "select column_name from information_schema.columns where table_name = %s"
                                       " order by ordinal_position", table)]


def test_schema_sql_twice_and_over_the_mvp_schema_loses_nothing(pg_url):
    import psycopg

    from benchmarking.storage.postgres import PostgresStorage
    from benchmarking.storage.schema import RESULTS_COLUMNS, RUNS_COLUMNS

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(MVP_SCHEMA)
    apply_schema(pg_url)
    apply_schema(pg_url)
    with PostgresStorage(pg_url) as storage:
        storage.prepare()  # applies it a third time
        (old,) = storage.read_results()
        assert (old.measurement.model, old.measurement.latency_ms) == ("llama-3.1-8b-instant", 321.5)
    assert columns(pg_url, "benchmark_results") == [name for name, _ in RESULTS_COLUMNS]
    assert columns(pg_url, "runs") == [name for name, _ in RUNS_COLUMNS]
    security = pg_rows(pg_url, "select relname, relrowsecurity from pg_class where relname in"
                               " ('runs', 'benchmark_results') order by relname")
    assert security == [("benchmark_results", True), ("runs", True)]
    indexes = {r[0] for r in pg_rows(pg_url, "select indexname from pg_indexes where schemaname = 'public'")}
    assert {"benchmark_results_run_id_idx", "benchmark_results_provider_model_created_idx",
            "runs_started_at_idx", "benchmark_results_report_idx", "alerts_one_firing_idx"} <= indexes


def schema_state(url: str) -> tuple[list[str], list[str], set[str], list[tuple[str, bool]]]:
    """Columns of runs and benchmark_results, the indexes and row-level security, as the catalog has them."""
    indexes = {r[0] for r in pg_rows(url, "select indexname from pg_indexes where schemaname = 'public'")}
    security = pg_rows(url, "select relname, relrowsecurity from pg_class where relname in"
                            " ('alerts', 'runs', 'benchmark_results') order by relname")
    return columns(url, "runs"), columns(url, "benchmark_results"), indexes, security


def test_connecting_to_an_mvp_database_adds_every_column_index_and_security(pg_url):
    import psycopg

    from benchmarking.storage.postgres import PostgresStorage

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(MVP_SCHEMA)
    with PostgresStorage(pg_url) as storage:
        storage.prepare()  # schema.sql has never run here: the connect must run it
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("drop index benchmark_results_report_idx")  # then one index gone, one table's security off
        conn.execute("alter table alerts disable row level security")
    with PostgresStorage(pg_url) as storage:
        storage.prepare()
    expected = schema_state(pg_url)
    apply_schema(pg_url)  # what schema.sql itself makes of the database: the connect left nothing for it to do
    assert schema_state(pg_url) == expected
    assert "benchmark_results_report_idx" in expected[2]
    assert expected[3] == [("alerts", True), ("benchmark_results", True), ("runs", True)]


def test_connecting_to_an_up_to_date_database_waits_for_no_reader(pg_url):
    """A report or a dashboard reading the tables must not hold up the next command's connect (nor be held up by
    it): with the schema in place, connecting takes no lock on the tables."""
    import psycopg

    from benchmarking.storage.postgres import PostgresStorage

    apply_schema(pg_url)
    with psycopg.connect(pg_url) as reader:  # a long read under way: its transaction holds the tables' share lock
        reader.execute("select count(*) from benchmark_results, runs, alerts").fetchall()
        with PostgresStorage(pg_url, timeout_s=2) as storage:
            storage.create_run(run_info())  # applying schema.sql here would wait for the reader, then time out
            assert len(storage.read_runs()) == 1


def test_schema_sql_holds_only_statements_the_connect_check_knows():
    """The connect skips schema.sql when the catalog holds its tables, columns, indexes and security: a statement of
    another kind would be skipped unseen, so teach the check (storage/postgres_connection.py) before adding one."""
    import re

    from benchmarking.storage.postgres_connection import SCHEMA_SQL, SCHEMA_STATEMENTS

    text = re.sub(r"--[^\n]*", "", SCHEMA_SQL.read_text())
    statements = [" ".join(s.split()) for s in text.split(";") if s.strip()]
    assert len(statements) > 50
    for statement in statements:
        assert any(pattern.match(statement) for pattern in SCHEMA_STATEMENTS.values()), statement


def test_no_migrate_with_missing_tables_stops_before_measuring(pg_url):
    from benchmarking.storage.postgres import PostgresStorage

    with PostgresStorage(pg_url, migrate=False) as storage:
        with pytest.raises(ConfigError, match="run schema.sql"):
            storage.prepare()
    assert pg_rows(pg_url, "select count(*) from information_schema.tables where table_name = 'runs'") == [(0,)]


def test_unreachable_postgres_is_unavailable_within_its_timeout():
    """A server that takes the connection and never answers (a refused port answers at once, so its timeout is
    never reached): the timeout named is what ends the wait, and it does."""
    import socket
    import time

    from benchmarking.storage.postgres import PostgresStorage
    from benchmarking.storage.postgres_connection import WATCHDOG_GRACE_S

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever accepts, reads or answers
        port = silent.getsockname()[1]
        began = time.perf_counter()
        with PostgresStorage(f"postgresql://postgres@127.0.0.1:{port}/x", timeout_s=2) as storage:
            with pytest.raises(StorageUnavailable, match=f"127.0.0.1:{port}"):
                storage.create_run(run_info())
        waited = time.perf_counter() - began
    assert waited >= 1.9  # the timeout was reached: nothing else ended the wait
    assert waited < 2 + WATCHDOG_GRACE_S + 15  # and it bounds the wait (generously: a busy machine is slow)


def test_location_never_shows_the_password():
    from benchmarking.storage.postgres import PostgresStorage

    storage = PostgresStorage("postgresql://bench:s3cret-pw@db.example:5432/bench?sslmode=require")
    assert storage.location == "postgresql://db.example:5432/bench"


# ---- Supabase: PostgREST cannot run DDL, so missing tables stop the run before it measures ------------------------

def test_supabase_without_tables_says_to_run_schema_sql(pg_url):
    from fake_postgrest import FakePostgrest

    from benchmarking.settings.values import Secret
    from benchmarking.storage.supabase import SupabaseStorage

    with FakePostgrest(pg_url, SERVICE_KEY) as api:
        with pytest.raises(ConfigError, match="run schema.sql in the Supabase SQL editor"):
            SupabaseStorage(api.url, Secret(SERVICE_KEY)).prepare()


def test_supabase_with_an_older_schema_names_the_missing_column(pg_url):
    import psycopg

    from fake_postgrest import FakePostgrest

    from benchmarking.settings.values import Secret
    from benchmarking.storage.supabase import SupabaseStorage

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(MVP_SCHEMA)
    with FakePostgrest(pg_url, SERVICE_KEY) as api:
        with pytest.raises(ConfigError, match="status.*run schema.sql"):
            SupabaseStorage(api.url, Secret(SERVICE_KEY)).prepare()


def test_supabase_wrong_key_is_not_a_rejected_row(supabase_api):
    from benchmarking.settings.values import Secret
    from benchmarking.storage.supabase import SupabaseStorage

    storage = SupabaseStorage(supabase_api.url, Secret("wrong-key"))
    with pytest.raises(StorageUnavailable):  # the row is fine; it waits in the outbox until the key is fixed
        storage.create_run(run_info())


def test_supabase_sends_the_service_role_key_and_upserts_ignoring_duplicates(supabase_api):
    from benchmarking.settings.values import Secret
    from benchmarking.storage.supabase import SupabaseStorage

    run = run_info()
    with SupabaseStorage(supabase_api.url, Secret(SERVICE_KEY)) as storage:
        storage.create_run(run)
        storage.create_run(replace(run, run_name="changed"))
    assert pg_rows(supabase_api.dsn, "select run_name from runs") == [("r",)]


def test_supabase_reads_every_page(supabase_api, monkeypatch):
    from benchmarking.settings.values import Secret
    from benchmarking.storage import supabase

    monkeypatch.setattr(supabase, "READ_PAGE_ROWS", 2)
    run = run_info()
    with supabase.SupabaseStorage(supabase_api.url, Secret(SERVICE_KEY)) as storage:
        storage.create_run(run)
        for _ in range(5):
            storage.save_result(run.id, uuid4(), datetime.now(timezone.utc), full_measurement())
        assert len(storage.read_results()) == 5 and len(storage.read_results(run.id)) == 5


def test_reads_narrow_by_run_and_time_and_can_leave_the_answer_text_out(open_backend):
    from datetime import timedelta

    first, second = run_info(), run_info()
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    with open_backend() as storage:
        storage.prepare()
        for index, run in enumerate((first, second)):
            storage.create_run(run)
            for minute in range(3):
                created = start + timedelta(hours=index, minutes=minute)
                storage.save_result(run.id, uuid4(), created, full_measurement())
        assert len(storage.read_results(first.id)) == 3
        later = storage.read_results(since=start + timedelta(minutes=2))
        assert [r.created_at for r in later] == [start + timedelta(minutes=2)] + [
            start + timedelta(hours=1, minutes=m) for m in range(3)]
        assert len(storage.read_results(second.id, since=start + timedelta(hours=1, minutes=1))) == 2
        bare = storage.read_results(first.id, with_text=False)
        assert bare[0].measurement.response_text is None
        assert bare[0].measurement == replace(full_measurement(), response_text=None)


# ---- The native APIs' columns (api, cache_write_tokens, price_cache_write_per_mtok): fresh, upgraded, replayed,
# exported, on every backend ---------------------------------------------------------------------------------------

NATIVE_COLUMNS = ("api", "cache_write_tokens", "price_cache_write_per_mtok")


def native() -> Measurement:
    """An Anthropic answer through its own API: reads and writes of the prompt cache, the cache-write price paid."""
    from decimal import Decimal

    return replace(full_measurement(), provider="anthropic", model="claude-haiku-5-5", api="messages",
                   input_tokens=5_000, cached_tokens=1_000, cache_write_tokens=3_000,
                   price_input_per_mtok=Decimal("0.10"), price_cached_input_per_mtok=Decimal("0.01"),
                   price_cache_write_per_mtok=Decimal("0.125"), price_output_per_mtok=Decimal("0.50"),
                   cost_usd=Decimal("0.000419"))


def test_the_native_api_columns_round_trip_exactly_on_a_fresh_database_of_every_backend(open_backend):
    from decimal import Decimal

    run, result_id = run_info(), uuid4()
    with open_backend() as storage:
        storage.prepare()
        storage.create_run(run)
        storage.save_result(run.id, result_id, datetime(2026, 12, 7, 19, tzinfo=timezone.utc), native())
    with open_backend() as storage:
        (stored,) = storage.read_results(run.id)
        m = stored.measurement
        assert (m.api, m.cache_write_tokens, m.price_cache_write_per_mtok) == ("messages", 3_000, Decimal("0.125"))
        assert isinstance(m.price_cache_write_per_mtok, Decimal) and m == native()
        from benchmarking.storage.base import ResultFilters

        (reported,) = storage.read_report_results(ResultFilters())
        assert reported.measurement.api == "messages"  # what report --by api reads


def test_an_outbox_entry_of_an_older_version_without_the_new_columns_replays_as_null_on_every_backend(open_backend):
    from benchmarking.storage.outbox.entries import apply_entry, encode_create_run, encode_save_result

    run, old_id, new_id = run_info(), uuid4(), uuid4()
    at = datetime(2026, 12, 7, 19, tzinfo=timezone.utc)
    older = encode_save_result(run.id, old_id, at, full_measurement())
    for name in NATIVE_COLUMNS:  # what the version before these columns wrote to its outbox
        del older["row"][name]
    newer = json.loads(json.dumps(encode_save_result(run.id, new_id, at, native())))  # as read back from the file
    assert newer["row"]["price_cache_write_per_mtok"] == "0.125"  # exact text, not a float
    with open_backend() as storage:
        storage.prepare()
        for entry in (encode_create_run(run), older, newer):
            apply_entry(storage, entry)
        stored = {r.id: r.measurement for r in storage.read_results(run.id)}
    assert stored[old_id] == replace(full_measurement(), api=None, cache_write_tokens=None,
                                     price_cache_write_per_mtok=None)
    assert stored[new_id] == native()


def test_exports_carry_the_new_columns_from_every_backend(open_backend, tmp_path):
    import csv

    from benchmarking.report.formats import export
    from benchmarking.report.selection import Selection, select

    run = run_info()
    with open_backend() as storage:
        storage.prepare()
        storage.create_run(run)
        storage.save_result(run.id, uuid4(), datetime(2026, 12, 7, 19, tzinfo=timezone.utc), native())
        storage.save_result(run.id, uuid4(), datetime(2026, 12, 7, 19, 1, tzinfo=timezone.utc),
                            replace(full_measurement(), api=None, cache_write_tokens=None,
                                    price_cache_write_per_mtok=None))
        rows = select(storage, Selection(include_simulated=True), with_text=True)
    assert export(rows, tmp_path / "rows.jsonl") == 2 and export(rows, tmp_path / "rows.csv") == 2
    records = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [tuple(r[name] for name in NATIVE_COLUMNS) for r in records] == [("messages", 3000, "0.125"),
                                                                          (None, None, None)]
    with (tmp_path / "rows.csv").open(newline="") as f:
        cells = [tuple(r[name] for name in NATIVE_COLUMNS) for r in csv.DictReader(f)]
    assert cells == [("messages", "3000", "0.125"), ("", "", "")]


def test_a_database_from_before_the_new_columns_is_upgraded_keeping_its_rows(pg_url, tmp_path):
    import sqlite3

    import psycopg

    from benchmarking.storage.postgres import PostgresStorage
    from benchmarking.storage.sqlite import SQLiteStorage

    def drop_in_sqlite() -> None:
        with sqlite3.connect(tmp_path / "b.db") as db:
            for name in NATIVE_COLUMNS:
                db.execute(f"alter table benchmark_results drop column {name}")
        db.close()

    def drop_in_postgres() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for name in NATIVE_COLUMNS:
                conn.execute(f"alter table benchmark_results drop column {name}")

    def sqlite_columns() -> list[str]:
        with sqlite3.connect(tmp_path / "b.db") as db:
            names = [row[1] for row in db.execute("PRAGMA table_info(benchmark_results)")]
        db.close()
        return names

    run, old_id, new_id = run_info(), uuid4(), uuid4()
    at = datetime(2026, 12, 7, 19, tzinfo=timezone.utc)
    older = replace(full_measurement(), api=None, cache_write_tokens=None, price_cache_write_per_mtok=None)
    for open_storage, drop, names in (
        (lambda: SQLiteStorage(tmp_path / "b.db"), drop_in_sqlite, sqlite_columns),
        (lambda: PostgresStorage(pg_url, timeout_s=5), drop_in_postgres, lambda: columns(pg_url, "benchmark_results")),
    ):
        with open_storage() as storage:
            storage.prepare()
            storage.create_run(run)
            storage.save_result(run.id, old_id, at, older)
        drop()  # the database as the version before these columns left it: its row, none of the columns
        assert not set(names()) & set(NATIVE_COLUMNS)
        with open_storage() as storage:  # this version opens it: the columns come back, the row stays
            storage.prepare()
            storage.save_result(run.id, new_id, at, native())
            stored = {r.id: r.measurement for r in storage.read_results(run.id)}
        assert names()[-3:] == list(NATIVE_COLUMNS)
        assert stored == {old_id: older, new_id: native()}


def test_supabase_on_a_database_from_before_the_new_columns_names_one_of_them(pg_url):
    import psycopg

    from fake_postgrest import FakePostgrest

    from benchmarking.settings.values import Secret
    from benchmarking.storage.supabase import SupabaseStorage

    apply_schema(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("alter table benchmark_results drop column price_cache_write_per_mtok")
    with FakePostgrest(pg_url, SERVICE_KEY) as api:
        with pytest.raises(ConfigError, match="price_cache_write_per_mtok.*run schema.sql"):
            SupabaseStorage(api.url, Secret(SERVICE_KEY)).prepare()
    apply_schema(pg_url)  # what the message asks for: schema.sql, run again, adds it back
    with FakePostgrest(pg_url, SERVICE_KEY) as api:
        SupabaseStorage(api.url, Secret(SERVICE_KEY)).prepare()
