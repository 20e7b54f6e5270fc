"""The outbox: writes the database could not take wait in local JSON lines until a later run or `flush` replays them.

pending.jsonl holds writes that failed because the database was unavailable; every run replays them first.
rejected.jsonl holds writes the database refused (bad column, constraint): they are kept and reported, and only an
explicit `python main.py flush` tries them again, so nothing is retried forever and nothing is dropped.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator
from uuid import UUID

from ..errors import StorageError, StorageRejected, StorageUnavailable
from ..measurement import Measurement
from .base import RunInfo, Storage, StoredResult, StoredRun
from .schema import measurement_from_row, plain, result_row

PENDING = "pending.jsonl"
REJECTED = "rejected.jsonl"


# Each encoder returns the entry as it reads back from the file, so that a direct write and a replay take one path.
def encode_create_run(run: RunInfo) -> dict[str, Any]:
    return plain({"op": "create_run", "run": {**run.__dict__}})


def encode_save_result(run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> dict[str, Any]:
    row = result_row(run_id, result_id, created_at, m)
    row["cost_usd"] = str(m.cost_usd) if m.cost_usd is not None else None  # exact, not the float column value
    return plain({"op": "save_result", "row": row})


def encode_finish_run(run_id: UUID, status: str, finished_at: datetime) -> dict[str, Any]:
    return plain({"op": "finish_run", "run_id": run_id, "status": status, "finished_at": finished_at})


def apply_entry(storage: Storage, entry: dict[str, Any]) -> None:
    """Replay one outbox entry on a backend, with its original ids and timestamps."""
    if entry["op"] == "create_run":
        run = dict(entry["run"])
        run["id"] = UUID(run["id"])
        run["started_at"] = datetime.fromisoformat(run["started_at"])
        storage.create_run(RunInfo(**run))
    elif entry["op"] == "save_result":
        row = entry["row"]
        storage.save_result(
            UUID(row["run_id"]), UUID(row["id"]), datetime.fromisoformat(row["created_at"]), measurement_from_row(row)
        )
    elif entry["op"] == "finish_run":
        storage.finish_run(UUID(entry["run_id"]), entry["status"], datetime.fromisoformat(entry["finished_at"]))
    else:
        raise StorageRejected(f"unknown outbox entry {entry['op']!r}")


@dataclass(frozen=True)
class FlushReport:
    """What one replay did."""

    written: int
    pending: int
    rejected: int
    last_error: str | None = None


class Outbox:
    """JSON lines in a directory, appended and rewritten under a file lock (a cron run and a flush may overlap)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, name: str) -> Path:
        return self.directory / name

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, name: str) -> list[dict[str, Any]]:
        path = self._path(name)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _write(self, name: str, entries: list[dict[str, Any]]) -> None:
        path = self._path(name)
        if not entries:
            path.unlink(missing_ok=True)
            return
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            for entry in entries:
                out.write(json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)

    def append(self, entry: dict[str, Any], rejected_because: str | None = None) -> Path:
        """Keep one write; with a reason it goes to rejected.jsonl. Returns the file it went to."""
        name = REJECTED if rejected_because else PENDING
        if rejected_because:
            entry = {**entry, "rejected_because": rejected_because}
        with self._locked():
            with open(self._path(name), "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
                out.flush()
                os.fsync(out.fileno())
        return self._path(name)

    def counts(self) -> tuple[int, int]:
        """(pending, rejected)."""
        with self._locked():
            return len(self._read(PENDING)), len(self._read(REJECTED))

    def replay(self, storage: Storage, include_rejected: bool = False) -> FlushReport:
        """Write what is waiting, oldest first; stop at the first sign the database is unavailable.

        With include_rejected (`flush`), rejected writes are tried first; any still refused, or not reached, stay in
        rejected.jsonl with their reason, so that runs never retry them.
        """
        with self._locked():
            rejected = self._read(REJECTED) if include_rejected else []
            kept_rejected = [] if include_rejected else self._read(REJECTED)
            queue = [(e, True) for e in rejected] + [(e, False) for e in self._read(PENDING)]
            written, last_error = 0, None
            for index, (entry, was_rejected) in enumerate(queue):
                try:
                    apply_entry(storage, {k: v for k, v in entry.items() if k != "rejected_because"})
                    written += 1
                except StorageUnavailable as exc:
                    last_error = str(exc)
                    rest = queue[index:]
                    kept_rejected += [e for e, was in rest if was]
                    self._write(PENDING, [e for e, was in rest if not was])
                    self._write(REJECTED, kept_rejected)
                    pending = sum(1 for _, was in rest if not was)
                    return FlushReport(written, pending, len(kept_rejected), last_error)
                except StorageError as exc:
                    last_error = str(exc)
                    kept_rejected.append({**entry, "rejected_because": str(exc)})
            self._write(PENDING, [])
            self._write(REJECTED, kept_rejected)
            return FlushReport(written, 0, len(kept_rejected), last_error)


class ResilientStorage(Storage):
    """A backend behind an outbox: every write lands in the database or in the outbox, never nowhere.

    Each write method returns None when the row is in the database, or a one-line note saying where it was kept.
    """

    def __init__(self, backend: Storage, outbox: Outbox) -> None:
        self.backend_storage = backend
        self.outbox = outbox
        self.backend = backend.backend
        self.location = backend.location

    def replay(self) -> FlushReport:
        return self.outbox.replay(self.backend_storage)

    def _write(self, entry: dict[str, Any]) -> str | None:
        pending, _ = self.outbox.counts()
        if pending:  # older writes first, so that a result never reaches the database before its run
            pending = self.replay().pending
        if pending:
            path = self.outbox.append(entry)
            return f"database still unavailable: kept in {path}"
        try:
            apply_entry(self.backend_storage, entry)
        except StorageUnavailable as exc:
            return f"{exc}: kept in {self.outbox.append(entry)}"
        except StorageError as exc:
            return f"{exc}: kept in {self.outbox.append(entry, rejected_because=str(exc))}"
        return None

    def create_run(self, run: RunInfo) -> str | None:
        return self._write(encode_create_run(run))

    def save_result(self, run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> str | None:
        return self._write(encode_save_result(run_id, result_id, created_at, m))

    def finish_run(self, run_id: UUID, status: str, finished_at: datetime) -> str | None:
        return self._write(encode_finish_run(run_id, status, finished_at))

    def read_runs(self) -> list[StoredRun]:
        return self.backend_storage.read_runs()

    def read_results(
        self, run_id: UUID | None = None, since: datetime | None = None, with_text: bool = True
    ) -> list[StoredResult]:
        return self.backend_storage.read_results(run_id, since, with_text)

    def close(self) -> None:
        self.backend_storage.close()
