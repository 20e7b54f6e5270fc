"""Nothing lost: a database that goes down, hangs or refuses a row leaves every measurement in it or in the outbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
import json
import os
from pathlib import Path
import subprocess
import sys
import time
from uuid import uuid4

import pytest

from benchmarking.benchmark_runner import PROVIDERS, run_benchmark
from benchmarking.settings.values import Secret
from benchmarking.console import ConsoleReporter
from benchmarking.simulator import ModelProfile
from benchmarking.storage.outbox import Outbox, ResilientStorage
from benchmarking.storage.postgres import PostgresStorage
from benchmarking.storage.supabase import SupabaseStorage

from conftest import CALLS, SERVICE_KEY, pg_rows
from tcp_proxy import TcpProxy
from test_cli import clean_env, simulated_settings

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
MAIN = Path(__file__).resolve().parent.parent / "main.py"


class CutAfterFirst(ConsoleReporter):
    """Reports like the console, and takes the database away once the first result is stored."""

    def __init__(self, cut) -> None:
        super().__init__(sys.stdout)
        self.cut, self.notes = cut, []

    def measured(self, m, storage_note):
        super().measured(m, storage_note)
        self.notes.append(storage_note)
        if len(self.notes) == 1:
            self.cut()


@pytest.fixture(params=["postgres", "supabase"])
def flaky_database(request, pg_url):
    """(open a backend, take the database down, bring it back, read rows) for the parametrised backend."""
    if request.param == "postgres":
        with TcpProxy("127.0.0.1", 5432) as proxy:
            url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
            yield (lambda: PostgresStorage(url, timeout_s=2)), proxy.down, proxy.up, pg_url
    else:
        api = request.getfixturevalue("supabase_api")

        def set_mode(mode):
            return lambda: setattr(api, "mode", mode)

        yield (lambda: SupabaseStorage(api.url, Secret(SERVICE_KEY), timeout_s=2)), set_mode("down"), \
            set_mode("up"), pg_url


def test_database_down_mid_run_then_flush_leaves_it_complete_without_duplicates(sim, tmp_path, flaky_database):
    open_backend, down, up, url = flaky_database
    outbox = Outbox(tmp_path / "outbox")
    reporter = CutAfterFirst(down)
    with open_backend() as backend:
        storage = ResilientStorage(backend, outbox)
        storage.prepare()
        outcome = run_benchmark(simulated_settings(sim, tmp_path), storage, reporter)

    results = len(PROVIDERS)
    assert outcome.status == "completed" and len(outcome.results) == results
    assert reporter.notes[0] is None and all("kept in" in note for note in reporter.notes[1:])
    assert pg_rows(url, "select count(*) from benchmark_results") == [(1,)]
    assert outbox.counts() == (results, 0)  # the results after the first, and the run's finish
    assert pg_rows(url, "select status, finished_at from runs") == [("running", None)]

    up()
    with open_backend() as backend:
        report = outbox.replay(backend, include_rejected=True)
        assert (report.written, report.pending, report.rejected) == (results, 0, 0)
        again = outbox.replay(backend, include_rejected=True)
        assert again.written == 0
    ids = {str(r.id) for r in outcome.results}
    assert {str(r[0]) for r in pg_rows(url, "select id from benchmark_results")} == ids
    assert pg_rows(url, "select status from runs") == [("completed",)]
    stored = pg_rows(url, "select created_at from benchmark_results order by created_at")
    assert [r[0] for r in stored] == sorted(r.created_at for r in outcome.results)  # replay kept the timestamps
    assert not (tmp_path / "outbox" / "pending.jsonl").exists()


def test_a_rejected_row_is_kept_reported_not_retried_by_runs_and_flushed_once_fixed(sim, tmp_path, pg_url):
    import psycopg

    with PostgresStorage(pg_url) as backend:
        backend.prepare()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("alter table benchmark_results add constraint no_groq check (provider <> 'groq')")
    outbox = Outbox(tmp_path / "outbox")
    with PostgresStorage(pg_url) as backend:
        storage = ResilientStorage(backend, outbox)
        outcome = run_benchmark(simulated_settings(sim, tmp_path), storage, ConsoleReporter(sys.stdout))
        assert storage.replay().written == 0  # the next run's replay leaves rejected rows alone
    notes = {r.measurement.provider: r.storage_note for r in outcome.results}
    assert "no_groq" in notes["groq"] and "rejected.jsonl" in notes["groq"]
    assert [notes[p] for p in ("openai", "together", "openrouter", "anthropic", "gemini")] == [None] * 5
    assert outbox.counts() == (0, 1)
    (kept,) = (tmp_path / "outbox" / "rejected.jsonl").read_text().splitlines()
    assert "no_groq" in json.loads(kept)["rejected_because"]

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("alter table benchmark_results drop constraint no_groq")
    with PostgresStorage(pg_url) as backend:
        assert outbox.replay(backend, include_rejected=True).written == 1
    assert pg_rows(pg_url, "select provider from benchmark_results order by provider") == [
        ("anthropic",), ("gemini",), ("groq",), ("openai",), ("openrouter",), ("together",)]
    assert outbox.counts() == (0, 0)


def test_a_hung_database_costs_each_write_at_most_its_timeout(sim, tmp_path, supabase_api):
    sim.set_profile("gpt-4o-mini", ModelProfile(ttft_ms=5, itl_ms=1, output_tokens=4))
    supabase_api.hang_s = 5
    outbox = Outbox(tmp_path / "outbox")
    settings = simulated_settings(sim, tmp_path)
    settings = replace(settings, providers=settings.providers[:1])
    # The SDK's first use (its import: over 1 s on a busy machine) is not part of what the bound is about.
    assert CALLS["openai"]("hello", "gpt-4o-mini", settings.providers[0]).success
    with SupabaseStorage(supabase_api.url, Secret(SERVICE_KEY), timeout_s=0.5) as backend:
        storage = ResilientStorage(backend, outbox)
        supabase_api.mode = "hang"
        began = time.perf_counter()
        outcome = run_benchmark(settings, storage, ConsoleReporter(sys.stdout))
        elapsed = time.perf_counter() - began
    # create_run, one result, finish_run: three writes of at most 0.5 s each (plus the measuring)
    assert elapsed < 3.5
    assert outcome.results[0].storage_note is not None
    assert outbox.counts() == (3, 0)


def run_main(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *args], cwd=cwd, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_cli_run_with_the_database_down_then_flush(tmp_path, pg_url):
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        proxy.down()
        down = run_main(tmp_path, "--simulate", "--providers", "openai,groq", DATABASE_URL=url)
        assert down.returncode == 1, down.stderr
        assert "results will be kept in outbox/" in down.stderr
        assert down.stdout.count("Not in the database:") == 2
        lines = (tmp_path / "outbox" / "pending.jsonl").read_text().splitlines()
        assert [json.loads(line)["op"] for line in lines] == ["create_run", "save_result", "save_result", "finish_run"]

        proxy.up()
        flushed = run_main(tmp_path, "flush", DATABASE_URL=url)
        assert flushed.returncode == 0, flushed.stderr
        went = f"flush: 4 writes went through to postgres at postgresql://127.0.0.1:{proxy.port}/"
        assert flushed.stdout.startswith(went)
        assert pg_rows(pg_url, "select count(*) from benchmark_results") == [(2,)]
        assert pg_rows(pg_url, "select status, mode from runs") == [("completed", "simulated")]
        assert run_main(tmp_path, "flush", DATABASE_URL=url).stdout.startswith("flush: 0 writes")


def test_cli_run_stores_in_postgres_and_replays_the_outbox_first(tmp_path, pg_url):
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        proxy.down()
        first = run_main(tmp_path, "--simulate", "--providers", "groq", DATABASE_URL=url)
        assert first.returncode == 1
        proxy.up()
        second = run_main(tmp_path, "--simulate", "--providers", "groq", DATABASE_URL=url)
    assert second.returncode == 0, second.stderr
    assert "outbox: wrote 3 earlier writes to the database, 0 still waiting" in second.stderr  # run, result, finish
    assert pg_rows(pg_url, "select count(*), count(distinct run_id) from benchmark_results") == [(2, 2)]
    assert not (tmp_path / "outbox" / "pending.jsonl").exists()


def test_check_reports_backend_tables_outbox_keys_and_models(tmp_path, pg_url, monkeypatch, capsys):
    from benchmarking.cli import main
    from benchmarking.simulator import Simulator

    for name in list(os.environ):
        if any(part in name for part in ("_API_KEY", "_MODEL", "_BASE_URL", "DATABASE_URL", "SUPABASE_",
                                          "BENCHMARK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with Simulator(profiles={"gpt-6-luna": ModelProfile()}) as sim:
        monkeypatch.setenv("DATABASE_URL", pg_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "test-check-0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url("openai"))
        monkeypatch.setenv("GROQ_API_KEY", "gsk_test0123456789abcd")
        monkeypatch.setenv("GROQ_BASE_URL", sim.base_url("groq"))
        monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test-0123456789")
        monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:9/api/v1")
        status = main(["check"])
    out = capsys.readouterr().out
    assert status == 1
    assert "PROBLEM  storage: postgres: connect: postgresql://127.0.0.1:5432/" in out and "run schema.sql" in out
    assert "ok       outbox: empty" in out
    assert "ok       openai: key set (OPENAI_API_KEY), model gpt-6-luna is listed" in out
    assert "PROBLEM  groq: model openai/gpt-oss-20b is not among the 1 models GET /models lists: set GROQ_MODEL" in out
    assert "PROBLEM  skipping together: set TOGETHER_API_KEY" in out
    assert "PROBLEM  openrouter: cannot list models: connection: connection to http://127.0.0.1:9/api/v1/models" in out
    assert "(check the base URL, the network, and that it is up)" in out
    assert "sk-test-check" not in out and "gsk_test" not in out and "sk-or-test" not in out
    assert pg_rows(pg_url, "select count(*) from information_schema.tables where table_name = 'runs'") == [(0,)]


def test_flush_that_meets_a_down_database_keeps_rejected_writes_rejected(sim, tmp_path, pg_url):
    from benchmarking.storage.outbox.entries import encode_save_result

    from test_storage_sqlite import full_measurement

    outbox = Outbox(tmp_path / "outbox")
    database = "postgresql://127.0.0.1:9/x"
    outbox.append({**encode_save_result(uuid4(), uuid4(), datetime.now(timezone.utc), full_measurement()),
                   "database": database}, rejected_because="no such run")
    outbox.append({"op": "finish_run", "run_id": str(uuid4()), "status": "completed",
                   "finished_at": datetime.now(timezone.utc).isoformat(), "database": database})
    with PostgresStorage("postgresql://postgres@127.0.0.1:9/x", timeout_s=1) as down:
        report = outbox.replay(down, include_rejected=True)
    assert (report.written, report.pending, report.rejected) == (0, 1, 1)
    (kept,) = (tmp_path / "outbox" / "rejected.jsonl").read_text().splitlines()
    assert json.loads(kept)["rejected_because"] == "no such run"
    assert json.loads((tmp_path / "outbox" / "pending.jsonl").read_text())["op"] == "finish_run"


def test_a_run_whose_finish_is_only_in_the_outbox_is_not_reported_as_all_saved(sim, tmp_path):
    from benchmarking.storage.sqlite import SQLiteStorage

    class FinishFails(SQLiteStorage):
        def finish_run(self, *args):
            from benchmarking.errors import StorageUnavailable

            raise StorageUnavailable("database went away")

    settings = simulated_settings(sim, tmp_path)
    settings = replace(settings, providers=settings.providers[:1])
    with FinishFails(tmp_path / "b.db") as backend:
        outcome = run_benchmark(settings, ResilientStorage(backend, Outbox(tmp_path / "outbox")),
                                ConsoleReporter(sys.stdout))
    assert outcome.results[0].storage_note is None
    assert not outcome.all_saved and "database went away" in outcome.run_notes[0]
    assert Outbox(tmp_path / "outbox").counts() == (1, 0)


def test_postgres_tables_missing_on_a_reconnect_mid_run_keep_the_row(tmp_path, pg_url):
    from benchmarking.errors import StorageRejected

    from test_storage_sqlite import run_info

    storage = PostgresStorage(pg_url, migrate=False)  # no schema: as if the tables vanished while it was down
    with pytest.raises(StorageRejected, match="run schema.sql"):
        storage.create_run(run_info())
    resilient = ResilientStorage(storage, Outbox(tmp_path / "outbox"))
    assert "rejected.jsonl" in resilient.create_run(run_info())
