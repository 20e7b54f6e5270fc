"""No traceback ever (issue 10, item 14): Ctrl-C while the tool starts, errors in or between scheduled runs, and
output that is closed under the tool's feet each end in one line and an exit status."""

from __future__ import annotations

import os
from pathlib import Path
import re
import signal
import sqlite3
import subprocess
import sys

import pytest

from benchmarking import scheduler
from benchmarking.cli import ExitStatus, scheduled_main
from benchmarking.cli import schedule as schedule_command

from test_cli import READ_VARIABLES, clean_env

ROOT = Path(__file__).resolve().parent.parent

# Runs a script as `python script args` would, after planting a Ctrl-C (SIGINT, sent `times` times in a row) at the
# moment a given module is first imported: a deterministic stand-in for a user pressing Ctrl-C in that phase.
CTRL_C_ON_IMPORT = """
import os, runpy, signal, sys

module, times, script = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class CtrlCOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            sys.meta_path.remove(self)
            sys.stderr.write(f"[Ctrl-C while importing {name}]\\n")
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, CtrlCOnImport())
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""


def ctrl_c_while_importing(tmp_path: Path, module: str, script: str, *args: str, times: int = 1):
    done = subprocess.run([sys.executable, "-c", CTRL_C_ON_IMPORT, module, str(times), str(ROOT / script), *args],
                          cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    marker = f"[Ctrl-C while importing {module}]\n"
    assert marker in done.stderr, done.stderr  # the Ctrl-C really came in that phase
    return done.returncode, done.stderr.replace(marker, "")


def stored_runs(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("select run_name, status from runs").fetchall()


@pytest.mark.parametrize("script", ["main.py", "run_scheduled.py"])
def test_ctrl_c_while_the_modules_load_is_one_line_and_exit_130(tmp_path, script):
    status, err = ctrl_c_while_importing(tmp_path, "benchmarking.benchmark_runner", script, "--simulate")
    assert (status, err) == (130, "\ninterrupted while starting: nothing measured\n")
    assert not (tmp_path / "benchmarks.db").exists()


@pytest.mark.parametrize(
    "module, phase",
    [("dotenv", "reading .env"), ("benchmarking.simulator", "starting the simulator"),
     ("benchmarking.storage.sqlite", "opening storage")],
)
def test_ctrl_c_while_starting_measures_nothing_and_creates_no_run(tmp_path, module, phase):
    status, err = ctrl_c_while_importing(tmp_path, module, "main.py", "--simulate")
    assert status == 130, err
    assert "Ctrl-C: stopping after the current request" in err and "Traceback" not in err
    assert err.endswith("interrupted before the run started: nothing measured\n"), err
    assert stored_runs(tmp_path / "benchmarks.db") == []


def test_ctrl_c_twice_while_starting_stops_at_once_in_one_line(tmp_path):
    status, err = ctrl_c_while_importing(tmp_path, "benchmarking.simulator", "main.py", "--simulate", times=2)
    assert status == 130 and "Traceback" not in err
    assert err.endswith("\ninterrupted before the run started: nothing measured\n"), err
    assert stored_runs(tmp_path / "benchmarks.db") == []


def test_ctrl_c_while_the_rules_are_judged_after_a_run_is_exit_130_and_the_run_stands(tmp_path):
    """benchmarking.watch.alerts is first imported by the evaluation that follows a run. One Ctrl-C there used to end
    main.py with 0 (the run was over); two said "interrupted before the run started: nothing measured" of a run whose
    results were stored."""
    status, err = ctrl_c_while_importing(tmp_path, "benchmarking.watch.alerts", "main.py", "--simulate", "--providers",
                                         "groq")
    assert status == 130 and "Traceback" not in err and "nothing measured" not in err, err
    assert stored_runs(tmp_path / "benchmarks.db") == [("benchmark-run", "completed")]

    status, err = ctrl_c_while_importing(tmp_path, "benchmarking.watch.alerts", "main.py", "--simulate", "--providers",
                                         "groq", times=2)
    assert status == 130 and "Traceback" not in err and "nothing measured" not in err, err
    assert re.search(r"\ninterrupted while judging the alert rules after run [0-9a-f-]{36}: the run and its results "
                     r"are stored; `python main.py watch` judges the rules again\n$", err), err
    assert stored_runs(tmp_path / "benchmarks.db") == [("benchmark-run", "completed")] * 2


def test_ctrl_c_while_the_schedule_starts_makes_no_run(tmp_path):
    status, err = ctrl_c_while_importing(tmp_path, "benchmarking.storage.sqlite", "run_scheduled.py", "--simulate",
                                         "--interval", "1h", "--runs", "2")
    assert status == 130 and "Traceback" not in err
    assert err.endswith("interrupted before the first run: nothing measured\n"), err
    assert stored_runs(tmp_path / "benchmarks.db") == []


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if any(part in name for part in READ_VARIABLES):
            monkeypatch.delenv(name)
    return tmp_path


def test_an_error_in_one_scheduled_run_is_one_line_and_the_schedule_goes_on(in_tmp, monkeypatch, capsys):
    real_one_run, calls = schedule_command.one_run, []

    def fails_first(context, settings, stop):
        calls.append(settings.run_name)
        if len(calls) == 1:
            raise RuntimeError("a bug in run 1")
        return real_one_run(context, settings, stop)

    monkeypatch.setattr(schedule_command, "one_run", fails_first)
    # The first run fails at once; the second is due 2 s later, a slot no busy machine overruns with a failure.
    status = scheduled_main(["--simulate", "--providers", "groq", "--interval", "2s", "--runs", "2"])
    err = capsys.readouterr().err
    assert status == ExitStatus.FAILURES and "Traceback" not in err
    assert err.startswith("run scheduled-run-01/02 failed: RuntimeError: a bug in run 1\n")
    assert stored_runs(in_tmp / "benchmarks.db") == [("scheduled-run-02/02", "completed")]
    assert "schedule: 2 of 2 runs made, 1 not completed, 0 slots skipped" in err


def test_an_error_between_scheduled_runs_is_one_line_and_exit_1(in_tmp, monkeypatch, capsys):
    class BrokenCollector:
        @staticmethod
        def collect() -> int:
            raise RuntimeError("between runs")

    monkeypatch.setattr(scheduler, "gc", BrokenCollector)
    status = scheduled_main(["--simulate", "--providers", "groq", "--interval", "0.3s", "--runs", "2"])
    err = capsys.readouterr().err
    assert status == ExitStatus.FAILURES
    assert err.strip().splitlines()[-1] == ("run_scheduled.py: unexpected error: RuntimeError: between runs "
                                            "(run with --traceback for details)")
    assert "Traceback" not in err
    assert stored_runs(in_tmp / "benchmarks.db") == [("scheduled-run-01/02", "completed")]


@pytest.mark.parametrize(
    "script, args",
    [("main.py", ["--simulate", "--providers", "groq"]), ("main.py", ["report"]),
     ("run_scheduled.py", ["--simulate", "--providers", "groq", "--interval", "0.3s", "--runs", "2"])],
)
def test_output_closed_by_its_reader_is_one_line_not_a_traceback(tmp_path, script, args):
    env = clean_env()
    env.pop("PYTHONUNBUFFERED", None)  # buffered, as for most users: the pipe breaks at the last flush
    process = subprocess.Popen([sys.executable, str(ROOT / script), *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # like `| head -0`: nobody reads what the tool prints
    err = process.stderr.read()
    assert process.wait(timeout=60) == ExitStatus.FAILURES
    assert err == f"{script}: error: the output was closed before the command finished (a pipe into head?)\n"


def test_stderr_closed_too_is_no_reason_to_crash(tmp_path):
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--timeout", "inf"], cwd=tmp_path,
                               env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stderr.close()
    assert process.wait(timeout=60) == ExitStatus.USAGE
    assert process.stdout.read() == b""
    process.stdout.close()


def test_sigterm_while_starting_is_143_with_no_run(tmp_path):
    script = CTRL_C_ON_IMPORT.replace("signal.SIGINT", "signal.SIGTERM")
    done = subprocess.run([sys.executable, "-c", script, "benchmarking.simulator", "1", str(ROOT / "main.py"),
                           "--simulate"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert done.stderr.endswith("interrupted before the run started: nothing measured\n")
    assert "Traceback" not in done.stderr
    assert stored_runs(tmp_path / "benchmarks.db") == []
