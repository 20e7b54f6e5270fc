"""Every SQL query of dashboards/grafana.json, run against real PostgreSQL with data in it, as Grafana would send it.

Grafana itself is not installable here; what it does to a query before PostgreSQL sees it is done as documented:
template variables first (`${name:sqlstring}`: each value quoted, ' doubled, comma-separated; `$__interval`), then
the PostgreSQL data source's macros, as its macro engine (pkg/tsdb/grafana-postgresql-datasource/macros.go) expands
them. The queries run as the read-only role of dashboards/grafana_reader.sql, under the row-level security that
schema.sql turns on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
import json
from pathlib import Path
import re
from uuid import uuid4

import psycopg
import pytest

from benchmarking.figures import percentile
from benchmarking.storage.postgres import PostgresStorage

from test_storage_sqlite import full_measurement, run_info

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = json.loads((ROOT / "dashboards" / "grafana.json").read_text())
READER_SQL = (ROOT / "dashboards" / "grafana_reader.sql").read_text()
START, END = datetime(2026, 11, 28, 9, tzinfo=timezone.utc), datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
H1, H2 = START + timedelta(hours=1), START + timedelta(hours=2)  # 10:00 and 11:00
INTERVAL = "1h"  # what Grafana puts for $__interval on a 3-hour range in a wide panel
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # Go's RFC3339Nano for whole seconds


def expand(sql: str, variables: dict[str, list[str]]) -> str:
    """The query as the data source sends it to PostgreSQL."""
    sql = re.sub(r"\$\{(\w+):sqlstring\}",
                 lambda m: ",".join("'" + v.replace("'", "''") + "'" for v in variables[m[1]]), sql)
    sql = re.sub(r"\$__interval\b", INTERVAL, sql)

    def macro(match: re.Match) -> str:
        name, args = match[1], [a.strip() for a in match[2].split(",")]
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{rfc3339(START)}' AND '{rfc3339(END)}'"
        if name == "__timeGroupAlias":
            amount, unit = re.fullmatch(r"(\d+)([smhd])", args[1].strip("'")).groups()
            seconds = int(amount) * UNITS[unit]
            return f'floor(extract(epoch from {args[0]})/{seconds})*{seconds} AS "time"'
        raise AssertionError(f"the test does not expand macro ${name}: add it as macros.go does")

    sql = re.sub(r"\$(\w+)\(([^\)]*)\)", macro, sql)
    assert "$" not in sql, sql
    return sql


def ok(created_at: datetime, ttft_ms: float, latency_ms: float, **changes):
    return created_at, replace(full_measurement(), ttft_ms=ttft_ms, latency_ms=latency_ms, **changes)


def failed(created_at: datetime, **changes):
    return created_at, replace(full_measurement(), success=False, error_type="rate_limit", ttft_ms=None,
                               latency_ms=None, tokens_per_second=None, cost_usd=None, output_tokens=None, **changes)


OPENAI_H1 = [ok(H1 + timedelta(minutes=i), ttft, ttft * 10, output_tokens=50, cost_usd=Decimal(cost))
             for i, (ttft, cost) in enumerate([(100, "0.001"), (200, "0.002"), (400, "0.001"), (800, "0.004")])]
OPENAI_H2 = [ok(H2 + timedelta(minutes=1), 300, 3000, output_tokens=100, cost_usd=Decimal("0.01")),
             ok(H2 + timedelta(minutes=2), 600, 6000, output_tokens=100, cost_usd=None)]
GROQ_H1 = [ok(H1 + timedelta(minutes=5), 50, 500, provider="groq", model="m", output_tokens=20,
              cost_usd=Decimal("0.0001")),
           ok(H1 + timedelta(minutes=6), 70, 700, provider="groq", model="m", output_tokens=20,
              cost_usd=Decimal("0.0003")),
           failed(H1 + timedelta(minutes=7), provider="groq", model="m")]
LIVE = [*OPENAI_H1, failed(H1 + timedelta(minutes=30)), *OPENAI_H2, *GROQ_H1,
        ok(START - timedelta(days=3), 5000, 50000)]  # outside the time range
SIMULATED = [ok(H1 + timedelta(minutes=9), 9999, 99999)]  # another mode: not in the live panels


@pytest.fixture
def filled(pg_url):
    """The test database with results of a live and a simulated run, alerts, and the reader role."""
    live, simulated = run_info(mode="live"), run_info(mode="simulated")
    with PostgresStorage(pg_url, timeout_s=5) as storage:
        for run, rows in ((live, LIVE), (simulated, SIMULATED)):
            storage.create_run(run)
            for created_at, m in rows:
                storage.save_result(run.id, uuid4(), created_at, m)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for rule, provider, metric, state, started in (("slo_breach", "openai", "ttft_ms", "firing", H1),
                                                      ("outage", "groq", None, "firing", H2),
                                                      ("regression", "openai", "latency_ms", "resolved", H1)):
            conn.execute("insert into alerts (id, rule, provider, model, metric, state, started_at, last_seen_at, "
                         "details) values (%s, %s, %s, 'm', %s, %s, %s, %s, '{\"window\": \"1h\"}')",
                         (uuid4(), rule, provider, metric, state, started, END))
        conn.execute(READER_SQL)
    try:
        yield pg_url
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("drop owned by grafana_reader")
            conn.execute("drop role if exists grafana_reader")


def run_as_reader(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        conn.execute("set role grafana_reader")
        return conn.execute(sql).fetchall()


def queries() -> list[tuple[str, str]]:
    """(panel title, SQL) of every target of every panel."""
    return [(panel["title"], target["rawSql"]) for panel in DASHBOARD["panels"] for target in panel["targets"]]


def per_series(rows: list[tuple]) -> dict[tuple[datetime, str], tuple[float, ...]]:
    return {(datetime.fromtimestamp(float(time), timezone.utc), series): tuple(float(v) for v in values)
            for time, series, *values in rows}


def test_every_query_of_the_dashboard_gives_the_numbers_the_rows_hold(filled):
    (provider_variable, mode_variable) = DASHBOARD["templating"]["list"]
    providers = [row[0] for row in run_as_reader(filled, expand(provider_variable["query"], {}))]
    assert providers == ["groq", "openai"]
    assert mode_variable["query"].split(",") == ["live", "simulated"]
    variables = {"provider": providers, "mode": ["live"]}  # "All" providers, and the default mode
    results = {title: run_as_reader(filled, expand(sql, variables)) for title, sql in queries()}
    assert set(results) == {"TTFT p50 / p90 (ms)", "Latency p50 / p90 (ms)", "Success rate",
                            "Cost per 1k output tokens (USD)", "Firing alerts"}

    openai_h1 = [m.ttft_ms for _, m in OPENAI_H1]
    ttft = per_series(results["TTFT p50 / p90 (ms)"])
    assert ttft == {
        (H1, "openai/gpt-4o-mini"): (pytest.approx(percentile(openai_h1, 50)), pytest.approx(percentile(openai_h1,
                                                                                                         90))),
        (H2, "openai/gpt-4o-mini"): (pytest.approx(450.0), pytest.approx(570.0)),
        (H1, "groq/m"): (pytest.approx(60.0), pytest.approx(68.0)),
    }
    assert ttft[H1, "openai/gpt-4o-mini"] == (300.0, 680.0)  # from the rows above by hand: 100 200 400 800
    latency = per_series(results["Latency p50 / p90 (ms)"])
    assert latency[H1, "openai/gpt-4o-mini"] == (pytest.approx(3000.0), pytest.approx(6800.0))

    success = per_series(results["Success rate"])
    assert success == {(H1, "openai/gpt-4o-mini"): (pytest.approx(4 / 5),), (H2, "openai/gpt-4o-mini"): (1.0,),
                       (H1, "groq/m"): (pytest.approx(2 / 3),)}

    cost = per_series(results["Cost per 1k output tokens (USD)"])
    assert cost == {(H1, "openai/gpt-4o-mini"): (pytest.approx(0.008 / 200 * 1000),),
                    (H2, "openai/gpt-4o-mini"): (pytest.approx(0.01 / 100 * 1000),),  # the row without cost: out
                    (H1, "groq/m"): (pytest.approx(0.0004 / 40 * 1000),)}

    alerts = results["Firing alerts"]
    assert [(rule, provider, metric) for rule, provider, _, metric, *_ in alerts] == [
        ("outage", "groq", None), ("slo_breach", "openai", "ttft_ms")]  # newest first, the resolved one left out


def test_a_role_without_the_reader_policies_reads_no_row(filled):
    """Why grafana_reader.sql exists: row-level security hides every row from a role with no policy."""
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("drop policy grafana_reader_read on benchmark_results")
    sql = expand(queries()[0][1], {"provider": ["groq", "openai"], "mode": ["live"]})
    assert run_as_reader(filled, sql) == []


def test_the_simulated_mode_shows_only_simulated_rows(filled):
    sql = expand(queries()[0][1], {"provider": ["groq", "openai"], "mode": ["simulated"]})
    assert run_as_reader(filled, sql) == [(Decimal(int(H1.timestamp())), "openai/gpt-4o-mini", 9999.0, 9999.0)]


# What the dashboard reads, per table: the reader role may select these columns and no other.
READ_COLUMNS = {
    "benchmark_results": {"run_id", "provider", "model", "created_at", "success", "ttft_ms", "latency_ms", "cost_usd",
                          "output_tokens"},
    "runs": {"id", "mode"},
    "alerts": {"rule", "provider", "model", "metric", "state", "started_at", "last_seen_at", "details"},
}


def test_the_reader_role_selects_only_the_columns_the_dashboard_reads(filled):
    """grafana_reader.sql granted SELECT on whole tables: the answers (response_text), the run's settings, error
    texts and hosts were all readable with the dashboard's password, which sits in Grafana's data source."""
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("grant select on runs, benchmark_results, alerts to grafana_reader")  # as the old file did
        conn.execute(READER_SQL)  # run again over it, as an upgrade does: the table-wide grant is taken back
        columns = {table: {name for (name,) in conn.execute(
            "select column_name from information_schema.columns where table_name = %s", (table,))}
                   for table in READ_COLUMNS}
    for table, readable in READ_COLUMNS.items():
        assert readable <= columns[table]  # the names above are the schema's
        for column in sorted(columns[table]):
            if column in readable:
                run_as_reader(filled, f"select {column} from {table} limit 1")
            else:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    run_as_reader(filled, f"select {column} from {table} limit 1")
    for title, sql in queries():  # and every query of the dashboard still runs, with rows
        assert run_as_reader(filled, expand(sql, {"provider": ["groq", "openai"], "mode": ["live"]})), title
