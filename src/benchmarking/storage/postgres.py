"""PostgreSQL backend (psycopg 3), selected by DATABASE_URL=postgresql://...: its queries, over a guarded connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from ..settings.urls import redact_url
from ..errors import ConfigError, StorageRejected
from ..measurement import Measurement
from .base import (
    BucketMedians, GroupValues, ResultFilters, RunInfo, SelectionSpan, Storage, StoredAlert, StoredResult, StoredRun,
)
from .postgres_connection import GuardedConnection
from .report_read import REPORT_COLUMNS, REPORT_RUN_COLUMNS, counted_costs, report_results, report_runs, report_where
from .schema import (
    result_row, run_row, selected_result_columns, storable, stored_alert_from_row, stored_result_from_row,
    stored_run_from_row,
)

T = TypeVar("T")


def _finite(column: str) -> str:
    """A successful request's value that is a number (PostgreSQL holds NaN and infinities; the rows path reads them as
    NULL, and SQLite cannot hold NaN)."""
    return f"b.success and {column} is not null and {column} not in ('NaN', 'Infinity', '-Infinity')"


def database_identity(url: str) -> str:
    """The database a URL names, without secrets, the same however it is spelled (postgres://, no port)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return urlunsplit(("postgresql", f"{host}:{parts.port or 5432}", parts.path or "/", "", ""))


class PostgresStorage(Storage):
    """The queries of every read and write; the guard holds the connection, its timeouts and its schema check."""

    backend = "postgres"

    def __init__(self, url: str, timeout_s: float = 10.0, migrate: bool = True) -> None:
        self.location = redact_url(url)
        self.database = database_identity(url)
        self._guard = GuardedConnection(url, self.location, timeout_s, migrate)

    def prepare(self) -> None:
        try:
            self._run("connect", lambda conn: None)
        except StorageRejected as exc:
            raise ConfigError(str(exc)) from None

    def _run(self, what: str, action: Callable[[Any], T]) -> T:
        return self._guard.run(what, action)

    def _insert(self, table: str, row: dict[str, object]) -> None:
        from psycopg import sql

        statement = sql.SQL("insert into {} ({}) values ({}) on conflict (id) do nothing").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        )
        self._run(f"insert into {table}", lambda conn: conn.execute(statement, list(row.values())))

    def create_run(self, run: RunInfo) -> None:
        from psycopg.types.json import Jsonb

        row = run_row(run)
        row["settings"] = Jsonb(row["settings"])
        self._insert("runs", row)

    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> None:
        self._insert("benchmark_results", result_row(run_id, result_id, created_at, m))

    def finish_run(
        self, run_id: UUID, status: str, finished_at: datetime, summary: dict[str, object] | None = None
    ) -> None:
        from psycopg.types.json import Jsonb

        kept = Jsonb(storable(summary)) if summary else None
        cursor = self._run(
            "finish run",
            lambda conn: conn.execute(
                "update runs set status = %s, finished_at = %s, summary = coalesce(%s, summary) where id = %s",
                (status, finished_at, kept, run_id),
            ),
        )
        if cursor.rowcount == 0:  # its row went elsewhere (the outbox): the finish waits with it
            raise StorageRejected(f"finish run: run {run_id} is not in {self.location}")

    def _select(self, query: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        def fetch(conn: Any) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cursor:
                return cursor.execute(query, params).fetchall()

        return self._run("read", fetch)

    def read_runs(self, status: str | None = None) -> list[StoredRun]:
        where, params = (" where status = %s", (status,)) if status is not None else ("", ())
        rows = self._select(f"select * from runs{where} order by started_at", params)
        return [stored_run_from_row(row) for row in rows]

    def read_results(
        self, run_id: UUID | None = None, since: datetime | None = None, with_text: bool = True
    ) -> list[StoredResult]:
        conditions, params = [], []
        if run_id is not None:
            conditions.append("run_id = %s")
            params.append(run_id)
        if since is not None:
            conditions.append("created_at >= %s")
            params.append(since)
        where = " where " + " and ".join(conditions) if conditions else ""
        columns = ", ".join(selected_result_columns(with_text))
        rows = self._select(f"select {columns} from benchmark_results{where} order by created_at, id", tuple(params))
        return [stored_result_from_row(row) for row in rows]

    def read_rows(
        self, table: str, columns: Sequence[str], equal: Mapping[str, str] | None = None
    ) -> list[tuple[Any, ...]]:
        from psycopg import sql

        equal = equal or {}
        query = sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table))
        if equal:
            query += sql.SQL(" where ") + sql.SQL(" and ").join(
                sql.SQL("{} = %s").format(sql.Identifier(name)) for name in equal)
        return self._run(f"read {table}", lambda conn: conn.execute(query, list(equal.values())).fetchall())

    def read_report_runs(self) -> list[StoredRun]:
        return report_runs(self._rows(f"select {', '.join(REPORT_RUN_COLUMNS)} from runs", ()))

    def read_report_results(self, filters: ResultFilters) -> list[StoredResult]:
        where, params = report_where(filters, "%s")
        return report_results(self._rows(f"select {', '.join(REPORT_COLUMNS)} from benchmark_results{where}", params))

    def read_group_values(
        self, filters: ResultFilters, group_sql: str | None
    ) -> tuple[list[GroupValues], SelectionSpan | None]:
        where, params = report_where(filters, "%s", table="b.")
        group = (group_sql or "null::text").replace("{hour}", "extract(hour from b.created_at at time zone 'UTC')::int")
        tables = "benchmark_results b" + (" join runs r on r.id = b.run_id" if "r." in group else "")

        # Binary results: psycopg reads float8 arrays in C, where parsing them as text took longer than the query.
        query = f"""select {group}, b.provider, b.model, count(*), count(*) filter (where b.success),
            array_agg(b.ttft_ms) filter (where {_finite('b.ttft_ms')}),
            array_agg(b.latency_ms) filter (where {_finite('b.latency_ms')}),
            array_agg(b.tokens_per_second) filter (where {_finite('b.tokens_per_second')}),
            array_agg(b.cost_usd) filter (where {_finite('b.cost_usd')}),
            array_agg(b.output_tokens) filter (where {_finite('b.cost_usd')}),
            array_agg(coalesce(nullif(b.error_type, ''), 'unknown')) filter (where not coalesce(b.success, false)),
            array_agg(b.upstream_provider) filter (where b.upstream_provider <> ''),
            count(b.answer_ok), count(*) filter (where b.answer_ok), min(b.created_at), max(b.created_at)
            from {tables}{where} group by 1, 2, 3"""
        rows = self._rows(query, params, binary=True)
        groups = [
            GroupValues(value, provider, model, requests, successes, ttft or [], latency or [], speed or [],
                        counted_costs(zip(costs or (), tokens_out or ())), errors or [], served or [], judged, correct)
            for value, provider, model, requests, successes, ttft, latency, speed, costs, tokens_out, errors, served,
            judged, correct, _, _ in rows
        ]
        if not rows:
            return groups, None
        # The span from the groups; its runs counted by a hash of their ids (count(distinct) sorts them all).
        ((runs,),) = self._rows(f"select count(*) from (select distinct b.run_id from benchmark_results b{where}) r",
                                params)
        return groups, SelectionSpan(sum(row[3] for row in rows), runs, min(row[-2] for row in rows),
                                     max(row[-1] for row in rows))

    def read_bucket_medians(self, filters: ResultFilters, step_s: int) -> BucketMedians:
        # percentile_cont interpolates as figures.percentile does (lo + (hi - lo) * fraction, in float8): the same
        # medians as those taken in Python from the same values. Most of the time is the sort of every row into its
        # group: buckets counted in whole days (integers, not numeric epochs) and names compared byte by byte
        # (collate "C": equal is equal in any deterministic collation) cost a sixth less at 1,000,000 results.
        where, params = report_where(filters, "%s", table="b.")
        where = f"{where} and b.success" if where else " where b.success"
        days = step_s // 86400
        query = f"""select b.provider collate "C", b.model collate "C",
            -- floor(): integer / truncates toward zero, Python's // (SQLite's buckets) floors: days before 1970
            floor(((b.created_at at time zone 'UTC')::date - date '1970-01-01') / {float(days)})::bigint,
            percentile_cont(0.5) within group (order by b.ttft_ms) filter (where {_finite('b.ttft_ms')}),
            percentile_cont(0.5) within group (order by b.latency_ms) filter (where {_finite('b.latency_ms')})
            from benchmark_results b{where} group by 1, 2, 3"""
        return {(provider, model, bucket * days * 86400): (ttft, latency)
                for provider, model, bucket, ttft, latency in self._rows(query, params, binary=True)}

    def _rows(self, query: str, params: Any, binary: bool = False) -> list[tuple]:
        def fetch(conn: Any) -> list[tuple]:
            with conn.cursor(binary=binary) as cursor:
                return cursor.execute(query, params).fetchall()

        return self._run("read", fetch)

    def _results(self, where: str, params: tuple[object, ...], order: str) -> list[StoredResult]:
        columns = ", ".join(selected_result_columns(False))
        rows = self._select(f"select {columns} from benchmark_results where {where} order by {order}", params)
        return [stored_result_from_row(row) for row in rows]

    def read_results_between(self, since: datetime, until: datetime | None = None) -> list[StoredResult]:
        if until is None:
            return self._results("created_at >= %s", (since,), "created_at, id")
        return self._results("created_at >= %s and created_at < %s", (since, until), "created_at, id")

    def read_latest_results(self, provider: str, model: str, limit: int) -> list[StoredResult]:
        # No tie-breaker on id: the index (provider, model, created_at) gives this order as it is, where
        # `created_at desc, id desc` made PostgreSQL sort every row of the pair (0.5 s at 1,000,000 rows).
        return self._results("provider = %s and model = %s", (provider, model), f"created_at desc limit {int(limit)}")

    def read_runs_by_id(self, run_ids: set[UUID]) -> list[StoredRun]:
        rows = self._select("select * from runs where id = any(%s)", (list(run_ids),))
        return [stored_run_from_row(row) for row in rows]

    def read_alerts(self, resolved_since: datetime) -> list[StoredAlert]:
        rows = self._select(
            "select * from alerts where state = 'firing' or resolved_at >= %s"
            " or (state = 'resolved' and notified_resolved_at is null) order by started_at",
            (resolved_since,),
        )
        return [stored_alert_from_row(row) for row in rows]

    def insert_alert(self, row: dict[str, object]) -> bool:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        row = {**row, "details": Jsonb(storable(row.get("details") or {}))}
        # No conflict target: the partial unique index (one firing alert per key) is what a conflict meets.
        statement = sql.SQL("insert into alerts ({}) values ({}) on conflict do nothing").format(
            sql.SQL(", ").join(map(sql.Identifier, row)), sql.SQL(", ").join(sql.Placeholder() * len(row)))
        cursor = self._run("insert into alerts", lambda conn: conn.execute(statement, list(row.values())))
        return cursor.rowcount == 1

    def update_alert(self, alert_id: UUID, values: dict[str, object], where: dict[str, object]) -> bool:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        if "details" in values:
            values = {**values, "details": Jsonb(storable(values["details"]))}
        conditions = [sql.SQL("id = %s")] + [
            sql.SQL("{} is null" if value is None else "{} = %s").format(sql.Identifier(name))
            for name, value in where.items()
        ]
        statement = sql.SQL("update alerts set {} where {}").format(
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in values),
            sql.SQL(" and ").join(conditions),
        )
        params = [*values.values(), alert_id, *(v for v in where.values() if v is not None)]
        cursor = self._run("update alerts", lambda conn: conn.execute(statement, params))
        return cursor.rowcount == 1

    def close(self) -> None:
        self._guard.close()
