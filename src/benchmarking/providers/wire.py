"""The wire under the SDK: when the timed request left, and when each byte of its answer arrived.

The time a piece of the answer arrived is the kernel's own receive time stamp of its packets (SO_TIMESTAMPNS, read
with recvmsg), taken by a network stream under the SDK's HTTP library. An SDK parses every chunk into objects, and
when hundreds of events arrive back to back it falls tens of milliseconds behind the wire; a clock read when the SDK
asks for the next bytes would fall behind with it, the kernel's does not. TLS is done over memory buffers on that same
socket, so https is stamped the same way. Where the kernel gives no stamp, the time the bytes were read is used.

What the bytes meant (which server-sent event carried the first token, the last, an error) is worked out after the
request, from the recorded bytes, so nothing in the timed path depends on how an SDK splits, skips or parses events.
An answer larger than HOLD_BYTES is read in turns while it comes instead, so that memory stays bounded by what is
kept of it; its times are still the kernel's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import queue
import socket
import ssl
import struct
import threading
import time
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping, Sequence

from .json_text import json_object  # noqa: F401  (it was here: still importable from here)
from .timed import TimedSection

# Linux's value, where the socket module does not name it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
READ_BYTES = 64 * 1024
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
# Reads the reader thread holds for the SDK at most (16 MiB): when an SDK falls this far behind an enormous answer,
# the reader waits for it, rather than hold the whole answer in memory.
BACKLOG_READS = 256
BACKLOG_WAIT_S = 0.001
IDLE_WAIT_S = 60.0
# The body held unread during a timed request: an answer up to this size is read after the request, as a whole; a
# larger one is read in turns of this size as it comes (the times are the kernel's either way).
HOLD_BYTES = 8 * 1024 * 1024
# A body that is read whole (an error's, a model list, a tokenizer's count) is cut after this many bytes.
WHOLE_BODY_BYTES = HOLD_BYTES
# The wall clock and perf_counter are read as a pair at most this far apart (a few reads are ~0.1 us each), tried
# again up to CLOCK_PAIR_TRIES times where a thread switch came between them (the tightest pair is kept).
CLOCK_PAIR_SPREAD_S = 20e-6
CLOCK_PAIR_TRIES = 8


class DeadlineExceeded(Exception):
    """The whole request took longer than its timeout, although bytes (keep-alive comments, say) kept coming."""


@dataclass
class WireRecord:
    """The timed request as the wire saw it; times are time.perf_counter() seconds.

    The body's pieces are held as they come, and read (and dropped) by `digest` after the request, or during it once
    more than HOLD_BYTES are held: an answer costs the memory of what is kept of it, not of what was sent.
    """

    sent_at: float
    deadline: float
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    pieces: list[bytes] = field(default_factory=list)  # the body as it came, not read yet
    arrived: list[float] = field(default_factory=list)  # when each piece's last packet arrived
    held_bytes: int = 0  # in pieces
    last_byte_at: float | None = None
    digest: Callable[["WireRecord"], None] | None = None  # reads the held pieces and clears them
    restarts: int = 0  # bodies dropped for a later one (a redirect's): a digest starts again when it changes

    def take(self) -> tuple[list[bytes], list[float]]:
        """The held pieces and their times, no longer held."""
        pieces, arrived = self.pieces, self.arrived
        self.pieces, self.arrived, self.held_bytes = [], [], 0
        return pieces, arrived

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class WireClock:
    """Shared by a client's transport and network streams: records the one request it is armed for."""

    def __init__(self) -> None:
        self.canned: bytes | None = None  # set during a rehearsal: the SDK's code path runs, nothing leaves
        self.record: WireRecord | None = None
        self.last_read_at = 0.0  # when the packets of the latest network read arrived
        self._armed_timeout_s: float | None = None
        self._digest: Callable[[WireRecord], None] | None = None
        self._recording = False
        self._redirected = False
        # A request that is not recorded (a warm-up, a model list, a tokenizer's count) is bounded too: in all, by
        # its own timeout, from when it leaves; per thread, since counts may run on several threads at once.
        self._untimed = threading.local()

    def arm(self, timeout_s: float, digest: Callable[[WireRecord], None] | None = None) -> None:
        """Record the next request, and give it `timeout_s` in all; `digest` reads its body as it is held."""
        self.record = None
        self._armed_timeout_s = timeout_s
        self._digest = digest

    def disarm(self) -> None:
        """The recorded request is over: later requests (a warm-up, a tokenizer call) are not recorded or bound."""
        self._armed_timeout_s = None
        self._recording = self._redirected = False

    @property
    def deadline(self) -> float | None:
        """When the request being made must be over: the recorded one's deadline, else the untimed one's."""
        if self._recording and self.record is not None:
            return self.record.deadline
        return getattr(self._untimed, "deadline", None)

    def bound_untimed(self, timeout_s: float | None) -> None:
        """An untimed request leaves on this thread: it, body included, must be over within timeout_s (None: as its
        reads allow). Without it, a server trickling a byte a second held a warm-up or a count for minutes."""
        self._untimed.deadline = None if timeout_s is None else time.perf_counter() + timeout_s

    def start(self) -> WireRecord | None:
        """Called as a request leaves: the record to fill if this is the armed request (or where it was redirected
        to: the clock keeps running from the first send, as the user waits), else None."""
        if self._redirected and self.record is not None:
            self._redirected = False
            self.record.take()
            self.record.last_byte_at = None
            self.record.restarts += 1
            return self.record
        if self._armed_timeout_s is None:
            return None
        now = time.perf_counter()
        self.record = WireRecord(sent_at=now, deadline=now + self._armed_timeout_s, digest=self._digest)
        self._armed_timeout_s = None
        self._recording = True
        return self.record

    def answered(self, record: WireRecord, status: int, headers: Mapping[str, str]) -> None:
        record.status, record.headers = status, headers
        self._redirected = 300 <= status < 400 and "location" in headers


