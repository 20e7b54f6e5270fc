"""SQLite backend (standard library), the embedded default: ./benchmarks.db."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
import sqlite3
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar
from uuid import UUID

from ..errors import StorageError, StorageRejected, StorageUnavailable
from ..measurement import Measurement
from .base import (
    BucketMedians, GroupValues, ResultFilters, RunInfo, SelectionSpan, Storage, StoredAlert, StoredResult, StoredRun,
)
from .report_read import (
    GATHERED_COLUMNS, REPORT_COLUMNS, REPORT_INDEX_COLUMNS, REPORT_RUN_COLUMNS, DayValues, bucket_medians,
    gather_group_values,
    report_results, report_runs, report_where,
)
from .schema import (
    ALERTS_COLUMNS, RESULTS_COLUMNS, RUNS_COLUMNS, result_row, run_row, selected_result_columns, settings_json,
    storable, stored_alert_from_row, stored_result_from_row, stored_run_from_row,
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

def _finite(column: str) -> str:
    """A REAL column as the figures read it: an infinity as NULL (SQLite keeps infinities, which older versions
    stored; a NaN is NULL already), as PostgreSQL's reads leave both out."""
    return f"(case when abs({column}) <= 1.7976931348623157e308 then {column} end)"


_REAL_COLUMNS = frozenset({"ttft_ms", "latency_ms", "tokens_per_second", "cost_usd"})
_GATHERED = ", ".join(_finite(f"b.{name}") if name in _REAL_COLUMNS else f"b.{name}" for name in GATHERED_COLUMNS)
T = TypeVar("T")  # what a gathering of rows makes of them (SQLiteStorage._gathered)

_TABLES = {"runs": RUNS_COLUMNS, "benchmark_results": RESULTS_COLUMNS, "alerts": ALERTS_COLUMNS}
_CONSTRAINTS = {
    "runs": "",
    "benchmark_results": ", FOREIGN KEY (run_id) REFERENCES runs(id)",
    "alerts": "",
}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS benchmark_results_run_id_idx ON benchmark_results (run_id)",
    "CREATE INDEX IF NOT EXISTS benchmark_results_provider_model_created_idx"
    " ON benchmark_results (provider, model, created_at)",
    "CREATE INDEX IF NOT EXISTS runs_started_at_idx ON runs (started_at)",
    # Leads with created_at: also the index of every read by time (--since, --window, the alert rules' windows).
    "CREATE INDEX IF NOT EXISTS benchmark_results_report_idx ON benchmark_results"
    f" ({', '.join(REPORT_INDEX_COLUMNS)})",
    # As in schema.sql: only one firing alert per rule, provider, model and metric, whoever opens it.
    "CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_firing_idx"
    " ON alerts (rule, provider, model, coalesce(metric, '')) WHERE state = 'firing'",
    "CREATE INDEX IF NOT EXISTS alerts_resolved_at_idx ON alerts (resolved_at)",
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


def _runs_join(group_sql: str) -> str:
    """The join to runs, only where the group is a run's column (region, host): it costs more than the rest."""
    return " join runs r on r.id = b.run_id" if "r." in group_sql else ""


