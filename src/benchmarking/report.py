"""`python main.py report`: which provider is fastest, most reliable and cheapest, and is it getting worse?

Everything is computed here, in Python, on the stored rows, so that every backend gives the same numbers.
Percentiles use linear interpolation between closest ranks (Hyndman and Fan's type 7, NumPy's default);
with fewer than 2 samples a percentile is not defined and is shown as "-".
"""

from __future__ import annotations

from collections import Counter
import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
import io
import json
import math
import random
import re
from pathlib import Path
from statistics import median
from typing import Callable, Iterable, Sequence
from uuid import UUID

from .errors import ConfigError
from .measurement import utc_now
from .slo import Attainment
from .storage import Storage, StoredResult, StoredRun
from .storage.schema import plain, result_row

PERCENTILES = (50, 90, 95, 99)
BOOTSTRAP_RESAMPLES = 2000
MIN_RELATIVE_CHANGE = 0.05
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_AGO_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile by linear interpolation between closest ranks; None for fewer than 2 values."""
    if len(values) < 2:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


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

    def describe(self) -> str:
        parts = []
        if self.run_ids:
            parts.append("run " + ", ".join(sorted(str(r) for r in self.run_ids)))
        if self.last:
            parts.append("the newest run")
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


@dataclass(frozen=True)
class Row:
    """One stored result with the run it belongs to."""

    result: StoredResult
    run: StoredRun


def select(storage: Storage, selection: Selection, with_text: bool = False) -> list[Row]:
    """The stored results the selection covers, oldest first (answer texts only if asked: exports want them)."""
    runs = {r.info.id: r for r in storage.read_runs()}
    eligible = {
        run_id: run for run_id, run in runs.items() if selection.include_simulated or run.info.mode != "simulated"
    }
    wanted = set(eligible)
    if selection.run_ids is not None:
        wanted &= set(selection.run_ids)
    if selection.last and wanted:
        newest = max(wanted, key=lambda run_id: eligible[run_id].info.started_at)
        wanted = {newest}
    rows = []
    # The database narrows what it can (one run, --since); the rest is filtered here, the same on every backend.
    one_run = next(iter(wanted)) if len(wanted) == 1 else None
    if not wanted:
        return []
    for result in storage.read_results(one_run, selection.since, with_text):
        if result.run_id not in wanted:
            continue
        m = result.measurement
        if selection.providers and m.provider not in selection.providers:
            continue
        if selection.models and m.model not in selection.models:
            continue
        if selection.since and result.created_at < selection.since:
            continue
        if selection.until and result.created_at > selection.until:
            continue
        rows.append(Row(result, eligible[result.run_id]))
    rows.sort(key=lambda row: row.result.created_at)
    return rows


@dataclass(frozen=True)
class Summary:
    """One provider and model over the selected results; times in ms, costs in USD."""

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

    @property
    def success_rate(self) -> float:
        return self.successes / self.requests if self.requests else 0.0


def _summary(provider: str, model: str, rows: list[Row]) -> Summary:
    measurements = [row.result.measurement for row in rows]
    ok = [m for m in measurements if m.success]
    ttft = [m.ttft_ms for m in ok if m.ttft_ms is not None]
    latency = [m.latency_ms for m in ok if m.latency_ms is not None]
    speed = [m.tokens_per_second for m in ok if m.tokens_per_second is not None]
    costed = [m for m in ok if m.cost_usd is not None]
    total = sum((m.cost_usd for m in costed), Decimal(0)) if costed else None
    priced_output = [m for m in costed if m.output_tokens]
    output_tokens = sum(m.output_tokens for m in priced_output)
    per_1k = (
        sum((m.cost_usd for m in priced_output), Decimal(0)) / output_tokens * 1000 if output_tokens else None
    )
    errors = Counter(m.error_type or "unknown" for m in measurements if not m.success)
    return Summary(
        provider=provider,
        model=model,
        requests=len(measurements),
        successes=len(ok),
        ttft_ms={q: percentile(ttft, q) for q in PERCENTILES},
        latency_ms={q: percentile(latency, q) for q in PERCENTILES},
        tokens_per_second_p50=percentile(speed, 50),
        cost_mean_usd=total / len(costed) if costed else None,
        cost_total_usd=total,
        cost_per_1k_output_tokens_usd=per_1k,
        top_errors=tuple(errors.most_common(3)),
        upstream_providers=tuple(Counter(m.upstream_provider for m in measurements if m.upstream_provider)
                                 .most_common()),
    )


def summarise(rows: Iterable[Row]) -> list[Summary]:
    """One Summary per (provider, model), sorted by median TTFT (undefined last); fastest and cheapest marked.

    Fastest: the lowest median latency (the whole answer). Cheapest: the lowest mean cost per request.
    """
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        m = row.result.measurement
        groups.setdefault((m.provider, m.model), []).append(row)
    summaries = [_summary(provider, model, group) for (provider, model), group in groups.items()]

    def best(key: Callable[[Summary], object]) -> Summary | None:
        candidates = [s for s in summaries if key(s) is not None]
        return min(candidates, key=key) if len(candidates) > 1 else None  # type: ignore[arg-type, return-value]

    fastest = best(lambda s: s.latency_ms[50])
    cheapest = best(lambda s: s.cost_mean_usd)
    marked = [
        Summary(**{**s.__dict__, "fastest": s is fastest, "cheapest": s is cheapest}) for s in summaries
    ]
    return sorted(marked, key=lambda s: (s.ttft_ms[50] is None, s.ttft_ms[50] or 0.0, s.provider, s.model))


# ---- output -----------------------------------------------------------------------------------------------------

def summary_fields(s: Summary) -> dict[str, object]:
    """The fields json and csv carry, units in their names."""
    values: dict[str, object] = {
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


def _quantiles(values: dict[int, float | None]) -> str:
    return " / ".join(_cell(values[q]) for q in PERCENTILES)


def _table_rows(summaries: Sequence[Summary]) -> tuple[list[str], list[list[str]]]:
    quantiles = "/".join(f"p{q}" for q in PERCENTILES)
    served_by = any(s.upstream_providers for s in summaries)  # a column only where a router says who served
    slo = any(s.slo for s in summaries)  # columns only when an [slo] sets per-request targets
    header = ["provider", "model", "requests", "ok %", f"TTFT ms {quantiles}", f"latency ms {quantiles}",
              "tokens/s", "mean $", "total $", "$ per 1k out", "errors"] + (["served by"] if served_by else [])
    header += (["SLO met %", "goodput/h"] if slo else []) + [""]
    rows = []
    for s in summaries:
        marks = " ".join(mark for mark, on in (("fastest", s.fastest), ("cheapest", s.cheapest)) if on)
        rows.append(
            [s.provider, s.model, str(s.requests), f"{s.success_rate * 100:.0f}",
             _quantiles(s.ttft_ms), _quantiles(s.latency_ms), _cell(s.tokens_per_second_p50)]
            + [_cell(_decimal(v)) for v in (s.cost_mean_usd, s.cost_total_usd, s.cost_per_1k_output_tokens_usd)]
            + [_counts(s.top_errors) or "-"] + ([_counts(s.upstream_providers) or "-"] if served_by else [])
            + (_slo_cells(s.slo) if slo else []) + [marks]
        )
    return header, rows


def _slo_cells(slo: Attainment | None) -> list[str]:
    if slo is None:
        return ["-", "-"]
    percent = None if slo.attainment is None else slo.attainment * 100
    return [_cell(percent), _cell(slo.goodput_per_hour)]


def format_table(summaries: Sequence[Summary], title: str) -> str:
    header, rows = _table_rows(summaries)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = {i for i, name in enumerate(header) if name in ("provider", "model", "errors", "served by", "")}
    lines = [title]
    for row in [header, *rows]:
        cells = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.append("times over successful requests; tokens/s is the median decode speed; percentiles by linear "
                 "interpolation, '-' below 2 samples; fastest = lowest median latency, cheapest = lowest mean cost")
    return "\n".join(lines)


def format_markdown(summaries: Sequence[Summary], title: str) -> str:
    header, rows = _table_rows(summaries)
    header[-1] = "marks"
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def format_csv(summaries: Sequence[Summary]) -> str:
    out = io.StringIO()
    records = [summary_fields(s) for s in summaries]
    writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["provider"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def format_json(summaries: Sequence[Summary], title: str, selection: Selection, rows: Sequence[Row]) -> str:
    return json.dumps(
        {
            "title": title,
            "selection": selection.describe(),
            "results": len(rows),
            "runs": len({row.run.info.id for row in rows}),
            "providers": [summary_fields(s) for s in summaries],
        },
        indent=2,
    )


def title_for(rows: Sequence[Row], selection: Selection) -> str:
    runs = {row.run.info.id for row in rows}
    first, last = rows[0].result.created_at, rows[-1].result.created_at
    span = f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    return f"{len(rows)} results from {len(runs)} run(s), {span} ({selection.describe()})"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as out:
        if suffix == ".jsonl":
            for record in records:
                out.write(json.dumps(record) + "\n")
        else:
            fieldnames = list(records[0]) if records else []
            writer = csv.DictWriter(out, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(records)
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


_COMPARED = (
    ("TTFT", "ms", lambda m: m.ttft_ms),
    ("latency", "ms", lambda m: m.latency_ms),
    ("cost", "$", lambda m: float(m.cost_usd) if m.cost_usd is not None else None),
)


def compare(before: Sequence[Row], after: Sequence[Row]) -> list[Comparison]:
    """Per provider and model in both selections: the change in median TTFT, latency and cost, with intervals."""

    def by_group(rows: Sequence[Row]) -> dict[tuple[str, str], list]:
        groups: dict[tuple[str, str], list] = {}
        for row in rows:
            m = row.result.measurement
            groups.setdefault((m.provider, m.model), []).append(m)
        return groups

    a, b = by_group(before), by_group(after)
    comparisons = []
    for key in sorted(set(a) & set(b)):
        changes = []
        for metric, unit, get in _COMPARED:
            xs = [v for m in a[key] if m.success and (v := get(m)) is not None]
            ys = [v for m in b[key] if m.success and (v := get(m)) is not None]
            changes.append(Change(metric, unit, percentile(xs, 50), percentile(ys, 50), bootstrap_interval(xs, ys)))
        comparisons.append(Comparison(key[0], key[1], (len(a[key]), len(b[key])), tuple(changes)))
    return comparisons


def format_comparison(comparisons: Sequence[Comparison], title_a: str, title_b: str) -> str:
    words = {"TTFT": ("SLOWER", "faster"), "latency": ("SLOWER", "faster"), "cost": ("DEARER", "cheaper")}
    lines = [f"A: {title_a}", f"B: {title_b}",
             "median A -> B (difference, 95 % bootstrap interval of it); marked when the interval excludes 0 "
             f"and the median moved by {MIN_RELATIVE_CHANGE:.0%} or more"]
    for c in comparisons:
        lines.append(f"{c.provider} / {c.model} ({c.requests[0]} -> {c.requests[1]} requests)")
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
        lines.append("no provider and model appears in both A and B")
    return "\n".join(lines)
