"""Ray (--engine ray): a load run's slots on Ray actors across the nodes of a cluster.

Each actor runs on one node (Ray's node affinity puts one on every node that has a CPU, more where a node has more
CPUs and the run needs them) and holds slot threads, as a local worker does: each slot's clients prepared for every
endpoint first, then each request measured by tickets.measure_ticket (measure_cell), exactly as a sequential run
measures it. The driver (this process) runs the closed loop and keeps each slot's next request queued on its actor
behind the one it is making, so that a slot starts its next request the moment its last one ends, as a local slot
does, without waiting for the trip to the driver and back. Each row comes back here to be stored as usual (outbox
included). A level starts only when every request of the one before has come back, and its first requests go out
to every node at once.

Clocks: perf_counter is one clock per host, so a request's start lag is measured on the node that makes it: from
when its slot's last request ended there, or for a level's first requests (the ramp) from their arrival on the node.
So on Ray the lag is the node's own delay; a driver too slow to keep the next requests queued shows in it too.

An actor (or its node) that is lost takes its requests in flight with it: each is stored as a failure with
error_type 'worker_lost', the ones queued behind them (never started) go to the other slots, and the level goes on
with the other actors. A lost actor is started again (on its node, or another if that one is gone) before the next
level, or at once if no slot is left.

The cluster's head (its GCS) that stops answering ends the run within HEAD_LOST_AFTER_S, its requests in flight stored
as 'worker_lost': Ray would end this process at 60 s. It is watched from the thread that hands the rows on, not by
the level's loop, which may then be waiting inside a call to Ray for the head to come back.

Ray is optional (requirements-ray.txt): nothing here imports it until connect() is called.
"""

from __future__ import annotations

import atexit
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
import math
import queue
import sys
import threading
import time
from typing import Any, Callable, Iterator, Sequence

from ..providers.cells import Cell
from ..errors import ConfigError
from ..measurement import Measurement, utc_now
from .ray_cluster import (HEAD_CHECK_EVERY_S, HEAD_LOST_AFTER_S, INSTALL_HINT, HeadWatch, connect, gcs_host_port,
                          one_line, require_ray)
from .ray_slots import STOP_TIMEOUT_S, SlotsActor
from .tickets import SLOTS_PER_WORKER, Done, ExecutorLost, Ticket

READY_TIMEOUT_S = 180.0  # actors start, import the SDKs and warm their clients


class ClusterLost(ExecutorLost):
    """Every Ray actor was lost and none could be started again, or the cluster's head stopped answering."""


@dataclass
class _Actor:
    handle: Any
    worker: str
    node_id: str
    node: str
    slots: int
    cpu_s: float
    lost: bool = False
    numbers: list[int] = field(init=False)  # the number of each slot's next request

    def __post_init__(self) -> None:
        self.numbers = [0] * self.slots


@dataclass(frozen=True)
class _Slot:
    actor: _Actor
    index: int


@dataclass(frozen=True, eq=False)
class _Sent:
    """A request handed to a slot, not yet back."""

    slot: _Slot
    number: int
    ticket: Ticket
    sent_at: datetime


class _LevelEnded(Exception):
    """The level was ended (its cluster's head is gone): its loop's thread sends and hands on nothing more."""


_FINISHED = object()


