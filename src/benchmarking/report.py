"""`python main.py report`: which provider is fastest, most reliable and cheapest, and is it getting worse?

Everything is computed here, in Python, on the stored rows, so that every backend gives the same numbers, with
figures.py's definitions (the run's console uses the same): percentiles by linear interpolation between closest ranks
(Hyndman and Fan's type 7, NumPy's default); a tail percentile needs 2 samples, the median 1; "-" where undefined.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
import csv
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
import io
import json
import random
import re
from pathlib import Path
from statistics import median
from typing import Callable, Iterable, Sequence
from uuid import UUID

from .durations import parse_window
from .csv_cells import safe_records
from .errors import ConfigError
from .figures import percentile, quantiles
from .measurement import utc_now
from .safe_files import atomic_file
from .slo import Attainment, SloConfig, attainment_by_model
from .storage import GroupValues, ResultFilters, SelectionSpan, Storage, StoredResult, StoredRun
from .storage.report_read import gather_group_values
from .storage.schema import plain, result_row

PERCENTILES = (50, 90, 95, 99)
BOOTSTRAP_RESAMPLES = 2000
MIN_RELATIVE_CHANGE = 0.05
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_AGO_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, flag: str, now: datetime | None = None) -> datetime:
    """'4h', '30m', '7d', '2w' ago, or an ISO date/time (UTC when no zone is given)."""
    now = now or utc_now()
    match = _AGO.match(text.strip())
    try:
        if match:
            return now - timedelta(**{_AGO_UNITS[match.group(2)]: float(match.group(1))})
        moment = datetime.fromisoformat(text.strip())
        # In UTC at once: a time near year 1 or 9999 in another zone overflows here, not later in a comparison.
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise ConfigError(f"{flag} takes a time like 4h, 7d or 2026-11-01 (UTC), not {text!r}") from None
    except OverflowError:
        raise ConfigError(f"{flag} {text} is out of the calendar's range (years 1 to 9999): give a later or shorter "
                          "time, like 4h, 7d or 2026-11-01") from None


def ends_after_it_starts(since: datetime | None, until: datetime | None, now: datetime | None = None) -> bool:
    """Whether the span from `since` to `until` (None: now) can hold a result: a reversed one selects nothing."""
    return since is None or since < (until or now or utc_now())


def parse_duration(text: str, flag: str) -> timedelta:
    """A window's length: '72h', '30m', '7d', '2w', '90s', '1h30m', as every window takes it (durations.py)."""
    return parse_window(text, flag)


def rolling_median(points: Sequence[tuple[float, float]], window_s: float) -> list[tuple[float, float]]:
    """For each (time in s, value), oldest first: the median of the values in the window [time - window_s, time].

    What a leaderboard's "median over the past 72 hours" shows at each moment. One pass, the window's values kept
    sorted: fast on a year of rows.
    """
    window: list[float] = []
    rolled = []
    oldest = 0
    for when, value in points:
        insort(window, value)
        while points[oldest][0] < when - window_s:
            del window[bisect_left(window, points[oldest][1])]
            oldest += 1
        middle = len(window) // 2
        rolled.append((when, window[middle] if len(window) % 2 else (window[middle - 1] + window[middle]) / 2))
    return rolled


