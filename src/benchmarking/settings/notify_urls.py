"""BENCHMARK_NOTIFY's URLs, split where Apprise itself splits a list of URLs, so that a URL holding a comma stays whole.

A URL cannot hold whitespace, so whitespace always separates. It can hold a comma or a semicolon (Apprise's
`mailto://…?to=a@example.com,b@example.com`), so those separate only where a new URL (`scheme://`) follows them:
a list written with commas reads as before. Apprise splits a URL at the same places when it is given one, so a URL
that would be cut here could not be used through Apprise at all.
"""

from __future__ import annotations

import re
from typing import Mapping

from .errors import ConfigError

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
