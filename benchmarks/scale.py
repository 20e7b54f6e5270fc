"""Scale on one small machine: requests/s, start lag, the whole process tree's CPU per request and TTFT error
against a server that is not the bottleneck, at levels of requests in flight (closed loop) and open-loop rates.

    python benchmarks/scale.py                                  # closed loop at 1,4,16,64,256,1024
    python benchmarks/scale.py --levels 16,64 --requests 768    # the issue's table
    python benchmarks/scale.py --rates 50,100,200,400           # open loop (--max-concurrency 256)
    python benchmarks/scale.py --long                           # 1,024 requests in flight at once, 34 s streams
    python benchmarks/scale.py --guidellm /work/guidellm-venv/bin/guidellm   # GuideLLM at the same levels

The server is benchmarks/stub_server.py (two processes, a canned Chat Completions stream: 50 ms to the first of 10
tokens, 2 ms apart), started once and shared by every run, so both tools meet the same server. Each run is a fresh
`main.py --concurrency L --requests N` (or `--rate R`) in a temporary directory (the default SQLite file), measured
from outside:
- requests/s: the rows stored over the server's own span (the first request read to the last answer's end);
- start lag p99: from the rows (`start_lag_ms`), leaving out each level's ramp (its first L requests);
- CPU per request: the whole process tree's (main.py and its workers, user + system, from /proc, reaped children
  included), sampled every 20 ms and taken over the same span, so start-up is left out (`total` includes it);
- TTFT error: the row's ttft_ms minus the server's own (first token written minus request read), p50 and p99;
- the tool's own verdict: `harness-bound` where it printed that the harness may have set the level's pace.
"""

from __future__ import annotations

import argparse
from bisect import bisect_left
import os
from pathlib import Path
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarking.figures import percentile  # noqa: E402
from machine import machine_line  # noqa: E402
from startup import clean_environment  # noqa: E402

MAIN = Path(__file__).resolve().parent.parent / "main.py"  # --main runs another checkout's (a before/after)
STUB = Path(__file__).resolve().parent / "stub_server.py"
TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.02
MAIN_PY = MAIN


def own_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the process alone: the driver's part."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(v) for v in fields[11:13]) / TICK


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, its reaped children and its live descendants."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = sum(int(v) for v in fields[11:15]) / TICK  # utime stime cutime cstime
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError):
        return 0.0
    return total + sum(tree_cpu(int(child)) for child in children)


