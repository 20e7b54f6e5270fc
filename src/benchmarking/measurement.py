"""What one request measured: a frozen dataclass, and the arithmetic that derives metrics from raw times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from .dialogue import ToolCall

RESPONSE_TEXT_CAP_BYTES = 1_000_000


def utc_now() -> datetime:
    """Wall-clock time for timestamps stored in the database (never for intervals)."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Measurement:
    """One request to one provider: timings in milliseconds, tokens as the provider reported them."""

    provider: str
    model: str
    success: bool
    started_at: datetime
    stream: bool
    attempts: int = 1
    ttft_ms: float | None = None
    answer_ttft_ms: float | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None  # of the input, read from the provider's prompt cache
    cache_write_tokens: int | None = None  # of the input, written to the provider's prompt cache (Anthropic)
    reasoning_tokens: int | None = None
    tokens_per_second: float | None = None
    finish_reason: str | None = None
    request_id: str | None = None
    response_text: str | None = None
    response_truncated: bool = False
    error_type: str | None = None
    http_status: int | None = None
    error_message: str | None = None
    cost_usd: Decimal | None = None
    cost_source: str | None = None
    price_input_per_mtok: Decimal | None = None
    price_cached_input_per_mtok: Decimal | None = None
    price_cache_write_per_mtok: Decimal | None = None
    price_output_per_mtok: Decimal | None = None
    price_as_of: str | None = None
    endpoint: str | None = None
    api: str | None = None  # the API spoken: 'chat_completions' | 'responses' | 'messages' | 'generate_content'
    upstream_provider: str | None = None  # OpenRouter: the provider that served the request
    token_source: str | None = None  # "usage" (the provider's report) | "tokenize" (the server's tokenizer)
    workload: str | None = None  # 'default' | 'tiers' | the prompt file's name
    prompt_id: str | None = None
    input_tier: int | None = None  # the nominal input size of a tier's prompt, in tokens
    round: int | None = None  # from 1
    position: int | None = None  # in its round, from 1
    cache_mode: str | None = None  # 'bust' | 'warm' | 'off'
    answer_ok: bool | None = None  # the answer met the prompt's `expect`; None where there is none
    ratelimit_remaining_requests: int | None = None  # the provider's x-ratelimit-remaining-* headers, as sent
    ratelimit_remaining_tokens: int | None = None
    concurrency: int | None = None  # a load run's level: requests in flight per provider and model
    level_started_at: datetime | None = None
    start_lag_ms: float | None = None  # from when a load slot was free (an open loop: when due) to its start
    node: str | None = None  # where a load run's request was made: host, and Ray node id on Ray
    session_id: str | None = None  # a conversation's requests in one round share it
    turn: int | None = None  # the request's number in its conversation, from 1
    tool_calls: str | None = None  # JSON text, [{"name", "arguments"}] as sent; None where no tools were offered
    tool_args_ms: float | None = None  # from the start to when the last tool call's arguments were complete
    json_valid: bool | None = None  # the answer parsed as JSON and followed the prompt's schema; None without one
    tool_ok: bool | None = None  # the entry's first answer called the tool its expect_tool names; None without one
    # Inter-token latency of a stream: the gaps between its output events' arrival times after the first (events read
    # from the socket together share one time: a gap of 0), true to within 1 % or 1 us (providers/gaps.py); None
    # unstreamed, or with fewer than two output events.
    itl_p50_ms: float | None = None
    itl_p99_ms: float | None = None
    itl_max_ms: float | None = None  # the longest stall
    output_events: int | None = None  # events (chunks) carrying output; a plain body is one
    request_rate: float | None = None  # an open loop's arrival rate at this request's level, requests/s
    scheduled_at: datetime | None = None  # when an open loop's schedule had this request start
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # When the request left, on time.perf_counter (Linux: the system's monotonic clock, one clock for the host's
    # processes). Not stored: for comparing with a local server's own record (benchmarks/accuracy.py).
    sent_at_s: float | None = field(default=None, compare=False)
    # When the answer's last byte arrived (the stream's end: after the last token, its usage and [DONE]), on the same
    # clock. Not stored: a load level's time in flight (load.levels.in_flight_s).
    answered_at_s: float | None = field(default=None, compare=False)
    # The tool calls with their ids (and Gemini's signatures), for the conversation's next request. Not stored.
    calls: tuple[ToolCall, ...] = field(default=(), compare=False)


def decode_tokens_per_second(
    output_tokens: int | None, ttft_ms: float | None, latency_ms: float | None
) -> float | None:
    """Decode speed after the first token: (output_tokens - 1) / (latency - ttft); None when undefined."""
    if output_tokens is None or ttft_ms is None or latency_ms is None or output_tokens < 2:
        return None
    decode_ms = latency_ms - ttft_ms
    if decode_ms <= 0:
        return None
    return (output_tokens - 1) / (decode_ms / 1000.0)


def cap_text(text: str, cap_bytes: int = RESPONSE_TEXT_CAP_BYTES) -> tuple[str, bool]:
    """Return text cut to at most cap_bytes of UTF-8, and whether it was cut."""
    encoded = text.encode("utf-8")
    if len(encoded) <= cap_bytes:
        return text, False
    return encoded[:cap_bytes].decode("utf-8", errors="ignore"), True
