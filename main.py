"""Benchmark Engine: one run against every provider with a key (python main.py --help)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from benchmarking.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
