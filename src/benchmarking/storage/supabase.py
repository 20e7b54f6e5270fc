"""Supabase backend (supabase-py over PostgREST), selected by SUPABASE_URL + SUPABASE_SERVICE_ROLE.

PostgREST cannot run DDL, so the tables must exist already (schema.sql, run once in the SQL editor); the backend checks
that before anything is measured.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
import re
from typing import Any, Callable, TypeVar
from uuid import UUID

from ..config import Secret, redact_url
from ..errors import ConfigError, StorageRejected, StorageUnavailable
from ..measurement import Measurement
from .base import RunInfo, Storage, StoredResult, StoredRun
from .schema import (
    RESULTS_COLUMNS, RUNS_COLUMNS, result_row, run_row, selected_result_columns, stored_result_from_row,
    stored_run_from_row,
)

T = TypeVar("T")
READ_PAGE_ROWS = 1000
# Errors that are the row's or the schema's fault (PostgREST's schema-cache codes, and Postgres' data,
# integrity and syntax classes): retrying the same row would fail the same way. 42501 (row-level security,
# e.g. the anon key instead of the service role) is the key's fault: the row waits until the key is fixed.
_REJECTED_CODE = re.compile(r"^(PGRST2\d\d|22\w{3}|23\w{3}|42(?!501)\w{3})$")


def _json(value: object) -> object:
    if isinstance(value, (UUID,)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)  # shortest repr: 0.075 travels as 0.075 and PostgREST stores it as numeric 0.075
    return value


def _row(values: dict[str, object]) -> dict[str, object]:
    return {name: _json(value) for name, value in values.items()}


class SupabaseStorage(Storage):
    """Inserts are upserts that ignore duplicates on id, so a replayed row is never inserted twice."""

    backend = "supabase"

    def __init__(self, url: str, service_role: Secret, timeout_s: float = 10.0) -> None:
        self.location = redact_url(url)
        self._url = url
        self._key = service_role
        self._timeout_s = timeout_s
        self._client: Any = None

    def _connect(self) -> Any:
        if self._client is None:
            import httpx
            from supabase import ClientOptions, create_client

            # A plain number is cut to whole seconds by postgrest-py (0.5 becomes 0); a Timeout keeps it. Its own
            # retries of reads (1 + 2 + 4 s) would stretch a down database past our timeout: the outbox retries.
            options = ClientOptions(
                postgrest_client_timeout=httpx.Timeout(self._timeout_s), postgrest_client_retry=False
            )
            self._client = create_client(self._url, self._key.reveal(), options=options)
        return self._client

    def prepare(self) -> None:
        """Stop before measuring if the tables or their columns are missing (select nothing, name every column)."""
        for table, columns in (("runs", RUNS_COLUMNS), ("benchmark_results", RESULTS_COLUMNS)):
            select = ",".join(name for name, _ in columns)
            try:
                self._run("check tables", lambda client: client.table(table).select(select).limit(0).execute())
            except StorageRejected as exc:
                raise ConfigError(
                    f"{exc}; run schema.sql in the Supabase SQL editor (Dashboard > SQL Editor), then try again"
                ) from None

    def _run(self, what: str, action: Callable[[Any], T]) -> T:
        import httpx
        from postgrest.exceptions import APIError

        try:
            return action(self._connect())
        except APIError as exc:
            message = f"{what}: {self.location} answered {exc.code or 'an error'}: {exc.message or exc}"
            if exc.code and _REJECTED_CODE.match(str(exc.code)):
                raise StorageRejected(message) from None
            raise StorageUnavailable(message) from None
        except (httpx.HTTPError, ValueError) as exc:  # network, timeout, or a non-JSON answer from a proxy
            raise StorageUnavailable(f"{what}: {self.location} unavailable: {type(exc).__name__}: {exc}") from None

    def create_run(self, run: RunInfo) -> None:
        row = _row(run_row(run))
        row["settings"] = run.settings  # jsonb: the JSON object itself
        self._upsert("runs", row)

    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> None:
        self._upsert("benchmark_results", _row(result_row(run_id, result_id, created_at, m)))

    def _upsert(self, table: str, row: dict[str, object]) -> None:
        self._run(
            f"insert into {table}",
            lambda client: client.table(table)
            .upsert(row, on_conflict="id", ignore_duplicates=True, returning="minimal")
            .execute(),
        )

    def finish_run(self, run_id: UUID, status: str, finished_at: datetime) -> None:
        values = {"status": status, "finished_at": finished_at.isoformat()}
        self._run(
            "finish run",
            lambda client: client.table("runs").update(values, returning="minimal").eq("id", str(run_id)).execute(),
        )

    def _read_all(
        self, table: str, order: tuple[str, ...], run_id: UUID | None = None, since: datetime | None = None,
        columns: str = "*",
    ) -> list[dict[str, Any]]:
        """Every row, a page at a time: PostgREST caps one answer (1,000 rows on Supabase by default)."""
        rows: list[dict[str, Any]] = []
        while True:
            def page(client: Any) -> list[dict[str, Any]]:
                request = client.table(table).select(columns)
                if run_id is not None:
                    request = request.eq("run_id", str(run_id))
                if since is not None:
                    request = request.gte("created_at", since.isoformat())
                for column in order:
                    request = request.order(column)
                return request.range(len(rows), len(rows) + READ_PAGE_ROWS - 1).execute().data

            batch = self._run("read", page)
            rows.extend(batch)
            if len(batch) < READ_PAGE_ROWS:
                return rows

    def read_runs(self) -> list[StoredRun]:
        return [stored_run_from_row(row) for row in self._read_all("runs", ("started_at", "id"))]

    def read_results(
        self, run_id: UUID | None = None, since: datetime | None = None, with_text: bool = True
    ) -> list[StoredResult]:
        columns = ",".join(selected_result_columns(with_text))
        rows = self._read_all("benchmark_results", ("created_at", "id"), run_id, since, columns)
        return [stored_result_from_row(row) for row in rows]
