"""The real supabase-py client against FakePostgrest on a throwaway PostgreSQL database: data, errors and faults."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import os
from pathlib import Path
import secrets
import time
from uuid import uuid4

import httpx
from postgrest.exceptions import APIError
import psycopg
from psycopg import sql
import pytest
from supabase import ClientOptions, create_client

from fake_postgrest import FakePostgrest

SCHEMA_SQL = Path(__file__).resolve().parent.parent / "schema.sql"
ADMIN_DSN = "host=127.0.0.1 dbname=postgres user=postgres"
SERVICE_KEY = "service-role-key-for-tests"

# supabase-py passes its own default timeout and verify to postgrest-py, which warns about them on every client.
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def dsn():
    """A fresh database with schema.sql applied, dropped after the module's tests."""
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("BENCHMARK_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required (BENCHMARK_REQUIRE_POSTGRES) but not reachable: {error}")
        pytest.skip(f"PostgreSQL not reachable: {error}")
    name = f"bench_fake_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            database_dsn = f"host=127.0.0.1 dbname={name} user=postgres"
            with psycopg.connect(database_dsn) as conn:
                conn.execute(SCHEMA_SQL.read_text())
            yield database_dsn
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def api(dsn):
    """A running FakePostgrest on the module's database."""
    with FakePostgrest(dsn, SERVICE_KEY) as fake:
        yield fake


@pytest.fixture
def client(api):
    """The real supabase-py client, pointed at the fake with the right key."""
    return create_client(api.url, SERVICE_KEY)


