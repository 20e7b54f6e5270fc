"""`report --by rate`: per provider, model and open-loop arrival rate, what the provider did with requests that arrived
on their own schedule (the rows of `--rate` runs: those with a `request_rate`).

The response time is counted from the scheduled start: latency + start lag (+ earlier attempts and their back-off
with --retries), so a harness that fell behind its
schedule (or a request that waited for a free slot under --max-concurrency) never hides its delay (no coordinated
omission); the latency beside it is the service time, from the actual start. Achieved requests/s is the rate
requests really started at: (requests - 1) over the time from the first start to the last, per run, added over the
runs; output tokens/s is over each run's level wall time (first start to last end), as `--by concurrency` has it.
Times over successful requests, percentiles as every report has them (figures.py). A rate the run judged
harness-bound (levels.py: start lags high, growing, or waiting for a slot) says so, with the reason.

Where benchmark.toml's [slo] sets a per-request target, each rate gains its goodput: the share of its requests that
met every target (failures never do) and those requests per second of its wall time (as `--by concurrency` has it).
An open loop's request is judged as its user waited, from its scheduled start: its TTFT and latency each plus its
start lag (a harness that fell behind never passes a late answer off as on time); tokens/s as measured.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
import json
from typing import Hashable, Iterable, Sequence

from ..figures import LEVEL_PERCENTILES, level_figures, number_text, quantiles, round_ms, round_rate, round_s
from .formats import aligned_lines, cell_text, csv_text, markdown_lines
from ..measurement import Measurement
from ..slo import SloConfig
from .load import LAG_PERCENTILES, RATE_LIMITED
from .selection import Row, Selection

NO_RATE_RUNS = "no open-loop runs match: `report --by rate` reads the rates of --rate runs (python main.py --rate 1,5,20)"


@dataclass(frozen=True)
class RateReport:
    """One provider and model at one arrival rate, over the selected runs; times in ms, rates per second."""

    provider: str
    model: str
    request_rate: float
    runs: int
    requests: int
    successes: int
    achieved_requests_per_s: float | None
    output_tokens_per_s: float | None
    wall_s: float
    ttft_ms: dict[int, float | None]
    latency_ms: dict[int, float | None]
    response_ms: dict[int, float | None]  # from the scheduled start: latency + waited_ms
    rate_limited: int
    errors: tuple[tuple[str, int], ...]  # other than 429s, most first
    start_lag_ms: dict[int, float | None]
    harness_bound: tuple[str, ...]  # the runs' reasons, where a run judged the harness set this rate's pace
    slo_met: int | None = None  # requests within every per-request SLO target, from the scheduled start; None: unset

    @property
    def slo_met_rate(self) -> float | None:
        return None if self.slo_met is None or not self.requests else self.slo_met / self.requests

    @property
    def goodput_per_s(self) -> float | None:
        """Requests per second of the rate's wall time that met every per-request SLO target."""
        return None if self.slo_met is None or self.wall_s <= 0 else self.slo_met / self.wall_s


def rate_rows(rows: Iterable[Row]) -> list[Row]:
    return [row for row in rows if row.result.measurement.request_rate is not None]


def _harness_reasons(rows: Sequence[Row], provider: str, model: str, rate: float) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for run in {row.run.info.id: row.run for row in rows}.values():
        load = (run.summary or {}).get("load")
        for sweep in (load or {}).get("sweeps", []) if isinstance(load, dict) else []:
            if sweep.get("provider") != provider or sweep.get("model") != model:
                continue
            for level in sweep.get("levels") or []:
                if level.get("request_rate") == rate and level.get("harness_bottleneck"):
                    found[str(level["harness_bottleneck"])] = None
    return tuple(found)


def _achieved(rows: Sequence[Row]) -> float | None:
    spans: dict[Hashable, list[datetime]] = {}
    for row in rows:
        spans.setdefault(row.run.info.id, []).append(row.result.measurement.started_at)
    gaps = sum(len(starts) - 1 for starts in spans.values())
    seconds = sum((max(starts) - min(starts)).total_seconds() for starts in spans.values())
    return gaps / seconds if gaps and seconds > 0 else None


