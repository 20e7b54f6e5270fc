"""The Ray actor of --engine ray (made one by RayExecutor, ray_actors.py): slot threads on its node, each a slot loop
with its own clients, as a local worker's; each request measured by tickets.measure_ticket, exactly as a sequential
run measures it. Imported with the rest of the package on every node; Ray itself only inside the actor."""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from typing import Any, Sequence

from ..providers.cells import Cell, prepare_cell
from ..redaction import scrub_output_of_this_process
from .tickets import Done, Ready, Ticket, client_key_of, measure_ticket

STOP_TIMEOUT_S = 10.0


def node_label(node_id: str) -> str:
    """What a row stores in `node` on Ray: the host name and the Ray node id (two nodes may share a host)."""
    return f"{socket.gethostname()}/{node_id}"


class SlotsActor:
    """One Ray actor: slot threads on its node, each a slot loop with its own clients; one request at a time each.

    The driver keeps each slot's next request queued here behind the one it is making, numbered, so that a slot
    starts its next request the moment its last one ends. Made a Ray actor by RayExecutor (ray.remote), so that this
    module imports without Ray.
    """

    def __init__(self, worker: str, cells: Sequence[Cell], slots: int) -> None:
        import ray

        scrub_output_of_this_process()  # its lines reach Ray's log files and the driver's console
        self.worker = worker
        self.node = node_label(ray.get_runtime_context().get_node_id())
        self._cells = list(cells)
        self._jobs: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(slots)]
        self._results: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(slots)]
        self._turn = threading.Condition()
        self._next = [0] * slots  # the number of each slot's next request
        self._ended = [0.0] * slots  # when each slot's last request ended (perf_counter, this host)
        self._threads = [threading.Thread(target=self._slot, args=(index,), daemon=True) for index in range(slots)]
        for thread in self._threads:
            thread.start()
        for results in self._results:  # every slot's clients ready before the actor is
            ready = results.get()
            assert isinstance(ready, Ready)

    def _slot(self, index: int) -> None:
        """One slot: its own clients, built and warmed for every endpoint, then one request at a time."""
        from ..providers.client import kept_clients

        jobs, results = self._jobs[index], self._results[index]
        with kept_clients():
            for cell in {client_key_of(cell): cell for cell in self._cells}.values():
                prepare_cell(cell)
            results.put(Ready(self.worker, time.process_time()))
            while (job := jobs.get()) is not None:
                ticket, due = job
                began = time.perf_counter()
                measurement = measure_ticket(ticket, due, self.node)
                ended = time.perf_counter()
                results.put(Done(measurement, self.worker, time.process_time(), ended, ticket.ramp, ended - began))

    def info(self) -> dict[str, Any]:
        return {"node": self.node, "pid": os.getpid(), "slots": len(self._threads), "cpu_s": time.process_time()}

    def measure(self, slot: int, number: int, ticket: Ticket) -> Done:
        """Make a slot's request number `number` once the ones before it are done, and return its row.

        Its start lag is counted on this host: from when the slot's last request ended, or for the first request of
        a level (the ramp) from its arrival here, since the driver's clock (its level start) is not this host's.
        """
        arrived = time.perf_counter()
        with self._turn:
            self._turn.wait_for(lambda: self._next[slot] == number)
        self._jobs[slot].put((ticket, arrived if ticket.ramp else self._ended[slot]))
        done = self._results[slot].get()
        with self._turn:
            self._ended[slot] = done.ended
            self._next[slot] += 1
            self._turn.notify_all()
        return done

    def stop(self) -> None:
        for jobs in self._jobs:
            jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=STOP_TIMEOUT_S)
