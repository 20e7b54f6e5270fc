"""One registry of every secret the process has read, and one scrubber that everything leaving the process passes.

A secret is registered the moment it is read (settings/: keys, the database password, the Supabase service role,
notification URLs' tokens, credentials in headers and base URLs). `scrub` then removes it from any text in every form
an echo takes: as sent, URL-encoded, JSON-escaped, in any case, and any run of SECRET_RUN_CHARS of it (a cut echo),
plus anything key-shaped. `shown` also makes text inert for a terminal (no escape sequences, no control characters).
This module imports nothing of ours, so every layer may use it.
"""

from __future__ import annotations

import base64
from contextlib import contextmanager
from functools import lru_cache
import html
import io
import json
import logging
import re
import sys
import threading
from typing import Any, Iterable, Iterator, TextIO
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

# A run of this many characters of a known secret, anywhere, in any case, is taken for the secret (cut, lower-cased
# or URL-encoded echoes included); shorter runs are too likely to be ordinary text.
SECRET_RUN_CHARS = 12
# Shorter values are not registered: scrubbing every "admin" or "1234" from every output would garble it, and a
# secret that short is guessed faster than it is leaked.
MIN_SECRET_CHARS = 6
REDACTED = "****"

# (pattern, replacement): secrets nobody registered (an echo of another key, a key in a provider's example).
_VALUE = r"[^\s'\",;&}]+"  # a credential's value runs to a space, quote, comma, semicolon, & or brace
_KEY_PATTERNS = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-*.]{6,}"), REDACTED),
    (re.compile(r"\bgsk_[A-Za-z0-9*]{6,}"), REDACTED),
    (re.compile(r"\bsb_secret_[A-Za-z0-9_\-]{6,}"), REDACTED),
    (re.compile(r"\bAIza[A-Za-z0-9_\-]{30,}"), REDACTED),  # a Google API key (Gemini's): AIza and 35 more
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}(?:\.[A-Za-z0-9_\-]*)?"), REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)" + _VALUE), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(api[_-]?key[\"']?\s*[:=]\s*[\"']?)" + _VALUE), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(password[\"']?\s*[:=]\s*[\"']?)" + _VALUE), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?(?:basic|digest|token)\s+)" + _VALUE), r"\1" + REDACTED),
)
# Cheap test of whether any of _KEY_PATTERNS can match at all.
_ANY_KEY_SHAPE = re.compile(r"(?i)sk-|gsk_|sb_secret_|aiza|eyJ|bearer|api[_-]?key|password|authorization")
# Header and query names whose values are credentials (Authorization, api-key, X-Goog-Api-Key, token, a cookie, sig).
_CREDENTIAL_HEADER = re.compile(r"(?i)auth|key|token|secret|cookie|session|pass|sig|credential")
# A path segment or host of a notification URL that looks like a token: long, letters and digits mixed.
_TOKEN_LIKE = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-.~%+=]{10,}$")
# password=... in a key=value connection string, quoted or not.
_DSN_PASSWORD = re.compile(r"(?i)(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
# Terminal escape sequences (CSI, OSC, and the two-character ones), then any control character left over, and the
# bidirectional overrides that make a line read other than it is.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_]|.?)|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile("\r(?!\n)|[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

_WHITE = re.compile(r"\s")

_lock = threading.Lock()
_registered: dict[str, None] = {}  # insertion-ordered set of the values as read
_windows: frozenset[str] = frozenset()  # what scrub_known looks for: see _windows_of


def forms_of(secret: str) -> set[str]:
    """The lower-cased forms an echo of `secret` may take: as is, URL-decoded, URL-encoded (both ways), JSON- and
    HTML-escaped."""
    found: set[str] = set()
    for value in {secret, unquote(secret)}:
        found |= {value, quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1],
                  html.escape(value)}
    found |= _base64_cores(secret)
    return {form.lower() for form in found if len(form) >= MIN_SECRET_CHARS}


def _base64_cores(secret: str) -> set[str]:
    """What base64 of any text holding `secret` shows of it, whatever stands before it (`Bearer `, `user:`): the
    encoding at each of the three byte alignments, less the groups it shares with the bytes around it."""
    data = secret.encode()
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        cores.add(encoded[(4 if offset else 0) : -4])
    return cores


def register(value: str | None) -> None:
    """Remember a secret for every later scrub; a URL gives its credentials and tokens, not its whole self."""
    if not value or not isinstance(value, str):
        return
    value = value.strip()  # " key\n" pasted with its spaces: the key is what an echo shows; the spaces are text
    if "://" in value:  # a notification URL (Secret): its credentials and tokens
        register_url(value, path_tokens=True)
        return
    if len(value) < MIN_SECRET_CHARS or value in _registered:
        return
    global _windows
    with _lock:
        _registered[value] = None
        _windows = _windows | _windows_of(forms_of(value))


