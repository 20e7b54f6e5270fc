"""The whole selection's figures, kept between builds in one process (`run_scheduled.py --site`, `main.py serve`):
results are only ever added, so what an earlier build gathered stands, and a rebuild reads only the results stored
since (SQLite, by rowid). The figures are made by the report's own summary_of from the same values, so they stay
exactly `report --format json`'s; a database that lost a result, or another in its place, is read whole again."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Sequence

from ..figures import quantiles, round_ms
from ..report.groups import GROUP_KEYS
from ..report.selection import Selection
from ..report.statistics import Summary, arrange
from ..report.views import summarise_stored
from ..storage import GroupValues, ResultFilters, SelectionSpan, Storage
from ..storage.report_read import DayValues
from .history import history_chart, history_step

KEPT_SELECTIONS = 4  # a process builds one site, or a few: older selections are dropped first


@dataclass
class _Model:
    """What the summary of one provider and model is made from, its value lists sorted (the next sort is cheap)."""

    requests: int = 0
    successes: int = 0
    ttft_ms: array = field(default_factory=lambda: array("d"))
    latency_ms: array = field(default_factory=lambda: array("d"))
    tokens_per_second: array = field(default_factory=lambda: array("d"))
    costs: Counter = field(default_factory=Counter)
    error_types: Counter = field(default_factory=Counter)
    upstream_providers: Counter = field(default_factory=Counter)
    answers_judged: int = 0
    answers_correct: int = 0


@dataclass
class _Kept:
    mark: tuple[int, str, int] | None = None
    models: dict[tuple[str, str], _Model] = field(default_factory=dict)
    run_ids: set[str] = field(default_factory=set)
    results: int = 0
    first: str | None = None
    last: str | None = None
    # Per provider and model, per day (UTC): the successful requests' TTFT and latency, for the whole history's chart
    days: dict[tuple[str, str], dict[str, tuple[array, array]]] = field(default_factory=dict)
    # Per bucket length: each (provider, model, bucket start)'s median TTFT and latency; a new result's bucket is
    # dropped here and made again from its days
    medians: dict[int, dict[tuple[str, str, int], tuple[float | None, float | None]]] = field(default_factory=dict)


_KEPT: dict[tuple, _Kept] = {}


def _merged(values: array, new: Sequence[float], keep: bool) -> Sequence[float]:
    """The kept values with the new ones: sorted, in an array of doubles, to keep (the next sort is cheap); as they
    come for one build (the summary selects its ranks once, as `report` does)."""
    if not new:
        return values
    if not values and not keep:
        return new
    merged = array("d", values)
    merged.extend(new)
    return array("d", sorted(merged)) if keep else merged


_EPOCH_DAY = date(1970, 1, 1).toordinal()


def _day_start(day: str) -> int:
    """The start of a day ("2026-12-07", UTC) in seconds since 1970; by the calendar's day number, called for every
    day of a long history."""
    return (date.fromisoformat(day).toordinal() - _EPOCH_DAY) * 86400


def _add(kept: _Kept, groups: list[GroupValues], days: DayValues, run_ids: set[str], span: SelectionSpan | None,
         keep: bool) -> None:
    """What was stored since the mark (values per provider and model, their TTFT and latency per day) into what was
    kept."""
    for g in groups:
        model = kept.models.setdefault((g.provider, g.model), _Model())
        model.requests += g.requests
        model.successes += g.successes
        model.costs.update(g.costs)
        model.error_types.update(g.error_types)
        model.upstream_providers.update(g.upstream_providers)
        model.answers_judged += g.answers_judged
        model.answers_correct += g.answers_correct
        model.ttft_ms = _merged(model.ttft_ms, g.ttft_ms, keep)
        model.latency_ms = _merged(model.latency_ms, g.latency_ms, keep)
        model.tokens_per_second = _merged(model.tokens_per_second, g.tokens_per_second, keep)
    for (_, provider, name), by_day in days.items():
        kept_days = kept.days.setdefault((provider, name), {})
        for day, (ttfts, latencies) in by_day.items():
            gathered = kept_days.setdefault(day, (array("d"), array("d")))
            gathered[0].extend(ttfts)
            gathered[1].extend(latencies)
            for step, medians in kept.medians.items():  # the kept median of the bucket holding the day is made again
                medians.pop((provider, name, _day_start(day) // step * step), None)
    kept.run_ids |= run_ids
    if span is not None:
        kept.results += span.results
        first, last = str(span.first), str(span.last)
        kept.first = first if kept.first is None else min(kept.first, first)
        kept.last = last if kept.last is None else max(kept.last, last)


def _values(provider: str, model: str, kept: _Model) -> GroupValues:
    costs: dict[tuple[Decimal, int | None], int] = dict(kept.costs)
    return GroupValues(None, provider, model, kept.requests, kept.successes, kept.ttft_ms, kept.latency_ms,
                       kept.tokens_per_second, costs, list(kept.error_types.elements()),
                       list(kept.upstream_providers.elements()), kept.answers_judged, kept.answers_correct)


def whole_summaries(storage: Storage, selection: Selection, end: datetime, keep: bool = False
                    ) -> tuple[list[Summary], SelectionSpan | None, dict[str, Any] | None] | None:
    """summarise_stored(storage, selection), from what earlier builds in this process gathered and what is new (with
    `keep`: a process that builds again), and the chart of the whole history (None where the backend cannot tell what
    is new).

    Only a selection open in time (no --since, --until, --run, --last) is kept: its results are all of the ones
    stored, less a filter that a new result cannot change for the old ones."""
    reader = getattr(storage, "read_group_values_after", None)
    if reader is None or selection.since or selection.until or selection.last or selection.run_ids is not None:
        gathered = summarise_stored(storage, selection)
        return None if gathered is None else (*gathered, None)
    key = (type(storage).__name__, getattr(storage, "location", None), selection.providers, selection.models,
           selection.include_simulated)
    filters = ResultFilters(providers=selection.providers, models=selection.models,
                            include_simulated=selection.include_simulated)
    kept = _KEPT.pop(key, None) if keep else None
    read = reader(filters, kept.mark) if kept is not None else None
    if read is None:
        kept = _Kept()
        read = reader(filters, None)
    groups, days, run_ids, new_span, kept.mark = read
    _add(kept, groups, days, run_ids, new_span, keep)
    if keep:
        _KEPT[key] = kept
    while len(_KEPT) > KEPT_SELECTIONS:
        del _KEPT[next(iter(_KEPT))]
    if not kept.results or kept.first is None or kept.last is None:
        return [], None, None
    span = SelectionSpan(kept.results, len(kept.run_ids), datetime.fromisoformat(kept.first),
                         datetime.fromisoformat(kept.last))
    values = [_values(provider, model, m) for (provider, model), m in kept.models.items()]
    return arrange(values, GROUP_KEYS["provider"]), span, _history(kept, span.first, end)


def _history(kept: _Kept, first: datetime, end: datetime) -> dict[str, Any]:
    """The median TTFT and latency of each provider and model per day (or week, or longer: at most CHART_BUCKETS
    buckets) over the whole history, as the site's charts take a series."""
    step = history_step(first, end)
    medians = kept.medians.setdefault(step, {})
    for (provider, model), days in kept.days.items():
        pending: dict[int, tuple[array, array]] = {}
        for day, (ttfts, latencies) in days.items():
            bucket = _day_start(day) // step * step
            if (provider, model, bucket) not in medians and (ttfts or latencies):
                gathered = pending.setdefault(bucket, (array("d"), array("d")))
                gathered[0].extend(ttfts)
                gathered[1].extend(latencies)
        for bucket, (ttfts, latencies) in pending.items():
            medians[(provider, model, bucket)] = (round_ms(quantiles(ttfts, (50,))[50]),
                                                  round_ms(quantiles(latencies, (50,))[50]))
    return history_chart(medians, kept.days, step)