def _sql_time(value: object) -> object:
    """A time as the text stored for it (ISO 8601 in UTC sorts in time order); other values as they are."""
    return value.astimezone(timezone.utc).isoformat() if isinstance(value, datetime) else _sql_value(value)


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

    def read_report_runs(self) -> list[StoredRun]:
        return report_runs(self._tuples("cannot read runs", f"SELECT {', '.join(REPORT_RUN_COLUMNS)} FROM runs", []))

    def read_report_results(self, filters: ResultFilters) -> list[StoredResult]:
        where, params = report_where(filters, "?", _sql_time)
        # No ORDER BY: the report sorts what is left after its own filters, and SQLite's sort of every row cost more.
        query = f"SELECT {', '.join(REPORT_COLUMNS)} FROM benchmark_results{where}"
        return report_results(self._tuples("cannot read results", query, params))

    def read_group_values(
        self, filters: ResultFilters, group_sql: str | None
    ) -> tuple[list[GroupValues], SelectionSpan | None]:
        where, params = report_where(filters, "?", _sql_time, table="b.")
        group = (group_sql or "null").replace("{hour}", "cast(substr(b.created_at, 12, 2) as integer)")
        # The columns each result's values come from, read in one pass and gathered in Python: SQLite groups by
        # sorting every row, and its group_concat turned every value into text and back (rounded to 15 digits).
        # The covering index, unless runs are chosen by id: the planner would pick (provider, model, created_at) and
        # read every table row; a few runs' rows come faster by run_id.
        index = "" if filters.run_ids is not None or filters.newest_run else " indexed by benchmark_results_report_idx"
        query = (f"select {group}, {_GATHERED}"
                 f" from benchmark_results b{index}{_runs_join(group)}{where}")
        groups, span = self._gathered(query, params, gather_group_values)
        if span is not None:
            span = replace(span, first=datetime.fromisoformat(span.first), last=datetime.fromisoformat(span.last))
        return groups, span

    def read_bucket_medians(self, filters: ResultFilters, step_s: int) -> BucketMedians:
        # SQLite has no percentile: the successful requests' day and values in one pass over the covering index (as
        # read_group_values reads), their medians taken here.
        where, params = report_where(filters, "?", _sql_time, table="b.")
        where = f"{where} and b.success" if where else " where b.success"
        index = "" if filters.run_ids is not None or filters.newest_run else " indexed by benchmark_results_report_idx"
        query = (f"select substr(b.created_at, 1, 10), b.provider, b.model, {_finite('b.ttft_ms')},"
                 f" {_finite('b.latency_ms')}"
                 f" from benchmark_results b{index}{where}")
        return self._gathered(query, params, lambda rows: bucket_medians(rows, step_s))

    def read_group_values_after(
        self, filters: ResultFilters, after: tuple[int, str, int] | None
    ) -> tuple[list[GroupValues], DayValues, set[str], SelectionSpan | None, tuple[int, str, int]] | None:
        """The values per provider and model, and their TTFT and latency per day (UTC, "2026-12-07"), of the results
        stored after `after` (a mark this method gave: the newest rowid read, its result's id, how many results were
        stored up to it), or None when a result up to the mark is gone or another database took its place; with
        their run ids, their span (times as stored text) and the new mark. Results are only ever added (an outbox
        replays old times under new rowids): what was read up to the mark stands."""
        newest = self._newest_rowid()
        if after is not None and not self._mark_holds(after):
            return None
        where, params = report_where(filters, "?", _sql_time, table="b.")
        above = after[0] if after is not None else 0
        # From nothing, the covering index in time order (a "+" keeps the planner off a walk of the table by rowid,
        # answers and all; the days follow each other); after a mark, the few rows above it by rowid.
        rowids = "b.rowid > ? and b.rowid <= ?" if after is not None else "+b.rowid > ? and +b.rowid <= ?"
        where = f"{where} and {rowids}" if where else f" where {rowids}"
        index, order = ("", "") if after is not None else (" indexed by benchmark_results_report_idx",
                                                          " order by b.created_at")
        query = (f"select null, {_GATHERED}"
                 f" from benchmark_results b{index}{where}{order}")
        run_ids: set[str] = set()
        days: DayValues = {}
        groups, span = self._gathered(query, [*params, above, newest],
                                      lambda rows: gather_group_values(rows, run_ids, days))
        return groups, days, run_ids, span, self._mark(newest)

    def read_report_results_after(
        self, filters: ResultFilters, after: tuple[int, str, int] | None
    ) -> tuple[list[StoredResult], tuple[int, str, int]] | None:
        """read_report_results of the results stored after `after` (as read_group_values_after), and the new mark;
        None when the mark no longer holds."""
        newest = self._newest_rowid()
        if after is not None and not self._mark_holds(after):
            return None
        where, params = report_where(filters, "?", _sql_time)
        rowids = "rowid > ? and rowid <= ?" if after is not None else "+rowid > ? and +rowid <= ?"  # as above
        where = f"{where} and {rowids}" if where else f" where {rowids}"
        query = f"SELECT {', '.join(REPORT_COLUMNS)} FROM benchmark_results{where}"
        params += [after[0] if after is not None else 0, newest]
        return report_results(self._tuples("cannot read results", query, params)), self._mark(newest)

    def _newest_rowid(self) -> int:
        return self._tuples("cannot read results", "select max(rowid) from benchmark_results", [])[0][0] or 0

    def _mark(self, rowid: int) -> tuple[int, str, int]:
        """What tells that the results up to a rowid are still those read: its result's id, how many there are."""
        found = self._tuples("cannot read results", "select id from benchmark_results where rowid = ?", [rowid])
        return rowid, found[0][0] if found else "", self._stored_up_to(rowid)

    def _mark_holds(self, mark: tuple[int, str, int]) -> bool:
        return mark[0] > 0 and self._mark(mark[0]) == mark

    def _stored_up_to(self, rowid: int) -> int:
        """How many results are stored at or below a rowid: all, less those above (counting all takes the smallest
        index; counting up to a rowid would walk the table's pages, answers and all)."""
        return self._tuples("cannot read results", "select (select count(*) from benchmark_results)"
                            " - (select count(*) from benchmark_results where rowid > ?)", [rowid])[0][0]

    def _gathered(self, statement: str, params: Sequence[object], gather: Callable[[Iterable[tuple]], T]) -> T:
        """`gather` over the rows as plain tuples, taken as they come (a long history is never held whole)."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        try:
            return gather(cursor.execute(statement, params))
        except sqlite3.Error as exc:
            raise _storage_error(f"cannot read results in {self.location}", exc) from None

    def _tuples(self, what: str, statement: str, params: Sequence[object]) -> list[tuple]:
        """Rows as plain tuples (no sqlite3.Row per row): the report's reads."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        try:
            return cursor.execute(statement, params).fetchall()
        except sqlite3.Error as exc:
            raise _storage_error(f"{what} in {self.location}", exc) from None

    def _results(self, where: str, params: Sequence[object], order: str) -> list[StoredResult]:
        columns = ", ".join(selected_result_columns(False))
        rows = self._execute("cannot read results", f"SELECT {columns} FROM benchmark_results WHERE {where}"
                                                    f" ORDER BY {order}", params)
        return [stored_result_from_row(dict(row)) for row in rows]

    def read_results_between(self, since: datetime, until: datetime | None = None) -> list[StoredResult]:
        where, params = "created_at >= ?", [_utc_text(since)]
        if until is not None:
            where, params = where + " AND created_at < ?", params + [_utc_text(until)]
        return self._results(where, params, "created_at, rowid")

    def read_latest_results(self, provider: str, model: str, limit: int) -> list[StoredResult]:
        return self._results("provider = ? AND model = ?", [provider, model],
                             f"created_at DESC, rowid DESC LIMIT {int(limit)}")

    def read_runs_by_id(self, run_ids: set[UUID]) -> list[StoredRun]:
        ids = [str(run_id) for run_id in run_ids]
        runs = []
        for start in range(0, len(ids), 500):  # SQLite's limit on parameters is far above, but not unbounded
            chunk = ids[start:start + 500]
            rows = self._execute("cannot read runs",
                                 f"SELECT * FROM runs WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            runs += [stored_run_from_row(dict(row)) for row in rows]
        return runs

    def read_alerts(self, resolved_since: datetime) -> list[StoredAlert]:
        rows = self._execute(
            "cannot read alerts",
            "SELECT * FROM alerts WHERE state = 'firing' OR resolved_at >= ?"
            " OR (state = 'resolved' AND notified_resolved_at IS NULL) ORDER BY started_at",
            [_utc_text(resolved_since)],
        )
        return [stored_alert_from_row(dict(row)) for row in rows]

    def insert_alert(self, row: dict[str, object]) -> bool:
        row = {**row, "details": settings_json(storable(row.get("details") or {}))}
        cursor = self._execute(
            "cannot write to alerts",
            f"INSERT INTO alerts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) ON CONFLICT DO NOTHING",
            [_sql_value(v) for v in row.values()],
        )
        return cursor.rowcount == 1

    def update_alert(self, alert_id: UUID, values: dict[str, object], where: dict[str, object]) -> bool:
        if "details" in values:
            values = {**values, "details": settings_json(storable(values["details"]))}
        sets = ", ".join(f"{name} = ?" for name in values)
        conditions = "".join(f" AND {name} IS NULL" if value is None else f" AND {name} = ?"
                             for name, value in where.items())
        params = [_sql_value(v) for v in values.values()] + [str(alert_id)]
        params += [_sql_value(v) for v in where.values() if v is not None]
        cursor = self._execute("cannot update alerts", f"UPDATE alerts SET {sets} WHERE id = ?{conditions}", params)
        return cursor.rowcount == 1

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _utc_text(moment: datetime) -> str:
    """A time as the ISO 8601 text in UTC that SQLite stores and compares in time order."""
    return moment.astimezone(timezone.utc).isoformat()
