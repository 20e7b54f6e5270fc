"""Where a load run's slots run on this machine: tickets in, rows out.

A worker process holds threads for its slots; each slot takes its worker's tickets one at a time and measures each
as a sequential run does (measure_cell), starting its next request the moment its last one ended (the closed loop,
run in the worker). A count of tokens by the server's tokenizer is left to the worker's counter threads, so that it
never holds a slot. What it shares with the Ray executor (Ticket, Done, Ready) is in tickets.py.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
import math
import os
import queue
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Iterator, Sequence

from ..providers.cells import Cell, prepare_cell
from ..providers.timed import as_load_worker
from ..measurement import Measurement
from ..redaction import scrub_output_of_this_process
from .capacity import default_workers, raise_descriptor_limit
from .tickets import SLOTS_PER_WORKER, Done, ExecutorLost, Freed, Level, Ready, Ticket, client_key_of, measure_ticket_later

WORKER_CHECK_EVERY_S = 1.0  # while waiting for rows, how often the worker processes are checked to be alive
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}  # the main process's to handle (GracefulStop)
GIL_SWITCH_INTERVAL_S = 0.001
COUNTERS_PER_SLOT = 4  # threads that count tokens with a server's tokenizer, and counts that may wait, a slot


@dataclass(frozen=True)
class Drop:
    """Told to a worker when the run stops: an open loop's tickets not yet sent are dropped, not waited for."""


@dataclass(frozen=True)
class Dropped:
    """A ticket a slot dropped (the run stopped before it was due): no request was made."""

    worker: str


class _Slots:
    """A worker's slots: threads that take tickets from the worker's own queue, as many at a time as the level
    gives the worker, each starting its next request the moment its last one ended (the closed loop, run here: no
    round trip to the main process between a request and the next)."""

    def __init__(self, count: int, results: Any, worker: str, node: str, cells: Sequence[Cell]) -> None:
        self._tickets: queue.SimpleQueue[Ticket | None] = queue.SimpleQueue()
        self._results, self._worker, self._node, self._cells = results, worker, node, cells
        self._level = Level(0, 0.0)
        self._changed = threading.Condition()
        self._dropping = threading.Event()
        # Tokens counted by the server's tokenizer, off the slots: a slot's next request never waits for a count
        # (threads started only as counts come; a count as long as COUNTERS_PER_SLOT requests still keeps up).
        self._counter = ThreadPoolExecutor(max_workers=COUNTERS_PER_SLOT * count, thread_name_prefix="count")
        self._threads = [threading.Thread(target=self._slot, args=(index,), daemon=True) for index in range(count)]
        for thread in self._threads:
            thread.start()

    def drop(self) -> None:
        self._dropping.set()

    def level(self, level: Level) -> None:
        self._dropping.clear()
        with self._changed:
            self._level = level
            self._changed.notify_all()

    def ticket(self, ticket: Ticket | None) -> None:
        self._tickets.put(ticket)

    def stop(self) -> None:
        self.level(Level(len(self._threads), 0.0))  # every slot awake, to take its stop
        for _ in self._threads:
            self._tickets.put(None)
        for thread in self._threads:
            thread.join()
        self._counter.shutdown(wait=True)

    def _count(self, uncounted: Measurement, finish: Callable[[], Measurement], ended: float, ramp: bool,
               busy_s: float, waited: bool = False) -> None:
        """A request's tokens counted, then its row sent back (as counted, or as it was if counting broke)."""
        try:
            measurement = finish()
        except Exception:  # a bug in counting must not lose the row, nor hold the level forever
            measurement = uncounted
        self._results.put(Done(measurement, self._worker, time.process_time(), ended, ramp=ramp, busy_s=busy_s,
                               counted_later=True, waited_for_slot=waited))

    def _slot(self, index: int) -> None:
        from ..providers.client import kept_clients

        with kept_clients():  # this slot's own clients: one connection per endpoint, kept for the whole run
            for cell in {client_key_of(cell): cell for cell in self._cells}.values():
                prepare_cell(cell)
            self._results.put(Ready(self._worker, time.process_time()))
            ended, level = 0.0, self._level
            counting: list[Future[None]] = []  # this slot's counts: done before its clients close
            while True:
                with self._changed:  # a slot beyond the level's share waits for a level that needs it
                    self._changed.wait_for(lambda: index < self._level.active_slots)
                    if self._level is not level:
                        level, ended = self._level, 0.0
                free_since = time.perf_counter()
                ticket = self._tickets.get()
                if ticket is None:
                    wait(counting)
                    return
                # A slot that waited here across levels: the new level's first request is due at its start, not
                # when this slot's last request of the level before ended (the main process tells a worker the
                # level before it sends the level's tickets, so the level is known by now).
                if self._level is not level:
                    level, ended = self._level, 0.0
                if index >= self._level.active_slots:  # taken while waiting, but this level does not need it
                    self._tickets.put(ticket)
                    continue
                # Due when the level started, or when this slot's last request ended; an open loop's at its time.
                first, waited = not ended, False
                if ticket.scheduled is not None:
                    # Every slot was busy when it was due (a free one would have been waiting here for it):
                    # it waited for a slot, and its start lag holds that wait.
                    first, waited = False, free_since > ticket.scheduled
                    if not wait_until(ticket.scheduled, self._dropping):
                        self._results.put(Dropped(self._worker))
                        continue
                began = time.perf_counter()
                due = ticket.scheduled if ticket.scheduled is not None else max(level.started, ended)
                measurement, finish = measure_ticket_later(ticket, due, self._node)
                ended = time.perf_counter()
                if finish is None:
                    self._results.put(Done(measurement, self._worker, time.process_time(), ended, ramp=first,
                                           busy_s=ended - began, waited_for_slot=waited))
                    continue
                self._results.put(Freed(self._worker))
                counting = [f for f in counting if not f.done()]
                counting.append(self._counter.submit(self._count, measurement, finish, ended, first, ended - began,
                                                     waited))


