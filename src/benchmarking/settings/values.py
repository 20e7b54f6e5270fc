"""Small value checks shared by every settings source: numbers, names, UTF-8 files, keys, yes/no; and Secret."""

from __future__ import annotations

from decimal import Decimal
import math
from pathlib import Path

from .. import redaction
from ..errors import ConfigError
from ..textfile import MAX_PROMPT_BYTES, read_bounded, utf8_text

DEFAULT_MAX_TOKENS = 256
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_RUN_NAME = "benchmark-run"
DEFAULT_MAX_COST_USD = Decimal("1.00")  # a live run whose cost could exceed this stops before sending anything

# Longer names are refused: PostgreSQL cannot index a few thousand characters of provider/model name, and such a row
# would be refused by the database after it was measured.
MAX_NAME_CHARS = 200
MAX_CONFIG_FILE_BYTES = 10_000_000  # .env, benchmark.toml: far more than any needs; a bound all the same
# A day: more than any request should take; a bigger number (inf, 1e300) overflows the HTTP clients' timers.
MAX_TIMEOUT_S = 86_400.0

_TRUE_WORDS = ("1", "true", "yes")
_FALSE_WORDS = ("0", "false", "no")


class Secret:
    """A key that never shows itself in a repr, a log line or an f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        redaction.register(value)  # from now on no output of the process shows it
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return Secret, (self._value,)  # unpickled through __init__: a worker process registers it too

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


SHOWN_CHARS = 40  # of a refused value, echoed in its one line


def shown(text: str) -> str:
    """A refused value as its line echoes it: quoted, and cut (a 5,000-digit number is not a line)."""
    return repr(text) if len(text) <= SHOWN_CHARS else repr(text[:SHOWN_CHARS]) + f"... ({len(text):,} characters)"


def whole_number(text: str, flag: str, minimum: int = 1) -> int:
    if len(text.strip()) > SHOWN_CHARS:  # no count this tool takes has that many digits (int() stops at 4,300)
        raise ConfigError(f"{flag} must be a whole number of at most {SHOWN_CHARS} digits, not {shown(text)}")
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a whole number, not {shown(text)}") from None
    if value < minimum:
        raise ConfigError(f"{flag} must be at least {minimum}, not {value}")
    return value


def number_within(text: str, flag: str, least: float, most: float, like: str, unit: str = "") -> float:
    """A flag's finite number from `least` to `most` (`like`: examples for the refusal, `unit` after the bounds)."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} takes {like}, not {shown(text)}") from None
    if not math.isfinite(value) or not least <= value <= most:
        raise ConfigError(f"{flag} must be from {least:g} to {most:g}{unit}, not {shown(text)}")
    return value


def positive_float(text: str, flag: str, maximum: float = MAX_TIMEOUT_S) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number of seconds, not {text!r}") from None
    if math.isnan(value):
        raise ConfigError(f"{flag} must be a number of seconds, not {text!r}")
    if not value > 0:
        raise ConfigError(f"{flag} must be more than 0, not {text}")
    if value > maximum:
        raise ConfigError(f"{flag} must be at most {maximum:g} seconds, not {text}")
    return value


def checked_name(value: str, what: str) -> str:
    """A name that is stored (run, provider, model, host): at most MAX_NAME_CHARS characters of UTF-8 text."""
    if len(value) > MAX_NAME_CHARS:
        raise ConfigError(f"{what} is {len(value)} characters long; names are limited to {MAX_NAME_CHARS}: "
                          "shorten it")
    if not is_utf8(value):
        raise ConfigError(f"{what} is not UTF-8 text: check the terminal's or the file's encoding")
    return value


def is_utf8(text: str) -> bool:
    # Bytes that are not UTF-8 reach Python from argv and the environment as lone surrogates, which no database takes.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_utf8(path: Path, what: str, max_bytes: int | None = None) -> str:
    """A text file's contents, or one line saying why it cannot be used (not a regular file, unreadable, too big, not
    UTF-8); a byte-order mark is dropped."""
    if max_bytes is None:
        data = read_bounded(path, what, MAX_CONFIG_FILE_BYTES,
                            lambda size: ConfigError(f"{what} {path} is {size / 1e6:.1f} MB: is it the right file?"))
    else:
        data = read_bounded(path, what, max_bytes, lambda size: prompt_too_big(f"{what} {path}", size))
    return utf8_text(data, what, path)


def prompt_too_big(what: str, size_bytes: int) -> ConfigError:
    return ConfigError(f"{what} is {size_bytes / 1e6:.1f} MB; prompts are limited to {MAX_PROMPT_BYTES / 1e6:g} MB "
                       "(a 10,000-token prompt is about 40 kB)")


def checked_key(value: str, variable: str) -> str:
    """An API key that can go into an HTTP header; the message names the variable, never the value."""
    if any(c.isspace() for c in value):
        problem = "contains a space or a line break"
    elif not value.isascii():
        problem = "contains a character that is not ASCII (a curly quote, a dash or an accent from copy and paste?)"
    elif not value.isprintable():
        problem = "contains a control character"
    else:
        return value
    raise ConfigError(f"{variable} {problem}: set it to the key exactly as the provider shows it")


def yes_or_no(text: str, variable: str) -> bool:
    """1/true/yes or 0/false/no, in any case; empty is no (as if unset). Anything else is refused, not guessed."""
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS or not word:
        return False
    raise ConfigError(f"{variable} takes 1, true or yes, or 0, false or no, not {text[:40]!r}")
