"""OpenAI Chat Completions as the simulator speaks it: `POST .../chat/completions` (streaming with SSE, or not) and
`GET .../models`, with the habits of each OpenAI-compatible provider picked by the path's first segment:

- `/v1/...`                   OpenAI: a usage-only chunk at the end, only when `stream_options.include_usage` is set
- `/groq/openai/v1/...`       Groq: `x_groq.usage` on the finishing chunk, plus the usage chunk when asked for
- `/together/v1/...`          Together: usage on the finishing content chunk, always
- `/openrouter/api/v1/...`    OpenRouter: keep-alive comments, and a usage chunk with `cost`, always
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from typing import Any

from .exchange import Exchange, sleep_until, ttft_ms, words
from .profiles import ModelProfile
from .state import RequestRecord

FLOOD_EVENT_BYTES = 64 * 1024  # the content each event of a flood carries
LONG_LINE_PIECE_BYTES = 1024 * 1024  # a long line leaves in HTTP chunks of this size


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


def _flavour(path: str) -> str:
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in ("groq", "together", "openrouter") else "openai"


def list_models(http: Exchange, raw: bytes, received_at: float) -> None:
    """GET .../models: every model the simulator has a profile for."""
    models = []
    for name, profile in sorted(http.simulator.profiles.items()):
        model: dict[str, object] = {"id": name, "object": "model"}
        if _flavour(http.path) == "openai":  # only OpenAI's list announces shutdowns
            model["shutdown_date"] = profile.shutdown_date
        models.append(model)
    http.send_json(200, {"object": "list", "data": models})


def chat_completions(http: Exchange, raw: bytes, received_at: float) -> None:
    """POST .../chat/completions: the model's answer, its fault, or its place in the queue first."""
    sim = http.simulator
    try:
        body = json.loads(raw)
    except ValueError:
        http.send_json(400, {"error": {"message": "request body is not JSON"}})
        return
    record = RequestRecord(
        request_id=http.request_id,
        path=http.path,
        model=body.get("model"),
        stream=bool(body.get("stream")),
        received_at=received_at,
        client_port=http.client_address[1],
        authorization=http.headers.get("Authorization"),
        body=body,
    )
    sim.record(record)
    profile = sim.profile_for(record.model)
    if profile is None:
        record.status = 404
        http.send_json(404, _error(f"The model `{record.model}` does not exist.", "model_not_found"))
        return
    record.prompt_tokens, record.cached_tokens = sim.count_prompt(record.model, profile, prompt_text(body))
    fault = sim.fault_for(record.model, profile)
    with sim.serving(record.model, profile) as admitted:
        if not admitted:
            fault = "rate_limit"
        if admitted and admitted is not True:  # it waited for a place: its times start now
            record.received_at = admitted
        if fault in ("auth", "not_found", "rate_limit", "server", "hang"):
            _fail(http, record, profile, fault)
            return
        if record.stream:
            _stream(http, record, profile, body, fault)
        else:
            _complete(http, record, profile, body)


def _fail(http: Exchange, record: RequestRecord, profile: ModelProfile, fault: str) -> None:
    if fault == "hang":
        http.simulator.stopping.wait(profile.hang_s)
        http.close_connection = True
        return
    if fault == "auth":
        # Echo the credential the way careless servers do, so that the client's scrubbing is put to the test.
        record.status = 401
        key = (record.authorization or "").removeprefix("Bearer ")
        http.send_json(401, _error(f"Incorrect API key provided: {key}", "invalid_api_key"))
    elif fault == "not_found":
        record.status = 404
        http.send_json(404, _error(f"The model `{record.model}` does not exist.", "model_not_found"))
    elif fault == "rate_limit":
        record.status = 429
        headers = {"retry-after-ms": str(profile.retry_after_ms), "retry-after": "1"}
        http.send_json(429, _error("Rate limit reached, slow down.", "rate_limit_exceeded"), headers)
    else:
        record.status = 500
        http.send_json(500, _error("The server had an error while processing your request.", "server_error"))


def _usage(record: RequestRecord, profile: ModelProfile, output_tokens: int, body: dict) -> dict:
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


def _planned_tokens(profile: ModelProfile, body: dict) -> tuple[int, str]:
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if limit is not None and int(limit) < profile.output_tokens:
        return int(limit), "length"
    return profile.output_tokens, "stop"


