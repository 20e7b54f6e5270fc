"""Lengths of time, as every flag and setting takes them: 90s, 15m, 4h, 7d, 2w, 1h30m (a bare number: seconds).

One parser, so that `report --window`, `[alerts] window` and `baseline`, and the schedule's `--interval` and
`--duration` take the same forms with the same limits (report --window took 2w but not 90s, [alerts] window the
other way round, and only one of them had an upper limit).
"""

from __future__ import annotations

from datetime import timedelta
import re

from .errors import ConfigError

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# A year: beyond it the clock arithmetic of a schedule overflows, and no window or schedule needs more.
MAX_DURATION_S = 365 * 86400


def parse_duration(text: str, flag: str) -> float:
    """'90s', '15m', '4h', '7d', '2w', '1h30m' (or a bare number of seconds) -> seconds, more than 0, at most 365d."""
    cleaned = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        seconds = float(cleaned)
    elif cleaned and re.fullmatch(f"(?:{_PART.pattern})+", cleaned):
        seconds = sum(float(n) * _UNIT_S[unit] for n, unit in _PART.findall(cleaned))
    else:
        raise ConfigError(f"{flag} takes a duration like 90s, 15m, 4h, 7d, 2w or 1h30m, not {text!r}")
    if seconds <= 0:
        raise ConfigError(f"{flag} must be longer than 0")
    if seconds > MAX_DURATION_S:
        raise ConfigError(f"{flag} must be at most 365d, not {text!r}")
    return seconds


def parse_window(text: str, flag: str) -> timedelta:
    """A window's length: parse_duration's forms and limits."""
    return timedelta(seconds=parse_duration(text, flag))
