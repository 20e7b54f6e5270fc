"""One HTTP exchange's plumbing, shared by every API's handler: JSON answers and SSE chunks timed on the server's
clock, and the pacing of a model's tokens."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
import json
import socket
import time

from .profiles import ModelProfile
from .state import RequestRecord, SimulatorState

WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


class Exchange(BaseHTTPRequestHandler):
    """The request handler's plumbing; server.py adds the routes, each API's module the answers."""

    protocol_version = "HTTP/1.1"
    request_id = ""  # the x-request-id this exchange answers with, set as the request arrives

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

    def sse(self, payload: object) -> float:
        return self.write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def end_stream(self, record: RequestRecord) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def ttft_ms(record: RequestRecord, profile: ModelProfile) -> float:
    """The profile's TTFT, plus prefilling what the cache did not hold, at the model's rate."""
    if not profile.prefill_tokens_per_s:
        return profile.ttft_ms
    return profile.ttft_ms + (record.prompt_tokens - record.cached_tokens) / profile.prefill_tokens_per_s * 1000


def sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def words(start: int, end: int) -> str:
    """The text of tokens start..end of any answer: one word a token."""
    return "".join(WORDS[i % len(WORDS)] + " " for i in range(start, end))
