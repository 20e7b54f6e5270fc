"""PostgreSQL backend (psycopg 3), selected by DATABASE_URL=postgresql://...; applies schema.sql itself."""

from __future__ import annotations

from datetime import datetime
import math
from pathlib import Path
from typing import Any, Callable, TypeVar
from uuid import UUID

from ..config import redact_url
from ..errors import ConfigError, StorageRejected, StorageUnavailable
from ..measurement import Measurement
from .base import RunInfo, Storage, StoredResult, StoredRun
from .schema import (
    RESULTS_COLUMNS, RUNS_COLUMNS, result_row, run_row, selected_result_columns, stored_result_from_row,
    stored_run_from_row,
)

SCHEMA_SQL = Path(__file__).resolve().parents[3] / "schema.sql"
_MIGRATION_LOCK = 0x62656E63  # pg_advisory_xact_lock key: two machines upgrading at once take turns
T = TypeVar("T")


class PostgresStorage(Storage):
    """One connection, autocommit, a statement timeout; reconnects on the next write after a failure."""

    backend = "postgres"

    def __init__(self, url: str, timeout_s: float = 10.0, migrate: bool = True) -> None:
        self.location = redact_url(url)
        self._url = url
        self._timeout_s = timeout_s
        self._migrate = migrate
        self._connection: Any = None

    def _connect(self) -> Any:
        import psycopg

        if self._connection is not None and not self._connection.closed:
            return self._connection
        timeout_ms = int(self._timeout_s * 1000)
        # statement_timeout bounds a slow server; keepalives and tcp_user_timeout bound a connection that died
        # silently, which the server cannot report.
        self._connection = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=max(1, math.ceil(self._timeout_s)),
            options=f"-c statement_timeout={timeout_ms}",
            keepalives=1,
            keepalives_idle=max(1, int(self._timeout_s / 2)),
            keepalives_interval=1,
            keepalives_count=2,
            tcp_user_timeout=timeout_ms,
        )
        if self._migrate:
            self.apply_schema()
        else:
            self._require_tables()
        return self._connection

    def apply_schema(self) -> None:
        """Run schema.sql (idempotent) under an advisory lock."""
        sql = SCHEMA_SQL.read_text(encoding="utf-8")
        with self._connection.transaction():
            self._connection.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            self._connection.execute(sql)

    def prepare(self) -> None:
        try:
            self._run("connect", lambda conn: None)
        except StorageRejected as exc:
            raise ConfigError(str(exc)) from None

    def _require_tables(self) -> None:
        found = {
            (table, column)
            for table, column in self._connection.execute(
                "select table_name, column_name from information_schema.columns"
                " where table_schema = current_schema() and table_name in ('runs', 'benchmark_results')"
            )
        }
        expected = {("runs", c) for c, _ in RUNS_COLUMNS} | {("benchmark_results", c) for c, _ in RESULTS_COLUMNS}
        missing = sorted(expected - found)
        if missing:
            table, column = missing[0]
            raise ConfigError(
                f"{self.location}: column {table}.{column} is missing ({len(missing)} in all); "
                "run schema.sql, or unset BENCHMARK_NO_MIGRATE to let the tool apply it"
            )

    def _run(self, what: str, action: Callable[[Any], T]) -> T:
        """Do one database action, turning psycopg's errors into ours: unavailable (retry later) or rejected."""
        import psycopg

        try:
            return action(self._connect())
        except ConfigError as exc:  # tables missing on a reconnect mid-run: keep the row, with the reason
            raise StorageRejected(f"{what}: {exc}") from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if self._connection is not None:
                self._connection.close()
            raise StorageUnavailable(f"{what}: {self.location} unavailable: {_one_line(exc)}") from None
        except psycopg.Error as exc:
            raise StorageRejected(f"{what}: rejected by {self.location}: {_one_line(exc)}") from None

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
        row["settings"] = Jsonb(run.settings)
        self._insert("runs", row)

    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> None:
        self._insert("benchmark_results", result_row(run_id, result_id, created_at, m))

    def finish_run(self, run_id: UUID, status: str, finished_at: datetime) -> None:
        self._run(
            "finish run",
            lambda conn: conn.execute(
                "update runs set status = %s, finished_at = %s where id = %s", (status, finished_at, run_id)
            ),
        )

    def _select(self, query: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        def fetch(conn: Any) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cursor:
                return cursor.execute(query, params).fetchall()

        return self._run("read", fetch)

    def read_runs(self) -> list[StoredRun]:
        return [stored_run_from_row(row) for row in self._select("select * from runs order by started_at")]

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

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
