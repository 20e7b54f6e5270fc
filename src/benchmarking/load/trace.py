"""A trace replayed (--trace FILE): each of its requests starts at its own time (open loop), with its own prompt.

A trace is JSONL, one request a line: `timestamp` (ms from any origin, never decreasing) and either `input_length`
and `output_length` (tokens; a synthetic prompt of that size, max_tokens = output_length) or `messages`. The public
Mooncake trace's `hash_ids` are taken: a request's prompt is its blocks one after another, each block the same text
for the same hash id (workloads.block_text, TRACE_BLOCK_TOKENS tokens as in Mooncake's release), so requests with
equal leading hash ids share exactly that prefix and a provider's prefix cache behaves as in the trace. A prompt's
last block is cut to its input_length; tokens past its blocks come from a block of the request's own.

Everything is bounded before anything is sent: the file's bytes and lines, each number, the hash ids of a line and
of the whole trace, the trace's span after --time-scale. Prompts are built when a slot takes their ticket (a level's
tickets are drawn one by one, the workers keeping two a slot), from blocks built once and kept in a bounded cache.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
import json
import math
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..errors import ConfigError
from ..executors.tickets import Ticket
from ..providers.cells import Cell
from ..textfile import json_line, read_bounded, shown, utf8_text
from ..workloads import (
    MAX_TIER_TOKENS, TOKENS_PER_WORD, TRACE_BLOCK_TOKENS, Prompt, block_text, prompt_id_for, tier_prompt,
)
from .arrivals import MAX_RATE
from .open import START_LEAD_S

MAX_TRACE_BYTES = 64_000_000  # Mooncake's public trace (23,608 requests) is a few MB
MAX_TRACE_REQUESTS = 100_000
MAX_TRACE_HASH_IDS = 5_000_000  # over the whole trace: 8 bytes each, kept in arrays
MAX_HASH_ID = 2**63 - 1
MAX_OUTPUT_LENGTH = MAX_TIER_TOKENS
MAX_TRACE_SPAN_S = 7 * 86_400.0  # after --time-scale: a replay ends within a week
MAX_TIMESTAMP_MS = 1e13  # milliseconds from any origin: the Unix epoch's included (until the year 2286)
MIN_TIME_SCALE, MAX_TIME_SCALE = 0.001, 1000.0
BLOCK_CACHE = 4096  # blocks kept built (about 3 kB each): a hot prefix is built once
KEYS = {"timestamp", "input_length", "output_length", "hash_ids", "messages"}
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class TraceRequest:
    line: int
    offset_ms: float  # from the trace's first request, before --time-scale
    input_length: int | None
    output_length: int | None
    hash_ids: array | None  # array('q')
    messages: tuple[tuple[str, str], ...] | None


@dataclass(frozen=True)
class Trace:
    name: str
    requests: tuple[TraceRequest, ...]
    time_scale: float = 1.0

    @property
    def span_s(self) -> float:
        return self.requests[-1].offset_ms * self.time_scale / 1000

    @property
    def mean_rate(self) -> float:
        """Requests per second over the trace's span (time-scaled): what its rows store as request_rate."""
        return (len(self.requests) - 1) / self.span_s

    @property
    def peak_rate(self) -> float:
        """The most requests that start within any one second of the (time-scaled) trace."""
        times = [r.offset_ms * self.time_scale / 1000 for r in self.requests]
        most, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return float(most)


