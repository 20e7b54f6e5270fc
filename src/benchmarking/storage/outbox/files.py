"""The outbox's files: JSON lines appended and rewritten whole under a file lock, unreadable lines set aside."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import fcntl
import json
import os
from pathlib import Path
import sys
from typing import Any, Callable, Iterator

from ...errors import OutboxUnwritable
from ..schema import storable
from .entries import readable

PENDING = "pending.jsonl"
REJECTED = "rejected.jsonl"
CORRUPT = "corrupt.jsonl"
_TEMPORARY_NAMES = (PENDING + ".tmp", REJECTED + ".tmp", "pending.tmp", "rejected.tmp")


@dataclass(frozen=True)
class Line:
    """One line of an outbox file: the bytes as they are, and the entry they hold."""

    raw: bytes
    entry: dict[str, Any]


def _lines(count: int) -> str:
    return f"{count} unreadable line" + ("" if count == 1 else "s")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class OutboxFiles:
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

    def _load(self, name: str) -> list[Line]:
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
                entry = readable(raw)
                if entry is None:
                    bad.append(raw)
                else:
                    good.append(Line(raw, entry))
        if bad:
            self._set_aside(name, bad, good)
        return good

    def _set_aside(self, name: str, bad: list[bytes], good: list[Line]) -> None:
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

    def _rewrite(self, name: str, lines: list[Line]) -> None:
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
