"""What a report reads, shared by every backend: few columns, rows made into results fast, filters as SQL, and the
values of the report's figures gathered in one pass."""

from __future__ import annotations

from array import array
from collections import Counter
from contextlib import contextmanager
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from decimal import Decimal
import gc
import math
from typing import Any, Callable, Iterable, Iterator, Sequence
from uuid import SafeUUID, UUID

from ..figures import quantiles
from ..measurement import Measurement
from .base import BucketMedians, GroupValues, ResultFilters, RunInfo, SelectionSpan, StoredResult, StoredRun
from .schema import NUMBER_FIELDS, PRICE_FIELDS, RUNS_COLUMNS, as_summary, as_time, as_uuid

# What a report (and what reads its rows: alerts, metrics, the load report, the conversation report) needs of each
# result; the answer text, error message and request ids stay in the database. Exports read every column
# (read_results). The input prices are read for what a conversation's cache saved (`report --by turn`).
REPORT_COLUMNS: tuple[str, ...] = (
    "id", "run_id", "created_at", "provider", "model", "success", "ttft_ms", "latency_ms", "tokens_per_second",
    "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "error_type", "http_status", "upstream_provider",
    "workload", "prompt_id", "input_tier", "cache_mode", "answer_ok", "concurrency", "level_started_at",
    "start_lag_ms", "node", "started_at", "ratelimit_remaining_requests", "ratelimit_remaining_tokens", "api",
    "cache_write_tokens", "price_input_per_mtok", "price_cached_input_per_mtok", "price_cache_write_per_mtok",
    "session_id", "turn", "tool_calls", "tool_args_ms", "json_valid", "tool_ok", "itl_p50_ms", "itl_p99_ms",
    "itl_max_ms", "output_events", "stream", "request_rate", "scheduled_at", "attempts",
)
# A covering index for the report's aggregate queries: read without touching the table's rows (and their answer
# texts), in time order for --since and --window. Costs a little on every insert; see docs/storage.md.
REPORT_INDEX_COLUMNS: tuple[str, ...] = (
    "created_at", "run_id", "provider", "model", "success", "ttft_ms", "latency_ms", "tokens_per_second",
    "cost_usd", "output_tokens", "error_type", "upstream_provider", "input_tier", "prompt_id", "answer_ok",
)
# Runs are few (one per 4 to 40 results); their settings are left out, their summary (where a load sweep stopped) kept.
REPORT_RUN_COLUMNS: tuple[str, ...] = tuple(name for name, _ in RUNS_COLUMNS if name != "settings")
_REPORT_MEASURED = REPORT_COLUMNS[3:]
_REPORT_FLOATS = tuple(name for name in _REPORT_MEASURED if name in NUMBER_FIELDS and name not in PRICE_FIELDS
                       and name != "cost_usd")
_REPORT_PRICES = tuple(name for name in _REPORT_MEASURED if name in PRICE_FIELDS)
_MEASUREMENT_DEFAULTS = {
    f.name: None if f.default is MISSING else f.default for f in fields(Measurement)
}  # started_at, the only field without a default, is read: REPORT_COLUMNS
_RUN_DEFAULTS = {"settings": {}, "pid": None, "kind": "sequential"}
_RUN_INFO_FIELDS = tuple(f.name for f in fields(RunInfo))


def _fast_uuid(text: str) -> UUID:
    """UUID(text) in a third of the time: the text is a stored UUID, canonical, not user input."""
    uuid = object.__new__(UUID)
    object.__setattr__(uuid, "int", int(text.replace("-", ""), 16))
    object.__setattr__(uuid, "is_safe", SafeUUID.unknown)
    return uuid


def _filled(cls: type, values: dict[str, object]) -> Any:
    """A frozen dataclass instance holding `values`, made without its __init__ (which sets each field through
    object.__setattr__): a fifth of the time, for a million rows. The values must be complete and of the right type."""
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


def report_results(records: Iterable[Sequence[object]]) -> list[StoredResult]:
    """Rows of REPORT_COLUMNS, as any backend returns them (text or typed), into StoredResults; a NaN or an infinity
    read as NULL (PostgreSQL holds both, SQLite infinities: older versions stored them)."""
    results = []
    for record in records:
        values = dict(_MEASUREMENT_DEFAULTS)
        values.update(zip(_REPORT_MEASURED, record[3:]))
        values["success"] = bool(values["success"])
        for name in ("answer_ok", "json_valid", "tool_ok", "stream"):
            if values[name] is not None:
                values[name] = bool(values[name])
        if values["cost_usd"] is not None:
            values["cost_usd"] = _cost(values["cost_usd"])
        for name in _REPORT_PRICES:  # Decimal, exact as stored; a NaN an old row held is no price
            if values[name] is not None:
                values[name] = _cost(values[name])
        for name in ("started_at", "level_started_at", "scheduled_at"):  # a load report's wall times
            if values[name] is not None:
                values[name] = as_time(values[name])
        for name in _REPORT_FLOATS:
            value = values[name]
            if value is not None and not math.isfinite(value):
                values[name] = None
        results.append(_filled(StoredResult, {
            "id": record[0] if isinstance(record[0], UUID) else _fast_uuid(str(record[0])),
            "run_id": as_uuid(record[1]), "created_at": as_time(record[2]), "measurement": _filled(Measurement, values),
        }))
    return results


