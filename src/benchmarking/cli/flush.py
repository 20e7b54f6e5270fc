"""`python main.py flush`: write the outbox to the database now, rejected writes included."""

from __future__ import annotations

from contextlib import ExitStack
import signal
import sys

from ..stopping import GracefulStop
from ..app.storage import mark_abandoned_runs, outbox_lines
from .common import ExitStatus, Parser, storage_only_settings


def flush_main(argv: list[str]) -> int:
    """Replay pending and rejected writes; exit 0 when the outbox holds none of this database's afterwards."""
    from ..storage import open_backend
    from ..storage.outbox import PENDING, REJECTED, Outbox, ReplayInterrupted

    parser = Parser(prog="main.py flush", description=(
        "Write the results waiting in the outbox (BENCHMARK_OUTBOX, default ./outbox/) to the database, keeping "
        "their ids and timestamps; writes the database rejected before are tried again too. Replaying twice "
        "inserts nothing twice. Writes kept for another database stay in the outbox. Runs of this host left "
        "running by a process that is gone are marked abandoned. Exit 0 when none of this database's writes is "
        "left in the outbox afterwards, 1 if some are, 130 on Ctrl-C (what was written is said, the rest stays)."))
    parser.parse_args(argv)
    settings = storage_only_settings()
    outbox = Outbox(settings.outbox_dir)
    with ExitStack() as stack:
        stop = stack.enter_context(GracefulStop())
        backend = stack.enter_context(open_backend(settings))
        try:
            report = outbox.replay(backend, include_rejected=True, include_unowned=True, stop_requested=stop.requested)
        except ReplayInterrupted as interrupted:
            report = interrupted.report
        print(f"flush: {report.written} writes went through to {backend.backend} at {backend.location}; "
              f"{report.pending} still waiting in {outbox.directory / PENDING}; "
              f"{report.rejected} rejected, kept in {outbox.directory / REJECTED}", flush=True)
        for line in outbox_lines(outbox.contents(backend.database), outbox.directory, flushing=True):
            print(line, file=sys.stderr)
        if report.stopped:
            by = "SIGTERM" if stop.signal == signal.SIGTERM else "Ctrl-C"
            print(f"flush: stopped by {by} after {report.written} writes; the others are still in "
                  f"{outbox.directory}/, to be written by the next run or flush", file=sys.stderr)
            return stop.exit_status
        if report.pending == 0:
            mark_abandoned_runs(backend, settings.host, lambda line: print(line, file=sys.stderr))
    if report.last_error:
        print(f"last error: {report.last_error}", file=sys.stderr)
    return ExitStatus.OK if report.pending == 0 and report.rejected == 0 else ExitStatus.FAILURES
