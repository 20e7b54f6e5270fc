"""Anthropic's Messages API as the simulator speaks it: `POST .../v1/messages` (streamed as named server-sent events,
or one JSON body) and `GET .../v1/models[/{id}]`. The key comes in `x-api-key`, the request id goes out in
`request-id`.

A stream is message_start (the input usage, cache reads and writes), then for each content block (thinking, if the
profile has reasoning tokens, then text) content_block_start, its deltas and content_block_stop, with a ping after
the first start; then message_delta (stop_reason, usage.output_tokens) and message_stop. Faults as Anthropic sends
them: 529 overloaded_error, 429 rate_limit_error with retry-after, an `event: error` inside the 200 stream, a stream
cut before message_stop, stop_reason "refusal".
"""

from __future__ import annotations

import json
import time

from .exchange import Exchange, answer_time, flood, paced, sleep_until, words
from .calls import Asked
from .intake import MID_STREAM, Api, Request, answered, dicts, played_whole, spelled, text_of
from .profiles import ModelProfile
from .state import CACHE_MIN_TOKENS, RequestRecord

CREATED_AT = "2025-10-01T00:00:00Z"  # when every simulated model was "released"
SIGNATURE = "c2ltdWxhdGVk"  # a thinking block's signature (opaque to clients)
_STATUS = {  # fault -> (HTTP status, Anthropic's error type, message)
    "not_found": (404, "not_found_error", "model: {model}"),
    "rate_limit": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    "server": (500, "api_error", "Internal server error"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
}


def _prompt(body: dict) -> str:
    """The tools, the system prompt, then every message in order, as spelled (tool uses and results included)."""
    return "\n".join((spelled(body.get("tools"), keys=True)[0], spelled(body.get("system"), body.get("messages"))[0]))


def _cacheable(body: dict) -> str:
    """The prompt through its last cache_control breakpoint; "" without one (Anthropic then reads no cache)."""
    tools, tools_marked = spelled(body.get("tools"), keys=True)
    marked = spelled(body.get("system"), body.get("messages"))[1]
    if marked is not None:
        return "\n".join((tools, marked))
    return tools_marked or ""


def _asks(body: dict) -> Asked:
    """Messages' tools (with an input_schema), tool_choice, and the output_config (or beta output_format) schema."""
    messages = dicts(body.get("messages"))
    tools = tuple((str(tool.get("name")), tool.get("input_schema")) for tool in dicts(body.get("tools"))
                  if "input_schema" in tool)
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    named = str(choice.get("name")) if isinstance(choice, dict) and kind == "tool" else None
    config = body.get("output_config")
    output = config.get("format") if isinstance(config, dict) else body.get("output_format")
    users = [m for m in messages if m.get("role") == "user"]
    last = messages[-1].get("content") if messages else None
    return Asked(
        entries=len(messages), tools=tools, choice=named or {"any": "required"}.get(str(kind), kind),
        after_result=any(block.get("type") == "tool_result" for block in dicts(last)),
        last_user=text_of(users[-1].get("content")) if users else "",
        schema=output.get("schema", {}) if isinstance(output, dict) and output.get("type") == "json_schema" else None,
    )


def _error_body(http: Exchange, kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": http.request_id}


def _send(http: Exchange, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
    http.send_json(status, payload, {"request-id": http.request_id, **(headers or {})})


def _refuse(http: Exchange, record: RequestRecord, profile: ModelProfile, fault: str) -> None:
    if fault == "auth":
        # Echo the key the way careless servers do, so that the client's scrubbing is put to the test.
        record.status = 401
        key = (record.authorization or "").removeprefix("Bearer ")
        _send(http, 401, _error_body(http, "authentication_error", f"invalid x-api-key: {key}"))
        return
    status, kind, message = _STATUS[fault]
    record.status = status
    headers = {"retry-after": str(max(1, -(-profile.retry_after_ms // 1000)))} if status == 429 else None
    _send(http, status, _error_body(http, kind, message.format(model=record.model)), headers)


def _bad_request(http: Exchange, status: int, message: str) -> None:
    kind = "request_too_large" if status == 413 else "invalid_request_error"  # Anthropic's own names
    _send(http, status, _error_body(http, kind, message))


API = Api(
    name="messages",
    model=lambda http, body: body.get("model"),
    stream=lambda http, body: bool(body.get("stream")),
    prompt=_prompt,
    cap=lambda body: body.get("max_tokens"),
    refuse=_refuse,
    bad_request=_bad_request,
    asks=_asks,
    cacheable=_cacheable,
)


def _model_object(name: str) -> dict:
    return {"type": "model", "id": name, "display_name": name, "created_at": CREATED_AT}


def list_models(http: Exchange) -> None:
    """GET .../v1/models: every model the simulator has a profile for, one page."""
    models = [_model_object(name) for name in sorted(http.simulator.profiles)]
    first, last = (models[0]["id"], models[-1]["id"]) if models else (None, None)
    _send(http, 200, {"data": models, "has_more": False, "first_id": first, "last_id": last})


def get_model(http: Exchange) -> None:
    """GET .../v1/models/{id}: a model with a profile, else 404 (the default profile answers messages, not this)."""
    name = http.path.split("?", 1)[0].rstrip("/").split("/models/", 1)[1]
    if name in http.simulator.profiles:
        _send(http, 200, _model_object(name))
    else:
        _send(http, 404, _error_body(http, "not_found_error", f"model: {name}"))


def _usage(request: Request, output_tokens: int) -> dict:
    record = request.record
    written = request.profile.cache_write_tokens if request.profile.input_tokens is not None else 0
    cacheable = record.cacheable_tokens or 0
    if request.profile.input_tokens is None:
        # what the prefix cache did not hold through the breakpoint is written, if that is long enough to be cached
        written = cacheable - record.cached_tokens if cacheable >= CACHE_MIN_TOKENS else 0
    written = max(0, min(written, record.prompt_tokens - record.cached_tokens))
    record.cache_write_tokens = written
    return {
        "input_tokens": record.prompt_tokens - record.cached_tokens - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": record.cached_tokens,
        "output_tokens": output_tokens,
    }


def _stop_reason(request: Request) -> str:
    if request.fault == "refusal":
        return "refusal"
    return "max_tokens" if request.capped else "tool_use" if request.call else "end_turn"


def _tool_use(request: Request, arguments: dict) -> dict:
    call = request.call
    assert call is not None
    return {"type": "tool_use", "id": call.call_id, "name": call.name, "input": arguments}


def messages(http: Exchange) -> None:
    """POST .../v1/messages: the model's answer, its fault, or its place in the queue first."""
    answered(http, API, _stream, _complete)


def _complete(http: Exchange, request: Request) -> None:
    if played_whole(http, request, API):
        return
    record, tokens = request.record, request.tokens
    sleep_until(answer_time(record, request.profile, tokens))
    content: list[dict] = []
    if request.reasoning:
        content.append({"type": "thinking", "thinking": words(0, request.reasoning), "signature": SIGNATURE})
    if request.call:
        try:
            arguments = json.loads(request.arguments())
        except ValueError:  # cut short by max_tokens
            arguments = {}
        content.append(_tool_use(request, arguments))
    else:
        content.append({"type": "text", "text": request.text(request.reasoning, tokens)})
    payload = {
        "id": f"msg_{http.request_id}", "type": "message", "role": "assistant", "model": record.model,
        "content": content, "stop_reason": _stop_reason(request), "stop_sequence": None,
        "usage": _usage(request, tokens),
    }
    record.first_token_at = record.first_answer_at = record.last_token_at = time.perf_counter()  # as it leaves
    record.output_tokens = tokens
    _send(http, 200, payload)


def _stream(http: Exchange, request: Request) -> None:
    record, fault = request.record, request.fault
    http.start_stream({"request-id": http.request_id})
    start = {
        "id": f"msg_{http.request_id}", "type": "message", "role": "assistant", "model": record.model, "content": [],
        "stop_reason": None, "stop_sequence": None,
    }
    if fault != "no_usage":
        start["usage"] = _usage(request, 1)
    http.sse({"type": "message_start", "message": start}, "message_start")
    if fault in ("flood", "long_line"):
        _block_start(http, 0, "text")
        flood(http, record, request.profile, fault, lambda text: _text_event(0, text))
        _finish(http, request, request.tokens, 0)
        return
    block, kind, tokens = -1, "", request.tokens
    for first, count in paced(record, request.profile, tokens):
        if fault in MID_STREAM and first >= request.profile.cut_after_tokens:
            _play(http, request, first, block)
            return
        wanted = "thinking" if first < request.reasoning else "tool_use" if request.call else "text"
        if wanted != kind:
            if block >= 0:
                _block_stop(http, block, kind)
            block, kind = block + 1, wanted
            now = _block_start(http, block, kind, request)
        text = request.text(first, first + count)
        delta = {"type": "text_delta", "text": text}
        if kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": text}
        elif kind == "tool_use":
            delta = {"type": "input_json_delta", "partial_json": text}
        if text or kind != "tool_use":  # a call's first token is its name, in the block's start
            now = http.sse({"type": "content_block_delta", "index": block, "delta": delta}, "content_block_delta")
        record.sent(now, first + count, thinking=kind == "thinking")
    if fault in MID_STREAM:  # an answer shorter than cut_after_tokens plays it at the end
        _play(http, request, tokens, block)
        return
    if block >= 0:
        _block_stop(http, block, kind)
    _finish(http, request, tokens, block + 1)


def _text_event(index: int, text: str) -> bytes:
    data = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}
    return b"event: content_block_delta\ndata: " + json.dumps(data).encode() + b"\n\n"


def _block_start(http: Exchange, index: int, kind: str, request: Request | None = None) -> float:
    """A block's start (and the ping after the first); the time the start left."""
    empty: dict[str, object] = {"type": "text", "text": ""}
    if kind == "thinking":
        empty = {"type": "thinking", "thinking": "", "signature": ""}
    elif kind == "tool_use" and request is not None:
        empty = _tool_use(request, {})
    started = http.sse({"type": "content_block_start", "index": index, "content_block": empty}, "content_block_start")
    if index == 0:
        http.sse({"type": "ping"}, "ping")
    return started


def _block_stop(http: Exchange, index: int, kind: str) -> None:
    if kind == "thinking":
        delta = {"type": "signature_delta", "signature": SIGNATURE}
        http.sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
    http.sse({"type": "content_block_stop", "index": index}, "content_block_stop")


def _finish(http: Exchange, request: Request, output_tokens: int, blocks: int) -> None:
    delta: dict[str, object] = {"type": "message_delta", "delta": {"stop_reason": _stop_reason(request),
                                                                   "stop_sequence": None}}
    if request.fault != "no_usage":
        delta["usage"] = {"output_tokens": output_tokens}
    http.sse(delta, "message_delta")
    http.sse({"type": "message_stop"}, "message_stop")
    http.end_stream(request.record)


def _play(http: Exchange, request: Request, sent: int, block: int) -> None:
    """The stream's fault, once cut_after_tokens tokens are out."""
    fault = request.fault
    if fault == "cut":
        http.cut(request.record)
    elif fault == "malformed":
        http.write_chunk(b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": \n\n')
        http.end_stream(request.record)
    elif fault == "refusal":
        if block >= 0:
            http.sse({"type": "content_block_stop", "index": block}, "content_block_stop")
        _finish(http, request, sent, block + 1)
    else:  # stream_error, failed: Anthropic's error event inside the 200 stream, then the end
        http.sse(_error_body(http, "overloaded_error", "Overloaded"), "error")
        http.end_stream(request.record)
