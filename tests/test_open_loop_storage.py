"""The open loop's columns (request_rate, scheduled_at) on every backend: stored, read back for the report, replayed
from an outbox, exported."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
import json
from uuid import uuid4

import pytest

from test_storage_sqlite import full_measurement, run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

SCHEDULED = datetime(2026, 12, 7, 19, 0, 0, 250125, tzinfo=timezone.utc)


def open_loop_row():
    return replace(full_measurement(), request_rate=12.5, scheduled_at=SCHEDULED, start_lag_ms=1.75)


def test_an_open_loop_row_round_trips_on_every_backend_and_reaches_the_report_and_exports(open_backend, tmp_path):
    from benchmarking.report.formats import export
    from benchmarking.report.rate import by_rate
    from benchmarking.report.selection import Selection, select
    from benchmarking.storage.base import ResultFilters
    from benchmarking.storage.outbox.entries import apply_entry, encode_create_run, encode_save_result

    run, direct, replayed = run_info(), uuid4(), uuid4()
    at = datetime(2026, 12, 7, 19, 1, tzinfo=timezone.utc)
    entry = json.loads(json.dumps(encode_save_result(run.id, replayed, at, open_loop_row())))  # as the file has it
    with open_backend() as storage:
        storage.prepare()
        apply_entry(storage, encode_create_run(run))
        storage.save_result(run.id, direct, at, open_loop_row())
        apply_entry(storage, entry)
    with open_backend() as storage:
        stored = {r.id: r.measurement for r in storage.read_results(run.id)}
        reported = storage.read_report_results(ResultFilters())
        rows = select(storage, Selection(include_simulated=True), with_text=True)
    assert stored[direct] == open_loop_row() == stored[replayed]
    assert {(r.measurement.request_rate, r.measurement.scheduled_at) for r in reported} == {(12.5, SCHEDULED)}
    (rate,) = by_rate(rows)
    assert (rate.request_rate, rate.requests) == (12.5, 2)
    assert rate.response_ms[50] == pytest.approx(open_loop_row().latency_ms + 1.75)
    assert export(rows, tmp_path / "rows.jsonl") == 2
    records = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert {(r["request_rate"], datetime.fromisoformat(r["scheduled_at"])) for r in records} == {(12.5, SCHEDULED)}