def wall_minus_perf() -> tuple[float, float]:
    """time.time() minus time.perf_counter() now, and perf_counter's reading then.

    The wall clock is read between two perf_counter readings, and again where they lie far apart: a thread can lose
    the interpreter lock (or the CPU) between any two clock reads, and on a loaded load worker (hundreds of slot
    threads) it waited seconds for it. A pair read across such a wait put every stamp that many seconds early: rows
    of 34 s streams stored latencies of 4 s, and one below zero."""
    best_spread, offset, read_at = math.inf, 0.0, 0.0
    for _ in range(CLOCK_PAIR_TRIES):
        before = time.perf_counter()
        wall = time.time()
        after = time.perf_counter()
        if after - before < best_spread:
            best_spread, offset, read_at = after - before, wall - (before + after) / 2, after
        if best_spread <= CLOCK_PAIR_SPREAD_S:
            break
    return offset, read_at


def _arrival(ancillary: Sequence[tuple[int, int, bytes]]) -> float:
    """When a read's bytes arrived (perf_counter): the kernel's stamp, else now."""
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            # The kernel stamps in wall-clock time; onto perf_counter's clock by their offset now.
            offset, read_at = wall_minus_perf()
            return min(read_at, seconds + nanoseconds / 1e9 - offset)
    return time.perf_counter()


