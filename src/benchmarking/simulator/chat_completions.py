"""OpenAI Chat Completions as the simulator speaks it: `POST .../chat/completions` (streaming with SSE, or not) and
`GET .../models`, with the habits of each OpenAI-compatible provider picked by the path's first segment:

- `/v1/...`                   OpenAI: a usage-only chunk at the end, only when `stream_options.include_usage` is set
- `/groq/openai/v1/...`       Groq: `x_groq.usage` on the finishing chunk, plus the usage chunk when asked for
- `/together/v1/...`          Together: usage on the finishing content chunk, always
- `/openrouter/api/v1/...`    OpenRouter: keep-alive comments, and a usage chunk with `cost`, always
"""

from __future__ import annotations

import json
import time
from typing import Callable

from .exchange import Exchange, answer_time, flood, paced, sleep_until, words
from .calls import Asked, response_schema
from .intake import MID_STREAM, Api, Request, answered, dicts, played_whole, spelled, text_of
from .profiles import ModelProfile
from .state import RequestRecord


def prompt_text(body: dict) -> str:
    """The tools offered, then every message in order, as spelled (tool calls and results included)."""
    return "\n".join((spelled(body.get("tools"), keys=True)[0], spelled(body.get("messages"))[0]))


def asks(body: dict) -> Asked:
    """Chat's tools (`tools[].function`), tool_choice, and response_format's schema (json_object: any object)."""
    messages = [m for m in dicts(body.get("messages")) if m.get("role") not in ("system", "developer")]
    functions = [tool.get("function") for tool in dicts(body.get("tools"))]
    tools = tuple((str(f.get("name")), f.get("parameters")) for f in functions if isinstance(f, dict))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        named = choice.get("function")
        choice = str(named.get("name")) if isinstance(named, dict) else "auto"
    users = [m for m in messages if m.get("role") == "user"]
    return Asked(
        entries=len(messages), tools=tools, choice=choice if isinstance(choice, str) else None,
        after_result=bool(messages) and messages[-1].get("role") == "tool",
        last_user=text_of(users[-1].get("content")) if users else "",
        schema=response_schema(body.get("response_format")),
    )


def _flavour(path: str) -> str:
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in ("groq", "together", "openrouter") else "openai"


def list_models(http: Exchange) -> None:
    """GET .../models: every model the simulator has a profile for."""
    models = []
    for name, profile in sorted(http.simulator.profiles.items()):
        model: dict[str, object] = {"id": name, "object": "model"}
        if _flavour(http.path) == "openai":  # only OpenAI's list announces shutdowns
            model["shutdown_date"] = profile.shutdown_date
        models.append(model)
    http.send_json(200, {"object": "list", "data": models})


def _refuse(http: Exchange, record: RequestRecord, profile: ModelProfile, fault: str) -> None:
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
    elif fault == "overloaded":
        record.status = 503
        http.send_json(503, _error("The engine is currently overloaded, please try again later.", "overloaded"))
    else:
        record.status = 500
        http.send_json(500, _error("The server had an error while processing your request.", "server_error"))


API = Api(
    name="chat_completions",
    model=lambda http, body: body.get("model"),
    stream=lambda http, body: bool(body.get("stream")),
    prompt=prompt_text,
    cap=lambda body: body.get("max_tokens") or body.get("max_completion_tokens"),
    refuse=_refuse,
    bad_request=lambda http, status, message: http.send_json(status, {"error": {"message": message}}),
    asks=asks,
)


def chat_completions(http: Exchange) -> None:
    """POST .../chat/completions: the model's answer, its fault, or its place in the queue first."""
    answered(http, API, _stream, _complete)


def _usage(request: Request, output_tokens: int) -> dict:
    record = request.record
    usage: dict[str, object] = {
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": record.prompt_tokens + output_tokens,
        "prompt_tokens_details": {"cached_tokens": record.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": min(request.reasoning, output_tokens)},
    }
    if _flavour(record.path) == "openrouter":
        usage["cost"] = float(request.profile.cost_usd)
    return usage


def _finish_reason(request: Request) -> str:
    if request.fault == "refusal":
        return "content_filter"
    return "length" if request.capped else "tool_calls" if request.call else "stop"


def _delta(request: Request, first: int, text: str) -> dict:
    """One chunk's delta: thinking, text, or a piece of the call (its first with the id and name)."""
    call = request.call
    if first < request.reasoning:
        return {"reasoning": text}
    if call is None:
        return {"content": text}
    piece: dict[str, object] = {"index": 0, "function": {"arguments": text}}
    if first == request.reasoning:
        piece = {"index": 0, "id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": text}}
    return {"tool_calls": [piece]}