def read_trace(path: str, scale: float = 1.0) -> Trace:
    """The trace at `path`, every line checked; one line (ConfigError) for the first that is wrong."""
    file = Path(path)
    data = read_bounded(file, "--trace", MAX_TRACE_BYTES, lambda size: ConfigError(
        f"--trace {path} is over {MAX_TRACE_BYTES // 1_000_000} MB ({size / 1e6:.1f} MB): split the trace"))
    if data.count(b"\n") > MAX_TRACE_REQUESTS + 1000:  # before parsing: blank lines are few
        raise ConfigError(f"--trace {path} holds more than {MAX_TRACE_REQUESTS:,} requests: split the trace")
    text = utf8_text(data, "--trace", file)
    requests: list[TraceRequest] = []
    first = previous = None
    hash_ids = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"--trace {path} line {number}"
        if len(requests) >= MAX_TRACE_REQUESTS:
            raise ConfigError(f"--trace {path} holds more than {MAX_TRACE_REQUESTS:,} requests: split the trace")
        request, stamp = _request(line, where, number)
        if previous is not None and stamp < previous:
            raise ConfigError(f"{where}: timestamp {stamp:g} is before the line above's {previous:g}: a trace is in "
                              "time order")
        first = stamp if first is None else first
        previous = stamp
        hash_ids += len(request.hash_ids or ())
        if hash_ids > MAX_TRACE_HASH_IDS:
            raise ConfigError(f"{where}: the trace holds more than {MAX_TRACE_HASH_IDS:,} hash_ids: split it")
        requests.append(replace(request, offset_ms=stamp - first))
    if len(requests) < 2 or requests[-1].offset_ms <= 0:
        raise ConfigError(f"--trace {path} needs at least two requests at different times (its mean rate is what "
                          "its rows store): for one burst use --concurrency")
    trace = Trace(file.name, tuple(requests), scale)
    if trace.span_s > MAX_TRACE_SPAN_S:
        raise ConfigError(f"--trace {path} spans {trace.span_s / 86_400:.1f} days at --time-scale {scale:g}, more "
                          f"than {MAX_TRACE_SPAN_S / 86_400:g}: compress it (--time-scale below 1) or cut it")
    # Its mean rate is stored with every row: within what --rate takes (timestamps a few ulps apart read as 1e303/s)
    if trace.span_s <= 0 or trace.mean_rate > MAX_RATE:
        raise ConfigError(f"--trace {path} sends {len(requests):,} requests within {trace.span_s * 1000:.3g} ms at "
                          f"--time-scale {scale:g}: more than {MAX_RATE:g} requests/s on average (what --rate "
                          "takes): stretch it (--time-scale above 1)")
    return trace


def _shown(value: object) -> str:
    """A value of a line as an error says it: text quoted and cut (textfile.shown), anything else as JSON, cut."""
    if isinstance(value, str):
        return shown(value)
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _whole(item: dict, key: str, where: str, least: int, most: int) -> int:
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise ConfigError(f"{where}: {key} must be a whole number from {least:,} to {most:,}, not {_shown(value)}")
    return value


