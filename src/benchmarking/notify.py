"""Notifications through Apprise: one URL scheme for Slack, Discord, Teams, email, ntfy, Telegram and JSON webhooks.

A notify URL holds its service's token, so it is never printed, logged or stored: messages name a URL by its scheme
only ("slack://…"). Apprise's own log names URLs in full, so it is silenced while Apprise works. Apprise is imported
only here, and only when a URL is set.
"""

from __future__ import annotations

from contextlib import contextmanager
import logging
from typing import Iterator, Sequence

from .errors import ConfigError


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
        loaded = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if loaded is None:
        raise ConfigError(f"{what} ({scheme_of(url)}) is not a URL Apprise can use: check it against "
                          "https://github.com/caronc/apprise/wiki (the URL is not printed: it holds a token)")


def send(urls: Sequence[str], title: str, body: str, kind: str = "info") -> list[str]:
    """Send one message to every URL; returns the schemes of those that did not take it (empty: all delivered).

    `kind`: firing (Apprise's failure type), resolved (success), anything else info; services colour by it.
    """
    import apprise

    notify_type = {"firing": apprise.NotifyType.FAILURE, "resolved": apprise.NotifyType.SUCCESS}.get(
        kind, apprise.NotifyType.INFO)
    failed = []
    with _quiet_apprise():
        for url in urls:
            target = apprise.Apprise()
            target.add(url)
            if not target.notify(title=title, body=body, notify_type=notify_type):
                failed.append(scheme_of(url))
    return failed
