"""OpenAI's Responses API (`POST /responses`): the request body, the answer's typed events (`response.*`, or a whole
body's `output` items) read into an Answer, and its failure shapes: `response.failed`, an `error` event, and
`response.incomplete` (a success cut short when its reason is max_output_tokens, as Chat Completions' `length` is;
a failure for any other reason).

Spoken by OpenAI (OPENAI_API=responses) and by any endpoint declared with `api = "responses"` (vLLM, LiteLLM, ...).
"""

from __future__ import annotations

from dataclasses import replace
import json
from typing import TYPE_CHECKING, Any, ContextManager, Mapping

from ...dialogue import Exchange, exchange_of
from ..answer import MAX_NAME_CHARS, Answer, Tokens, name_of, request_id_of, text_of
from ..failures import Failure, known_secrets, scrub
from ..numbers import usage_count
from ..sse import SseEvent
from ..wire import WireRecord
from . import PromptInput
from . import common
from .chat_completions import SCHEMA_NAME
from .common import Accumulated, error_in
from .tool_calls import ToolCalls, replayed_ids

if TYPE_CHECKING:
    from ...settings.model import ProviderSettings

API = "responses"

# The API refuses a max_output_tokens below 16 (HTTP 400; CreateResponse in OpenAI's OpenAPI spec).
MIN_OUTPUT_TOKENS = 16

# Events whose delta is output, and what kind: the visible answer, a tool call's arguments, or reasoning.
ANSWER_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta"})
TOOL_DELTAS = frozenset({"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"})
# Tool call items, the events that carry one (and whether it is whole there), and those that close its arguments.
CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})
CALL_ITEM_EVENTS = {"response.output_item.added": False, "response.output_item.done": True}
ARGUMENTS_DONE = frozenset({"response.function_call_arguments.done", "response.custom_tool_call_input.done"})
REASONING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
# The events that end a response, and the finish_reason each gives (response.incomplete: its reason).
ENDINGS = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}
# An incomplete response that is an answer all the same: cut at the output cap the request set.
CUT_SUCCESS = "max_output_tokens"