def _request(line: str, where: str, number: int) -> tuple[TraceRequest, float]:
    item = json_line(line, where, "a request")
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: each line must be a JSON object")
    if unknown := sorted(set(item) - KEYS):
        raise ConfigError(f"{where}: unknown key {shown(unknown[0])}; allowed: {', '.join(sorted(KEYS))}")
    stamp = item.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp) or not (
            0 <= stamp <= MAX_TIMESTAMP_MS):
        raise ConfigError(f"{where}: timestamp must be milliseconds from 0 to {MAX_TIMESTAMP_MS:.0e}, not "
                          f"{_shown(stamp)}")
    output = _whole(item, "output_length", where, 1, MAX_OUTPUT_LENGTH) if "output_length" in item else None
    if "messages" in item:
        if "input_length" in item or "hash_ids" in item:
            raise ConfigError(f"{where}: give messages, or input_length (and hash_ids), not both")
        raw = item["messages"]
        if not isinstance(raw, list) or not raw or not all(
                isinstance(m, dict) and set(m) == {"role", "content"} and m["role"] in ROLES
                and isinstance(m["content"], str) for m in raw):
            raise ConfigError(f"{where}: messages must be a list of {{\"role\": system|user|assistant, \"content\": "
                              "text}} objects")
        messages = tuple((m["role"], m["content"]) for m in raw)
        try:
            json.dumps(messages, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{where}: holds a lone surrogate (half of a character)") from None
        return TraceRequest(number, 0.0, None, output, None, messages), float(stamp)
    if "input_length" not in item or output is None:
        raise ConfigError(f"{where}: give input_length and output_length (tokens), or messages")
    length = _whole(item, "input_length", where, 1, MAX_TIER_TOKENS)
    ids = None
    if "hash_ids" in item:
        raw_ids, blocks = item["hash_ids"], -(-length // TRACE_BLOCK_TOKENS)
        if not isinstance(raw_ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= MAX_HASH_ID for i in raw_ids[:blocks]):
            raise ConfigError(f"{where}: hash_ids must be a list of whole numbers from 0 to {MAX_HASH_ID}")
        if len(raw_ids) > blocks:
            raise ConfigError(f"{where}: {len(raw_ids):,} hash_ids are more blocks of {TRACE_BLOCK_TOKENS} tokens "
                              f"than input_length {length:,} holds ({blocks:,})")
        ids = array("q", raw_ids)
    return TraceRequest(number, 0.0, length, output, ids, None), float(stamp)


@lru_cache(maxsize=BLOCK_CACHE)
def _block(key: str) -> str:
    return block_text(key)


def _cut(block: str, tokens: int) -> str:
    """The block's first words, about `tokens` tokens of it (the key's own two or three included)."""
    words = block.split(" ")
    return " ".join(words[:max(1, round(tokens / TOKENS_PER_WORD))]) + " "


def trace_prompt(request: TraceRequest) -> Prompt:
    """The request's prompt: its messages, a tier-like prompt of its input_length, or its hash ids' blocks."""
    if request.messages is not None:
        return Prompt(f"trace-{request.line}", request.messages, max_tokens=request.output_length)
    assert request.input_length is not None
    if request.hash_ids is None:
        return replace(tier_prompt(request.input_length), prompt_id=f"trace-{request.line}",
                       max_tokens=request.output_length)
    parts, left = [], request.input_length
    keys = [str(i) for i in request.hash_ids]
    while left > 0:  # tokens past the hash ids' blocks: blocks of the request's own
        key = keys[len(parts)] if len(parts) < len(keys) else f"line{request.line}-{len(parts)}"
        parts.append(_block(key) if left >= TRACE_BLOCK_TOKENS else _cut(_block(key), left))
        left -= TRACE_BLOCK_TOKENS
    messages = (("user", "".join(parts)),)
    return Prompt(f"trace-{request.line}", messages, input_tier=request.input_length,
                  max_tokens=request.output_length)


def placeholder_prompt(trace: Trace, max_tokens: int) -> Prompt:
    """The one prompt a trace's plan holds (its cost bound and dry run): as long as its longest request, with the
    largest output cap of any (an upper bound for each of its requests): a line's output_length, else `max_tokens`
    (--max-tokens, or the default)."""
    longest = max(trace.requests, key=lambda r: r.input_length or sum(len(c) for _, c in r.messages or ()))
    prompt = trace_prompt(longest)
    return replace(prompt, prompt_id=prompt_id_for(prompt.messages), input_tier=None,
                   max_tokens=max(r.output_length or max_tokens for r in trace.requests))


def trace_tickets(cells: Sequence[Cell], cache_mode: str, max_tokens: int, trace: Trace, slots: int, began: float,
                  began_at: datetime, stop_requested: Callable[[], bool]) -> Iterator[Ticket]:
    """The trace's requests for one provider and model (its cell), each due at its time-scaled trace time from the
    level's start; its prompt built when drawn, its max_tokens its output_length, else `max_tokens` (--max-tokens,
    or the default; the cell's is the placeholder's, the largest of any). Requests with hash ids are sent as built
    (their shared prefixes are the point); others go with the run's cache mode."""
    template = cells[0]
    rate = trace.mean_rate
    start, start_at = began + START_LEAD_S, began_at + timedelta(seconds=START_LEAD_S)
    for request in trace.requests:
        if stop_requested():
            return
        prompt = trace_prompt(request)
        settings = replace(template.settings, max_tokens=prompt.max_tokens or max_tokens)
        offset = request.offset_ms * trace.time_scale / 1000
        yield Ticket(replace(template, prompt=prompt, settings=settings),
                     "off" if request.hash_ids is not None else cache_mode, slots, start_at, start, ramp=False,
                     scheduled=start + offset, scheduled_at=start_at + timedelta(seconds=offset), request_rate=rate)
