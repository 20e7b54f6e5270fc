"""Ray's cluster, for --engine ray: whether Ray is here, the address given, connecting (or starting a local Ray) with
this process's signal handlers kept, and where the cluster's head listens. Ray is imported only by connect()."""

from __future__ import annotations

from contextlib import contextmanager
import importlib.util
import logging
import os
from pathlib import Path
import signal
import socket
import sys
import threading
import time
from typing import Any, Iterator

from ..errors import ConfigError
from ..redaction import ScrubbedStream

INSTALL_HINT = "pip install -r requirements-ray.txt"
REACH_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 20.0  # a port that answers but is not a Ray cluster would otherwise keep ray.init waiting
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20  # rows are small; a local Ray need not reserve 30 % of the memory
HEAD_CHECK_EVERY_S = 1.0  # the driver checks that the cluster's head (its GCS) still answers
HEAD_LOST_AFTER_S = 8.0  # not answering this long: the head is gone (Ray itself would end the driver at 60 s)


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray() -> None:
    """Refuse --engine ray in one line, before anything is sent, where Ray is not installed."""
    if not ray_installed():
        raise ConfigError(f"--engine ray needs Ray, which is not installed here: {INSTALL_HINT}")


def parse_ray_address(address: str | None) -> tuple[str, int] | None:
    """(host, port) of a cluster address (HOST:PORT or ray://HOST:PORT); None for 'auto', 'local' or none."""
    if address is None or address in ("auto", "local"):
        return None
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in rest:
        raise ConfigError(f"--ray-address (or RAY_ADDRESS) takes HOST:PORT, ray://HOST:PORT or auto, not {address!r}")
    return host, int(port)


def gcs_host_port(ray: Any) -> tuple[str, int] | None:
    """Where the cluster's head (its GCS) listens, to check that it still answers; None if Ray does not say."""
    try:
        host, _, port = str(ray.get_runtime_context().gcs_address).rpartition(":")
        return (host.strip("[]"), int(port)) if host and port.isdigit() else None
    except Exception:
        return None


class HeadWatch:
    """Whether the cluster's head (its GCS) still answers, asked of its port, never of Ray: every call to Ray that
    needs the head waits for it, up to Ray's own 60 s, when it is gone."""

    def __init__(self, gcs: tuple[str, int] | None) -> None:
        self.gcs = gcs
        self._checked = time.monotonic()
        self._silent_since: float | None = None

    def gone(self) -> bool:
        """True once the head has not answered for HEAD_LOST_AFTER_S (asked at most every HEAD_CHECK_EVERY_S)."""
        now = time.monotonic()
        if self.gcs is None or now - self._checked < HEAD_CHECK_EVERY_S:
            return False
        self._checked = now
        try:
            socket.create_connection(self.gcs, timeout=HEAD_CHECK_EVERY_S).close()
        except OSError:
            self._silent_since = self._silent_since or now
            return now - self._silent_since >= HEAD_LOST_AFTER_S
        self._silent_since = None
        return False


def one_line(exc: BaseException) -> str:
    """An exception as one short line: Ray's messages run to many lines, the last of which names the cause."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300]


@contextmanager
def our_signal_handlers() -> Iterator[None]:
    """SIGINT and SIGTERM stay this process's own (stopping.GracefulStop) across ray.init: Ray's driver sets a
    SIGTERM handler that exits at once, and its core installs a failure handler that dumps a stack and aborts
    (exit -6), losing the requests in flight and leaving the run `running`."""
    watched = (signal.SIGINT, signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()
    kept = {signum: signal.getsignal(signum) for signum in watched} if in_main else {}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            if handler is not None:
                signal.signal(signum, handler)


def connect(address: str | None) -> Any:
    """ray.init on the cluster at `address` (checked to answer first), or on a new local Ray; one line if not.

    Called before storage is opened (cli.run), so that a cluster that is not there leaves nothing behind; the
    executor then finds Ray connected. Returns the ray module.
    """
    with our_signal_handlers():
        return _connect(address)


def _connect(address: str | None) -> Any:
    host_port = parse_ray_address(address)
    if host_port is not None:
        try:
            socket.create_connection(host_port, timeout=REACH_TIMEOUT_S).close()
        except OSError as exc:
            raise ConfigError(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start one with "
                              "`ray start --head`, or give its address with --ray-address or RAY_ADDRESS") from None
    local = address is None or address == "local"
    if local:
        # A local Ray started for this run stays on this machine: Ray's switch for single-node clusters keeps its
        # processes on the loopback address instead of the network's, and it reports no usage statistics.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray

    if ray.is_initialized():
        return ray
    package = Path(__file__).resolve().parent.parent  # the whole benchmarking package
    options: dict[str, Any] = {
        "address": "local" if local else address,
        "logging_level": logging.ERROR,
        "log_to_driver": False,
        # Every actor runs this very code, shipped with the job, whatever is installed on its node.
        "runtime_env": {"py_modules": [str(package)], "excludes": ["__pycache__"]},
    }
    if local:
        options.update(include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        # In this thread, which lives as long as the run: Ray's processes die with the thread that started them.
        try:
            ray.init(**options)
        except Exception as exc:
            raise ConfigError(f"could not start a local Ray: {one_line(exc)}") from None
        return ray
    outcome: list[BaseException | None] = []

    def init() -> None:
        try:
            ray.init(**options)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    # Connecting waits for as long as the address answers, if it is not a Ray cluster: on a thread of its own, for
    # at most CONNECT_TIMEOUT_S. Ray's core logs its retries straight to file descriptor 2, a line every few
    # seconds: while it connects they go nowhere, and a failure is said in one line.
    sys.stderr.flush()
    real_stderr = os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 2)
    os.close(sink)
    thread = threading.Thread(target=init, name="ray-init", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    if not outcome:  # still trying: its descriptor 2 stays silenced, and this process's stderr goes to a copy
        sys.stderr = ScrubbedStream(os.fdopen(real_stderr, "w", buffering=1))
        raise ConfigError(f"no Ray cluster answered at {address} within {CONNECT_TIMEOUT_S:.0f} s (is it a Ray "
                          "cluster's address? `ray status` on its head shows it)")
    os.dup2(real_stderr, 2)
    os.close(real_stderr)
    if outcome[0] is not None:
        raise ConfigError(f"could not connect to the Ray cluster at {address}: {one_line(outcome[0])}") from None
    return ray
