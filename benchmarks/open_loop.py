"""Do open-loop arrivals keep their schedule? Each kind (constant, poisson, gamma) at 20 requests/s against the
simulator, timed by the server's own log of when each request arrived.

    python benchmarks/open_loop.py            # 300 requests per kind (about 15 s each, plus start-up)
    python benchmarks/open_loop.py --quick    # 40 per kind, for the smoke test

Figures per kind: the server's mean gap against 1/rate (target: within 5 %) and against the schedule's own mean gap
(what the harness controls: a seeded Poisson or gamma schedule of N requests has a mean gap of its own, off 1/rate by
about 1/sqrt(N)); off-schedule = the server's arrival time minus the request's scheduled time (its `scheduled_at`,
wall clock, brought to perf_counter in this process: one clock for the host), p50 and p99 (target p99 <= 5 ms); the
start lag the rows stored (the harness's part of it; gamma at --burstiness 2); the send time (the rest: from the request's start to the
server's having it, the SDK's and the server's part). Each run is `main.py --rate 20 --requests N --arrivals KIND [--seed 1]` in a temporary
directory (the default SQLite file) against a simulator in this process (50 ms to the first of 10 tokens, 2 ms
apart), so the server never sets the pace. Not part of the test suite (a smoke test runs it with --quick).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarking.figures import percentile  # noqa: E402
from benchmarking.simulator import ModelProfile, Simulator  # noqa: E402
from machine import machine_line  # noqa: E402
from startup import clean_environment  # noqa: E402

MAIN = Path(__file__).resolve().parent.parent / "main.py"
RATE = 20.0
MEAN_GAP_TARGET = 0.05
OFF_SCHEDULE_P99_TARGET_MS = 5.0


def one_kind(kind: str, requests: int, sim: Simulator, workdir: Path) -> str:
    (workdir / "benchmark.toml").write_text(
        f'[[providers]]\nname = "local"\nbase_url = "{sim.base_url("local")}"\nmodel = "m"\n')
    done = subprocess.run([sys.executable, str(MAIN), "--providers", "local", "--rate", f"{RATE:g}", "--requests",
                           str(requests), "--arrivals", kind, "--max-concurrency", "16",
                           *(["--seed", "1"] if kind != "constant" else []),  # constant arrivals draw nothing
                           *(["--burstiness", "2"] if kind == "gamma" else [])],
                          cwd=workdir, env=clean_environment(), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"open_loop: {kind} run exited {done.returncode}:\n{done.stderr}")
    wall_minus_perf = time.time() - time.perf_counter()  # this host's wall clock on perf_counter's
    received = {r.request_id: r.received_at for r in sim.log if r.model == "m"}
    with sqlite3.connect(workdir / "benchmarks.db") as db:
        rows = db.execute("select request_id, scheduled_at, start_lag_ms from benchmark_results "
                          "order by scheduled_at").fetchall()
    sim.log.clear()
    scheduled = [datetime.fromisoformat(at).timestamp() - wall_minus_perf for _, at, _ in rows]
    arrived = [received[request_id] for request_id, _, _ in rows]
    off_ms = sorted((a - s) * 1000 for a, s in zip(arrived, scheduled))
    # What is neither schedule nor start lag: from the request's start to the server's having it (the SDK's send,
    # loopback, the server's reading it).
    send_ms = [(a - s) * 1000 - lag for a, s, (_, _, lag) in zip(arrived, scheduled, rows)]
    server_gap = (arrived[-1] - arrived[0]) / (len(arrived) - 1)
    schedule_gap = (scheduled[-1] - scheduled[0]) / (len(scheduled) - 1)
    vs_rate, vs_schedule = server_gap * RATE - 1, server_gap / schedule_gap - 1
    lags = [lag for _, _, lag in rows]
    p99 = percentile(off_ms, 99) or 0.0
    ok = abs(vs_rate) <= MEAN_GAP_TARGET and p99 <= OFF_SCHEDULE_P99_TARGET_MS
    return (f"  {kind:<9} {len(rows):>5}  {vs_rate * 100:+8.2f} %  {vs_schedule * 100:+8.2f} %  "
            f"{percentile(off_ms, 50):8.2f}  {p99:8.2f}  {statistics.fmean(lags):7.2f}  "
            f"{percentile(lags, 99):7.2f}  {percentile(send_ms, 50):7.2f}  {'ok' if ok else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 requests per kind (the smoke test)")
    requests = 40 if parser.parse_args().quick else 300
    print(f"open loop: arrivals at {RATE:g} requests/s against the simulator's own log, {requests} requests a kind")
    print(machine_line())
    print("  kind      rows   mean gap vs 1/rate, vs schedule   off-schedule ms p50 / p99   start lag ms mean / p99   send ms p50")
    lines = []
    with Simulator(profiles={"m": ModelProfile(ttft_ms=50, itl_ms=2, output_tokens=10)}, default=None) as sim:
        for kind in ("constant", "poisson", "gamma"):
            with tempfile.TemporaryDirectory() as workdir:
                lines.append(one_kind(kind, requests, sim, Path(workdir)))
                print(lines[-1], flush=True)
    missed = [line.split()[0] for line in lines if line.endswith("MISSED")]
    print(f"targets (mean gap within {MEAN_GAP_TARGET:.0%} of 1/rate, off-schedule p99 <= "
          f"{OFF_SCHEDULE_P99_TARGET_MS:g} ms): " + ("all met" if not missed else f"MISSED for {', '.join(missed)}"))


if __name__ == "__main__":
    main()
