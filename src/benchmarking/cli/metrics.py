"""The Prometheus flags: `--metrics-file` (main.py, run_scheduled.py) and `--metrics-port` (run_scheduled.py).

Both are checked before anything is measured (a port in use, a directory that takes no writes: one line, exit 2);
the metrics themselves are built in ..prometheus.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings.model import Settings
    from ..watch.metrics import Metrics
    from ..storage import Storage
    from ..storage.outbox import ResilientStorage


def add_metrics_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-file", metavar="PATH",
        help="after each run, write Prometheus metrics over the whole stored history to PATH (node_exporter's "
             "textfile format, atomically; name it *.prom in the collector's directory): see docs/prometheus.md",
    )


def add_metrics_port_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port", metavar="[HOST:]PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics while the schedule runs (e.g. 9464; every "
             "address unless HOST is given), updated as each result is stored",
    )


def checked_metrics_file(args: argparse.Namespace, settings: "Settings") -> Path | None:
    """--metrics-file, checked: its directory exists and takes a file, and the file is none the tool keeps."""
    from ..watch.exposition import check_textfile
    from .outputs import own_files

    return check_textfile(args.metrics_file, own_files(settings, args)) if args.metrics_file is not None else None


def write_metrics_file(storage: "Storage", path: Path | None) -> bool:
    """The textfile over the stored history. A database that does not answer costs a warning line (the next run
    writes the file again); a disk that fails costs an error line and False (exit status 1), the earlier file kept.
    Neither changes what the run stored."""
    if path is None:
        return True
    from ..errors import OutputUnwritable, StorageError
    from ..watch.exposition import write_textfile
    from ..watch.metrics import history_metrics

    try:
        write_textfile(path, history_metrics(storage))
    except StorageError as exc:
        print(f"warning: --metrics-file {path} not written: {exc}", file=sys.stderr)
    except OutputUnwritable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    return True


@dataclass
class LiveMetrics:
    """The /metrics endpoint of a schedule: the results this process stores, and the firing alerts."""

    metrics: "Metrics"

    def watch(self, settings: "Settings", storage: "ResilientStorage") -> None:
        """Every planned provider and model from zero, each stored result as it is stored, and the alerts now."""
        for provider in settings.providers:
            for model in settings.models[provider.name]:
                self.metrics.declare(provider.name, model, settings.mode)
        storage.result_observers.append(
            lambda created_at, m: self.metrics.add_measurement(created_at, m, settings.mode))
        self.refresh_alerts(storage)

    def refresh_alerts(self, storage: "Storage") -> None:
        """The firing alerts as the database has them now (after a run: after its rules were evaluated)."""
        from ..errors import StorageError
        from ..watch.metrics import firing_alerts

        try:
            self.metrics.set_alerts(firing_alerts(storage))
        except StorageError as exc:  # unavailable now: keep what was known, the next run reads again
            print(f"warning: firing alerts not read for /metrics: {exc}", file=sys.stderr)


def serve_metrics(args: argparse.Namespace, stack: ExitStack) -> LiveMetrics | None:
    """--metrics-port: listening before anything is measured, closed when the stack closes."""
    if args.metrics_port is None:
        return None
    from ..watch.exposition import parse_metrics_address, serve
    from ..watch.metrics import Metrics

    metrics = Metrics()
    server = serve(metrics, *parse_metrics_address(args.metrics_port))
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    return LiveMetrics(metrics)
