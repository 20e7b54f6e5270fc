"""Does memory stay flat over a long schedule? Quick runs against the simulator; peak RSS after run 5 and the last.

    python benchmarks/schedule_memory.py            # 50 runs, every provider each (about 25 s)
    python benchmarks/schedule_memory.py --runs 8   # a quick look

Target: peak RSS after the last run within 10 % of the peak after run 5. Not part of the test suite (a smoke test
runs it with tiny settings so that it does not rot).
"""

from __future__ import annotations

import argparse
import importlib
from contextlib import ExitStack
import io
from pathlib import Path
import resource
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarking.benchmark_runner import PROVIDERS, run_benchmark  # noqa: E402
from benchmarking.settings.load import load_settings  # noqa: E402
from benchmarking.console import ConsoleReporter  # noqa: E402
from benchmarking.scheduler import Schedule, run_schedule  # noqa: E402
from benchmarking.simulator import ModelProfile, Simulator  # noqa: E402
from benchmarking.storage.outbox import Outbox, ResilientStorage  # noqa: E402
from benchmarking.storage.sqlite import SQLiteStorage  # noqa: E402

QUICK = ModelProfile(ttft_ms=5, itl_ms=0.5, output_tokens=64, tokens_per_chunk=2)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs in the schedule (default 50)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between run starts (default 0.5)")
    args = parser.parse_args()
    if args.runs < 6:
        parser.error("--runs must be at least 6 (the first five are the baseline)")

    for sdk in ("openai", "groq", "together"):  # imported up front, so that the first run fits its slot too
        importlib.import_module(sdk)
    figures: dict[int, tuple[float, float]] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
        sim = stack.enter_context(Simulator(profiles={}, default=QUICK))
        settings = load_settings(prompt="Explain a hash map.", builtin=[(n, m) for n, _, m in PROVIDERS],
                                 environ={"BENCHMARK_HOST": "bench"}, simulate=True)
        settings = settings.pointed_at({p.name: sim.base_url(p.name) for p in settings.providers}, "sim-key")
        backend = stack.enter_context(SQLiteStorage(Path(workdir) / "benchmarks.db"))
        storage = ResilientStorage(backend, Outbox(Path(workdir) / "outbox"))
        done = 0
        durations: list[float] = []

        def one_run(run_settings):
            nonlocal done
            began = time.perf_counter()
            outcome = run_benchmark(run_settings, storage, ConsoleReporter(io.StringIO()))
            durations.append(time.perf_counter() - began)
            done += 1
            if done in (5, args.runs):
                figures[done] = (peak_rss_mib(), current_rss_mib())
            return outcome.status

        # An interval a little longer than a run, so that the schedule really waits between runs. On a busy machine a
        # run can still overrun its slot and the next slot is skipped: spare slots, and stopping after the N-th run,
        # keep the figures about N runs whatever the machine's load.
        outcome = run_schedule(Schedule(args.interval, args.runs * 10), settings, one_run,
                               lambda seconds: time.sleep(seconds) or False, lambda: done >= args.runs,
                               lambda line: None)
        stored = len(backend.read_results())

    print(f"run time: max {max(durations) * 1000:.0f} ms, skipped slots: {list(outcome.skipped_slots)}")
    if args.runs not in figures:
        print(f"only {done} runs were made: raise --interval above the longest run")
        return 1
    (peak5, rss5), (peak_n, rss_n) = figures[5], figures[args.runs]
    growth = (peak_n - peak5) / peak5 * 100
    print(f"runs: {len(outcome.statuses)} ({outcome.statuses.count('completed')} completed), results stored: {stored}")
    print(f"after run 5:  peak RSS {peak5:.1f} MiB, current RSS {rss5:.1f} MiB")
    print(f"after run {args.runs}: peak RSS {peak_n:.1f} MiB, current RSS {rss_n:.1f} MiB")
    print(f"peak RSS growth: {growth:+.1f} % (target: within 10 %) -> {'ok' if abs(growth) <= 10 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
