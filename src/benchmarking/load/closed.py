"""Load: requests in flight together, per provider and model, at one concurrency level or a sweep of them.

Closed loop: each of a level's slots sends its next request as soon as its last one ended, until the level's
requests (or its time) are done. Every request is measured by the same function as a sequential run's (the cell's
call_fn, through measure_cell), so its times are the wire's by the same definitions; the executor only decides when
requests start. Rows come back to this process, which stores them as a run does (outbox included). The levels of a
sweep go in order, one after another, for each provider and model, and a sweep stops early when the error rate
passes --max-error-rate or the throughput stops rising.

The harness never passes its own limit off as the provider's: each row stores its start lag (from when its slot was
free to when its request started), the workers report the CPU they used, and a level where either shows the harness
was busy says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
import math
import queue
import threading
import time
from typing import Any, Callable, Iterator, Protocol, Sequence

from ..benchmark_runner import Cell, RunInterrupted, RunOutcome, SavedMeasurement, _save, new_run, plan
from ..settings.model import Settings
from ..errors import StorageError
from ..figures import (
    LEVEL_PERCENTILES, LevelFigures, LevelRow, level_figures, quantiles, rate_text, round_ms, round_rate,
    round_s,
)
from ..measurement import utc_now
from ..executors.local import LocalExecutor
from ..executors.tickets import Done, Executor, ExecutorLost, Ticket
from ..storage import Storage

SATURATION_GAIN = 1.05  # a level whose throughput is not 5 % above the best before it: the provider is saturated
BOTTLENECK_LAG_P99_MS = 10.0  # start lags beyond this, or workers this busy, mean the harness held requests back
BOTTLENECK_CPU_SHARE = 0.8
IN_FLIGHT_SHARE = 0.9  # a level that kept fewer in flight on average than this share of it says so


@dataclass(frozen=True)
class LoadSettings:
    """How a load run loads each provider and model."""

    levels: tuple[int, ...]  # requests in flight, in order
    requests: int | None = None  # per level; None: 10 x the level, unless duration_s is given
    duration_s: float | None = None  # per level, instead of a number of requests
    max_error_rate: float = 0.10
    engine: str = "local"  # 'local' (worker processes on this machine) | 'ray'
    workers: int | None = None  # local worker processes; None: one per SLOTS_PER_WORKER slots, at most the CPUs
    ray_address: str | None = None

    def requests_at(self, level: int) -> int | None:
        if self.duration_s is not None and self.requests is None:
            return None
        return self.requests if self.requests is not None else 10 * level


@dataclass
class LevelStats:
    """What one level of one provider and model did."""

    concurrency: int
    requests: int = 0
    successes: int = 0
    wall_s: float = 0.0  # from when the driver started the level to when its last row came back: the harness's time
    errors: Counter[str] = field(default_factory=Counter)
    start_lags_ms: list[float] = field(default_factory=list)
    steady_lags_ms: list[float] = field(default_factory=list)  # after the ramp: the loop's own pace
    cpu_s: dict[str, tuple[float, float]] = field(default_factory=dict)  # worker -> (first, last) CPU seen
    rows: list[LevelRow] = field(default_factory=list)  # the provider's figures come from these, as report's do
    busy_s: float = 0.0  # the requests' time in flight, summed
    held_s: float = 0.0  # from the level's start to its last request's end (before the counts that follow it)

    def add(self, done: Done, stored_at: datetime) -> None:
        m = done.measurement
        self.rows.append((None, m, stored_at))
        self.requests += 1
        if m.success:
            self.successes += 1
        else:
            self.errors[m.error_type or "unknown"] += 1
        if m.start_lag_ms is not None:
            self.start_lags_ms.append(m.start_lag_ms)
            if not done.ramp:
                self.steady_lags_ms.append(m.start_lag_ms)
        self.busy_s += done.busy_s
        first, _ = self.cpu_s.get(done.worker, (done.worker_cpu_s, done.worker_cpu_s))
        self.cpu_s[done.worker] = (first, done.worker_cpu_s)

    @property
    def error_rate(self) -> float:
        return (self.requests - self.successes) / self.requests if self.requests else 0.0

    @property
    def figures(self) -> LevelFigures:
        """The level's requests, rates, TTFT and latency by the function `report --by concurrency` uses."""
        return level_figures(self.rows, LEVEL_PERCENTILES)

    @property
    def output_tokens_per_s(self) -> float | None:
        return self.figures.output_tokens_per_s

    @property
    def requests_per_s(self) -> float | None:
        return self.figures.requests_per_s

    @property
    def in_flight(self) -> float | None:
        """Requests really kept in flight, on average over the level's wall time (their time in flight, summed,
        over it); None without a wall time."""
        window = self.held_s or self.wall_s
        return min(float(self.concurrency), self.busy_s / window) if window > 0 and self.busy_s > 0 else None

    def short_of_level(self) -> str | None:
        """Why the level kept fewer requests in flight than asked (under IN_FLIGHT_SHARE of it), if it did."""
        held = self.in_flight
        if held is None or held >= IN_FLIGHT_SHARE * self.concurrency:
            return None
        # The share rounded down: a level held at 89.6 % never reads as the 90 % it fell short of.
        return (f"{held:.1f} requests in flight on average, {math.floor(held / self.concurrency * 100)}% of the "
                f"level's {self.concurrency}")

    def start_lag_ms(self, q: int) -> float | None:
        return quantiles(self.start_lags_ms, (q,))[q]

    @property
    def harness_cpu_ms_per_request(self) -> float | None:
        """The workers' CPU from the level's start (their last report before it) to their last report in it."""
        used = sum(last - first for first, last in self.cpu_s.values())
        return used / self.requests * 1000 if self.requests and used > 0 else None

    @property
    def busiest_worker_share(self) -> float:
        """The largest share of the level's wall time one worker process spent on the CPU."""
        if self.wall_s <= 0 or not self.cpu_s:
            return 0.0
        return max(last - first for first, last in self.cpu_s.values()) / self.wall_s

    def bottleneck(self) -> str | None:
        """Why the harness, not the provider, may have set this level's pace; None if it did not."""
        # The ramp (all of a level's first requests due at once) starts in a burst by design; the loop after it
        # should keep pace with the provider.
        lag = quantiles(self.steady_lags_ms, (99,))[99]
        reasons = []
        if lag is not None and lag > BOTTLENECK_LAG_P99_MS:
            reasons.append(f"requests started up to {lag:.0f} ms late (p99, after the ramp)")
        if self.busiest_worker_share > BOTTLENECK_CPU_SHARE:
            reasons.append(f"a worker process was on the CPU {self.busiest_worker_share:.0%} of the time")
        return "; ".join(reasons) or None

    def summary(self) -> dict[str, object]:
        figures = self.figures
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "successes": self.successes,
            "wall_s": round_s(figures.wall_s),
            "requests_per_s": round_rate(figures.requests_per_s),
            "output_tokens_per_s": round_rate(figures.output_tokens_per_s),
            "error_rate": round(self.error_rate, 4),
            "errors": dict(self.errors),
            "ttft_p50_ms": round_ms(figures.ttft_ms[50]),
            "ttft_p99_ms": round_ms(figures.ttft_ms[99]),
            "latency_p50_ms": round_ms(figures.latency_ms[50]),
            "latency_p99_ms": round_ms(figures.latency_ms[99]),
            "start_lag_p50_ms": round_ms(self.start_lag_ms(50)),
            "start_lag_p99_ms": round_ms(self.start_lag_ms(99)),
            "start_lag_p99_after_ramp_ms": round_ms(quantiles(self.steady_lags_ms, (99,))[99]),
            "harness_cpu_ms_per_request": round_ms(self.harness_cpu_ms_per_request),
            "harness_bottleneck": self.bottleneck(),
            "in_flight_mean": None if self.in_flight is None else round(self.in_flight, 2),
        }


