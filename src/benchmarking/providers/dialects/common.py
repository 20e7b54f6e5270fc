"""What every dialect shares: a stream's events read in order up to the one that ends them, an answer's text kept up
to a cap as it streams, an error sent inside an HTTP 200 typed by its status or its words, how an attempt that
came back is judged. (An answer's tool calls are read in tool_calls.py.)"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..answer import JOIN_PARTS, KEPT_CHARS, Answer, request_id_of
from ..failures import Failure, classify, kind_for_status, known_secrets, scrub, settings_hint
from ..json_text import json_object
from ..sse import MAX_EVENT_BYTES, SseEvent
from ..wire import WireRecord

if TYPE_CHECKING:
    from ...settings.model import ProviderSettings


class EventReader:
    """A stream's events in order, up to the one that ends them: an event too large or not a JSON object ends them
    here; what each readable event means is the dialect's (`take`, which may set `ending`). What comes after the
    ending is counted, not read."""

    ends_at_done = False  # `data: [DONE]` ends the events (Chat Completions, and servers compatible with it)

    def __init__(self, builder: Any) -> None:
        self._builder = builder
        self.ending: dict[str, Any] | None = None  # how the events ended, once they did
        self.events = 0

    def read(self, events: list[SseEvent]) -> None:
        for event in events:
            self.events += 1
            if self.ending is not None:
                continue
            if event.oversized:
                self.ending = {"too_large": f"an event of more than {MAX_EVENT_BYTES // 2 ** 20} MiB"}
            elif self.ends_at_done and event.data.strip() == "[DONE]":
                self.ending = {"done": True}
            elif (payload := json_object(event.data)) is None:  # what no SDK can read either: broken from here on
                self.ending = {"unreadable": event.data[:80]}
            else:
                self.take(payload, event)

    def take(self, payload: Mapping[str, Any], event: SseEvent) -> None:
        raise NotImplementedError

    def answer(self) -> Answer:
        return self._builder.build(**(self.ending or {}))


class Accumulated:
    """An Answer as it accumulates, event by event: the fields read so far, the text and reasoning kept, the output
    events counted; a dialect adds how its events read."""

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

    def build(self, **extra: Any) -> Answer:
        return Answer(**self.fields, **extra, output_events=self.output_events, text="".join(self.parts),
                      reasoning_text="".join(self.reasoning), text_truncated=id(self.parts) in self.cut,
                      reasoning_truncated=id(self.reasoning) in self.cut)


# Words in an error's code or type, and the error_type each means, checked in this order.
_CODE_WORDS = (
    ("rate_limit", "rate_limit"), ("rate-limit", "rate_limit"), ("too_many", "rate_limit"), ("quota", "rate_limit"),
    ("auth", "auth"), ("api_key", "auth"), ("permission", "auth"), ("forbidden", "auth"),
    ("not_found", "not_found"), ("does_not_exist", "not_found"),
    ("invalid", "bad_request"), ("bad_request", "bad_request"), ("context_length", "bad_request"),
    ("server", "server"), ("internal", "server"), ("overloaded", "server"), ("unavailable", "server"),
    ("timeout", "server"), ("upstream", "server"),
)


def _status_in(error: Mapping[str, Any]) -> int | None:
    for key in ("status_code", "status", "code"):
        value = error.get(key)
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == 3:
            value = int(value)  # only ASCII: int() reads '٥٠٣' as 503, and '²' not at all
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _message_in(error: Mapping[str, Any]) -> str:
    message = error.get("message") or error.get("detail") or error.get("error")
    return str(message) if message else str(dict(error))


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


def in_body_failure(
    error: Mapping[str, Any], settings: ProviderSettings, model: str, request_id: str | None
) -> Failure:
    """An error a provider sent inside an HTTP 200: typed by its own status, else by the words of its code."""
    status = _status_in(error)
    if status is not None:
        kind = kind_for_status(status)
    else:
        words = " ".join(str(error.get(key, "")) for key in ("code", "type")).lower()
        kind = next((kind for word, kind in _CODE_WORDS if word in words), "server")
    code = error.get("code") if error.get("code") not in (None, status) else None
    label = f"HTTP 200 carrying error {status if status is not None else ''}{f' {code}' if code else ''}".rstrip()
    message = f"{label}: {_message_in(error)}" + settings_hint(kind, settings, model)
    return Failure(kind, status, scrub(message, known_secrets(settings)), request_id)


def broken(record: WireRecord | None, answer: Answer, error: BaseException | None, settings: ProviderSettings,
           model: str, endpoint: str, in_body: Callable[..., Failure] | None = None) -> Failure | None:
    """The failures every API shares, before what its answer says is judged: an HTTP error status, an error inside
    the answer (read by `in_body`, the dialect's), an error the SDK raised, an answer too large or unreadable."""
    if error is not None and isinstance(getattr(error, "status_code", None), int):
        return classify(error, settings, model, endpoint)  # an HTTP error status
    request_id = request_id_of(record, answer)
    if answer.error is not None:
        return (in_body or in_body_failure)(answer.error, settings, model, request_id)
    if error is not None:
        failure = classify(error, settings, model, endpoint)
        return failure if failure.request_id else replace(failure, request_id=request_id)
    if answer.too_large is not None:
        return Failure("bad_response", None, f"unreadable response: {answer.too_large}, more than is read",
                       request_id)
    if answer.unreadable is not None:
        return Failure("bad_response", None, scrub(f"unreadable response: not a JSON object: {answer.unreadable}",
                                                   known_secrets(settings)), request_id)
    return None


def judge(record: WireRecord | None, answer: Answer, error: BaseException | None, settings: ProviderSettings,
          model: str, endpoint: str) -> Failure | None:
    """How the attempt failed, if it did: a request that did not complete is a failure, never a success."""
    failure = broken(record, answer, error, settings, model, endpoint)
    if failure is not None:
        return failure
    request_id = request_id_of(record, answer)
    if answer.finish_reason == "error":
        return Failure("server", None, "the provider ended the answer with finish_reason 'error'", request_id)
    if settings.stream and answer.plain_json:
        return Failure("bad_response", None, "a stream was asked for, and a plain JSON answer came", request_id)
    if not answer.has_output:
        return Failure("empty_answer", None, "the answer had no output (no content, reasoning, refusal or tool "
                       f"call; finish_reason {answer.finish_reason!r})", request_id)
    if settings.stream and not answer.complete:
        if answer.done:
            return Failure("incomplete", None, "the stream ended with [DONE] but no finish_reason: the answer did not "
                           "complete", request_id)
        return Failure("incomplete", None, "stream ended before the answer was complete", request_id)
    return None
