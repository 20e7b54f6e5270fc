"""A process's runs: prepared once (warnings, cost guard, simulator, storage), then one run or one load run at a time,
each followed by its summary, its JSON if asked for, and the alert rules judged on what it stored."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..settings.model import Settings
from ..errors import EvaluationInterrupted
from ..stopping import GracefulStop
from .plan import guard_cost, no_provider_left
from .reporter import Reporter
from .storage import lost_lines, open_storage

if TYPE_CHECKING:
    from ..benchmark_runner import RunOutcome
    from ..load.levels import LoadSettings
    from ..storage.outbox import ResilientStorage


@dataclass(frozen=True)
class RunContext:
    """What every run of a process shares: the final settings, the storage, where its lines go."""

    settings: Settings
    storage: "ResilientStorage"
    reporter: Reporter
    json_lines: bool = False  # --json of several runs: one line of json each, so that stdout stays readable json lines


def prepare_runs(settings: Settings, stack: ExitStack, reporter: Reporter, runs: int = 1,
                 load: "LoadSettings | None" = None) -> RunContext:
    """Warnings said, the cost checked, the simulator started if asked, a provider left to measure, models that
    are about to shut down named, storage opened and replayed."""
    from ..check import retiring_models

    for line in settings.warnings + settings.skipped:
        reporter.warn(line)
    no_provider_left(settings)
    guard_cost(settings, reporter, runs, load)
    if settings.simulate:
        from ..simulator import Simulator

        sim = stack.enter_context(Simulator())
        settings = settings.pointed_at({p.name: sim.base_url(p.name) for p in settings.providers}, "sim-key")
    for line in retiring_models(settings):
        reporter.warn(f"warning: {line}")
    storage = open_storage(settings, stack, reporter.warn)
    return RunContext(settings, storage, reporter)


def one_load_run(context: RunContext, settings: Settings, load: "LoadSettings", stop: GracefulStop) -> RunOutcome:
    """A load run (--concurrency): its levels' lines, and its JSON if asked for."""
    from ..benchmark_runner import RunOutcome
    from ..console import outcome_json
    from ..load.closed import run_load
    from .delivery import settle_notes

    reporter = context.reporter
    try:
        run, status, results, notes = run_load(settings, load, context.storage, reporter.progress(), stop.requested)
    finally:
        lost = context.storage.settle()
        for line in lost_lines(lost, settings.outbox_dir) if lost else ():
            reporter.warn(line)
    storage = context.storage
    delivery = settle_notes(run.id, results, notes, storage.outbox.waiting_ids(storage.database), lost)
    notes = (*delivery.run_notes, *([f"{len(lost)} writes only printed on stderr"] if lost else []))
    outcome = RunOutcome(run=run, status=status, results=delivery.results, run_notes=notes)
    reporter.say(f"\nLoad run {run.id} {status}: {len(results)} requests, {delivery.stored_line(settings.outbox_dir)}")
    if settings.json_output:
        reporter.data(outcome_json(outcome, None if context.json_lines else 2))
    watch_after_run(context, settings, outcome)
    return outcome


def one_run(context: RunContext, settings: Settings, stop: GracefulStop) -> RunOutcome:
    """One run, its summary table, and its JSON if asked for."""
    from ..benchmark_runner import run_benchmark
    from ..console import outcome_json, summary_table

    reporter = context.reporter
    lost: list[dict[str, object]] = []
    try:
        outcome = run_benchmark(settings, context.storage, reporter.progress(), stop.requested)
    finally:
        # Writes held in memory (the database and the outbox both failed) get a last try, even on Ctrl-C.
        lost = context.storage.settle()
        for line in lost_lines(lost, settings.outbox_dir) if lost else ():
            reporter.warn(line)
    if lost:
        outcome = replace(outcome, run_notes=(*outcome.run_notes, f"{len(lost)} writes only printed on stderr"))
    reporter.say()
    reporter.say(summary_table(outcome))
    if settings.json_output:
        reporter.data(outcome_json(outcome, None if context.json_lines else 2))
    watch_after_run(context, settings, outcome)
    return outcome


def watch_after_run(context: RunContext, settings: Settings, outcome: RunOutcome) -> None:
    """Judge the alert rules after a run: a line for each alert that starts firing or resolves. Whatever goes wrong
    here is one line and never changes the run's exit status: its results are stored (or in the outbox) already.
    Only Ctrl-C does, as it would at any other moment."""
    if outcome.status == "interrupted":
        return
    say = context.reporter.warn
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
        context.reporter.say(f"alert FIRING: {describe(alert)}")
    for alert in evaluation.resolved:
        context.reporter.say(f"alert resolved: {describe(alert)}")
