"""Base URL and DATABASE_URL checks, and a URL fit to print; no check ever prints the URL it refuses."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

from .. import redaction
from ..errors import ConfigError


def split_url(url: str, what: str, example: str) -> SplitResult:
    """urlsplit, refused in one line (never printing the URL) where the host in [...] is no IPv6 address or has
    more than a port after it; urlsplit itself raises a bare ValueError for some of these and lets others through."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    host = parts.netloc.rpartition("@")[2] if parts is not None else ""
    after = host.partition("]")[2] if host.startswith("[") else ""
    if parts is None or (after and not after.startswith(":")):
        raise ConfigError(f"{what} has a malformed IPv6 address: write it in brackets, a port after them if any, "
                          f"{example}")
    return parts


def checked_base_url(url: str, what: str, key_in: str | None = None) -> str:
    """A base URL the HTTP client can open: http(s), a host and a port from 1 to 65535, no credentials (`key_in`
    says where the key goes instead). The URL is never printed."""
    redaction.register_url(url)
    parts = split_url(url, what, "like http://[::1]:8000/v1")
    if "@" in parts.netloc:
        # The SDKs would send them as Basic auth instead of the key, and servers echo what they were sent.
        raise ConfigError(f"{what} holds a user name or password (user:password@host): remove it; "
                          f"the key goes in {key_in or 'the provider key variable'}")
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{what} must start with http:// or https://")
    if not port_is_valid(parts.netloc):
        raise ConfigError(f"{what} has a port that is not a number from 1 to 65535: fix the number after the host")
    if not parts.hostname:
        raise ConfigError(f"{what} has no host: give one, like http://127.0.0.1:8000/v1")
    return url


def port_is_valid(netloc: str) -> bool:
    after_host = netloc.rpartition("@")[2].rpartition("]")[2]  # an IPv6 host's colons are inside [...]
    if ":" not in after_host:
        return True  # no port given: the scheme's default
    port = after_host.rpartition(":")[2]
    return port.isascii() and port.isdigit() and 1 <= int(port) <= 65535


def redact_url(url: str) -> str:
    """A URL fit to print or store: user, password and query string removed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def checked_database_url(url: str, variable: str = "DATABASE_URL") -> str:
    """DATABASE_URL, refused in one line when it cannot work. The URL is never printed: it holds the password."""
    redaction.register_database_url(url)
    if not url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        scheme, colon, _ = url.partition(":")
        # Only a scheme is named: the rest (a key=value string, a typo'd URL) may hold the password.
        named = f", not {scheme!r}" if colon and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,20}", scheme) else (
            " (a key=value connection string is not read: write it as a URL)")
        raise ConfigError(f"{variable} must start with sqlite:/// or postgresql://{named}")
    example = "like postgresql://user:password@host:5432/dbname"
    if url.startswith("sqlite:///"):
        if url.removeprefix("sqlite:///") == ":memory:":
            raise ConfigError(f"{variable}=sqlite:///:memory: would keep nothing after the run: give a file, "
                              "like sqlite:///benchmarks.db")
        return url
    parts = split_url(url, variable, "like postgresql://user:password@[::1]:5432/dbname")
    after_host = url.split("//", 1)[1][len(parts.netloc):]
    if "@" not in parts.netloc and "@" in after_host:
        # user:pa/ss@host: the URL's host part ends at the /, ? or #, so the password's tail looks like a path.
        raise ConfigError(f"{variable}: the password (or user name) holds a /, ? or # that is not percent-encoded: "
                          "write / as %2F, ? as %3F and # as %23")
    if re.search(r"%(?![0-9A-Fa-f]{2})", parts.netloc.rpartition("@")[0]):
        raise ConfigError(f"{variable}: the password (or user name) holds a % that does not start a percent-escape "
                          "like %2F: write % as %25")
    if "," in parts.netloc.rpartition("@")[2]:
        raise ConfigError(f"{variable} names several hosts; give one, {example}")
    if not port_is_valid(parts.netloc):
        raise ConfigError(f"{variable} has a port that is not a number from 1 to 65535: write it {example}")
    if not parts.hostname and "host=" not in parts.query:
        raise ConfigError(f"{variable} has no host: give one, {example}")
    return url
