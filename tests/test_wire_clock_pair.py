"""The kernel's receive stamps (wall clock) are brought onto perf_counter's clock by the two clocks' offset, read as
a pair: a thread that lost the interpreter lock between the two reads (a load worker with hundreds of slot threads,
on a loaded machine, waited seconds) must not shift every stamp by that wait. Seen for real: 34 s streams stored
with latencies of 4 s, and one below zero."""

from __future__ import annotations

import select
import socket
import struct
import time

import pytest

from benchmarking.providers import wire
from benchmarking.providers.timed import TimedSection

OFFSET = 900.0  # the fake machine's wall clock minus its perf_counter


class StallingClocks:
    """perf_counter and time as a thread sees them: `stall_s` passes between the first perf_counter read and the
    wall clock read after it (the thread waited for the lock there), then the clocks run on without a stall."""

    def __init__(self, start: float, stall_s: float) -> None:
        self.now, self.stall_s, self.reads = start, stall_s, 0

    def perf_counter(self) -> float:
        self.reads += 1
        self.now += 1e-7
        return self.now

    def time(self) -> float:
        if self.stall_s:
            self.now += self.stall_s
            self.stall_s = 0.0
        self.now += 1e-7
        return self.now + OFFSET


def stamp(perf_at: float) -> list[tuple[int, int, bytes]]:
    wall = perf_at + OFFSET
    seconds = int(wall)
    return [(socket.SOL_SOCKET, wire.SO_TIMESTAMPNS, struct.pack("@qq", seconds, round((wall - seconds) * 1e9)))]


def test_a_stall_between_the_two_clock_reads_does_not_move_the_arrival(monkeypatch):
    clocks = StallingClocks(start=100.0, stall_s=5.0)
    monkeypatch.setattr(wire, "time", clocks)
    arrived = wire._arrival(stamp(99.5))  # the bytes came half a second before the read
    assert abs(arrived - 99.5) < 1e-3  # before the fix: 94.5, the stall's 5 s early


def test_the_tightest_pair_is_kept_when_every_pair_is_interrupted(monkeypatch):
    clocks = StallingClocks(start=100.0, stall_s=0.0)
    pairs = iter([3.0, 0.5, 2.0] + [1.0] * wire.CLOCK_PAIR_TRIES)  # every pair read across a stall
    original_time = clocks.time

    def stalled_time() -> float:
        clocks.now += next(pairs)
        return original_time()

    clocks.time = stalled_time  # type: ignore[method-assign]
    monkeypatch.setattr(wire, "time", clocks)
    offset, _ = wire.wall_minus_perf()
    # Each pair is off by half its stall at most (the wall read sits somewhere inside its bracket): the 0.5 s one.
    assert abs(offset - OFFSET) <= 0.25 + 1e-3
    assert clocks.reads == 2 * wire.CLOCK_PAIR_TRIES  # it kept trying for a tight pair, and then gave up


def test_a_quiet_thread_reads_the_pair_once(monkeypatch):
    clocks = StallingClocks(start=100.0, stall_s=0.0)
    monkeypatch.setattr(wire, "time", clocks)
    assert abs(wire._arrival(stamp(99.9)) - 99.9) < 1e-3
    assert clocks.reads == 2


def test_a_stamp_from_the_future_is_never_later_than_the_read():
    # A stamp ahead of the read (a clock step) is held to the read's time: bytes never arrive after they were read.
    arrived = wire._arrival(stamp(wire.time.perf_counter() + 60.0))
    assert arrived <= wire.time.perf_counter()


@pytest.mark.parametrize("load_worker", [False, True], ids=["reader thread", "slot reads"])
def test_bytes_that_arrived_before_the_deadline_are_read_after_it(monkeypatch, load_worker):
    """A slot that comes to its socket after the deadline (it waited for the interpreter lock) still reads what had
    arrived in time: a 34 s stream under a 60 s timeout was stored as a timeout when its last bytes were read late.
    What arrives after the deadline is a timeout, as before."""
    import httpcore

    monkeypatch.setattr(TimedSection, "load_worker", load_worker)
    clock = wire.WireClock()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        stream = wire._stamped_backend(httpcore, clock).connect_tcp("127.0.0.1", listener.getsockname()[1])
        server, _ = listener.accept()
        with server:
            clock.arm(60.0)
            record = clock.start()
            assert record is not None
            server.sendall(b"in time")
            assert _arrived(stream)
            record.deadline = time.perf_counter()  # the deadline passes after the bytes came, before they are read
            assert stream.read(64) == b"in time"
            server.sendall(b"too late")
            assert _arrived(stream)
            with pytest.raises(httpcore.ReadTimeout):
                stream.read(64)
        stream.close()


def _arrived(stream) -> bool:
    """Until the peer's bytes are readable on the stream's socket (slot reads), or its reader thread holds them."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if TimedSection.load_worker:
            if select.select([stream.get_extra_info("socket")], [], [], 0.05)[0]:
                return True
        elif not stream._pieces.empty():
            return True
        else:
            time.sleep(0.005)
    return False
