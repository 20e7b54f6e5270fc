"""`python main.py flush`: write the outbox to the database now, rejected writes included."""

from __future__ import annotations

import sys

from .common import ExitStatus, Parser, storage_only_settings


def flush_main(argv: list[str]) -> int:
    """Replay pending and rejected writes; exit 0 when the outbox is empty afterwards."""
    from ..storage import open_backend
    from ..storage.outbox import PENDING, REJECTED, Outbox

    parser = Parser(prog="main.py flush", description=(
        "Write the results waiting in the outbox (BENCHMARK_OUTBOX, default ./outbox/) to the database, keeping "
        "their ids and timestamps; writes the database rejected before are tried again too. Replaying twice "
        "inserts nothing twice. Exit 0 when the outbox is empty afterwards, 1 if not."))
    parser.parse_args(argv)
    settings = storage_only_settings()
    outbox = Outbox(settings.outbox_dir)
    with open_backend(settings) as backend:
        report = outbox.replay(backend, include_rejected=True)
        print(f"flush: {report.written} writes went through to {backend.backend} at {backend.location}; "
              f"{report.pending} still waiting in {outbox.directory / PENDING}; "
              f"{report.rejected} rejected, kept in {outbox.directory / REJECTED}")
    if report.last_error:
        print(f"last error: {report.last_error}", file=sys.stderr)
    return ExitStatus.OK if report.pending == 0 and report.rejected == 0 else ExitStatus.FAILURES
