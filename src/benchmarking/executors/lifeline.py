"""A child process ends with its parent: no worker outlives a load run that was killed (SIGKILL, OOM killer).

Two ways, both from inside the child: on Linux the kernel sends it SIGKILL when its parent goes
(prctl PR_SET_PDEATHSIG); everywhere a watcher thread notices that its parent is no longer the one that started it
(the parent died and the child was given to another) and ends the process. The first covers the moment itself, the
second the race before the first was set and systems without prctl.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_EVERY_S = 0.5
ORPHANED_STATUS = 70  # EX_SOFTWARE: seen only by whoever adopted the orphan


def _death_signal() -> bool:
    """Ask the kernel for SIGKILL when the parent (the thread that started this process) ends; True if it took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    event = threading.Event()
    while not event.wait(WATCH_EVERY_S):
        if os.getppid() != parent_pid:
            os._exit(ORPHANED_STATUS)


def die_with_parent(parent_pid: int) -> None:
    """Called first thing in a child: it ends when the process `parent_pid` ends, whichever way that goes."""
    _death_signal()
    if os.getppid() != parent_pid:  # the parent died before the death signal was set: nobody would send it
        os._exit(ORPHANED_STATUS)
    # Also a watcher: PDEATHSIG follows the parent *thread* that started the child, and is Linux only.
    threading.Thread(target=_watch, args=(parent_pid,), name="lifeline", daemon=True).start()
