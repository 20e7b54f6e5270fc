"""Nothing lost, no traceback, no secret: the storage faults of issue 10, each made for real.

A tmpfs that fills or is read-only, a TCP proxy that is cut or freezes, PostgreSQL's own limits and constraints, a
server that answers 200 to everything, a process killed with SIGKILL, a Ctrl-C (SIGINT) in the middle of a flush.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
from pathlib import Path
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from uuid import uuid4

import pytest

from benchmarking.benchmark_runner import run_benchmark
from benchmarking.settings.values import Secret
from benchmarking.console import ConsoleReporter
from benchmarking.errors import OutboxUnwritable, StorageUnavailable
from benchmarking.simulator import ModelProfile
from benchmarking.storage.outbox import Outbox, ResilientStorage
from benchmarking.storage.outbox.entries import encode_create_run, encode_finish_run, encode_save_result
from benchmarking.storage.postgres import PostgresStorage
from benchmarking.storage.sqlite import SQLiteStorage
from benchmarking.storage.supabase import SupabaseStorage

from conftest import FAKE_KEY, SERVICE_KEY, apply_schema, fill_disk, pg_rows
from tcp_proxy import TcpProxy
from test_cli import clean_env, simulated_settings
from test_storage_sqlite import full_measurement, run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
MAIN = Path(__file__).resolve().parent.parent / "main.py"


def run_main(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *args], cwd=cwd, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


def no_traceback(done: subprocess.CompletedProcess) -> bool:
    return "Traceback" not in done.stderr and "unexpected error" not in done.stderr


def outbox_entries(database: str, measurement=None) -> tuple[object, list[dict]]:
    """A run, one result and the run's finish, as the outbox keeps them for `database`."""
    run, now = run_info(host="t"), datetime.now(timezone.utc)
    entries = [encode_create_run(run),
               encode_save_result(run.id, uuid4(), now, measurement or full_measurement()),
               encode_finish_run(run.id, "completed", now)]
    return run, [{**entry, "database": database} for entry in entries]