@dataclass
class _Level:
    """A level between the thread that runs its loop and the one that hands its rows on (RayExecutor.run_level).

    A request is unanswered from when it is sent until its row is handed on, both under the lock, so that once the
    level is ended each request has either its row handed on or is among those end() returns, never both or neither.
    """

    handed: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)  # rows, then _FINISHED or an error
    unanswered: set[_Sent] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ended: bool = False

    def run(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except _LevelEnded:
            return
        except BaseException as exc:  # raised again where the rows are handed on
            self.handed.put(exc)
        else:
            self.handed.put(_FINISHED)

    def sent(self, sent: _Sent) -> None:
        with self.lock:
            if self.ended:
                raise _LevelEnded
            self.unanswered.add(sent)

    def hand(self, sent: _Sent, done: Done | None) -> None:
        """A request's row handed on; None for one given back to the other slots (never started: no row)."""
        with self.lock:
            if self.ended:
                raise _LevelEnded
            self.unanswered.remove(sent)
            if done is not None:
                self.handed.put(done)

    def end(self) -> list[_Sent]:
        """Ends the level: the requests still in flight, whose rows will never be handed on."""
        with self.lock:
            self.ended = True
            return sorted(self.unanswered, key=lambda s: (s.slot.actor.worker, s.slot.index, s.number))


def plan_actors(nodes: Sequence[tuple[str, int]], max_concurrency: int) -> list[tuple[str, int]]:
    """(node id, slots) for each actor: one on every node (while there are slots to give), more where the run needs
    more than SLOTS_PER_WORKER slots an actor and the node has the CPUs; slots shared out evenly."""
    cpus = {node_id: max(1, count) for node_id, count in nodes}
    wanted = max(len(cpus), min(sum(cpus.values()), math.ceil(max_concurrency / SLOTS_PER_WORKER)))
    wanted = min(wanted, max_concurrency)
    placed: list[str] = []
    per_node = dict.fromkeys(cpus, 0)
    while len(placed) < wanted:  # round the nodes, each up to its CPUs
        for node_id in cpus:
            if len(placed) < wanted and per_node[node_id] < cpus[node_id]:
                placed.append(node_id)
                per_node[node_id] += 1
    return [(node_id, max_concurrency // wanted + (index < max_concurrency % wanted))
            for index, node_id in enumerate(placed)]


class RayExecutor:
    """Slots on Ray actors across the cluster's nodes; started once, kept for every level (Executor protocol)."""

    def __init__(self, cells: Sequence[Cell], max_concurrency: int, address: str | None) -> None:
        require_ray()
        self.cells = list(cells)
        self.address = address
        self._actors: list[_Actor] = []
        self._closed = False
        self._head_lost = False
        self._workers = 0
        self.cpu_seen: dict[str, float] = {}  # each actor's CPU when last heard from (run_load's level baseline)
        self._ray = connect(address)
        self._head = HeadWatch(gcs_host_port(self._ray))
        self._actor_class = self._ray.remote(SlotsActor)
        try:
            nodes = self._usable_nodes()
            if not nodes:
                raise ConfigError(f"the Ray cluster at {address or 'local'} has no live node with a CPU to run on")
            started = [self._start(node_id, slots) for node_id, slots in plan_actors(nodes, max_concurrency)]
            self._actors = self._wait_ready(started)
            self.cpu_seen.update({actor.worker: actor.cpu_s for actor in self._actors})
        except BaseException:
            self.close()
            raise
        where = sorted({actor.node for actor in self._actors})
        print(f"Ray: {_count(len(self._actors), 'actor')} with {_count(sum(a.slots for a in self._actors), 'slot')} "
              f"on {_count(len(where), 'node')} ({', '.join(where)})", file=sys.stderr, flush=True)

    # ---- actors ----------------------------------------------------------------------------------------------------

    def _usable_nodes(self) -> list[tuple[str, int]]:
        """(node id, CPUs) of the live nodes that have a CPU (a head started with --num-cpus=0 runs no actor)."""
        return [(node["NodeID"], int(node["Resources"].get("CPU", 0))) for node in self._ray.nodes()
                if node.get("Alive") and node["Resources"].get("CPU", 0) >= 1]

    def _start(self, node_id: str, slots: int) -> tuple[Any, str, str]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        worker = f"ray-{self._workers}"
        self._workers += 1
        handle = self._actor_class.options(
            num_cpus=0,  # slots wait on the network: placed by affinity and counted by CPUs here, not reserved
            max_concurrency=2 * slots + 2,  # each slot's request and the one queued behind it, info() and stop()
            max_restarts=0,
            max_task_retries=0,  # a lost request is stored as lost, never sent twice
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(worker, self.cells, slots)
        return handle, worker, node_id

    def _wait_ready(self, started: Sequence[tuple[Any, str, str]]) -> list[_Actor]:
        ray = self._ray
        infos = [handle.info.remote() for handle, _, _ in started]
        try:
            answers = ray.get(infos, timeout=READY_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise ConfigError(f"the Ray actors did not start within {READY_TIMEOUT_S:.0f} s: does every node have "
                              f"this tool's requirements ({INSTALL_HINT})?") from None
        except ray.exceptions.RayError as exc:
            raise ConfigError(f"a Ray actor could not start: {one_line(exc)} (every node needs this tool's "
                              f"requirements: {INSTALL_HINT})") from None
        return [_Actor(handle, worker, node_id, info["node"], info["slots"], info["cpu_s"])
                for (handle, worker, node_id), info in zip(started, answers)]

    def _replace_lost(self) -> None:
        """Start a new actor for each lost one: on its node if that is alive, else on the node with fewest."""
        lost = [actor for actor in self._actors if actor.lost]
        if not lost:
            return
        alive = dict(self._usable_nodes())
        if not alive:
            raise ClusterLost("every Ray actor was lost and the cluster has no live node with a CPU left")
        kept = [actor for actor in self._actors if not actor.lost]
        started = []
        for actor in lost:
            node_id = actor.node_id
            if node_id not in alive:
                node_id = min(alive, key=lambda n: sum(a.node_id == n for a in kept))
            started.append(self._start(node_id, actor.slots))
        try:
            fresh = self._wait_ready(started)
        except ConfigError as exc:
            raise ClusterLost(f"Ray actors were lost and could not be started again: {exc}") from None
        self._actors = kept + fresh
        self.cpu_seen.update({actor.worker: actor.cpu_s for actor in fresh})

    def _slots(self) -> list[_Slot]:
        """The live actors' slots, in an order that goes round the actors (and so the nodes): a level of N uses the
        first N, spread over every node."""
        actors = [actor for actor in self._actors if not actor.lost]
        return [_Slot(actor, index) for index in range(max((a.slots for a in actors), default=0))
                for actor in actors if index < actor.slots]

    # ---- a level ---------------------------------------------------------------------------------------------------

    def run_level(self, tickets: Iterator[Ticket], concurrency: int) -> Iterator[Done]:
        """The level's loop runs on a thread of its own (_run_level) and hands its rows on here, where the cluster's
        head is watched: a call to Ray that needs the head (starting an actor, listing the nodes) waits for it, up to
        Ray's own 60 s, when it is gone, so the loop itself cannot be the one to notice that it is."""
        level = _Level()
        threading.Thread(target=level.run, args=(lambda: self._run_level(tickets, concurrency, level),),
                         name="ray-level", daemon=True).start()
        while True:
            try:
                item = level.handed.get(timeout=HEAD_CHECK_EVERY_S)
            except queue.Empty:
                item = None
            if item is _FINISHED:
                return
            if isinstance(item, BaseException):
                raise item
            if item is not None:
                yield item
            if self._head.gone():  # the actors' rows may still come, but Ray ends this process soon
                yield from self._settle_head_lost(level)

    def _run_level(self, tickets: Iterator[Ticket], concurrency: int, level: _Level) -> None:
        """The level's closed loop: each request's row handed on to `level` as it comes back."""
        ray = self._ray
        pending: dict[Any, _Sent] = {}  # by the ref of its answer
        given_back: deque[Ticket] = deque()  # queued on a lost actor, never started: for the other slots

        def next_ticket() -> Ticket | None:
            return given_back.popleft() if given_back else next(tickets, None)

        def send(slot: _Slot, ticket: Ticket) -> None:
            sent = _Sent(slot, slot.actor.numbers[slot.index], ticket, utc_now())
            slot.actor.numbers[slot.index] += 1
            level.sent(sent)
            pending[slot.actor.handle.measure.remote(slot.index, sent.number, ticket)] = sent

        while not self._closed:
            if not pending:  # the level's start, or every slot of it was lost: a ramp on the live slots
                ticket = next_ticket()
                if ticket is None:  # the level is done: lost actors are started again now, outside its time
                    with suppress(ClusterLost):  # if they cannot be, the next level says so
                        self._replace_lost()
                    return
                self._replace_lost()
                slots = self._slots()[:concurrency]
                if not slots:
                    raise ClusterLost("no Ray actor is left to make this level's requests")
                for ramp in (True, False):  # each slot's first request, then its next one queued behind it
                    for slot in slots:
                        if ticket is None and (ticket := next_ticket()) is None:
                            break
                        send(slot, replace(ticket, ramp=ramp))
                        ticket = None
            ready: list[Any] = []
            while not ready and not level.ended:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=HEAD_CHECK_EVERY_S)
            if not ready:
                return
            (ref,) = ready
            sent = pending[ref]
            try:
                done = ray.get(ref)
            except ray.exceptions.RayTaskError:
                raise  # the measuring code itself failed: a bug to see, not a lost worker
            except ray.exceptions.RayError:
                self._settle_lost(sent.slot.actor, pending, given_back, level)
                continue
            del pending[ref]
            sent.slot.actor.cpu_s = done.worker_cpu_s
            if (ticket := next_ticket()) is not None:  # queued behind the one this slot is making now
                send(sent.slot, replace(ticket, ramp=False))
            level.hand(sent, done)

    def _settle_lost(self, actor: _Actor, pending: dict[Any, _Sent], given_back: deque[Ticket], level: _Level) -> None:
        """An actor is lost: of each of its slots' requests, those that came back are rows as usual, the one in
        flight is a `worker_lost` failure, and the ones queued behind it (never started) go to the other slots."""
        ray = self._ray
        self._lose(actor)
        mine = sorted(((ref, s) for ref, s in pending.items() if s.slot.actor is actor),
                      key=lambda item: (item[1].slot.index, item[1].number))
        ray.wait([ref for ref, _ in mine], num_returns=len(mine), timeout=STOP_TIMEOUT_S)
        broken: set[int] = set()  # slots whose request in flight was lost
        for ref, sent in mine:
            del pending[ref]
            if sent.slot.index in broken:
                given_back.append(sent.ticket)
                level.hand(sent, None)
                continue
            try:
                done = ray.get(ref, timeout=0)
            except ray.exceptions.RayTaskError:
                raise
            except ray.exceptions.RayError as exc:
                broken.add(sent.slot.index)
                level.hand(sent, worker_lost(sent.ticket, actor.node, actor.worker, actor.cpu_s, sent.sent_at, exc))
            else:
                level.hand(sent, done)

    def _settle_head_lost(self, level: _Level) -> Iterator[Done]:
        """The head is gone: the rows already handed on are stored, each request still in flight is a `worker_lost`
        row, and the run ends (ClusterLost); the level's loop, likely waiting on Ray, is left behind."""
        self._head_lost = True
        in_flight = level.end()
        host, port = self._head.gcs or ("?", 0)
        message = (f"the Ray cluster's head at {host}:{port} stopped answering for {HEAD_LOST_AFTER_S:.0f} s: "
                   f"{len(in_flight)} requests in flight stored as lost (worker_lost), the run ends here")
        print(f"Ray: {message}", file=sys.stderr, flush=True)
        while not level.handed.empty():
            if isinstance(item := level.handed.get(), Done):
                yield item
        for sent in in_flight:
            actor = sent.slot.actor
            yield worker_lost(sent.ticket, actor.node, actor.worker, actor.cpu_s, sent.sent_at, ClusterLost(message))
        raise ClusterLost(message)

    def _lose(self, actor: _Actor) -> None:
        if not actor.lost:
            actor.lost = True
            try:
                self._ray.kill(actor.handle, no_restart=True)  # an actor cut off, not dead, sends nothing more
            except Exception:
                pass

    def close(self, at_once: bool = False) -> None:
        """The actors stopped and Ray shut down, within STOP_TIMEOUT_S a step (at_once or not)."""
        if self._closed:
            return
        self._closed = True
        ray = self._ray
        if self._head_lost:  # every call to Ray would wait for the head: leave it, within a bound
            stopper = threading.Thread(target=ray.shutdown, name="ray-shutdown", daemon=True)
            stopper.start()
            stopper.join(STOP_TIMEOUT_S)
            # Ray's own shutdown at the interpreter's exit would wait on the one still in that thread (for the dead
            # head, until Ray's 60 s timeout: a run that ended at +10 s exited at +87 s): not again.
            atexit.unregister(ray.shutdown)
            return
        live = [actor for actor in self._actors if not actor.lost]
        if live:
            try:
                ray.wait([actor.handle.stop.remote() for actor in live], num_returns=len(live),
                         timeout=STOP_TIMEOUT_S)
            except Exception:
                pass
        for actor in self._actors:
            try:
                ray.kill(actor.handle, no_restart=True)
            except Exception:
                pass
        ray.shutdown()


def worker_lost(ticket: Ticket, node: str, worker: str, cpu_s: float, sent_at: datetime, exc: BaseException) -> Done:
    """The row of a request whose actor was lost before its answer came back: a failure, stored like any other."""
    cell = ticket.cell
    measurement = Measurement(
        provider=cell.provider,
        model=cell.model,
        success=False,
        started_at=sent_at,
        stream=cell.settings.stream,
        error_type="worker_lost",
        error_message=(f"the Ray actor making this request on node {node} was lost ({type(exc).__name__}) before "
                       "its answer came back; the provider may or may not have received it"),
        prompt_id=cell.prompt.prompt_id,
        input_tier=cell.prompt.input_tier,
        cache_mode=ticket.cache_mode,
        concurrency=ticket.concurrency,
        level_started_at=ticket.level_started_at,
        node=node,
    )
    return Done(measurement, worker, cpu_s, time.perf_counter(), ticket.ramp)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
