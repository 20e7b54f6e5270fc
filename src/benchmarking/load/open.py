"""The open loop (--rate): each request starts at its scheduled time whatever earlier answers do.

A rate's tickets carry their due time (arrivals.py's schedule from the level's start, on perf_counter: one clock for
this host's processes); the executor's slots (--max-concurrency of them) each hold a ticket until it is due, then
send it. A request due while every slot is busy waits for one: it is counted, and its start lag (actual start minus
scheduled) holds the wait, so the response time from the scheduled start (latency + start lag) never hides it.
The run is driven by closed.py's run_load, level by level, as a closed loop's levels are; a rate is judged by
levels.py (start lags high or growing over the level: the harness's pace, never the provider's limit).
"""

from __future__ import annotations

from datetime import datetime, timedelta
import math
from typing import Callable, Iterator, Sequence

from ..executors.tickets import Ticket
from ..providers.cells import Cell
from ..settings.model import Settings
from .arrivals import level_seed, offsets
from .levels import LoadSettings

# The schedule starts this long after the driver begins a level, so that its first tickets reach their slots (a
# pipe to each worker process) before they are due, instead of every level opening with a late first request.
START_LEAD_S = 0.05
# --max-concurrency's default: by Little's law a rate R with requests of T seconds keeps R x T in flight; room for
# requests of up to 10 s at the sweep's highest rate, at least 16 slots, at most 256 (a worker process per 16 slots,
# about 1 MiB each: capacity.py checks what this machine holds either way).
DEFAULT_HELD_S = 10.0
DEFAULT_SLOTS_LEAST, DEFAULT_SLOTS_MOST = 16, 256


def default_max_concurrency(rates: Sequence[float], requests: int | None) -> int:
    """Slots enough for every rate's requests to take up to DEFAULT_HELD_S, within bounds; never more than a
    level's requests (a slot that never gets a ticket only costs memory)."""
    slots = min(DEFAULT_SLOTS_MOST, max(DEFAULT_SLOTS_LEAST, math.ceil(max(rates) * DEFAULT_HELD_S)))
    return min(slots, requests) if requests is not None else slots


def open_tickets(cells: Sequence[Cell], settings: Settings, load: LoadSettings, index: int, began: float,
                 began_at: datetime, stop_requested: Callable[[], bool]) -> Iterator[Ticket]:
    """The rate's requests, its prompts in turn, each due at its time on the schedule: until the rate's requests are
    given out, its duration's schedule ends, or a stop."""
    rate = load.rates[index]
    requests, duration_s = load.requests_at(rate), load.duration_s
    start, start_at = began + START_LEAD_S, began_at + timedelta(seconds=START_LEAD_S)
    for count, offset in enumerate(offsets(load.arrivals, rate, level_seed(load.seed, index), load.burstiness)):
        if ((requests is not None and count >= requests) or (duration_s is not None and offset >= duration_s)
                or stop_requested()):
            return
        yield Ticket(cells[count % len(cells)], settings.measured_workload.cache_mode, load.slots, start_at, start,
                     ramp=False, scheduled=start + offset, scheduled_at=start_at + timedelta(seconds=offset),
                     request_rate=rate)
