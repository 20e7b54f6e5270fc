"""What a run will send, before anything is sent: a provider left to measure, requests per cell, the plan that
--dry-run shows, and the cost guard (--max-cost)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..settings.model import Settings
from ..errors import ConfigError, NoProvidersError
from ..pricing import format_usd

if TYPE_CHECKING:
    from ..load.levels import LoadSettings
    from .reporter import Reporter


def no_provider_left(settings: Settings) -> None:
    if not settings.providers:
        raise NoProvidersError(
            "no provider left to measure: put keys in .env (see .env.example), "
            "or run `python main.py --simulate` to try the tool without keys"
        )


def requests_per_cell(settings: Settings, load: "LoadSettings | None", runs: int = 1) -> int | None:
    """How many requests each cell of the plan gets, at most; None when a load run's time, not a count, bounds it."""
    if load is None:
        return settings.repeat * runs
    counts = load.planned()
    if any(count is None for count in counts):
        return None
    prompts = len(settings.measured_workload.prompts)
    return -(-sum(counts) // prompts) * runs  # a level's requests go round its prompts


def show_plan(settings: Settings, reporter: "Reporter", runs: int = 1, load: "LoadSettings | None" = None) -> None:
    """`--dry-run`: what the run would send, and the most it could cost; nothing is sent."""
    from ..benchmark_runner import cost_bound, plan
    from ..console import plan_json, plan_lines

    for line in settings.warnings + settings.skipped:
        reporter.warn(line)
    no_provider_left(settings)
    cells = plan(settings)
    each = requests_per_cell(settings, load, runs)
    bound = cost_bound(cells, each, settings.measured_workload.cache_mode) if each is not None else None
    # With --json, stdout is the plan as json, whatever else is said; the lines for people go to stderr.
    reporter.say("\n".join(plan_lines(settings, cells, bound, runs, load)))
    if settings.json_output:
        reporter.data(plan_json(settings, cells, bound, runs, load))


def guard_cost(settings: Settings, reporter: "Reporter", runs: int = 1, load: "LoadSettings | None" = None) -> None:
    """A live run that could cost more than --max-cost stops here, before anything is sent."""
    from ..benchmark_runner import cost_bound, plan

    if settings.simulate:
        return
    each = requests_per_cell(settings, load, runs)
    if each is None:
        reporter.warn("warning: --duration puts no upper bound on what a load run costs (give --requests for one)")
        return
    bound = cost_bound(plan(settings), each, settings.measured_workload.cache_mode)
    if bound.usd > settings.max_cost_usd:
        what = f"{bound.requests} requests" + (f" over {runs} runs" if runs > 1 else "")
        raise ConfigError(
            f"this could cost up to {format_usd(bound.usd)} ({what}, every prompt byte a token and every answer as "
            f"long as max_tokens), more than --max-cost {format_usd(settings.max_cost_usd)}: raise --max-cost, or "
            "measure fewer prompts, models, rounds or requests (--dry-run shows the plan)"
        )