def register_url(url: str, path_tokens: bool = False) -> None:
    """The secrets a URL holds: the password (and its Basic-auth form), query values, and with `path_tokens` (a
    notification URL: slack://T0/B0/XXX, tgram://bottoken/chat) token-like parts of the host and path."""
    _, _, rest = url.partition("://")
    try:
        parts = urlsplit(url)
        user, password, host, query = parts.username, parts.password, parts.hostname, parts.query
    except ValueError:  # a malformed host ([::1 unclosed): the credentials taken apart by hand
        user, password, host, query = None, None, None, rest.partition("?")[2]
    authority = rest.split("/", 1)[0]
    if password is None and "@" in authority:
        user, _, password = authority.rpartition("@")[0].partition(":")
    register(password)
    if password:
        register(base64.b64encode(f"{unquote(user or '')}:{unquote(password)}".encode()).decode())
    for name, value in parse_qsl(query, keep_blank_values=True):
        # ?api-version=2024-10-21 and ?format=markdown are no secrets; ?token=, ?key=, ?sig= are.
        if _CREDENTIAL_HEADER.search(name) or (path_tokens and _TOKEN_LIKE.match(value)):
            register(value)
    if path_tokens:
        for piece in re.split(r"[/@?&#=:,]+", rest.partition("?")[0]):
            # A host that is a name (hooks.slack.com) or an address is no token; tgram://123456:AAbot... is.
            is_address = piece.lower() == host and ("." in piece or piece.lower() == "localhost")
            if not is_address and _TOKEN_LIKE.match(piece) and not re.fullmatch(r"[\d.]+", piece):
                register(piece)


def register_header(name: str, value: str) -> None:
    """A header's value, if the header carries a credential; for `Bearer TOKEN`, the token on its own too."""
    if _CREDENTIAL_HEADER.search(name):
        register(value)
        register(value.strip().rpartition(" ")[2])


def register_database_url(url: str) -> None:
    """The password of a database URL (postgresql://user:pw@host) or of a key=value string (password=pw)."""
    if "://" in url:
        register_url(url)
    for match in _DSN_PASSWORD.finditer(url):
        value = match.group(1)
        register(value[1:-1] if value.startswith("'") and value.endswith("'") and len(value) > 1 else value)


@contextmanager
def isolated_registry() -> Iterator[None]:
    """The registry put back as it was after the block: a test is a process of its own (one command), and the
    secrets of one must not scrub the output of the next."""
    global _windows
    saved = dict(_registered), _windows
    try:
        yield
    finally:
        with _lock:
            _registered.clear()
            _registered.update(saved[0])
            _windows = saved[1]
            _scrub_short.cache_clear()  # remembered under a registry that is gone


def registered() -> tuple[str, ...]:
    """The registered values, for tests and for a scrub that must also take a caller's own secrets."""
    return tuple(_registered)


def _windows_of(forms: Iterable[str]) -> frozenset[str]:
    """Every run of SECRET_RUN_CHARS of each form, and each shorter form whole: what scrub_known looks for."""
    windows = set()
    for form in forms:
        width = min(SECRET_RUN_CHARS, len(form))
        windows.update(form[start : start + width] for start in range(len(form) - width + 1))
    return frozenset(windows)


def scrub_known(text: str, secrets: tuple[str, ...] = ()) -> str:
    """text with every run of SECRET_RUN_CHARS or more characters of a registered secret (or of `secrets`) in any of
    its forms replaced by ****; shorter secrets are replaced only whole. Case-insensitive."""
    windows = _windows
    if secrets:
        windows = windows | _windows_of(f for s in secrets if s for f in forms_of(s))
    if not text or not windows:
        return text
    widths = sorted({len(w) for w in windows})
    if len(text) < widths[0]:
        return text
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer (İ): keep positions aligned
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    spans: list[tuple[int, int]] = []
    # Each run of the text looked up once in the set, or each window searched for at C speed: whichever is less
    # work (measured: a lookup costs about as much as searching 80 characters, a search call about 300).
    spans = _found(lowered, windows, widths)
    # An echo cut into lines (or spaced out) is the secret again once its pieces are joined: found in the text with
    # its white space taken out, and mapped back onto the text, the white space between the pieces included.
    if _WHITE.search(lowered):
        kept = [i for i, c in enumerate(lowered) if not c.isspace()]
        compact = "".join(lowered[i] for i in kept)
        spans += [(kept[begin], kept[stop - 1] + 1) for begin, stop in _found(compact, windows, widths)]
    if not spans:
        return text
    merged: list[list[int]] = []
    for begin, stop in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([begin, stop])
    out: list[str] = []
    position = 0
    for begin, stop in merged:
        out += [text[position:begin], REDACTED]
        position = stop
    out.append(text[position:])
    return "".join(out)


