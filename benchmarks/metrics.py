"""How long does `--metrics-file` take over a long history? Building the Prometheus metrics from 100,000 stored results
(history_metrics: the narrow read of ten columns, and the aggregation) and writing the textfile, on SQLite and
PostgreSQL; beside it, the same aggregation fed by read_results() (whole rows, without the answer text), to show what
the narrow read saves.

    python benchmarks/metrics.py            # SQLite and PostgreSQL, 100,000 stored results (about a minute)
    python benchmarks/metrics.py --quick    # 100 results, for the smoke test

The history is benchmarks/storage.py's: four providers every 15 minutes, one failure in fifty, 1 KB answers.
PostgreSQL: a scratch database on 127.0.0.1:5432, dropped afterwards; skipped if none answers (an error when
BENCHMARK_REQUIRE_POSTGRES is set). Each figure is the best of 3 (the machine is shared).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
import secrets
import sys
import tempfile
import time
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarking.watch.exposition import write_textfile  # noqa: E402
from benchmarking.watch.metrics import Metrics, history_metrics  # noqa: E402
from benchmarking.storage import Storage  # noqa: E402
from benchmarking.storage.postgres import PostgresStorage  # noqa: E402
from benchmarking.storage.sqlite import SQLiteStorage  # noqa: E402
from machine import machine_line  # noqa: E402
from storage import ADMIN_DSN, fill_postgres, fill_sqlite, postgres_available  # noqa: E402

REPEATS = 3


def best_of(action: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def from_whole_rows(storage: Storage) -> Metrics:
    """The same metrics from read_results(): what a reader without read_rows() would do."""
    modes = {run.info.id: run.info.mode for run in storage.read_runs()}
    metrics = Metrics()
    for result in storage.read_results(with_text=False):
        metrics.add_measurement(result.created_at, result.measurement, modes.get(result.run_id, "live"))
    return metrics


def measure(name: str, open_storage: Callable[[], Storage], fill: Callable[[int, int, datetime], None],
            count: int, workdir: str) -> None:
    fill(0, count, datetime.now(timezone.utc))
    target = Path(workdir) / f"{name}.prom"
    with open_storage() as storage:
        storage.prepare()
        narrow = best_of(lambda: history_metrics(storage))
        whole = best_of(lambda: from_whole_rows(storage))
        metrics = history_metrics(storage)
        written = best_of(lambda: write_textfile(target, metrics))
    print(f"  history_metrics() on {count:,} results: {narrow:.3f} s (narrow read: 10 columns of results, 2 of runs)")
    print(f"  the same from read_results(with_text=False): {whole:.3f} s")
    print(f"  write_textfile(): {written:.4f} s ({target.stat().st_size:,} bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 stored results: the smoke test")
    count = 100 if parser.parse_args().quick else 100_000
    print(f"metrics: building the Prometheus metrics over {count:,} stored results and writing the textfile "
          f"(best of {REPEATS})")
    print(machine_line("psycopg", "prometheus_client"))
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "benchmarks.db"
        SQLiteStorage(path).prepare()
        print("\nSQLite")
        measure("sqlite", lambda: SQLiteStorage(path), lambda *batch: fill_sqlite(path, *batch), count, workdir)
        if postgres_available():
            import psycopg
            from psycopg import sql

            name = f"bench_metrics_{secrets.token_hex(6)}"
            url = f"postgresql://postgres@127.0.0.1:5432/{name}"
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
                try:
                    PostgresStorage(url).prepare()
                    print("\nPostgreSQL")
                    measure("postgres", lambda: PostgresStorage(url), lambda *batch: fill_postgres(url, *batch),
                            count, workdir)
                finally:
                    admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
