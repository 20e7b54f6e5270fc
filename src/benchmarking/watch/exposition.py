"""The two ways the metrics go out: the textfile of `--metrics-file` (checked before anything is measured, written
through the safe writer) and the `/metrics` endpoint of `run_scheduled.py --metrics-port`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..safe_files import OwnFiles, check_target, write_file
from .metrics import Metrics

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

DEFAULT_METRICS_HOST = "0.0.0.0"


def check_textfile(path: str, own: OwnFiles) -> Path:
    """--metrics-file: a file of its own (never one the tool keeps, a directory or a device) in a directory that
    exists and takes writes (tried, not guessed: root passes every permission check), checked before anything is
    measured."""
    if not path.strip():
        raise ConfigError("--metrics-file needs a path, like benchmark.prom")
    if own.owner(path) is not None:  # said first, before a probe is written into a directory the tool keeps
        check_target(path, "--metrics-file", own)
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"--metrics-file {path} is a directory: give a file in it, like {target / 'benchmark.prom'}")
    directory = target.parent
    if not directory.is_dir():
        raise ConfigError(f"--metrics-file {path}: directory {directory} does not exist")
    probe = directory / f".{target.name}.{os.getpid()}.check"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--metrics-file {path}: cannot write in {directory}: {exc.strerror or exc}") from None
    return check_target(path, "--metrics-file", own)


def write_textfile(path: Path, metrics: Metrics) -> None:
    """The metrics in the text format, through the safe writer: a temporary file beside the target (its name ends in
    .tmp, so node_exporter's textfile collector never reads it) renamed over the target, so that the collector never
    reads half a file and a full disk leaves the earlier file whole."""
    from prometheus_client import generate_latest
    from prometheus_client.openmetrics.exposition import ALLOWUTF8

    write_file(path, generate_latest(metrics.registry(), ALLOWUTF8), "--metrics-file")


def parse_metrics_address(text: str) -> tuple[str, int]:
    """--metrics-port: PORT, or HOST:PORT to listen on one address only (default every address)."""
    host, _, port_text = text.strip().rpartition(":")
    host = host.strip("[]") or DEFAULT_METRICS_HOST
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(f"--metrics-port takes a port from 1 to 65535 (or HOST:PORT), not {text!r}")
    return host, port


def serve(metrics: Metrics, host: str, port: int) -> "WSGIServer":
    """Serve /metrics from a thread; a port in use or an address not on this machine is one line, before anything
    is measured. Stop it with .shutdown() and .server_close()."""
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, addr=host, registry=metrics.registry())
    except OSError as exc:
        raise ConfigError(f"--metrics-port {host}:{port}: cannot listen there: {exc.strerror or exc}") from None
    return server
