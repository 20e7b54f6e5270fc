"""The chart of a selection's whole history, for a history that reaches back beyond the rows the site reads (its last
30 days): the median TTFT and latency of each provider and model per day, or per week or longer where days would make
more than CHART_BUCKETS points. Gathered where the figures already are, on every backend: SQLite's pass that keeps
what it read (whole.py), the database's own medians (PostgreSQL's percentile_cont, per bucket), or the rows a build
read whole anyway (Supabase, whose REST API runs no percentile; a leaderboard with SLO targets). Each way gives the
same medians of the same values: figures.percentile's, rounded as every output rounds them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from ..figures import quantiles, round_ms
from ..report.selection import Row, Selection
from ..storage import BucketMedians, ResultFilters, Storage
from .keys import model_key

# A chart draws at most this many time buckets per window, each the median of its requests: 30 days of 15-minute
# runs stays a few kB per model, and one request per bucket is drawn as it is.
CHART_BUCKETS = 360
# The whole history's chart: a bucket of a day, or longer where a day would make more than CHART_BUCKETS of them
HISTORY_STEPS_S = (86400, 7 * 86400, 28 * 86400, 91 * 86400)


def history_step(first: datetime, end: datetime) -> int:
    """The bucket of the whole history's chart from its first result to `end`: a day, unless that makes too many."""
    span_s = (end - first).total_seconds()
    return next((s for s in HISTORY_STEPS_S if span_s / s <= CHART_BUCKETS), HISTORY_STEPS_S[-1])


def history_chart(medians: BucketMedians, pairs: Iterable[tuple[str, str]], step: int) -> dict[str, Any]:
    """The rounded medians per (provider, model, bucket start) as the site's charts take a series: one time axis of
    the buckets that hold a value, a line per provider and model that has one."""
    used = sorted({bucket for (_, _, bucket) in medians})
    series = {}
    for provider, model in pairs:
        shown = [medians.get((provider, model, bucket), (None, None)) for bucket in used]
        if any(t is not None or l is not None for t, l in shown):
            series[model_key(provider, model)] = {"ttft_p50_ms": [t for t, _ in shown],
                                                  "latency_p50_ms": [l for _, l in shown]}
    return {"step_s": step, "start": used[0] if used else 0, "end": used[-1] + step if used else 0, "times": used,
            "models": series, "rolling_s": None}


def stored_history(storage: Storage, selection: Selection, first: datetime, end: datetime) -> dict[str, Any] | None:
    """The chart from the medians the database gathers for the selection (first: its first result's time); None where
    the backend cannot gather them."""
    step = history_step(first, end)
    filters = ResultFilters(since=selection.since, until=selection.until, providers=selection.providers,
                            models=selection.models, run_ids=selection.run_ids, newest_run=selection.last,
                            include_simulated=selection.include_simulated)
    gathered = storage.read_bucket_medians(filters, step)
    if gathered is None:
        return None
    medians = {key: (round_ms(ttft), round_ms(latency)) for key, (ttft, latency) in gathered.items()
               if ttft is not None or latency is not None}
    return history_chart(medians, sorted({(provider, model) for provider, model, _ in medians}), step)


def rows_history(rows: Sequence[Row], end: datetime) -> dict[str, Any]:
    """The chart from the selection's rows (oldest first, at least one), each bucket's medians taken here."""
    step = history_step(rows[0].result.created_at, end)
    gathered: dict[tuple[str, str, int], tuple[list[float], list[float]]] = {}
    pairs: dict[tuple[str, str], None] = {}
    for row in rows:
        m = row.result.measurement
        pairs[(m.provider, m.model)] = None
        if not m.success:
            continue
        bucket = int(row.result.created_at.timestamp()) // step * step
        ttfts, latencies = gathered.setdefault((m.provider, m.model, bucket), ([], []))
        if m.ttft_ms is not None:
            ttfts.append(m.ttft_ms)
        if m.latency_ms is not None:
            latencies.append(m.latency_ms)
    medians = {key: (round_ms(quantiles(ttfts, (50,))[50]), round_ms(quantiles(latencies, (50,))[50]))
               for key, (ttfts, latencies) in gathered.items() if ttfts or latencies}
    return history_chart(medians, pairs, step)
