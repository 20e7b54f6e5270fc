"""While a request is timed: the process's garbage collector and switch interval (TimedSection), and how a load
worker differs (as_load_worker)."""

from __future__ import annotations

import gc
import sys
import threading

# How long a thread may hold the interpreter while another waits for it, during a timed request (default 5 ms).
TIMED_SWITCH_INTERVAL_S = 0.0002


class TimedSection:
    """While a request is timed: garbage collection held off (it would stop the reader mid-stream), and a short
    switch interval, so that the SDK's thread, busy parsing a burst, lets the reader in to drain the socket soon.

    Both are the whole process's: with requests timed on several threads at once (a load run), the first to enter
    sets them and the last to leave puts them back. A load worker (as_load_worker) keeps its own switch interval, and
    each slot reads its own socket: with tens of slots timed at once, a 0.2 ms interval and a reader thread a
    connection had the threads hand the interpreter round for most of the CPU they used (47 ms a request at 64 in
    flight, against 11 ms; benchmarks/scale.py); the kernel's stamps date what a busy process reads late.
    """

    load_worker = False
    _lock = threading.Lock()
    _inside = 0
    _gc_was_enabled = True
    _switch_interval_s = 0.005

    def __enter__(self) -> "TimedSection":
        cls = type(self)
        with cls._lock:
            if cls._inside == 0:
                cls._gc_was_enabled = gc.isenabled()
                gc.disable()
                cls._switch_interval_s = sys.getswitchinterval()
                if not cls.load_worker:
                    sys.setswitchinterval(TIMED_SWITCH_INTERVAL_S)
            cls._inside += 1
        return self

    def __exit__(self, *exc: object) -> None:
        cls = type(self)
        with cls._lock:
            cls._inside -= 1
            if cls._inside == 0:
                if not cls.load_worker:
                    sys.setswitchinterval(cls._switch_interval_s)
                if cls._gc_was_enabled:
                    gc.enable()


def as_load_worker() -> None:
    """This process is a load worker: it keeps its own switch interval while requests are timed, and each slot
    reads its connection's socket itself (see TimedSection)."""
    TimedSection.load_worker = True
