"""Notify URLs as settings read them: BENCHMARK_NOTIFY's split where Apprise itself splits a list of URLs, so that a
URL holding a comma stays whole; each URL checked by Apprise itself; and named by its scheme only wherever it is said.

A URL cannot hold whitespace, so whitespace always separates. It can hold a comma or a semicolon (Apprise's
`mailto://…?to=a@example.com,b@example.com`), so those separate only where a new URL (`scheme://`) follows them:
a list written with commas reads as before. Apprise splits a URL at the same places when it is given one, so a URL
that would be cut here could not be used through Apprise at all.
"""

from __future__ import annotations

from contextlib import contextmanager
import logging
import re
from typing import Iterator, Mapping

from ..errors import ConfigError

VARIABLE = "BENCHMARK_NOTIFY"
# As Apprise's URL_DETECTION_RE: a run of , ; before a scheme of up to 32 letters and digits and ://
_SEPARATOR = re.compile(r"\s+|[,;]+(?=\s*[A-Za-z0-9]{1,32}://)")


def split_urls(text: str) -> list[str]:
    """The URLs of a list: split at whitespace, and at commas or semicolons a new URL follows; stray ones dropped."""
    return [url for part in _SEPARATOR.split(text) if (url := part.strip().strip(",;"))]


def environment_urls(environ: Mapping[str, str]) -> list[str] | None:
    """BENCHMARK_NOTIFY's URLs; None when it is not set (or blank), and [notify] urls apply."""
    if not environ.get(VARIABLE, "").strip():
        return None
    try:
        environ[VARIABLE].encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 reach Python as lone surrogates, which Apprise chokes on
        raise ConfigError(f"{VARIABLE} is not UTF-8 text: set it again from a UTF-8 source (the value is not "
                          "printed: it holds tokens)") from None
    urls = split_urls(environ[VARIABLE])
    if not urls:  # only commas: set, so it would win over [notify] urls and switch every notification off
        raise ConfigError(f"{VARIABLE} names no URL: give Apprise URLs separated by commas, or unset it to use "
                          "[notify] urls in benchmark.toml")
    return urls


def scheme_of(url: str) -> str:
    """The part of a notify URL fit to print: 'slack://…' (or '…' when it has no scheme)."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep and scheme.isascii() and scheme.replace("+", "").isalnum() else "…"


@contextmanager
def _quiet_apprise() -> Iterator[None]:
    """Apprise's log lines carry URLs with their tokens: none of them may reach stderr."""
    logger = logging.getLogger("apprise")
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled


def check_url(url: str, what: str) -> None:
    """Refuse a URL that Apprise itself cannot load, naming it by its scheme only."""
    import apprise

    with _quiet_apprise():
        try:
            loaded = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        except Exception:  # suppress_exceptions does not cover its URL parser (a lone surrogate): refused the same
            loaded = None
    if loaded is None:
        raise ConfigError(f"{what} ({scheme_of(url)}) is not a URL Apprise can use: check it against "
                          "https://github.com/caronc/apprise/wiki (the URL is not printed: it holds a token)")
