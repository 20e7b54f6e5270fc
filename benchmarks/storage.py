"""How fast is storage as the tables grow? Time per saved result on SQLite and PostgreSQL with 10 to 100,000 results
already stored (1,000,000 with --million), and reading them back: read_results() and `python main.py report` (as
it is, --by hour, --by region, --window 72h, --last, --since 7d; the median of 3) at 100,000 and 1,000,000.

    python benchmarks/storage.py            # SQLite and PostgreSQL, up to 100,000 stored results (about 2 minutes)
    python benchmarks/storage.py --million  # and on to 1,000,000 (about 1 GB per backend; 15 minutes or more)
    python benchmarks/storage.py --quick    # up to 100 results, for the smoke test

Then `watch` after a run at 1,000,000 stored results (--watch-rows; target 0.5 s): a scratch database filled with
that history, one more run of four results saved through the backend, then the alert evaluation that follows a run
(in the process, as main.py does it) and `python main.py watch` as a user runs it (interpreter start included).

100,000 results are 25,000 runs of four providers every 15 minutes, about 8.7 months (a year is 140,160 results),
with answers of about 1 KB. They are filled in fast (executemany on SQLite, COPY on PostgreSQL) as 15-minute runs
going back in time; then each timed save goes through the real backend (SQLiteStorage / PostgresStorage.save_result:
one insert and one commit, as a run writes). Target (issue 12): report under 0.5 s at 100,000, under 5 s at 1,000,000.

PostgreSQL: a scratch database bench_perf_<hex> on 127.0.0.1:5432 (user postgres, trust authentication), dropped
afterwards. If no PostgreSQL answers there, that part is skipped, unless BENCHMARK_REQUIRE_POSTGRES is set: then it is
an error, as in the tests. Not part of the test suite (a smoke test runs it with --quick so that it does not rot).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
import json
import math
import os
from pathlib import Path
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Callable, Iterator
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarking.measurement import Measurement  # noqa: E402
from benchmarking.storage import RunInfo, Storage  # noqa: E402
from benchmarking.storage.postgres import PostgresStorage  # noqa: E402
from benchmarking.storage.schema import result_row, run_row  # noqa: E402
from benchmarking.storage.sqlite import SQLiteStorage, _sql_value  # noqa: E402
from machine import machine_line  # noqa: E402

MAIN = Path(__file__).resolve().parent.parent / "main.py"
ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=postgres user=postgres connect_timeout=3"
ANSWER = ("A hash map stores each value in a bucket chosen by the hash of its key. " * 16).strip()  # about 1 KB
PROVIDERS = (  # (provider, model, TTFT ms, latency ms, input, output tokens, cost): as the simulator's profiles
    ("openai", "gpt-4o-mini", 180.0, 745.0, 28, 48, "0.000033"),
    ("groq", "openai/gpt-oss-20b", 60.0, 123.0, 80, 64, "0.000025"),
    ("together", "openai/gpt-oss-120b", 150.0, 306.0, 80, 64, "0.000050"),
    ("openrouter", "openai/gpt-4o-mini", 250.0, 815.0, 28, 48, "0.000042"),
)


def measurement(index: int, started_at: datetime) -> Measurement:
    """A plausible result: one of the four providers in turn, jittered timings, one failure in fifty."""
    provider, model, ttft, latency, tokens_in, tokens_out, cost = PROVIDERS[index % len(PROVIDERS)]
    jitter = 0.8 + 0.4 * random.random()
    m = Measurement(
        provider=provider, model=model, success=True, started_at=started_at, stream=True, ttft_ms=ttft * jitter,
        answer_ttft_ms=ttft * jitter, latency_ms=latency * jitter, input_tokens=tokens_in, output_tokens=tokens_out,
        cached_tokens=0, reasoning_tokens=0, tokens_per_second=(tokens_out - 1) / ((latency - ttft) * jitter / 1000),
        finish_reason="stop", request_id=f"req_{index}", response_text=ANSWER, cost_usd=Decimal(cost),
        cost_source="pricing", price_input_per_mtok=Decimal("0.15"), price_output_per_mtok=Decimal("0.60"),
        price_as_of="2026-11-28", endpoint=f"https://api.{provider}.example/v1",
    )
    if index % 50 == 49:
        m = replace(m, success=False, ttft_ms=None, answer_ttft_ms=None, latency_ms=None, tokens_per_second=None,
                    input_tokens=None, output_tokens=None, response_text=None, cost_usd=None, error_type="timeout",
                    error_message="no complete answer within 60 s")
    return m


def history(start: int, count: int, newest: datetime) -> Iterator[tuple[dict, list[dict]]]:
    """(runs row, its results' rows) for `count` results numbered from `start`: four per run, runs 15 minutes apart
    going back in time from `newest`, so that the timed saves are the newest rows, as in real use."""
    for first in range(start, start + count, 4):
        began = newest - timedelta(minutes=15 * (first // 4 + 1))
        run = run_row(RunInfo(id=uuid4(), run_name="scheduled-run", triggered_by="scheduler", started_at=began,
                              mode="live", host="bench", region=None, tool_version="bench", settings={"repeat": 1}))
        run.update(status="completed", finished_at=began + timedelta(seconds=3))
        results = [
            result_row(run["id"], uuid4(), began + timedelta(seconds=i - first + 1),
                       measurement(i, began + timedelta(seconds=i - first)))
            for i in range(first, min(first + 4, start + count))
        ]
        yield run, results


# ---- bulk filling, per backend: fast, and outside what is measured ---------------------------------------------
def fill_sqlite(path: Path, start: int, count: int, newest: datetime) -> None:
    db = sqlite3.connect(path)
    with db:  # one transaction for the lot
        for run, results in history(start, count, newest):
            run["settings"] = json.dumps(run["settings"])
            db.execute(f"insert into runs ({', '.join(run)}) values ({', '.join('?' * len(run))})",
                       [_sql_value(v) for v in run.values()])
            names = list(results[0])
            db.executemany(
                f"insert into benchmark_results ({', '.join(names)}) values ({', '.join('?' * len(names))})",
                [[_sql_value(r[n]) for n in names] for r in results],
            )
    db.close()


def fill_postgres(url: str, start: int, count: int, newest: datetime) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    runs, results = [], []
    for run, rows in history(start, count, newest):
        run["settings"] = Jsonb(run["settings"])
        runs.append(run)
        results += rows
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        for table, rows in (("runs", runs), ("benchmark_results", results)):
            with cursor.copy(f"copy {table} ({', '.join(rows[0])}) from stdin") as copy:
                for row in rows:
                    copy.write_row(list(row.values()))


# ---- the measurements ------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def time_saves(storage: Storage, saves: int, newest: datetime) -> list[float]:
    """Milliseconds per save_result, through the real backend, for the newest run."""
    run_id = uuid4()
    storage.create_run(RunInfo(id=run_id, run_name="timed", triggered_by="bench", started_at=newest, mode="live",
                               host="bench", region=None, tool_version="bench", settings={}))
    times = []
    for i in range(saves):
        created = newest + timedelta(seconds=i)
        m = measurement(i, created)
        began = time.perf_counter()
        storage.save_result(run_id, uuid4(), created, m)
        times.append((time.perf_counter() - began) * 1000)
    return times


def time_report(database_url: str, args: list[str], workdir: str) -> float:
    """Wall time of `python main.py report ...` on this database, as a user would run it."""
    return time_command(database_url, ["report", *args], workdir)


def time_command(database_url: str, args: list[str], workdir: str) -> float:
    """Wall time of `python main.py ...` on this database, as a user would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "BENCHMARK_"))}
    env["DATABASE_URL"] = database_url
    # As a user runs it: Python keeps the compiled modules (__pycache__) after the first run. With
    # PYTHONDONTWRITEBYTECODE (set on CI machines) every run would compile the tool's modules again (50 ms).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    began = time.perf_counter()
    done = subprocess.run([sys.executable, str(MAIN), *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"storage: `main.py {' '.join(args)}` exited {done.returncode}:\n{done.stderr}")
    return seconds


def measure_backend(open_storage: Callable[[], Storage], fill: Callable[[int, int, datetime], None],
                    database_url: str, sizes: list[int], saves: int, workdir: str, report_from: int) -> None:
    newest = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    print(f"  {'results stored':>15}  {'save_result ms':^23}")
    print(f"  {'':>15}  {'p50':>7} {'p99':>7} {'max':>7}")
    stored = filled = 0
    with open_storage() as storage:
        storage.prepare()  # connects and creates the tables (PostgreSQL applies schema.sql) before anything is timed
        for size in sizes:
            began = time.perf_counter()
            if size > stored:
                fill(filled, size - stored, newest)
                filled += size - stored
            fill_s = time.perf_counter() - began
            times = time_saves(storage, saves, newest)
            stored = size + saves
            print(f"  {size:>15,}  {percentile(times, 50):7.2f} {percentile(times, 99):7.2f} {max(times):7.2f}"
                  f"   (filled in {fill_s:.1f} s)")
            newest += timedelta(minutes=10)  # the next timed run is newer still
            if size >= report_from:
                time_reports(storage, database_url, workdir, stored)


REPORTS = ([], ["--by", "hour"], ["--by", "region"], ["--window", "72h"], ["--last"], ["--since", "7d"])


def time_reports(storage: Storage, database_url: str, workdir: str, count: int) -> None:
    """Wall time of reading every row back, and of `main.py report` as a user runs it (the median of 3)."""
    if storage.backend == "postgres":  # what autovacuum does after bulk inserts: statistics, and the visibility map
        import psycopg  # that lets the report's covering index answer without visiting the table

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("vacuum analyze benchmark_results")
            conn.execute("vacuum analyze runs")
    began = time.perf_counter()
    storage.read_results(with_text=False)
    print(f"  read_results(with_text=False) on {count:,} results: {time.perf_counter() - began:.2f} s")
    time_report(database_url, ["--help"], workdir)  # compiles the modules once, untimed, as a first run would
    for args in REPORTS:
        seconds = sorted(time_report(database_url, args, workdir) for _ in range(3))[1]
        print(f"  python main.py report {' '.join(args):<12} on {count:,} results: {seconds:.2f} s")


def measure_watch(open_storage: Callable[[], Storage], fill: Callable[[int, int, datetime], None],
                  database_url: str, rows: int, workdir: str) -> None:
    """The evaluation after a run, and `main.py watch`, on `rows` stored results (all rules on, an [slo] set)."""
    from benchmarking.watch.alerts import evaluate
    from benchmarking.settings.model import Watching
    from benchmarking.slo import SloConfig, Targets

    newest = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    watching = Watching(slo=SloConfig(defaults=Targets(ttft_ms=800, latency_ms=5000, success_rate=0.9)))
    (Path(workdir) / "benchmark.toml").write_text("[slo]\nttft_ms = 800\nlatency_ms = 5000\nsuccess_rate = 0.9\n")
    with open_storage() as storage:
        storage.prepare()  # the tables (and their indexes), before the history fills them
        began = time.perf_counter()
        for start in range(0, rows, 100_000):  # in batches: a million rows at once would hold gigabytes in memory
            fill(start, min(100_000, rows - start), newest - timedelta(minutes=1))
        print(f"  {rows:,} results stored (filled in {time.perf_counter() - began:.0f} s)")
        time_saves(storage, 4, newest)  # the run that the evaluation follows
        times = []
        for _ in range(5):
            began = time.perf_counter()
            evaluation = evaluate(storage, watching, host="bench", say=print)
            times.append(time.perf_counter() - began)
    print(f"  alert evaluation after a run: median {sorted(times)[2]:.3f} s, max {max(times):.3f} s of 5 "
          f"({len(evaluation.firing)} alerts firing)")
    print(f"  python main.py watch: {time_command(database_url, ['watch'], workdir):.2f} s")


def postgres_available() -> bool:
    import psycopg

    try:
        psycopg.connect(ADMIN_DSN).close()
        return True
    except psycopg.OperationalError as error:
        if os.environ.get("BENCHMARK_REQUIRE_POSTGRES"):
            raise SystemExit(f"storage: PostgreSQL is required (BENCHMARK_REQUIRE_POSTGRES is set) but not "
                             f"reachable at 127.0.0.1:5432: {error}")
        print(f"\nPostgreSQL: not reachable at 127.0.0.1:5432, skipped ({' '.join(str(error).split())[:120]})")
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 stored results, 5 saves: the smoke test")
    parser.add_argument("--million", action="store_true",
                        help="go on to 1,000,000 stored results (about 1 GB per backend, several minutes)")
    parser.add_argument("--watch-rows", type=int, default=1_000_000, metavar="N",
                        help="stored results under `watch` (default 1,000,000; 100 with --quick)")
    parser.add_argument("--only-watch", action="store_true", help="measure only `watch`")
    args = parser.parse_args()
    watch_rows = 100 if args.quick else args.watch_rows
    sizes, saves = ([10, 100], 5) if args.quick else ([10, 1_000, 10_000, 100_000], 200)
    if args.million:
        sizes.append(1_000_000)
    report_from = 100 if args.quick else 100_000  # the smoke test times the reports too
    random.seed(6)

    print(machine_line("psycopg"))
    if not args.only_watch:
        print(f"storage: time per saved result as the tables grow ({saves} saves at each size, p99 nearest-rank), "
              f"then reading everything back")
        on_each_backend(lambda storage, fill, url, workdir: measure_backend(storage, fill, url, sizes, saves, workdir,
                                                                            report_from))
    print(f"\nwatch after a run on {watch_rows:,} stored results (target: under 0.5 s)")
    on_each_backend(lambda storage, fill, url, workdir: measure_watch(storage, fill, url, watch_rows, workdir))
    return 0


def on_each_backend(measure: Callable[[Callable[[], Storage], Callable[[int, int, datetime], None], str, str], None]
                    ) -> None:
    """Run `measure` on a fresh SQLite file, then on a scratch PostgreSQL database (if one answers)."""
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "benchmarks.db"
        print(f"\nSQLite (a file in {tempfile.gettempdir()}, SQLite {sqlite3.sqlite_version}, default journal mode)")
        measure(lambda: SQLiteStorage(path), lambda *batch: fill_sqlite(path, *batch), f"sqlite:///{path}", workdir)

        if postgres_available():
            import psycopg
            from psycopg import sql

            name = f"bench_perf_{secrets.token_hex(6)}"
            url = f"postgresql://postgres@127.0.0.1:5432/{name}"
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                version = admin.execute("show server_version").fetchone()[0]
                admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
                try:
                    print(f"\nPostgreSQL {version} (scratch database {name} on 127.0.0.1:5432)")
                    measure(lambda: PostgresStorage(url), lambda *batch: fill_postgres(url, *batch), url, workdir)
                finally:
                    admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


if __name__ == "__main__":
    raise SystemExit(main())
