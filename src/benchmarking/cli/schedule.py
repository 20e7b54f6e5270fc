"""`python run_scheduled.py`: runs on a fixed grid until done or stopped."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from dataclasses import replace
import sys

from .. import __version__
from ..benchmark_runner import RunInterrupted
from ..settings.model import Settings
from ..settings.values import DEFAULT_RUN_NAME, whole_number
from ..stopping import GracefulStop
from ..app.plan import show_plan
from ..app.runs import one_load_run, one_run, prepare_runs
from ..app.site import rebuild_site
from .common import ExitStatus, Parser, add_run_arguments, connect_engine, load_from_args, settings_from_args
from .lines import ConsoleLines
from .metrics import (
    add_metrics_file_argument, add_metrics_port_argument, checked_metrics_file, serve_metrics, write_metrics_file,
)
from .site import add_site_argument, checked_site


def build_scheduled_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="run_scheduled.py",
        description=(
            "Repeated benchmark runs on a fixed grid (start + k * interval): by default every 15 minutes for "
            "4 hours = 16 runs. A run that overruns its slot makes the next slots be skipped, never run back to back."
        ),
        epilog=(
            "Each run is stored like a single run, with triggered_by 'scheduler' and run_name NAME-03/16. "
            "Ctrl-C or SIGTERM: the request in flight finishes, the run is marked interrupted, exit 130 or 143. "
            "Exit status 0 if every run completed and every result reached the database, 1 if any failed or results "
            "are left in the outbox."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    timing = parser.add_argument_group("the schedule")
    timing.add_argument("--interval", default="15m", help="time between run starts, like 90s, 15m, 1h (default 15m)")
    timing.add_argument("--duration", default="4h", help="how long to keep going, like 30m, 4h (default 4h)")
    timing.add_argument("--runs", metavar="N", help="number of runs (default: as many intervals as fit the duration)")
    add_run_arguments(parser, level_duration_flag="--level-duration")
    prometheus = parser.add_argument_group("Prometheus and the site")
    add_metrics_port_argument(prometheus)
    add_metrics_file_argument(prometheus)
    add_site_argument(prometheus)
    return parser


def schedule_main(argv: list[str]) -> int:
    """Runs on the grid until done or stopped; failures of one run never stop the schedule."""
    from ..scheduler import Schedule, parse_duration, run_schedule

    args = build_scheduled_parser().parse_args(argv)
    schedule = Schedule.from_flags(
        parse_duration(args.interval, "--interval"),
        parse_duration(args.duration, "--duration"),
        whole_number(args.runs, "--runs") if args.runs is not None else None,
    )
    if args.run_name == DEFAULT_RUN_NAME:
        args.run_name = "scheduled-run"
    with ExitStack() as stack:
        stop = stack.enter_context(GracefulStop())
        settings = settings_from_args(args)
        load = load_from_args(args, settings)
        metrics_file = checked_metrics_file(args, settings)
        site = checked_site(args, settings)
        lines = ConsoleLines(settings.json_output)
        if settings.dry_run:
            show_plan(settings, lines, runs=schedule.runs, load=load)
            return ExitStatus.OK
        live = serve_metrics(args, stack)
        connect_engine(load)
        context = replace(prepare_runs(settings, stack, lines, runs=schedule.runs, load=load), json_lines=True)
        if live is not None:
            live.watch(context.settings, context.storage)
        if stop.requested():  # Ctrl-C or SIGTERM while starting: no run is created, nothing is measured
            print("interrupted before the first run: nothing measured", file=sys.stderr)
            return stop.exit_status
        print(f"schedule: {schedule.runs} runs, one every {args.interval} (Ctrl-C stops after the current request)",
              file=lines.human, flush=True)

        metrics_failures: list[str] = []  # runs after which --metrics-file could not be written (a disk that failed)

        def guarded_run(settings: Settings) -> str:
            try:
                if load is not None:
                    return one_load_run(context, settings, load, stop).status
                return one_run(context, settings, stop).status
            except RunInterrupted:
                raise
            except Exception as exc:  # one run's failure never stops the schedule
                print(f"run {settings.run_name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                return "failed"
            finally:
                if live is not None:
                    live.refresh_alerts(context.storage)
                if not write_metrics_file(context.storage, metrics_file):
                    metrics_failures.append(settings.run_name)
                rebuild_site(context, site)

        outcome = run_schedule(
            schedule, context.settings, guarded_run, stop.wait, stop.requested,
            lambda line: print(line, file=lines.human, flush=True),
        )
        # Writes still in the outbox when the schedule ends have not reached the database: not all is well.
        waiting = context.storage.outbox.waiting_ids(context.storage.database)
        if waiting is None or waiting:
            print(f"schedule: {'some' if waiting is None else len(waiting)} writes are only in the outbox "
                  f"({context.settings.outbox_dir}/): `python main.py flush` writes them once the database takes "
                  "them", file=sys.stderr)
    done = len(outcome.statuses)
    failed = sum(status != "completed" for status in outcome.statuses)
    print(f"schedule: {done} of {schedule.runs} runs made, {failed} not completed, "
          f"{len(outcome.skipped_slots)} slots skipped", file=sys.stderr)
    if outcome.stopped:
        return stop.exit_status
    return ExitStatus.OK if failed == 0 and not metrics_failures and waiting == set() else ExitStatus.FAILURES
