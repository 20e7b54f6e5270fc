"""One safe writer for every file the tool writes for the user (exports, charts, the metrics textfile, the site).

Two halves, used together:
- `check_target` before any work: the target must not be one of the tool's own files (the SQLite database and its
  -wal/-shm/-journal, anything in the outbox directory, .env, benchmark.toml or the --config file, the run's prompt
  files, cron_example.sh's lock and log), judged by real path so that a symlink or `..` cannot hide one; nor a directory, device, FIFO or socket
  (a rename over /dev/null would replace the device). A refusal is a ConfigError: one line, exit 2.
- `atomic_file` / `write_file` to write: a temporary file in the target's directory, flushed and fsynced, renamed
  over the target; on any failure the temporary file is removed and the earlier file stays whole (never a 0-byte or
  half file). A failure is an OutputUnwritable naming the file and the OS's reason: one line, exit 1.

A symlinked target is written through: the link is kept and the file it points to is replaced, in that file's
directory; the guard judges the file it points to.

A new output (the site) does the same: `own = cli.outputs.own_files(settings, args)` once, `check_target(path, flag,
own)` for every file it will write before any work, then `write_file(path, data, flag)` (or `with atomic_file(path,
flag) as out:` to stream) for each.
"""

from __future__ import annotations

from contextlib import contextmanager, suppress
from dataclasses import dataclass
import os
from pathlib import Path
import stat
import tempfile
import time
from typing import IO, Iterable, Iterator

from .errors import ConfigError, OutputUnwritable

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
DEFAULT_DATABASE = "benchmarks.db"
DEFAULT_OUTBOX = "outbox"
DEFAULT_CONFIG = "benchmark.toml"
ENV_FILE = ".env"
# cron_example.sh's files, in the directory it moves to: a lock renamed over would let the next tick overlap.
CRON_FILES = (("logs/benchmark.lock", "the cron wrapper's lock"), ("logs/benchmark.log", "the cron wrapper's log"))
SITE_DIRECTORY = "the site directory"  # what OwnFiles calls the --site directory
STALE_TEMPORARY_S = 3600.0  # a temporary file this old is a killed writer's: no output takes an hour to write


def real(path: str | os.PathLike[str]) -> str:
    """The path with every symlink and `..` resolved, absolute (a missing tail is kept as written)."""
    return os.path.realpath(os.path.abspath(os.fspath(path)))


@dataclass(frozen=True)
class OwnFiles:
    """The files the tool keeps, by real path: no output may be written over one of them."""

    files: tuple[tuple[str, str], ...] = ()  # (real path, what it is)
    directories: tuple[tuple[str, str], ...] = ()  # (real path, what it is): the directory and all under it

    @classmethod
    def of(cls, *, database: str | os.PathLike[str] | None = None, outbox: str | os.PathLike[str] | None = None,
           config: str | os.PathLike[str] | None = None, prompt_files: Iterable[str | os.PathLike[str]] = (),
           env_file: str | os.PathLike[str] = ENV_FILE, site: str | os.PathLike[str] | None = None) -> "OwnFiles":
        """The files of one process: its SQLite database (and the default ./benchmarks.db), its outbox (and the
        default ./outbox), its config file (and ./benchmark.toml), .env, its prompt files and the cron wrapper's,
        and its --site directory (each rebuild replaces it whole: another output in it would be lost)."""
        files: list[tuple[str, str]] = []
        for name in {os.fspath(p) for p in (database, DEFAULT_DATABASE) if p}:
            files.append((real(name), "the SQLite database"))
            files.extend((real(name + side), f"the SQLite database's {side[1:]} file") for side in SQLITE_SIDE_FILES)
        for name in {os.fspath(p) for p in (config, DEFAULT_CONFIG) if p}:
            files.append((real(name), "the config file"))
        files.append((real(env_file), "the .env file"))
        files.extend((real(p), "a prompt file of this run") for p in prompt_files)
        files.extend((real(p), what) for p, what in CRON_FILES)
        directories = [(real(p), "the outbox directory") for p in {os.fspath(p) for p in (outbox, DEFAULT_OUTBOX) if p}]
        if site is not None and os.fspath(site).strip():
            directories.append((real(site), SITE_DIRECTORY))
        return cls(tuple(files), tuple(directories))

    def owner(self, path: str | os.PathLike[str]) -> str | None:
        """What the tool keeps at this path (by real path, or the same file through a hard link), or None."""
        target = real(path)
        for own, what in self.files:
            if target == own or _same_file(target, own):
                return what
        for own, what in self.directories:
            if target == own or _same_file(target, own):
                return what
            # Under it by path, or through another name of it (a bind mount): any directory above the target
            # that is the same directory as the outbox.
            if target.startswith(own.rstrip(os.sep) + os.sep) or any(
                    _same_file(str(above), own) for above in Path(target).parents):
                return f"in {what}"
        return None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either is missing (or unreadable): not the same existing file
        return False


