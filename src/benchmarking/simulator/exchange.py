"""One HTTP exchange's plumbing, shared by every API's handler: JSON answers and SSE chunks timed on the server's
clock, and the pacing of a model's tokens."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
import json
import re
import socket
import time
from typing import Callable, Iterator

from .profiles import ModelProfile
from .state import RequestRecord, SimulatorState

FLOOD_EVENT_BYTES = 64 * 1024  # the content each event of a flood carries
LONG_LINE_PIECE_BYTES = 1024 * 1024  # a long line leaves in HTTP chunks of this size
# A request body's bounds: its size (Anthropic's own limit; a 200,000-token prompt is about 1 MB), and how long it may
# take to arrive in all, a body that stops short of its Content-Length included.
MAX_BODY_BYTES = 32 * 1024 * 1024
BODY_READ_TIMEOUT_S = 5.0
# What a refused body may still send is read and dropped (up to this much, while it keeps coming), so that the client,
# still writing, reads the refusal rather than a reset connection.
DISCARD_BYTES = 256 * 1024 * 1024
DISCARD_IDLE_S = 0.2
CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")
# Without a prefill rate, the share of a profile's TTFT that a prompt cache does not shorten (see ttft_ms).
FIXED_TTFT_SHARE = 0.5
WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


class BodyRefused(Exception):
    """A request body the simulator will not read or parse: answered with `status` (400, 413) in the API's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Exchange(BaseHTTPRequestHandler):
    """The request handler's plumbing; server.py adds the routes, each API's module the answers."""

    protocol_version = "HTTP/1.1"
    request_id = ""  # the x-request-id this exchange answers with, set as the request arrives
    unread_body = False  # the request's body was refused unread: what is left of it is dropped before closing

    @property
    def simulator(self) -> SimulatorState:
        return self.server.simulator  # type: ignore[attr-defined]  # server.py's server carries it

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm holds each small SSE write until the client ACKs the previous one (up to
        # 40 ms with delayed ACKs), and the bytes leave later than the log says. Real servers set it too.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # the test output stays quiet
        pass

    def send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", self.request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> float:
        """Write one HTTP chunk; returns the time just before the write: a client cannot have it earlier."""
        framed = b"%x\r\n%s\r\n" % (len(data), data)
        sent_at = time.perf_counter()
        self.wfile.write(framed)
        self.wfile.flush()
        return sent_at

    def sse(self, payload: object, event: str | None = None) -> float:
        """One server-sent event (named, for the APIs that name theirs); returns when its bytes left."""
        named = b"event: %s\n" % event.encode() if event else b""
        return self.write_chunk(named + b"data: " + json.dumps(payload).encode() + b"\n\n")

    def start_stream(self, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", self.request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def read_body(self) -> bytes:
        """The request's body, all of its Content-Length, in bounded size and time; else BodyRefused, the connection
        to be closed (where its next request would start is unknown)."""
        lengths = set(self.headers.get_all("Content-Length") or [])
        if self.headers.get("Transfer-Encoding"):
            raise self._refused(400, "a request body must come with a Content-Length, not a Transfer-Encoding")
        if len(lengths) > 1 or (lengths and not CONTENT_LENGTH.fullmatch(next(iter(lengths)).strip())):
            raise self._refused(400, f"Content-Length must be one number of bytes, not {sorted(lengths)}")
        length = int(next(iter(lengths), "0").strip())
        if length > MAX_BODY_BYTES:
            raise self._refused(413, f"request body is {length} bytes, over the limit of {MAX_BODY_BYTES}")
        deadline, pieces, left = time.monotonic() + BODY_READ_TIMEOUT_S, [], length
        try:
            while left:
                self.connection.settimeout(max(0.001, deadline - time.monotonic()))
                piece = self.rfile.read1(min(left, 1024 * 1024))
                if not piece:
                    break
                pieces.append(piece)
                left -= len(piece)
        except TimeoutError:
            pass
        finally:
            self.connection.settimeout(None)
        if left:
            raise self._refused(400, f"request body ended {left} bytes short of its Content-Length ({length})")
        return b"".join(pieces)

    def _refused(self, status: int, message: str) -> BodyRefused:
        self.close_connection = True
        self.unread_body = True
        return BodyRefused(status, message)

    def discard_body(self) -> None:
        """Read and drop what a refused body still sends, in bounded bytes and time, before the connection closes."""
        deadline, dropped = time.monotonic() + BODY_READ_TIMEOUT_S, 0
        try:
            while dropped < DISCARD_BYTES and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(min(DISCARD_IDLE_S, left))
                piece = self.connection.recv(1024 * 1024)
                if not piece:
                    return
                dropped += len(piece)
        except OSError:  # the client went quiet (a timeout) or away
            pass

    def credential(self) -> str | None:
        """The key as the request carried it, in whichever header its API uses."""
        for header in ("Authorization", "x-api-key", "x-goog-api-key"):
            if self.headers.get(header) is not None:
                return self.headers.get(header)
        return None

    def cut(self, record: RequestRecord) -> None:
        """Close the connection mid-stream, as a dropped connection does: no end of stream, no last event."""
        record.last_token_at = time.perf_counter()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def end_stream(self, record: RequestRecord) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def ttft_ms(record: RequestRecord, profile: ModelProfile) -> float:
    """The TTFT the simulator schedules, from the request's arrival, where U is the prompt's uncached tokens (its
    tokens less those read from the prefix cache) and P all of its tokens:

    - with a prefill rate: ttft_ms + U / prefill_tokens_per_s (ttft_ms is the fixed part: queue, first decode step);
    - without one, for a counted prompt: ttft_ms * (FIXED_TTFT_SHARE + (1 - FIXED_TTFT_SHARE) * U / P), ttft_ms being
      the TTFT of a prompt with nothing cached, of which the prefill share shrinks with the cached part;
    - a prompt of a fixed count (the profile's input_tokens) and no rate: ttft_ms, whatever it reports as cached."""
    uncached = record.prompt_tokens - record.cached_tokens
    if profile.prefill_tokens_per_s:
        return profile.ttft_ms + uncached / profile.prefill_tokens_per_s * 1000
    if profile.input_tokens is not None or record.prompt_tokens <= 0:
        return profile.ttft_ms
    return profile.ttft_ms * (FIXED_TTFT_SHARE + (1 - FIXED_TTFT_SHARE) * uncached / record.prompt_tokens)


def paced(record: RequestRecord, profile: ModelProfile, tokens: int) -> Iterator[tuple[int, int]]:
    """(first token, count) of each chunk of an answer, each when its time has come: the first after the TTFT, then
    one every itl_ms. Tokens below the profile's reasoning_tokens are thinking; a chunk never mixes the two."""
    reasoning = min(profile.reasoning_tokens, tokens)
    start = record.received_at + ttft_ms(record, profile) / 1000
    sent, index = 0, 0
    while sent < tokens:
        sleep_until(start + index * profile.itl_ms / 1000)
        count = min(profile.tokens_per_chunk, tokens - sent)
        if sent < reasoning:
            count = min(count, reasoning - sent)
        yield sent, count
        sent, index = sent + count, index + 1


def answer_time(record: RequestRecord, profile: ModelProfile, tokens: int) -> float:
    """When a non-streamed answer is ready: as its last chunk would have been sent."""
    chunks = max(1, -(-tokens // profile.tokens_per_chunk))
    return record.received_at + (ttft_ms(record, profile) + (chunks - 1) * profile.itl_ms) / 1000


def flood(
    http: Exchange, record: RequestRecord, profile: ModelProfile, fault: str, event: Callable[[str], bytes]
) -> None:
    """An enormous answer, generated as it is sent (the simulator never holds it): many events of 64 KiB of text, or
    one event whose data line is `flood_bytes` long. `event(text)` is the API's text event, as bytes."""
    record.first_token_at = record.first_answer_at = time.perf_counter()
    if fault == "flood":
        framed = event("x" * FLOOD_EVENT_BYTES)
        for _ in range(max(1, profile.flood_bytes // FLOOD_EVENT_BYTES)):
            http.write_chunk(framed)
    else:
        head, tail = event("<>").split(b"<>")
        http.write_chunk(head)
        piece = b"x" * LONG_LINE_PIECE_BYTES
        for _ in range(max(1, profile.flood_bytes // LONG_LINE_PIECE_BYTES)):
            http.write_chunk(piece)
        http.write_chunk(tail)
    record.last_token_at = time.perf_counter()


def sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def words(start: int, end: int) -> str:
    """The text of tokens start..end of any answer: one word a token."""
    return "".join(WORDS[i % len(WORDS)] + " " for i in range(start, end))
