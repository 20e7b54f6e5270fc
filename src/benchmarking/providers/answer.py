"""What the bytes of an answer say: when its first and last tokens came, its text, usage, how it ended, any error.

Read from the recorded wire (see wire.py) after the request, the same way for every SDK and every server: what a
provider sent is what is stored, whatever an SDK skips, merges or fails to parse. Read piece by piece, keeping only
what an Answer keeps: text and reasoning up to a cap, one event and a plain body up to a bound.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..measurement import RESPONSE_TEXT_CAP_BYTES
from .sse import MAX_EVENT_BYTES, SseSplitter
from .wire import WireRecord, json_object

# Delta fields that carry tokens the model generated. Reasoning comes under either name depending on the server.
REASONING_FIELDS = ("reasoning", "reasoning_content")
# Characters of text, and of reasoning, kept: enough to fill the stored text's cap (a character is 1 to 4 bytes).
KEPT_CHARS = RESPONSE_TEXT_CAP_BYTES
JOIN_PARTS = 1024  # kept pieces of text are joined into one this often
# A name the provider gives (an id, a finish_reason, an upstream provider) is kept up to this many characters.
MAX_NAME_CHARS = 256


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
    text_truncated: bool = False  # the text went past what is kept (KEPT_CHARS)
    reasoning_truncated: bool = False  # so did the reasoning
    too_large: str | None = None  # what was too large to read (an event, a plain body), where the answer broke off

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


def _name(value: Any) -> str:
    """A name as sent, or a short form of what came instead of one (a number, a list nested deep)."""
    try:
        text = value if isinstance(value, str) else str(value)
    except (RecursionError, ValueError):  # nested too deep; an int too long to print
        text = f"a {type(value).__name__}"
    return text[:MAX_NAME_CHARS]


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
        self.kept = {id(self.parts): 0, id(self.reasoning): 0}  # characters in each
        self.cut: set[int] = set()  # which of them went past KEPT_CHARS
        self.output_events = 0

    def _keep(self, into: list[str], text: str) -> None:
        room = KEPT_CHARS - self.kept[id(into)]
        if len(text) > room:
            text = text[:max(room, 0)]
            self.cut.add(id(into))
        if text:
            into.append(text)
            self.kept[id(into)] += len(text)
            if len(into) >= JOIN_PARTS:  # a million one-character events would cost 50 bytes a character
                into[:] = ["".join(into)]

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
                content = _text(part.get("content")) + _text(part.get("refusal"))
                reasoning = "".join(_text(part.get(name)) for name in REASONING_FIELDS)
                tool_calls = bool(part.get("tool_calls"))
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
                f["finish_reason"] = _name(choice["finish_reason"])
        if carried_output:
            self.output_events += 1
            f.setdefault("first_output_at", at)
            f["last_output_at"] = at

    def build(self, **extra: Any) -> Answer:
        return Answer(**self.fields, **extra, output_events=self.output_events, text="".join(self.parts),
                      reasoning_text="".join(self.reasoning), text_truncated=id(self.parts) in self.cut,
                      reasoning_truncated=id(self.reasoning) in self.cut)


class AnswerReader:
    """Reads one answer's bytes as the wire holds them (WireRecord.digest), then gives the Answer they make.

    Streamed: events in order, up to an error, an unreadable event or `[DONE]` (what comes after is not read); a
    plain JSON body instead of a stream is read as one. Not streamed: the body as one JSON object. Held meanwhile: the
    events' Answer, the body's first MAX_EVENT_BYTES while it may still be a plain body, and one event at most.
    """

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self._start(restarts=0)

    def _start(self, restarts: int) -> None:
        self._restarts = restarts
        self._splitter = SseSplitter()
        self._builder = _Builder()
        self._ending: dict[str, Any] | None = None  # how the events ended, once they did
        self._events = 0
        self._head: list[bytes] | None = []  # the body so far, while it may be a plain JSON body
        self._head_bytes = 0
        self._head_over = False  # the body passed MAX_EVENT_BYTES before it was known to be a stream

    def take(self, record: WireRecord) -> None:
        """Read the pieces the record holds, and drop them."""
        if record.restarts != self._restarts:  # a redirect: the body read so far was not the answer
            self._start(record.restarts)
        pieces, arrived = record.take()
        json_type = record.content_type == "application/json"
        for piece, at in zip(pieces, arrived):
            if self._head is not None:
                self._head_bytes += len(piece)
                self._head.append(piece)
                if self._head_bytes > MAX_EVENT_BYTES:
                    self._head, self._head_over = None, True
            if self.stream and self._ending is None:  # after the end, the rest is not read
                self._read_events(self._splitter.feed(piece, at))
                if self._events and not json_type:
                    self._head = None  # a stream: never a plain body
        del pieces

    def _read_events(self, events: list[Any]) -> None:
        for event in events:
            self._events += 1
            if self._ending is not None:
                continue
            if event.oversized:
                self._ending = {"too_large": f"an event of more than {MAX_EVENT_BYTES // 2 ** 20} MiB"}
                continue
            if event.data.strip() == "[DONE]":
                self._ending = {"done": True}
                continue
            payload = json_object(event.data)
            if payload is None:  # what no SDK can read either: the answer is broken from here on
                self._ending = {"unreadable": event.data[:80]}
                continue
            error = error_in(payload, event.event)
            self._builder.chunk(payload, event.arrived_at, "delta")
            if error is not None:
                self._ending = {"error": error}

    def answer(self, record: WireRecord) -> Answer:
        """The Answer the whole body makes (what the record still holds is read first)."""
        self.take(record)
        if self.stream:
            self._read_events(self._splitter.close())
        body = self._plain_body()
        too_large = {"too_large": f"a body of more than {MAX_EVENT_BYTES // 2 ** 20} MiB"
                                  + (" that is not a stream" if self.stream else "")}
        if not self.stream:
            return Answer(**too_large) if self._head_over else _read_body(record, body or {})
        if body is not None and (not self._events or record.content_type == "application/json"):
            return replace(_read_body(record, body), plain_json=True)
        if self._head_over and not self._events:
            return Answer(**too_large)
        return self._builder.build(**(self._ending or {}))

    def _plain_body(self) -> Mapping[str, Any] | None:
        if self._head is None:
            return None
        return json_object(b"".join(self._head).decode("utf-8", errors="replace"))


def _read_body(record: WireRecord, body: Mapping[str, Any]) -> Answer:
    """A whole JSON answer (no stream): its text, usage and finish; its time is when its last byte came."""
    builder = _Builder()
    error = error_in(body)
    builder.chunk(body, record.last_byte_at, "message")
    return builder.build(error=error, done=error is None and bool(body.get("choices")))