REHEARSAL_STREAM = b"".join(
    b"event: " + event["type"].encode() + b"\ndata: " + json.dumps(event).encode() + b"\n\n"
    for event in (
        {"type": "response.created", "sequence_number": 0,
         "response": {"id": "r", "object": "response", "status": "in_progress", "output": []}},
        {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "m", "output_index": 0,
         "content_index": 0, "delta": "ok"},
        {"type": "response.completed", "sequence_number": 2,
         "response": {"id": "r", "object": "response", "status": "completed", "output": [],
                      "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}},
    )
)


def auth_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def _input_of(exchange: Exchange) -> list[dict[str, Any]]:
    """A conversation's `input` items: messages; an answer's tool calls as function_call items after its text; a
    tool's result as a function_call_output."""
    items: list[dict[str, Any]] = []
    for message, ids in zip(exchange.messages, replayed_ids(exchange.messages)):
        if message.role == "tool":
            items.append({"type": "function_call_output", "call_id": ids[0], "output": message.content})
            continue
        if message.content or not message.tool_calls:
            items.append({"role": message.role, "content": message.content})
        items.extend({"type": "function_call", "call_id": call_id, "name": call.name, "arguments": call.arguments}
                     for call, call_id in zip(message.tool_calls, ids))
    return items


def tool_of(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool in OpenAI's function-tool form (Chat Completions'), in this API's: its function's fields beside its
    type. A tool of another form goes as it is."""
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, Mapping):
        return dict(tool)
    return {"type": "function", **{key: function[key] for key in ("name", "description", "parameters", "strict")
                                   if key in function}}


def tool_choice_of(choice: str | Mapping[str, Any]) -> str | dict[str, Any]:
    """'auto', 'required', 'none' as they are; a named function ({"type": "function", "function": {"name"}}) as
    this API names it."""
    if isinstance(choice, str):
        return choice
    function = choice.get("function")
    if choice.get("type") == "function" and isinstance(function, Mapping) and "name" in function:
        return {"type": "function", "name": function["name"]}
    return dict(choice)


def request(model: str, prompt: PromptInput, max_tokens: int, stream: bool, usage_request: str) -> dict[str, Any]:
    """The SDK's arguments for one request: leading system messages become `instructions`, the rest `input` items.
    The API always sends usage (usage_request is not needed); `store: false` leaves nothing kept in the account."""
    exchange = exchange_of(prompt)
    leading = 0
    while leading < len(exchange.messages) and exchange.messages[leading].role == "system":
        leading += 1
    kwargs: dict[str, Any] = {
        "model": model,
        "input": _input_of(replace(exchange, messages=exchange.messages[leading:])),
        "max_output_tokens": max(max_tokens, MIN_OUTPUT_TOKENS),
        "stream": stream,
        "store": False,
    }
    if leading:
        kwargs["instructions"] = "\n\n".join(message.content for message in exchange.messages[:leading])
    if exchange.tools:
        kwargs["tools"] = [tool_of(tool) for tool in exchange.tools]
    if exchange.tool_choice is not None:
        kwargs["tool_choice"] = tool_choice_of(exchange.tool_choice)
    if exchange.schema is not None:
        kwargs["text"] = {"format": {"type": "json_schema", "name": SCHEMA_NAME, "schema": dict(exchange.schema),
                                     "strict": True}}
    return kwargs


def open_stream(sdk: Any, request: Mapping[str, Any]) -> ContextManager[Any]:
    """The request, made by the SDK; its answer's bytes are read off unparsed (the wire records them)."""
    return sdk.responses.with_streaming_response.create(**request)


def _error_of(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """An `error` event's error: nested (`{"error": {...}}`, as OpenAI streams it) or the event's own fields."""
    inner = payload.get("error")
    if isinstance(inner, Mapping) and inner:
        return inner
    fields = {k: v for k, v in payload.items() if k in ("code", "message", "param", "status")}
    return fields or {"message": "error event without details"}


class _Builder(Accumulated):
    """Accumulates an Answer event by event, or from a whole response object when not streamed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = ToolCalls()

    def build(self, **extra: Any) -> Answer:
        return super().build(**extra, **self.calls.answer_fields())

    def delta(self, kind: str, text: str, at: float | None) -> None:
        if not text:
            return
        f = self.fields
        if kind in REASONING_DELTAS:
            self._keep(self.reasoning, text)
            # A summary is not the reasoning: the reasoning tokens behind it stay hidden from the decode.
            f["reasoning_streamed"] = f.get("reasoning_streamed", False) or kind == "response.reasoning_text.delta"
        else:
            if kind in ANSWER_DELTAS:
                self._keep(self.parts, text)
            f.setdefault("first_answer_at", at)
        self._output(at)

    def _output(self, at: float | None) -> None:
        self.output_events += 1
        self.fields.setdefault("first_output_at", at)
        self.fields["last_output_at"] = at

    def call_item(self, position: Any, item: Mapping[str, Any], at: float | None, whole: bool) -> None:
        """A function (or custom) tool call item: where it begins (its name, its id: output, as a Chat Completions
        call's first piece is), or whole (its arguments: output too, unless they came in pieces)."""
        named = dict(name=item.get("name"), call_id=item.get("call_id"),
                     arguments=item.get("arguments", item.get("input")))
        if not whole:
            self.calls.piece(position, at, **named)
        elif not self.calls.whole(position, at, **named):
            return
        self.fields.setdefault("first_answer_at", at)
        self._output(at)

    def arguments_done(self, position: Any, arguments: Any, at: float | None) -> None:
        """`response.function_call_arguments.done`: the arguments whole; output only where no piece of them came."""
        if self.calls.whole(position, at, arguments=arguments):
            self.fields.setdefault("first_answer_at", at)
            self._output(at)

    def response(self, response: Mapping[str, Any], ends: bool, named: str | None = None) -> None:
        """A response object (an event's `response`, or a whole body): its id; and, where it ends the response (an
        ending event, whose name says a status, or a whole body), its usage and how it ended: by its own status, the
        same rule for both."""
        f = self.fields
        if isinstance(response.get("id"), str) and response["id"]:
            f.setdefault("response_id", response["id"][:MAX_NAME_CHARS])
        if not ends:  # created, in_progress: what they say of usage is not the answer's
            return
        f["usage"] = response["usage"] if isinstance(response.get("usage"), Mapping) else None
        status = response.get("status", named)  # an ending event without one: the status its name says
        if status == "incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, Mapping) else None
            f["finish_reason"] = name_of(reason) if reason else "incomplete"
        elif status is not None:  # completed, failed; or cancelled, in_progress, a number: judged incomplete
            f["finish_reason"] = name_of(status)
        if status == "failed":
            f["error"] = error_in(response) or {"message": "the response failed"}

    def output(self, response: Mapping[str, Any], at: float | None) -> None:
        """A whole response's `output` items (no stream): each part's text, as one output event at `at`."""
        items = response.get("output")
        for place, item in enumerate(items if isinstance(items, list) else ()):
            if not isinstance(item, Mapping):
                continue
            kind = item.get("type")
            if kind == "message":
                for part in item.get("content") or ():
                    if isinstance(part, Mapping):
                        self.delta("response.output_text.delta", text_of(part.get("text")) +
                                   text_of(part.get("refusal")), at)
            elif kind == "reasoning":
                for name in ("summary", "content"):
                    for part in item.get(name) or ():
                        if isinstance(part, Mapping):
                            self.delta("response.reasoning_text.delta", text_of(part.get("text")), at)
            elif kind in CALL_ITEMS:
                self.calls.whole(place, at, item.get("name"), item.get("call_id"),
                                 item.get("arguments", item.get("input")))
                self.delta("response.function_call_arguments.delta",
                           text_of(item.get("arguments")) or text_of(item.get("input")) or kind, at)


class EventReader(common.EventReader):
    """A stream's events in order, up to the one that ends the response (or an error, an unreadable event)."""

    ends_at_done = True  # not the API's, but a compatible server may end with it

    def __init__(self) -> None:
        super().__init__(_Builder())

    def take(self, payload: Mapping[str, Any], event: SseEvent) -> None:
        kind = payload.get("type") if isinstance(payload.get("type"), str) else event.event or ""
        at = event.arrived_at
        if kind in TOOL_DELTAS:
            self._builder.calls.piece(payload.get("output_index"), at, arguments=payload.get("delta"))
        if kind in ANSWER_DELTAS or kind in TOOL_DELTAS or kind in REASONING_DELTAS:
            self._builder.delta(kind, text_of(payload.get("delta")), at)
        elif kind in CALL_ITEM_EVENTS:
            item = payload.get("item")
            if isinstance(item, Mapping) and item.get("type") in CALL_ITEMS:
                self._builder.call_item(payload.get("output_index"), item, at, CALL_ITEM_EVENTS[kind])
        elif kind in ARGUMENTS_DONE:
            self._builder.arguments_done(payload.get("output_index"), payload.get("arguments", payload.get("input")),
                                         at)
        elif kind == "error":
            self.ending = {"error": _error_of(payload)}
        elif isinstance(payload.get("response"), Mapping):  # created, in_progress, and the endings
            self._builder.response(payload["response"], kind in ENDINGS, ENDINGS.get(kind))
            if kind in ENDINGS:
                self.ending = {"done": True}


def read_body(record: WireRecord, body: Mapping[str, Any]) -> Answer:
    """A whole response object (no stream): its output, usage and status; its time is when its last byte came."""
    builder = _Builder()
    error = error_in(body)
    if error is not None and body.get("status") != "failed":  # an error body, not a response
        return builder.build(error=error)
    builder.output(body, record.last_byte_at)
    builder.response(body, ends=True)
    return builder.build(done=True)


def tokens(usage: Mapping[str, Any] | None, problems: list[str]) -> Tokens:
    """The counts in `response.usage` (input includes the cached part; output includes reasoning)."""
    return Tokens(
        input_tokens=usage_count(usage, ("input_tokens",), problems),
        output_tokens=usage_count(usage, ("output_tokens",), problems),
        cached_tokens=usage_count(usage, ("input_tokens_details", "cached_tokens"), problems),
        cache_write_tokens=usage_count(usage, ("input_tokens_details", "cache_write_tokens"), problems),
        reasoning_tokens=usage_count(usage, ("output_tokens_details", "reasoning_tokens"), problems),
    )


def judge(record: WireRecord | None, answer: Answer, error: BaseException | None, settings: ProviderSettings,
          model: str, endpoint: str) -> Failure | None:
    """How the attempt failed, if it did: as every dialect judges, and a response whose status is not completed
    fails (incomplete for any reason but its output cap; cancelled, in progress, none at all)."""
    failure = common.judge(record, answer, error, settings, model, endpoint)
    if failure is not None and (failure.error_type != "empty_answer" or answer.finish_reason is None):
        return failure
    if answer.finish_reason in ("completed", CUT_SUCCESS):
        return failure
    status = f"ended {answer.finish_reason}" if answer.finish_reason else "carried no status"
    return Failure("incomplete", None, scrub(f"the response {status}: it did not complete",
                                             known_secrets(settings)), request_id_of(record, answer))