def rows_in(dsn: str, query: str, *args: object) -> list[tuple]:
    """Read PostgreSQL directly, to check what the fake really wrote."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, args).fetchall()


def new_run(client, **values) -> str:
    """Insert a run through the client and return its id."""
    run_id = str(uuid4())
    client.table("runs").insert({"id": run_id, **values}, returning="minimal").execute()
    return run_id


def result_row(run_id: str, **values) -> dict:
    """A benchmark_results row for the run, with a fresh id."""
    return {"id": str(uuid4()), "run_id": run_id, "provider": "openai", "model": "gpt-4o-mini", **values}


def test_insert_returning_minimal_then_select_reads_the_row_back(api, client, dsn):
    run_id = str(uuid4())
    started = "2026-11-28T16:00:00.123456+00:00"
    inserted = client.table("runs").insert(
        {"id": run_id, "run_name": "nightly", "started_at": started, "settings": {"prompt": "p", "repeat": 2}},
        returning="minimal",
    ).execute()
    assert inserted.data == []

    rows = client.table("runs").select("*").eq("id", run_id).execute().data
    assert rows == [{
        "id": run_id, "run_name": "nightly", "triggered_by": None, "started_at": started, "finished_at": None,
        "status": None, "mode": None, "host": None, "region": None, "tool_version": None,
        "settings": {"prompt": "p", "repeat": 2}, "pid": None, "kind": None, "summary": None,
    }]
    assert rows_in(dsn, "SELECT run_name FROM runs WHERE id = %s", run_id) == [("nightly",)]
    assert api.requests == [("POST", "runs"), ("GET", "runs")]


def test_bulk_upsert_ignoring_duplicates_twice_inserts_once_and_keeps_the_first_values(client, dsn):
    run_id = new_run(client)
    rows = [result_row(run_id, input_tokens=i, latency_ms=100.5, price_input_per_mtok=0.15) for i in range(3)]
    for provider in ("openai", "changed"):
        batch = [{**row, "provider": provider} for row in rows]
        client.table("benchmark_results").upsert(
            batch, on_conflict="id", ignore_duplicates=True, returning="minimal"
        ).execute()

    stored = rows_in(dsn, "SELECT provider, count(*) FROM benchmark_results WHERE run_id = %s GROUP BY 1", run_id)
    assert stored == [("openai", 3)]
    read = client.table("benchmark_results").select("*").eq("run_id", run_id).order("input_tokens").execute().data
    # numeric and double precision come back as JSON numbers, as from PostgREST
    assert [(r["input_tokens"], r["latency_ms"], r["price_input_per_mtok"]) for r in read] == [
        (0, 100.5, 0.15), (1, 100.5, 0.15), (2, 100.5, 0.15)
    ]


def test_upsert_merging_duplicates_overwrites(client, dsn):
    run_id = new_run(client)
    row = result_row(run_id, success=False)
    client.table("benchmark_results").upsert([row], on_conflict="id", returning="minimal").execute()
    client.table("benchmark_results").upsert([{**row, "success": True}], on_conflict="id").execute()
    assert rows_in(dsn, "SELECT success FROM benchmark_results WHERE id = %s", row["id"]) == [(True,)]


def test_update_with_eq_changes_only_the_matching_row(client, dsn):
    target, other = new_run(client, status="running"), new_run(client, status="running")
    updated = client.table("runs").update(
        {"status": "completed", "finished_at": "2026-11-28T17:00:00+00:00"}
    ).eq("id", target).execute()

    assert [(r["id"], r["status"], r["finished_at"]) for r in updated.data] == [
        (target, "completed", "2026-11-28T17:00:00+00:00")
    ]
    statuses = dict(rows_in(dsn, "SELECT id::text, status FROM runs WHERE id IN (%s, %s)", target, other))
    assert statuses == {target: "completed", other: "running"}


def test_select_with_order_and_limit(client):
    run_id = new_run(client)
    base = datetime(2026, 11, 28, 16, 0, tzinfo=timezone.utc)
    offsets = [3, 0, 4, 1, 2]
    rows = [result_row(run_id, created_at=(base + timedelta(seconds=s)).isoformat(), input_tokens=s) for s in offsets]
    client.table("benchmark_results").insert(rows, returning="minimal").execute()

    query = client.table("benchmark_results").select("*").eq("run_id", run_id)
    first = query.order("created_at").limit(3).execute().data
    assert [r["input_tokens"] for r in first] == [0, 1, 2]
    last = client.table("benchmark_results").select("input_tokens").eq("run_id", run_id).order(
        "created_at", desc=True
    ).limit(2).execute().data
    assert last == [{"input_tokens": 4}, {"input_tokens": 3}]


def test_column_check_with_limit_0_passes_for_real_columns_and_fails_for_missing_ones(client):
    assert client.table("benchmark_results").select("id,provider").limit(0).execute().data == []
    with pytest.raises(APIError) as caught:
        client.table("benchmark_results").select("id,no_such_column").limit(0).execute()
    # PostgREST leaves an unknown select column to PostgreSQL, hence its SQLSTATE rather than a PGRST code
    assert caught.value.code == "42703"


def test_unknown_column_in_insert_is_pgrst204_and_inserts_nothing(client, dsn):
    run_id = new_run(client)
    rows = [result_row(run_id), result_row(run_id, no_such_column=1)]
    with pytest.raises(APIError) as caught:
        client.table("benchmark_results").insert(rows, returning="minimal").execute()
    assert caught.value.code == "PGRST204"
    assert "no_such_column" in caught.value.message
    assert rows_in(dsn, "SELECT count(*) FROM benchmark_results WHERE run_id = %s", run_id) == [(0,)]


@pytest.mark.parametrize("table, bad, type_name", [
    ("runs", {"id": "not-a-uuid"}, "uuid"),
    ("benchmark_results", {"input_tokens": "x"}, "integer"),
])
def test_wrong_type_is_22p02_and_the_whole_batch_is_rolled_back(client, dsn, table, bad, type_name):
    good_id = str(uuid4())
    rows = [{"id": good_id}, {"id": str(uuid4()), **bad}]
    with pytest.raises(APIError) as caught:
        client.table(table).insert(rows, returning="minimal").execute()
    assert caught.value.code == "22P02"
    assert type_name in caught.value.message
    assert rows_in(dsn, sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(table)), good_id) == []


def test_constraint_violations_carry_their_sqlstate(client):
    run_id = new_run(client)
    with pytest.raises(APIError) as duplicate:
        client.table("runs").insert({"id": run_id}).execute()
    with pytest.raises(APIError) as orphan:
        client.table("benchmark_results").insert(result_row(str(uuid4()))).execute()
    assert (duplicate.value.code, orphan.value.code) == ("23505", "23503")


def test_missing_table_is_pgrst205(client):
    with pytest.raises(APIError) as caught:
        client.table("no_such_table").insert({"id": str(uuid4())}).execute()
    assert caught.value.code == "PGRST205"
    assert "public.no_such_table" in caught.value.message


def test_wrong_key_is_rejected_and_writes_nothing(api, dsn):
    intruder = create_client(api.url, "not-the-service-key")
    run_id = str(uuid4())
    with pytest.raises(APIError) as caught:
        intruder.table("runs").insert({"id": run_id}, returning="minimal").execute()
    assert caught.value.code == "PGRST301"
    assert rows_in(dsn, "SELECT 1 FROM runs WHERE id = %s", run_id) == []


def test_down_answers_503_which_the_client_raises_as_an_api_error_without_code(api, client):
    api.mode = "down"
    with pytest.raises(APIError) as caught:
        client.table("runs").insert({"id": str(uuid4())}, returning="minimal").execute()
    assert (caught.value.code, caught.value.message) == (None, "Service Unavailable")
    assert api.requests == [("POST", "runs")]  # postgrest-py retries only GET and HEAD


def test_down_select_is_not_retried_when_retries_are_off(api):
    # With retries on, a GET on a 503 is sent 4 times with 1+2+4 s of sleep in between.
    client = create_client(api.url, SERVICE_KEY, ClientOptions(postgrest_client_retry=False))
    api.mode = "down"
    with pytest.raises(APIError):
        client.table("runs").select("*").limit(1).execute()
    assert api.requests == [("GET", "runs")]


def test_reset_is_an_httpx_read_error(api, client):
    api.mode = "reset"
    with pytest.raises(httpx.ReadError):
        client.table("runs").insert({"id": str(uuid4())}, returning="minimal").execute()


def test_hang_times_out_with_a_short_postgrest_timeout(api, dsn):
    # A float is truncated to whole seconds by postgrest-py (0.5 -> 0), so the timeout is given as httpx.Timeout.
    client = create_client(api.url, SERVICE_KEY, ClientOptions(postgrest_client_timeout=httpx.Timeout(0.5)))
    api.mode = "hang"
    run_id = str(uuid4())
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.table("runs").insert({"id": run_id}, returning="minimal").execute()
    assert time.monotonic() - started < 2
    assert rows_in(dsn, "SELECT 1 FROM runs WHERE id = %s", run_id) == []


def test_a_float_postgrest_timeout_becomes_whole_seconds(api):
    client = create_client(api.url, SERVICE_KEY, ClientOptions(postgrest_client_timeout=0.5))
    assert client.postgrest.session.timeout == httpx.Timeout(0)
