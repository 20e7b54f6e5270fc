"""The child process that sends one notification through Apprise: run as a script by notify.send, which kills it at
the bound.

Apprise sends from thread pools of its own whose threads are joined at interpreter exit, so a receiver that trickles
bytes held the whole process (154 s) after the wait for it had been given up. A process can be killed; a thread
cannot. The request (URLs with their tokens, title, body) comes on stdin, never in argv, which `ps` shows to every
user; each URL that took the message is written to stdout as its index, one a line, as soon as it did.
Imports nothing of ours: it runs as a script, not as part of the package.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import signal
import sys
import threading
import time

# Linux's prctl(PR_SET_PDEATHSIG): the kernel kills this process when its parent dies.
_PR_SET_PDEATHSIG = 1
# The memory it may take (RLIMIT_DATA: heap and thread stacks): Apprise reads a receiver's whole answer, and one that
# sent a body of gigabytes made it take 1.3-2.2 GB before the kill. A send needs about 90 MB, and 8 MB more a URL.
_MEMORY_BYTES = 256 << 20
_MEMORY_PER_URL_BYTES = 16 << 20


def _die_with_parent(parent: int, bound_s: float) -> None:
    """End with the parent, or at the latest a little after the bound, even if the parent is SIGKILLed."""
    if hasattr(signal, "alarm"):  # not on Windows
        signal.alarm(math.ceil(bound_s) + 2)  # SIGALRM's default action ends the process
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the alarm alone bounds it
        pass
    if os.getppid() != parent:  # the parent died before prctl took hold
        os._exit(1)


def _bound_memory(urls: int) -> None:
    """A receiver's answer can cost this process at most its bound: past it, the send fails (not delivered)."""
    try:
        import resource

        limit = _MEMORY_BYTES + urls * _MEMORY_PER_URL_BYTES
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ImportError, ValueError, OSError):  # not a Unix, or a lower limit already set: kept as it is
        pass


def main() -> None:
    """Read the request, send to every URL at once, report each delivery, and exit without joining anything."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle: it kills this process
    request = json.loads(sys.stdin.buffer.read())
    _die_with_parent(request["parent"], request["bound_s"])
    _bound_memory(len(request["urls"]))
    sys.path[:] = request["path"]  # the parent's: the same Apprise it checked the URLs with
    logging.disable(logging.CRITICAL)  # Apprise's log lines name URLs in full, tokens included
    import apprise

    notify_type = {"firing": apprise.NotifyType.FAILURE, "resolved": apprise.NotifyType.SUCCESS}.get(
        request["kind"], apprise.NotifyType.INFO)
    written = threading.Lock()

    def deliver(index: int, url: str) -> None:
        target = apprise.Apprise()
        target.add(url)
        if target.notify(title=request["title"], body=request["body"], notify_type=notify_type):
            with written:
                os.write(1, f"{index}\n".encode())

    threads = [threading.Thread(target=deliver, args=(index, url), daemon=True)
               for index, url in enumerate(request["urls"])]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + request["bound_s"]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    os._exit(0)  # not sys.exit: that would join Apprise's pool threads, still reading from a slow receiver


if __name__ == "__main__":
    main()
