"""Stopping cleanly on Ctrl-C or SIGTERM: the request in flight is finished and stored, then the run ends."""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

# The stop that is listening now, if any: pause() waits on it, so that a back-off between retries ends at a signal.
_listening: "GracefulStop | None" = None


class GracefulStop:
    """The first SIGINT or SIGTERM asks to stop after the current request; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}
        self._outer: GracefulStop | None = None

    def __enter__(self) -> "GracefulStop":
        global _listening
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        self._outer, _listening = _listening, self
        return self

    def __exit__(self, *exc: object) -> None:
        global _listening
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        _listening = self._outer

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signal is None:
            self.signal = signum
            name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
            print(f"\n{name}: stopping after the current request (Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)
        self._event.set()

    def requested(self) -> bool:
        return self.signal is not None

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True if a stop was asked for meanwhile."""
        return self._event.wait(max(0.0, seconds))

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as shells report it: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + (self.signal or signal.SIGINT)


def pause(seconds: float) -> bool:
    """Sleep up to `seconds`, ended early by a stop (Ctrl-C, SIGTERM); True if a stop was asked for."""
    if _listening is None:
        time.sleep(max(0.0, seconds))
        return False
    return _listening.wait(seconds) or _listening.requested()


def stop_requested() -> bool:
    """Whether a stop (Ctrl-C, SIGTERM) was asked for while a GracefulStop listens: waits that are no request of a
    run (a notification being sent) end at it."""
    return _listening is not None and _listening.requested()
