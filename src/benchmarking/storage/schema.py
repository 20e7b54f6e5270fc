"""The tables' columns, shared by every backend, and their rows: made storable going in, read back coming out.

schema.sql is the source of truth for Postgres and Supabase; this list mirrors it (a test compares them) and
generates the SQLite DDL. The MVP's columns come first and keep their types; every later column is nullable.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
import json
import math
import re
from typing import Any
from uuid import UUID

from ..measurement import Measurement
from ..redaction import scrub
from .base import RunInfo, StoredAlert, StoredResult, StoredRun

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
    ("api", "text"),
    ("cache_write_tokens", "integer"),
    ("price_cache_write_per_mtok", "numeric"),
    ("session_id", "text"),
    ("turn", "integer"),
    ("tool_calls", "text"),
    ("tool_args_ms", "double precision"),
    ("json_valid", "boolean"),
    ("tool_ok", "boolean"),
    ("itl_p50_ms", "double precision"),
    ("itl_p99_ms", "double precision"),
    ("itl_max_ms", "double precision"),
    ("output_events", "integer"),
    ("request_rate", "double precision"),
    ("scheduled_at", "timestamptz"),
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

NUMBER_FIELDS = tuple(name for name, kind in RESULTS_COLUMNS if kind in ("double precision", "numeric"))
PRICE_FIELDS = tuple(name for name, kind in RESULTS_COLUMNS if kind == "numeric")  # Decimal in a Measurement
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


def storable(value: Any, patterns: bool = True) -> Any:
    """A value with every string in it (dict keys and values, list items) made storable."""
    if isinstance(value, str):
        return storable_text(value, patterns)
    if isinstance(value, dict):
        return {storable(k, patterns): storable(v, patterns) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v, patterns) for v in value]
    return value


def storable_answer_json(text: str) -> str:
    """JSON text the model wrote (its tool calls), made storable string by string: scrubbing the text as a whole
    could take a closing quote with a secret and leave JSON that no longer parses. Like the answer, it keeps what
    only looks like a key."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return storable_text(text, patterns=False)
    return json.dumps(storable(parsed, patterns=False), ensure_ascii=False)


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


def as_uuid(value: object) -> UUID:
    # Cached: the rows of one run repeat its run_id, and parsing was a quarter of a 100,000-row report.
    return value if isinstance(value, UUID) else _parse_uuid(str(value))


def as_time(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def stored_run_from_row(row: dict[str, object]) -> StoredRun:
    """A `runs` row as any backend returns it (text or typed values) back into a StoredRun."""
    settings = row["settings"]
    if isinstance(settings, str):
        settings = json.loads(settings)
    info = RunInfo(
        id=as_uuid(row["id"]),
        run_name=row["run_name"],
        triggered_by=row["triggered_by"],
        started_at=as_time(row["started_at"]),
        mode=row["mode"],
        host=row["host"],
        region=row["region"],
        tool_version=row["tool_version"],
        settings=settings or {},
        pid=row.get("pid"),
        kind=row.get("kind") or "sequential",
    )
    return StoredRun(info=info, status=row["status"], finished_at=as_time(row["finished_at"]),
                     summary=as_summary(row.get("summary")))


def as_summary(stored: object) -> dict[str, object] | None:
    """A run's summary as stored: JSON text (SQLite), or already a dict (PostgreSQL's jsonb, PostgREST's JSON)."""
    return json.loads(stored) if isinstance(stored, str) else stored  # type: ignore[return-value]


def stored_result_from_row(row: dict[str, object]) -> StoredResult:
    """A `benchmark_results` row as any backend returns it back into a StoredResult."""
    return StoredResult(
        id=as_uuid(row["id"]), run_id=as_uuid(row["run_id"]), created_at=as_time(row["created_at"]),
        measurement=measurement_from_row(row),
    )


def stored_alert_from_row(row: dict[str, object]) -> StoredAlert:
    """An `alerts` row as any backend returns it back into a StoredAlert."""
    details = row.get("details")
    if isinstance(details, str):
        details = json.loads(details)
    return StoredAlert(
        id=as_uuid(row["id"]), rule=row["rule"], provider=row["provider"], model=row["model"], metric=row["metric"],
        state=row["state"], started_at=as_time(row["started_at"]), last_seen_at=as_time(row["last_seen_at"]),
        resolved_at=as_time(row["resolved_at"]), details=details or {},
        run_id=as_uuid(row["run_id"]) if row.get("run_id") else None, host=row.get("host"),
        notified_firing_at=as_time(row.get("notified_firing_at")),
        notified_resolved_at=as_time(row.get("notified_resolved_at")),
        notify_attempts=row.get("notify_attempts") or 0, notify_error=row.get("notify_error"),
    )


def _finite(value: Any) -> bool:
    """False for a NaN or an infinity (float or Decimal); True for anything else."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return True


def result_row(run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> dict[str, object]:
    """Flatten a Measurement into the column values every backend stores, in column order.

    Text is made storable (NUL and lone surrogates become U+FFFD). cost_usd becomes a float because the MVP's column
    is double precision; the prices stay Decimal.
    """
    row: dict[str, object] = {"id": result_id, "run_id": run_id, "created_at": created_at}
    for name in _MEASUREMENT_FIELDS:
        value = getattr(m, name)
        # The answer keeps what only looks like a key ("the bearer of news"): known secrets are scrubbed from it.
        if name == "response_text" and value:
            row[name] = storable_text(value, patterns=False)
        elif name == "tool_calls" and value:
            row[name] = storable_answer_json(value)
        elif not _finite(value):
            # A NaN or infinity is no measurement: stored as NULL on every backend (SQLite keeps infinities, which
            # its reads took as values: the same rows gave a median of NaN there and 1.0 on PostgreSQL).
            row[name] = None
        else:
            row[name] = storable(value)
    cost = row["cost_usd"]
    row["cost_usd"] = float(cost) if cost is not None else None
    return row


def measurement_from_row(row: dict[str, object]) -> Measurement:
    """Rebuild a Measurement from stored column values (the inverse of result_row, less id/run_id/created_at)."""
    values = {name: row.get(name) for name in _MEASUREMENT_FIELDS}  # columns not read (response_text) are None
    for name in NUMBER_FIELDS:
        # A NaN or infinity an older version stored (PostgreSQL keeps them) is no measurement: read as NULL.
        if not _finite(values[name]):
            values[name] = None
    if values["cost_usd"] is not None:
        values["cost_usd"] = Decimal(str(values["cost_usd"]))
    for name in PRICE_FIELDS:
        if values[name] is not None and not isinstance(values[name], Decimal):
            values[name] = Decimal(str(values[name]))
    for name in ("success", "stream", "response_truncated", "answer_ok", "json_valid", "tool_ok"):
        if values[name] is not None:
            values[name] = bool(values[name])
    for name in ("started_at", "level_started_at", "scheduled_at"):
        if isinstance(values[name], str):
            values[name] = datetime.fromisoformat(values[name])
    if values["response_truncated"] is None:
        values["response_truncated"] = False
    return Measurement(**values)


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
