"""The columns of `runs` and `benchmark_results`, shared by every backend.

schema.sql is the source of truth for Postgres and Supabase; this list mirrors it (a test compares them) and
generates the SQLite DDL. The MVP's columns come first and keep their types; every later column is nullable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import MISSING, fields
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
import json
import math
import re
from typing import Any, Callable, Iterable, Sequence
from uuid import SafeUUID, UUID

from ..measurement import Measurement
from ..redaction import scrub
from .base import GroupValues, ResultFilters, RunInfo, SelectionSpan, StoredAlert, StoredResult, StoredRun

# (column, Postgres type as written in schema.sql)
RUNS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("run_name", "text"),
    ("triggered_by", "text"),
    ("started_at", "timestamptz"),
    ("finished_at", "timestamptz"),
    ("status", "text"),
    ("mode", "text"),
    ("host", "text"),
    ("region", "text"),
    ("tool_version", "text"),
    ("settings", "jsonb"),
    ("pid", "integer"),
    ("kind", "text"),
    ("summary", "jsonb"),
)

RESULTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("run_id", "uuid"),
    ("provider", "text"),
    ("model", "text"),
    ("input_tokens", "integer"),
    ("output_tokens", "integer"),
    ("latency_ms", "double precision"),
    ("cost_usd", "double precision"),
    ("success", "boolean"),
    ("error_message", "text"),
    ("response_text", "text"),
    ("created_at", "timestamptz"),
    ("started_at", "timestamptz"),
    ("ttft_ms", "double precision"),
    ("answer_ttft_ms", "double precision"),
    ("tokens_per_second", "double precision"),
    ("cached_tokens", "integer"),
    ("reasoning_tokens", "integer"),
    ("finish_reason", "text"),
    ("request_id", "text"),
    ("stream", "boolean"),
    ("attempts", "integer"),
    ("error_type", "text"),
    ("http_status", "integer"),
    ("response_truncated", "boolean"),
    ("cost_source", "text"),
    ("price_input_per_mtok", "numeric"),
    ("price_cached_input_per_mtok", "numeric"),
    ("price_output_per_mtok", "numeric"),
    ("price_as_of", "text"),
    ("endpoint", "text"),
    ("upstream_provider", "text"),
    ("token_source", "text"),
    ("workload", "text"),
    ("prompt_id", "text"),
    ("input_tier", "integer"),
    ("round", "integer"),
    ("position", "integer"),
    ("cache_mode", "text"),
    ("answer_ok", "boolean"),
    ("ratelimit_remaining_requests", "integer"),
    ("ratelimit_remaining_tokens", "integer"),
    ("concurrency", "integer"),
    ("level_started_at", "timestamptz"),
    ("start_lag_ms", "double precision"),
    ("node", "text"),
)

# The alerts table: the columns others may read (rule .. details), then this tool's notification bookkeeping.
ALERTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("rule", "text"),
    ("provider", "text"),
    ("model", "text"),
    ("metric", "text"),
    ("state", "text"),
    ("started_at", "timestamptz"),
    ("last_seen_at", "timestamptz"),
    ("resolved_at", "timestamptz"),
    ("details", "jsonb"),
    ("run_id", "uuid"),
    ("host", "text"),
    ("notified_firing_at", "timestamptz"),
    ("notified_resolved_at", "timestamptz"),
    ("notify_attempts", "integer"),
    ("notify_error", "text"),
)

_NUMBER_FIELDS = tuple(name for name, kind in RESULTS_COLUMNS if kind in ("double precision", "numeric"))
_MEASUREMENT_FIELDS = tuple(name for name, _ in RESULTS_COLUMNS if name not in ("id", "run_id", "created_at"))

# PostgreSQL's text and jsonb cannot hold NUL, and no backend can encode a lone UTF-16 surrogate (what a provider's
# JSON decodes to when an escape like \ud83d is cut off): either would make the row unstorable anywhere. Both become
# U+FFFD, the Unicode replacement character, here, where every backend and the outbox take their rows from.
REPLACEMENT_CHARACTER = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str, patterns: bool = True) -> str:
    """The text scrubbed of secrets (redaction.scrub; `patterns`: key-shaped text too), with NUL and lone surrogates
    replaced by U+FFFD. Every backend and the outbox take their rows from here: the one storage boundary."""
    text = scrub(text, patterns=patterns)
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT_CHARACTER)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub(REPLACEMENT_CHARACTER, text)
    return text


def storable(value: Any) -> Any:
    """A value with every string in it (dict keys and values, list items) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    return value