def wait_until(due: float, dropping: threading.Event) -> bool:
    """Until perf_counter reaches `due` (an open loop's request keeps its time whatever the others do): True; False
    at once if the run stops meanwhile (a ticket due in minutes never holds a stopping run)."""
    if dropping.is_set():
        return False
    while (left := due - time.perf_counter()) > 0:
        if dropping.wait(left):
            return False
    return True


def _worker_main(inbox: Any, results: Any, slots: int, worker: str, cells: Sequence[Cell], parent_pid: int) -> None:
    """A worker process: its slots, fed from its inbox (levels and tickets) until told to stop (None)."""
    from .lifeline import die_with_parent

    die_with_parent(parent_pid)  # a run killed outright takes its workers (and their connections) with it
    raise_descriptor_limit()  # a connection a slot and endpoint: capacity.check_local_load counted on the hard limit
    # Ctrl-C and SIGTERM are the main process's to handle: it stops the levels, and the requests in flight here are
    # finished and stored (a signal to the whole process group, as timeout, systemd and cron send it, reaches the
    # workers too: taken here, it lost their requests and left the main process waiting). A main process that is
    # killed outright takes the workers with it (die_with_parent).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked since its start (LocalExecutor): now ignored
    scrub_output_of_this_process()  # a fresh interpreter: what it prints passes the scrubber as the parent's does
    # A slot waking for its request's time waits for the GIL, which a busy thread gives up only every switch interval
    # (5 ms by default): 1 ms keeps an open loop's starts near their schedule, for a little more switching.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    as_load_worker()  # its own switch interval, no reader thread a connection: handing the GIL round cost most
    pool = _Slots(slots, results, worker, socket.gethostname(), cells)
    while (message := inbox.get()) is not None:
        if isinstance(message, Level):
            pool.level(message)
        elif isinstance(message, Drop):
            pool.drop()
        else:
            pool.ticket(message)
    pool.stop()


