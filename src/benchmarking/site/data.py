"""What the site shows, as one plain dict: the report's figures per window, medians over time, uptime and recent
failures per provider and model. Read through the report's own selection and statistics, so that every figure on a
page is the figure `report --format json` gives for the same selection; never changes what is stored."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Sequence

from ..figures import quantiles, round_ms
from ..measurement import utc_now
from ..pricing import format_usd
from ..redaction import scrub
from ..report.formats import report_title, summary_fields
from ..report.selection import Row, Selection, select, span_of
from ..report.statistics import PERCENTILES, Summary, rolling_median
from ..report.views import summarise, with_slo
from ..slo import SloConfig
from ..errors import StorageRejected
from ..storage import Storage
from .compare_data import comparisons, run_samples
from .history import CHART_BUCKETS, rows_history, stored_history
from .keys import model_key
from .load_data import conversation_turns, load_levels, prefill
from .recent import recent_rows
from .whole import whole_summaries

# The leaderboard's windows, as OpenRouter and Artificial Analysis show them: name -> length.
WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
                                 "30d": timedelta(days=30)}
# The rolling median a chart can draw in each window, like a leaderboard's "median over the past 72 hours".
ROLLING: dict[str, timedelta] = {"1h": timedelta(minutes=15), "24h": timedelta(hours=3), "7d": timedelta(days=1),
                                 "30d": timedelta(hours=72), "all": timedelta(hours=72)}
# Uptime as OpenRouter shows it: the share of successful requests over the last 5 minutes, 30 minutes and a day.
UPTIME_SPANS: dict[str, timedelta] = {"5m": timedelta(minutes=5), "30m": timedelta(minutes=30), "1d": timedelta(days=1)}
BUCKET_STEPS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
RECENT_FAILURES = 20
MESSAGE_LOOKUP = 500  # newest results read per model to find its recent failures' messages (not in the report's read)
MESSAGE_CHARS = 300


def _text(value: object) -> object:
    """Every string that goes on a page, scrubbed: names and messages come from endpoints that may be hostile, and
    the site is an output like any other."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # a chart's thousands of numbers pass without a call each
        return [_text(v) if isinstance(v, (str, dict, list, tuple)) else v for v in value]
    return value


def bucket_seconds(span_s: float) -> int:
    """The smallest step of BUCKET_STEPS_S that cuts the span into at most CHART_BUCKETS buckets."""
    for step in BUCKET_STEPS_S:
        if span_s / step <= CHART_BUCKETS:
            return step
    return BUCKET_STEPS_S[-1]


def _times(rows: Sequence[Row]) -> list[datetime]:
    return [row.result.created_at for row in rows]


def _since(rows: Sequence[Row], times: list[datetime], start: datetime) -> Sequence[Row]:
    """The rows (oldest first) created at or after start."""
    return rows[bisect_left(times, start):]


def _leaderboard(rows: Sequence[Row], slo: SloConfig) -> list[dict[str, object]]:
    """The report's summary fields per provider and model, as `report --format json` gives them."""
    summaries = summarise(rows)
    if slo.configured:
        summaries = with_slo(summaries, rows, slo)
    return [_fields(s) for s in summaries]


def _fields(s: Summary) -> dict[str, object]:
    """A summary's fields as `report --format json` gives them, with the model's key and the costs as shown."""
    return dict(summary_fields(s), key=model_key(s.provider, s.model), cost_mean_text=_usd(s.cost_mean_usd),
                cost_per_1m_output_tokens_text=_usd(s.cost_per_1m_output_tokens_usd))


def _usd(amount: Decimal | None) -> str | None:
    """An amount as the pages show it: the report table's three significant figures."""
    return None if amount is None else format_usd(amount)