def run_row(run: RunInfo) -> dict[str, object]:
    """The columns of a new run (status 'running'); settings stay a dict for each backend to encode."""
    return {
        "id": run.id,
        "run_name": storable(run.run_name),
        "triggered_by": storable(run.triggered_by),
        "started_at": run.started_at,
        "status": "running",
        "mode": run.mode,
        "host": storable(run.host),
        "region": storable(run.region),
        "tool_version": run.tool_version,
        "settings": storable(run.settings),
        "pid": run.pid,
        "kind": run.kind,
    }


def selected_result_columns(with_text: bool) -> list[str]:
    """The columns a read asks for; without the answer text a report over many rows reads far less."""
    return [name for name, _ in RESULTS_COLUMNS if with_text or name != "response_text"]


@lru_cache(maxsize=4096)
def _parse_uuid(text: str) -> UUID:
    return UUID(text)


def _fast_uuid(text: str) -> UUID:
    """UUID(text) in a third of the time: the text is a stored UUID, canonical, not user input."""
    uuid = object.__new__(UUID)
    object.__setattr__(uuid, "int", int(text.replace("-", ""), 16))
    object.__setattr__(uuid, "is_safe", SafeUUID.unknown)
    return uuid


def _uuid(value: object) -> UUID:
    # Cached: the rows of one run repeat its run_id, and parsing was a quarter of a 100,000-row report.
    return value if isinstance(value, UUID) else _parse_uuid(str(value))


