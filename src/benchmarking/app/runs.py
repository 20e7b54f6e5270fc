"""A process's runs: prepared once (warnings, cost guard, simulator, storage), then one run or one load run at a time,
each followed by its summary, its JSON if asked for, and the alert rules judged on what it stored."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
import sys
from typing import TYPE_CHECKING, TextIO

from ..settings.model import Settings
from ..errors import EvaluationInterrupted
from ..stopping import GracefulStop
from .plan import guard_cost, no_provider_left
from .storage import open_storage, print_lost

if TYPE_CHECKING:
    from ..benchmark_runner import RunOutcome
    from ..load.levels import LoadSettings
    from ..storage.outbox import ResilientStorage


@dataclass(frozen=True)
class RunContext:
    """What every run of a process shares: the final settings, the storage, where human lines go."""

    settings: Settings
    storage: "ResilientStorage"
    human: TextIO
    json_lines: bool = False  # --json of several runs: one line of json each, so that stdout stays readable json lines


def prepare_runs(settings: Settings, stack: ExitStack, runs: int = 1, load: "LoadSettings | None" = None
                 ) -> RunContext:
    """Warnings printed, the cost checked, the simulator started if asked, a provider left to measure, models that
    are about to shut down named, storage opened and replayed."""
    from ..check import retiring_models

    human = sys.stderr if settings.json_output else sys.stdout
    for line in settings.warnings + settings.skipped:
        print(line, file=sys.stderr)
    no_provider_left(settings)
    guard_cost(settings, runs, load)
    if settings.simulate:
        from ..simulator import Simulator

        sim = stack.enter_context(Simulator())
        settings = settings.pointed_at({p.name: sim.base_url(p.name) for p in settings.providers}, "sim-key")
    for line in retiring_models(settings):
        print(f"warning: {line}", file=sys.stderr)
    storage = open_storage(settings, stack, lambda line: print(line, file=sys.stderr))
    return RunContext(settings, storage, human)


def one_load_run(context: RunContext, settings: Settings, load: "LoadSettings", stop: GracefulStop) -> RunOutcome:
    """A load run (--concurrency): its levels' lines, and its JSON if asked for."""
    from ..benchmark_runner import RunOutcome
    from ..console import ConsoleReporter, outcome_json
    from .delivery import settle_notes
    from ..load.closed import run_load

    try:
        run, status, results, notes = run_load(settings, load, context.storage, ConsoleReporter(context.human),
                                               stop.requested)
    finally:
        lost = context.storage.settle()
        if lost:
            print_lost(lost, settings.outbox_dir)
    storage = context.storage
    delivery = settle_notes(run.id, results, notes, storage.outbox.waiting_ids(storage.database), lost)
    notes = (*delivery.run_notes, *([f"{len(lost)} writes only printed on stderr"] if lost else []))
    outcome = RunOutcome(run=run, status=status, results=delivery.results, run_notes=notes)
    print(f"\nLoad run {run.id} {status}: {len(results)} requests, {delivery.stored_line(settings.outbox_dir)}",
          file=context.human)
    if settings.json_output:
        print(outcome_json(outcome, None if context.json_lines else 2), flush=True)
    watch_after_run(context, settings, outcome)
    return outcome


def one_run(context: RunContext, settings: Settings, stop: GracefulStop) -> RunOutcome:
    """One run, its summary table, and its JSON if asked for."""
    from ..benchmark_runner import run_benchmark
    from ..console import ConsoleReporter, outcome_json, summary_table

    lost: list[dict[str, object]] = []
    try:
        outcome = run_benchmark(settings, context.storage, ConsoleReporter(context.human), stop.requested)
    finally:
        # Writes held in memory (the database and the outbox both failed) get a last try, even on Ctrl-C.
        lost = context.storage.settle()
        if lost:
            print_lost(lost, settings.outbox_dir)
    if lost:
        outcome = replace(outcome, run_notes=(*outcome.run_notes, f"{len(lost)} writes only printed on stderr"))
    print(file=context.human)
    print(summary_table(outcome), file=context.human)
    if settings.json_output:
        print(outcome_json(outcome, None if context.json_lines else 2), flush=True)
    watch_after_run(context, settings, outcome)
    return outcome


def watch_after_run(context: RunContext, settings: Settings, outcome: RunOutcome) -> None:
    """Judge the alert rules after a run: a line for each alert that starts firing or resolves. Whatever goes wrong
    here is one line and never changes the run's exit status: its results are stored (or in the outbox) already.
    Only Ctrl-C does, as it would at any other moment."""
    if outcome.status == "interrupted":
        return
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    try:
        from ..watch.alerts import describe, evaluate

        evaluation = evaluate(context.storage, settings.watching, run_id=outcome.run.id, host=settings.host,
                              include_simulated=settings.simulate, say=say)
    except Exception as exc:  # the database went away, or a bug: the run stands either way
        say(f"alerts: not evaluated after run {outcome.run.id}: {type(exc).__name__}: {exc}")
        return
    except KeyboardInterrupt:
        raise EvaluationInterrupted(f"interrupted while judging the alert rules after run {outcome.run.id}: the run "
                                    "and its results are stored; `python main.py watch` judges the rules again"
                                    ) from None
    for alert in evaluation.opened:
        print(f"alert FIRING: {describe(alert)}", file=context.human)
    for alert in evaluation.resolved:
        print(f"alert resolved: {describe(alert)}", file=context.human)
