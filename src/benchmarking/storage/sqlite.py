"""SQLite backend (standard library), the embedded default: ./benchmarks.db."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
import sqlite3
from typing import Any, Mapping, Sequence
from uuid import UUID

from ..errors import StorageError, StorageRejected, StorageUnavailable
from ..measurement import Measurement
from .base import RunInfo, Storage, StoredResult, StoredRun
from .schema import (
    RESULTS_COLUMNS, RUNS_COLUMNS, result_row, run_row, selected_result_columns, settings_json, storable,
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


def _migrate(db: sqlite3.Connection) -> None:
    """Create missing tables, columns and indexes; never drops or changes what exists."""
    for table, columns in _TABLES.items():
        body = ", ".join(_column_ddl(n, t) for n, t in columns)
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body}{_CONSTRAINTS[table]})")
        existing = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, pg_type in columns:
            if name not in existing:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {_column_ddl(name, pg_type)}")
    for statement in _INDEXES:
        db.execute(statement)


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


# Primary result codes (the low byte of sqlite_errorcode) that say the file, not the row, is the trouble: busy or
# locked by another process, full, unreadable, read-only, corrupt. A later write may succeed; anything else
# (a constraint, a type, an unknown column) is the row's or the schema's fault.
# PERM 3, BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10, CORRUPT 11, FULL 13, CANTOPEN 14, PROTOCOL 15, AUTH 23,
# NOTADB 26.
_UNAVAILABLE_CODES = frozenset({3, 5, 6, 7, 8, 10, 11, 13, 14, 15, 23, 26})


def _storage_error(what: str, exc: Exception) -> StorageError:
    """Unavailable when the file is the trouble (by SQLite's result code), rejected when the row is."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, OSError) or (code is not None and code & 0xFF in _UNAVAILABLE_CODES):
        return StorageUnavailable(f"{what}: {exc}")
    return StorageRejected(f"{what}: {exc}")


class SQLiteStorage(Storage):
    """One file, one connection, a commit per write so that a crash loses nothing already measured.

    The file is opened on first use, so that a full disk or a lock held by another process at start makes the
    writes wait in the outbox instead of stopping the run.
    """

    backend = "sqlite"

    def __init__(self, path: str | Path, timeout_s: float = 10.0) -> None:
        self.location = str(path)
        self.database = "sqlite:///" + (str(path) if str(path) == ":memory:" else str(Path(path).resolve()))
        self._path = path
        self._timeout_s = timeout_s
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        self.prepare()
        return self._connection

    def _open(self) -> sqlite3.Connection:
        connection = None
        try:
            if str(self._path) != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(str(self._path), timeout=self._timeout_s, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys = ON")
            _migrate(connection)
            return connection
        except (sqlite3.Error, OSError) as exc:
            if connection is not None:
                connection.close()
            raise _storage_error(f"cannot open SQLite database {self.location}", exc) from None

    def prepare(self) -> None:
        """Open the file (creating or upgrading the tables) if it is not open yet."""
        if self._connection is None:
            self._connection = self._open()

    def _execute(self, what: str, statement: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(statement, params)
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: an integer too large for SQLite's 64 bits
            raise _storage_error(f"{what} in {self.location}", exc) from None

    def _insert(self, table: str, row: dict[str, object]) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self._execute(
            f"cannot write to {table}",
            f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING",
            [_sql_value(v) for v in row.values()],
        )

    def create_run(self, run: RunInfo) -> None:
        row = run_row(run)
        row["settings"] = settings_json(row["settings"])
        self._insert("runs", row)

    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> None:
        self._insert("benchmark_results", result_row(run_id, result_id, created_at, m))

    def finish_run(
        self, run_id: UUID, status: str, finished_at: datetime, summary: dict[str, object] | None = None
    ) -> None:
        cursor = self._execute(
            f"cannot finish run {run_id}",
            "UPDATE runs SET status = ?, finished_at = ?, summary = COALESCE(?, summary) WHERE id = ?",
            (status, finished_at.isoformat(), settings_json(storable(summary)) if summary else None, str(run_id)),
        )
        if cursor.rowcount == 0:  # its row went elsewhere (the outbox): the finish waits with it
            raise StorageRejected(f"cannot finish run {run_id}: it is not in {self.location}")

    def read_runs(self, status: str | None = None) -> list[StoredRun]:
        where, params = (" WHERE status = ?", [status]) if status is not None else ("", [])
        rows = self._execute("cannot read runs", f"SELECT * FROM runs{where} ORDER BY started_at", params)
        return [stored_run_from_row(dict(row)) for row in rows]

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
        rows = self._execute(
            "cannot read results", f"SELECT {columns} FROM benchmark_results{where} ORDER BY created_at, rowid", params
        )
        return [stored_result_from_row(dict(row)) for row in rows]

    def read_rows(
        self, table: str, columns: Sequence[str], equal: Mapping[str, str] | None = None
    ) -> list[tuple[Any, ...]]:
        equal = equal or {}
        where = " WHERE " + " AND ".join(f'"{name}" = ?' for name in equal) if equal else ""
        names = ", ".join(f'"{name}"' for name in columns)
        try:
            cursor = self._db.cursor()
            cursor.row_factory = None  # plain tuples: a Row per result was a third of reading 100,000
            return cursor.execute(f'SELECT {names} FROM "{table}"{where}', list(equal.values())).fetchall()
        except sqlite3.Error as exc:
            raise _storage_error(f"cannot read {table} in {self.location}", exc) from None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
