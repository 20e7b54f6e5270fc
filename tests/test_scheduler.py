"""run_scheduled.py and cron_example.sh: runs on the grid, overruns skip slots, signals stop cleanly, no overlap."""

from __future__ import annotations

from pathlib import Path
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from benchmarking.errors import ConfigError
from benchmarking.scheduler import Schedule, format_duration, parse_duration, run_schedule

from test_cli import clean_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("4h", 14400), ("1h30m", 5400), ("2", 2),
                                           ("0.5s", 0.5), ("2w", 14 * 86400)])
def test_durations(text, seconds):
    assert parse_duration(text, "--interval") == seconds


@pytest.mark.parametrize("text", ["", "15 minutes", "-1m", "0s", "m15"])
def test_bad_durations_are_config_errors(text):
    with pytest.raises(ConfigError, match="--interval"):
        parse_duration(text, "--interval")


def test_default_schedule_is_16_runs_and_runs_overrides_it():
    assert Schedule.from_flags(900, 14400, None) == Schedule(900, 16)
    assert Schedule.from_flags(900, 14400, 3).runs == 3
    assert Schedule.from_flags(900, 60, None).runs == 1
    assert format_duration(14 * 60 + 32) == "14m32s"


class FakeClock:
    """Monotonic time that moves only when the schedule waits or a run takes time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return False


def test_runs_start_on_the_grid_and_an_overrun_skips_slots_never_back_to_back():
    from benchmarking.settings.model import Settings

    clock, starts, lines = FakeClock(), [], []
    durations = iter([10.0, 25.0, 5.0, 5.0, 5.0])  # run 2 overruns two 15-second slots

    def one_run(settings):
        starts.append((settings.run_name, settings.triggered_by, clock.now - 1000.0))
        clock.now += next(durations)
        return "completed"

    settings = Settings(prompt="p", providers=(), models={}, run_name="night")
    outcome = run_schedule(Schedule(15.0, 6), settings, one_run, clock.wait, lambda: False, lines.append, clock)
    assert starts == [("night-01/06", "scheduler", 0.0), ("night-02/06", "scheduler", 15.0),
                      ("night-04/06", "scheduler", 45.0), ("night-05/06", "scheduler", 60.0),
                      ("night-06/06", "scheduler", 75.0)]
    assert outcome.skipped_slots == (3,)
    assert "run 02/06 overran its slot: skipping run(s) 03 (never back to back)" in lines
    assert sum(line.startswith("next run ") for line in lines) == 4


def test_a_failed_run_does_not_stop_the_schedule():
    from benchmarking.settings.model import Settings

    clock = FakeClock()
    results = iter(["failed", "completed", "failed"])
    outcome = run_schedule(Schedule(1.0, 3), Settings(prompt="p", providers=(), models={}),
                           lambda s: next(results), clock.wait, lambda: False, lambda line: None, clock)
    assert outcome.statuses == ("failed", "completed", "failed")


def scheduled(cwd: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "run_scheduled.py"), *args], cwd=cwd,
                            env=clean_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def db_rows(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def test_scheduled_runs_land_on_the_grid_against_the_simulator(tmp_path):
    process = scheduled(tmp_path, "--simulate", "--providers", "groq", "--interval", "2s", "--runs", "3",
                        "--run-name", "grid")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    runs = db_rows(tmp_path / "benchmarks.db", "select run_name, triggered_by, status, started_at from runs"
                                               " order by started_at")
    from datetime import datetime

    # A busy machine can make the first run (which also imports the SDK) overrun its 2 s slot; the schedule then
    # skips the slot, as it should. Whatever runs were made started on the grid, in their own slot's name.
    slots = [int(name[len("grid-"):].split("/")[0]) for name, _, _, _ in runs]
    assert slots[0] == 1 and len(runs) >= 2, err
    assert [r[1:3] for r in runs] == [("scheduler", "completed")] * len(runs)
    assert [r[0] for r in runs] == [f"grid-{slot:02d}/03" for slot in slots]
    starts = [datetime.fromisoformat(r[3]).timestamp() for r in runs]
    for slot, start in zip(slots, starts):
        assert start - starts[0] == pytest.approx(2.0 * (slot - 1), abs=0.25)
    skipped = 3 - len(runs)
    assert f"schedule: {len(runs)} of 3 runs made, 0 not completed, {skipped} slots skipped" in err
    assert out.count("next run ") == len(runs) - 1


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_run_finishes_the_request_marks_the_run_interrupted_and_exits(tmp_path, signum, status):
    process = scheduled(tmp_path, "--simulate", "--interval", "1h", "--runs", "2")
    db = tmp_path / "benchmarks.db"
    deadline = time.monotonic() + 30
    while not db_rows(db, "select id from benchmark_results") and time.monotonic() < deadline:
        time.sleep(0.02)  # polling for the first stored result: the signal must land mid-run
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == status, err
    assert "Traceback" not in err
    (run,) = db_rows(db, "select status, finished_at from runs")
    assert run[0] == "interrupted" and run[1] is not None
    results = db_rows(db, "select provider, success from benchmark_results")
    # the request in flight when the signal came was finished and stored; no later one was started
    assert 1 <= len(results) < 4 and all(ok == 1 for _, ok in results)
    assert out.count("Testing → ") == len(results)


def test_bad_schedule_flags_exit_2_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "run_scheduled.py"), "--interval", "soon", "--simulate"],
                          cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("run_scheduled.py: error: --interval takes a duration like 90s, 15m, 4h, 7d, 2w "
                                   "or 1h30m, not 'soon'")


@pytest.fixture
def cron_copy(tmp_path):
    """The project as a user installs it, with its virtual environment, in a directory of its own."""
    project = tmp_path / "benchmark-engine"
    project.mkdir()
    for name in ("main.py", "cron_example.sh"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".venv" / "bin").mkdir(parents=True)
    python = project / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # a symlink would lose the venv's packages
    python.chmod(0o755)
    (project / ".env").write_text("DATABASE_URL=sqlite:///data/cron.db\n")
    return project


def cron(project: Path, *args: str) -> subprocess.Popen:
    elsewhere = project.parent
    return subprocess.Popen([str(project / "cron_example.sh"), "--simulate", *args], cwd=elsewhere,
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cron_script_runs_from_another_directory_with_its_env_and_log(cron_copy):
    process = cron(cron_copy, "--providers", "groq")
    assert process.wait(timeout=60) == 0
    runs = db_rows(cron_copy / "data" / "cron.db", "select triggered_by, status from runs")
    assert runs == [("cron", "completed")]  # .env's DATABASE_URL was read, from the script's own directory
    log = (cron_copy / "logs" / "benchmark.log").read_text().splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", line) for line in log)
    assert "Testing → groq / openai/gpt-oss-20b" in "\n".join(log)
    assert log[-1].endswith("main.py exited with status 0")


def test_two_cron_ticks_at_once_one_runs_one_is_skipped_and_logged(cron_copy):
    first = cron(cron_copy, "--providers", "openai")
    log = cron_copy / "logs" / "benchmark.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and "Testing" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)  # the first tick holds the lock once main.py is measuring
    second = cron(cron_copy, "--providers", "openai")
    assert second.wait(timeout=30) == 0
    assert first.wait(timeout=60) == 0
    text = log.read_text()
    assert text.count("skipped: the previous run still holds logs/benchmark.lock") == 1
    assert text.count("main.py exited with status 0") == 1
    assert db_rows(cron_copy / "data" / "cron.db", "select count(*) from runs") == [(1,)]


def test_cron_script_exits_with_main_py_status(cron_copy):
    process = cron(cron_copy, "--repeat", "0")
    assert process.wait(timeout=60) == 2
    assert "main.py exited with status 2" in (cron_copy / "logs" / "benchmark.log").read_text()


def test_the_memory_benchmark_runs_and_prints_its_figures():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "schedule_memory.py"), "--runs", "6"],
                          env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "runs: 6 (6 completed), results stored: 30" in done.stdout
    assert re.search(r"after run 6: peak RSS \d+\.\d MiB", done.stdout)
    assert re.search(r"peak RSS growth: [+-]\d+\.\d %", done.stdout)


def test_main_py_stops_on_sigterm_after_the_request_in_flight(tmp_path):
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--simulate"], cwd=tmp_path,
                               env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "benchmarks.db"
    deadline = time.monotonic() + 30
    while not db_rows(db, "select id from benchmark_results") and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    assert "SIGTERM: stopping after the current request" in err and "Traceback" not in err
    assert db_rows(db, "select status from runs") == [("interrupted",)]
    assert len(db_rows(db, "select id from benchmark_results")) == out.count("Testing → ")


def test_a_schedule_whose_results_are_only_in_the_outbox_exits_1_and_says_so(tmp_path):
    import socket

    with socket.socket() as closed:  # a port nothing listens on: the database is unavailable, at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    process = scheduled(tmp_path, "--simulate", "--providers", "groq", "--runs", "1", "--interval", "1s",
                        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/nothing")
    out, err = process.communicate(timeout=120)
    pending = (tmp_path / "outbox" / "pending.jsonl").read_text().splitlines()
    assert len(pending) >= 2  # the run and its result wait there
    assert process.returncode == 1, out + err
    assert "writes are only in the outbox (outbox/): `python main.py flush` writes them" in err
