"""The one small interface every storage backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping, Sequence
from uuid import UUID

from ..measurement import Measurement


@dataclass(frozen=True)
class RunInfo:
    """A benchmark run as stored in `runs` when it starts."""

    id: UUID
    run_name: str
    triggered_by: str
    started_at: datetime
    mode: str
    host: str
    region: str | None
    tool_version: str
    settings: dict[str, object]
    pid: int | None = None  # the process that made the run: a later run on the same host marks it abandoned if gone
    kind: str = "sequential"  # 'sequential' (one request at a time) | 'load' (requests in flight together)


@dataclass(frozen=True)
class StoredRun:
    """A row of `runs` read back, with how it ended."""

    info: RunInfo
    status: str | None
    finished_at: datetime | None
    summary: dict[str, object] | None = None


@dataclass(frozen=True)
class StoredResult:
    """A row of `benchmark_results` read back."""

    id: UUID
    run_id: UUID
    created_at: datetime
    measurement: Measurement


@dataclass(frozen=True)
class ResultFilters:
    """What a report selects that the database can filter on: one run, a time range (inclusive), providers, models;
    for read_group_values also runs by id, the newest run only, and simulated runs or not."""

    run_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    providers: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    run_ids: frozenset[UUID] | None = None
    newest_run: bool = False
    include_simulated: bool = True

    def admits(self, result: StoredResult) -> bool:
        m = result.measurement
        return ((self.run_id is None or result.run_id == self.run_id)
                and (self.since is None or result.created_at >= self.since)
                and (self.until is None or result.created_at <= self.until)
                and (not self.providers or m.provider in self.providers)
                and (not self.models or m.model in self.models))


@dataclass
class GroupValues:
    """What a report's figures are computed from, for one group and provider/model: the successful requests' values
    (any order; a list, or an array of doubles), how many priced ones had each (cost, output tokens), the failures'
    error types, who served (OpenRouter). Costs are counted, not listed: a model's requests often cost the same, and
    summing a million Decimals one by one was a tenth of a report."""

    group: object
    provider: str
    model: str
    requests: int = 0
    successes: int = 0
    ttft_ms: Sequence[float] = field(default_factory=list)
    latency_ms: Sequence[float] = field(default_factory=list)
    tokens_per_second: Sequence[float] = field(default_factory=list)
    costs: dict[tuple[Decimal, int | None], int] = field(default_factory=dict)
    error_types: list[str] = field(default_factory=list)
    upstream_providers: list[str] = field(default_factory=list)
    answers_judged: int = 0
    answers_correct: int = 0


@dataclass(frozen=True)
class SelectionSpan:
    """How many results and runs a selection holds, and the first and last result's time."""

    results: int
    runs: int
    first: datetime
    last: datetime


# (provider, model, bucket start in seconds since 1970) -> (median TTFT, median latency), in ms
BucketMedians = dict[tuple[str, str, int], tuple[float | None, float | None]]


@dataclass(frozen=True)
class StoredAlert:
    """A row of `alerts`: one episode of a rule firing for a provider and model, until it resolves."""

    id: UUID
    rule: str  # outage | slo_breach | regression
    provider: str
    model: str
    metric: str | None  # None for outage
    state: str  # firing | resolved
    started_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    details: dict[str, object]
    run_id: UUID | None = None
    host: str | None = None
    notified_firing_at: datetime | None = None
    notified_resolved_at: datetime | None = None
    notify_attempts: int = 0
    notify_error: str | None = None


