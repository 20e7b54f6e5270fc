"""Benchmark Engine on a schedule: every 15 minutes for 4 hours by default (python run_scheduled.py --help)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

try:
    from benchmarking.cli import scheduled_main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while the modules load: nothing has started yet, so one line, not a traceback
    sys.stderr.write("\ninterrupted while starting: nothing measured\n")
    sys.exit(130)  # ExitStatus.INTERRUPTED, whose module is what was being imported

if __name__ == "__main__":
    sys.exit(scheduled_main())