def _rolled(rows: Sequence[Row], step: int, rolling_s: float) -> dict[str, dict[str, dict[int, float]]]:
    """Per model key and metric: the rolling median over `rolling_s` (statistics.rolling_median, as `report --window
    --plot` draws it) at the last successful request of each time bucket."""
    points: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for row in rows:
        m = row.result.measurement
        if m.success:
            when = row.result.created_at.timestamp()
            by_metric = points.setdefault(model_key(m.provider, m.model), {"ttft_ms": [], "latency_ms": []})
            for name, value in (("ttft_ms", m.ttft_ms), ("latency_ms", m.latency_ms)):
                if value is not None:
                    by_metric[name].append((when, value))
    return {key: {name: {int(when) // step * step: value for when, value in rolling_median(series, rolling_s)}
                  for name, series in by_metric.items()}
            for key, by_metric in points.items()}


def _series(rows: Sequence[Row], start: datetime, end: datetime, rolling: timedelta) -> dict[str, Any]:
    """Medians of TTFT and latency per time bucket and model, aligned on one time axis (seconds since 1970), and
    the rolling median over `rolling` at each bucket."""
    step = bucket_seconds((end - start).total_seconds())
    first = int(start.timestamp()) // step * step
    count = int(end.timestamp()) // step * step
    buckets: dict[str, dict[int, tuple[list[float], list[float]]]] = {}
    for row in rows:
        m = row.result.measurement
        if not m.success:
            continue
        at = int(row.result.created_at.timestamp()) // step * step
        ttfts, latencies = buckets.setdefault(model_key(m.provider, m.model), {}).setdefault(at, ([], []))
        if m.ttft_ms is not None:
            ttfts.append(m.ttft_ms)
        if m.latency_ms is not None:
            latencies.append(m.latency_ms)
    used = sorted({at for by_time in buckets.values() for at in by_time})
    rolled = _rolled(rows, step, rolling.total_seconds())
    series = {}
    for key, by_time in buckets.items():
        ttft, latency = [], []
        for at in used:
            ttfts, latencies = by_time.get(at, ([], []))
            ttft.append(round_ms(quantiles(ttfts, (50,))[50]))
            latency.append(round_ms(quantiles(latencies, (50,))[50]))
        series[key] = {"ttft_p50_ms": ttft, "latency_p50_ms": latency}
        for name in ("ttft_ms", "latency_ms"):
            by_bucket = rolled.get(key, {}).get(name, {})
            series[key][f"{name[:-3]}_rolling_ms"] = [round_ms(by_bucket.get(at)) for at in used]
    return {"step_s": step, "start": first, "end": count + step, "times": used, "models": series,
            "rolling_s": rolling.total_seconds()}


def _hours(rows: Sequence[Row]) -> dict[str, dict[str, list]]:
    """Per model key: the median TTFT and latency and the requests in each hour of the day (UTC), as `report --by
    hour --format json` gives them."""
    hours: dict[str, dict[str, list]] = {}
    for s in summarise(rows, "hour"):
        fields = summary_fields(s)
        hour = s.group[1] if s.group else None
        if not isinstance(hour, int):
            continue
        entry = hours.setdefault(model_key(s.provider, s.model), {
            "ttft_p50_ms": [None] * 24, "latency_p50_ms": [None] * 24, "requests": [0] * 24})
        for name in entry:
            entry[name][hour] = fields[name]
    return hours


def _uptime(rows: Sequence[Row], times: list[datetime], end: datetime) -> dict[str, dict[str, float | None]]:
    """Per model key: the share of successful requests over each of UPTIME_SPANS ending at `end`."""
    shares: dict[str, dict[str, float | None]] = {}
    for name, span in UPTIME_SPANS.items():
        counts: dict[str, list[int]] = {}
        for row in _since(rows, times, end - span):
            m = row.result.measurement
            count = counts.setdefault(model_key(m.provider, m.model), [0, 0])
            count[0] += 1
            count[1] += m.success
        for key, (requests, successes) in counts.items():
            shares.setdefault(key, {})[name] = round(successes / requests, 4)
    return shares


def _failures(storage: Storage, rows: Sequence[Row]) -> dict[str, list[dict[str, object]]]:
    """Per model key: its newest failures in the selection (time, error type, status, scrubbed message)."""
    newest: dict[str, list[Row]] = {}
    for row in reversed(rows):
        m = row.result.measurement
        if not m.success:
            listed = newest.setdefault(model_key(m.provider, m.model), [])
            if len(listed) < RECENT_FAILURES:
                listed.append(row)
    failures = {}
    for key, listed in newest.items():
        m = listed[0].result.measurement
        try:  # the report's read leaves messages in the database: the newest rows of this model bring them
            messages = {r.id: r.measurement.error_message
                        for r in storage.read_latest_results(m.provider, m.model, MESSAGE_LOOKUP)}
        except NotImplementedError:
            messages = {}
        failures[key] = [{
            "time": f"{row.result.created_at:%Y-%m-%d %H:%M:%S}",
            "error_type": row.result.measurement.error_type,
            "http_status": row.result.measurement.http_status,
            "message": (messages.get(row.result.id) or "")[:MESSAGE_CHARS] or None,
        } for row in listed]
    return failures


def _firing(storage: Storage, end: datetime) -> dict[str, list[dict[str, object]]]:
    """Per model key: the alerts firing now (rule, metric, since when); none where the backend keeps no alerts."""
    try:
        alerts = storage.read_alerts(end)
    except (NotImplementedError, StorageRejected):
        return {}
    firing: dict[str, list[dict[str, object]]] = {}
    for alert in sorted(alerts, key=lambda a: (a.started_at, a.rule, a.metric or "")):
        if alert.state == "firing":
            firing.setdefault(model_key(alert.provider, alert.model), []).append(
                {"rule": alert.rule, "metric": alert.metric, "since": f"{alert.started_at:%Y-%m-%d %H:%M}"})
    return firing


def _whole(storage: Storage, selection: Selection, slo: SloConfig, end: datetime, keep: bool, rows_read: int
           ) -> tuple[list[dict[str, object]], str, int, dict[str, Any] | None]:
    """The "all" window: the selection as given, as `report` gives it (the database gathering the figures where it
    can, as `report` does over a long history): its leaderboard, title, number of results, and, where it holds more
    than the `rows_read` for the other windows, the chart of its whole history by day (history.py)."""
    gathered = None if slo.configured else whole_summaries(storage, selection, end, keep)
    if gathered is None:  # SLO attainment is computed from the rows, as `report` does; Supabase cannot gather
        rows = select(storage, selection)
        history = rows_history(rows, end) if len(rows) > rows_read else None
        return _leaderboard(rows, slo), _title(rows, selection), len(rows), history
    summaries, span, history = gathered
    if span is None:
        return [], _title([], selection), 0, None
    if history is None and span.results > rows_read:
        history = stored_history(storage, selection, span.first, end)
    return [_fields(s) for s in summaries], report_title(span, selection), span.results, history


def _title(rows: Sequence[Row], selection: Selection) -> str:
    return report_title(span_of(rows), selection) if rows else f"no results match: {selection.describe()}"


def site_data(storage: Storage, selection: Selection, slo: SloConfig, now: datetime | None = None,
              keep: bool = False) -> dict[str, Any]:
    """Everything the pages draw, from the stored results the selection covers; windows end at --until, or now.

    Rows are read for the longest window (30 days) only: its charts, uptime and failures. The whole selection's
    figures are gathered by the database, as `report` gathers them, so a long history costs little. With `keep` (a
    process that builds again: a schedule, `serve`), what was read is kept, and the next build reads what is new."""
    end = selection.until or now or utc_now()
    longest = max(WINDOWS.values())
    recent = replace(selection, since=max(selection.since or end - longest, end - longest), until=end)
    rows = recent_rows(storage, recent, keep) if selection.since is None or selection.since < end else []
    times = _times(rows)
    windows = {}
    for name, length in WINDOWS.items():
        in_window = _since(rows, times, end - length)
        narrowed = replace(selection, since=end - length, until=end, window=length)
        windows[name] = {"title": _title(in_window, narrowed), "results": len(in_window),
                         "models": _leaderboard(in_window, slo),
                         "series": _series(in_window, end - length, end, ROLLING[name]),
                         "hours": _hours(in_window)}
    leaders, title, results, history = _whole(storage, selection, slo, end, keep, len(rows))
    # The whole selection's chart: its daily medians where its history reaches back beyond the rows read (its last
    # 30 days), else those rows as the other windows draw them. Its heatmap is the last 30 days'.
    beyond = history is not None and results > len(rows)
    windows["all"] = {"title": title, "results": results, "models": leaders,
                      "series": history if beyond else _series(rows, times[0] if rows else end, end, ROLLING["all"]),
                      "hours": windows["30d"]["hours"]}
    models = {row["key"]: {"provider": row["provider"], "model": row["model"]} for row in leaders}
    uptime = _uptime(rows, times, end)
    failures = _failures(storage, rows)
    firing = _firing(storage, end)
    for key, model in models.items():
        model["uptime"] = uptime.get(key, {})
        model["failures"] = failures.get(key, [])
        model["alerts"] = firing.get(key, [])
    data = {
        "comparisons": comparisons(rows, selection),
        "load": load_levels(rows, slo),
        "prefill": prefill(rows),
        "conversations": conversation_turns(rows),
        "generated_at": end.isoformat(timespec="seconds"),
        "selection": selection.describe(),
        "title": title,
        "percentiles": list(PERCENTILES),
        "windows": windows,
        "models": models,
    }
    # The runs' samples scrub their few names themselves: tens of thousands of numbers need no walk through _text.
    return dict(_text(data), runs=run_samples(rows, recent.since))
