"""What executors and the load engine pass each other: tickets (a request to make), the rows done, and the small
protocol every executor (local worker processes, Ray actors) follows; and how a slot measures a ticket (as a
sequential run measures it, with the load fields added)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
import time
from typing import Callable, Iterator, Protocol

from ..providers.cells import Cell, measure_cell, with_judgement
from ..deferred import finishing_later
from ..measurement import Measurement

SLOTS_PER_WORKER = 16  # slots one worker process keeps in flight (its threads); more slots, more workers


class ExecutorLost(Exception):
    """The executor cannot go on (a Ray cluster's head is gone): the level's requests in flight came back as lost,
    the executor said why in its own line, and the run ends `failed`."""


@dataclass(frozen=True)
class Ticket:
    """One request for a slot to make, and when its level started (perf_counter is one clock for a host's processes)."""

    cell: Cell
    cache_mode: str
    concurrency: int
    level_started_at: datetime
    due: float  # when the closed loop let it start: its level's start, or the end of the request it follows
    ramp: bool  # one of the level's first `concurrency` requests, all due at its start
    # An open loop's request: due at `scheduled` (perf_counter) whatever earlier answers do, at `scheduled_at` (UTC).
    scheduled: float | None = None
    scheduled_at: datetime | None = None
    request_rate: float | None = None  # its level's arrival rate, requests/s


@dataclass(frozen=True)
class Done:
    """A request a slot made: what it measured, and the CPU its worker had used when it ended."""

    measurement: Measurement
    worker: str
    worker_cpu_s: float
    ended: float  # perf_counter when it was done: the next ticket is due then
    ramp: bool = False
    busy_s: float = 0.0  # how long it held its slot: from its start to its end (the level's in-flight time)
    counted_later: bool = False  # its tokens were counted after its slot was freed (Freed came first)
    waited_for_slot: bool = False  # an open loop's request due while every slot was busy: it started late


class Executor(Protocol):
    """Runs a level's tickets on `concurrency` slots; yields each request as it is done."""

    cpu_seen: dict[str, float]  # each worker's CPU (process_time) when last heard from: a level's baseline

    def run_level(self, tickets: Iterator[Ticket], concurrency: int) -> Iterator[Done]: ...

    def close(self, at_once: bool = False) -> None: ...  # at_once: without waiting for requests in flight


@dataclass(frozen=True)
class Ready:
    """A slot has built and warmed its clients for every cell of the run, and waits for tickets."""

    worker: str
    worker_cpu_s: float


def measure_ticket(ticket: Ticket, due: float, node: str) -> Measurement:
    """A ticket's request, measured as a sequential run measures it, with its load fields."""
    began = time.perf_counter()
    return _with_load_fields(measure_cell(ticket.cell, ticket.cache_mode), ticket, began, due, node)


def _with_load_fields(measurement: Measurement, ticket: Ticket, began: float, due: float, node: str) -> Measurement:
    """The row as a load run stores it: judged as a sequential run's is (answer_ok, json_valid), with its prompt (as
    worker_lost's row has it) and its level (an open loop's: its rate and scheduled start)."""
    prompt = ticket.cell.prompt
    measurement = replace(with_judgement(measurement, prompt), prompt_id=prompt.prompt_id,
                          input_tier=prompt.input_tier, cache_mode=ticket.cache_mode)
    # An open loop's rows say their rate, not a level of requests in flight (`report --by rate`, not concurrency).
    return replace(measurement, concurrency=None if ticket.request_rate is not None else ticket.concurrency,
                   level_started_at=ticket.level_started_at, start_lag_ms=max(0.0, began - due) * 1000, node=node,
                   request_rate=ticket.request_rate, scheduled_at=ticket.scheduled_at)


def measure_ticket_later(ticket: Ticket, due: float, node: str
                         ) -> tuple[Measurement, Callable[[], Measurement] | None]:
    """measure_ticket, with the measurement's untimed last step (counting tokens with the server's tokenizer) left
    for the caller: (the measurement without it, the step that gives the whole one), or (the whole one, None)."""
    began = time.perf_counter()
    with finishing_later() as steps:
        measurement = _with_load_fields(measure_cell(ticket.cell, ticket.cache_mode), ticket, began, due, node)
    if not steps:
        return measurement, None
    finish = steps[-1]
    return measurement, lambda: _with_load_fields(finish(), ticket, began, due, node)


@dataclass(frozen=True)
class Freed:
    """A slot's request is over, its tokens still being counted: the slot takes its next ticket now."""

    worker: str


@dataclass(frozen=True)
class Level:
    """Told to a worker at a level's start: how many of its slots take part, and when the level started."""

    active_slots: int
    started: float


def client_key_of(cell: Cell) -> tuple[object, ...]:
    from ..providers.registry import provider_wire
    from ..providers.client import client_key

    return client_key(provider_wire(cell.provider, cell.settings), cell.settings)