def _is_sqlite_database(path: str) -> bool:
    """A SQLite database by its first bytes: whichever database a run was set to, it is never an output."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # opening a FIFO to read it would wait for a writer
            return False
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.read(fd, len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False
    finally:
        os.close(fd)


def check_target(path: str | os.PathLike[str], flag: str, own: OwnFiles) -> Path:
    """Refuse a target that is one of the tool's own files, a SQLite database, a directory or not a regular file,
    or whose directory cannot take a file; checked before anything is read or measured. Returns the path."""
    text = os.fspath(path)
    if not text.strip():
        raise ConfigError(f"{flag} needs a file name")
    target = real(text)
    # Through a symlink the file it points to is what gets replaced: say so.
    shown = text if target == os.path.normpath(os.path.abspath(text)) else f"{text} (-> {target})"
    what = own.owner(target)
    if what is None and _is_sqlite_database(target):
        what = "a SQLite database"
    for side in SQLITE_SIDE_FILES:
        if what is None and target.endswith(side) and _is_sqlite_database(target.removesuffix(side)):
            what = f"a SQLite database's {side[1:]} file"
    if what is not None:
        raise ConfigError(f"{flag} {shown} is {what}, which the tool keeps: write the output to a file of its own")
    try:
        mode = os.stat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a missing directory on the way is judged below
        mode = None
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot write {shown}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise ConfigError(f"{flag} {shown} is a directory: give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise ConfigError(f"{flag} {shown} is not a regular file (a device, pipe or socket), and the output "
                          "replaces the file: give a path of its own")
    existing = Path(target).parent
    given = Path(text).parent  # the same directory as the user wrote it, for the message
    while not existing.exists():  # a missing directory is made when the file is written
        existing, given = existing.parent, given.parent
    if not existing.is_dir():
        raise ConfigError(f"{flag}: {given} is not a directory: choose another path")
    try:  # tried, not guessed: root passes every permission check, a read-only mount it does not
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot write {shown}: {exc.strerror or exc}") from None
    return Path(text)


def _kept_attributes(target: str) -> tuple[int, int | None, int | None]:
    """The target's permissions and owner if it exists (a file root rewrites stays its owner's), else the
    permissions a new file gets under the umask and no owner to give back."""
    try:
        info = os.stat(target)
        return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid
    except OSError:
        return 0o666 & ~_umask(), None, None


def _umask() -> int:
    """The process's umask, read without setting it where Linux tells it (setting it is not thread-safe: a file
    another thread creates meanwhile would get umask 0)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)  # the strictest while it is read, should another thread create a file meanwhile
    os.umask(umask)
    return umask


def _temporary_prefix(target: str) -> str:
    """`.NAME.` for the temporary file, NAME cut so that the whole name stays within the 255 bytes a name may take."""
    name = os.path.basename(target)
    while len(os.fsencode(f".{name}.12345678.tmp")) > 255:
        name = name[:-1]
    return f".{name}."


def _remove_stale_temporaries(directory: str, prefix: str) -> None:
    """Temporary files of this target left by a process that was killed while writing (a cron timeout): removed,
    so that they do not pile up; only those older than any write could take, never a writer's at work."""
    cutoff = time.time() - STALE_TEMPORARY_S
    with suppress(OSError):
        for entry in os.scandir(directory):
            name = entry.name
            if (name.startswith(prefix) and name.endswith(".tmp") and len(name) == len(prefix) + 12
                    and entry.is_file(follow_symlinks=False)):
                with suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)


@contextmanager
def atomic_file(path: str | os.PathLike[str], flag: str, text: bool = True) -> Iterator[IO]:
    """A file to write the output into; it replaces `path` only when the block ends without an error. Through a
    symlink, the file it points to is replaced and the link kept. Missing directories are made."""
    target = real(path)
    directory = os.path.dirname(target)
    prefix = _temporary_prefix(target)
    try:
        os.makedirs(directory, exist_ok=True)
        mode, uid, gid = _kept_attributes(target)
        _remove_stale_temporaries(directory, prefix)
        # A name of its own in the same directory (so the rename is atomic); it ends in .tmp, so a textfile collector
        # reading *.prom never reads it.
        fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _unwritable(flag, path, exc) from None
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8", "newline": ""} if text else {})) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if uid is not None and gid is not None and (uid, gid) != (os.geteuid(), os.getegid()):
            with suppress(OSError):  # only root may give a file away; anyone else writes it as their own
                os.chown(temporary, uid, gid)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _unwritable(flag, path, exc) from None
        raise
    with suppress(OSError):  # the rename itself on disk: best effort, the file is whole either way
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


def write_file(path: str | os.PathLike[str], data: bytes | str, flag: str) -> None:
    """Write `data` to `path` atomically: the whole of it, or (on any failure) the earlier file as it was."""
    with atomic_file(path, flag, text=isinstance(data, str)) as out:
        out.write(data)


def _unwritable(flag: str, path: str | os.PathLike[str], exc: OSError) -> OutputUnwritable:
    reason = exc.strerror or str(exc)
    return OutputUnwritable(f"{flag} {os.fspath(path)} not written: {reason}; any earlier file there is left as it was")
