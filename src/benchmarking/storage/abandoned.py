"""Runs left `running` by a process that died (kill -9, a crash, a reboot) are marked `abandoned`.

Only runs of this host are judged, by their process id: another machine's processes cannot be seen from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import os
from pathlib import Path

from .base import Storage, StoredRun

# A run starts after its process does, so a process that started after the run cannot be the one that made it (its
# pid was reused, say after a reboot). The margin covers /proc's boot time in whole seconds and the wall clock being
# set forward while a run goes on (NTP, a resumed VM), which would otherwise make a live run look younger than its
# process.
_START_SLACK = timedelta(seconds=60)


def _process_state(pid: int) -> tuple[str, datetime] | None:
    """(state, start time) of a process, from Linux's /proc; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after the name, which is in parentheses and may hold spaces
    ticks = int(fields[19])  # starttime: field 22 of the whole line, in clock ticks since boot
    started = datetime.fromtimestamp(int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK"), timezone.utc)
    return fields[0], started


def process_gone(pid: int, run_started_at: datetime) -> bool:
    """Whether the process that made a run (which started at run_started_at) no longer runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, under another user
    except OSError:
        return False
    state = _process_state(pid)
    if state is None:
        return False
    # A zombie is dead, only not yet reaped by its parent; a process younger than the run is another one.
    return state[0] == "Z" or state[1] > run_started_at + _START_SLACK


def abandon_dead_runs(storage: Storage, host: str) -> list[tuple[StoredRun, datetime]]:
    """Mark `abandoned` every run of this host still `running` whose process is gone, finished at its last result's
    time (its start if it has none). Returns each run marked, with that time.

    Raises StorageError if the database does not answer; a finish replayed later from an outbox wins over this mark.
    """
    marked = []
    for run in storage.read_runs(status="running"):
        info = run.info
        if info.host != host or info.pid is None or info.pid == os.getpid():
            continue
        if not process_gone(info.pid, info.started_at):
            continue
        results = storage.read_results(info.id, with_text=False)
        finished_at = max((r.created_at for r in results), default=info.started_at)
        storage.finish_run(info.id, "abandoned", finished_at)
        marked.append((run, finished_at))
    return marked
