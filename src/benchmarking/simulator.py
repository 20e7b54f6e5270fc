"""A local OpenAI-compatible server with known timing, token counts and faults.

It is the target of the tests, of `python main.py --simulate` and of the accuracy benchmark. It answers
`POST .../chat/completions` (streaming with SSE, or not) and `GET .../models` under any prefix. The first path segment
picks a provider's habits, so that each SDK meets the wire format its real provider sends:

- `/v1/...`                   OpenAI: a usage-only chunk at the end, only when `stream_options.include_usage` is set
- `/groq/openai/v1/...`       Groq: `x_groq.usage` on the finishing chunk, plus the usage chunk when asked for
- `/together/v1/...`          Together: usage on the finishing content chunk, always
- `/openrouter/api/v1/...`    OpenRouter: keep-alive comments, and a usage chunk with `cost`, always

Every request is logged with the server's own perf_counter times (same clock as the client, same process), taken
just before each token's bytes are written, so a measurement can be compared with the truth: a client can never see a
token earlier than its logged time.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
import hashlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import itertools
import json
import socket
import sys
import threading
import time
from typing import Any, Iterator

FAULTS = ("auth", "not_found", "rate_limit", "server", "hang", "malformed", "cut", "no_usage", "flood", "long_line")
FLOOD_EVENT_BYTES = 64 * 1024  # the content each event of a flood carries
LONG_LINE_PIECE_BYTES = 1024 * 1024  # a long line leaves in HTTP chunks of this size


@dataclass(frozen=True)
class ModelProfile:
    """How the simulator answers for one model; times in milliseconds from the request's arrival."""

    ttft_ms: float = 50.0
    itl_ms: float = 5.0
    output_tokens: int = 20
    tokens_per_chunk: int = 1
    reasoning_tokens: int = 0
    input_tokens: int | None = None  # None: counted from the prompt, about 4 characters a token
    cached_tokens: int = 0  # reported as cached whatever the prompt (a counted prompt uses the prefix cache instead)
    prefill_tokens_per_s: float | None = None  # None: TTFT does not grow with the prompt
    shutdown_date: str | None = None  # announced in OpenAI's GET /models (`shutdown_date`, YYYY-MM-DD)
    # Requests the model serves at once; more wait their turn (a saturated server), or get 429 if over_capacity_429
    # (a provider's concurrency limit). None: no limit.
    capacity: int | None = None
    over_capacity_429: bool = False
    cache_window_s: float = 300.0  # how long a prompt's prefix stays cached
    fault: str | None = None
    fail_first: int = 0
    retry_after_ms: int = 50
    hang_s: float = 30.0
    cut_after_tokens: int = 3
    cost_usd: Decimal = Decimal("0.000042")
    # fault "flood": an answer of this many bytes of content, in events of 64 KiB, as fast as the socket takes them;
    # fault "long_line": one event whose data line is this long (a client must not hold either whole)
    flood_bytes: int = 300_000_000

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; known: {', '.join(FAULTS)}")
        if not 0 <= self.reasoning_tokens <= self.output_tokens:
            raise ValueError("reasoning_tokens must be between 0 and output_tokens")


# What `python main.py --simulate` serves for the default models: distinct, realistic, and quick.
# Prompts are counted (about 4 characters a token) and prefilled at a rate of the model's own, so TTFT grows with the
# prompt, and a repeated prefix is served from the cache.
DEFAULT_PROFILES: dict[str, ModelProfile] = {
    "gpt-4o-mini": ModelProfile(ttft_ms=180, itl_ms=12, output_tokens=48, prefill_tokens_per_s=20_000,
                                shutdown_date="2027-01-14"),
    "openai/gpt-oss-20b": ModelProfile(
        ttft_ms=60, itl_ms=2, output_tokens=64, tokens_per_chunk=2, reasoning_tokens=16,
        prefill_tokens_per_s=100_000,
    ),
    "openai/gpt-oss-120b": ModelProfile(
        ttft_ms=150, itl_ms=5, output_tokens=64, tokens_per_chunk=2, reasoning_tokens=16,
        prefill_tokens_per_s=50_000,
    ),
    "openai/gpt-4o-mini": ModelProfile(ttft_ms=250, itl_ms=12, output_tokens=48, prefill_tokens_per_s=20_000),
}
DEFAULT_PROFILE = ModelProfile(ttft_ms=100, itl_ms=5, output_tokens=32)

WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")
CHARS_PER_TOKEN = 4
TEMPLATE_TOKENS = 7  # what a chat template adds around the messages
CACHE_BLOCK_TOKENS = 128  # a prompt cache matches prefixes in blocks (OpenAI's: 128 tokens, from 1,024 up)
CACHE_MIN_TOKENS = 1024


def prompt_text(body: dict) -> str:
    """The text of every message, in order (content as text, or as a list of text parts)."""
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


@dataclass
class RequestRecord:
    """What the server did for one request, on the server's own clock (time.perf_counter, seconds)."""

    path: str
    model: str | None
    stream: bool
    received_at: float
    status: int = 200
    first_token_at: float | None = None
    last_token_at: float | None = None
    output_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    chunk_count: int = 0
    client_port: int = 0
    authorization: str | None = None
    body: dict = field(default_factory=dict)
    request_id: str = ""  # the x-request-id it answered with

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_token_at is None else (self.first_token_at - self.received_at) * 1000

    @property
    def latency_ms(self) -> float | None:
        return None if self.last_token_at is None else (self.last_token_at - self.received_at) * 1000


def _flavour(path: str) -> str:
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in ("groq", "together", "openrouter") else "openai"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: "Simulator") -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up (a timeout, a closed stream) is normal here; anything else is a bug worth showing.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm holds each small SSE write until the client ACKs the previous one (up to
        # 40 ms with delayed ACKs), and the bytes leave later than the log says. Real servers set it too.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # the test output stays quiet
        pass

    # ---- plumbing -------------------------------------------------------------------------------------------
    def _send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", self._request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> float:
        """Write one HTTP chunk; returns the time just before the write: a client cannot have it earlier."""
        framed = b"%x\r\n%s\r\n" % (len(data), data)
        sent_at = time.perf_counter()
        self.wfile.write(framed)
        self.wfile.flush()
        return sent_at

    def _sse(self, payload: object) -> float:
        return self._write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    # ---- routes ---------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        sim = self.server.simulator
        self._request_id = sim.next_request_id()
        sim.record(
            RequestRecord(
                path=self.path, model=None, stream=False, received_at=time.perf_counter(),
                client_port=self.client_address[1], authorization=self.headers.get("Authorization"),
            )
        )
        if self.path.rstrip("/").endswith("/models"):
            models = []
            for name, profile in sorted(sim.profiles.items()):
                model: dict[str, object] = {"id": name, "object": "model"}
                if _flavour(self.path) == "openai":  # only OpenAI's list announces shutdowns
                    model["shutdown_date"] = profile.shutdown_date
                models.append(model)
            self._send_json(200, {"object": "list", "data": models})
        else:
            self._send_json(404, {"error": {"message": f"no route for GET {self.path}"}})

    def do_POST(self) -> None:
        sim = self.server.simulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        received_at = time.perf_counter()
        self._request_id = sim.next_request_id()
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route for POST {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        record = RequestRecord(
            request_id=self._request_id,
            path=self.path,
            model=body.get("model"),
            stream=bool(body.get("stream")),
            received_at=received_at,
            client_port=self.client_address[1],
            authorization=self.headers.get("Authorization"),
            body=body,
        )
        sim.record(record)
        profile = sim.profile_for(record.model)
        if profile is None:
            record.status = 404
            self._send_json(404, _error(f"The model `{record.model}` does not exist.", "model_not_found"))
            return
        record.prompt_tokens, record.cached_tokens = sim.count_prompt(record.model, profile, body)
        fault = sim.fault_for(record.model, profile)
        with sim.serving(record.model, profile) as admitted:
            if not admitted:
                fault = "rate_limit"
            if admitted and admitted is not True:  # it waited for a place: its times start now
                record.received_at = admitted
            if fault in ("auth", "not_found", "rate_limit", "server", "hang"):
                self._fail(record, profile, fault)
                return
            if record.stream:
                self._stream(record, profile, body, fault)
            else:
                self._complete(record, profile, body)

    def _fail(self, record: RequestRecord, profile: ModelProfile, fault: str) -> None:
        if fault == "hang":
            self.server.simulator.stopping.wait(profile.hang_s)
            self.close_connection = True
            return
        if fault == "auth":
            # Echo the credential the way careless servers do, so that the client's scrubbing is put to the test.
            record.status = 401
            key = (record.authorization or "").removeprefix("Bearer ")
            self._send_json(401, _error(f"Incorrect API key provided: {key}", "invalid_api_key"))
        elif fault == "not_found":
            record.status = 404
            self._send_json(404, _error(f"The model `{record.model}` does not exist.", "model_not_found"))
        elif fault == "rate_limit":
            record.status = 429
            headers = {"retry-after-ms": str(profile.retry_after_ms), "retry-after": "1"}
            self._send_json(429, _error("Rate limit reached, slow down.", "rate_limit_exceeded"), headers)
        else:
            record.status = 500
            self._send_json(500, _error("The server had an error while processing your request.", "server_error"))

    def _usage(self, record: RequestRecord, profile: ModelProfile, output_tokens: int, body: dict) -> dict:
        prompt_tokens = record.prompt_tokens
        usage: dict[str, object] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": record.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": min(profile.reasoning_tokens, output_tokens)},
        }
        if _flavour(record.path) == "openrouter":
            usage["cost"] = float(profile.cost_usd)
        return usage

    def _ttft_ms(self, record: RequestRecord, profile: ModelProfile) -> float:
        """The profile's TTFT, plus prefilling what the cache did not hold, at the model's rate."""
        if not profile.prefill_tokens_per_s:
            return profile.ttft_ms
        return profile.ttft_ms + (record.prompt_tokens - record.cached_tokens) / profile.prefill_tokens_per_s * 1000

    def _planned_tokens(self, profile: ModelProfile, body: dict) -> tuple[int, str]:
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit is not None and int(limit) < profile.output_tokens:
            return int(limit), "length"
        return profile.output_tokens, "stop"

    def _sleep_until(self, deadline: float) -> None:
        delay = deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    def _complete(self, record: RequestRecord, profile: ModelProfile, body: dict) -> None:
        tokens, finish = self._planned_tokens(profile, body)
        chunks = max(1, -(-tokens // profile.tokens_per_chunk))
        self._sleep_until(record.received_at + (self._ttft_ms(record, profile) + (chunks - 1) * profile.itl_ms) / 1000)
        reasoning = min(profile.reasoning_tokens, tokens)
        message: dict[str, object] = {"role": "assistant", "content": _words(reasoning, tokens)}
        if reasoning:
            message["reasoning"] = _words(0, reasoning)
        payload = {
            "id": f"chatcmpl-{self._request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": record.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self._usage(record, profile, tokens, body),
        }
        record.first_token_at = record.last_token_at = time.perf_counter()  # as the bytes leave
        record.output_tokens = tokens
        self._send_json(200, payload)

    def _stream(self, record: RequestRecord, profile: ModelProfile, body: dict, fault: str | None) -> None:
        flavour = _flavour(record.path)
        tokens, finish = self._planned_tokens(profile, body)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": f"chatcmpl-{self._request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": record.model,
        }

        def chunk(delta: dict, finish_reason: str | None = None, **extra: object) -> dict:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {**base, "choices": [choice], **extra}

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", self._request_id)
        self.end_headers()
        # The role-only chunk comes at once and carries no token: a client that starts TTFT here is wrong.
        self._sse(chunk({"role": "assistant", "content": ""}))
        if flavour == "openrouter":
            self._write_chunk(b": OPENROUTER PROCESSING\n\n")

        if fault in ("flood", "long_line"):
            self._flood(record, profile, chunk, fault)
            return
        reasoning = min(profile.reasoning_tokens, tokens)
        sent = 0
        start = record.received_at + self._ttft_ms(record, profile) / 1000
        for index in itertools.count():
            if sent >= tokens:
                break
            self._sleep_until(start + index * profile.itl_ms / 1000)
            if fault == "malformed" and sent > 0:
                self._write_chunk(b'data: {"id": "broken", "choices": [\n\n')
                self._end_stream(record)
                return
            if fault == "cut" and sent >= profile.cut_after_tokens:
                record.last_token_at = time.perf_counter()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            count = min(profile.tokens_per_chunk, tokens - sent)
            # A chunk never mixes reasoning and answer, as real servers send them.
            if sent < reasoning:
                count = min(count, reasoning - sent)
                delta = {"reasoning": _words(sent, sent + count)}
            else:
                delta = {"content": _words(sent, sent + count)}
            sent += count
            last = sent >= tokens
            extra: dict[str, object] = {}
            if last and fault != "no_usage":
                if flavour == "together":
                    extra["usage"] = self._usage(record, profile, tokens, body)
                elif flavour == "groq":
                    extra["x_groq"] = {"id": base["id"], "usage": self._usage(record, profile, tokens, body)}
            now = self._sse(chunk(delta, finish if last else None, **extra))
            if record.first_token_at is None:
                record.first_token_at = now
            record.last_token_at = now
            record.output_tokens = sent
            record.chunk_count += 1

        wants_usage_chunk = include_usage or flavour == "openrouter"
        if wants_usage_chunk and flavour != "together" and fault != "no_usage":
            self._sse({**base, "choices": [], "usage": self._usage(record, profile, tokens, body)})
        self._write_chunk(b"data: [DONE]\n\n")
        self._end_stream(record)

    def _flood(self, record: RequestRecord, profile: ModelProfile, chunk: Any, fault: str) -> None:
        """An enormous answer, generated as it is sent (the simulator never holds it): many events, or one line."""
        record.first_token_at = time.perf_counter()
        if fault == "flood":
            event = b"data: " + json.dumps(chunk({"content": "x" * FLOOD_EVENT_BYTES})).encode() + b"\n\n"
            for _ in range(max(1, profile.flood_bytes // FLOOD_EVENT_BYTES)):
                self._write_chunk(event)
        else:
            head, tail = json.dumps(chunk({"content": "<>"})).encode().split(b"<>")
            self._write_chunk(b"data: " + head)
            piece = b"x" * LONG_LINE_PIECE_BYTES
            for _ in range(max(1, profile.flood_bytes // LONG_LINE_PIECE_BYTES)):
                self._write_chunk(piece)
            self._write_chunk(tail + b"\n\n")
        record.last_token_at = time.perf_counter()
        self._sse(chunk({}, "stop"))
        self._write_chunk(b"data: [DONE]\n\n")
        self._end_stream(record)

    def _end_stream(self, record: RequestRecord) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _words(start: int, end: int) -> str:
    return "".join(WORDS[i % len(WORDS)] + " " for i in range(start, end))


class Simulator:
    """Run the server on a free loopback port in a background thread: `with Simulator(...) as sim: sim.url`."""

    def __init__(
        self,
        profiles: dict[str, ModelProfile] | None = None,
        default: ModelProfile | None = DEFAULT_PROFILE,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.profiles = dict(DEFAULT_PROFILES if profiles is None else profiles)
        self.default = default
        self.log: list[RequestRecord] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._failures: dict[str | None, int] = {}
        self._prefixes: dict[str, float] = {}  # hash of a model and a prompt prefix -> when it was last seen
        self._places: dict[str | None, threading.BoundedSemaphore] = {}  # per model with a capacity
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="simulator", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, provider: str) -> str:
        """The base URL to give each provider's SDK so that its requests land on its own flavour."""
        suffix = {"openai": "/v1", "groq": "/groq", "together": "/together", "openrouter": "/openrouter/api/v1"}
        return self.url + suffix.get(provider, "/v1")

    def start(self) -> "Simulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_profile(self, model: str, profile: ModelProfile) -> None:
        with self._lock:
            self.profiles[model] = profile
            self._failures.pop(model, None)
            self._places.pop(model, None)

    @contextmanager
    def serving(self, model: str | None, profile: ModelProfile) -> Iterator[bool | float]:
        """A place among the model's `capacity`: True at once, the time it came after a wait, or False (429)."""
        if profile.capacity is None:
            yield True
            return
        with self._lock:
            places = self._places.setdefault(model, threading.BoundedSemaphore(profile.capacity))
        waited = not places.acquire(blocking=False)
        if waited:
            if profile.over_capacity_429:
                yield False
                return
            places.acquire()
        try:
            yield time.perf_counter() if waited else True
        finally:
            places.release()

    def count_prompt(self, model: str | None, profile: ModelProfile, body: dict) -> tuple[int, int]:
        """(prompt tokens, cached tokens): a counted prompt is cached as far as its prefix was seen in the window."""
        if profile.input_tokens is not None:
            return profile.input_tokens, min(profile.cached_tokens, profile.input_tokens)
        text = prompt_text(body)
        tokens = -(-len(text) // CHARS_PER_TOKEN) + TEMPLATE_TOKENS
        block = CACHE_BLOCK_TOKENS * CHARS_PER_TOKEN
        now = time.monotonic()
        digest = hashlib.sha256(str(model).encode())
        cached_blocks, matching = 0, True
        with self._lock:
            for start in range(0, len(text) - block + 1, block):
                digest.update(text[start : start + block].encode())
                key = digest.hexdigest()
                seen = self._prefixes.get(key)
                matching = matching and seen is not None and now - seen <= profile.cache_window_s
                cached_blocks += matching
                self._prefixes[key] = now
        cached = cached_blocks * CACHE_BLOCK_TOKENS
        return tokens, (cached if cached >= CACHE_MIN_TOKENS else 0)

    def next_request_id(self) -> str:
        return f"req_sim_{next(self._ids)}"

    def record(self, record: RequestRecord) -> None:
        with self._lock:
            self.log.append(record)

    def profile_for(self, model: str | None) -> ModelProfile | None:
        with self._lock:
            return self.profiles.get(model or "", self.default)

    def fault_for(self, model: str | None, profile: ModelProfile) -> str | None:
        """The fault to play for this request: always, or only for the first `fail_first` requests."""
        if profile.fault is None or profile.fail_first == 0:
            return profile.fault
        with self._lock:
            done = self._failures.get(model, 0)
            self._failures[model] = done + 1
        return profile.fault if done < profile.fail_first else None

    def request(self, request_id: str) -> RequestRecord | None:
        """The record of the request answered with this x-request-id."""
        with self._lock:
            return next((r for r in reversed(self.log) if r.request_id == request_id), None)

    def requests_for(self, model: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.log if r.model == model]


def main(argv: list[str] | None = None) -> int:
    """Serve the simulator in the foreground, for trying the tool or another client against it."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible simulator with known timing.")
    parser.add_argument("--port", type=int, default=8000, help="loopback port to listen on (default 8000)")
    parser.add_argument("--ttft-ms", type=float, help="TTFT for models not in the built-in table")
    parser.add_argument("--capacity", type=int, metavar="N",
                        help="serve at most N requests at once for models not in the table; more wait their turn "
                             "(a saturated server)")
    parser.add_argument("--over-capacity-429", action="store_true",
                        help="with --capacity: refuse requests over it with 429 (a provider's concurrency limit)")
    args = parser.parse_args(argv)
    if args.capacity is not None and args.capacity < 1:
        parser.error("--capacity takes a number of requests, 1 or more")
    if args.over_capacity_429 and args.capacity is None:
        parser.error("--over-capacity-429 needs --capacity N")
    default = replace(DEFAULT_PROFILE, ttft_ms=DEFAULT_PROFILE.ttft_ms if args.ttft_ms is None else args.ttft_ms,
                      capacity=args.capacity, over_capacity_429=args.over_capacity_429)
    sim = Simulator(default=default, port=args.port)
    print(f"simulator listening on {sim.url} (OpenAI base URL: {sim.base_url('openai')}); Ctrl-C stops it")
    try:
        sim._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim._server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