def shares(concurrency: int, workers: int) -> list[int]:
    """A level's slots spread over the workers as evenly as can be: 5 over 2 is [3, 2]."""
    return [concurrency // workers + (1 if index < concurrency % workers else 0) for index in range(workers)]


class LocalExecutor:
    """Worker processes on this machine, each with threads for its slots; started once, kept for every level."""

    def __init__(self, cells: Sequence[Cell], max_concurrency: int, workers: int | None = None) -> None:
        import multiprocessing

        # A fresh interpreter per worker (not a fork of this one, which holds threads and open connections).
        context = multiprocessing.get_context("spawn")
        self.workers = min(workers or default_workers(max_concurrency, SLOTS_PER_WORKER), max_concurrency)
        self.slots_per_worker = math.ceil(max_concurrency / self.workers)
        self._names = [f"local-{index}" for index in range(self.workers)]
        self._inboxes = [context.Queue() for _ in self._names]
        self._results = context.Queue()
        self._processes = [
            context.Process(target=_worker_main, args=(inbox, self._results, self.slots_per_worker, name,
                                                       list(cells), os.getpid()), daemon=True)
            for inbox, name in zip(self._inboxes, self._names)
        ]
        # The stop signals are blocked while the workers start, so that one sent to the whole group before a worker
        # ignores them stays pending there (and is then dropped) instead of killing it; here it comes once unblocked.
        kept_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for process in self._processes:
                process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, kept_mask)
        self.cpu_seen: dict[str, float] = {}  # each worker's CPU when it was last heard from
        waiting = self.workers * self.slots_per_worker
        while waiting:  # every slot ready before the first level starts; a worker that dies meanwhile ends the wait
            try:
                ready = self._results.get(timeout=WORKER_CHECK_EVERY_S)
            except queue.Empty:
                self._check_started()
                continue
            self.cpu_seen[ready.worker] = max(self.cpu_seen.get(ready.worker, 0.0), ready.worker_cpu_s)
            waiting -= 1

    def _check_started(self) -> None:
        """A worker process that died while starting (killed, out of memory) ends the wait for its slots."""
        dead = [(name, process) for name, process in zip(self._names, self._processes) if not process.is_alive()]
        if dead:
            for process in self._processes:
                process.kill()
            name, process = dead[0]
            raise ExecutorLost(f"worker process {name} (pid {process.pid}) ended while starting (exit status "
                               f"{process.exitcode}): nothing was sent")

    def run_level(self, tickets: Iterator[Ticket], concurrency: int,
                  stop_requested: Callable[[], bool] | None = None) -> Iterator[Done]:
        """Each worker runs its share of the level's slots; each keeps a backlog of tickets (twice its slots), topped
        up as its requests come back, so that a slot never waits on this process to start its next request."""
        share = dict(zip(self._names, shares(concurrency, self.workers)))
        started = time.perf_counter()
        for inbox, name in zip(self._inboxes, self._names):
            inbox.put(Level(share[name], started))
        inbox_of = dict(zip(self._names, self._inboxes))
        backlog = {name: 0 for name in self._names}  # tickets sent whose request is not over
        counting = {name: 0 for name in self._names}  # requests over, their tokens still being counted

        def feed(name: str, most: int | None = None) -> None:
            # Counts that fall behind hold the slots back at last: at most COUNTERS_PER_SLOT a slot waiting.
            while (backlog[name] < 2 * share[name] and counting[name] < COUNTERS_PER_SLOT * share[name]
                   and (most is None or most > 0) and (ticket := next(tickets, None)) is not None):
                inbox_of[name].put(ticket if ticket.scheduled is not None else replace(ticket, due=started))
                backlog[name] += 1
                most = None if most is None else most - 1

        # An open loop's tickets go round the workers one by one, so that each worker's slots hold the nearest
        # due times, not one worker the first ones and another those far ahead.
        for _ in range(max(share.values()) * 2):
            for name in self._names:
                feed(name, 1)
        checked, dropped = time.monotonic(), False
        while any(backlog.values()) or any(counting.values()):
            if stop_requested is not None and not dropped and stop_requested():  # an open loop's stop
                dropped = True
                for inbox in self._inboxes:
                    inbox.put(Drop())
            if time.monotonic() - checked >= WORKER_CHECK_EVERY_S:  # the others' rows may keep coming meanwhile
                self._check_workers(backlog, counting)
                checked = time.monotonic()
            try:
                item = self._results.get(timeout=WORKER_CHECK_EVERY_S)
            except queue.Empty:
                continue
            if isinstance(item, Dropped):
                backlog[item.worker] -= 1
                continue
            if isinstance(item, Freed):
                backlog[item.worker] -= 1
                counting[item.worker] += 1
                feed(item.worker)
                continue
            if item.counted_later:
                counting[item.worker] -= 1
            else:
                backlog[item.worker] -= 1
            feed(item.worker)
            yield item

    def _check_workers(self, backlog: dict[str, int], counting: dict[str, int]) -> None:
        """A worker process that died (the OOM killer, a crash) ends the run, in a line, instead of a wait for
        results that will never come."""
        for name, process in zip(self._names, self._processes):
            if not process.is_alive():
                lost = backlog[name] + counting[name]
                message = (f"worker process {name} (pid {process.pid}) ended during the level (exit status "
                           f"{process.exitcode}) with {lost} requests not back; the run ends here")
                print(f"load: {message}", file=sys.stderr, flush=True)
                raise ExecutorLost(message)

    def close(self, at_once: bool = False) -> None:
        """The workers stopped: once their requests in flight are over, or `at_once` (a second Ctrl-C: their rows
        would not be stored anyway, and waiting for them could take the whole --timeout)."""
        for inbox in self._inboxes:
            inbox.put(None)
        for process in self._processes:
            if not at_once:
                process.join(timeout=30)
            if process.is_alive():
                process.kill()  # it takes no SIGTERM (see _worker_main)
                process.join(timeout=5)
