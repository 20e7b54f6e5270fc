"""The one small interface every storage backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
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
