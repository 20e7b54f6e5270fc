"""A backend behind the outbox: each write lands in the database, else the outbox, else memory until the run ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence
from uuid import UUID

from ...errors import OutboxUnwritable, StorageError, StorageUnavailable
from ...measurement import Measurement
from ..base import (
    BucketMedians, GroupValues, ResultFilters, RunInfo, SelectionSpan, Storage, StoredAlert, StoredResult, StoredRun,
)
from .entries import apply_entry, encode_create_run, encode_finish_run, encode_save_result
from .replay import FlushReport, Outbox


# What a backend may read of the results stored after a mark it gave (site/whole.py, site/recent.py).
INCREMENTAL_READERS = frozenset({"read_group_values_after", "read_report_results_after"})


@dataclass(frozen=True)
class _Held:
    """A write that neither the database nor the outbox could take, kept in memory until the run ends."""

    entry: dict[str, Any]
    rejected_because: str | None


class ResilientStorage(Storage):
    """A backend behind an outbox: every write lands in the database, in the outbox, or (both failing) in memory
    until the run ends, when the caller gets what is still nowhere (settle) to print it.

    Each write method returns None when the row is in the database, or a one-line note saying where it was kept.
    """

    def __init__(self, backend: Storage, outbox: Outbox) -> None:
        self.backend_storage = backend
        self.outbox = outbox
        self.backend = backend.backend
        self.location = backend.location
        self.database = backend.database
        self._held: list[_Held] = []
        # Called with each result once it is written (to the database, the outbox or memory): live metrics.
        self.result_observers: list[Callable[[datetime, Measurement], None]] = []

    def replay(self, stop_requested: Callable[[], bool] = lambda: False) -> FlushReport:
        return self.outbox.replay(self.backend_storage, stop_requested=stop_requested)

    def _drain(self) -> bool:
        """Older writes first (the outbox's, then those held in memory); True if none is left waiting."""
        if self.outbox.waiting(self.database) and self.replay().pending:
            return False
        while self._held:
            held = self._held[0]
            if held.rejected_because is None:
                try:
                    apply_entry(self.backend_storage, held.entry)
                except StorageUnavailable:
                    return False
                except StorageError as exc:
                    held = _Held(held.entry, str(exc))
            if held.rejected_because is not None:
                try:
                    self.outbox.append(held.entry, rejected_because=held.rejected_because)
                except OutboxUnwritable:
                    self._held[0] = held
                    return False
            self._held.pop(0)
        return True

    def _keep(self, entry: dict[str, Any], rejected_because: str | None, reason: str) -> str:
        """Into the outbox behind what is held in memory (order kept), else into memory too."""
        try:
            while self._held:  # what memory holds is older: it goes first
                held = self._held[0]
                self.outbox.append(held.entry, rejected_because=held.rejected_because)
                self._held.pop(0)
            return f"{reason}: kept in {self.outbox.append(entry, rejected_because=rejected_because)}"
        except OutboxUnwritable as exc:
            self._held.append(_Held(entry, rejected_because))
            return f"{reason}; the outbox cannot take it either ({exc}): kept in memory, tried again before the end"

    def _write(self, entry: dict[str, Any]) -> str | None:
        entry = {**entry, "database": self.database}
        if (self._held or self.outbox.waiting(self.database)) and not self._drain():
            # older writes still wait, so that a result never reaches the database before its run
            return self._keep(entry, None, "database still unavailable")
        try:
            apply_entry(self.backend_storage, entry)
        except StorageUnavailable as exc:
            return self._keep(entry, None, str(exc))
        except StorageError as exc:
            return self._keep(entry, str(exc), str(exc))
        return None

    def settle(self) -> list[dict[str, Any]]:
        """At the end of a run: the writes held in memory go to the database, else the outbox. Returns those that
        are still nowhere (each as an outbox entry, with its reason if the database refused it), and forgets them:
        the caller prints them so that nothing is lost."""
        if self._held and self._drain():
            return []
        while self._held:
            held = self._held[0]
            try:
                self.outbox.append(held.entry, rejected_because=held.rejected_because)
            except OutboxUnwritable:
                break
            self._held.pop(0)
        lost = [{**held.entry, **({"rejected_because": held.rejected_because} if held.rejected_because else {})}
                for held in self._held]
        self._held = []
        return lost

    def create_run(self, run: RunInfo) -> str | None:
        return self._write(encode_create_run(run))

    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> str | None:
        note = self._write(encode_save_result(run_id, result_id, created_at, m))
        for observe in self.result_observers:
            observe(created_at, m)
        return note

    def finish_run(
        self, run_id: UUID, status: str, finished_at: datetime, summary: dict[str, object] | None = None
    ) -> str | None:
        return self._write(encode_finish_run(run_id, status, finished_at, summary))

    def read_runs(self, status: str | None = None) -> list[StoredRun]:
        return self.backend_storage.read_runs(status)

    def read_results(
        self, run_id: UUID | None = None, since: datetime | None = None, with_text: bool = True
    ) -> list[StoredResult]:
        return self.backend_storage.read_results(run_id, since, with_text)

    def read_rows(
        self, table: str, columns: Sequence[str], equal: Mapping[str, str] | None = None
    ) -> list[tuple[Any, ...]]:
        return self.backend_storage.read_rows(table, columns, equal)

    def read_report_runs(self) -> list[StoredRun]:
        return self.backend_storage.read_report_runs()

    def read_report_results(self, filters: ResultFilters) -> list[StoredResult]:
        return self.backend_storage.read_report_results(filters)

    def read_group_values(
        self, filters: ResultFilters, group_sql: str | None
    ) -> tuple[list[GroupValues], SelectionSpan | None] | None:
        return self.backend_storage.read_group_values(filters, group_sql)

    def read_bucket_medians(self, filters: ResultFilters, step_s: int) -> BucketMedians | None:
        return self.backend_storage.read_bucket_medians(filters, step_s)

    # The site's reads after a scheduled run (whose storage is this): without them here its pages lost the recent
    # failures' messages and the firing alerts, and read every run to find a few.
    def read_results_between(self, since: datetime, until: datetime | None = None) -> list[StoredResult]:
        return self.backend_storage.read_results_between(since, until)

    def read_latest_results(self, provider: str, model: str, limit: int) -> list[StoredResult]:
        return self.backend_storage.read_latest_results(provider, model, limit)

    def read_runs_by_id(self, run_ids: set[UUID]) -> list[StoredRun]:
        return self.backend_storage.read_runs_by_id(run_ids)

    def read_alerts(self, resolved_since: datetime) -> list[StoredAlert]:
        return self.backend_storage.read_alerts(resolved_since)

    def __getattr__(self, name: str) -> Any:
        # The readers of what is new since a mark (SQLite's), where the backend has them: without them here, the
        # site's rebuild after a scheduled run (whose storage is this) read every result again each time.
        if name in INCREMENTAL_READERS:
            return getattr(self.backend_storage, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def close(self) -> None:
        self.backend_storage.close()