def _stamped_backend(httpcore: ModuleType, clock: WireClock) -> Any:
    """An httpcore (or httpcore2) network backend whose streams note the kernel's arrival time of what they read."""

    def mapped(exc: BaseException, timeout_class: type, error_class: type) -> BaseException:
        if isinstance(exc, (socket.timeout, DeadlineExceeded)):
            return timeout_class(str(exc) or "timed out")
        return error_class(str(exc))

    class StampedStream(httpcore.NetworkStream):
        """A TCP socket drained by a reader thread of its own, which notes the kernel's receive time stamp of each
        read; TLS, if any, over memory buffers on top of it.

        The reader keeps the connection's receive window open however slowly the SDK parses: if the SDK's reading
        paced the socket, a burst larger than the window would wait in the server's buffers, and arrive late because
        of the client, not the provider.
        """

        def __init__(self, sock: socket.socket) -> None:
            self._sock = sock
            self._tls: ssl.SSLObject | None = None
            self._incoming = ssl.MemoryBIO()
            self._outgoing = ssl.MemoryBIO()
            self._pieces: queue.SimpleQueue[Any] = queue.SimpleQueue()
            self._closed = False
            self._left = b""  # the part of a piece a read with a smaller max_bytes did not take
            self._eof = False
            # A receive buffer that holds a whole burst: the server is never held back while the reader waits for the
            # processor (the kernel caps it at net.core.rmem_max).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                stamped = True
            except OSError:  # not Linux: the read time stands in for the arrival time
                stamped = False
            self._stamped, self._in_caller = stamped, TimedSection.load_worker
            if not self._in_caller:  # the reader has a socket object of its own: a socket's timeout is per object
                threading.Thread(target=self._drain, args=(sock.dup(), stamped), name="wire-reader",
                                 daemon=True).start()

        def _drain(self, sock: socket.socket, stamped: bool) -> None:
            pieces = self._pieces

            def put(item: Any) -> None:
                # The SDK's side stays a plain SimpleQueue.get: only the reader, far ahead, polls for room.
                wait = BACKLOG_WAIT_S
                while pieces.qsize() >= BACKLOG_READS and not self._closed:
                    time.sleep(wait)
                    wait = min(wait * 2, 0.05)  # an SDK that stopped reading is not polled a thousand times a second
                pieces.put(item)

            try:
                # Not blocking mode: the copy shares the connection's file flags, and the other side keeps a timeout
                # (non-blocking underneath). A wait with a timeout works either way.
                sock.settimeout(IDLE_WAIT_S)
                while True:
                    try:
                        data, ancillary, _, _ = sock.recvmsg(READ_BYTES, 64) if stamped else (
                            sock.recv(READ_BYTES), (), 0, None)
                    except socket.timeout:
                        continue  # an idle connection in the pool: keep waiting
                    put((data, _arrival(ancillary)))
                    if not data:
                        return
            except OSError as exc:
                put(exc)
            finally:
                sock.close()

        def _recv(self, timeout: float | None) -> bytes:
            if self._left:
                data, self._left = self._left, b""
                return data
            if self._eof:
                return b""
            deadline = clock.deadline
            if deadline is not None:
                # Past the deadline, what had arrived by it is still read (without waiting): a slot thread that
                # came to its socket late (it waited for the interpreter lock on a loaded worker) must not turn an
                # answer that came in time into a timeout. The bytes' arrival, not their reading, meets the deadline.
                left = max(0.0, deadline - time.perf_counter())
                timeout = left if timeout is None else min(timeout, left)
            try:
                item = self._read_now(timeout) if self._in_caller else self._pieces.get(timeout=timeout)
            except queue.Empty:
                raise (DeadlineExceeded if deadline is not None and time.perf_counter() >= deadline
                       else socket.timeout)("timed out") from None
            if isinstance(item, BaseException):
                raise item
            data, arrived_at = item
            if deadline is not None and data and arrived_at > deadline:
                raise DeadlineExceeded("no complete answer within the timeout")
            clock.last_read_at = arrived_at
            self._eof = not data
            return data

        def _read_now(self, timeout: float | None) -> Any:
            """A load worker's read, on the slot's own thread: no reader thread to hand each piece over (the
            kernel's stamps still date it; the receive buffer holds what comes meanwhile)."""
            self._sock.settimeout(timeout)
            try:
                data, ancillary, _, _ = self._sock.recvmsg(READ_BYTES, 64) if self._stamped else (
                    self._sock.recv(READ_BYTES), (), 0, None)
            except (socket.timeout, BlockingIOError):  # BlockingIOError: nothing waiting, at a timeout of 0
                raise queue.Empty from None
            except OSError as exc:
                return exc
            return data, _arrival(ancillary)

        def _send(self, data: bytes, timeout: float | None) -> None:
            while data:
                self._sock.settimeout(timeout)
                sent = self._sock.send(data)
                data = data[sent:]

        def _tls_step(self, operation: Any, timeout: float | None) -> Any:
            """Run one SSLObject operation to completion, moving bytes between the socket and the buffers."""
            while True:
                try:
                    result = operation()
                except ssl.SSLWantReadError:
                    self._send(self._outgoing.read(), timeout)
                    data = self._recv(timeout)
                    if data:
                        self._incoming.write(data)
                    else:
                        self._incoming.write_eof()
                    continue
                self._send(self._outgoing.read(), timeout)
                return result

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            try:
                if self._tls is None:
                    data = self._recv(timeout)
                    data, self._left = data[:max_bytes], data[max_bytes:]
                    return data
                tls = self._tls
                try:
                    return self._tls_step(lambda: tls.read(max_bytes), timeout)
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""
            except (OSError, DeadlineExceeded) as exc:
                raise mapped(exc, httpcore.ReadTimeout, httpcore.ReadError) from exc

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            if not buffer:
                return
            try:
                if self._tls is None:
                    self._send(buffer, timeout)
                else:
                    tls = self._tls
                    self._tls_step(lambda: tls.write(buffer), timeout)
            except (OSError, DeadlineExceeded) as exc:
                raise mapped(exc, httpcore.WriteTimeout, httpcore.WriteError) from exc

        def close(self) -> None:
            self._closed = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader, whose socket is a copy of this one
            except OSError:
                pass
            self._sock.close()

        def start_tls(
            self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
        ) -> "StampedStream":
            try:
                self._tls = ssl_context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
                self._tls_step(self._tls.do_handshake, timeout)
            except (OSError, DeadlineExceeded) as exc:
                self.close()
                raise mapped(exc, httpcore.ConnectTimeout, httpcore.ConnectError) from exc
            return self

        def get_extra_info(self, info: str) -> Any:
            if info == "ssl_object":
                return self._tls
            if info == "client_addr":
                return self._sock.getsockname()
            if info == "server_addr":
                return self._sock.getpeername()
            if info == "socket":
                return self._sock
            if info == "is_readable":  # asked of an idle pooled connection: has the server closed it?
                return bool(self._left) or self._eof or not self._pieces.empty()
            return None

    class StampedBackend(httpcore.SyncBackend):
        def connect_tcp(self, *args: Any, **kwargs: Any) -> Any:
            plain = super().connect_tcp(*args, **kwargs)
            return StampedStream(plain.get_extra_info("socket"))

    return StampedBackend()