def sweep_stop(levels: Sequence[LevelStats], max_error_rate: float) -> str | None:
    """Why a sweep stops after its latest level, if it does."""
    last = levels[-1]
    if last.error_rate > max_error_rate:
        return (f"error rate {last.error_rate:.0%} at concurrency {last.concurrency} is above --max-error-rate "
                f"{max_error_rate:.0%}")
    earlier = [rate for level in levels[:-1] if (rate := level.output_tokens_per_s) is not None]
    throughput = last.output_tokens_per_s  # unknown where the provider did not say how many tokens it sent
    if earlier and throughput is not None and throughput < SATURATION_GAIN * max(earlier):
        return (f"throughput stopped rising at concurrency {last.concurrency}: {rate_text(throughput)} "
                f"output tokens/s, against {rate_text(max(earlier))} before (saturation)")
    return None


def make_executor(load: LoadSettings, cells: Sequence[Cell]) -> Executor:
    if load.engine == "ray":
        from ..executors.ray_actors import RayExecutor

        return RayExecutor(cells, max(load.levels), load.ray_address)
    return LocalExecutor(cells, max(load.levels), load.workers)


# ---- the driver ----------------------------------------------------------------------------------------------------

_FINISHED = object()


def in_background(done: Iterator[Done]) -> Iterator[tuple[Done, float]]:
    """Run the executor's loop on a thread of its own, handing each request on with when it came back, so that
    storing rows (an fsync each, on SQLite) never holds up the next ticket of the closed loop."""
    handed: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def pump() -> None:
        try:
            for item in done:
                handed.put((item, time.perf_counter()))
        except BaseException as exc:  # raised again on the storing side
            handed.put(exc)
        else:
            handed.put(_FINISHED)

    thread = threading.Thread(target=pump, name="load-dispatch", daemon=True)
    thread.start()
    while (item := handed.get()) is not _FINISHED:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()

