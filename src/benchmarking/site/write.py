"""A whole site written at once: the new one beside the old, then swapped in, so that a reader never sees half a
site. The directory is checked first like every output (safe_files): never one of the tool's own files, never a
directory that holds anything but a site this tool wrote. The marker lists the files a build wrote: any other file
put in the site since is carried into the next one, never deleted."""

from __future__ import annotations

from contextlib import suppress
import ctypes
from dataclasses import replace
import os
from pathlib import Path
import shutil
import tempfile
import time
from typing import Mapping

from ..errors import ConfigError, OutputUnwritable
from ..safe_files import SITE_DIRECTORY, STALE_TEMPORARY_S, OwnFiles, real, write_file

MARKER = ".benchmark-site"  # in every site this tool writes: the one kind of directory it replaces
MARKER_HEADER = "written by benchmark engine's report --site"
WROTE = "\nfiles it wrote (any other is kept by the next build):\n"
MAX_MARKER_BYTES = 1_000_000
_RENAME_EXCHANGE = 2  # renameat2's flag: swap two paths in one step (Linux 3.15)
_AT_FDCWD = -100


def check_site_directory(directory: str | os.PathLike[str], flag: str, own: OwnFiles) -> Path:
    """Refuse a directory that is, or holds, one of the tool's own files, or that holds files of another's
    (ConfigError); a missing or empty directory, or a site this tool wrote, is fine. A place that cannot be written
    is an OutputUnwritable: the disk's state, not the user's input, which a run only warns about. Checked before
    anything is read."""
    text = os.fspath(directory)
    if not text.strip():
        raise ConfigError(f"{flag} needs a directory name")
    target = real(text)
    own = replace(own, directories=tuple(d for d in own.directories if d != (target, SITE_DIRECTORY)))
    what = own.owner(target)
    if what is None:
        inside = [w for path, w in own.files + own.directories if path.startswith(target.rstrip(os.sep) + os.sep)]
        what = f"a directory holding {inside[0]}" if inside else None
    if what is not None:
        raise ConfigError(f"{flag} {text} is {what}, which the tool keeps: give a directory of its own for the site")
    if os.path.lexists(target) and not os.path.isdir(target):
        raise ConfigError(f"{flag} {text} is not a directory: give a new or empty directory, or an earlier site")
    if os.path.isdir(target):
        try:
            entries = os.listdir(target)
        except OSError as exc:
            raise OutputUnwritable(f"{flag}: cannot read {text}: {exc.strerror or exc}") from None
        if entries and MARKER not in entries:
            raise ConfigError(f"{flag} {text} holds files this tool did not write, and the site replaces the whole "
                              "directory: give a new or empty directory")
    parent = Path(target).parent
    while not parent.exists():
        parent = parent.parent
    try:  # tried, not guessed: root passes every permission check, a read-only mount it does not
        with tempfile.TemporaryDirectory(dir=parent):
            pass
    except OSError as exc:
        raise OutputUnwritable(f"{flag}: cannot write in {parent}: {exc.strerror or exc}") from None
    return Path(text)


def _exchange(a: str, b: str) -> bool:
    """Swap two directories in one step where the system can (Linux's renameat2); False where it cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _remove_stale(parent: str, name: str) -> None:
    """Staging directories of a build that was killed (older than safe_files' STALE_TEMPORARY_S): no build takes an
    hour, and each would otherwise stay beside the site for good."""
    prefixes = (f".{name}.new-", f".{name}.old-")
    with suppress(OSError):
        for entry in os.scandir(parent):
            if entry.name.startswith(prefixes) and entry.is_dir(follow_symlinks=False):
                with suppress(OSError):
                    if time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMPORARY_S:
                        shutil.rmtree(entry.path)


def _marker(files: Mapping[str, bytes | str]) -> str:
    """The marker's text: what wrote the site, and the files it wrote (any other file in it is the user's)."""
    return MARKER_HEADER + WROTE + "".join(f"{name}\n" for name in sorted(files))


def _users_files(target: str) -> list[str]:
    """The files (and links) in an earlier site that no build wrote, by path in the site: a CNAME, notes. A site
    whose marker lists nothing (written before the list was kept) has none that can be told apart."""
    try:
        with open(os.path.join(target, MARKER), encoding="utf-8", errors="replace") as marker:
            text = marker.read(MAX_MARKER_BYTES)
    except OSError:
        return []
    if WROTE not in text:
        return []
    ours = set(text.split(WROTE, 1)[1].splitlines()) | {MARKER}
    found = []
    for top, directories, names in os.walk(target):
        for name in names + [d for d in directories if os.path.islink(os.path.join(top, d))]:
            relative = os.path.relpath(os.path.join(top, name), target)
            if relative not in ours:
                found.append(relative)
    return sorted(found)


def _carry_over(target: str, staging: str, files: Mapping[str, bytes | str]) -> None:
    """Copy the user's files of the earlier site into the new one; a file the tool now writes under the same name
    wins (it would be the tool's page)."""
    for relative in _users_files(target):
        if relative in files:
            continue
        source, copy = os.path.join(target, relative), os.path.join(staging, relative)
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        if os.path.islink(source):
            os.symlink(os.readlink(source), copy)
        elif os.path.isfile(source):
            shutil.copy2(source, copy)


def write_site(directory: str | os.PathLike[str], files: Mapping[str, bytes | str], flag: str) -> None:
    """Write `files` (relative path -> content) as the whole site at `directory`, replacing any earlier site there
    in one step; on a failure the earlier site stays as it was. Files of the earlier site that no build wrote (the
    user's: a CNAME, notes) are carried over into the new one."""
    target = real(directory)
    parent = os.path.dirname(target)
    name = os.path.basename(target)
    try:
        os.makedirs(parent, exist_ok=True)
        _remove_stale(parent, name)
        staging = tempfile.mkdtemp(prefix=f".{name}.new-", dir=parent)
    except OSError as exc:
        raise OutputUnwritable(f"{flag} {os.fspath(directory)} not written: {exc.strerror or exc}") from None
    try:
        for relative, content in {MARKER: _marker(files), **files}.items():
            write_file(os.path.join(staging, relative), content, flag)
        if os.path.isdir(target):
            _carry_over(target, staging, files)
        os.chmod(staging, 0o755)
        if os.path.isdir(target) and _exchange(staging, target):
            return  # the old site is now at `staging`: removed below
        old = None
        if os.path.isdir(target):  # no exchange here: two renames, the gap between them a few microseconds
            old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.replace(target, os.path.join(old, "site"))
        try:
            os.replace(staging, target)
        except OSError:
            if old is not None:
                os.replace(os.path.join(old, "site"), target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise OutputUnwritable(f"{flag} {os.fspath(directory)} not written: {exc.strerror or exc}; any earlier site "
                               "there is left as it was") from None
    finally:
        with suppress(OSError):
            shutil.rmtree(staging)