def _complete(http: Exchange, request: Request) -> None:
    if played_whole(http, request, API):
        return
    record, tokens = request.record, request.tokens
    sleep_until(answer_time(record, request.profile, tokens))
    message: dict[str, object] = {"role": "assistant", "content": request.text(request.reasoning, tokens)}
    if request.call:
        function = {"name": request.call.name, "arguments": request.arguments()}
        message = {"role": "assistant", "content": None,
                   "tool_calls": [{"id": request.call.call_id, "type": "function", "function": function}]}
    if request.reasoning:
        message["reasoning"] = words(0, request.reasoning)
    payload = {
        "id": f"chatcmpl-{http.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": record.model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(request)}],
        "usage": _usage(request, tokens),
    }
    record.first_token_at = record.first_answer_at = record.last_token_at = time.perf_counter()  # as it leaves
    record.output_tokens = tokens
    http.send_json(200, payload)


def _stream(http: Exchange, request: Request) -> None:
    record, profile, body, fault, tokens = request.record, request.profile, request.body, request.fault, request.tokens
    flavour = _flavour(record.path)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    base = {
        "id": f"chatcmpl-{http.request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": record.model,
    }

    def chunk(delta: dict, finish_reason: str | None = None, **extra: object) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {**base, "choices": [choice], **extra}

    http.start_stream()
    # The role-only chunk comes at once and carries no token: a client that starts TTFT here is wrong.
    http.sse(chunk({"role": "assistant", "content": ""}))
    if flavour == "openrouter":
        http.write_chunk(b": OPENROUTER PROCESSING\n\n")

    if fault in ("flood", "long_line"):
        flood(http, record, profile, fault,
              lambda text: b"data: " + json.dumps(chunk({"content": text})).encode() + b"\n\n")
        http.sse(chunk({}, "stop"))
        http.write_chunk(b"data: [DONE]\n\n")
        http.end_stream(record)
        return
    for first, count in paced(record, profile, tokens):
        if fault == "malformed" and first > 0:
            http.write_chunk(b'data: {"id": "broken", "choices": [\n\n')
            http.end_stream(record)
            return
        if fault in MID_STREAM and first >= profile.cut_after_tokens:
            _play(http, request, chunk, first)
            return
        delta = _delta(request, first, request.text(first, first + count))
        last = first + count >= tokens
        extra: dict[str, object] = {}
        if last and fault not in ("no_usage", *MID_STREAM):
            if flavour == "together":
                extra["usage"] = _usage(request, tokens)
            elif flavour == "groq":
                extra["x_groq"] = {"id": base["id"], "usage": _usage(request, tokens)}
        finish = _finish_reason(request) if last and fault not in MID_STREAM else None
        now = http.sse(chunk(delta, finish, **extra))
        record.sent(now, first + count, thinking=first < request.reasoning)
    if fault in MID_STREAM:  # an answer shorter than cut_after_tokens plays it at the end
        _play(http, request, chunk, tokens)
        return
    wants_usage_chunk = include_usage or flavour == "openrouter"
    if wants_usage_chunk and flavour != "together" and fault != "no_usage":
        http.sse({**base, "choices": [], "usage": _usage(request, tokens)})
    http.write_chunk(b"data: [DONE]\n\n")
    http.end_stream(record)


def _play(http: Exchange, request: Request, chunk: Callable[..., dict], sent: int) -> None:
    """The stream's fault, once cut_after_tokens tokens are out."""
    if request.fault == "cut":
        http.cut(request.record)
        return
    if request.fault == "refusal":
        http.sse(chunk({}, "content_filter", usage=_usage(request, sent)))
    elif request.fault == "malformed":
        http.write_chunk(b'data: {"id": "broken", "choices": [\n\n')
    else:  # stream_error, failed: an error object inside the 200 stream, as OpenRouter and vLLM send them
        http.sse(_error("The server had an error while processing your request.", "server_error"))
    http.write_chunk(b"data: [DONE]\n\n")
    http.end_stream(request.record)


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}
