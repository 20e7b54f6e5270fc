"""The OpenAI Chat Completions dialect: the request body, the answer's chunks (`choices[].delta`, or a whole body's
`choices[].message`) read into an Answer, the error shapes a provider puts inside an HTTP 200, and how an attempt
that came back is judged.

Spoken by OpenAI, Groq, Together, OpenRouter and every OpenAI-compatible server (vLLM, Ollama, llama.cpp, ...).
"""

from __future__ import annotations

import json
from typing import Any, ContextManager, Mapping

from ...dialogue import Exchange
from ..answer import MAX_NAME_CHARS, Answer, Tokens, name_of, text_of
from ..numbers import provider_cost, usage_count
from ..sse import SseEvent
from ..wire import WireRecord
from . import PromptInput, common
from .common import Accumulated, error_in, in_body_failure, judge  # noqa: F401 (judge, in_body_failure: this dialect's)
from .tool_calls import ToolCalls, replayed_ids

API = "chat_completions"

# Delta fields that carry tokens the model generated. Reasoning comes under either name depending on the server.
REASONING_FIELDS = ("reasoning", "reasoning_content")
# The name a schema is sent under (the API requires one); the schema's own title is not always a valid name.
SCHEMA_NAME = "answer"

REHEARSAL_STREAM = b"".join(
    b"data: " + json.dumps(chunk).encode() + b"\n\n"
    for chunk in (
        {"id": "r", "object": "chat.completion.chunk", "created": 0, "model": "r",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {"id": "r", "object": "chat.completion.chunk", "created": 0, "model": "r",
         "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]},
        {"id": "r", "object": "chat.completion.chunk", "created": 0, "model": "r", "choices": [],
         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
    )
) + b"data: [DONE]\n\n"


def auth_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def messages_of(prompt: PromptInput) -> list[dict[str, Any]]:
    """The `messages` of a prompt: a plain one as {"role", "content"} each; a conversation's answers with the tool
    calls they made, and the tools' results."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, Exchange):
        return [{"role": role, "content": content} for role, content in prompt]
    messages: list[dict[str, Any]] = []
    for message, ids in zip(prompt.messages, replayed_ids(prompt.messages)):
        if message.role == "tool":
            messages.append({"role": "tool", "tool_call_id": ids[0], "content": message.content})
        elif message.tool_calls:
            messages.append({"role": "assistant", "content": message.content or None, "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call, call_id in zip(message.tool_calls, ids)]})
        else:
            messages.append({"role": message.role, "content": message.content})
    return messages


def request(model: str, prompt: PromptInput, max_tokens: int, stream: bool, usage_request: str) -> dict[str, Any]:
    """The SDK's arguments for one request; `usage_request` says how a stream's usage is asked for (Wire). Tools
    and tool_choice go as the prompt gives them (this API's form); a schema as a strict json_schema response_format."""
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": messages_of(prompt),
        "max_tokens": max_tokens,
        "stream": stream,
    }
    if stream and usage_request == "stream_options":
        kwargs["stream_options"] = {"include_usage": True}
    elif stream and usage_request == "extra_body":
        kwargs["extra_body"] = {"stream_options": {"include_usage": True}}
    if isinstance(prompt, Exchange):
        if prompt.tools:
            kwargs["tools"] = [dict(tool) for tool in prompt.tools]
        if prompt.tool_choice is not None:
            kwargs["tool_choice"] = prompt.tool_choice
        if prompt.schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": SCHEMA_NAME, "schema": dict(prompt.schema), "strict": True}}
    return kwargs


def open_stream(sdk: Any, request: Mapping[str, Any]) -> ContextManager[Any]:
    """The request, made by the SDK; its answer's bytes are read off unparsed (the wire records them)."""
    return sdk.chat.completions.with_streaming_response.create(**request)


def listed_models(body: Any) -> dict[str, str | None]:
    """GET /models: {"data": [{"id": ...}]}, each with the shutdown date it announces (OpenAI's, YYYY-MM-DD)."""
    return {str(item["id"]): item.get("shutdown_date") for item in body["data"]}


class _Builder(Accumulated):
    """Accumulates an Answer chunk by chunk (a chunk: one event's JSON, or the whole body when not streamed)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = ToolCalls()

    def _tool_calls(self, pieces: Any, at: float | None, message_key: str) -> bool:
        """A delta's tool-call pieces (each at its `index`), or a whole message's calls (by their place); True if
        any came."""
        if not isinstance(pieces, list):
            return bool(pieces)  # not a list of calls, but something the model sent
        for place, piece in enumerate(pieces):
            if not isinstance(piece, Mapping):
                continue
            function = piece.get("function") if isinstance(piece.get("function"), Mapping) else {}
            named = dict(name=function.get("name"), call_id=piece.get("id"), arguments=function.get("arguments"))
            if message_key == "delta":
                self.calls.piece(piece.get("index"), at, **named)
            else:
                self.calls.whole(place, at, **named)
        return bool(pieces)

    def build(self, **extra: Any) -> Answer:
        return super().build(**extra, **self.calls.answer_fields())

    def chunk(self, payload: Mapping[str, Any], at: float | None, message_key: str) -> None:
        f = self.fields
        if isinstance(payload.get("id"), str) and payload["id"]:  # Azure's first chunk has an empty id
            f.setdefault("response_id", payload["id"][:MAX_NAME_CHARS])
        if isinstance(payload.get("provider"), str):
            f["upstream_provider"] = payload["provider"][:MAX_NAME_CHARS]
        usage = payload.get("usage")
        x_groq = payload.get("x_groq")
        if isinstance(usage, Mapping):
            f["usage"] = usage
        elif isinstance(x_groq, Mapping) and isinstance(x_groq.get("usage"), Mapping) and "usage" not in f:
            f["usage"] = x_groq["usage"]
        choices = payload.get("choices")
        carried_output = False
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, Mapping):
                continue
            part = choice.get(message_key)
            if isinstance(part, Mapping):
                content = text_of(part.get("content")) + text_of(part.get("refusal"))
                reasoning = "".join(text_of(part.get(name)) for name in REASONING_FIELDS)
                tool_calls = self._tool_calls(part.get("tool_calls"), at, message_key)
                if content:
                    self._keep(self.parts, content)
                if reasoning:
                    self._keep(self.reasoning, reasoning)
                if content or tool_calls:
                    f.setdefault("first_answer_at", at)
                if reasoning:
                    f["reasoning_streamed"] = True
                carried_output = carried_output or bool(content or reasoning or tool_calls)
            if choice.get("finish_reason"):
                f["finish_reason"] = name_of(choice["finish_reason"])
        if carried_output:
            self.output_events += 1
            f.setdefault("first_output_at", at)
            f["last_output_at"] = at


class EventReader(common.EventReader):
    """A stream's events in order, up to an error, an unreadable event or `[DONE]` (what comes after is not read)."""

    ends_at_done = True

    def __init__(self) -> None:
        super().__init__(_Builder())

    def take(self, payload: Mapping[str, Any], event: SseEvent) -> None:
        error = error_in(payload, event.event)
        self._builder.chunk(payload, event.arrived_at, "delta")
        if error is not None:
            self.ending = {"error": error}


def read_body(record: WireRecord, body: Mapping[str, Any]) -> Answer:
    """A whole JSON answer (no stream): its text, usage and finish; its time is when its last byte came."""
    builder = _Builder()
    error = error_in(body)
    builder.chunk(body, record.last_byte_at, "message")
    return builder.build(error=error, done=error is None and bool(body.get("choices")))


def tokens(usage: Mapping[str, Any] | None, problems: list[str]) -> Tokens:
    """The counts in a usage object (problems noted for values that make no sense), and the cost it reports."""
    cached_tokens = usage_count(usage, ("prompt_tokens_details", "cached_tokens"), problems)
    if cached_tokens is None:  # Together puts it beside the other counts
        cached_tokens = usage_count(usage, ("cached_tokens",), problems)
    return Tokens(
        input_tokens=usage_count(usage, ("prompt_tokens",), problems),
        output_tokens=usage_count(usage, ("completion_tokens",), problems),
        cached_tokens=cached_tokens,
        reasoning_tokens=usage_count(usage, ("completion_tokens_details", "reasoning_tokens"), problems),
        reported_cost_usd=provider_cost(usage, problems),
    )
