"""`report --by concurrency`: per provider, model and load level, what the system did with that many requests in flight.

Computed from the stored rows (selection.py's Rows), the same on every backend, by figures.level_figures: the function
that gives the console's line when the level ends, so both say the same for the same rows (percentiles by linear
interpolation, "-" below 2 samples, the median from 1). Only rows of load runs count (those with a `concurrency`).

A level's wall time, over which requests/s, output tokens/s and goodput are rates: from its first request's start to
its last request's end (`started_at + latency_ms`; a failure with no latency ends when the driver stored it). When
several runs are selected, each run's level is timed on its own and the times are added, so the hours between two
runs never count. Output tokens a successful request did not report make the level's token rate unknown, never 0.

From runs.summary, where the run stored one, come what the rows cannot tell: where a sweep stopped and why, the
harness's CPU a request, and its warning when it may have set the pace.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import json
from typing import Iterable, Sequence
from uuid import UUID

from ..figures import (
    LEVEL_PERCENTILES, LevelRates, level_figures, number_text, quantiles, round_ms, round_rate, round_s,
)
from ..measurement import Measurement
from ..slo import SloConfig
from .formats import aligned_lines, cell_text, csv_text, markdown_lines, rounded
from .selection import Row, Selection

LAG_PERCENTILES = (50, 99)
RATE_LIMITED = "rate_limit"  # the error type of a 429 (or a provider's own too-many-requests code)
FORMATS = ("table", "json", "csv", "markdown")


@dataclass(frozen=True)
class LevelSweep:
    """What one run's summary says about one provider and model at one level."""

    stopped: str | None  # the reason, when its sweep stopped after this level
    harness_cpu_ms_per_request: float | None
    harness_warning: str | None


@dataclass(frozen=True)
class LevelReport(LevelRates):
    """One provider and model at one concurrency level, over the selected load runs; times in ms, rates per second."""

    provider: str
    model: str
    concurrency: int
    runs: int
    requests: int
    successes: int
    wall_s: float
    output_tokens: int | None  # of the successful requests; None where one did not report its count
    ttft_ms: dict[int, float | None]
    latency_ms: dict[int, float | None]
    errors: tuple[tuple[str, int], ...]  # most first
    ratelimit_remaining_requests_min: int | None
    ratelimit_remaining_tokens_min: int | None
    start_lag_ms: dict[int, float | None]
    harness_cpu_ms_per_request: float | None
    harness_warnings: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()  # why a sweep stopped after this level, one reason per run that stopped here
    slo_met: int | None = None  # requests within every per-request SLO target; None where none is set

    @property
    def goodput_per_s(self) -> float | None:
        """Requests per second that met every per-request SLO target (DistServe's goodput)."""
        return self.rate(self.slo_met)

    @property
    def error_rate(self) -> float:
        return (self.requests - self.successes) / self.requests if self.requests else 0.0

    @property
    def rate_limited_rate(self) -> float:
        """The share of requests refused with 429 (error type rate_limit)."""
        return dict(self.errors).get(RATE_LIMITED, 0) / self.requests if self.requests else 0.0

    @property
    def slo_met_rate(self) -> float | None:
        return None if self.slo_met is None or not self.requests else self.slo_met / self.requests


def load_rows(rows: Iterable[Row]) -> list[Row]:
    """The rows of load runs: those that record the level they were made at."""
    return [row for row in rows if row.result.measurement.concurrency is not None]


def sweep_levels(rows: Iterable[Row]) -> dict[tuple[UUID, str, str, int], LevelSweep]:
    """Per run, provider, model and level: what the run's summary stored about it (nothing if it stored none)."""
    found: dict[tuple[UUID, str, str, int], LevelSweep] = {}
    runs = {row.run.info.id: row.run for row in rows}
    for run_id, run in runs.items():
        load = (run.summary or {}).get("load")
        for sweep in (load or {}).get("sweeps", []) if isinstance(load, dict) else []:
            levels = sweep.get("levels") or []
            for index, level in enumerate(levels):
                last = index == len(levels) - 1
                found[(run_id, sweep.get("provider"), sweep.get("model"), level.get("concurrency"))] = LevelSweep(
                    stopped=sweep.get("stopped") if last else None,
                    harness_cpu_ms_per_request=level.get("harness_cpu_ms_per_request"),
                    harness_warning=level.get("harness_bottleneck"),
                )
    return found


def _quantiles(values: Sequence[float], qs: Sequence[int]) -> dict[int, float | None]:
    return quantiles(values, qs)


