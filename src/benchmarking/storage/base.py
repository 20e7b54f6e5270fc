"""The one small interface every storage backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
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
