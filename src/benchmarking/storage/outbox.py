"""The outbox: writes the database could not take wait in local JSON lines until a later run or `flush` replays them.

pending.jsonl holds writes that failed because the database was unavailable; every run replays them first.
rejected.jsonl holds writes the database refused (bad column, constraint): they are kept and reported, and only an
explicit `python main.py flush` tries them again, so nothing is retried forever and nothing is dropped.
corrupt.jsonl receives, as they were, lines that cannot be read back (cut short, not JSON, not an outbox entry), so
that one bad line never stops the others.

Each entry records the database it was meant for (`database`, its URL without secrets): it is replayed there and
nowhere else. Entries written before that field existed are replayed only by `flush`, into the database it is set to.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import InvalidOperation
import fcntl
import json
import os
from pathlib import Path
import sys
from typing import Any, Callable, Iterator, Mapping, Sequence
from uuid import UUID

from ..errors import OutboxUnwritable, StorageError, StorageUnavailable
from ..measurement import Measurement
from .base import GroupValues, ResultFilters, RunInfo, SelectionSpan, Storage, StoredResult, StoredRun
from .schema import measurement_from_row, plain, result_row, storable

_RUN_FIELDS = {field.name for field in fields(RunInfo)}
PENDING = "pending.jsonl"
REJECTED = "rejected.jsonl"
CORRUPT = "corrupt.jsonl"
_TEMPORARY_NAMES = (PENDING + ".tmp", REJECTED + ".tmp", "pending.tmp", "rejected.tmp")


# Each encoder returns the entry as it reads back from the file, so that a direct write and a replay take one path.
def encode_create_run(run: RunInfo) -> dict[str, Any]:
    return plain({"op": "create_run", "run": storable({**run.__dict__})})


def encode_save_result(run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> dict[str, Any]:
    row = result_row(run_id, result_id, created_at, m)
    row["cost_usd"] = str(m.cost_usd) if m.cost_usd is not None else None  # exact, not the float column value
    return plain({"op": "save_result", "row": row})


def encode_finish_run(
    run_id: UUID, status: str, finished_at: datetime, summary: dict[str, object] | None = None
) -> dict[str, Any]:
    entry = {"op": "finish_run", "run_id": run_id, "status": status, "finished_at": finished_at}
    return plain({**entry, "summary": storable(summary)} if summary else entry)


def _call(entry: dict[str, Any]) -> Callable[[Storage], None]:
    """The write an entry stands for; ValueError, KeyError, TypeError (...) if it does not have an entry's shape."""
    op = entry["op"]
    if op == "create_run":
        # Only the fields this version knows: a newer version's extra fields do not make the entry unreadable.
        run = {name: value for name, value in entry["run"].items() if name in _RUN_FIELDS}
        run["id"] = UUID(run["id"])
        run["started_at"] = datetime.fromisoformat(run["started_at"])
        info = RunInfo(**run)
        return lambda storage: storage.create_run(info)
    if op == "save_result":
        row = entry["row"]
        args = (UUID(row["run_id"]), UUID(row["id"]), datetime.fromisoformat(row["created_at"]),
                measurement_from_row(row))
        return lambda storage: storage.save_result(*args)
    if op == "finish_run":
        run_id, status = UUID(entry["run_id"]), entry["status"]
        finished_at = datetime.fromisoformat(entry["finished_at"])
        if not isinstance(status, str):
            raise TypeError("status is not text")
        summary = entry.get("summary")
        if summary is not None and not isinstance(summary, dict):
            raise TypeError("summary is not an object")
        return lambda storage: storage.finish_run(run_id, status, finished_at, summary)
    raise ValueError(f"unknown outbox entry {op!r}")


def entry_id(entry: dict[str, Any]) -> str:
    """What an entry writes: its result row's id, or its run's id (create_run, finish_run)."""
    for holder in (entry.get("row"), entry.get("run")):
        if isinstance(holder, dict):
            return str(holder.get("id"))
    return str(entry.get("run_id"))