def _smallest(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _level(provider: str, model: str, concurrency: int, rows: Sequence[Row],
           sweeps: dict[tuple[UUID, str, str, int], LevelSweep], slo: SloConfig) -> LevelReport:
    measurements: list[Measurement] = [row.result.measurement for row in rows]
    figures = level_figures([(row.run.info.id, row.result.measurement, row.result.created_at) for row in rows],
                            LEVEL_PERCENTILES)
    run_ids = sorted({row.run.info.id for row in rows}, key=str)
    stored = {run_id: s for run_id in run_ids if (s := sweeps.get((run_id, provider, model, concurrency)))}
    requests_in = Counter(row.run.info.id for row in rows)
    # The harness's CPU is stored per run's level: weighted by each run's requests there.
    cpu = [(s.harness_cpu_ms_per_request, requests_in[run_id])
           for run_id, s in stored.items() if s.harness_cpu_ms_per_request is not None]
    targets = slo.for_model(provider, model)
    return LevelReport(
        provider=provider, model=model, concurrency=concurrency, runs=len(run_ids),
        requests=figures.requests, successes=figures.successes, wall_s=figures.wall_s,
        output_tokens=figures.output_tokens, ttft_ms=figures.ttft_ms, latency_ms=figures.latency_ms,
        errors=tuple(Counter(m.error_type or "unknown" for m in measurements if not m.success).most_common()),
        ratelimit_remaining_requests_min=_smallest(m.ratelimit_remaining_requests for m in measurements),
        ratelimit_remaining_tokens_min=_smallest(m.ratelimit_remaining_tokens for m in measurements),
        start_lag_ms=_quantiles([m.start_lag_ms for m in measurements if m.start_lag_ms is not None],
                                LAG_PERCENTILES),
        harness_cpu_ms_per_request=(sum(c * n for c, n in cpu) / sum(n for _, n in cpu)) if cpu else None,
        harness_warnings=tuple(dict.fromkeys(s.harness_warning for s in stored.values() if s.harness_warning)),
        stopped=tuple(s.stopped for s in stored.values() if s.stopped),
        slo_met=sum(targets.met_by(m) for m in measurements) if targets.per_request else None,
    )


def by_concurrency(rows: Iterable[Row], slo: SloConfig = SloConfig()) -> list[LevelReport]:
    """Per provider and model (by name), its levels in order: the load runs' figures, with goodput where SLOs are
    set."""
    selected = load_rows(rows)
    groups: dict[tuple[str, str, int], list[Row]] = {}
    for row in selected:
        m = row.result.measurement
        assert m.concurrency is not None
        groups.setdefault((m.provider, m.model, m.concurrency), []).append(row)
    sweeps = sweep_levels(selected)
    return [_level(provider, model, concurrency, groups[(provider, model, concurrency)], sweeps, slo)
            for provider, model, concurrency in sorted(groups)]


# ---- output -----------------------------------------------------------------------------------------------------

def level_fields(level: LevelReport) -> dict[str, object]:
    """The fields json and csv carry, units in their names."""
    values: dict[str, object] = {
        "provider": level.provider,
        "model": level.model,
        "concurrency": level.concurrency,
        "runs": level.runs,
        "requests": level.requests,
        "successes": level.successes,
        "wall_s": round_s(level.wall_s),
        "requests_per_s": round_rate(level.requests_per_s),
        "output_tokens_per_s": round_rate(level.output_tokens_per_s),
    }
    for name, values_ms in (("ttft", level.ttft_ms), ("latency", level.latency_ms)):
        for q in LEVEL_PERCENTILES:
            values[f"{name}_p{q}_ms"] = round_ms(values_ms[q])
    values.update({
        "error_rate": round(level.error_rate, 4),
        "rate_limited_rate": round(level.rate_limited_rate, 4),
        "errors": ", ".join(f"{name} x{count}" for name, count in level.errors),
        "ratelimit_remaining_requests_min": level.ratelimit_remaining_requests_min,
        "ratelimit_remaining_tokens_min": level.ratelimit_remaining_tokens_min,
    })
    for q in LAG_PERCENTILES:
        values[f"start_lag_p{q}_ms"] = rounded(level.start_lag_ms[q])
    values["harness_cpu_ms_per_request"] = rounded(level.harness_cpu_ms_per_request)
    values["harness_warning"] = "; ".join(level.harness_warnings) or None
    values["slo_met_rate"] = rounded(level.slo_met_rate, 4)
    values["goodput_per_s"] = round_rate(level.goodput_per_s)
    values["stopped"] = "; ".join(level.stopped) or None
    return values


def _table(levels: Sequence[LevelReport]) -> tuple[list[str], list[list[str]]]:
    quantiles = "/".join(f"p{q}" for q in LEVEL_PERCENTILES)
    with_slo = any(level.slo_met is not None for level in levels)
    header = (["provider", "model", "in flight", "requests", "req/s", "out tok/s", f"TTFT ms {quantiles}",
               f"latency ms {quantiles}", "err %", "429 %", "errors", "ratelimit left req/tok", "lag ms p50/p99",
               "CPU ms/req"] + (["SLO met %", "goodput/s"] if with_slo else []) + [""])
    rows = []
    for level in levels:
        met = level.slo_met_rate
        rows.append(
            [level.provider, level.model, str(level.concurrency), str(level.requests),
             number_text(round_rate(level.requests_per_s)), number_text(round_rate(level.output_tokens_per_s)),
             " / ".join(cell_text(level.ttft_ms[q]) for q in LEVEL_PERCENTILES),
             " / ".join(cell_text(level.latency_ms[q]) for q in LEVEL_PERCENTILES),
             f"{level.error_rate * 100:.0f}", f"{level.rate_limited_rate * 100:.0f}",
             ", ".join(f"{name} x{count}" for name, count in level.errors) or "-",
             f"{cell_text(level.ratelimit_remaining_requests_min)} / {cell_text(level.ratelimit_remaining_tokens_min)}",
             " / ".join(cell_text(level.start_lag_ms[q]) for q in LAG_PERCENTILES),
             cell_text(level.harness_cpu_ms_per_request)]
            + ([cell_text(None if met is None else met * 100), number_text(round_rate(level.goodput_per_s))]
               if with_slo else [])
            + ["stopped" if level.stopped else ""]
        )
    return header, rows


def _notes(levels: Sequence[LevelReport]) -> list[str]:
    """Why sweeps stopped, and where the harness may have set the pace: too long for a column."""
    notes = [f"{level.provider} / {level.model}: the sweep stopped after concurrency {level.concurrency}: {reason}"
             for level in levels for reason in level.stopped]
    notes += [f"{level.provider} / {level.model} at concurrency {level.concurrency}: the harness may have set the "
              f"pace ({warning})" for level in levels for warning in level.harness_warnings]
    return notes


DEFINITIONS = (
    "rates over each level's wall time, from its first request's start to its last one's end; out tok/s: output "
    "tokens of successful requests ('-' where one did not report them); rates to 4 significant digits; times over "
    "successful requests, percentiles by linear interpolation, '-' below 2 samples (the median: 1); 429 %: requests "
    "refused as rate_limit; ratelimit left: the fewest x-ratelimit-remaining-requests / -tokens seen; lag: how late "
    "the harness started requests; CPU: the harness's own, a request"
)


def format_levels_table(levels: Sequence[LevelReport], title: str) -> str:
    header, rows = _table(levels)
    lines = [title, *aligned_lines(header, rows, ("provider", "model", "errors", "")), *_notes(levels)]
    lines.append(DEFINITIONS + ("; goodput: requests a second within every per-request SLO target"
                                if any(level.slo_met is not None for level in levels) else ""))
    return "\n".join(lines)


def format_levels_markdown(levels: Sequence[LevelReport], title: str) -> str:
    header, rows = _table(levels)
    header[-1] = "stopped"
    lines = markdown_lines(title, header, rows)
    notes = _notes(levels)
    return "\n".join(lines + ([""] + [f"- {note}" for note in notes] if notes else []))


def format_levels_csv(levels: Sequence[LevelReport]) -> str:
    return csv_text([level_fields(level) for level in levels])


def format_levels_json(levels: Sequence[LevelReport], title: str, selection: Selection, rows: Sequence[Row]) -> str:
    return json.dumps(
        {
            "title": title,
            "selection": selection.describe(),
            "results": len(load_rows(rows)),
            "runs": len({row.run.info.id for row in load_rows(rows)}),
            "definitions": DEFINITIONS,
            "levels": [level_fields(level) for level in levels],
        },
        indent=2,
    )


NO_LOAD_RUNS = ("no load runs match: `report --by concurrency` reads the levels of load runs "
                "(python main.py --concurrency 1,2,4,8)")


def format_levels_csv_header() -> str:
    """What csv prints for no level: the header alone, so that a machine still reads csv."""
    none = {q: None for q in (*LEVEL_PERCENTILES, *LAG_PERCENTILES)}
    empty = LevelReport("", "", 0, 0, 0, 0, 0.0, None, none, none, (), None, None, none, None)
    return csv_text([], list(level_fields(empty)))


def render(rows: Sequence[Row], output: str, title: str, selection: Selection, slo: SloConfig = SloConfig()) -> str:
    """The concurrency report in one of FORMATS; with no load run among the rows, json and csv with no level, the
    table and markdown one line saying so."""
    levels = by_concurrency(rows, slo)
    if not levels and output == "csv":
        return format_levels_csv_header()
    if not levels and output != "json":
        return NO_LOAD_RUNS + "\n"
    if output == "json":
        return format_levels_json(levels, title, selection, rows) + "\n"
    if output == "csv":
        return format_levels_csv(levels)
    if output == "markdown":
        return format_levels_markdown(levels, title) + "\n"
    return format_levels_table(levels, title) + "\n"
