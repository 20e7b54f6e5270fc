"""benchmark.toml: which file, read and parsed, and the words its messages use for TOML values and keys."""

from __future__ import annotations

import difflib
from pathlib import Path
import stat
import tomllib
from typing import Mapping, Sequence

from ..errors import ConfigError
from .values import read_utf8

# The sections benchmark.toml may hold; any other is refused by name.
TOML_SECTIONS = ("providers", "slo", "alerts", "notify")


def toml_kind(value: object) -> str:
    """What a TOML value is, in the words of the TOML spec, for a message (the value itself may be long or secret)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, str):
        return "a string"
    return "a date or time"


def read_toml(path: Path) -> dict[str, object]:
    """benchmark.toml, parsed, with every section known."""
    try:
        data = tomllib.loads(read_utf8(path, "config file"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses arrays and inline tables by recursion
        raise ConfigError(f"{path} is nested too deeply (lists or tables within each other): is it the right "
                          "file?") from None
    unknown = set(data) - set(TOML_SECTIONS)
    if unknown:
        section = sorted(unknown)[0]
        close = difflib.get_close_matches(section, TOML_SECTIONS, n=1)
        hint = f" (did you mean {'[[providers]]' if close[0] == 'providers' else f'[{close[0]}]'}?)" if close else ""
        raise ConfigError(f"{path}: unknown section {section!r}{hint}; the sections read are "
                          "[[providers]], [slo], [alerts] and [notify]")
    return data


def config_file(config_path: str | None, environ: Mapping[str, str]) -> Path | None:
    """--config, else BENCHMARK_CONFIG, else ./benchmark.toml if there is one."""
    if config_path == "":  # a shell variable that was not set: not the same as no --config
        raise ConfigError("--config takes the path of a benchmark.toml, not ''")
    toml_path = config_path or environ.get("BENCHMARK_CONFIG") or None  # empty, as every variable here: not set
    if toml_path is not None:
        if not Path(toml_path).is_file():
            raise ConfigError(f"config file {toml_path} {_not_a_file(Path(toml_path))}")
        return Path(toml_path)
    return Path("benchmark.toml") if Path("benchmark.toml").is_file() else None


def _not_a_file(path: Path) -> str:
    """What a path that is not a regular file is, as a message ends: a FIFO or a device is never opened (a FIFO with
    no writer would wait for ever), and it does exist."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "does not exist"
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))
    kind = next((name for test, name in kinds if test(mode)), "something else")
    return f"is {kind}, not a file: give a benchmark.toml"


def toml_table(data: Mapping[str, object], name: str, where: str) -> dict[str, object]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {name} must be a [{name}] table, not {toml_kind(table)}")
    return table


def unknown_key(key: str, allowed: Sequence[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")
