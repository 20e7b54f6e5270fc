"""What a run will send, before anything is sent: a provider left to measure, requests per cell, the plan that
--dry-run shows, and the cost guard (--max-cost)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..settings.model import Settings
from ..errors import ConfigError, NoProvidersError
from ..pricing import format_usd

if TYPE_CHECKING:
    from ..load.levels import LoadSettings


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
    counts = [load.requests_at(level) for level in load.levels]
    if any(count is None for count in counts):
        return None
    prompts = len(settings.measured_workload.prompts)
    return -(-sum(counts) // prompts) * runs  # a level's requests go round its prompts


def print_plan(settings: Settings, runs: int = 1, load: "LoadSettings | None" = None) -> None:
    """`--dry-run`: what the run would send, and the most it could cost; nothing is sent."""
    from ..benchmark_runner import cost_bound, plan
    from ..console import plan_json, plan_lines

    for line in settings.warnings + settings.skipped:
        print(line, file=sys.stderr)
    no_provider_left(settings)
    cells = plan(settings)
    each = requests_per_cell(settings, load, runs)
    bound = cost_bound(cells, each, settings.measured_workload.cache_mode) if each is not None else None
    # With --json, stdout is the plan as json, whatever else is said; the lines for people go to stderr.
    print("\n".join(plan_lines(settings, cells, bound, runs, load)),
          file=sys.stderr if settings.json_output else sys.stdout)
    if settings.json_output:
        print(plan_json(settings, cells, bound, runs, load))


def guard_cost(settings: Settings, runs: int = 1, load: "LoadSettings | None" = None) -> None:
    """A live run that could cost more than --max-cost stops here, before anything is sent."""
    from ..benchmark_runner import cost_bound, plan

    if settings.simulate:
        return
    each = requests_per_cell(settings, load, runs)
    if each is None:
        print("warning: --duration puts no upper bound on what a load run costs (give --requests for one)",
              file=sys.stderr)
        return
    bound = cost_bound(plan(settings), each, settings.measured_workload.cache_mode)
    if bound.usd > settings.max_cost_usd:
        what = f"{bound.requests} requests" + (f" over {runs} runs" if runs > 1 else "")
        raise ConfigError(
            f"this could cost up to {format_usd(bound.usd)} ({what}, every prompt byte a token and every answer as "
            f"long as max_tokens), more than --max-cost {format_usd(settings.max_cost_usd)}: raise --max-cost, or "
            "measure fewer prompts, models, rounds or requests (--dry-run shows the plan)"
        )
