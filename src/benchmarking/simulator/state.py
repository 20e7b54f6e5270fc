"""What the simulated models share across requests, whatever the API: profiles in use, the request log, prompt caches,
capacity and the faults already played."""

from __future__ import annotations

from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
import hashlib
import itertools
import re
import threading
import time
from typing import Iterator

from .profiles import DEFAULT_PROFILE, DEFAULT_PROFILES, ModelProfile

# A token is a word or a punctuation mark, as the BPE vocabularies mostly split English prose, and as workloads.py sizes
# its tiers (a 1,000-token tier reads about 1,000 tokens here, as it does at OpenAI).
TOKEN = re.compile(r"\w+|[^\w\s]")
TEMPLATE_TOKENS = 7  # what a chat template adds around the messages
CACHE_BLOCK_TOKENS = 128  # a prompt cache matches prefixes in blocks (OpenAI's: 128 tokens, from 1,024 up)
CACHE_MIN_TOKENS = 1024
# What the simulator holds however long it serves. The newest records (accuracy.py reads a level's 512 by request id;
# tests, a few), the request bodies of the newest of them (the bytes as sent, in all; the newest's always), and the
# prompt cache's blocks (12.8M tokens' worth), the least recently seen dropped first, the expired at each sweep.
LOG_RECORDS = 10_000
BODY_BYTES = 16 * 1024 * 1024
MAX_PREFIXES = 100_000
PREFIX_SWEEP_S = 1.0


@dataclass
class RequestRecord:
    """What the server did for one request, on the server's own clock (time.perf_counter, seconds)."""

    path: str
    model: str | None
    stream: bool
    received_at: float
    status: int = 200
    first_token_at: float | None = None  # the first output event, thinking or answer
    first_answer_at: float | None = None  # the first event of the answer itself (not thinking)
    last_token_at: float | None = None
    output_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    chunk_count: int = 0
    client_port: int = 0
    authorization: str | None = None  # the key's header as it came: Authorization, x-api-key or x-goog-api-key
    api: str = "chat_completions"  # which API the request spoke
    body: dict | None = field(default_factory=dict)  # None once dropped: only the newest keep theirs (BODY_BYTES)
    request_id: str = ""  # the x-request-id it answered with
    # What the request asked (calls.Asked): its conversation's entries as sent (messages, contents or input items, the
    # system apart), the function tools offered, whether a JSON Schema came; and the tool the answer called.
    entries: int = 0
    tools: int = 0
    schema: bool = False
    tool_call: str | None = None
    cacheable_tokens: int | None = None  # the prompt's tokens through its cache breakpoint (Anthropic's); None: all
    planned_ttft_ms: float | None = None  # the TTFT the simulator scheduled (exchange.ttft_ms), from received_at

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_token_at is None else (self.first_token_at - self.received_at) * 1000

    @property
    def answer_ttft_ms(self) -> float | None:
        return None if self.first_answer_at is None else (self.first_answer_at - self.received_at) * 1000

    @property
    def latency_ms(self) -> float | None:
        return None if self.last_token_at is None else (self.last_token_at - self.received_at) * 1000


    def sent(self, at: float, output_tokens: int, thinking: bool) -> None:
        """An output event left at `at` (perf_counter), bringing the answer to `output_tokens` tokens."""
        self.first_token_at = self.first_token_at or at
        if not thinking:
            self.first_answer_at = self.first_answer_at or at
        self.last_token_at = at
        self.output_tokens = output_tokens
        self.chunk_count += 1