class Storage(ABC):
    """Create a run, save each result as soon as it is measured, finish the run, read back.

    A backend's write raises StorageUnavailable (the connection: down, timed out, a server that does not answer as
    it should) or StorageRejected (the row: its content, a constraint, a run that is not there to finish) when the
    database does not take it; the outbox wrapper (ResilientStorage) never raises and returns a one-line note instead
    when a row was kept elsewhere.
    """

    backend: str
    location: str  # where, fit to print (no user, password or query string)
    database: str  # which database, without secrets, the same however it was spelled: the outbox's owner tag

    @abstractmethod
    def create_run(self, run: RunInfo) -> str | None: ...

    @abstractmethod
    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> str | None: ...

    @abstractmethod
    def finish_run(
        self, run_id: UUID, status: str, finished_at: datetime, summary: dict[str, object] | None = None
    ) -> str | None:
        """Mark the run ended; `summary` (what a load run found: where a sweep stopped, and why) is kept with it."""

    @abstractmethod
    def read_runs(self, status: str | None = None) -> list[StoredRun]:
        """Runs oldest first; only those with this status if given."""

    @abstractmethod
    def read_results(
        self, run_id: UUID | None = None, since: datetime | None = None, with_text: bool = True
    ) -> list[StoredResult]:
        """Results oldest first: of one run, or created at or after `since`; without response_text if asked."""

    def read_rows(
        self, table: str, columns: Sequence[str], equal: Mapping[str, str] | None = None
    ) -> list[tuple[Any, ...]]:
        """Only these columns of a table's rows, in no order, as the backend returns them (timestamps may be text);
        only rows whose columns equal the given values if asked. For readers of many rows that need few columns
        (the Prometheus metrics over the whole history): reading whole rows would be most of their time.

        Raises StorageRejected if the table or a column is not there.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot read columns")

    def read_report_runs(self) -> list[StoredRun]:
        """Runs without their settings and summary (an empty dict and None): what a report needs, fast."""
        return self.read_runs()

    def read_report_results(self, filters: "ResultFilters") -> list[StoredResult]:
        """Results a report reads, in no set order: only the columns in REPORT_COLUMNS are filled (other Measurement
        fields are None), and the database applies the filters. Backends override this to read fast; this default
        reads everything and filters here."""
        return [r for r in self.read_results(filters.run_id, filters.since, with_text=False) if filters.admits(r)]

    def read_group_values(
        self, filters: ResultFilters, group_sql: str | None
    ) -> tuple[list[GroupValues], SelectionSpan | None] | None:
        """The values of a report's figures per group (`group_sql`, an SQL expression over benchmark_results b and
        runs r, "{hour}" for the hour of day in UTC; None: no group) and provider/model, gathered by the database,
        with the selection's span; None where the backend cannot (the caller then reads rows)."""
        return None

    def read_bucket_medians(self, filters: ResultFilters, step_s: int) -> BucketMedians | None:
        """The median TTFT and latency (unrounded, None for no value) of the successful requests per provider, model
        and time bucket of `step_s` seconds (a whole number of days, counted from 1970 in UTC: the key holds the
        bucket's start), gathered by the database: the chart of a long history without reading its rows. None where
        the backend cannot (Supabase: PostgREST runs no percentile)."""
        return None
    # ---- what watching reads and writes: narrow reads by time, and the alerts table ----------------------------
    def read_results_between(self, since: datetime, until: datetime | None = None) -> list[StoredResult]:
        """Results created at or after `since` and before `until`, oldest first, without answer texts."""
        raise NotImplementedError

    def read_latest_results(self, provider: str, model: str, limit: int) -> list[StoredResult]:
        """The newest `limit` results of one provider and model, newest first, without answer texts."""
        raise NotImplementedError

    def read_runs_by_id(self, run_ids: set[UUID]) -> list[StoredRun]:
        """These runs (those that exist), in no particular order."""
        raise NotImplementedError

    def read_alerts(self, resolved_since: datetime) -> list[StoredAlert]:
        """Every firing alert, and the resolved ones resolved at or after `resolved_since` or not yet announced."""
        raise NotImplementedError

    def insert_alert(self, row: dict[str, object]) -> bool:
        """Open an alert; False (nothing written) if one with its rule, provider, model and metric is firing."""
        raise NotImplementedError

    def update_alert(self, alert_id: UUID, values: dict[str, object], where: dict[str, object]) -> bool:
        """Set `values` on the alert if its columns hold `where` (None: IS NULL); True if it did. The condition makes
        a change happen once however many machines try it (resolving, taking a notification to send)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Check that the database can take rows before anything is measured.

        Raises ConfigError if it never will as it stands (tables missing), StorageUnavailable if it does not answer.
        """

    def close(self) -> None:
        """Release the connection; the default has nothing to release."""

    def __enter__(self) -> "Storage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