def _time(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def stored_run_from_row(row: dict[str, object]) -> StoredRun:
    """A `runs` row as any backend returns it (text or typed values) back into a StoredRun."""
    settings = row["settings"]
    if isinstance(settings, str):
        settings = json.loads(settings)
    info = RunInfo(
        id=_uuid(row["id"]),
        run_name=row["run_name"],
        triggered_by=row["triggered_by"],
        started_at=_time(row["started_at"]),
        mode=row["mode"],
        host=row["host"],
        region=row["region"],
        tool_version=row["tool_version"],
        settings=settings or {},
        pid=row.get("pid"),
        kind=row.get("kind") or "sequential",
    )
    return StoredRun(info=info, status=row["status"], finished_at=_time(row["finished_at"]),
                     summary=_summary(row.get("summary")))


def _summary(stored: object) -> dict[str, object] | None:
    """A run's summary as stored: JSON text (SQLite), or already a dict (PostgreSQL's jsonb, PostgREST's JSON)."""
    return json.loads(stored) if isinstance(stored, str) else stored  # type: ignore[return-value]


def stored_result_from_row(row: dict[str, object]) -> StoredResult:
    """A `benchmark_results` row as any backend returns it back into a StoredResult."""
    return StoredResult(
        id=_uuid(row["id"]), run_id=_uuid(row["run_id"]), created_at=_time(row["created_at"]),
        measurement=measurement_from_row(row),
    )


def stored_alert_from_row(row: dict[str, object]) -> StoredAlert:
    """An `alerts` row as any backend returns it back into a StoredAlert."""
    details = row.get("details")
    if isinstance(details, str):
        details = json.loads(details)
    return StoredAlert(
        id=_uuid(row["id"]), rule=row["rule"], provider=row["provider"], model=row["model"], metric=row["metric"],
        state=row["state"], started_at=_time(row["started_at"]), last_seen_at=_time(row["last_seen_at"]),
        resolved_at=_time(row["resolved_at"]), details=details or {},
        run_id=_uuid(row["run_id"]) if row.get("run_id") else None, host=row.get("host"),
        notified_firing_at=_time(row.get("notified_firing_at")),
        notified_resolved_at=_time(row.get("notified_resolved_at")),
        notify_attempts=row.get("notify_attempts") or 0, notify_error=row.get("notify_error"),
    )


def result_row(run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> dict[str, object]:
    """Flatten a Measurement into the column values every backend stores, in column order.

    Text is made storable (NUL and lone surrogates become U+FFFD). cost_usd becomes a float because the MVP's column
    is double precision; the prices stay Decimal.
    """
    row: dict[str, object] = {"id": result_id, "run_id": run_id, "created_at": created_at}
    for name in _MEASUREMENT_FIELDS:
        value = getattr(m, name)
        # The answer keeps what only looks like a key ("the bearer of news"): known secrets are scrubbed from it.
        row[name] = storable_text(value, patterns=False) if name == "response_text" and value else storable(value)
    row["cost_usd"] = float(m.cost_usd) if m.cost_usd is not None else None
    return row


def measurement_from_row(row: dict[str, object]) -> Measurement:
    """Rebuild a Measurement from stored column values (the inverse of result_row, less id/run_id/created_at)."""
    values = {name: row.get(name) for name in _MEASUREMENT_FIELDS}  # columns not read (response_text) are None
    for name in _NUMBER_FIELDS:
        # A NaN or infinity an older version stored (PostgreSQL keeps them) is no measurement: read as NULL.
        value = values[name]
        if isinstance(value, (float, Decimal)) and not math.isfinite(value):
            values[name] = None
    if values["cost_usd"] is not None:
        values["cost_usd"] = Decimal(str(values["cost_usd"]))
    for name in ("price_input_per_mtok", "price_cached_input_per_mtok", "price_output_per_mtok"):
        if values[name] is not None and not isinstance(values[name], Decimal):
            values[name] = Decimal(str(values[name]))
    for name in ("success", "stream", "response_truncated", "answer_ok"):
        if values[name] is not None:
            values[name] = bool(values[name])
    for name in ("started_at", "level_started_at"):
        if isinstance(values[name], str):
            values[name] = datetime.fromisoformat(values[name])
    if values["response_truncated"] is None:
        values["response_truncated"] = False
    return Measurement(**values)


# ---- the report's fast read: fewer columns, no per-field __init__ ------------------------------------------------
# What a report (and what reads its rows: alerts, metrics, the load report) needs of each result; the answer text,
# error message, prices and request ids stay in the database. Exports read every column (read_results).
REPORT_COLUMNS: tuple[str, ...] = (
    "id", "run_id", "created_at", "provider", "model", "success", "ttft_ms", "latency_ms", "tokens_per_second",
    "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "error_type", "http_status", "upstream_provider",
    "workload", "prompt_id", "input_tier", "cache_mode", "answer_ok", "concurrency", "level_started_at",
    "start_lag_ms", "node", "started_at", "ratelimit_remaining_requests", "ratelimit_remaining_tokens",
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
_REPORT_FLOATS = tuple(name for name in _REPORT_MEASURED if name in _NUMBER_FIELDS and name != "cost_usd")
_MEASUREMENT_DEFAULTS = {
    f.name: None if f.default is MISSING else f.default for f in fields(Measurement)
}  # started_at, the only field without a default, is read: REPORT_COLUMNS
_RUN_DEFAULTS = {"settings": {}, "pid": None, "kind": "sequential"}
_RUN_INFO_FIELDS = tuple(f.name for f in fields(RunInfo))


def _filled(cls: type, values: dict[str, object]) -> Any:
    """A frozen dataclass instance holding `values`, made without its __init__ (which sets each field through
    object.__setattr__): a fifth of the time, for a million rows. The values must be complete and of the right type."""
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


def report_results(records: Iterable[Sequence[object]], finite: bool = True) -> list[StoredResult]:
    """Rows of REPORT_COLUMNS, as any backend returns them (text or typed), into StoredResults; `finite`: read a NaN
    or infinity as NULL (PostgreSQL can hold them; SQLite cannot)."""
    results = []
    for record in records:
        values = dict(_MEASUREMENT_DEFAULTS)
        values.update(zip(_REPORT_MEASURED, record[3:]))
        values["success"] = bool(values["success"])
        if values["answer_ok"] is not None:
            values["answer_ok"] = bool(values["answer_ok"])
        if values["cost_usd"] is not None:
            values["cost_usd"] = _cost(values["cost_usd"])
        for name in ("started_at", "level_started_at"):  # a load report's wall times
            if values[name] is not None:
                values[name] = _time(values[name])
        if finite:
            for name in _REPORT_FLOATS:
                value = values[name]
                if value is not None and not math.isfinite(value):
                    values[name] = None
        results.append(_filled(StoredResult, {
            "id": record[0] if isinstance(record[0], UUID) else _fast_uuid(str(record[0])),
            "run_id": _uuid(record[1]), "created_at": _time(record[2]), "measurement": _filled(Measurement, values),
        }))
    return results


# What the report's figures are computed from, per result, after the group's value: SQLite reads these columns in one
# pass over the covering index, the row path takes them from the rows; gather_group_values makes the figures' values.
GATHERED_COLUMNS: tuple[str, ...] = (
    "provider", "model", "success", "ttft_ms", "latency_ms", "tokens_per_second", "cost_usd", "output_tokens",
    "error_type", "upstream_provider", "answer_ok", "run_id", "created_at",
)


def gather_group_values(records: Iterable[Sequence[Any]]) -> tuple[list[GroupValues], SelectionSpan | None]:
    """(group, then GATHERED_COLUMNS) per result into the values of each group and provider/model, and the span of
    the results (its first and last times as given: text from SQLite), in one pass.

    The row path and SQLite's fast read both come through here, so both give the same figures. Values are taken as
    they are (SQLite's floats exact, as stored: no trip through text); costs are counted per distinct (cost, output
    tokens) and each distinct cost made a Decimal once.
    """
    groups: dict[tuple, tuple[list[int], list, list, list, list, list, list]] = {}
    run_ids, times = [], []
    for group, provider, model, success, ttft, latency, speed, cost, tokens, error, served, ok, run_id, created in (
            records):
        run_ids.append(run_id)
        times.append(created)
        gathered = groups.get((group, provider, model))
        if gathered is None:
            gathered = groups[(group, provider, model)] = ([0, 0, 0, 0], [], [], [], [], [], [])
        counts, ttfts, latencies, speeds, costs, errors, servers = gathered
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
        if cost is not None:
            costs.append((cost, tokens))
    values = [
        GroupValues(group, provider, model, counts[0], counts[1], ttfts, latencies, speeds, counted_costs(costs),
                    errors, servers, counts[2], counts[3])
        for (group, provider, model), (counts, ttfts, latencies, speeds, costs, errors, servers) in groups.items()
    ]
    return values, SelectionSpan(len(times), len(set(run_ids)), min(times), max(times)) if times else None


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
        info["id"], info["started_at"] = _uuid(info["id"]), _time(info["started_at"])
        info["kind"] = info["kind"] or "sequential"
        runs.append(_filled(StoredRun, {"info": _filled(RunInfo, info), "status": row["status"],
                                        "finished_at": _time(row["finished_at"]), "summary": _summary(row["summary"])}))
    return runs


def json_default(value: object) -> str:
    """`default=` for json.dumps: timestamps, UUIDs and Decimals as the text stored for them (Decimals exact)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form here")


def plain(record: dict[str, Any]) -> dict[str, Any]:
    """The record as it reads back from JSON: only strings, numbers, booleans, None, lists and dicts."""
    return json.loads(json.dumps(record, default=json_default))


def settings_json(settings: dict[str, object]) -> str:
    """The run's settings as stable JSON text."""
    return json.dumps(settings, sort_keys=True, default=str)
