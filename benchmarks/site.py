"""How fast is `report --site`, and how large is what it writes? A SQLite history of 15-minute runs of four
providers (benchmarks/storage.py's rows), then `python main.py report --site DIR` as a user runs it (interpreter
start included; the median of 3, beside plain `report`'s) and the size of the data the pages load.

    python benchmarks/site.py              # 100,000 stored results (about 8.7 months of 15-minute runs); then
                                           # the rebuild after one more run, in the same process
    python benchmarks/site.py --million    # and 1,000,000 (target, issue 22: within 5 s; at 100,000 within 1 s)
    python benchmarks/site.py --quick      # 1,000 results, for the smoke test
    python benchmarks/site.py --render     # 30 days of 15-minute runs of six providers: the data's size and the
                                           # first render in headless Chromium (targets: 2 MB, 1 s)

Not part of the test suite.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_line  # noqa: E402
import storage  # noqa: E402
from storage import SQLiteStorage, fill_sqlite, time_report  # noqa: E402

SIX_PROVIDERS = storage.PROVIDERS + (
    ("anthropic", "claude-haiku-4-5", 420.0, 1600.0, 30, 48, "0.000270"),
    ("gemini", "gemini-2.5-flash", 380.0, 900.0, 30, 48, "0.000129"),
)


def timed(url: str, args: list[str], workdir: str) -> tuple[float, float]:
    """Wall time of `main.py report ARGS`, and the CPU time (user + system) its process used: on a machine busy with
    other work the wall time grows, the CPU time much less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time_report(url, args, workdir)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(count: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "benchmarks.db"
        with SQLiteStorage(path) as store:
            store.prepare()  # the tables and their indexes, before the history fills them
        fill_sqlite(path, 0, count, datetime.now(timezone.utc))
        url = f"sqlite:///{path}"
        runs = [timed(url, ["--site", "site"], workdir) for _ in range(3)]
        times = [wall for wall, _ in runs]
        cpu = statistics.median(used for _, used in runs)
        plain_runs = [timed(url, [], workdir) for _ in range(3)]  # the same machine, the same moment
        plain = statistics.median(wall for wall, _ in plain_runs)
        plain_cpu = statistics.median(used for _, used in plain_runs)
        site = Path(workdir) / "site"
        data_kb = (site / "data.js").stat().st_size / 1024
        total_kb = sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) / 1024
        print(f"{count:>9,} results: report --site {statistics.median(times):.2f} s, CPU {cpu:.2f} s (median of 3; "
              f"{', '.join(f'{t:.2f}' for t in times)}); plain `report` {plain:.2f} s, CPU {plain_cpu:.2f} s; "
              f"data.js {data_kb:,.0f} kB, the whole site {total_kb:,.0f} kB")
        # In a process of its own, as run_scheduled.py's: this one holds the objects of the fill, which the garbage
        # collector would walk through again and again during the rebuild.
        subprocess.run([sys.executable, __file__, "--rebuild", str(path), str(count)], check=True)


def rebuild(path: Path, workdir: str, count: int) -> None:
    """The rebuild after a scheduled run, in the process that ran it (`run_scheduled.py --site`, `serve`): a build,
    one more run of four results stored, the rebuild timed (CPU and wall; the median of 3 runs)."""
    from benchmarking.report.selection import Selection
    from benchmarking.site.build import build_site
    from benchmarking.slo import SloConfig

    site = Path(workdir) / "rebuilt"
    with SQLiteStorage(path) as store:
        began, cpu = time.perf_counter(), time.process_time()
        build_site(store, Selection(), SloConfig(), site, keep=True)
        first = (time.perf_counter() - began, time.process_time() - cpu)
        timings = []
        for index in range(3):
            fill_sqlite(path, count + 4 * index, 4, datetime.now(timezone.utc))  # the run's results
            began, cpu = time.perf_counter(), time.process_time()
            build_site(store, Selection(), SloConfig(), site, keep=True)
            timings.append((time.perf_counter() - began, time.process_time() - cpu))
    wall = statistics.median(w for w, _ in timings)
    used = statistics.median(c for _, c in timings)
    print(f"{count:>9,} results: in the process, the first build {first[0]:.2f} s, CPU {first[1]:.2f} s; the rebuild "
          f"after a run {wall:.2f} s, CPU {used:.2f} s (median of 3; {', '.join(f'{w:.2f}' for w, _ in timings)})")


def render() -> None:
    """30 days of 15-minute runs of six providers: the data the pages load, and the first render in Chromium (from
    navigation start to the leaderboard, charts and heatmap drawn; the median of 5 loads)."""
    from playwright.sync_api import sync_playwright

    storage.PROVIDERS = SIX_PROVIDERS
    count = 30 * 96 * len(SIX_PROVIDERS)
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "benchmarks.db"
        with SQLiteStorage(path) as store:
            store.prepare()
        fill_sqlite(path, 0, count, datetime.now(timezone.utc))
        seconds = time_report(f"sqlite:///{path}", ["--site", "site"], workdir)
        site = Path(workdir) / "site"
        data_kb = (site / "data.js").stat().st_size / 1024
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            drawn = []
            for _ in range(5):
                page.goto((site / "index.html").as_uri())
                page.wait_for_function("performance.getEntriesByName('site-drawn').length > 0")
                drawn.append(page.evaluate("performance.getEntriesByName('site-drawn')[0].startTime"))
            browser.close()
        print(f"{count:>9,} results (30 days, six providers): report --site {seconds:.2f} s, data.js {data_kb:,.0f} kB, "
              f"first render {statistics.median(drawn):.0f} ms (median of 5; {', '.join(f'{d:.0f}' for d in drawn)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 stored results: the smoke test")
    parser.add_argument("--million", action="store_true", help="go on to 1,000,000 stored results (about 1 GB)")
    parser.add_argument("--render", action="store_true",
                        help="only 30 days of six providers: the data's size and the first render in Chromium")
    parser.add_argument("--rebuild", nargs=2, metavar=("DATABASE", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    random.seed(22)
    if args.rebuild:
        with tempfile.TemporaryDirectory() as workdir:
            rebuild(Path(args.rebuild[0]), workdir, int(args.rebuild[1]))
        return 0
    print(machine_line())
    if args.render:
        render()
        return 0
    sizes = [1_000] if args.quick else [100_000] + ([1_000_000] if args.million else [])
    for count in sizes:
        measure(count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
