"""How long does `python main.py` take to start? Wall time of fresh processes, and the imports that dominate.

    python benchmarks/startup.py            # --help 10 times, a one-provider simulated run 5 times (about 15 s)
    python benchmarks/startup.py --quick    # once each, for the smoke test

Target: `python main.py --help` under 0.3 s, which needs the SDKs to be imported only when a provider is measured.
The simulated run (`--simulate --providers openai`) has no target; its wall time is shown next to the simulated
request's own latency, so that what the tool adds around the request is visible.

Each command runs in an empty temporary directory (no .env, benchmark.toml, DATABASE_URL or Supabase variables: the
default SQLite file), with bytecode caching on, after one untimed run that writes the bytecode: that is the steady
state of an installed tool, not the first run after an edit. Not part of the test suite (a smoke test runs it with
--quick so that it does not rot).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import statistics
import subprocess
import sys
import tempfile
import time

from machine import machine_line

MAIN = Path(__file__).resolve().parent.parent / "main.py"
HELP_TARGET_S = 0.3
COMMANDS = {
    "help": ["--help"],
    "simulated run": ["--simulate", "--providers", "openai"],
}


def clean_environment() -> dict[str, str]:
    """The caller's environment without anything that would pick another database or skip writing bytecode."""
    dropped = ("DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("BENCHMARK_")}


def run(args: list[str], workdir: str, *flags: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *flags, str(MAIN), *args], cwd=workdir, env=clean_environment(),
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"startup: `main.py {' '.join(args)}` exited {done.returncode}:\n{done.stderr}")
    return done


def wall_times(args: list[str], workdir: str, reps: int) -> tuple[list[float], list[str]]:
    """Seconds per fresh process, and each run's stdout."""
    run(args, workdir)  # untimed: writes the bytecode caches
    seconds, outputs = [], []
    for _ in range(reps):
        began = time.perf_counter()
        done = run(args, workdir)
        seconds.append(time.perf_counter() - began)
        outputs.append(done.stdout)
    return seconds, outputs


def import_times(args: list[str], workdir: str) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """From `python -X importtime`: (cumulative ms, name) of the top-level imports and (self ms, name) of all."""
    stderr = run(args, workdir, "-X", "importtime").stderr
    top: list[tuple[float, str]] = []
    every: list[tuple[float, str]] = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match:
            every.append((int(match.group(1)) / 1000, match.group(4)))
            if not match.group(3):  # not indented: imported by the program itself, not by another import
                top.append((int(match.group(2)) / 1000, match.group(4)))
    return sorted(top, reverse=True), sorted(every, reverse=True)


def spread(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f}, n={len(seconds)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed run of each, for the smoke test")
    args = parser.parse_args()
    reps = {"help": 1, "simulated run": 1} if args.quick else {"help": 10, "simulated run": 5}

    print("startup: wall time of a fresh `python main.py ...` process, median (bytecode cached, empty directory)")
    print(machine_line("openai", "groq", "together"))
    with tempfile.TemporaryDirectory() as workdir:
        help_s, _ = wall_times(COMMANDS["help"], workdir, reps["help"])
        help_median = statistics.median(help_s)
        print(f"  main.py --help                           {spread(help_s)}  "
              f"target < {HELP_TARGET_S:g} s: {'ok' if help_median < HELP_TARGET_S else 'MISSED'}")

        run_s, outputs = wall_times(COMMANDS["simulated run"], workdir, reps["simulated run"])
        latencies = [float(m) / 1000 for out in outputs for m in re.findall(r"Latency: ([\d.]+) ms", out)]
        request_s = statistics.median(latencies)
        print(f"  main.py --simulate --providers openai    {spread(run_s)}")
        print(f"    of which the simulated request itself {request_s:.3f} s (its latency); the tool around it: "
              f"{statistics.median(run_s) - request_s:.3f} s")

        print("\nimports that dominate (python -X importtime, one run each):")
        for command in COMMANDS.values():
            top, every = import_times(command, workdir)
            print(f"  main.py {' '.join(command)}: {sum(ms for ms, _ in top):.0f} ms of imports in all")
            print("    top-level imports, cumulative:  " + ", ".join(f"{name} {ms:.1f}" for ms, name in top[:6]))
            print("    single modules, own time:       " + ", ".join(f"{name} {ms:.1f}" for ms, name in every[:6]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