def waited_ms(m: Measurement) -> float:
    """From a request's scheduled start to the start of its attempt that counted: its start lag, and after retries
    the earlier attempts and their back-off too (from the stored wall-clock times: the row's times are its last
    attempt's), so that no retry hides a wait."""
    lag = m.start_lag_ms or 0.0
    if (m.attempts or 1) > 1 and m.scheduled_at is not None and m.started_at is not None:
        return max(lag, (m.started_at - m.scheduled_at).total_seconds() * 1000)
    return lag


def from_scheduled_start(m: Measurement) -> Measurement:
    """The request as its user waited for it: TTFT and latency from its scheduled start (waited_ms before them)."""
    waited = waited_ms(m)
    return replace(m, ttft_ms=None if m.ttft_ms is None else m.ttft_ms + waited,
                   latency_ms=None if m.latency_ms is None else m.latency_ms + waited)


def _rate(provider: str, model: str, rate: float, rows: Sequence[Row], slo: SloConfig) -> RateReport:
    ms = [row.result.measurement for row in rows]
    targets = slo.for_model(provider, model)
    figures = level_figures([(row.run.info.id, row.result.measurement, row.result.created_at) for row in rows],
                            LEVEL_PERCENTILES)
    failed = Counter(m.error_type or "unknown" for m in ms if not m.success)
    return RateReport(
        provider=provider, model=model, request_rate=rate, runs=len({row.run.info.id for row in rows}),
        requests=figures.requests, successes=figures.successes, achieved_requests_per_s=_achieved(rows),
        output_tokens_per_s=figures.output_tokens_per_s, wall_s=figures.wall_s,
        ttft_ms=figures.ttft_ms, latency_ms=figures.latency_ms,
        response_ms=quantiles((m.latency_ms + waited_ms(m) for m in ms if m.success and m.latency_ms is not None),
                              LEVEL_PERCENTILES),
        rate_limited=failed.pop(RATE_LIMITED, 0), errors=tuple(failed.most_common()),
        start_lag_ms=quantiles((m.start_lag_ms for m in ms if m.start_lag_ms is not None), LAG_PERCENTILES),
        harness_bound=_harness_reasons(rows, provider, model, rate),
        slo_met=sum(targets.met_by(from_scheduled_start(m)) for m in ms) if targets.per_request else None,
    )


def by_rate(rows: Iterable[Row], slo: SloConfig = SloConfig()) -> list[RateReport]:
    """Per provider and model (by name), its rates in order; goodput where SLOs are set."""
    groups: dict[tuple[str, str, float], list[Row]] = {}
    for row in rate_rows(rows):
        m = row.result.measurement
        assert m.request_rate is not None
        groups.setdefault((m.provider, m.model, m.request_rate), []).append(row)
    return [_rate(provider, model, rate, groups[(provider, model, rate)], slo) for provider, model, rate in sorted(groups)]


def rate_fields(level: RateReport) -> dict[str, object]:
    """The fields json and csv carry, units in their names."""
    values: dict[str, object] = {
        "provider": level.provider, "model": level.model, "request_rate": level.request_rate, "runs": level.runs,
        "requests": level.requests, "successes": level.successes, "wall_s": round_s(level.wall_s),
        "achieved_requests_per_s": round_rate(level.achieved_requests_per_s),
        "output_tokens_per_s": round_rate(level.output_tokens_per_s),
    }
    for name, found in (("ttft", level.ttft_ms), ("latency", level.latency_ms), ("response", level.response_ms)):
        for q in LEVEL_PERCENTILES:
            values[f"{name}_p{q}_ms"] = round_ms(found[q])
    values["rate_limited"] = level.rate_limited
    values["errors"] = ", ".join(f"{name} x{count}" for name, count in level.errors)
    for q in LAG_PERCENTILES:
        values[f"start_lag_p{q}_ms"] = round_ms(level.start_lag_ms[q])
    values["harness_bound"] = "; ".join(level.harness_bound) or None
    values["slo_met_rate"] = None if level.slo_met_rate is None else round(level.slo_met_rate, 4)
    values["goodput_per_s"] = round_rate(level.goodput_per_s)
    return values


