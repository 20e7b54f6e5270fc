"""SQLite backend (standard library), the embedded default: ./benchmarks.db."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
import sqlite3
from uuid import UUID

from ..errors import StorageError, StorageRejected, StorageUnavailable
from ..measurement import Measurement
from .base import RunInfo, Storage, StoredResult, StoredRun
from .schema import (
    RESULTS_COLUMNS, RUNS_COLUMNS, result_row, run_row, selected_result_columns, settings_json,
    stored_result_from_row, stored_run_from_row,
)

SQLITE_TYPES = {
    "uuid": "TEXT",
    "text": "TEXT",
    "timestamptz": "TEXT",
    "jsonb": "TEXT",
    "double precision": "REAL",
    "integer": "INTEGER",
    "boolean": "INTEGER",
    "numeric": "NUMERIC",
}

_TABLES = {"runs": RUNS_COLUMNS, "benchmark_results": RESULTS_COLUMNS}
_CONSTRAINTS = {
    "runs": "",
    "benchmark_results": ", FOREIGN KEY (run_id) REFERENCES runs(id)",
}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS benchmark_results_run_id_idx ON benchmark_results (run_id)",
    "CREATE INDEX IF NOT EXISTS benchmark_results_provider_model_created_idx"
    " ON benchmark_results (provider, model, created_at)",
    "CREATE INDEX IF NOT EXISTS runs_started_at_idx ON runs (started_at)",
)


def _column_ddl(name: str, pg_type: str) -> str:
    ddl = f"{name} {SQLITE_TYPES[pg_type]}"
    return ddl + " PRIMARY KEY" if name == "id" else ddl


def _sql_value(value: object) -> object:
    if isinstance(value, (UUID, datetime)):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, (int, float, str)):
        return value
    return str(value)  # Decimal prices; NUMERIC affinity keeps their value (0.10 reads back as 0.1)


def _storage_error(what: str, exc: sqlite3.Error) -> StorageError:
    """A locked, busy or unreadable file may recover; anything else is the row's or the schema's fault."""
    transient = ("locked", "busy", "disk i/o", "unable to open", "readonly")
    if any(word in str(exc).lower() for word in transient):
        return StorageUnavailable(f"{what}: {exc}")
    return StorageRejected(f"{what}: {exc}")


class SQLiteStorage(Storage):
    """One file, one connection, a commit per write so that a crash loses nothing already measured."""

    backend = "sqlite"

    def __init__(self, path: str | Path, timeout_s: float = 10.0) -> None:
        self.location = str(path)
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            self.migrate()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {self.location}: {exc}") from exc

    def migrate(self) -> None:
        """Create missing tables, columns and indexes; never drops or changes what exists."""
        for table, columns in _TABLES.items():
            body = ", ".join(_column_ddl(n, t) for n, t in columns)
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body}{_CONSTRAINTS[table]})")
            existing = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, pg_type in columns:
                if name not in existing:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {_column_ddl(name, pg_type)}")
        for statement in _INDEXES:
            self._db.execute(statement)

    def _insert(self, table: str, row: dict[str, object]) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            self._db.execute(
                f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING",
                [_sql_value(v) for v in row.values()],
            )
        except sqlite3.Error as exc:
            raise _storage_error(f"cannot write to {table} in {self.location}", exc) from None

    def create_run(self, run: RunInfo) -> None:
        row = run_row(run)
        row["settings"] = settings_json(run.settings)
        self._insert("runs", row)

    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> None:
        self._insert("benchmark_results", result_row(run_id, result_id, created_at, m))

    def finish_run(self, run_id: UUID, status: str, finished_at: datetime) -> None:
        try:
            self._db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                (status, finished_at.isoformat(), str(run_id)),
            )
        except sqlite3.Error as exc:
            raise _storage_error(f"cannot finish run {run_id} in {self.location}", exc) from None

    def read_runs(self) -> list[StoredRun]:
        return [stored_run_from_row(dict(row)) for row in self._db.execute("SELECT * FROM runs ORDER BY started_at")]

    def read_results(
        self, run_id: UUID | None = None, since: datetime | None = None, with_text: bool = True
    ) -> list[StoredResult]:
        conditions, params = [], []
        if run_id is not None:
            conditions.append("run_id = ?")
            params.append(str(run_id))
        if since is not None:  # ISO 8601 text in UTC sorts in time order
            conditions.append("created_at >= ?")
            params.append(since.astimezone(timezone.utc).isoformat())
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        columns = ", ".join(selected_result_columns(with_text))
        rows = self._db.execute(f"SELECT {columns} FROM benchmark_results{where} ORDER BY created_at, rowid", params)
        return [stored_result_from_row(dict(row)) for row in rows]

    def close(self) -> None:
        self._db.close()