def parse_run_id(text: str, flag: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ConfigError(f"{flag} takes a run id (a UUID, as printed by `Run started:`), not {text!r}") from None


@dataclass(frozen=True)
class Selection:
    """Which results a report covers."""

    run_ids: frozenset[UUID] | None = None
    last: bool = False
    since: datetime | None = None
    until: datetime | None = None
    providers: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    include_simulated: bool = False
    window: timedelta | None = None  # --window: since and until are the window ending now (or at --until)

    def describe(self) -> str:
        parts = []
        if self.run_ids:
            parts.append("run " + ", ".join(sorted(str(r) for r in self.run_ids)))
        if self.last:
            parts.append("the newest run")
        if self.window and self.until:
            parts.append(f"the {window_text(self.window)} window to {self.until:%Y-%m-%d %H:%M} UTC")
        else:
            if self.since:
                parts.append(f"since {self.since:%Y-%m-%d %H:%M} UTC")
            if self.until:
                parts.append(f"until {self.until:%Y-%m-%d %H:%M} UTC")
        if self.providers:
            parts.append("provider " + ", ".join(sorted(self.providers)))
        if self.models:
            parts.append("model " + ", ".join(sorted(self.models)))
        parts.append("live and simulated runs" if self.include_simulated else "live runs only")
        return "; ".join(parts)


def window_text(window: timedelta) -> str:
    """72 h, 30 min: a window's length as a title shows it."""
    hours = window.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{window.total_seconds() / 60:g} min"


def window_selection(selection: Selection, window: timedelta, now: datetime | None = None) -> Selection:
    """The selection narrowed to the window ending at its --until, or now: the figures a user sees "over the past
    72 hours" on a leaderboard."""
    if selection.since is not None:
        raise ConfigError("--window and --since both set where the report starts: give one of them")
    end = selection.until or now or utc_now()
    try:
        since = end - window
    except OverflowError:
        raise ConfigError(f"--window reaches back before year 1 from {end.date().isoformat()}: give a shorter "
                          "window or a later --until") from None
    return replace(selection, since=since, until=end, window=window)


@dataclass(frozen=True)
class Row:
    """One stored result with the run it belongs to."""

    result: StoredResult
    run: StoredRun


def select(storage: Storage, selection: Selection, with_text: bool = False) -> list[Row]:
    """The stored results the selection covers, oldest first.

    A report reads only the columns it needs (REPORT_COLUMNS), with the database filtering by run, time, provider
    and model; an export (with_text) reads every column, answer texts too.
    """
    runs = storage.read_runs() if with_text else storage.read_report_runs()
    eligible = {run.info.id: run for run in runs if selection.include_simulated or run.info.mode != "simulated"}
    wanted = set(eligible)
    if selection.run_ids is not None:
        wanted &= set(selection.run_ids)
    if selection.last and wanted:
        wanted = {max(wanted, key=lambda run_id: eligible[run_id].info.started_at)}
    if not wanted:
        return []
    filters = ResultFilters(
        run_id=next(iter(wanted)) if len(wanted) == 1 else None, since=selection.since, until=selection.until,
        providers=selection.providers, models=selection.models,
    )
    if with_text:
        results = [r for r in storage.read_results(filters.run_id, filters.since) if filters.admits(r)]
    else:
        results = storage.read_report_results(filters)
    rows = [Row(result, eligible[result.run_id]) for result in results if result.run_id in wanted]
    rows.sort(key=lambda row: row.result.created_at)
    return rows


@dataclass(frozen=True)
class GroupKey:
    """One way to split a report (`--by NAME`): the figures per group, and per provider and model within it.

    `value` reads the group from a row (None where the row does not record it: one group, shown as NO_VALUE);
    `label` shows a value in the table; `column` is False where the table already shows the key (model).
    """

    name: str
    header: str
    value: Callable[["Row"], object] | None  # None: no grouping beyond provider and model
    sql: str = ""  # the same value in SQL over benchmark_results b joined to runs r; {hour}: the hour of day, UTC
    label: Callable[[object], str] = str
    column: bool = True


NO_VALUE = "(none)"
GROUP_KEYS: dict[str, GroupKey] = {key.name: key for key in (
    GroupKey("provider", "", None),
    GroupKey("model", "model", lambda row: row.result.measurement.model, "b.model", column=False),
    GroupKey("hour", "hour UTC", lambda row: row.result.created_at.hour, "{hour}", label=lambda hour: f"{hour:02d}:00"),
    GroupKey("region", "region", lambda row: row.run.info.region, "r.region"),
    GroupKey("host", "host", lambda row: row.run.info.host, "r.host"),
    GroupKey("upstream", "served by", lambda row: row.result.measurement.upstream_provider, "b.upstream_provider"),
    GroupKey("tier", "input tier", lambda row: row.result.measurement.input_tier, "b.input_tier",
             label=lambda tier: f"{tier:,}"),
    GroupKey("prompt", "prompt", lambda row: row.result.measurement.prompt_id, "b.prompt_id"),
)}
# Keys whose report is a table of its own (the load report's `concurrency`) are dispatched in cli/report.py.


def group_label(value: object, key: GroupKey) -> str:
    return NO_VALUE if value is None else key.label(value)


def _group_order(value: object) -> tuple[bool, object]:
    """Groups in the key's natural order (hours and tiers as numbers), the rows without the key last."""
    return (value is None, value if value is not None else 0)


@dataclass(frozen=True)
class Summary:
    """One provider and model over the selected results (of one group with --by); times in ms, costs in USD."""

    provider: str
    model: str
    requests: int
    successes: int
    ttft_ms: dict[int, float | None]
    latency_ms: dict[int, float | None]
    tokens_per_second_p50: float | None
    cost_mean_usd: Decimal | None
    cost_total_usd: Decimal | None
    cost_per_1k_output_tokens_usd: Decimal | None
    top_errors: tuple[tuple[str, int], ...]
    upstream_providers: tuple[tuple[str, int], ...] = ()  # OpenRouter: who served the requests, most first
    slo: Attainment | None = None  # set when benchmark.toml has an [slo] with a per-request target for it
    fastest: bool = False
    cheapest: bool = False
    group: tuple[GroupKey, object] | None = None  # with --by: the key and this group's value (None: not recorded)
    answers_judged: int = 0  # requests whose prompt had an `expect`, and so an answer_ok
    answers_correct: int = 0

    @property
    def success_rate(self) -> float:
        return self.successes / self.requests if self.requests else 0.0

    @property
    def correct_rate(self) -> float | None:
        """The share of judged answers that met their prompt's `expect`; None where nothing was judged."""
        return self.answers_correct / self.answers_judged if self.answers_judged else None


def _percentiles(values: list[float]) -> dict[int, float | None]:
    """Every PERCENTILES of the values."""
    return quantiles(values, PERCENTILES)


def _most_common(names: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """Counts, most first, ties by name: the same however the database ordered them."""
    return tuple(sorted(Counter(names).items(), key=lambda item: (-item[1], item[0])))


def _gathered(row: Row, key: GroupKey) -> tuple:
    """What gather_group_values takes of a row: the row path's counterpart of SQLite's read over the index."""
    m = row.result.measurement
    return (key.value(row) if key.value else None, m.provider, m.model, m.success, m.ttft_ms, m.latency_ms,
            m.tokens_per_second, m.cost_usd, m.output_tokens, m.error_type, m.upstream_provider, m.answer_ok,
            row.result.run_id, row.result.created_at)


def _summary(values: GroupValues, group: tuple[GroupKey, object] | None) -> Summary:
    priced = sum(values.costs.values())
    total = sum((cost * count for (cost, _), count in values.costs.items()), Decimal(0)) if priced else None
    with_output = [(cost * count, tokens * count) for (cost, tokens), count in values.costs.items() if tokens]
    output_tokens = sum(tokens for _, tokens in with_output)
    per_1k = sum((cost for cost, _ in with_output), Decimal(0)) / output_tokens * 1000 if output_tokens else None
    return Summary(
        provider=values.provider,
        model=values.model,
        requests=values.requests,
        successes=values.successes,
        ttft_ms=_percentiles(values.ttft_ms),
        latency_ms=_percentiles(values.latency_ms),
        tokens_per_second_p50=quantiles(values.tokens_per_second, (50,))[50],
        cost_mean_usd=total / priced if priced else None,
        cost_total_usd=total,
        cost_per_1k_output_tokens_usd=per_1k,
        top_errors=_most_common(values.error_types)[:3],
        upstream_providers=_most_common(values.upstream_providers),
        group=group,
        answers_judged=values.answers_judged,
        answers_correct=values.answers_correct,
    )


def summarise(rows: Iterable[Row], by: str = "provider") -> list[Summary]:
    """One Summary per (provider, model), within each group of `by`; fastest and cheapest marked within each group.

    Groups come in the key's order; within one, sorted by median TTFT (undefined last). Fastest: the lowest median
    latency (the whole answer). Cheapest: the lowest mean cost per request.
    """
    key = GROUP_KEYS[by]
    return _arrange(gather_group_values(_gathered(row, key) for row in rows)[0], key)


def summarise_stored(
    storage: Storage, selection: Selection, by: str = "provider"
) -> tuple[list[Summary], SelectionSpan | None] | None:
    """The summaries of a selection and its span (None: nothing matches), with the database gathering each group's
    values: what `report` prints, fast over a long history. None where the backend cannot gather (Supabase): then
    select() and summarise() read the rows."""
    key = GROUP_KEYS[by]
    filters = ResultFilters(since=selection.since, until=selection.until, providers=selection.providers,
                            models=selection.models, run_ids=selection.run_ids, newest_run=selection.last,
                            include_simulated=selection.include_simulated)
    gathered = storage.read_group_values(filters, key.sql if key.value else None)
    if gathered is None:
        return None
    values, span = gathered
    return _arrange(values, key), span


def with_slo(summaries: Sequence[Summary], rows: Sequence[Row], slo: SloConfig, by: str = "provider") -> list[Summary]:
    """The summaries with their SLO attainment and goodput, each over the rows of its group of `by`.

    Goodput is per hour of the group's wall time; an hour of day recurs across days, so by hour there is none.
    """
    key = GROUP_KEYS[by]
    grouped: dict[object, list[Row]] = {}
    for row in rows:
        grouped.setdefault(key.value(row) if key.value else None, []).append(row)
    figures = {group: attainment_by_model(group_rows, slo) for group, group_rows in grouped.items()}
    if by == "hour":
        figures = {group: {pair: replace(a, wall_hours=None) for pair, a in by_model.items()}
                   for group, by_model in figures.items()}
    return [replace(s, slo=figures.get(s.group[1] if s.group else None, {}).get((s.provider, s.model)))
            for s in summaries]


def _arrange(values: Sequence[GroupValues], key: GroupKey) -> list[Summary]:
    """Summaries in the key's group order, each group sorted and marked."""
    groups: dict[object, list[GroupValues]] = {}
    for value in values:
        groups.setdefault(value.group, []).append(value)
    summaries = []
    for group in sorted(groups, key=_group_order):
        summaries += _marked([_summary(v, (key, group) if key.value else None) for v in groups[group]])
    return summaries


def _marked(summaries: list[Summary]) -> list[Summary]:
    """One group's summaries, sorted by median TTFT (undefined last), fastest and cheapest marked."""
    def best(key: Callable[[Summary], object]) -> Summary | None:
        candidates = [s for s in summaries if key(s) is not None]
        return min(candidates, key=key) if len(candidates) > 1 else None  # type: ignore[arg-type, return-value]

    fastest = best(lambda s: (s.latency_ms[50], s.provider, s.model) if s.latency_ms[50] is not None else None)
    cheapest = best(lambda s: (s.cost_mean_usd, s.provider, s.model) if s.cost_mean_usd is not None else None)
    marked = [replace(s, fastest=s is fastest, cheapest=s is cheapest) for s in summaries]
    return sorted(marked, key=lambda s: (s.ttft_ms[50] is None, s.ttft_ms[50] or 0.0, s.provider, s.model))


# ---- output -----------------------------------------------------------------------------------------------------

def summary_fields(s: Summary) -> dict[str, object]:
    """The fields json and csv carry, units in their names."""
    values: dict[str, object] = {}
    if s.group and s.group[0].column:
        values[s.group[0].name] = s.group[1]
    values |= {
        "provider": s.provider,
        "model": s.model,
        "requests": s.requests,
        "successes": s.successes,
        "success_rate": round(s.success_rate, 4),
    }
    for q in PERCENTILES:
        values[f"ttft_p{q}_ms"] = _round(s.ttft_ms[q])
    for q in PERCENTILES:
        values[f"latency_p{q}_ms"] = _round(s.latency_ms[q])
    values["tokens_per_second_p50"] = _round(s.tokens_per_second_p50)
    values["cost_mean_usd"] = _decimal(s.cost_mean_usd)
    values["cost_total_usd"] = _decimal(s.cost_total_usd)
    values["cost_per_1k_output_tokens_usd"] = _decimal(s.cost_per_1k_output_tokens_usd)
    values["top_errors"] = _counts(s.top_errors)
    values["upstream_providers"] = _counts(s.upstream_providers)
    values["answers_judged"] = s.answers_judged
    values["correct_answer_rate"] = _round(s.correct_rate, 4)
    if s.slo is not None:
        values["slo_attainment"] = _round(s.slo.attainment, 4)
        values["goodput_per_hour"] = _round(s.slo.goodput_per_hour)
    values["fastest"] = s.fastest
    values["cheapest"] = s.cheapest
    return values


def _counts(counted: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in counted)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _decimal(value: Decimal | None) -> str | None:
    """Exact, as a plain decimal string (never 1E-7), trimmed to 12 places."""
    if value is None:
        return None
    return format(value.quantize(Decimal("1e-12")).normalize(), "f")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}"


def _quantiles(values: dict[int, float | None]) -> str:
    return " / ".join(_cell(values[q]) for q in PERCENTILES)


def _table_rows(summaries: Sequence[Summary]) -> tuple[list[str], list[list[str]]]:
    quantiles = "/".join(f"p{q}" for q in PERCENTILES)
    served_by = any(s.upstream_providers for s in summaries)  # a column only where a router says who served
    judged = any(s.answers_judged for s in summaries)  # and only where prompts had an `expect`
    slo = any(s.slo for s in summaries)  # and only when an [slo] sets per-request targets
    key = summaries[0].group[0] if summaries and summaries[0].group and summaries[0].group[0].column else None
    header = (([key.header] if key else []) + ["provider", "model", "requests", "ok %", f"TTFT ms {quantiles}",
              f"latency ms {quantiles}", "tokens/s", "mean $", "total $", "$ per 1k out", "errors"]
              + (["served by"] if served_by else []) + (["correct %"] if judged else [])
              + (["SLO met %", "goodput/h"] if slo else []) + [""])
    rows = []
    for s in summaries:
        marks = " ".join(mark for mark, on in (("fastest", s.fastest), ("cheapest", s.cheapest)) if on)
        rows.append(
            ([group_label(s.group[1], key)] if key else [])
            + [s.provider, s.model, str(s.requests), f"{s.success_rate * 100:.0f}",
               _quantiles(s.ttft_ms), _quantiles(s.latency_ms), _cell(s.tokens_per_second_p50)]
            + [_cell(_decimal(v)) for v in (s.cost_mean_usd, s.cost_total_usd, s.cost_per_1k_output_tokens_usd)]
            + [_counts(s.top_errors) or "-"] + ([_counts(s.upstream_providers) or "-"] if served_by else [])
            + ([_percent(s.correct_rate)] if judged else []) + (_slo_cells(s.slo) if slo else []) + [marks]
        )
    return header, rows


def _slo_cells(slo: Attainment | None) -> list[str]:
    if slo is None:
        return ["-", "-"]
    percent = None if slo.attainment is None else slo.attainment * 100
    return [_cell(percent), _cell(slo.goodput_per_hour)]


def _one_line(cell: str, line_break: str) -> str:
    """A cell kept on its row: a model, region or host name is whatever the user set, line breaks included."""
    return cell.replace("\r\n", line_break).replace("\n", line_break).replace("\r", line_break)


def aligned_lines(header: Sequence[str], rows: Sequence[Sequence[str]], left: Iterable[str]) -> list[str]:
    """A table in columns for a terminal: the first column and those named in `left` aligned left, the rest (numbers)
    right."""
    rows = [[_one_line(cell, "\\n") for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    on_left = {0} | {i for i, name in enumerate(header) if name in set(left)}  # the first column names the row
    return ["  ".join(c.ljust(w) if i in on_left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in [header, *rows]]


def markdown_lines(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_one_line(cell.replace("|", "\\|"), "<br>") for cell in row) + " |"
                    for row in rows]


def csv_text(records: Sequence[dict[str, object]], header: Sequence[str] = ("provider",)) -> str:
    """Rows ending in \\n; a cell holding a \\r or \\n is quoted (the csv module quotes only the characters of its
    line terminator, so each row is written with \\r\\n and given \\n in its place)."""
    fieldnames = list(records[0]) if records else list(header)
    lines = []
    for record in [dict(zip(fieldnames, fieldnames)), *safe_records(records)]:
        out = io.StringIO()
        csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\r\n").writerow(record)
        lines.append(out.getvalue()[:-2] + "\n")
    return "".join(lines)


def format_table(summaries: Sequence[Summary], title: str) -> str:
    header, rows = _table_rows(summaries)
    lines = [title, *aligned_lines(header, rows, ("provider", "model", "errors", "served by", ""))]
    lines.append("times over successful requests; tokens/s is the median decode speed; percentiles by linear "
                 "interpolation, '-' below 2 samples (the median: 1); fastest = lowest median latency, cheapest = "
                 "lowest mean cost")
    return "\n".join(lines)


def format_markdown(summaries: Sequence[Summary], title: str) -> str:
    header, rows = _table_rows(summaries)
    header[-1] = "marks"
    return "\n".join(markdown_lines(title, header, rows))


def format_csv(summaries: Sequence[Summary], by: str = "provider") -> str:
    """The summaries as csv; none: the header alone, so that a machine still reads csv."""
    key = GROUP_KEYS[by]
    empty = _summary(GroupValues(None, "", ""), (key, None) if key.value else None)
    return csv_text([summary_fields(s) for s in summaries], list(summary_fields(empty)))


def format_json(summaries: Sequence[Summary], title: str, selection: Selection, span: SelectionSpan | None,
                by: str = "provider") -> str:
    """The summaries as json; no span (nothing matched): no provider, 0 results."""
    return json.dumps(
        {
            "title": title,
            "selection": selection.describe(),
            "results": span.results if span else 0,
            "runs": span.runs if span else 0,
            "window_hours": selection.window.total_seconds() / 3600 if selection.window else None,
            "by": summaries[0].group[0].name if summaries and summaries[0].group else by,
            "providers": [summary_fields(s) for s in summaries],
        },
        indent=2,
    )


def span_of(rows: Sequence[Row]) -> SelectionSpan:
    """How many results and runs the rows (oldest first) hold, and from when to when."""
    return SelectionSpan(len(rows), len({row.run.info.id for row in rows}), rows[0].result.created_at,
                         rows[-1].result.created_at)


def title_for(rows: Sequence[Row], selection: Selection, by: str = "provider") -> str:
    return report_title(span_of(rows), selection, by)


def report_title(span: SelectionSpan, selection: Selection, by: str = "provider") -> str:
    times = f"{span.first:%Y-%m-%d %H:%M} to {span.last:%Y-%m-%d %H:%M} UTC"
    grouped = f", by {GROUP_KEYS[by].header or by}" if by != "provider" else ""
    return f"{span.results} results from {span.runs} run(s), {times}{grouped} ({selection.describe()})"


# ---- export -----------------------------------------------------------------------------------------------------

EXPORT_RUN_FIELDS = ("run_name", "triggered_by", "mode", "host", "region")


def export_records(rows: Iterable[Row]) -> Iterable[dict[str, object]]:
    for row in rows:
        r = row.result
        record = result_row(r.run_id, r.id, r.created_at, r.measurement)
        info = row.run.info
        record.update({name: getattr(info, name) for name in EXPORT_RUN_FIELDS})
        yield plain(record)


def export(rows: Sequence[Row], path: Path) -> int:
    """Every selected result row, as csv or jsonl by the file's extension. Returns the number of rows."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"--export writes .csv or .jsonl, not {path.name!r}")
    records = list(export_records(rows))
    with atomic_file(path, "--export") as out:
        if suffix == ".jsonl":
            for record in records:
                out.write(json.dumps(record) + "\n")
        else:
            fieldnames = list(records[0]) if records else []
            writer = csv.DictWriter(out, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(safe_records(records))
    return len(records)


# ---- compare ----------------------------------------------------------------------------------------------------

def bootstrap_interval(
    before: Sequence[float], after: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """95 % bootstrap interval of median(after) - median(before); None with fewer than 2 samples on a side."""
    if len(before) < 2 or len(after) < 2:
        return None
    rng = random.Random(seed)  # a fixed seed: the same rows always give the same verdict
    differences = [
        median(rng.choices(after, k=len(after))) - median(rng.choices(before, k=len(before)))
        for _ in range(resamples)
    ]
    low, high = percentile(differences, 2.5), percentile(differences, 97.5)
    assert low is not None and high is not None
    return low, high


@dataclass(frozen=True)
class Change:
    """One metric of one provider and model, from selection A to B."""

    metric: str
    unit: str
    before: float | None
    after: float | None
    interval: tuple[float, float] | None

    @property
    def difference(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before

    @property
    def verdict(self) -> str:
        """'up' or 'down' beyond the noise, 'same' within it, '?' when undefined.

        Beyond the noise: the interval excludes 0 and the median moved by at least MIN_RELATIVE_CHANGE, so that a
        0.2 ms wobble on a steady provider is not called a slowdown.
        """
        if self.interval is None or self.before is None or self.after is None:
            return "?"
        low, high = self.interval
        large = abs(self.after - self.before) >= MIN_RELATIVE_CHANGE * abs(self.before)
        if low > 0 and large:
            return "up"
        if high < 0 and large:
            return "down"
        return "same"


@dataclass(frozen=True)
class Comparison:
    provider: str
    model: str
    requests: tuple[int, int]
    changes: tuple[Change, ...] = field(default=())
    within: str = ""  # the group compared within (--by, and the input tier where rows have one): "input tier 1,000"


_COMPARED = (
    ("TTFT", "ms", lambda m: m.ttft_ms),
    ("latency", "ms", lambda m: m.latency_ms),
    ("cost", "$", lambda m: float(m.cost_usd) if m.cost_usd is not None else None),
)


def compare(before: Sequence[Row], after: Sequence[Row], by: str = "provider") -> list[Comparison]:
    """Per provider and model in both selections: the change in median TTFT, latency and cost, with intervals.

    Like is compared with like: within each group of `by`, within each input tier where the rows have tiers
    (a 10,000-token prompt's TTFT is no baseline for a 100-token one's), and within each load level where rows come
    from load runs (a request that queued behind seven others is no baseline for one sent alone).
    """
    key = GROUP_KEYS[by]
    rows = (*before, *after)
    tiers = by != "tier" and any(row.result.measurement.input_tier is not None for row in rows)
    levels = any(row.result.measurement.concurrency is not None for row in rows)

    def by_group(rows: Sequence[Row]) -> dict[tuple, list]:
        groups: dict[tuple, list] = {}
        for row in rows:
            m = row.result.measurement
            group = (key.value(row) if key.value else None, m.input_tier if tiers else None,
                     m.concurrency if levels else None, m.provider, m.model)
            groups.setdefault(group, []).append(m)
        return groups

    def within(group: object, tier: object, level: object) -> str:
        parts = [f"{key.header} {group_label(group, key)}"] if key.value and key.column else []
        parts += [f"input tier {group_label(tier, GROUP_KEYS['tier'])}"] if tiers else []
        parts += [f"in flight {level}" if level is not None else "one at a time"] if levels else []
        return ", ".join(parts)

    a, b = by_group(before), by_group(after)
    comparisons = []
    for group in sorted(set(a) & set(b), key=lambda parts: tuple(_group_order(part) for part in parts)):
        changes = []
        for metric, unit, get in _COMPARED:
            xs = [v for m in a[group] if m.success and (v := get(m)) is not None]
            ys = [v for m in b[group] if m.success and (v := get(m)) is not None]
            changes.append(Change(metric, unit, percentile(xs, 50), percentile(ys, 50), bootstrap_interval(xs, ys)))
        comparisons.append(Comparison(group[3], group[4], (len(a[group]), len(b[group])), tuple(changes),
                                      within(*group[:3])))
    return comparisons


def comparison_json(comparisons: Sequence[Comparison], title_a: str, title_b: str) -> str:
    """`--compare --format json`: the same changes as the text, each with its verdict named as in the text."""
    words = {"up": "slower", "down": "faster", "same": "within noise", "?": None}
    return json.dumps({
        "a": title_a,
        "b": title_b,
        "min_relative_change": MIN_RELATIVE_CHANGE,
        "comparisons": [
            {
                "provider": c.provider, "model": c.model, "within": c.within or None,
                "requests_a": c.requests[0], "requests_b": c.requests[1],
                "changes": [
                    {
                        "metric": change.metric, "unit": "USD" if change.unit == "$" else change.unit,
                        "median_a": change.before, "median_b": change.after, "difference": change.difference,
                        "interval": list(change.interval) if change.interval else None,
                        "verdict": ({**words, "up": "dearer", "down": "cheaper"} if change.metric == "cost"
                                    else words)[change.verdict],
                    }
                    for change in c.changes
                ],
            }
            for c in comparisons
        ],
    }, indent=2)


def format_comparison(comparisons: Sequence[Comparison], title_a: str, title_b: str) -> str:
    words = {"TTFT": ("SLOWER", "faster"), "latency": ("SLOWER", "faster"), "cost": ("DEARER", "cheaper")}
    lines = [f"A: {title_a}", f"B: {title_b}",
             "median A -> B (difference, 95 % bootstrap interval of it); marked when the interval excludes 0 "
             f"and the median moved by {MIN_RELATIVE_CHANGE:.0%} or more"]
    for c in comparisons:
        within = f", {c.within}" if c.within else ""
        lines.append(f"{c.provider} / {c.model}{within} ({c.requests[0]} -> {c.requests[1]} requests)")
        for change in c.changes:
            fmt = ".6f" if change.unit == "$" else ".1f"
            if change.before is None or change.after is None:
                lines.append(f"   {change.metric}: - (fewer than 2 samples on a side)")
                continue
            interval = (
                f", interval {change.interval[0]:+{fmt}}..{change.interval[1]:+{fmt}}" if change.interval else ""
            )
            verdict = {
                "up": words[change.metric][0], "down": words[change.metric][1], "same": "within noise", "?": "",
            }[change.verdict]
            lines.append(
                f"   {change.metric}: {change.before:{fmt}} -> {change.after:{fmt}} {change.unit} "
                f"({change.difference:+{fmt}}{interval}) {verdict}".rstrip()
            )
    if not comparisons:
        lines.append("no provider and model appears in both A and B "
                     "(in the same group, with --by, tiers or load levels)")
    return "\n".join(lines)