# What the report's figures are computed from, per result, after the group's value: SQLite reads these columns in one
# pass over the covering index, the row path takes them from the rows; gather_group_values makes the figures' values.
GATHERED_COLUMNS: tuple[str, ...] = (
    "provider", "model", "success", "ttft_ms", "latency_ms", "tokens_per_second", "cost_usd", "output_tokens",
    "error_type", "upstream_provider", "answer_ok", "run_id", "created_at",
)


@contextmanager
def collector_held() -> Iterator[None]:
    """The garbage collector held off while a long history is read: its values make no reference cycle, and the
    collector's passes over the growing lists (a million values, thousands of groups) were a tenth of the read."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# Per (group, provider, model), per day (UTC, "2026-12-07"): the successful requests' TTFT and latency values
DayValues = dict[tuple, dict[str, tuple[array, array]]]


def gather_group_values(records: Iterable[Sequence[Any]], runs: set | None = None, days: DayValues | None = None
                        ) -> tuple[list[GroupValues], SelectionSpan | None]:
    """(group, then GATHERED_COLUMNS) per result into the values of each group and provider/model, and the span of
    the results (its first and last times as given: text from SQLite), in one pass; `runs` (a set) gets the run ids,
    `days` (a dict; the times must be ISO text in UTC) each group's TTFT and latency values per day, for a chart of
    the whole history: in time order, the rows of a day follow each other, and a day costs one mark, not a group.

    The row path and SQLite's fast read both come through here, so both give the same figures. Values are taken as
    they are (SQLite's floats exact, as stored: no trip through text); costs are counted per distinct (cost, output
    tokens) and each distinct cost made a Decimal once.
    """
    with collector_held():
        return _gathered(records, runs, days)


def _gathered(records: Iterable[Sequence[Any]], runs: set | None, days: DayValues | None
              ) -> tuple[list[GroupValues], SelectionSpan | None]:
    """The loop of gather_group_values."""
    groups: dict[tuple, tuple[list[int], array, array, array, list, list, list, list]] = {}
    # The run ids in a set and the first and last times as they come: lists of a million of each took 180 MB, which
    # the kernel handed out page by page (a tenth of a second)
    run_ids: set = set()
    first = last = None
    # Where each day's rows begin: (day, each group's number of TTFT and latency values then)
    day_marks: list[tuple[str, dict[tuple, tuple[int, int]]]] = []
    day = after_day = ""
    for group, provider, model, success, ttft, latency, speed, cost, tokens, error, served, ok, run_id, created in (
            records):
        run_ids.add(run_id)
        if last is None or created > last:
            last = created
        if first is None or created < first:
            first = created
        if days is not None and not day <= created < after_day:  # another day than the row before's
            day = created[:10]
            after_day = day + "\uffff"
            day_marks.append((day, {key: (len(g[1]), len(g[2])) for key, g in groups.items()}))
        gathered = groups.get((group, provider, model))
        if gathered is None:
            # The values as doubles (array): no float object each to keep, and numpy takes them as they lie
            gathered = groups[(group, provider, model)] = (
                [0, 0, 0, 0], array("d"), array("d"), array("d"), [], [], [], [])
        counts, ttfts, latencies, speeds, costs, cost_tokens, errors, servers = gathered
        counts[0] += 1
        if ok is not None:
            counts[2] += 1
            counts[3] += ok
        if served:
            servers.append(served)
        if not success:
            errors.append(error or "unknown")
            continue
        counts[1] += 1
        if ttft is not None:
            ttfts.append(ttft)
        if latency is not None:
            latencies.append(latency)
        if speed is not None:
            speeds.append(speed)
        if cost is not None:  # in two lists: a (cost, tokens) tuple per result kept the garbage collector busy
            costs.append(cost)
            cost_tokens.append(tokens)
    values = [
        GroupValues(group, provider, model, counts[0], counts[1], ttfts, latencies, speeds,
                    counted_costs(zip(costs, cost_tokens)), errors, servers, counts[2], counts[3])
        for (group, provider, model), (counts, ttfts, latencies, speeds, costs, cost_tokens, errors, servers)
        in groups.items()
    ]
    if days is not None:
        _split_by_day(groups, day_marks, days)
    if runs is not None:
        runs |= run_ids
    results = sum(counts[0] for counts, *_ in groups.values())
    return values, SelectionSpan(results, len(run_ids), first, last) if results else None


def _split_by_day(groups: dict[tuple, tuple], day_marks: list[tuple[str, dict[tuple, tuple[int, int]]]],
                  days: DayValues) -> None:
    """Each group's TTFT and latency values cut at the day marks into `days` (a day met twice, in rows out of time
    order, gathers both stretches)."""
    ends = [starts for _, starts in day_marks[1:]]
    for key, (_, ttfts, latencies, *_) in groups.items():
        ends_at = ends + [{key: (len(ttfts), len(latencies))}]
        by_day = days.setdefault(key, {})
        for (day, starts), following in zip(day_marks, ends_at):
            (ttft_from, latency_from), (ttft_to, latency_to) = starts.get(key, (0, 0)), following.get(key, (0, 0))
            if ttft_to > ttft_from or latency_to > latency_from:
                gathered = by_day.setdefault(day, (array("d"), array("d")))
                gathered[0].extend(ttfts[ttft_from:ttft_to])
                gathered[1].extend(latencies[latency_from:latency_to])


def bucket_medians(values: Iterable[Sequence[Any]], step_s: int) -> BucketMedians:
    """(day in UTC as "2026-12-07", provider, model, TTFT, latency) per successful request into the medians per
    provider, model and bucket of `step_s` seconds (a whole number of days) that Storage.read_bucket_medians gives:
    for a backend with no percentile of its own, figures.quantiles over the same values."""
    buckets: dict[str, int] = {}
    gathered: dict[tuple[str, str, int], tuple[list[float], list[float]]] = {}
    for day, provider, model, ttft, latency in values:
        bucket = buckets.get(day)
        if bucket is None:
            start = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())
            bucket = buckets[day] = start // step_s * step_s
        ttfts, latencies = gathered.setdefault((provider, model, bucket), ([], []))
        if ttft is not None:
            ttfts.append(ttft)
        if latency is not None:
            latencies.append(latency)
    return {key: (quantiles(ttfts, (50,))[50], quantiles(latencies, (50,))[50])
            for key, (ttfts, latencies) in gathered.items() if ttfts or latencies}


def counted_costs(pairs: Iterable[tuple[object, int | None]]) -> dict[tuple[Decimal, int | None], int]:
    """(cost, output tokens) pairs, the cost as stored (float, Decimal or text), into how many there are of each
    (Decimal cost, tokens); a cost that is no finite number (an old row's NaN) is left out, as the rows leave it."""
    counted: dict[tuple[Decimal, int | None], int] = {}
    for (cost, tokens), count in Counter(pairs).items():
        if (decimal := _cost(cost)) is not None:
            counted[(decimal, tokens)] = counted.get((decimal, tokens), 0) + count
    return counted


def _cost(value: object) -> Decimal | None:
    cost = value if isinstance(value, Decimal) else Decimal(str(value))
    return cost if cost.is_finite() else None


def report_where(
    filters: ResultFilters, mark: str, value: Callable[[object], object] = lambda v: v, table: str = ""
) -> tuple[str, list]:
    """The SQL condition (" where ...", or "") and its parameters for the filters on benchmark_results (`table`: its
    alias and a dot, "b."); `mark` is the driver's placeholder, `value` turns a UUID or time into what it takes.

    With `table`, results are joined to their runs (alias r): simulated runs, run ids and the newest run too.
    """
    conditions, params = [], []
    for column, operator, given in (("run_id", "=", filters.run_id), ("created_at", ">=", filters.since),
                                    ("created_at", "<=", filters.until)):
        if given is not None:
            conditions.append(f"{table}{column} {operator} {mark}")
            params.append(value(given))
    for column, names in (("provider", filters.providers), ("model", filters.models)):
        if names:
            conditions.append(f"{table}{column} in ({', '.join(mark for _ in names)})")
            params += sorted(names)
    if table:  # by run id, so that the results need no join with their runs unless grouped by a run's column
        simulated = "" if filters.include_simulated else "(select s.id from runs s where s.mode = 'simulated')"
        if simulated:
            conditions.append(f"{table}run_id not in {simulated}")
        if filters.run_ids is not None:
            conditions.append(f"{table}run_id in ({', '.join(mark for _ in filters.run_ids) or 'null'})")
            params += [value(run_id) for run_id in sorted(filters.run_ids)]
        if filters.newest_run:
            among = [f"n.id not in {simulated}" if simulated else ""]
            if filters.run_ids is not None:
                among.append(f"n.id in ({', '.join(mark for _ in filters.run_ids) or 'null'})")
                params += [value(run_id) for run_id in sorted(filters.run_ids)]
            where = " and ".join(c for c in among if c)
            conditions.append(f"{table}run_id = (select n.id from runs n{' where ' + where if where else ''}"
                              " order by n.started_at desc limit 1)")
    return (" where " + " and ".join(conditions) if conditions else ""), params


def report_runs(records: Iterable[Sequence[object]]) -> list[StoredRun]:
    """Rows of REPORT_RUN_COLUMNS into StoredRuns, with empty settings."""
    runs = []
    for record in records:
        row = dict(zip(REPORT_RUN_COLUMNS, record))
        info = dict(_RUN_DEFAULTS)
        info.update((name, row[name]) for name in _RUN_INFO_FIELDS if name in row)
        info["id"], info["started_at"] = as_uuid(info["id"]), as_time(info["started_at"])
        info["kind"] = info["kind"] or "sequential"
        runs.append(_filled(StoredRun, {"info": _filled(RunInfo, info), "status": row["status"],
                                        "finished_at": as_time(row["finished_at"]),
                                        "summary": as_summary(row["summary"])}))
    return runs
