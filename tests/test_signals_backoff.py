"""A stop (Ctrl-C, SIGTERM) during a retry's back-off ends the wait at once; the run is marked interrupted."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from test_cli import MAIN, clean_env
from wire_server import Reply, WireServer


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_during_back_off_ends_the_wait_at_once(tmp_path, signum, status):
    limited = Reply([(0.0, b'{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}')], 429,
                    {"content-type": "application/json", "retry-after": "30"}, chunked=False)
    with WireServer() as server:
        server.reply(limited)
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "local"\nbase_url = "{server.url}/v1"\nmodel = "m"\n')
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--retries", "3"],
                                   cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        deadline = time.monotonic() + 60
        while not server.served and time.monotonic() < deadline:  # the first request is answered with 429
            time.sleep(0.02)
        time.sleep(0.2)  # now in the 30 s back-off
        signalled = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
        stopped_in = time.monotonic() - signalled
    assert process.returncode == status, err
    assert stopped_in < 10  # well under the 30 s back-off (typically a fraction of a second)
    assert len(server.served) == 1  # no retry was sent after the stop
    with sqlite3.connect(tmp_path / "benchmarks.db") as db:
        assert db.execute("select status from runs").fetchall() == [("interrupted",)]
        assert db.execute("select error_type, attempts from benchmark_results").fetchall() == [("rate_limit", 1)]