def _complete(http: Exchange, record: RequestRecord, profile: ModelProfile, body: dict) -> None:
    tokens, finish = _planned_tokens(profile, body)
    chunks = max(1, -(-tokens // profile.tokens_per_chunk))
    sleep_until(record.received_at + (ttft_ms(record, profile) + (chunks - 1) * profile.itl_ms) / 1000)
    reasoning = min(profile.reasoning_tokens, tokens)
    message: dict[str, object] = {"role": "assistant", "content": words(reasoning, tokens)}
    if reasoning:
        message["reasoning"] = words(0, reasoning)
    payload = {
        "id": f"chatcmpl-{http.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": record.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(record, profile, tokens, body),
    }
    record.first_token_at = record.last_token_at = time.perf_counter()  # as the bytes leave
    record.output_tokens = tokens
    http.send_json(200, payload)


def _stream(http: Exchange, record: RequestRecord, profile: ModelProfile, body: dict, fault: str | None) -> None:
    flavour = _flavour(record.path)
    tokens, finish = _planned_tokens(profile, body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": f"chatcmpl-{http.request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": record.model,
    }

    def chunk(delta: dict, finish_reason: str | None = None, **extra: object) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {**base, "choices": [choice], **extra}

    http.send_response(200)
    http.send_header("Content-Type", "text/event-stream")
    http.send_header("Cache-Control", "no-cache")
    http.send_header("Transfer-Encoding", "chunked")
    http.send_header("x-request-id", http.request_id)
    http.end_headers()
    # The role-only chunk comes at once and carries no token: a client that starts TTFT here is wrong.
    http.sse(chunk({"role": "assistant", "content": ""}))
    if flavour == "openrouter":
        http.write_chunk(b": OPENROUTER PROCESSING\n\n")

    if fault in ("flood", "long_line"):
        _flood(http, record, profile, chunk, fault)
        return
    reasoning = min(profile.reasoning_tokens, tokens)
    sent = 0
    start = record.received_at + ttft_ms(record, profile) / 1000
    for index in itertools.count():
        if sent >= tokens:
            break
        sleep_until(start + index * profile.itl_ms / 1000)
        if fault == "malformed" and sent > 0:
            http.write_chunk(b'data: {"id": "broken", "choices": [\n\n')
            http.end_stream(record)
            return
        if fault == "cut" and sent >= profile.cut_after_tokens:
            record.last_token_at = time.perf_counter()
            http.close_connection = True
            http.connection.shutdown(socket.SHUT_RDWR)
            return
        count = min(profile.tokens_per_chunk, tokens - sent)
        # A chunk never mixes reasoning and answer, as real servers send them.
        if sent < reasoning:
            count = min(count, reasoning - sent)
            delta = {"reasoning": words(sent, sent + count)}
        else:
            delta = {"content": words(sent, sent + count)}
        sent += count
        last = sent >= tokens
        extra: dict[str, object] = {}
        if last and fault != "no_usage":
            if flavour == "together":
                extra["usage"] = _usage(record, profile, tokens, body)
            elif flavour == "groq":
                extra["x_groq"] = {"id": base["id"], "usage": _usage(record, profile, tokens, body)}
        now = http.sse(chunk(delta, finish if last else None, **extra))
        if record.first_token_at is None:
            record.first_token_at = now
        record.last_token_at = now
        record.output_tokens = sent
        record.chunk_count += 1

    wants_usage_chunk = include_usage or flavour == "openrouter"
    if wants_usage_chunk and flavour != "together" and fault != "no_usage":
        http.sse({**base, "choices": [], "usage": _usage(record, profile, tokens, body)})
    http.write_chunk(b"data: [DONE]\n\n")
    http.end_stream(record)


def _flood(http: Exchange, record: RequestRecord, profile: ModelProfile, chunk: Any, fault: str) -> None:
    """An enormous answer, generated as it is sent (the simulator never holds it): many events, or one line."""
    record.first_token_at = time.perf_counter()
    if fault == "flood":
        event = b"data: " + json.dumps(chunk({"content": "x" * FLOOD_EVENT_BYTES})).encode() + b"\n\n"
        for _ in range(max(1, profile.flood_bytes // FLOOD_EVENT_BYTES)):
            http.write_chunk(event)
    else:
        head, tail = json.dumps(chunk({"content": "<>"})).encode().split(b"<>")
        http.write_chunk(b"data: " + head)
        piece = b"x" * LONG_LINE_PIECE_BYTES
        for _ in range(max(1, profile.flood_bytes // LONG_LINE_PIECE_BYTES)):
            http.write_chunk(piece)
        http.write_chunk(tail + b"\n\n")
    record.last_token_at = time.perf_counter()
    http.sse(chunk({}, "stop"))
    http.write_chunk(b"data: [DONE]\n\n")
    http.end_stream(record)


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}
