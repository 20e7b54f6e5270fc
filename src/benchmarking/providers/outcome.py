"""One attempt's outcome (what the wire recorded, the answer a dialect read from it, how it failed) made into the
Measurement that is stored: times from the wire, tokens from the dialect's usage, cost."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..dialogue import ToolCall, stored_calls
from ..settings.model import ProviderSettings
from ..measurement import Measurement, cap_text, decode_tokens_per_second
from ..pricing import Price
from ..redaction import scrub_known
from .answer import Answer, request_id_of
from .cost import cost_fields
from .dialects import Dialect
from .dialects.tool_calls import KEPT_ARGUMENT_CHARS, MAX_CALLS
from .failures import Failure, known_secrets
from .numbers import part_of, text_count
from .tokenize import ServerCount
from .wire import WireRecord


@dataclass(frozen=True)
class Attempt:
    """One try: what the wire recorded (None if the request never left), how it read, and how it failed if it did."""

    record: WireRecord | None
    answer: Answer
    failure: Failure | None


def measurement_of(
    provider: str, model: str, settings: ProviderSettings, pricing: Mapping[str, Price], pricing_file: str,
    endpoint: str, started_at: Any, attempts: int, attempt: Attempt, counted: ServerCount | None, dialect: Dialect,
) -> Measurement:
    record, answer, failure = attempt.record, attempt.answer, attempt.failure
    secrets = known_secrets(settings)
    problems: list[str] = []
    usage = answer.usage
    counts = dialect.tokens(usage, problems)
    input_tokens, output_tokens = counts.input_tokens, counts.output_tokens
    cached_tokens = counts.cached_tokens
    # Reasoning is part of the output (OpenAI's completion_tokens_details, the Responses API's output_tokens_details)
    # (no part of the bill: output tokens are billed alike, reasoning or not)
    unbilled: list[str] = []
    reasoning_tokens = part_of(counts.reasoning_tokens, output_tokens, ("reasoning_tokens", "output_tokens"), unbilled)
    cached_tokens = part_of(cached_tokens, input_tokens, ("cached_tokens", "prompt_tokens"), problems)
    cache_write_tokens = part_of(counts.cache_write_tokens, input_tokens, ("cache_write_tokens", "input_tokens"),
                                 problems)
    token_source = "usage" if usage is not None else None
    if counted is not None:
        if counted.output_tokens is not None:
            token_source, input_tokens, output_tokens = "tokenize", counted.input_tokens, counted.output_tokens

    def ms(at: float | None) -> float | None:
        return None if at is None or record is None else (at - record.sent_at) * 1000

    if settings.stream:
        ttft_ms, answer_ttft_ms, latency_ms = (
            ms(answer.first_output_at), ms(answer.first_answer_at), ms(answer.last_output_at)
        )
        tool_args_ms = ms(answer.tool_args_at) if answer.tool_calls else None
        itl_ms = tuple(gap * 1000 for gap in answer.itl_s) if answer.itl_s and record is not None else (None,) * 3
    else:
        itl_ms = (None, None, None)
        ttft_ms = answer_ttft_ms = None
        latency_ms = ms(record.last_byte_at) if record is not None and answer.has_output else None
        tool_args_ms = latency_ms if answer.tool_calls else None
    cache_write_1h_tokens = part_of(counts.cache_write_1h_tokens, cache_write_tokens,
                                    ("cache_write_1h_tokens", "cache_write_tokens"), problems)
    fields, warnings = cost_fields(provider, model, settings, pricing, pricing_file, replace(
        counts, input_tokens=input_tokens, output_tokens=output_tokens, cached_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens, cache_write_1h_tokens=cache_write_1h_tokens), billable=not problems)
    problems += unbilled
    if failure is None and usage is None and token_source is None:
        warnings += (f"{provider} sent no token usage: tokens, speed and cost are left empty",)
    warnings += tuple(f"{provider} sent a value that makes no sense: {p}" for p in problems)
    if counted is not None and counted.problem:
        warnings += (counted.problem,)
    if answer.tool_calls_truncated:
        warnings += (f"{provider} sent more tool calls than the {MAX_CALLS} kept, or arguments past the "
                     f"{KEPT_ARGUMENT_CHARS} characters kept: they were cut (the row says response_truncated, and its "
                     "calls are not judged)",)
    # Tokens the model generated before its first visible token and never streamed (OpenAI's reasoning models; a
    # reasoning summary streams in their place) are not part of the decode that the stream shows: without them,
    # the decode starts at the answer's first token, not at the first thing streamed.
    hidden = reasoning_tokens if reasoning_tokens and not answer.reasoning_streamed else 0
    decoded = None if output_tokens is None else output_tokens - hidden
    decode_from_ms = answer_ttft_ms if hidden else ttft_ms
    headers = record.headers if record is not None else {}
    text, truncated = cap_text(scrub_known(answer.text, secrets))
    truncated = truncated or answer.text_truncated or answer.tool_calls_truncated
    request_id = request_id_of(record, answer) or (failure.request_id if failure else None)
    calls = tuple(ToolCall(scrub_known(c.name, secrets), scrub_known(c.arguments, secrets), c.call_id, c.signature)
                  for c in answer.tool_calls)
    return Measurement(
        provider=provider,
        model=model,
        stream=settings.stream,
        endpoint=endpoint,
        api=dialect.API,
        started_at=started_at,
        success=failure is None,
        attempts=attempts,
        ttft_ms=ttft_ms,
        answer_ttft_ms=answer_ttft_ms,
        latency_ms=latency_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens,
        reasoning_tokens=reasoning_tokens,
        tokens_per_second=decode_tokens_per_second(decoded, decode_from_ms, latency_ms) if failure is None else None,
        finish_reason=answer.finish_reason,
        request_id=scrub_known(request_id, secrets) if request_id else None,
        response_text=(text or None) if failure is not None else text,
        response_truncated=truncated,
        error_type=failure.error_type if failure else None,
        http_status=failure.http_status if failure else None,
        error_message=failure.message if failure else None,
        upstream_provider=answer.upstream_provider,
        token_source=token_source,
        sent_at_s=record.sent_at if record is not None else None,
        answered_at_s=record.last_byte_at if record is not None else None,
        ratelimit_remaining_requests=text_count(headers.get("x-ratelimit-remaining-requests")),
        ratelimit_remaining_tokens=text_count(headers.get("x-ratelimit-remaining-tokens")),
        tool_calls=stored_calls(calls) if calls else None,
        tool_args_ms=tool_args_ms,
        itl_p50_ms=itl_ms[0],
        itl_p99_ms=itl_ms[1],
        itl_max_ms=itl_ms[2],
        output_events=answer.output_events if record is not None else None,
        calls=calls,
        warnings=warnings,
        **fields,
    )
