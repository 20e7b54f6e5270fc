"""Repeated runs on a fixed grid: run k starts at start + k * interval (monotonic clock), so it never drifts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
import gc
import math
import time
from typing import Callable

from .settings.model import Settings
from .durations import MAX_DURATION_S, parse_duration  # noqa: F401  (its callers import them from here)

def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs or not seconds else ""]
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class Schedule:
    """How often and how many times."""

    interval_s: float
    runs: int

    @classmethod
    def from_flags(cls, interval_s: float, duration_s: float, runs: int | None) -> "Schedule":
        """`runs` if given, else as many whole intervals as fit in the duration (4h / 15m = 16)."""
        if runs is None:
            runs = max(1, int(duration_s // interval_s + 1e-9))
        return cls(interval_s=interval_s, runs=runs)


@dataclass(frozen=True)
class ScheduleOutcome:
    """The status of each run that happened, and the slots skipped because a run overran."""

    statuses: tuple[str, ...]
    skipped_slots: tuple[int, ...]
    stopped: bool


def run_schedule(
    schedule: Schedule,
    settings: Settings,
    one_run: Callable[[Settings], str],
    stop_wait: Callable[[float], bool],
    stop_requested: Callable[[], bool],
    say: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
) -> ScheduleOutcome:
    """Call one_run(settings for run k) on the grid; one_run returns the run's status and never stops the schedule."""
    total = schedule.runs
    start = clock()
    statuses: list[str] = []
    skipped: list[int] = []
    slot = 0
    while slot < total and not stop_requested():
        wait_s = start + slot * schedule.interval_s - clock()
        if wait_s > 0:
            at = datetime.now() + timedelta(seconds=wait_s)
            say(f"next run {slot + 1:02d}/{total:02d} at {at:%H:%M:%S} (in {format_duration(wait_s)})")
            if stop_wait(wait_s):
                break
        name = f"{settings.run_name}-{slot + 1:02d}/{total:02d}"
        statuses.append(one_run(replace(settings, run_name=name, triggered_by="scheduler")))
        # Each request's SDK client leaves reference cycles behind that only a full collection frees; without
        # one between runs, memory grew ~15 % over 100 runs (benchmarks/schedule_memory.py). The schedule idles now.
        gc.collect()
        if stop_requested():
            break
        elapsed_slots = (clock() - start) / schedule.interval_s
        next_slot = max(slot + 1, math.ceil(elapsed_slots))
        if next_slot > slot + 1 and slot + 1 < total:
            missed = list(range(slot + 2, min(next_slot, total) + 1))
            skipped.extend(missed)
            shown = ", ".join(f"{n:02d}" for n in missed)
            say(f"run {slot + 1:02d}/{total:02d} overran its slot: skipping run(s) {shown} (never back to back)")
        slot = next_slot
    return ScheduleOutcome(statuses=tuple(statuses), skipped_slots=tuple(skipped), stopped=stop_requested())
