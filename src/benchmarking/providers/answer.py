"""What the bytes of an answer say: when its first and last tokens came, its text, usage, how it ended, any error.

Read from the recorded wire (see wire.py) after the request, the same way for every SDK and every server: what a
provider sent is what is stored, whatever an SDK skips, merges or fails to parse.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from .wire import WireRecord, json_object, sse_events

# Delta fields that carry tokens the model generated. Reasoning comes under either name depending on the server.
REASONING_FIELDS = ("reasoning", "reasoning_content")


@dataclass(frozen=True)
class Answer:
    """One answer, read from its bytes; times are time.perf_counter() seconds, None where nothing came."""

    first_output_at: float | None = None  # first content, reasoning, refusal or tool-call delta
    first_answer_at: float | None = None  # first content, refusal or tool-call delta (not reasoning)
    last_output_at: float | None = None
    output_events: int = 0
    text: str = ""  # the visible answer: content, and a refusal's text
    reasoning_text: str = ""  # kept only to be counted by a server's tokenizer; not stored
    reasoning_streamed: bool = False
    usage: Mapping[str, Any] | None = None
    response_id: str | None = None
    finish_reason: str | None = None
    done: bool = False  # the stream's closing `data: [DONE]` came
    upstream_provider: str | None = None  # OpenRouter: the provider that served the request
    error: Mapping[str, Any] | None = None  # an error the provider put inside the answer (HTTP 200)
    plain_json: bool = False  # a stream was asked for and a plain JSON body came
    unreadable: str | None = None  # the first event whose data is not a JSON object, where the answer broke off

    @property
    def has_output(self) -> bool:
        return self.output_events > 0

    @property
    def complete(self) -> bool:
        """The model said it finished (a finish_reason): `[DONE]` alone ends a stream, it does not finish the answer
        (a llama-cpp-python server interrupting a generation sends a token or two and `[DONE]`)."""
        return self.finish_reason is not None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def error_in(payload: Mapping[str, Any], event: str | None = None) -> Mapping[str, Any] | None:
    """The error a chunk or body carries, in any of the shapes seen: `{"error": {...}}` (OpenAI, OpenRouter, Groq's
    `event: error`) or a top-level `{"object": "error", "message": ...}` (older vLLM). None if it carries none."""
    error = payload.get("error")
    if isinstance(error, Mapping) and error:
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    if payload.get("object") == "error" or event == "error":
        return {k: v for k, v in payload.items() if k != "object"} or {"message": "error event without details"}
    return None


class _Builder:
    """Accumulates an Answer chunk by chunk (a chunk: one event's JSON, or the whole body when not streamed)."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.output_events = 0

    def chunk(self, payload: Mapping[str, Any], at: float | None, message_key: str) -> None:
        f = self.fields
        if isinstance(payload.get("id"), str) and payload["id"]:  # Azure's first chunk has an empty id
            f.setdefault("response_id", payload["id"])
        if isinstance(payload.get("provider"), str):
            f["upstream_provider"] = payload["provider"]
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
                content = _text(part.get("content")) + _text(part.get("refusal"))
                reasoning = "".join(_text(part.get(name)) for name in REASONING_FIELDS)
                tool_calls = bool(part.get("tool_calls"))
                if content:
                    self.parts.append(content)
                if reasoning:
                    self.reasoning.append(reasoning)
                if content or tool_calls:
                    f.setdefault("first_answer_at", at)
                if reasoning:
                    f["reasoning_streamed"] = True
                carried_output = carried_output or bool(content or reasoning or tool_calls)
            if choice.get("finish_reason"):
                f["finish_reason"] = str(choice["finish_reason"])
        if carried_output:
            self.output_events += 1
            f.setdefault("first_output_at", at)
            f["last_output_at"] = at

    def build(self, **extra: Any) -> Answer:
        return Answer(**self.fields, **extra, output_events=self.output_events, text="".join(self.parts),
                      reasoning_text="".join(self.reasoning))


def read_stream(record: WireRecord) -> Answer:
    """A streamed answer: every event with data, in order, up to an error or `[DONE]`."""
    events = sse_events(record)
    if not events or record.content_type == "application/json":
        body = json_object(record.body.decode("utf-8", errors="replace"))
        if body is not None:
            return replace(read_body(record, body), plain_json=True)
    builder = _Builder()
    for event in events:
        if event.data.strip() == "[DONE]":
            return builder.build(done=True)
        payload = json_object(event.data)
        if payload is None:  # what no SDK can read either: the answer is broken from here on
            return builder.build(unreadable=event.data[:80])
        error = error_in(payload, event.event)
        if error is not None:
            builder.chunk(payload, event.arrived_at, "delta")
            return builder.build(error=error)
        builder.chunk(payload, event.arrived_at, "delta")
    return builder.build()


def read_body(record: WireRecord, body: Mapping[str, Any] | None = None) -> Answer:
    """A whole JSON answer (no stream): its text, usage and finish; its time is when its last byte came."""
    if body is None:
        body = json_object(record.body.decode("utf-8", errors="replace")) or {}
    builder = _Builder()
    error = error_in(body)
    builder.chunk(body, record.last_byte_at, "message")
    return builder.build(error=error, done=error is None and bool(body.get("choices")))
