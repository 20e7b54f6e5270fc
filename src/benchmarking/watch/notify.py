"""Notifications through Apprise: one URL scheme for Slack, Discord, Teams, email, ntfy, Telegram and JSON webhooks.

A notify URL holds its service's token, so it is never printed, logged or stored: messages name a URL by its scheme
only ("slack://…"). Apprise's own log names URLs in full, so it is silenced while Apprise works. Apprise is imported
only here, in the child that sends (notify_child.py) and in the URL check that settings run when they read the URLs
(settings/notify_urls.py), and only when a URL is set.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import select
import subprocess
import sys
import time
from typing import Sequence

from ..redaction import scrub
from ..stopping import stop_requested

# The most one message may hold a run, for all its URLs together, from starting the child that sends it to its end.
# Apprise's socket timeouts (4 s) bound each wait for a byte, not the answer: a receiver that sends a byte every few
# seconds would hold the run for minutes. A send still under way at the bound is killed and counts as not delivered
# (kept pending); the receiver may have taken it all the same, and then gets it twice.
SEND_TIMEOUT_S = 15.0
STOP_CHECK_S = 0.2


def fingerprint(url: str) -> str:
    """A notify URL as it may be stored: a short hash, which tells URLs apart and does not give the token away."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def send(urls: Sequence[str], title: str, body: str, kind: str = "info") -> list[str]:
    """Send one message to every URL; returns those that did not take it (empty: all delivered). They are secrets:
    print them with settings.notify_urls.scheme_of.

    `kind`: firing (Apprise's failure type), resolved (success), anything else info; services colour by it.
    The send runs in a child process (notify_child.py), killed at the bound or when this one is interrupted: nothing
    of it is left to hold the process at exit.
    """
    if not urls:
        return []
    title, body = scrub(title), scrub(body)  # a message leaves the process like any output: no secret in it
    deadline = time.monotonic() + SEND_TIMEOUT_S
    request = json.dumps({"urls": list(urls), "title": title, "body": body, "kind": kind, "bound_s": SEND_TIMEOUT_S,
                          "parent": os.getpid(), "path": [str(entry) for entry in sys.path]})
    try:
        child = subprocess.Popen([sys.executable, str(Path(__file__).with_name("notify_child.py"))],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:  # no interpreter to run it (or no process left to start): nothing delivered, kept pending
        return list(urls)
    delivered: set[int] = set()
    try:
        try:
            child.stdin.write(request.encode())  # type: ignore[union-attr]
            child.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:  # it died before reading: nothing delivered
            pass
        received = b""
        while len(delivered) < len(urls) and (left := deadline - time.monotonic()) > 0 and not stop_requested():
            # Woken every STOP_CHECK_S: a SIGTERM or first Ctrl-C (a flag while a run listens, no exception) ends
            # the send at once, kept pending, instead of holding the process to the bound.
            ready, _, _ = select.select([child.stdout], [], [], min(left, STOP_CHECK_S))
            chunk = os.read(child.stdout.fileno(), 4096) if ready else b""  # type: ignore[union-attr]
            if ready and not chunk:
                break  # it ended
            received += chunk
            *lines, received = received.split(b"\n")
            delivered.update(int(line) for line in lines if line.strip().isdigit())
    finally:
        child.kill()  # at the bound, or at a Ctrl-C or SIGTERM while waiting: its send is given up
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    return [url for index, url in enumerate(urls) if index not in delivered]