def timing_transport(httpx: ModuleType, httpcore: ModuleType, clock: WireClock, proxy: str | None,
                     query: Sequence[tuple[str, str]] = ()) -> Any:
    """An httpx (or httpx2) transport that records the armed request on `clock`, around the library's own transport.

    The proxy is given here rather than left to the client's environment handling: the client would route proxied
    requests around this transport, and their times would go unread. `query` (a base URL's, Azure's ?api-version=)
    is added to every request's own query, never in place of it (Gemini's ?alt=sse), keys the request has winning.
    """

    class TimedStream(httpx.SyncByteStream):
        """A response's body as it comes: recorded if it is the timed answer, and cut at `cap` bytes if given."""

        def __init__(self, inner: Any, record: WireRecord | None, cap: int | None) -> None:
            self._inner = inner
            self._record = record
            self._cap = cap

        def __iter__(self) -> Iterator[bytes]:
            record, cap, received = self._record, self._cap, 0
            for data in self._inner:
                if record is not None:
                    record.pieces.append(data)
                    record.arrived.append(clock.last_read_at)
                    record.last_byte_at = clock.last_read_at
                    record.held_bytes += len(data)
                    if record.held_bytes > HOLD_BYTES and record.digest is not None:
                        record.digest(record)
                yield data
                received += len(data)
                if cap is not None and received >= cap:
                    return

        def close(self) -> None:
            self._inner.close()

    class TimedTransport(httpx.BaseTransport):
        def __init__(self) -> None:
            self._inner = httpx.HTTPTransport(proxy=proxy)
            # httpx builds its connection pool itself and names no way to choose its network backend.
            pool = self._inner._pool
            if not hasattr(pool, "_network_backend"):
                raise RuntimeError(f"{httpcore.__name__} changed: its pool has no _network_backend to time")
            pool._network_backend = _stamped_backend(httpcore, clock)

        def handle_request(self, request: Any) -> Any:
            if clock.canned is not None:
                headers = {"content-type": "text/event-stream"}
                return httpx.Response(200, headers=headers, content=clock.canned, request=request)
            added = [(key, value) for key, value in query if key not in request.url.params]
            if added:
                request.url = request.url.copy_merge_params(added)
            record = clock.start()
            if record is None:
                timeouts = request.extensions.get("timeout") or {}
                clock.bound_untimed(timeouts.get("read"))
            response = self._inner.handle_request(request)
            if record is not None:
                clock.answered(record, response.status_code, response.headers)
            # Read whole by the SDK or by us: an error's body, a model list, a tokenizer's count. Only the timed
            # answer is read as it comes, and may be longer.
            read_whole = record is None or response.status_code >= 400
            response.stream = TimedStream(response.stream, record, WHOLE_BODY_BYTES if read_whole else None)
            return response

        def close(self) -> None:
            self._inner.close()

    return TimedTransport()
