"""PostgreSQL backend (psycopg 3), selected by DATABASE_URL=postgresql://...; applies schema.sql itself."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
import math
import os
from pathlib import Path
import re
import socket
import threading
import time
from typing import Any, Callable, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from ..config import redact_url
from ..errors import ConfigError, StorageRejected, StorageUnavailable
from ..measurement import Measurement
from .base import GroupValues, ResultFilters, RunInfo, SelectionSpan, Storage, StoredAlert, StoredResult, StoredRun
from .report_read import REPORT_COLUMNS, REPORT_RUN_COLUMNS, counted_costs, report_results, report_runs, report_where
from .schema import (
    ALERTS_COLUMNS, RESULTS_COLUMNS, RUNS_COLUMNS, result_row, run_row, selected_result_columns, storable,
    stored_alert_from_row, stored_result_from_row, stored_run_from_row,
)

SCHEMA_SQL = Path(__file__).resolve().parents[3] / "schema.sql"
_MIGRATION_LOCK = 0x62656E63  # pg_advisory_xact_lock key: two machines upgrading at once take turns
T = TypeVar("T")

# SQLSTATE classes that say the server or the connection is the trouble, not the row: connection exceptions (08),
# invalid authorization (28), no such database (3D), transaction rollback such as a deadlock (40), insufficient
# resources such as a full disk (53), object not available such as a lock (55), operator intervention such as an
# admin shutdown or a statement timeout (57), system errors (58) and internal errors (XX); and a read-only
# transaction (25006: a standby after a failover), and permission denied (42501: the grants, not the row).
# Everything else (data exceptions 22, integrity 23, syntax and schema 42, program limits 54 such as an index row too
# large, ...) is the row's fault: retrying it would fail the same way, so it must not hold up the rows behind it.
# The watchdog waits this much longer than statement_timeout, so that a server that is slow but alive cancels the
# statement itself (a clean error, nothing written late) and only a frozen one has its connection cut.
WATCHDOG_GRACE_S = 1.0
_UNAVAILABLE_CLASSES = frozenset({"08", "28", "3D", "40", "53", "55", "57", "58", "XX"})
_UNAVAILABLE_STATES = frozenset({"25006", "42501"})


def is_unavailable(exc: BaseException) -> bool:
    """Whether a psycopg error means the database is unavailable (retry later) rather than the row refused."""
    import psycopg

    state = getattr(exc, "sqlstate", None)
    if state:
        return state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES
    # No SQLSTATE: raised by the client. Connection-level (refused, reset, timed out) or the row's (a value psycopg
    # cannot send, like NUL in text).
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def database_identity(url: str) -> str:
    """The database a URL names, without secrets, the same however it is spelled (postgres://, no port)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return urlunsplit(("postgresql", f"{host}:{parts.port or 5432}", parts.path or "/", "", ""))


class _Watchdog:
    """Cuts the connection of a database call that outlives its deadline.

    psycopg's connect_timeout covers only the connection, and the server-side statement_timeout, keepalives and
    tcp_user_timeout do not fire when a server (or a proxy in front of it) accepted the connection and then froze:
    its kernel still acknowledges every packet. Shutting the socket down from another thread makes the blocked call
    fail at once with a connection error. One thread per backend, waiting on a condition, so a call costs no thread.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._condition = threading.Condition()
        self._deadline: float | None = None
        self._connection: Any = None
        self._fired = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def arm(self) -> None:
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="postgres-watchdog", daemon=True)
                self._thread.start()
            self._deadline = time.monotonic() + self._timeout_s
            self._connection, self._fired = None, False
            self._condition.notify()

    def watch(self, connection: Any) -> None:
        """The connection the armed call uses, once it exists (connect_timeout bounds the time before)."""
        with self._condition:
            self._connection = connection
            if self._fired:
                _cut(connection)

    def disarm(self) -> bool:
        """End the call's watch; True if the watchdog cut its connection."""
        with self._condition:
            self._deadline, self._connection = None, None
            return self._fired

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()

    def _loop(self) -> None:
        with self._condition:
            while not self._closed:
                if self._deadline is None:
                    self._condition.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                self._fired, self._deadline = True, None
                if self._connection is not None:
                    _cut(self._connection)


def _cut(connection: Any) -> None:
    """Shut the connection's socket down (not close: psycopg still owns the descriptor)."""
    try:
        fd = connection.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # already closed or broken: nothing left to cut
        pass


class PostgresStorage(Storage):
    """One connection, autocommit, a statement timeout; reconnects on the next write after a failure."""

    backend = "postgres"

    def __init__(self, url: str, timeout_s: float = 10.0, migrate: bool = True) -> None:
        self.location = redact_url(url)
        self.database = database_identity(url)
        self._url = url
        self._timeout_s = timeout_s
        self._migrate = migrate
        self._connection: Any = None
        self._watchdog = _Watchdog(timeout_s + WATCHDOG_GRACE_S)

    def _connect(self) -> Any:
        import psycopg

        if self._connection is not None and not self._connection.closed:
            self._watchdog.watch(self._connection)
            return self._connection
        timeout_ms = int(self._timeout_s * 1000)
        # statement_timeout bounds a slow server; keepalives and tcp_user_timeout bound a connection that died
        # silently, which the server cannot report; the watchdog bounds a server that froze. UTF-8 on the wire:
        # otherwise psycopg encodes text in the database's encoding (LATIN1, say) itself and fails outside any SQLSTATE;
        # this way the server converts, and refuses what it cannot hold with 22P05 (rejected, with its reason).
        connection = psycopg.connect(
            self._url,
            autocommit=True,
            client_encoding="utf8",
            connect_timeout=max(1, math.ceil(self._timeout_s)),
            options=f"-c statement_timeout={timeout_ms}",
            keepalives=1,
            keepalives_idle=max(1, int(self._timeout_s / 2)),
            keepalives_interval=1,
            keepalives_count=2,
            tcp_user_timeout=timeout_ms,
        )
        self._watchdog.watch(connection)
        try:
            if self._migrate:
                self._apply_schema(connection)
            else:
                self._require_tables(connection)
        except psycopg.Error as exc:
            connection.close()
            if is_unavailable(exc):
                raise
            raise ConfigError(f"{self.location}: cannot apply schema.sql: {_one_line(exc)}") from None
        except ConfigError:
            connection.close()
            raise
        self._connection = connection
        return connection

    @staticmethod
    def _apply_schema(connection: Any) -> None:
        """Run schema.sql (idempotent) under an advisory lock, unless the catalog shows everything it makes is there.

        Its `add column if not exists` takes an exclusive lock on the table even when the column exists: run on
        every connect, it made each command wait for every long read under way (a report over a million rows, a
        dashboard's query), and every read wait behind it.
        """
        if _schema_in_place(connection):
            return
        sql = SCHEMA_SQL.read_text(encoding="utf-8")
        with connection.transaction():
            connection.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            connection.execute(sql)

    def prepare(self) -> None:
        try:
            self._run("connect", lambda conn: None)
        except StorageRejected as exc:
            raise ConfigError(str(exc)) from None

    def _require_tables(self, connection: Any) -> None:
        found = {
            (table, column)
            for table, column in connection.execute(
                "select table_name, column_name from information_schema.columns"
                " where table_schema = current_schema() and table_name in ('runs', 'benchmark_results', 'alerts')"
            )
        }
        expected = {("runs", c) for c, _ in RUNS_COLUMNS} | {("benchmark_results", c) for c, _ in RESULTS_COLUMNS}
        expected |= {("alerts", c) for c, _ in ALERTS_COLUMNS}
        missing = sorted(expected - found)
        if missing:
            table, column = missing[0]
            raise ConfigError(
                f"{self.location}: column {table}.{column} is missing ({len(missing)} in all); "
                "run schema.sql, or unset BENCHMARK_NO_MIGRATE to let the tool apply it"
            )

    def _run(self, what: str, action: Callable[[Any], T]) -> T:
        """Do one database action within the timeout, turning psycopg's errors into ours by their cause."""
        import psycopg

        self._watchdog.arm()
        cut = False
        try:
            try:
                return action(self._connect())
            finally:
                cut = self._watchdog.disarm()
                if cut:  # even if the call returned just in time, its connection is gone: start afresh next time
                    self._drop_connection()
        except ConfigError as exc:  # tables missing on a reconnect mid-run: keep the row, with the reason
            raise StorageRejected(f"{what}: {exc}") from None
        except UnicodeError as exc:  # text that cannot be encoded for the wire: the row's, not the connection's
            raise StorageRejected(f"{what}: rejected: {_one_line(exc)}") from None
        except psycopg.Error as exc:
            if cut:
                raise StorageUnavailable(
                    f"{what}: {self.location} unavailable: no answer within {self._timeout_s + WATCHDOG_GRACE_S:g} s"
                ) from None
            if is_unavailable(exc):
                self._drop_connection()
                raise StorageUnavailable(f"{what}: {self.location} unavailable: {_one_line(exc)}") from None
            raise StorageRejected(f"{what}: rejected by {self.location}: {_one_line(exc)}") from None

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

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

        def finite(column: str) -> str:
            return f"b.success and {column} is not null and {column} not in ('NaN', 'Infinity', '-Infinity')"

        # Binary results: psycopg reads float8 arrays in C, where parsing them as text took longer than the query.
        query = f"""select {group}, b.provider, b.model, count(*), count(*) filter (where b.success),
            array_agg(b.ttft_ms) filter (where {finite('b.ttft_ms')}),
            array_agg(b.latency_ms) filter (where {finite('b.latency_ms')}),
            array_agg(b.tokens_per_second) filter (where {finite('b.tokens_per_second')}),
            array_agg(b.cost_usd) filter (where {finite('b.cost_usd')}),
            array_agg(b.output_tokens) filter (where {finite('b.cost_usd')}),
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
        self._watchdog.close()
        if self._connection is not None:
            self._connection.close()


_TABLES = {"runs": RUNS_COLUMNS, "benchmark_results": RESULTS_COLUMNS, "alerts": ALERTS_COLUMNS}
# What schema.sql makes, by kind of statement (a test checks that it holds no other kind): tables and their columns
# (schema.py mirrors them), indexes by name, and row-level security.
SCHEMA_STATEMENTS = {
    "table": re.compile(r"create table if not exists (\w+) \(", re.I),
    "column": re.compile(r"alter table (\w+) add column if not exists (\w+) ", re.I),
    "index": re.compile(r"create (?:unique )?index if not exists (\w+)\s+on ", re.I),
    "security": re.compile(r"alter table (\w+) enable row level security", re.I),
}


@lru_cache(maxsize=1)
def _schema_objects() -> frozenset[str]:
    """Every column ('table.column'), index and table with row-level security schema.sql makes."""
    text = SCHEMA_SQL.read_text(encoding="utf-8")
    objects = {f"{table}.{column}" for table, columns in _TABLES.items() for column, _ in columns}
    objects |= {f"index {name}" for name in SCHEMA_STATEMENTS["index"].findall(text)}
    return frozenset(objects | {f"security {name}" for name in SCHEMA_STATEMENTS["security"].findall(text)})


def _schema_in_place(connection: Any) -> bool:
    """Whether the current schema holds everything schema.sql makes: one read of the catalog, no lock taken."""
    found = connection.execute(
        """select c.relname || '.' || a.attname from pg_class c join pg_attribute a on a.attrelid = c.oid
             where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p') and a.attnum > 0
               and not a.attisdropped and c.relname = any(%s)
           union all select 'index ' || relname from pg_class
             where relnamespace = current_schema()::regnamespace and relkind in ('i', 'I')
           union all select 'security ' || relname from pg_class
             where relnamespace = current_schema()::regnamespace and relrowsecurity""", (list(_TABLES),)).fetchall()
    return _schema_objects() <= {name for (name,) in found}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