def _table(levels: Sequence[RateReport]) -> tuple[list[str], list[list[str]]]:
    """The table's cells: each time from its raw figure, rounded once, by cell_text (round_ms first rounded a p50 of
    0.2549 ms to 0.25, then cell_text to 0.2)."""
    qs = "/".join(f"p{q}" for q in LEVEL_PERCENTILES)
    header = ["provider", "model", "rate/s", "requests", "achieved req/s", "out tok/s", f"TTFT ms {qs}",
              f"latency ms {qs}", f"response ms {qs}", "429", "errors", "lag ms p50/p99"]
    with_slo = any(level.slo_met is not None for level in levels)
    header += (["SLO met %", "goodput/s"] if with_slo else []) + [""]
    rows = [[level.provider, level.model, number_text(level.request_rate), str(level.requests),
             number_text(round_rate(level.achieved_requests_per_s)), number_text(round_rate(level.output_tokens_per_s)),
             *(" / ".join(cell_text(found[q]) for q in LEVEL_PERCENTILES)
               for found in (level.ttft_ms, level.latency_ms, level.response_ms)),
             str(level.rate_limited), ", ".join(f"{name} x{count}" for name, count in level.errors) or "-",
             " / ".join(cell_text(level.start_lag_ms[q]) for q in LAG_PERCENTILES),
             *([cell_text(None if level.slo_met_rate is None else level.slo_met_rate * 100),
                number_text(round_rate(level.goodput_per_s))] if with_slo else []),
             "harness-bound" if level.harness_bound else ""] for level in levels]
    return header, rows


def _notes(levels: Sequence[RateReport]) -> list[str]:
    return [f"{level.provider} / {level.model} at {level.request_rate:g} requests/s: harness-bound, the harness "
            f"set the pace, not the provider ({reason})" for level in levels for reason in level.harness_bound]


DEFINITIONS = (
    "achieved req/s: requests started over the time from the first start to the last; out tok/s over each level's "
    "first start to last end; response: from the scheduled start (latency + start lag, and the earlier attempts "
    "with --retries: no coordinated omission); "
    "lag: actual start minus scheduled; 429: requests refused as rate_limit, apart from the other errors"
)


GOODPUT_DEFINITION = ("; SLO met, goodput: requests within every per-request [slo] target, judged from the scheduled "
                      "start (TTFT and latency plus the start lag), as a share and per second of the wall time")


def render(rows: Sequence[Row], output: str, title: str, selection: Selection, slo: SloConfig = SloConfig()) -> str:
    """The rate report in table, markdown, json or csv; with no open-loop run, json and csv with no rate."""
    levels = by_rate(rows, slo)
    definitions = DEFINITIONS + (GOODPUT_DEFINITION if any(level.slo_met is not None for level in levels) else "")
    if output == "json":
        return json.dumps({"title": title, "selection": selection.describe(), "results": len(rate_rows(rows)),
                           "definitions": definitions, "rates": [rate_fields(level) for level in levels]},
                          indent=2) + "\n"
    if output == "csv":
        none = {q: None for q in (*LEVEL_PERCENTILES, *LAG_PERCENTILES)}
        empty = RateReport("", "", 0.0, 0, 0, 0, None, None, 0.0, none, none, none, 0, (), none, ())
        return csv_text([rate_fields(level) for level in levels], list(rate_fields(empty)))  # no rate: the header
    if not levels:
        return NO_RATE_RUNS + "\n"
    header, table = _table(levels)
    if output == "markdown":
        notes = _notes(levels)
        return "\n".join(markdown_lines(title, header, table) + ([""] + [f"- {n}" for n in notes] if notes else [])) + "\n"
    return "\n".join([title, *aligned_lines(header, table, ("provider", "model", "errors", "")), *_notes(levels),
                      definitions]) + "\n"