class SimulatorState:
    """The models' side of the simulator, shared by the handlers of every API; thread-safe."""

    def __init__(
        self,
        profiles: dict[str, ModelProfile] | None = None,
        default: ModelProfile | None = DEFAULT_PROFILE,
    ) -> None:
        self.profiles = dict(DEFAULT_PROFILES if profiles is None else profiles)
        self.default = default
        self._log: deque[RequestRecord] = deque(maxlen=LOG_RECORDS)
        self._bodies: deque[tuple[RequestRecord, int]] = deque()  # the records still holding a body, and its size
        self._body_bytes = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._failures: dict[str | None, int] = {}
        # hash of a model and a prompt prefix -> until when it stays cached, the least recently seen first
        self._prefixes: OrderedDict[bytes, float] = OrderedDict()
        self._next_sweep = 0.0
        self._places: dict[str | None, threading.BoundedSemaphore] = {}  # per model with a capacity

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

    def count_prompt(
        self, model: str | None, profile: ModelProfile, text: str, cacheable: str | None = None
    ) -> tuple[int, int, int | None]:
        """(prompt tokens, cached tokens, cacheable tokens): a counted prompt is cached as far as its prefix was seen
        in the window, in whole blocks of CACHE_BLOCK_TOKENS from the start, and only if that is CACHE_MIN_TOKENS or
        more.

        `text` is the prompt as the request's API spells it out (each handler knows where its API keeps it, in the
        order sent). `cacheable` is its part up to the request's cache breakpoint, for an API that caches only there
        (Anthropic's cache_control; "" when the request has none): only its blocks are read or written. None: the API
        caches any prefix by itself (OpenAI's, Gemini's implicit caching)."""
        if profile.input_tokens is not None:
            return profile.input_tokens, min(profile.cached_tokens, profile.input_tokens), None
        tokens = TOKEN.findall(text)
        limit = len(tokens) if cacheable is None else min(len(tokens), len(TOKEN.findall(cacheable)))
        now = time.monotonic()
        digest = hashlib.sha256(str(model).encode())
        cached_blocks, matching = 0, True
        with self._lock:
            for start in range(0, limit - CACHE_BLOCK_TOKENS + 1, CACHE_BLOCK_TOKENS):
                digest.update("\0".join(tokens[start : start + CACHE_BLOCK_TOKENS]).encode())
                key = digest.digest()
                cached_until = self._prefixes.pop(key, None)
                matching = matching and cached_until is not None and now <= cached_until
                cached_blocks += matching
                self._prefixes[key] = now + profile.cache_window_s
            self._forget_prefixes(now)
        cached = cached_blocks * CACHE_BLOCK_TOKENS
        return (len(tokens) + TEMPLATE_TOKENS, (cached if cached >= CACHE_MIN_TOKENS else 0),
                None if cacheable is None else limit)

    def _forget_prefixes(self, now: float) -> None:
        """Drop the expired blocks (a sweep, at most every PREFIX_SWEEP_S: models' windows differ, so expired blocks
        are anywhere in the order), then the least recently seen past MAX_PREFIXES."""
        if now >= self._next_sweep:
            self._prefixes = OrderedDict((key, until) for key, until in self._prefixes.items() if until >= now)
            self._next_sweep = now + PREFIX_SWEEP_S
        while len(self._prefixes) > MAX_PREFIXES:
            self._prefixes.popitem(last=False)

    def next_request_id(self) -> str:
        return f"req_sim_{next(self._ids)}"

    @property
    def log(self) -> list[RequestRecord]:
        """The newest LOG_RECORDS requests' records, oldest first."""
        with self._lock:
            return list(self._log)

    def record(self, record: RequestRecord, body_bytes: int = 0) -> None:
        """Log a request; its body (`body_bytes` as sent) is kept while it is among the newest BODY_BYTES' worth."""
        with self._lock:
            self._log.append(record)
            if not body_bytes:
                return
            self._bodies.append((record, body_bytes))
            self._body_bytes += body_bytes
            while len(self._bodies) > 1 and (self._body_bytes > BODY_BYTES or len(self._bodies) > LOG_RECORDS):
                old, size = self._bodies.popleft()
                old.body = None
                self._body_bytes -= size

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
            return next((r for r in reversed(self._log) if r.request_id == request_id), None)

    def requests_for(self, model: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._log if r.model == model]