class LoadReporter(Protocol):
    def run_started(self, run: Any, storage: Storage, storage_note: str | None = None, requests: int = 0) -> None: ...

    def level_done(self, provider: str, model: str, stats: LevelStats, stopped: str | None) -> None: ...

    def run_finished(self, status: str, storage_note: str | None) -> None: ...


def _tickets(cells: Sequence[Cell], settings: Settings, concurrency: int, requests: int | None,
             deadline: float | None, level_started_at: datetime, level_started: float,
             stop_requested: Callable[[], bool]) -> Iterator[Ticket]:
    """The level's requests: its prompts in turn, until `requests` are given out, the deadline passes or a stop."""
    count = 0
    while ((requests is None or count < requests) and (deadline is None or time.perf_counter() < deadline)
           and not stop_requested()):
        yield Ticket(cells[count % len(cells)], settings.measured_workload.cache_mode, concurrency,
                     level_started_at, level_started, ramp=count < concurrency)
        count += 1


def run_load(
    settings: Settings, load: LoadSettings, storage: Storage, reporter: LoadReporter,
    stop_requested: Callable[[], bool] = lambda: False, executor: Executor | None = None,
) -> tuple[Any, str, tuple[SavedMeasurement, ...], tuple[str, ...]]:
    """A load run: for each provider and model, its levels in order; every request stored as it comes back.

    Returns (run, status, results, notes) as the sequential runner's outcome has them.
    """
    run = new_run(settings)
    load_record = {"levels": list(load.levels), "requests": load.requests, "duration_s": load.duration_s,
                   "max_error_rate": load.max_error_rate, "engine": load.engine}
    run = replace(run, kind="load", settings={**run.settings, "load": load_record})
    # Connections stay open between a slot's requests: warmed once, not before each one (that would double them).
    cells = [replace(cell, settings=replace(cell.settings, warm_each_request=False)) for cell in plan(settings)]
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.provider, cell.model), []).append(cell)
    executor = executor or make_executor(load, cells)  # its slots ready before the run is created
    notes = [storage.create_run(run)]
    reporter.run_started(run, storage, notes[0])
    results: list[SavedMeasurement] = []
    sweeps: list[dict[str, object]] = []
    status = "failed"
    try:
        for (provider, model), group in groups.items():
            levels: list[LevelStats] = []
            stopped = None
            for concurrency in load.levels:
                if stop_requested():
                    break
                stats = LevelStats(concurrency, cpu_s={w: (cpu, cpu) for w, cpu in executor.cpu_seen.items()})
                began = time.perf_counter()
                deadline = began + load.duration_s if load.duration_s is not None else None
                tickets = _tickets(group, settings, concurrency, load.requests_at(concurrency), deadline, utc_now(),
                                   began, stop_requested)
                last_received = began
                for done, last_received in in_background(executor.run_level(tickets, concurrency)):
                    saved = _save(storage, run.id, done.measurement)
                    stats.add(done, saved.created_at)
                    # A count after the request is not part of the level's load: its request ended at `ended`
                    # (perf_counter: one clock for this host's processes, and only local workers count later).
                    stats.held_s = max(stats.held_s, (done.ended if done.counted_later else last_received) - began)
                    results.append(saved)
                stats.wall_s = last_received - began
                executor.cpu_seen.update({worker: last for worker, (_, last) in stats.cpu_s.items()})
                levels.append(stats)
                stopped = sweep_stop(levels, load.max_error_rate) if concurrency != load.levels[-1] else None
                reporter.level_done(provider, model, stats, stopped)
                if stopped:
                    break
            sweeps.append({"provider": provider, "model": model, "levels": [s.summary() for s in levels],
                           "stopped": stopped})
        status = "interrupted" if stop_requested() else (
            "completed" if all(r.measurement.success for r in results) else "failed")
    except ExecutorLost as exc:  # its rows came back and are stored: the run ends here, with its status
        status = "failed"
        notes.append(str(exc))
    except KeyboardInterrupt:  # a second Ctrl-C: what came back is stored, the run is marked interrupted
        status = "interrupted"
        raise RunInterrupted(RunOutcome(run=run, status=status, results=tuple(results))) from None
    finally:
        executor.close()
        summary = {"load": {"levels": list(load.levels), "engine": load.engine, "sweeps": sweeps}}
        try:
            notes.append(storage.finish_run(run.id, status, utc_now(), summary))
        except StorageError as exc:
            notes.append(str(exc))
        reporter.run_finished(status, notes[-1])
    return run, status, tuple(results), tuple(n for n in notes if n)

