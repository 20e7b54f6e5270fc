"""Notifications through Apprise: one URL scheme for Slack, Discord, Teams, email, ntfy, Telegram and JSON webhooks.

A notify URL holds its service's token, so it is never printed, logged or stored: messages name a URL by its scheme
only ("slack://…"). Apprise's own log names URLs in full, so it is silenced while Apprise works. Apprise is imported
only here, and only when a URL is set.
"""

from __future__ import annotations

from contextlib import contextmanager
import hashlib
import logging
import threading
import time
from typing import Iterator, Sequence

from .errors import ConfigError
from .redaction import scrub

# The most one message may hold a run, for all its URLs together. Apprise's socket timeouts (4 s) bound each wait for
# a byte, not the answer: a receiver that sends a byte every few seconds would hold the run for minutes. A send still
# under way at the bound counts as not delivered (kept pending); it may still arrive, and then arrives twice.
SEND_TIMEOUT_S = 15.0


def scheme_of(url: str) -> str:
    """The part of a notify URL fit to print: 'slack://…' (or '…' when it has no scheme)."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep and scheme.isascii() and scheme.replace("+", "").isalnum() else "…"


@contextmanager
def _quiet_apprise(still_sending: Sequence[threading.Thread] = ()) -> Iterator[None]:
    """Apprise's log lines carry URLs with their tokens: none of them may reach stderr (nor those of a send given up
    at the bound and still under way, so the log stays off while one is)."""
    logger = logging.getLogger("apprise")
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        if not any(thread.is_alive() for thread in still_sending):
            logger.disabled = disabled


def check_url(url: str, what: str) -> None:
    """Refuse a URL that Apprise itself cannot load, naming it by its scheme only."""
    import apprise

    with _quiet_apprise():
        loaded = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if loaded is None:
        raise ConfigError(f"{what} ({scheme_of(url)}) is not a URL Apprise can use: check it against "
                          "https://github.com/caronc/apprise/wiki (the URL is not printed: it holds a token)")


def fingerprint(url: str) -> str:
    """A notify URL as it may be stored: a short hash, which tells URLs apart and does not give the token away."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def send(urls: Sequence[str], title: str, body: str, kind: str = "info") -> list[str]:
    """Send one message to every URL; returns those that did not take it (empty: all delivered). They are secrets:
    print them with scheme_of.

    `kind`: firing (Apprise's failure type), resolved (success), anything else info; services colour by it.
    """
    import apprise

    title, body = scrub(title), scrub(body)  # a message leaves the process like any output: no secret in it
    notify_type = {"firing": apprise.NotifyType.FAILURE, "resolved": apprise.NotifyType.SUCCESS}.get(
        kind, apprise.NotifyType.INFO)
    delivered: set[int] = set()

    def deliver(index: int, url: str) -> None:
        target = apprise.Apprise()
        target.add(url)
        if target.notify(title=title, body=body, notify_type=notify_type):
            delivered.add(index)

    # Each URL in a thread of its own, so that one bound covers them all; daemon threads: a send given up at the
    # bound never keeps the process from exiting.
    threads = [threading.Thread(target=deliver, args=(index, url), daemon=True) for index, url in enumerate(urls)]
    with _quiet_apprise(threads):
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + SEND_TIMEOUT_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    return [url for index, url in enumerate(urls) if index not in delivered]
