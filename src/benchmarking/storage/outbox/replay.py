"""The outbox's replay policy: what waits for which database, and replaying it there, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
import json
from typing import Callable

from ...errors import OutboxUnwritable, StorageError, StorageUnavailable
from ..base import Storage
from ..schema import storable
from .entries import apply_entry, entry_id
from .files import CORRUPT, PENDING, REJECTED, Line, OutboxFiles


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


class Outbox(OutboxFiles):
    """The outbox's files, read for one database: what waits for it, and replaying that into it."""

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

            def owner(line: Line) -> str | None:
                return line.entry.get("database")

            def ours(line: Line) -> bool:
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
    def _with_reason(line: Line, reasons: dict[int, str]) -> Line:
        if id(line) not in reasons:
            return line
        entry = {**line.entry, "rejected_because": storable(reasons[id(line)])}
        return Line(json.dumps(entry).encode("utf-8"), entry)
