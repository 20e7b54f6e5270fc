"""The closed loop: requests in flight together, per provider and model, at one concurrency level or a sweep of them.

Each of a level's slots sends its next request as soon as its last one ended, until the level's
requests (or its time) are done. Every request is measured by the same function as a sequential run's (the cell's
call_fn, through measure_cell), so its times are the wire's by the same definitions; the executor only decides when
requests start. Rows come back to this process, which stores them as a run does (outbox included). The levels of a
sweep go in order, one after another, for each provider and model, and a sweep stops early when the error rate
passes --max-error-rate or the throughput stops rising.

The harness never passes its own limit off as the provider's: each row stores its start lag (from when its slot was
free to when its request started), the workers report the CPU they used, and a level where either shows the harness
was busy says so (levels.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
import queue
import threading
import time
from typing import Any, Callable, Iterator, Protocol, Sequence

from ..benchmark_runner import Cell, RunInterrupted, RunOutcome, SavedMeasurement, _save, new_run, plan
from ..settings.model import Settings
from ..errors import StorageError
from ..measurement import utc_now
from ..executors.local import LocalExecutor
from ..executors.tickets import Done, Executor, ExecutorLost, Ticket
from ..storage import Storage
from .levels import LevelStats, LoadSettings, sweep_stop
from .open import open_tickets
from .trace import trace_tickets


def make_executor(load: LoadSettings, cells: Sequence[Cell]) -> Executor:
    if load.engine == "ray":
        from ..executors.ray_actors import RayExecutor

        return RayExecutor(cells, load.slots, load.ray_address)
    return LocalExecutor(cells, load.slots, load.workers)


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


def open_record(load: LoadSettings) -> dict[str, object]:
    """What the run's settings keep of an open loop: enough to draw its schedule again."""
    if not load.rates:
        return {}
    if load.trace is not None:
        return {"rates": list(load.rates), "arrivals": "trace", "trace": load.trace.name,
                "time_scale": load.trace.time_scale, "max_concurrency": load.max_concurrency}
    return {"rates": list(load.rates), "arrivals": load.arrivals, "burstiness": load.burstiness, "seed": load.seed,
            "max_concurrency": load.max_concurrency}


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
                   "max_error_rate": load.max_error_rate, "engine": load.engine, **open_record(load)}
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
    status, at_once = "failed", False
    try:
        for (provider, model), group in groups.items():
            levels: list[LevelStats] = []
            stopped = None
            for index, step in enumerate(load.steps):
                if stop_requested():
                    break
                stats = LevelStats(load.slots if load.rates else int(step), rate=step if load.rates else None,
                                   cpu_s={w: (cpu, cpu) for w, cpu in executor.cpu_seen.items()})
                began = time.perf_counter()
                if load.trace is not None:
                    tickets = trace_tickets(group, settings.measured_workload.cache_mode, settings.max_tokens,
                                            load.trace, load.slots, began, utc_now(), stop_requested)
                elif load.rates:
                    tickets = open_tickets(group, settings, load, index, began, utc_now(), stop_requested)
                else:
                    deadline = began + load.duration_s if load.duration_s is not None else None
                    tickets = _tickets(group, settings, stats.concurrency, load.requests_at(step), deadline,
                                       utc_now(), began, stop_requested)
                last_received = began
                # An open loop's tickets wait in their slots until due: a stop drops them (local workers only).
                level_run = (executor.run_level(tickets, stats.concurrency, stop_requested)  # type: ignore[call-arg]
                             if load.rates else executor.run_level(tickets, stats.concurrency))
                for done, last_received in in_background(level_run):
                    saved = _save(storage, run.id, done.measurement)
                    stats.add(done, saved.created_at)
                    stats.request_ended(done, last_received, began, one_clock=load.engine == "local")
                    results.append(saved)
                stats.wall_s = last_received - began
                executor.cpu_seen.update({worker: last for worker, (_, last) in stats.cpu_s.items()})
                levels.append(stats)
                stopped = sweep_stop(levels, load.max_error_rate) if index != len(load.steps) - 1 else None
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
    except KeyboardInterrupt:  # a second Ctrl-C: what came back is stored, the run is marked interrupted, at once
        status, at_once = "interrupted", True
        raise RunInterrupted(RunOutcome(run=run, status=status, results=tuple(results))) from None
    finally:
        executor.close(at_once=at_once)
        summary = {"load": {"levels": list(load.levels), "engine": load.engine, "sweeps": sweeps,
                            **({"rates": list(load.rates)} if load.rates else {})}}
        try:
            notes.append(storage.finish_run(run.id, status, utc_now(), summary))
        except StorageError as exc:
            notes.append(str(exc))
        reporter.run_finished(status, notes[-1])
    return run, status, tuple(results), tuple(n for n in notes if n)

