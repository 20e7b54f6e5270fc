"""--engine ray's watch of the cluster's head, without a cluster: the level's loop stuck inside a call to Ray (as any
call that needs the head is, up to Ray's own 60 s, once the head is gone) must not delay the end of the run."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from benchmarking.benchmark_runner import PROVIDERS, plan
from benchmarking.executors import ray_actors, ray_cluster
from benchmarking.executors.ray_actors import ClusterLost, RayExecutor, _Actor
from benchmarking.executors.ray_cluster import HeadWatch
from benchmarking.executors.tickets import Ticket
from benchmarking.measurement import utc_now
from benchmarking.settings.load import load_settings

from conftest import FAKE_KEY


class StuckRay:
    """Ray as the driver sees it once the head is gone: the chosen call waits until the test ends."""

    class exceptions:
        RayError = type("RayError", (Exception,), {})
        RayTaskError = type("RayTaskError", (RayError,), {})

    def __init__(self, stuck_in: str) -> None:
        self.stuck_in = stuck_in
        self.released = threading.Event()
        self.entered: list[str] = []

    def _call(self, name: str) -> None:
        self.entered.append(name)
        if name == self.stuck_in:
            self.released.wait()

    def wait(self, refs, num_returns=1, timeout=None):
        self._call("wait")
        time.sleep(timeout or 0)
        return [], refs

    def nodes(self):
        self._call("nodes")
        return []


class Handle:
    class measure:
        @staticmethod
        def remote(*_):
            return object()


def closed_port() -> tuple[str, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()


def stuck_executor(ray: StuckRay, lost: bool) -> RayExecutor:
    """An executor of two actors of two slots each whose head's port no longer answers; `lost`: one actor is lost."""
    executor = object.__new__(RayExecutor)
    executor.cells, executor.address, executor._closed, executor._head_lost, executor._workers = [], None, False, False, 2
    executor.cpu_seen, executor._ray, executor._head = {}, ray, HeadWatch(closed_port())
    executor._actors = [_Actor(Handle(), f"ray-{n}", f"node-{n}", f"host/node-{n}", 2, 0.0) for n in range(2)]
    executor._actors[0].lost = lost
    return executor


def tickets(concurrency: int):
    settings = load_settings(prompt="hi", builtin=[(name, model) for name, _, model in PROVIDERS],
                             environ={"OPENAI_API_KEY": FAKE_KEY}, provider_selection="openai")
    cell = plan(settings)[0]
    while True:
        yield Ticket(cell, "off", concurrency, utc_now(), time.perf_counter(), ramp=False)


@pytest.mark.parametrize("stuck_in, lost, in_flight", [("wait", False, 8), ("nodes", True, 0)])
def test_a_level_whose_loop_waits_on_ray_for_a_gone_head_ends_within_the_bound_with_its_lost_rows(
        monkeypatch, stuck_in, lost, in_flight):
    # nodes: a lost actor is started again at the level's start, and listing the nodes waits for the head
    monkeypatch.setattr(ray_cluster, "HEAD_LOST_AFTER_S", 1.0)
    ray = StuckRay(stuck_in)
    executor = stuck_executor(ray, lost)
    rows, ended = [], []

    def level() -> None:
        try:
            rows.extend(done.measurement for done in executor.run_level(tickets(4), 4))
        except ClusterLost as exc:
            ended.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=level, daemon=True)
    thread.start()
    thread.join(10)
    took = time.monotonic() - started
    ray.released.set()
    assert stuck_in in ray.entered
    assert ended and "stopped answering" in str(ended[0]), (took, ray.entered)
    assert took < 1.0 + 3 * ray_cluster.HEAD_CHECK_EVERY_S, took
    assert len(rows) == in_flight and all(r.error_type == "worker_lost" and not r.success for r in rows)
    assert executor._head_lost and ray_actors.HEAD_CHECK_EVERY_S == ray_cluster.HEAD_CHECK_EVERY_S