def apply_entry(storage: Storage, entry: dict[str, Any]) -> None:
    """Replay one outbox entry on a backend, with its original ids and timestamps."""
    _call(entry)(storage)


def _readable(line: bytes) -> dict[str, Any] | None:
    """The entry a line holds, or None if it cannot be one (cut short, not UTF-8, not JSON, the wrong shape)."""
    try:
        entry = json.loads(line.decode("utf-8"))
        if not isinstance(entry, dict):
            return None
        if not isinstance(entry.get("database", ""), str) or not isinstance(entry.get("rejected_because", ""), str):
            return None
        _call(entry)
    except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation):
        return None
    return entry


@dataclass(frozen=True)
class FlushReport:
    """What one replay did, for the writes of this database; writes of other databases were left as they were."""

    written: int
    pending: int
    rejected: int
    last_error: str | None = None
    other_databases: int = 0  # entries left for another database
    unowned: int = 0  # entries of an older version that say no database, left for `flush`
    stopped: bool = False  # a stop (Ctrl-C) ended it before the queue did


class ReplayInterrupted(KeyboardInterrupt):
    """Ctrl-C in the middle of a replay; what was written is in `report`, the rest is still in the outbox."""

    def __init__(self, report: FlushReport) -> None:
        super().__init__()
        self.report = report


@dataclass(frozen=True)
class OutboxContents:
    """What waits in the outbox, seen from one database."""

    pending: int  # this database's writes a run replays
    rejected: int  # this database's writes it refused
    other_databases: dict[str, int]  # database -> its writes, pending or rejected
    unowned: int  # writes of an older version that say no database
    corrupt: int  # lines set aside in corrupt.jsonl


@dataclass(frozen=True)
class _Line:
    """One line of an outbox file: the bytes as they are, and the entry they hold."""

    raw: bytes
    entry: dict[str, Any]