def sqlite_rows(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


def pg_rows_exec(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def stored_results(db: Path) -> int:
    """Results in a SQLite file that another process may still be creating (no file, no table yet: 0)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("select count(*) from benchmark_results").fetchone()[0]
    except sqlite3.Error:
        return 0


def proxied(url: str, proxy: TcpProxy) -> str:
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


# ---- 1. An unreadable outbox line is set aside; every valid line still replays ------------------------------------

def test_unreadable_outbox_lines_are_set_aside_and_runs_flush_and_check_go_on(tmp_path):
    database = SQLiteStorage(tmp_path / "benchmarks.db").database
    old_run, entries = outbox_entries(database)
    good = [json.dumps(entry).encode() for entry in entries]
    bad = [
        good[1][: len(good[1]) // 2],  # cut short where a full disk stopped an older version's append
        b"this is not JSON at all",
        b'{"op": "save_result", "row": {"id": "not-a-uuid"}}',  # valid JSON of the wrong shape
        b"[1, 2, 3]",
        b'{"op": "finish_run", "run_id": "\xff\xfe not UTF-8"}',
    ]
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "pending.jsonl").write_bytes(b"\n".join([good[0], bad[0], bad[1], good[1], *bad[2:], good[2]]) + b"\n")

    done = run_main(tmp_path, "--simulate", "--providers", "groq")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "corrupt.jsonl" in line]
    assert len(warnings) == 1 and "5 unreadable lines" in warnings[0], done.stderr
    assert "outbox: wrote 3 earlier writes to the database, 0 still waiting" in done.stderr
    assert (outbox / "corrupt.jsonl").read_bytes() == b"\n".join(bad) + b"\n"  # kept as they were, to look at
    assert not (outbox / "pending.jsonl").exists()
    runs = dict(sqlite_rows(tmp_path / "benchmarks.db", "select id, status from runs"))
    assert runs[str(old_run.id)] == "completed" and len(runs) == 2
    assert sqlite_rows(tmp_path / "benchmarks.db", "select count(*) from benchmark_results") == [(2,)]

    checked = run_main(tmp_path, "check", "--providers", "groq")
    assert no_traceback(checked) and "ok       storage: sqlite" in checked.stdout
    assert "PROBLEM  outbox: 5 unreadable line(s) set aside in outbox/corrupt.jsonl" in checked.stdout

    with open(outbox / "pending.jsonl", "ab") as pending:  # and a new bad line does not stop flush either
        pending.write(b'{"op": "create_run", "run": {"id": "\n')
    flushed = run_main(tmp_path, "flush")
    assert flushed.returncode == 0, flushed.stderr
    assert flushed.stdout.startswith("flush: 0 writes went through") and no_traceback(flushed)
    assert len((outbox / "corrupt.jsonl").read_bytes().splitlines()) == 6


# ---- 2. An append never leaves a partial line; a leftover temporary file is removed --------------------------------

def big_entry(size_bytes: int) -> dict:
    run = run_info()
    measurement = replace(full_measurement(), response_text="x" * size_bytes)
    return {**encode_save_result(run.id, uuid4(), datetime.now(timezone.utc), measurement), "database": "sqlite:///x"}


def test_an_append_that_fills_the_disk_leaves_no_partial_line(small_disk):
    outbox = Outbox(small_disk / "outbox")
    outbox.append(big_entry(100))
    pending = small_disk / "outbox" / "pending.jsonl"
    before = pending.read_bytes()
    filler = fill_disk(small_disk, leave_bytes=8192)

    with pytest.raises(OutboxUnwritable, match="No space left on device"):
        outbox.append(big_entry(40_000))
    assert pending.read_bytes() == before  # not a byte of the line that did not fit

    filler.unlink()
    outbox.append(big_entry(40_000))
    assert outbox.counts() == (2, 0)
    assert [len(json.loads(line)["row"]["response_text"]) for line in pending.read_bytes().splitlines()] == [
        100, 40_000]


def test_a_leftover_temporary_file_is_removed_before_it_can_fill_the_disk(small_disk):
    directory = small_disk / "outbox"
    directory.mkdir()
    # What a rewrite that a full disk or a kill -9 interrupted leaves behind (this version's name and the older one).
    (directory / "pending.jsonl.tmp").write_bytes(b"x" * 30_000)
    (directory / "pending.tmp").write_bytes(b"x" * 20_000)

    Outbox(directory).append(big_entry(20_000))
    assert sorted(path.name for path in directory.iterdir()) == [".lock", "pending.jsonl"]
    assert Outbox(directory).counts() == (1, 0)


def test_a_rewrite_that_fills_the_disk_leaves_the_outbox_as_it_was_and_no_temporary_file(tmp_path, small_disk):
    backend = SQLiteStorage(tmp_path / "benchmarks.db")
    _, ours = outbox_entries(backend.database)
    other = {**big_entry(24_000), "database": "postgresql://elsewhere:5432/bench"}
    outbox = Outbox(small_disk / "outbox")
    for entry in (ours[0], other, ours[1], ours[2]):
        outbox.append(entry)
    pending = small_disk / "outbox" / "pending.jsonl"
    before = pending.read_bytes()
    filler = fill_disk(small_disk, leave_bytes=4096)

    report = outbox.replay(backend)  # writes ours, then must rewrite the file with only the other database's entry
    assert (report.written, report.pending, report.other_databases) == (3, 0, 1)
    assert "cannot rewrite" in report.last_error and "No space left on device" in report.last_error
    assert pending.read_bytes() == before
    assert not list((small_disk / "outbox").glob("*.tmp"))

    filler.unlink()
    assert outbox.replay(backend).written == 3  # again: nothing is inserted twice
    assert [json.loads(line)["database"] for line in pending.read_bytes().splitlines()] == [other["database"]]
    assert sqlite_rows(tmp_path / "benchmarks.db", "select count(*) from benchmark_results") == [(1,)]


# ---- 3. Outbox and database both failing: held in memory, retried, else printed whole; exit 1 ---------------------

@pytest.fixture(params=["full", "read-only"])
def unwritable_outbox(request, tmp_path):
    """An outbox directory that takes no write: on a full disk, or on a read-only mount."""
    if request.param == "full":
        disk = request.getfixturevalue("small_disk")
        fill_disk(disk)
        return disk / "outbox"
    return request.getfixturevalue("read_only_dir")


def test_with_the_database_down_and_the_outbox_unwritable_every_row_is_printed_and_the_exit_status_is_1(
        tmp_path, pg_url, unwritable_outbox):
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = proxied(pg_url, proxy)
        proxy.down()
        done = run_main(tmp_path, "--simulate", "--providers", "groq,together", DATABASE_URL=url,
                        BENCHMARK_OUTBOX=str(unwritable_outbox))
        assert done.returncode == 1, done.stderr
        assert no_traceback(done)
        assert done.stdout.count("Success (") == 2 and "Saved to DB" not in done.stdout
        assert done.stdout.count("kept in memory, tried again before the end") == 4  # the run, 2 results, its end
        lines = done.stderr.splitlines()
        (header,) = [i for i, line in enumerate(lines) if line.startswith("error: 4 writes could be stored neither")]
        printed = lines[header + 1: header + 5]
        entries = [json.loads(line) for line in printed]
        assert [entry["op"] for entry in entries] == ["create_run", "save_result", "save_result", "finish_run"]
        assert all(entry["row"]["response_text"] and entry["row"]["ttft_ms"] for entry in entries[1:3])

        # Nothing lost: those lines, put in an outbox once one can be written, are flushed whole.
        proxy.up()
        (tmp_path / "later").mkdir()
        (tmp_path / "later" / "pending.jsonl").write_text("\n".join(printed) + "\n")
        flushed = run_main(tmp_path, "flush", DATABASE_URL=url, BENCHMARK_OUTBOX=str(tmp_path / "later"))
        assert flushed.returncode == 0, flushed.stderr
    assert pg_rows(pg_url, "select status, finished_at is not null from runs") == [("completed", True)]
    assert pg_rows(pg_url, "select count(*) from benchmark_results") == [(2,)]


class Outage(ConsoleReporter):
    """Takes the database away after the first result is stored, and brings it back after the third."""

    def __init__(self, proxy: TcpProxy) -> None:
        super().__init__(sys.stdout)
        self.proxy, self.notes = proxy, []

    def measured(self, m, storage_note):
        super().measured(m, storage_note)
        self.notes.append(storage_note)
        if len(self.notes) == 1:
            self.proxy.down()
        elif len(self.notes) == 3:
            self.proxy.up()


def test_writes_held_in_memory_reach_the_database_when_it_is_back_before_the_run_ends(sim, tmp_path, small_disk,
                                                                                        pg_url):
    fill_disk(small_disk)
    with TcpProxy("127.0.0.1", 5432) as proxy:
        reporter = Outage(proxy)
        with PostgresStorage(proxied(pg_url, proxy), timeout_s=2) as backend:
            backend.prepare()
            storage = ResilientStorage(backend, Outbox(small_disk / "outbox"))
            outcome = run_benchmark(simulated_settings(sim, tmp_path), storage, reporter)
            assert storage.settle() == []
    assert outcome.status == "completed"
    assert reporter.notes[0] is None and reporter.notes[3] is None
    assert all("kept in memory" in note for note in reporter.notes[1:3])
    assert pg_rows(pg_url, "select count(*) from benchmark_results") == [(len(outcome.results),)] == [(5,)]
    assert pg_rows(pg_url, "select status from runs") == [("completed",)]


def test_an_outbox_directory_that_cannot_be_written_does_not_stop_runs(tmp_path, read_only_dir):
    done = run_main(tmp_path, "--simulate", "--providers", "groq,together", BENCHMARK_OUTBOX=str(read_only_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Saved to DB") == 2
    assert sqlite_rows(tmp_path / "benchmarks.db", "select status from runs") == [("completed",)]


# ---- 4. Errors classified by cause: a row refused for its content never holds up the rest --------------------------

@pytest.fixture(params=["postgres", "supabase"])
def pg_backend(request, pg_url):
    """(open the parametrised backend on PostgreSQL with schema.sql applied, the database URL to reach it directly)."""
    apply_schema(pg_url)
    if request.param == "postgres":
        return (lambda: PostgresStorage(pg_url, timeout_s=5)), pg_url
    api = request.getfixturevalue("supabase_api")
    return (lambda: SupabaseStorage(api.url, Secret(SERVICE_KEY), timeout_s=5)), pg_url


# (cause, SQL that makes it possible, the poisoned measurement, what the reason says)
CONTENT_FAULTS = [
    ("index row too large", None, lambda m: replace(m, model=secrets.token_hex(1500)), "index row size"),
    ("value too long", "alter table benchmark_results alter column finish_reason type varchar(10)",
     lambda m: replace(m, finish_reason="x" * 11), "value too long"),
    ("check constraint", "alter table benchmark_results add constraint no_poison check (provider <> 'poison')",
     lambda m: replace(m, provider="poison"), "no_poison"),
    ("no unique index for ON CONFLICT", "alter table benchmark_results drop constraint benchmark_results_pkey",
     lambda m: m, "ON CONFLICT"),
]


@pytest.mark.parametrize("cause, setup, poison, reason", CONTENT_FAULTS, ids=[f[0] for f in CONTENT_FAULTS])
def test_a_row_refused_for_its_content_is_rejected_with_its_reason_and_the_next_write_goes_through(
        tmp_path, pg_backend, cause, setup, poison, reason):
    open_backend, url = pg_backend
    if setup:
        pg_rows_exec(url, setup)
    outbox, run, now = Outbox(tmp_path / "outbox"), run_info(), datetime.now(timezone.utc)
    with open_backend() as backend:
        storage = ResilientStorage(backend, outbox)
        assert storage.create_run(run) is None
        note = storage.save_result(run.id, uuid4(), now, poison(full_measurement()))
        assert reason in note and "rejected.jsonl" in note
        assert storage.finish_run(run.id, "completed", now) is None  # not queued behind the refused row
        if cause != "no unique index for ON CONFLICT":  # (that one refuses every result)
            assert storage.save_result(run.id, uuid4(), now, full_measurement()) is None
    assert outbox.counts() == (0, 1)
    (kept,) = (tmp_path / "outbox" / "rejected.jsonl").read_text().splitlines()
    assert reason in json.loads(kept)["rejected_because"]
    assert pg_rows(url, "select status from runs") == [("completed",)]


def test_a_row_for_a_run_that_is_not_there_is_rejected(tmp_path, pg_backend):
    open_backend, url = pg_backend
    with open_backend() as backend:
        storage = ResilientStorage(backend, Outbox(tmp_path / "outbox"))
        note = storage.save_result(uuid4(), uuid4(), datetime.now(timezone.utc), full_measurement())
    assert "foreign key" in note and "rejected.jsonl" in note


@pytest.fixture
def latin1_url():
    """A database whose encoding is LATIN1 (an older server's default), dropped after the test."""
    import psycopg

    from conftest import ADMIN_DSN

    name = f"bench_latin1_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"create database {name} encoding 'LATIN1' template template0 lc_collate 'C' lc_ctype 'C'")
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f"drop database {name} with (force)")


def test_text_the_database_encoding_cannot_hold_is_rejected_not_a_crash(tmp_path, latin1_url):
    run, now = run_info(), datetime.now(timezone.utc)
    with PostgresStorage(latin1_url, timeout_s=5) as backend:
        storage = ResilientStorage(backend, Outbox(tmp_path / "outbox"))
        assert storage.create_run(run) is None
        note = storage.save_result(run.id, uuid4(), now, replace(full_measurement(), response_text="emoji \U0001f642"))
        assert 'has no equivalent in encoding "LATIN1"' in note and "rejected.jsonl" in note
        assert storage.save_result(run.id, uuid4(), now, full_measurement()) is None
    assert pg_rows(latin1_url, "select response_text from benchmark_results") == [("h\u00e9llo",)]


def test_replay_goes_on_past_a_poisoned_row(tmp_path, pg_url):
    with PostgresStorage(pg_url, timeout_s=5) as backend:
        backend.prepare()
        outbox = Outbox(tmp_path / "outbox")
        run, entries = outbox_entries(backend.database)
        poisoned = {**encode_save_result(run.id, uuid4(), datetime.now(timezone.utc),
                                         replace(full_measurement(), model=secrets.token_hex(1500))),
                    "database": backend.database}
        for entry in (entries[0], poisoned, entries[1], entries[2]):
            outbox.append(entry)
        report = outbox.replay(backend)
    assert (report.written, report.pending, report.rejected) == (3, 0, 1)
    assert pg_rows(pg_url, "select status from runs") == [("completed",)]
    assert pg_rows(pg_url, "select count(*) from benchmark_results") == [(1,)]


def test_a_statement_timeout_and_an_admin_shutdown_mean_unavailable_and_the_next_write_reconnects(pg_url):
    import psycopg

    with PostgresStorage(pg_url, timeout_s=1) as storage:
        storage.prepare()
        run = run_info()
        storage.create_run(run)
        with psycopg.connect(pg_url) as locker:  # a lock held elsewhere: the insert waits out statement_timeout
            locker.execute("lock table benchmark_results in access exclusive mode")
            with pytest.raises(StorageUnavailable):
                storage.save_result(run.id, uuid4(), datetime.now(timezone.utc), full_measurement())
        second = uuid4()
        storage.save_result(run.id, second, datetime.now(timezone.utc), full_measurement())
        pg_rows_exec(pg_url, "select pg_terminate_backend(pid) from pg_stat_activity"
                             " where datname = current_database() and pid <> pg_backend_pid()")
        with pytest.raises(StorageUnavailable):
            storage.finish_run(run.id, "completed", datetime.now(timezone.utc))
        storage.finish_run(run.id, "completed", datetime.now(timezone.utc))
    assert pg_rows(pg_url, "select status from runs") == [("completed",)]
    assert (second,) in pg_rows(pg_url, "select id from benchmark_results")


def test_sqlite_disk_full_on_a_write_is_unavailable_not_rejected(tmp_path, small_disk):
    storage = SQLiteStorage(small_disk / "benchmarks.db")
    storage.prepare()
    run = run_info()
    storage.create_run(run)
    filler = fill_disk(small_disk)
    big = replace(full_measurement(), response_text="x" * 10_000)  # fits once the filler is gone
    resilient = ResilientStorage(storage, Outbox(tmp_path / "outbox"))
    note = resilient.save_result(run.id, uuid4(), datetime.now(timezone.utc), big)
    assert "database or disk is full" in note and "pending.jsonl" in note
    filler.unlink()
    assert resilient.replay().written == 1
    assert len(storage.read_results(run.id)) == 1


# ---- 5. NUL (and a lone surrogate) in text: stored as U+FFFD on every backend and in the outbox -------------------

def test_nul_and_a_lone_surrogate_are_stored_as_the_replacement_character_everywhere(open_backend, tmp_path):
    run = run_info(run_name="nul\x00name", settings={"prompt": "a\x00b", "repeat": 1})
    broken = replace(full_measurement(), response_text="answer\x00with a cut emoji \ud83d", error_message="err\x00or",
                     request_id="req\x00")
    result_id, now = uuid4(), datetime.now(timezone.utc)
    with open_backend() as storage:
        storage.prepare()
        storage.create_run(run)
        storage.save_result(run.id, result_id, now, broken)
        (stored,) = storage.read_results(run.id)
        (stored_run,) = storage.read_runs()
    m = stored.measurement
    assert (m.response_text, m.error_message, m.request_id) == (
        "answer\ufffdwith a cut emoji \ufffd", "err\ufffdor", "req\ufffd")
    assert (stored_run.info.run_name, stored_run.info.settings["prompt"]) == ("nul\ufffdname", "a\ufffdb")

    entry = encode_save_result(run.id, result_id, now, broken)  # the outbox keeps the same text as the database
    assert entry["row"]["response_text"] == "answer\ufffdwith a cut emoji \ufffd"
    assert encode_create_run(run)["run"]["settings"]["prompt"] == "a\ufffdb"


# ---- 6. A run's own row and its finish are never silently lost ---------------------------------------------------

def refuse_runs_named_refused(backend_name: str, tmp_path: Path, url: str | None):
    """Make the database refuse the run row (a trigger on SQLite, a check constraint on PostgreSQL); returns undo."""
    if backend_name == "sqlite":
        SQLiteStorage(tmp_path / "benchmarks.db").prepare()
        with sqlite3.connect(tmp_path / "benchmarks.db") as db:
            db.execute("create trigger refuse before insert on runs when new.run_name = 'refused'"
                       " begin select raise(abort, 'runs named refused are refused'); end")
        return lambda: sqlite3.connect(tmp_path / "benchmarks.db").execute("drop trigger refuse")
    apply_schema(url)
    pg_rows_exec(url, "alter table runs add constraint refuse check (run_name <> 'refused')")
    return lambda: pg_rows_exec(url, "alter table runs drop constraint refuse")


def test_a_run_row_the_database_refuses_is_said_its_finish_kept_and_after_flush_the_run_is_complete(
        request, open_backend, sim, tmp_path, capsys):
    backend_name = request.node.callspec.params["open_backend"]
    url = request.getfixturevalue("pg_url") if backend_name != "sqlite" else None
    allow = refuse_runs_named_refused(backend_name, tmp_path, url)
    settings = simulated_settings(sim, tmp_path, run_name="refused")
    settings = replace(settings, providers=settings.providers[:2])
    outbox = Outbox(tmp_path / "outbox")
    with open_backend() as backend:
        outcome = run_benchmark(settings, ResilientStorage(backend, outbox), ConsoleReporter(sys.stdout))
    out = capsys.readouterr().out
    (said,) = [line for line in out.splitlines() if line.startswith(" Run not in the database:")]
    assert "refuse" in said and said.endswith("rejected.jsonl")
    assert "Run's end (completed) not in the database:" in out
    assert not outcome.all_saved
    assert outbox.counts() == (0, 4)  # the run, its two results (no run to belong to), its finish

    allow()
    with open_backend() as backend:
        report = outbox.replay(backend, include_rejected=True)
        assert (report.written, report.pending, report.rejected) == (4, 0, 0)
        (run,) = backend.read_runs()
        assert (run.info.id, run.status) == (outcome.run.id, "completed")
        assert run.finished_at is not None and run.finished_at >= outcome.results[-1].created_at
        assert len(backend.read_results(run.info.id)) == 2


# ---- 7. A run left `running` by a killed process is marked abandoned by the next run or flush ----------------------

@pytest.mark.parametrize("next_command", [["--simulate", "--providers", "groq"], ["flush"]], ids=["run", "flush"])
def test_a_run_killed_with_sigkill_is_marked_abandoned_by_the_next_run_or_flush_on_the_same_host(
        sim, tmp_path, next_command):
    sim.set_profile("openai/gpt-oss-20b", ModelProfile(fault="hang", hang_s=60))  # groq's model never answers
    db = tmp_path / "benchmarks.db"
    env = clean_env(BENCHMARK_HOST="box-1", OPENAI_API_KEY=FAKE_KEY, OPENAI_BASE_URL=sim.base_url("openai"),
                    GROQ_API_KEY=FAKE_KEY, GROQ_BASE_URL=sim.base_url("groq"))
    killed = subprocess.Popen([sys.executable, str(MAIN), "--providers", "openai,groq"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while stored_results(db) != 1:
        assert time.monotonic() < deadline and killed.poll() is None, "the first result never arrived"
        time.sleep(0.05)
    killed.kill()  # SIGKILL: no finally, no finish
    killed.wait()
    (created_at,) = sqlite_rows(db, "select created_at from benchmark_results")[0]
    assert sqlite_rows(db, "select status, finished_at, pid from runs") == [("running", None, killed.pid)]

    with SQLiteStorage(db) as storage:  # runs that must stay running: another host's, and a live process's
        storage.create_run(run_info(host="box-2", pid=killed.pid))
        storage.create_run(run_info(host="box-1", pid=os.getpid()))

    done = run_main(tmp_path, *next_command, BENCHMARK_HOST="box-1")
    assert done.returncode == 0, done.stderr
    assert f"was left running by process {killed.pid}, which is gone: marked abandoned" in done.stderr
    statuses = sqlite_rows(db, "select host, pid, status, finished_at from runs order by started_at")
    assert statuses[0] == ("box-1", killed.pid, "abandoned", created_at)
    assert [row[2] for row in statuses[1:3]] == ["running", "running"]


# ---- 8. The outbox belongs to one database ---------------------------------------------------------------------

def test_writes_kept_for_one_database_are_never_replayed_into_another(tmp_path, pg_url):
    password = "s3cret-pw"  # PostgreSQL here trusts loopback, so any password connects; it must never show
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = proxied(pg_url, proxy).replace("postgres@", f"postgres:{password}@")
        proxy.down()
        first = run_main(tmp_path, "--simulate", "--providers", "groq", DATABASE_URL=url)
        assert first.returncode == 1
        pending = (tmp_path / "outbox" / "pending.jsonl").read_text()
        owner = f"postgresql://127.0.0.1:{proxy.port}/{pg_url.rsplit('/', 1)[1]}"
        assert {json.loads(line)["database"] for line in pending.splitlines()} == {owner}

        elsewhere = run_main(tmp_path, "--simulate", "--providers", "together")  # the default SQLite file
        assert elsewhere.returncode == 0, elsewhere.stderr
        assert f"outbox: 3 writes in outbox/ are for {owner}, not this database: left there" in elsewhere.stderr
        assert sqlite_rows(tmp_path / "benchmarks.db", "select count(*) from runs") == [(1,)]
        flushed_elsewhere = run_main(tmp_path, "flush")
        assert flushed_elsewhere.stdout.startswith("flush: 0 writes went through to sqlite")
        assert (tmp_path / "outbox" / "pending.jsonl").read_text() == pending

        proxy.up()
        flushed = run_main(tmp_path, "flush", DATABASE_URL=url)
        assert flushed.returncode == 0 and flushed.stdout.startswith("flush: 3 writes went through to postgres")
    assert pg_rows(pg_url, "select status from runs") == [("completed",)]
    assert sqlite_rows(tmp_path / "benchmarks.db", "select count(*) from benchmark_results") == [(1,)]
    everything = [first.stdout, first.stderr, elsewhere.stderr, flushed.stdout, flushed.stderr, pending]
    assert not any(password in text for text in everything)


def test_writes_of_an_older_version_without_a_database_wait_for_flush(tmp_path):
    _, entries = outbox_entries("ignored")
    (tmp_path / "outbox").mkdir()
    legacy = [{key: value for key, value in entry.items() if key != "database"} for entry in entries]
    (tmp_path / "outbox" / "pending.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in legacy))

    ran = run_main(tmp_path, "--simulate", "--providers", "groq")
    assert ran.returncode == 0, ran.stderr
    assert "outbox: 3 writes in outbox/ were kept by an older version, which did not record their database" \
        in ran.stderr
    assert sqlite_rows(tmp_path / "benchmarks.db", "select count(*) from runs") == [(1,)]
    flushed = run_main(tmp_path, "flush")
    assert flushed.returncode == 0 and flushed.stdout.startswith("flush: 3 writes went through to sqlite")
    assert sqlite_rows(tmp_path / "benchmarks.db", "select count(*) from runs") == [(2,)]


# ---- 9. Supabase: only PostgREST's own answer for the row counts as stored ------------------------------------------

class LyingServer:
    """Answers 200 to every request, whatever it is: a proxy's fallback page, or a wrong URL's web app."""

    BODIES = {"html": ("text/html", b"<!doctype html><title>Welcome</title><p>It works!"),
              "empty list": ("application/json", b"[]"),
              "object": ("application/json", b'{"status": "ok"}')}

    def __init__(self, body: str) -> None:
        content_type, payload = self.BODIES[body]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_HEAD = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "LyingServer":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("body", sorted(LyingServer.BODIES))
def test_a_server_that_answers_200_to_everything_fails_check_and_takes_no_row(tmp_path, body):
    from benchmarking.check import check_storage
    from benchmarking.settings.load import load_settings

    with LyingServer(body) as liar:
        settings = load_settings(prompt="p", builtin=[], environ={
            "SUPABASE_URL": liar.url, "SUPABASE_SERVICE_ROLE": SERVICE_KEY,
            "BENCHMARK_OUTBOX": str(tmp_path / "outbox")})
        storage_line = check_storage(settings)[0]
        assert not storage_line.ok and "not as Supabase's REST API (PostgREST) would" in storage_line.text

        with SupabaseStorage(liar.url, Secret(SERVICE_KEY), timeout_s=2) as backend:
            storage = ResilientStorage(backend, Outbox(tmp_path / "outbox"))
            run = run_info()
            notes = [storage.create_run(run),
                     storage.save_result(run.id, uuid4(), datetime.now(timezone.utc), full_measurement()),
                     storage.finish_run(run.id, "completed", datetime.now(timezone.utc))]
    assert all(note is not None and "pending.jsonl" in note for note in notes)
    assert Outbox(tmp_path / "outbox").counts() == (3, 0)


def test_a_run_against_a_lying_server_says_nothing_was_saved_and_flush_does_not_drain_into_it(tmp_path):
    with LyingServer("empty list") as liar:
        env = {"SUPABASE_URL": liar.url, "SUPABASE_SERVICE_ROLE": SERVICE_KEY}
        ran = run_main(tmp_path, "--simulate", "--providers", "groq,together", **env)
        assert ran.returncode == 1 and no_traceback(ran)
        assert "Saved to DB" not in ran.stdout and ran.stdout.count("Not in the database:") == 2
        assert "not as Supabase's REST API (PostgREST) would" in ran.stderr
        flushed = run_main(tmp_path, "flush", **env)
    assert flushed.returncode == 1 and flushed.stdout.startswith("flush: 0 writes went through")
    assert Outbox(tmp_path / "outbox").counts() == (4, 0)
    assert SERVICE_KEY not in ran.stdout + ran.stderr + flushed.stdout + flushed.stderr


# ---- 10. SQLite: full or locked when opening means unavailable, not an abort ------------------------------------

def test_a_sqlite_file_on_a_full_disk_keeps_the_run_in_the_outbox_until_there_is_room(tmp_path, small_disk):
    filler = fill_disk(small_disk)
    env = {"DATABASE_URL": f"sqlite:///{small_disk}/bench.db", "BENCHMARK_OUTBOX": str(tmp_path / "outbox")}
    ran = run_main(tmp_path, "--simulate", "--providers", "groq,together", **env)
    assert ran.returncode == 1, ran.stderr
    assert no_traceback(ran) and "database or disk is full" in ran.stderr
    assert ran.stdout.count("Success (") == 2 and ran.stdout.count("Not in the database:") == 2
    assert Outbox(tmp_path / "outbox").counts() == (4, 0)

    filler.unlink()
    flushed = run_main(tmp_path, "flush", **env)
    assert flushed.returncode == 0, flushed.stderr
    assert sqlite_rows(small_disk / "bench.db", "select status from runs") == [("completed",)]
    assert sqlite_rows(small_disk / "bench.db", "select count(*) from benchmark_results") == [(2,)]


def test_a_sqlite_file_locked_by_another_process_when_opening_is_unavailable(tmp_path):
    path = tmp_path / "benchmarks.db"
    SQLiteStorage(path).prepare()
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("begin exclusive")
    storage = SQLiteStorage(path, timeout_s=0.3)
    with pytest.raises(StorageUnavailable, match="database is locked"):
        storage.prepare()
    resilient = ResilientStorage(storage, Outbox(tmp_path / "outbox"))
    run = run_info()
    assert "database is locked: kept in" in resilient.create_run(run)
    locker.execute("rollback")
    locker.close()
    assert resilient.replay().written == 1
    assert [r.info.id for r in storage.read_runs()] == [run.id]


# ---- 11. A frozen PostgreSQL server costs a write at most about its timeout -------------------------------------

def timed(action, limit_s: float = 15.0) -> tuple[float, BaseException | None]:
    """(seconds, exception) of an action run in a thread, failing the test if it is still blocked after limit_s."""
    outcome: dict[str, object] = {}

    def target() -> None:
        began = time.perf_counter()
        try:
            action()
        except BaseException as exc:  # the result to look at
            outcome["error"] = exc
        outcome["elapsed"] = time.perf_counter() - began

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        pytest.fail(f"still blocked after {limit_s} s")
    return outcome["elapsed"], outcome.get("error")


def test_a_frozen_postgres_costs_a_write_at_most_about_its_timeout_and_the_next_write_reconnects(pg_url):
    apply_schema(pg_url)
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = proxied(pg_url, proxy)
        with PostgresStorage(url, timeout_s=1) as storage:
            run = run_info()
            storage.create_run(run)  # connected: now the server freezes under an open connection
            proxy.freeze()
            elapsed, error = timed(lambda: storage.save_result(run.id, uuid4(), datetime.now(timezone.utc),
                                                               full_measurement()))
            assert isinstance(error, StorageUnavailable) and "no answer within 2 s" in str(error)  # 1 s + grace
            assert elapsed < 6

            elapsed, error = timed(lambda: PostgresStorage(url, timeout_s=1).create_run(run_info()))  # a new one
            assert isinstance(error, StorageUnavailable) and elapsed < 6

            proxy.thaw()
            storage.finish_run(run.id, "completed", datetime.now(timezone.utc))
    assert pg_rows(pg_url, "select status from runs") == [("completed",)]


# ---- 14 (storage's part). Ctrl-C during flush says what was flushed and keeps the rest -------------------------

def test_ctrl_c_during_flush_says_what_went_through_and_keeps_the_rest_intact(tmp_path, pg_url):
    import psycopg

    with PostgresStorage(pg_url) as backend:
        backend.prepare()
        database = backend.database
    run, entries = outbox_entries(database)
    more = [{**encode_save_result(run.id, uuid4(), datetime.now(timezone.utc), full_measurement()),
             "database": database} for _ in range(4)]
    queue = [entries[0], entries[1], *more, entries[2]]
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "pending.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in queue))

    # A lock that lets the run's row in and holds the first result's insert (schema.sql is not applied: it would wait
    # for the lock too), so that Ctrl-C comes while that write is in flight.
    env = clean_env(DATABASE_URL=pg_url, BENCHMARK_NO_MIGRATE="1")
    with psycopg.connect(pg_url) as locker:
        locker.execute("lock table benchmark_results in share mode")
        flush = subprocess.Popen([sys.executable, str(MAIN), "flush"], cwd=tmp_path, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        waiting = ("select count(*) from pg_locks where not granted"  # in this database: others share the server
                   " and database = (select oid from pg_database where datname = current_database())")
        while pg_rows(pg_url, waiting) == [(0,)]:
            assert time.monotonic() < deadline and flush.poll() is None, "flush never reached the locked table"
            time.sleep(0.05)
        flush.send_signal(signal.SIGINT)
        said = ""
        while "Ctrl-C" not in said:
            said = flush.stderr.readline()
            assert said, "flush ended without a word about the Ctrl-C"
        assert "stopping after the current" in said
    out, err = flush.communicate(timeout=30)  # the lock is gone: the write in flight ends, then flush stops

    assert flush.returncode == 130, err
    assert out.startswith("flush: 2 writes went through to postgres") and "5 still waiting" in out
    assert "flush: stopped by Ctrl-C after 2 writes" in err and "Traceback" not in err
    left = [json.loads(line) for line in (tmp_path / "outbox" / "pending.jsonl").read_text().splitlines()]
    assert left == queue[2:]
    assert pg_rows(pg_url, "select count(*) from benchmark_results") == [(1,)]
    again = run_main(tmp_path, "flush", DATABASE_URL=pg_url)
    assert again.returncode == 0 and again.stdout.startswith("flush: 5 writes went through")
    assert pg_rows(pg_url, "select status from runs") == [("completed",)]
