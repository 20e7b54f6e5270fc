"""Reading a file the user names, bounded: a regular file only, at most a limit of bytes, UTF-8 text.

A FIFO would wait for ever, /dev/zero would fill the memory, and a size from stat() says nothing about either (both
are 0): the file's kind is checked before it is opened and again on what was opened, and no more than the limit and
one byte are ever read. Imports nothing of ours but errors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import stat
from typing import Any, Callable

from .errors import ConfigError

# Far above any prompt a benchmark needs (10,000 tokens are about 40 kB), far below what would choke a request; for
# a prompt file, the whole file.
MAX_PROMPT_BYTES = 5_000_000
BOM = "\ufeff"

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str | None:
    """What a file that is not a regular one is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _not_regular(what: str, path: Path, kind: str) -> ConfigError:
    return ConfigError(f"{what} {path} is not a regular file ({kind}): give a file")


def read_bounded(path: Path, what: str, max_bytes: int, too_big: Callable[[int], ConfigError]) -> bytes:
    """The file's bytes; one line (ConfigError) if it is not a regular file, cannot be read, or holds more than
    max_bytes (too_big gets the size)."""
    try:
        kind = _kind(os.stat(path).st_mode)
        if kind is not None:
            raise _not_regular(what, path, kind)
        # O_NONBLOCK: a FIFO swapped in after the check opens at once instead of waiting for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            opened = os.fstat(file.fileno())
            kind = _kind(opened.st_mode)
            if kind is not None:
                raise _not_regular(what, path, kind)
            if opened.st_size > max_bytes:
                raise too_big(opened.st_size)
            data = file.read(max_bytes + 1)  # a file that grows while it is read still costs at most this
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise too_big(len(data))
    return data


def utf8_text(data: bytes, what: str, path: Path) -> str:
    """The bytes as text, a leading byte-order mark dropped (editors on Windows write one)."""
    try:
        return data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{what} {path} is not UTF-8 text (line {line}): save it as UTF-8") from None


def shown(value: str, limit: int = 60) -> str:
    """A piece of a file quoted in an error line: its repr, cut to `limit` characters (a 1 MB pattern or key would
    otherwise be echoed whole, in one line)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value):,} characters)"


class _RepeatedKey(ValueError):
    pass


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    item = dict(pairs)
    if len(item) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _RepeatedKey(repeated)
    return item


def json_line(line: str, where: str, what: str) -> Any:
    """One line of a JSONL file the user gave (`what` it holds, for the refusals), as JSON values; one line naming
    `where` for what no line may be: not JSON, nested past the stack, or a key twice in one object (JSON leaves that
    open, and Python would keep the last silently)."""
    try:
        return json.loads(line, object_pairs_hook=_without_repeated_keys)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be {what}") from None
    except _RepeatedKey as exc:
        raise ConfigError(f"{where}: the key {shown(exc.args[0])} appears twice in one object") from None
    except ValueError as exc:  # a JSONDecodeError, or an integer of more digits than Python converts
        raise ConfigError(f"{where}: not valid JSON ({getattr(exc, 'msg', str(exc))})") from None
