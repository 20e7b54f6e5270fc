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


@dataclass(frozen=True)
class StoredRun:
    """A row of `runs` read back, with how it ended."""

    info: RunInfo
    status: str | None
    finished_at: datetime | None


@dataclass(frozen=True)
class StoredResult:
    """A row of `benchmark_results` read back."""

    id: UUID
    run_id: UUID
    created_at: datetime
    measurement: Measurement


class Storage(ABC):
    """Create a run, save each result as soon as it is measured, finish the run, read back.

    A backend's write raises StorageUnavailable or StorageRejected when the database does not take it; the outbox
    wrapper (ResilientStorage) never raises and returns a one-line note instead when a row was kept elsewhere.
    """

    backend: str
    location: str

    @abstractmethod
    def create_run(self, run: RunInfo) -> str | None: ...

    @abstractmethod
    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> str | None: ...

    @abstractmethod
    def finish_run(self, run_id: UUID, status: str, finished_at: datetime) -> str | None: ...

    @abstractmethod
    def read_runs(self) -> list[StoredRun]: ...

    @abstractmethod
    def read_results(
        self, run_id: UUID | None = None, since: datetime | None = None, with_text: bool = True
    ) -> list[StoredResult]:
        """Results oldest first: of one run, or created at or after `since`; without response_text if asked."""

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