def _lines(count: int) -> str:
    return f"{count} unreadable line" + ("" if count == 1 else "s")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Outbox:
    """JSON lines in a directory, appended and rewritten under a file lock (a cron run and a flush may overlap)."""

    def __init__(self, directory: str | Path, warn: Callable[[str], None] = _stderr) -> None:
        self.directory = Path(directory)
        self.warn = warn
        self._skipped: set[tuple[str, int]] = set()  # unreadable lines that could not be moved, already warned of

    def _path(self, name: str) -> Path:
        return self.directory / name

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = open(self.directory / ".lock", "a")
        except OSError:
            try:  # a directory this process may not write: a lock taken for reading still orders it with others
                lock = open(self.directory / ".lock", "r")
            except OSError:
                pass  # no lock to take; reading still works, and a write fails on its own and is held in memory
        if lock is None:
            yield
            return
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                locked = True
            except OSError:  # a file system without locks (some network mounts): go on as the only writer
                locked = False
            try:
                if locked:
                    self._remove_leftovers()
                yield
            finally:
                if locked:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def _remove_leftovers(self) -> None:
        """Temporary files of a rewrite that died (a full disk, a kill): under the lock, nobody else is writing.

        Only the outbox's own names (this version's and the older `pending.tmp`): the directory may be shared.
        """
        for name in _TEMPORARY_NAMES:
            try:
                self._path(name).unlink(missing_ok=True)
            except OSError:
                pass

    def _load(self, name: str) -> list[_Line]:
        """The entries of one file; lines that cannot be read are moved to corrupt.jsonl, with one warning."""
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.warn(f"warning: outbox: cannot read {path}: {exc.strerror}; its writes wait until it can be read")
            return []
        good, bad = [], []
        for raw in data.split(b"\n"):
            if raw.strip():
                entry = _readable(raw)
                if entry is None:
                    bad.append(raw)
                else:
                    good.append(_Line(raw, entry))
        if bad:
            self._set_aside(name, bad, good)
        return good

    def _set_aside(self, name: str, bad: list[bytes], good: list[_Line]) -> None:
        path, corrupt = self._path(name), self._path(CORRUPT)
        try:
            size = corrupt.stat().st_size if corrupt.exists() else 0
            self._append_bytes(corrupt, b"".join(raw + b"\n" for raw in bad))
            try:
                self._rewrite(name, good)
            except OutboxUnwritable:
                try:
                    os.truncate(corrupt, size)  # they are still in the file: not twice in corrupt.jsonl next time
                except OSError:
                    pass
                raise
        except OutboxUnwritable as exc:
            if (name, len(bad)) not in self._skipped:  # once, not at every read of a file that stays as it is
                self._skipped.add((name, len(bad)))
                self.warn(f"warning: outbox: {_lines(len(bad))} in {path} skipped; "
                          f"they could not be moved to {corrupt}: {exc}")
            return
        self.warn(f"warning: outbox: {_lines(len(bad))} of {path} (cut short, not JSON, or not an outbox entry) "
                  f"moved to {corrupt}; the other writes go on as usual")

    def _rewrite(self, name: str, lines: list[_Line]) -> None:
        """Replace a file by these lines at once (a temporary file renamed over it); none: remove it."""
        path = self._path(name)
        try:
            if not lines:
                path.unlink(missing_ok=True)
                return
            temporary = path.with_name(path.name + ".tmp")
            try:
                with open(temporary, "wb") as out:
                    out.write(b"".join(line.raw + b"\n" for line in lines))
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except OSError:
                temporary.unlink(missing_ok=True)  # a full disk must not keep a half-written copy
                raise
        except OSError as exc:
            raise OutboxUnwritable(f"cannot rewrite {path}: {exc.strerror or exc}") from None

    @staticmethod
    def _append_bytes(path: Path, data: bytes) -> None:
        """Append whole lines or nothing: a write cut short (a full disk) is truncated away again."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutboxUnwritable(f"cannot write to {path}: {exc.strerror or exc}") from None
        size = 0
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a line left unfinished by an older version: close it
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise OutboxUnwritable(f"cannot write to {path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)

    def append(self, entry: dict[str, Any], rejected_because: str | None = None) -> Path:
        """Keep one write; with a reason it goes to rejected.jsonl. Returns the file it went to.

        Raises OutboxUnwritable if the file cannot take it (the file is then as it was: no partial line).
        """
        name = REJECTED if rejected_because else PENDING
        if rejected_because:  # the database's own words, which may echo what it was sent: scrubbed like a row
            entry = {**entry, "rejected_because": storable(rejected_because)}
        with self._locked():
            self._append_bytes(self._path(name), json.dumps(entry).encode("utf-8") + b"\n")
        return self._path(name)

    def contents(self, database: str) -> OutboxContents:
        """What waits, for this database and for others."""
        with self._locked():
            pending, rejected = self._load(PENDING), self._load(REJECTED)
        others: dict[str, int] = {}
        for line in pending + rejected:
            owner = line.entry.get("database")
            if owner is not None and owner != database:
                others[owner] = others.get(owner, 0) + 1
        corrupt = self._path(CORRUPT)
        try:
            corrupt_lines = sum(1 for raw in corrupt.read_bytes().split(b"\n") if raw.strip())
        except OSError:
            corrupt_lines = 0
        return OutboxContents(
            pending=sum(line.entry.get("database") == database for line in pending),
            rejected=sum(line.entry.get("database") == database for line in rejected),
            other_databases=others,
            unowned=sum("database" not in line.entry for line in pending + rejected),
            corrupt=corrupt_lines,
        )

    def waiting(self, database: str) -> int:
        """How many of this database's writes wait in pending.jsonl (they go before any new write)."""
        with self._locked():
            return sum(line.entry.get("database") == database for line in self._load(PENDING))

    def waiting_ids(self, database: str) -> set[str] | None:
        """The ids of what this database's writes in the outbox (pending or refused) are about: result rows, runs;
        None if the outbox cannot be read (then nothing kept there can be said to have left it)."""
        with self._locked():
            for name in (PENDING, REJECTED):
                try:
                    self._path(name).open("rb").close()
                except FileNotFoundError:
                    continue
                except OSError:
                    return None
            lines = self._load(PENDING) + self._load(REJECTED)
        return {entry_id(line.entry) for line in lines if line.entry.get("database") == database}

    def counts(self) -> tuple[int, int]:
        """(pending, rejected), whatever database they are for."""
        with self._locked():
            return len(self._load(PENDING)), len(self._load(REJECTED))

    def replay(
        self, storage: Storage, include_rejected: bool = False, include_unowned: bool = False,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> FlushReport:
        """Write what waits for this database, oldest first; stop at the first sign the database is unavailable.

        A write the database refuses moves to rejected.jsonl with its reason and the replay goes on: a poisoned row
        never holds up the queue. With include_rejected (`flush`), rejected writes are tried first; any still
        refused, or not reached, stay in rejected.jsonl. With include_unowned (`flush`), writes that say no database
        are taken as this one's. Writes for other databases stay where they are. A Ctrl-C (KeyboardInterrupt) keeps
        the writes not yet done and raises ReplayInterrupted with what was written.
        """
        with self._locked():
            pending, rejected = self._load(PENDING), self._load(REJECTED)

            def owner(line: _Line) -> str | None:
                return line.entry.get("database")

            def ours(line: _Line) -> bool:
                return owner(line) == storage.database or (owner(line) is None and include_unowned)

            queue = [line for line in rejected if include_rejected and ours(line)]
            queue += [line for line in pending if ours(line)]
            done: set[int] = set()
            reasons: dict[int, str] = {}
            last_error, stopped, interrupted = None, False, False
            try:
                for line in queue:
                    if stop_requested():
                        stopped = True
                        break
                    try:
                        apply_entry(storage, line.entry)
                    except StorageUnavailable as exc:
                        last_error = str(exc)
                        break
                    except StorageError as exc:
                        last_error = reasons[id(line)] = str(exc)
                        continue
                    done.add(id(line))
            except KeyboardInterrupt:  # the write in flight stays: replaying it again inserts nothing twice
                interrupted = stopped = True
            still_pending = [line for line in pending if id(line) not in done and id(line) not in reasons]
            still_rejected = [self._with_reason(line, reasons) for line in rejected if id(line) not in done]
            still_rejected += [self._with_reason(line, reasons) for line in pending if id(line) in reasons]
            try:
                # rejected.jsonl first: a line that moves from pending.jsonl is in one of them at every moment
                if reasons or len(still_rejected) != len(rejected):
                    self._rewrite(REJECTED, still_rejected)
                if len(still_pending) != len(pending):
                    self._rewrite(PENDING, still_pending)
            except OutboxUnwritable as exc:
                last_error = f"{exc}; the outbox is left as it was (replaying it again inserts nothing twice)"
        left = still_pending + still_rejected
        report = FlushReport(
            written=len(done),
            pending=sum(ours(line) for line in still_pending),
            rejected=sum(ours(line) for line in still_rejected),
            last_error=last_error,
            other_databases=sum(owner(line) not in (None, storage.database) for line in left),
            unowned=sum(owner(line) is None and not include_unowned for line in left),
            stopped=stopped,
        )
        if interrupted:
            raise ReplayInterrupted(report)
        return report

    @staticmethod
    def _with_reason(line: _Line, reasons: dict[int, str]) -> _Line:
        if id(line) not in reasons:
            return line
        entry = {**line.entry, "rejected_because": storable(reasons[id(line)])}
        return _Line(json.dumps(entry).encode("utf-8"), entry)


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

    def close(self) -> None:
        self.backend_storage.close()
