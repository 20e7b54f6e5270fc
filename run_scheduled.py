"""Benchmark Engine on a schedule: every 15 minutes for 4 hours by default (python run_scheduled.py --help)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from benchmarking.cli import scheduled_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(scheduled_main())
