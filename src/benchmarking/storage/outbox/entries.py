"""What a line of the outbox holds: a write encoded as an entry, and the write an entry stands for."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from decimal import InvalidOperation
import json
from typing import Any, Callable
from uuid import UUID

from ...measurement import Measurement
from ..base import RunInfo, Storage
from ..schema import measurement_from_row, plain, result_row, storable

_RUN_FIELDS = {field.name for field in fields(RunInfo)}


# Each encoder returns the entry as it reads back from the file, so that a direct write and a replay take one path.
def encode_create_run(run: RunInfo) -> dict[str, Any]:
    return plain({"op": "create_run", "run": storable({**run.__dict__})})


def encode_save_result(run_id: UUID, result_id: UUID, created_at: datetime, m: Measurement) -> dict[str, Any]:
    row = result_row(run_id, result_id, created_at, m)
    row["cost_usd"] = str(m.cost_usd) if m.cost_usd is not None else None  # exact, not the float column value
    return plain({"op": "save_result", "row": row})


def encode_finish_run(
    run_id: UUID, status: str, finished_at: datetime, summary: dict[str, object] | None = None
) -> dict[str, Any]:
    entry = {"op": "finish_run", "run_id": run_id, "status": status, "finished_at": finished_at}
    return plain({**entry, "summary": storable(summary)} if summary else entry)


def _call(entry: dict[str, Any]) -> Callable[[Storage], None]:
    """The write an entry stands for; ValueError, KeyError, TypeError (...) if it does not have an entry's shape."""
    op = entry["op"]
    if op == "create_run":
        # Only the fields this version knows: a newer version's extra fields do not make the entry unreadable.
        run = {name: value for name, value in entry["run"].items() if name in _RUN_FIELDS}
        run["id"] = UUID(run["id"])
        run["started_at"] = datetime.fromisoformat(run["started_at"])
        info = RunInfo(**run)
        return lambda storage: storage.create_run(info)
    if op == "save_result":
        row = entry["row"]
        args = (UUID(row["run_id"]), UUID(row["id"]), datetime.fromisoformat(row["created_at"]),
                measurement_from_row(row))
        return lambda storage: storage.save_result(*args)
    if op == "finish_run":
        run_id, status = UUID(entry["run_id"]), entry["status"]
        finished_at = datetime.fromisoformat(entry["finished_at"])
        if not isinstance(status, str):
            raise TypeError("status is not text")
        summary = entry.get("summary")
        if summary is not None and not isinstance(summary, dict):
            raise TypeError("summary is not an object")
        return lambda storage: storage.finish_run(run_id, status, finished_at, summary)
    raise ValueError(f"unknown outbox entry {op!r}")


def entry_id(entry: dict[str, Any]) -> str:
    """What an entry writes: its result row's id, or its run's id (create_run, finish_run)."""
    for holder in (entry.get("row"), entry.get("run")):
        if isinstance(holder, dict):
            return str(holder.get("id"))
    return str(entry.get("run_id"))


def apply_entry(storage: Storage, entry: dict[str, Any]) -> None:
    """Replay one outbox entry on a backend, with its original ids and timestamps."""
    _call(entry)(storage)


def readable(line: bytes) -> dict[str, Any] | None:
    """The entry a line holds, or None if it cannot be one (cut short, not UTF-8, not JSON, the wrong shape)."""
    try:
        entry = json.loads(line.decode("utf-8"))
        if not isinstance(entry, dict):
            return None
        if not isinstance(entry.get("database", ""), str) or not isinstance(entry.get("rejected_because", ""), str):
            return None
        _call(entry)
    except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation):
        return None
    return entry