def _found(lowered: str, windows: frozenset[str], widths: list[int]) -> list[tuple[int, int]]:
    """Where the windows stand in the (lower-cased) text."""
    spans: list[tuple[int, int]] = []
    # Each run of the text looked up once in the set, or each window searched for at C speed: whichever is less
    # work (measured: a lookup costs about as much as searching 80 characters, a search call about 300).
    if len(lowered) * 80 < len(windows) * (len(lowered) + 300):
        for width in widths:
            spans += [(i, i + width) for i in range(len(lowered) - width + 1) if lowered[i : i + width] in windows]
    else:
        for window in windows:
            found = lowered.find(window)
            while found != -1:
                spans.append((found, found + len(window)))
                found = lowered.find(window, found + 1)
    return spans


def scrub(text: str, secrets: tuple[str, ...] = (), patterns: bool = True) -> str:
    """text with every known secret, and (with `patterns`) anything key-shaped, replaced by ****; lines kept."""
    if not text:
        return text
    if len(text) <= 256 and not secrets:  # names, types, ids: the same few values again and again
        return _scrub_short(text, patterns, len(_registered))
    return _scrub(text, secrets, patterns)


def _scrub(text: str, secrets: tuple[str, ...], patterns: bool) -> str:
    text = scrub_known(text, secrets)
    if patterns and _ANY_KEY_SHAPE.search(text):
        for pattern, replacement in _KEY_PATTERNS:
            text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=4096)
def _scrub_short(text: str, patterns: bool, generation: int) -> str:
    """_scrub for a short text, remembered until the next secret is registered (`generation` changes then)."""
    return _scrub(text, (), patterns)


def inert(text: str) -> str:
    """text fit for a terminal: escape sequences and control characters removed (newline, tab and CRLF kept)."""
    if not text or (text.isprintable() and "\x1b" not in text):
        return text
    return _CONTROL.sub("", _ESCAPE.sub("", text))


def shown(text: str) -> str:
    """What a person may see of text: inert, then scrubbed (an escape sequence inside a secret cannot hide it)."""
    return scrub(inert(text))


class ScrubbedStream(io.TextIOBase):
    """A text stream (stdout, stderr) that shows only `shown` text: every print, traceback and library log line of the
    process passes here. Text is held until its line ends (or a flush), so a secret written in pieces is still seen
    whole."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._pending = ""
        self._lock = threading.RLock()  # threads print too (Ray's log lines, a notification's)

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" in text:
                whole, _, self._pending = self._pending.rpartition("\n")
                self.stream.write(shown(whole + "\n"))
        return len(text)

    def control(self, sequence: str) -> None:
        """The tool's own terminal control (a progress line's \\r and erase): written as is, after what is held."""
        with self._lock:
            self.flush()
            self.stream.write(sequence)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                pending, self._pending = self._pending, ""
                self.stream.write(shown(pending))
            self.stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.stream, "errors", None)

    @property
    def buffer(self) -> Any:
        return self.stream.buffer  # type: ignore[attr-defined]


class ScrubbingFilter(logging.Filter):
    """Scrubs a log record's message (and its traceback text) before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string: logging reports it, with the record's raw text
            return True
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


_FILTER = ScrubbingFilter()


def scrub_output_of_this_process() -> None:
    """stdout and stderr shown through `shown` from now on, and every log handler there is scrubbed (a worker
    process, whose Secrets register themselves as they are unpickled)."""
    for handler in (*logging.getLogger().handlers, logging.lastResort):
        if handler is not None:
            handler.addFilter(_FILTER)
    if sys.stdout is not None and not isinstance(sys.stdout, ScrubbedStream):
        sys.stdout = ScrubbedStream(sys.stdout)
    if sys.stderr is not None and not isinstance(sys.stderr, ScrubbedStream):
        sys.stderr = ScrubbedStream(sys.stderr)


@contextmanager
def scrubbed_output() -> Iterator[None]:
    """stdout and stderr shown through `shown`, and every log handler there is scrubbed, while the block runs."""
    saved = sys.stdout, sys.stderr
    scrub_output_of_this_process()
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, ScrubbedStream) and stream not in saved:
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
        sys.stdout, sys.stderr = saved
