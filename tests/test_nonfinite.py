"""A NaN or an infinity is no measurement. Stored as NULL on every backend (the one storage boundary), and read as
NULL where an older version stored one: SQLite keeps infinities, and its reads took them as values, so the same rows
gave a median of NaN on SQLite (inf + (inf - inf) * 0) and 1.0 on PostgreSQL, and `report --format json` and the
site's data.json held NaN and Infinity, which are not JSON."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import json
import math
import sqlite3
from uuid import uuid4

from benchmarking.cli import main
from benchmarking.storage.sqlite import SQLiteStorage

from test_site import measured
from test_storage_sqlite import run_info


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in what should be JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_values_are_stored_and_read_as_unknown(tmp_path, monkeypatch, capsys):
    for name in ("DATABASE_URL", "SUPABASE_URL", "SUPABASE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    path = tmp_path / "benchmarks.db"
    with SQLiteStorage(path) as storage:
        run = run_info(started_at=now, mode="live")
        storage.create_run(run)
        for index, ttft in enumerate((1.0, math.inf, -math.inf, math.nan, 3.0)):
            m = measured("groq", "fast", ttft, 10.0 + index, now + timedelta(seconds=index))
            storage.save_result(run.id, uuid4(), now + timedelta(seconds=index), m)
    with sqlite3.connect(path) as db:
        stored = [row[0] for row in db.execute("select ttft_ms from benchmark_results order by created_at")]
        assert stored == [1.0, None, None, None, 3.0]
        # an older version's row: an infinity, as SQLite keeps it
        db.execute("update benchmark_results set ttft_ms = 9e999, tokens_per_second = -9e999 where ttft_ms = 3.0")
    report = _strict(_report(capsys))
    (row,) = report["providers"]
    assert row["ttft_p50_ms"] == 1.0  # the one finite TTFT left, as PostgreSQL's read gives
    assert main(["report", "--site", "site"]) == 0
    capsys.readouterr()
    _strict((tmp_path / "site" / "data.json").read_text())


def _report(capsys) -> str:
    assert main(["report", "--format", "json"]) == 0
    return capsys.readouterr().out
