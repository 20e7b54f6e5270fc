"""`python main.py`: one run over every provider with a key."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
import sys

from .. import __version__
from ..benchmark_runner import RunOutcome
from ..stopping import GracefulStop
from ..app.plan import show_plan
from ..app.runs import one_load_run, one_run, prepare_runs
from ..app.site import rebuild_site
from .common import ExitStatus, Parser, add_run_arguments, connect_engine, load_from_args, settings_from_args
from .lines import ConsoleLines
from .metrics import add_metrics_file_argument, checked_metrics_file, write_metrics_file
from .site import add_site_argument, checked_site


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="main.py",
        description=(
            "Benchmark AI model providers on the same prompt: time to first token, latency, tokens, "
            "decode speed and cost, every result stored (SQLite ./benchmarks.db by default)."
        ),
        epilog=(
            "Other commands: `main.py report` (percentiles, costs, charts, exports, --site), `main.py serve` (the "
            "results site), `main.py check` (is everything ready?), `main.py flush` (write the outbox to the "
            "database), `main.py watch` (alerts); each has --help. "
            "Keys and storage come from the environment or .env (see .env.example). "
            "Exit status: 0 all succeeded and stored, 1 a provider failed or a result is only in the outbox, "
            "2 usage error, 130 Ctrl-C, 143 SIGTERM (the first one lets the request in flight finish)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_run_arguments(parser)
    outputs = parser.add_argument_group("Prometheus and the site")
    add_metrics_file_argument(outputs)
    add_site_argument(outputs)
    return parser


def run_status(outcome: RunOutcome, stop: GracefulStop) -> int:
    if outcome.status == "interrupted":
        stored = sum(r.storage_note is None for r in outcome.results)
        print(f"stopped: run {outcome.run.id} marked interrupted; {stored} results stored in the database",
              file=sys.stderr)
        return stop.exit_status
    if stop.requested():  # after the last request (while the alert rules were judged): the run stands, as asked
        return stop.exit_status
    # A run that failed without a failed row (a load run whose worker process died) fails too.
    ok = outcome.status != "failed" and outcome.all_succeeded and outcome.all_saved
    return ExitStatus.OK if ok else ExitStatus.FAILURES


def run_main(argv: list[str]) -> int:
    """One run of main.py."""
    args = build_parser().parse_args(argv)
    with ExitStack() as stack:
        stop = stack.enter_context(GracefulStop())
        settings = settings_from_args(args)
        load = load_from_args(args, settings)
        metrics_file = checked_metrics_file(args, settings)
        site = checked_site(args, settings)
        lines = ConsoleLines(settings.json_output)
        if settings.dry_run:
            show_plan(settings, lines, load=load)
            return ExitStatus.OK
        connect_engine(load)
        context = prepare_runs(settings, stack, lines, load=load)
        if stop.requested():  # Ctrl-C or SIGTERM while starting: no run is created, nothing is measured
            print("interrupted before the run started: nothing measured", file=sys.stderr)
            return stop.exit_status
        if load is not None:
            outcome = one_load_run(context, context.settings, load, stop)
        else:
            outcome = one_run(context, context.settings, stop)
        written = write_metrics_file(context.storage, metrics_file)
        rebuild_site(context, site)
        status = run_status(outcome, stop)
        return ExitStatus.FAILURES if status == ExitStatus.OK and not written else status