class Sampler:
    """The tree's CPU against the wall clock, every 20 ms, while a run lasts."""

    def __init__(self, pid: int) -> None:
        self.pid, self.times, self.cpu, self.own = pid, [], [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            cpu, own = tree_cpu(self.pid), own_cpu(self.pid)
            if cpu:
                self.times.append(time.time())
                self.cpu.append(max(cpu, self.cpu[-1] if self.cpu else 0.0))
                self.own.append(max(own, self.own[-1] if self.own else 0.0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, when: float, driver: bool = False) -> float:
        """The tree's CPU (or the driver's alone) at `when`, interpolated between samples."""
        series = self.own if driver else self.cpu
        index = bisect_left(self.times, when)
        if index <= 0:
            return series[0]
        if index >= len(self.times):
            return series[-1]
        t0, t1, c0, c1 = self.times[index - 1], self.times[index], series[index - 1], series[index]
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0)


LONG_STREAM_MS = 34000  # --long's streams: 30 s and the ramp, so that all 1,024 are in flight together for 30 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stub(port: int, log_dir: Path, tokens: int, itl_ms: float, processes: int) -> subprocess.Popen:
    stub = subprocess.Popen([sys.executable, str(STUB), "--port", str(port), "--log-dir", str(log_dir),
                             "--tokens", str(tokens), "--itl-ms", str(itl_ms), "--processes", str(processes)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return stub
        except OSError:
            time.sleep(0.05)
    raise SystemExit("scale: the stub server did not start")


def stub_log(log_dir: Path) -> dict[str, tuple[float, float, float]]:
    """Every request the stub answered: id -> (read, first token written, last chunk written), wall clock."""
    records = {}
    for path in log_dir.glob("stub-*.tsv"):
        for line in path.read_text().splitlines():
            rid, read, first, end = line.split("\t")
            records[rid] = (float(read), float(first), float(end))
    return records


def flush_stub(stub: subprocess.Popen, log_dir: Path) -> dict[str, tuple[float, float, float]]:
    time.sleep(1.2)  # each stub process flushes its log every second
    return stub_log(log_dir)


def run_ours(port: int, args: list[str], label: str, stub: subprocess.Popen, log_dir: Path) -> str:
    with tempfile.TemporaryDirectory() as workdir:
        Path(workdir, "benchmark.toml").write_text(
            f'[[providers]]\nname = "local"\nbase_url = "http://127.0.0.1:{port}/v1"\nmodel = "m"\n')
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen([sys.executable, str(MAIN_PY), "--providers", "local", *args], cwd=workdir,
                                env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = Sampler(proc.pid)
        out, err = proc.communicate(timeout=900)
        sampler.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"scale: main.py {' '.join(args)} exited {proc.returncode}:\n{err[-3000:]}")
        total_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        with sqlite3.connect(Path(workdir, "benchmarks.db")) as db:
            rows = db.execute("select request_id, ttft_ms, start_lag_ms, success, concurrency from benchmark_results "
                              "order by rowid").fetchall()
            failures = db.execute("select error_type, count(*), min(error_message) from benchmark_results "
                                  "where not success group by error_type order by 2 desc").fetchall()
    server = flush_stub(stub, log_dir)
    line = figures(label, rows, server, sampler, total_cpu, out + err)
    # What failed, and the tool's own warnings on the level: the figures' reasons, beside them.
    notes = [f"failed: {kind} {count}, e.g. {message}" for kind, count, message in failures]
    notes += [text.strip() for text in (out + err).splitlines() if "Warning:" in text]
    if server and rows and len(server) == len(rows) == rows[0][4]:  # a single wave: as many requests as the level
        # Held by the server's clock: from the last request it read to the first answer it ended, every one of
        # them was in flight at once (for a single wave of long streams, what "N in flight for T s" means).
        all_in = max(read for read, _, _ in server.values())
        first_end = min(end for _, _, end in server.values())
        notes.append(f"all {len(server):,} in flight at the server at once for {max(0.0, first_end - all_in):.1f} s "
                     f"(the last read {all_in - min(read for read, _, _ in server.values()):.2f} s after the first)")
    return "\n".join([line, *(f"      {note}" for note in notes)])


def figures(label: str, rows: list, server: dict, sampler: Sampler, total_cpu: float, output: str) -> str:
    matched = [(row, server[row[0]]) for row in rows if row[0] in server]
    ok = sum(1 for row in rows if row[3])
    if not matched:
        return f"  {label:<22} {len(rows):>5} rows, none matched the server's log ({ok} succeeded)"
    began = min(s[0] for _, s in matched)
    ended = max(s[2] for _, s in matched)
    span = ended - began
    level = rows[0][4] or 0
    lags = [row[2] for row in rows[level:] if row[2] is not None] or [row[2] or 0.0 for row in rows]
    errors = [row[1] - (s[1] - s[0]) * 1000 for row, s in matched if row[1] is not None]
    cpu = sampler.at(ended) - sampler.at(began) if sampler.times else float("nan")
    driver = sampler.at(ended, True) - sampler.at(began, True) if sampler.times else float("nan")
    bound = "harness-bound" if "harness may have set" in output else ""
    if "was not held" in output:
        bound = (bound + " not-held").strip()
    return (f"  {label:<22} {len(rows):>5} {ok:>5} {len(matched) / span:9.1f} {percentile(lags, 99):9.1f} "
            f"{cpu / len(matched) * 1000:8.2f} {driver / len(matched) * 1000:6.2f} {total_cpu / len(rows) * 1000:7.2f} "
            f"{percentile(errors, 50):+8.2f} {percentile(errors, 99):+8.2f}  {bound}")


def run_guidellm(guidellm: str, port: int, profile: str, label: str, requests: int, stub: subprocess.Popen,
                 log_dir: Path) -> str:
    """GuideLLM (0.8's `guidellm run`) with `profile` (kind=concurrent,streams=L or kind=constant,rate=R) against
    the same server, the same number of requests; figures from the server's log, CPU from outside."""
    with tempfile.TemporaryDirectory() as workdir:
        for path in log_dir.glob("stub-*.tsv"):
            path.unlink()
        prompts = Path(workdir, "prompts.txt")
        prompts.write_text("Say hello to the benchmark in a few words please.\n" * requests)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        target = f"kind=openai_http,target=http://127.0.0.1:{port},model=m"
        proc = subprocess.Popen([guidellm, "run", "--backend", target, "--profile", profile,
                                 "--constraint", f"kind=max_requests,count={requests}",
                                 "--data", f"kind=text_file,path={prompts}", "--disable-progress"],
                                cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = Sampler(proc.pid)
        out, err = proc.communicate(timeout=900)
        sampler.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = flush_stub(stub, log_dir)
    if proc.returncode != 0 or not server:
        return f"  {label:<22} failed ({proc.returncode}): {(err or out).strip().splitlines()[-1:]}"
    began = min(s[0] for s in server.values())
    ended = max(s[2] for s in server.values())
    cpu = sampler.at(ended) - sampler.at(began) if sampler.times else float("nan")
    driver = sampler.at(ended, True) - sampler.at(began, True) if sampler.times else float("nan")
    total = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return (f"  {label:<22} {len(server):>5} {'':>5} {len(server) / (ended - began):9.1f} {'':>9} "
            f"{cpu / len(server) * 1000:8.2f} {driver / len(server) * 1000:6.2f} {total / len(server) * 1000:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,4,16,64,256,1024", help="requests in flight, comma-separated ('' none)")
    parser.add_argument("--rates", default="", help="open-loop rates, requests/s, comma-separated")
    parser.add_argument("--requests", type=int, default=0, help="per level (default max(128, 3 x the level))")
    parser.add_argument("--max-concurrency", type=int, default=256, help="an open loop's slots")
    parser.add_argument("--long", action="store_true", help="1,024 in flight for 30 s (34 s streams)")
    parser.add_argument("--long-itl-ms", type=float, default=500.0,
                        help="--long's gap between tokens (68 tokens: 500 ms; 600 at 50 ms did not hold here)")
    parser.add_argument("--workers", type=int, default=0, help="main.py --workers (default: its own)")
    parser.add_argument("--guidellm", default="", help="GuideLLM's executable, run at the same levels")
    parser.add_argument("--stub-processes", type=int, default=2)
    parser.add_argument("--main", default=str(MAIN), help="the main.py to run (another checkout's: a before/after)")
    args = parser.parse_args()
    global MAIN_PY
    MAIN_PY = Path(args.main)
    workers = ["--workers", str(args.workers)] if args.workers else []
    stream = f"{round(LONG_STREAM_MS / args.long_itl_ms)} tokens {args.long_itl_ms:g} ms apart" if args.long else (
        "10 tokens 2 ms apart")
    print(f"scale: {MAIN_PY} against benchmarks/stub_server.py (50 ms to the first of {stream})")
    print(machine_line("openai", "httpx"))
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print("  run                     rows    ok  requests/s  lag p99  cpu ms/req driver total  TTFT err p50   p99")
    port = free_port()
    with tempfile.TemporaryDirectory() as logs:
        log_dir = Path(logs)
        tokens, itl = (round(LONG_STREAM_MS / args.long_itl_ms), args.long_itl_ms) if args.long else (10, 2.0)
        stub = start_stub(port, log_dir, tokens, itl, args.stub_processes)
        try:
            if args.long:
                print(run_ours(port, ["--concurrency", "1024", "--requests", "1024", *workers], "c=1024 34s streams",
                               stub, log_dir), flush=True)
                return
            for level in [int(v) for v in args.levels.split(",") if v]:
                requests = max(args.requests, level) if args.requests else max(128, 3 * level)
                for path in log_dir.glob("stub-*.tsv"):
                    path.unlink()
                print(run_ours(port, ["--concurrency", str(level), "--requests", str(requests), *workers],
                               f"c={level} n={requests}", stub, log_dir), flush=True)
                if args.guidellm:
                    print(run_guidellm(args.guidellm, port, f"kind=concurrent,streams={level}", f"guidellm c={level}",
                                       requests, stub, log_dir), flush=True)
            for rate in [float(v) for v in args.rates.split(",") if v]:
                requests = args.requests or max(128, int(rate * 4))
                for path in log_dir.glob("stub-*.tsv"):
                    path.unlink()
                print(run_ours(port, ["--rate", f"{rate:g}", "--requests", str(requests), "--max-concurrency",
                                      str(args.max_concurrency), *workers], f"rate={rate:g} n={requests}",
                               stub, log_dir), flush=True)
                if args.guidellm:
                    print(run_guidellm(args.guidellm, port, f"kind=constant,rate={rate:g}", f"guidellm rate={rate:g}",
                                       requests, stub, log_dir), flush=True)
        finally:
            stub.terminate()
            stub.wait(timeout=10)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
