"""Supabase backend (supabase-py over PostgREST), selected by SUPABASE_URL + SUPABASE_SERVICE_ROLE.

PostgREST cannot run DDL, so the tables must exist already (schema.sql, run once in the SQL editor); the backend checks
that before anything is measured.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
import re
from typing import Any, Callable, Mapping, Sequence, TypeVar
from uuid import UUID

from ..settings.urls import redact_url
from ..settings.values import Secret
from ..errors import ConfigError, StorageRejected, StorageUnavailable
from ..measurement import Measurement
from .base import RunInfo, Storage, StoredAlert, StoredResult, StoredRun
from .schema import (
    ALERTS_COLUMNS, RESULTS_COLUMNS, RUNS_COLUMNS, result_row, run_row, selected_result_columns, storable,
    stored_alert_from_row, stored_result_from_row, stored_run_from_row,
)

T = TypeVar("T")
READ_PAGE_ROWS = 1000
# Errors that are the row's or the schema's fault (PostgREST's schema-cache codes, Postgres' data, integrity, syntax
# and program-limit classes such as an index row too large, and HTTP 413 from a proxy for a body too large):
# retrying the same row would fail the same way. 42501 (row-level security, e.g. the anon key instead of the service
# role) is the key's fault: the row waits until the key is fixed. Everything else (5xx, a network error, a JWT
# error, an answer that is not PostgREST's) means unavailable.
_REJECTED_CODE = re.compile(r"^(PGRST2\d\d|22\w{3}|23\w{3}|42(?!501)\w{3}|54\w{3}|413)$")
_PROBE_COLUMN = "benchmark_engine_no_such_column"


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
        self.database = redact_url(url.lower()).rstrip("/")
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
        """Stop before measuring if the tables or their columns are missing (select nothing, name every column).

        Raises StorageUnavailable if the server does not answer as PostgREST: a proxy's fallback page or a wrong URL
        that answers 200 to everything would otherwise pass, and take every row.
        """
        for table, columns in (("runs", RUNS_COLUMNS), ("benchmark_results", RESULTS_COLUMNS),
                               ("alerts", ALERTS_COLUMNS)):
            select = ",".join(name for name, _ in columns)
            try:
                answer = self._run("check tables", lambda client: client.table(table).select(select).limit(0).execute())
            except StorageRejected as exc:
                raise ConfigError(
                    f"{exc}; run schema.sql in the Supabase SQL editor (Dashboard > SQL Editor), then try again"
                ) from None
            if answer.data != []:
                raise self._not_postgrest("check tables", answer.data)
        try:
            answer = self._run(
                "check tables", lambda client: client.table("runs").select(_PROBE_COLUMN).limit(0).execute()
            )
        except StorageRejected:
            return  # PostgREST refuses a column that does not exist, as it should
        raise self._not_postgrest("check tables", answer.data)

    def _not_postgrest(self, what: str, data: object) -> StorageUnavailable:
        sample = " ".join(str(data).split())[:80]
        return StorageUnavailable(
            f"{what}: {self.location} answered, but not as Supabase's REST API (PostgREST) would ({sample!r}): "
            "check SUPABASE_URL"
        )

    @staticmethod
    def _has_row(data: object, row_id: str) -> bool:
        """Whether an answer is PostgREST's list of rows holding exactly the row with this id."""
        return (
            isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)
            and str(data[0].get("id", "")).lower() == row_id
        )

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
        except UnicodeError as exc:  # text that cannot be encoded as JSON for the request: the row's fault
            raise StorageRejected(f"{what}: rejected: {type(exc).__name__}: {exc}") from None
        except (httpx.HTTPError, ValueError) as exc:  # network, timeout, or a non-JSON answer from a proxy
            raise StorageUnavailable(f"{what}: {self.location} unavailable: {type(exc).__name__}: {exc}") from None

    def create_run(self, run: RunInfo) -> None:
        row = _row(run_row(run))  # settings stay the JSON object itself, for the jsonb column
        self._upsert("runs", row)

    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> None:
        self._upsert("benchmark_results", _row(result_row(run_id, result_id, created_at, m)))

    def _upsert(self, table: str, row: dict[str, object]) -> None:
        """Insert, ignoring a duplicate id; stored only if PostgREST answers with the row's id (select=id, so that a
        1 MB answer text does not travel back)."""
        what, row_id = f"insert into {table}", str(row["id"])
        answer = self._run(
            what,
            lambda client: client.table(table).upsert(row, on_conflict="id", ignore_duplicates=True)
            .select("id").execute(),
        )
        if self._has_row(answer.data, row_id):
            return
        if answer.data == []:  # a duplicate, which ON CONFLICT DO NOTHING leaves out of the answer: is it there?
            found = self._run(what, lambda client: client.table(table).select("id").eq("id", row_id).execute())
            if self._has_row(found.data, row_id):
                return
        raise self._not_postgrest(what, answer.data)

    def finish_run(
        self, run_id: UUID, status: str, finished_at: datetime, summary: dict[str, object] | None = None
    ) -> None:
        values: dict[str, object] = {"status": status, "finished_at": finished_at.isoformat()}
        if summary:
            values["summary"] = storable(summary)
        answer = self._run(
            "finish run",
            lambda client: client.table("runs").update(values).eq("id", str(run_id)).select("id").execute(),
        )
        if self._has_row(answer.data, str(run_id)):
            return
        if answer.data == []:  # no such run: its row went elsewhere (the outbox), and the finish waits with it
            raise StorageRejected(f"finish run: run {run_id} is not in {self.location}")
        raise self._not_postgrest("finish run", answer.data)

    def _read_all(
        self, table: str, order: tuple[str, ...], run_id: UUID | None = None, since: datetime | None = None,
        columns: str = "*", status: str | None = None, equal: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every row, a page at a time: PostgREST caps one answer (1,000 rows on Supabase by default)."""
        def narrow(request: Any) -> Any:
            if run_id is not None:
                request = request.eq("run_id", str(run_id))
            if since is not None:
                request = request.gte("created_at", since.isoformat())
            if status is not None:
                request = request.eq("status", status)
            for name, value in (equal or {}).items():
                request = request.eq(name, value)
            return request

        return self._pages(table, columns, order, narrow)

    def _pages(self, table: str, columns: str, order: tuple[str, ...], narrow: Callable[[Any], Any],
               limit: int | None = None) -> list[dict[str, Any]]:
        """The rows `narrow` filters, in `order`, a page at a time (at most `limit` rows if given)."""
        rows: list[dict[str, Any]] = []
        while True:
            size = READ_PAGE_ROWS if limit is None else min(READ_PAGE_ROWS, limit - len(rows))

            def page(client: Any) -> list[dict[str, Any]]:
                request = narrow(client.table(table).select(columns))
                for column in order:
                    desc = column.startswith("-")
                    request = request.order(column.lstrip("-"), desc=desc)
                return request.range(len(rows), len(rows) + size - 1).execute().data

            batch = self._run("read", page)
            if not isinstance(batch, list):
                raise self._not_postgrest("read", batch)
            rows.extend(batch)
            if len(batch) < size or (limit is not None and len(rows) >= limit):
                return rows

    def read_runs(self, status: str | None = None) -> list[StoredRun]:
        return [stored_run_from_row(row) for row in self._read_all("runs", ("started_at", "id"), status=status)]

    def read_results(
        self, run_id: UUID | None = None, since: datetime | None = None, with_text: bool = True
    ) -> list[StoredResult]:
        columns = ",".join(selected_result_columns(with_text))
        rows = self._read_all("benchmark_results", ("created_at", "id"), run_id, since, columns)
        return [stored_result_from_row(row) for row in rows]

    def read_rows(
        self, table: str, columns: Sequence[str], equal: Mapping[str, str] | None = None
    ) -> list[tuple[Any, ...]]:
        rows = self._read_all(table, ("id",), columns=",".join(columns), equal=equal)  # id: a stable order to page by
        return [tuple(row.get(name) for name in columns) for row in rows]

    def read_results_between(self, since: datetime, until: datetime | None = None) -> list[StoredResult]:
        def narrow(request: Any) -> Any:
            request = request.gte("created_at", since.isoformat())
            return request.lt("created_at", until.isoformat()) if until is not None else request

        rows = self._pages("benchmark_results", ",".join(selected_result_columns(False)), ("created_at", "id"), narrow)
        return [stored_result_from_row(row) for row in rows]

    def read_latest_results(self, provider: str, model: str, limit: int) -> list[StoredResult]:
        rows = self._pages("benchmark_results", ",".join(selected_result_columns(False)), ("-created_at",),
                           lambda request: request.eq("provider", provider).eq("model", model), limit=limit)
        return [stored_result_from_row(row) for row in rows]

    def read_runs_by_id(self, run_ids: set[UUID]) -> list[StoredRun]:
        ids = sorted(str(run_id) for run_id in run_ids)
        runs = []
        for start in range(0, len(ids), 100):  # 100 ids a request keep the URL short
            chunk = ids[start:start + 100]
            rows = self._pages("runs", "*", ("id",), lambda request: request.in_("id", chunk))
            runs += [stored_run_from_row(row) for row in rows]
        return runs

    def read_alerts(self, resolved_since: datetime) -> list[StoredAlert]:
        """Three filters, since PostgREST's `or` is not worth it here: the table is small and indexed."""
        found: dict[str, dict[str, Any]] = {}
        for narrow in (
            lambda request: request.eq("state", "firing"),
            lambda request: request.gte("resolved_at", resolved_since.isoformat()),
            lambda request: request.eq("state", "resolved").is_("notified_resolved_at", "null"),
        ):
            for row in self._pages("alerts", "*", ("started_at", "id"), narrow):
                found[str(row["id"])] = row
        rows = sorted(found.values(), key=lambda row: str(row["started_at"]))
        return [stored_alert_from_row(row) for row in rows]

    def insert_alert(self, row: dict[str, object]) -> bool:
        """A plain insert: PostgREST cannot name a partial unique index as its conflict target, so a second firing
        alert for the same key comes back as 23505, which means another machine opened it first."""
        from postgrest.exceptions import APIError

        body = _row({**row, "details": storable(row.get("details") or {})})

        def insert(client: Any) -> Any:
            try:
                return client.table("alerts").insert(body).execute().data
            except APIError as exc:
                if str(exc.code) == "23505":
                    return None
                raise

        data = self._run("insert into alerts", insert)
        if data is None:
            return False
        if self._has_row(data, str(row["id"])):
            return True
        raise self._not_postgrest("insert into alerts", data)

    def update_alert(self, alert_id: UUID, values: dict[str, object], where: dict[str, object]) -> bool:
        body = _row({**values, **({"details": storable(values["details"])} if "details" in values else {})})

        def update(client: Any) -> Any:
            request = client.table("alerts").update(body).eq("id", str(alert_id))
            for name, value in where.items():
                request = request.is_(name, "null") if value is None else request.eq(name, str(_json(value)))
            return request.select("id").execute()

        answer = self._run("update alerts", update)
        if not isinstance(answer.data, list):
            raise self._not_postgrest("update alerts", answer.data)
        return self._has_row(answer.data, str(alert_id))
