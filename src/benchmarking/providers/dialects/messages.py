"""The Anthropic Messages dialect: the request body, the answer's named events (`content_block_delta` carries the
output, `message_start` and `message_delta` the usage, `message_stop` the end) or a whole body's `content` blocks
read into an Answer, the `event: error` a stream may carry inside an HTTP 200, and how an attempt is judged.

Spoken by Anthropic, and by any server that serves POST /v1/messages (a proxy, LiteLLM, vLLM).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, ContextManager, Mapping

from ...dialogue import Exchange, Message, ToolCall, exchange_of, tool_name
from ..answer import MAX_NAME_CHARS, Answer, Tokens, name_of, request_id_of, text_of
from ..failures import Failure, kind_for_status, known_secrets, scrub, settings_hint
from ..numbers import MAX_COUNT, usage_count
from ..sse import SseEvent
from ..wire import WireRecord
from . import PromptInput, common
from .common import Accumulated
from .tool_calls import ToolCalls, position_of, replayed_ids

if TYPE_CHECKING:
    from ...settings.model import ProviderSettings

API = "messages"

# The version the installed anthropic SDK (2.17.0) sends; the warm-up and `check` send the same.
ANTHROPIC_VERSION = "2026-10-21"

# An error's type, as Anthropic names it, and the HTTP status it comes with when it is not inside a stream
# (https://docs.claude.com/en/api/errors): inside one it is typed as that status is, so overloaded_error (529) is
# retried like any 5xx. A type not known here is taken for a server error.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

REHEARSAL_STREAM = b"".join(
    b"event: " + event["type"].encode() + b"\ndata: " + json.dumps(event).encode() + b"\n\n"
    for event in (
        {"type": "message_start", "message": {"id": "msg_r", "type": "message", "role": "assistant", "content": [],
                                              "model": "r", "stop_reason": None, "stop_sequence": None,
                                              "usage": {"input_tokens": 1, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 1}},
        {"type": "message_stop"},
    )
)


def auth_headers(api_key: str) -> dict[str, str]:
    """As the anthropic SDK 2.17.0 sends its key (a bearer token, no longer x-api-key) and its API version."""
    return {"Authorization": f"Bearer {api_key}", "anthropic-version": ANTHROPIC_VERSION}


def request(model: str, prompt: PromptInput, max_tokens: int, stream: bool, usage_request: str) -> dict[str, Any]:
    """The SDK's arguments: the prompt's system messages go in `system` (the API takes no system role), the rest in
    `messages`; an Exchange's tool calls, results, tools and schema in Anthropic's forms. Usage comes in every
    answer unasked."""
    exchange = exchange_of(prompt)
    turns = exchange.plain
    if turns is None:
        return _exchange_request(model, exchange, max_tokens, stream)
    system = [content for role, content in turns if role == "system"]
    kwargs: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": role, "content": content} for role, content in turns if role != "system"],
        "stream": stream,
    }
    if system:
        kwargs["system"] = "\n\n".join(system)
    return kwargs


_EPHEMERAL = {"type": "ephemeral"}
_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def _input_of(call: ToolCall) -> Any:
    """A call's arguments as the object tool_use's `input` must be: {} where they do not parse as one."""
    try:
        arguments = call.parsed_arguments()
    except ValueError:
        return {}
    return arguments if isinstance(arguments, dict) else {}


def _blocks(message: Message, ids: tuple[str, ...]) -> list[dict[str, Any]]:
    """A message as content blocks: its text (if any, or if it has nothing else), then its tool calls (with the ids
    they are replayed with)."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if (
        message.content or not message.tool_calls) else []
    return blocks + [{"type": "tool_use", "id": call_id, "name": call.name, "input": _input_of(call)}
                     for call, call_id in zip(message.tool_calls, ids)]


def _exchange_request(model: str, exchange: Exchange, max_tokens: int, stream: bool) -> dict[str, Any]:
    """An Exchange in the Messages API's forms: tool results are user messages of tool_result blocks (consecutive
    results in one); the cache breakpoint (`cache_control`) goes on the last block of the message it names."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    results_open = False  # the last message holds tool results, which a next result joins
    for number, (message, ids) in enumerate(zip(exchange.messages, replayed_ids(exchange.messages))):
        cached = number == exchange.cache_through
        if message.role == "system":
            system.append({"type": "text", "text": message.content, **({"cache_control": dict(_EPHEMERAL)} if cached
                                                                        else {})})
            continue
        if message.role == "tool":
            blocks = [{"type": "tool_result", "tool_use_id": ids[0], "content": message.content}]
        else:
            blocks = _blocks(message, ids)
        if cached:
            blocks[-1]["cache_control"] = dict(_EPHEMERAL)
        if message.role == "tool" and results_open:
            messages[-1]["content"].extend(blocks)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        plain = message.role in ("user", "assistant") and not message.tool_calls and not cached
        messages.append({"role": role, "content": message.content if plain else blocks})
        results_open = message.role == "tool"
    kwargs: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages, "stream": stream}
    if system:
        cached_system = any("cache_control" in block for block in system)
        kwargs["system"] = system if cached_system else "\n\n".join(block["text"] for block in system)
    if exchange.tools:
        kwargs["tools"] = [_tool(tool) for tool in exchange.tools]
    if exchange.tool_choice is not None:
        kwargs["tool_choice"] = _choice(exchange.tool_choice)
    if exchange.schema is not None:  # structured output: the answer's text is the JSON (anthropic 2.17 takes it)
        kwargs["output_config"] = {"format": {"type": "json_schema", "schema": dict(exchange.schema)}}
    return kwargs


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool as Anthropic's: its parameters are the input_schema (an empty object if none)."""
    function = tool["function"]
    translated: dict[str, Any] = {"name": tool_name(tool)}
    if function.get("description"):
        translated["description"] = function["description"]
    translated["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return translated


def _choice(choice: str | Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's tool_choice as Anthropic's: auto, any (a call is required), none, or one tool by name."""
    if isinstance(choice, str):
        return dict(_CHOICES[choice])
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
    return {"type": "tool", "name": name}


def open_stream(sdk: Any, request: Mapping[str, Any]) -> ContextManager[Any]:
    """The request, made by the SDK; its answer's bytes are read off unparsed (the wire records them)."""
    return sdk.messages.with_streaming_response.create(**request)


def listed_models(body: Any) -> dict[str, str | None]:
    """One page of GET /v1/models ({"data": [{"id": ..., "retires_at": ...}]}): each model's names with its
    retirement date, its id and the alias without the id's date (claude-haiku-4-5 for claude-haiku-4-5-20251001),
    which the list does not name."""
    listed: dict[str, str | None] = {}
    for item in body["data"]:
        model_id, retires = str(item["id"]), item.get("retires_at")
        retires = retires if isinstance(retires, str) else None
        listed[model_id] = listed[re.sub(r"-\d{8}$", "", model_id)] = retires
    return listed


def next_page(body: Any) -> dict[str, object] | None:
    """The query of the listing's next page (20 a page: the next starts after the last id), or None."""
    if body.get("has_more") is not True or not isinstance(body.get("last_id"), str):
        return None
    return {"after_id": body["last_id"], "limit": 1000}


# The usage fields read (tokens()): only these are kept, so that usage objects of ever new names, one per event,
# cost no more memory or time than one.
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                "cache_creation", "output_tokens_details")


def _merged_usage(into: Mapping[str, Any] | None, usage: Any) -> Mapping[str, Any] | None:
    """message_delta's usage says the final counts of what it names (they are cumulative); the rest stays."""
    if not isinstance(usage, Mapping):
        return into
    known = {name: usage[name] for name in USAGE_FIELDS if usage.get(name) is not None}
    return {**(into or {}), **known} if known else into


class _MessagesBuilder(Accumulated):
    """Accumulates an Answer event by event, or from a whole body's content blocks. A tool_use block's call, at
    its block's index, is read from its content_block_start (id, name, input), its input_json_delta pieces (the
    arguments' text) and its content_block_stop (the arguments are complete)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = ToolCalls()
        self.open: set[int] = set()  # the indexes of tool_use blocks started and not yet stopped

    def block_start(self, index: Any, block: Any) -> None:
        position = position_of(index)
        if not isinstance(block, Mapping) or block.get("type") != "tool_use" or position is None:
            return
        self.calls.start(position, block.get("name"), block.get("id"), block.get("input"))
        self.open.add(position)  # kept or not (past the calls kept), its pieces are output and time its arguments

    def block_stop(self, index: Any, at: float | None) -> None:
        position = position_of(index)
        if position not in self.open:
            return
        self.open.discard(position)
        if self.calls.complete(position, at):  # no piece carried the call: its stop is its output
            self._output(at, answer=True)

    def delta(self, delta: Mapping[str, Any], at: float | None, index: Any = None) -> None:
        kind = delta.get("type")
        if kind == "text_delta":
            text = text_of(delta.get("text"))
            self._keep(self.parts, text)
        elif kind == "thinking_delta":
            text = text_of(delta.get("thinking"))
            self._keep(self.reasoning, text)
            if text:
                self.fields["reasoning_streamed"] = True
                self._output(at, answer=False)
            return
        elif kind == "input_json_delta":
            text = text_of(delta.get("partial_json"))
            if position_of(index) in self.open:  # a piece for a block never started (or stopped) is no call's
                self.calls.piece(index, at, arguments=text)
        else:  # signature_delta, citations_delta, and what comes next: no tokens of the answer
            return
        if text:
            self._output(at, answer=True)

    def build(self, **extra: Any) -> Answer:
        return super().build(**extra, **self.calls.answer_fields())

    def _output(self, at: float | None, answer: bool) -> None:
        if answer:
            self.fields.setdefault("first_answer_at", at)
        self.output_event(at)

    def message(self, message: Mapping[str, Any]) -> None:
        """message_start's message, or a whole body: its id and usage."""
        if isinstance(message.get("id"), str) and message["id"]:
            self.fields.setdefault("response_id", message["id"][:MAX_NAME_CHARS])
        self.fields["usage"] = _merged_usage(self.fields.get("usage"), message.get("usage"))

    def message_delta(self, payload: Mapping[str, Any]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, Mapping) and delta.get("stop_reason"):
            self.fields["finish_reason"] = name_of(delta["stop_reason"])
        self.fields["usage"] = _merged_usage(self.fields.get("usage"), payload.get("usage"))


class EventReader(common.EventReader):
    """A stream's events in order, up to `message_stop`, an error or an unreadable event (what follows is not read).
    Unknown event types are skipped, as the API asks of clients."""

    def __init__(self) -> None:
        super().__init__(_MessagesBuilder())

    def take(self, payload: Mapping[str, Any], event: SseEvent) -> None:
        self._event(payload, event.event, event.arrived_at)

    def _event(self, payload: Mapping[str, Any], name: str | None, at: float) -> None:
        b = self._builder
        kind = payload.get("type") if isinstance(payload.get("type"), str) else name
        if kind == "error" or name == "error":  # an event named error is one, whatever its data says it is
            error = payload.get("error")
            self.ending = {"error": error if isinstance(error, Mapping) and error else
                           {"message": name_of(error) if error else "error event without details"}}
        elif kind == "content_block_delta" and isinstance(payload.get("delta"), Mapping):
            b.delta(payload["delta"], at, payload.get("index"))
        elif kind == "content_block_start":
            b.block_start(payload.get("index"), payload.get("content_block"))
        elif kind == "content_block_stop":
            b.block_stop(payload.get("index"), at)
        elif kind == "message_start" and isinstance(payload.get("message"), Mapping):
            b.message(payload["message"])
        elif kind == "message_delta":
            b.message_delta(payload)
        elif kind == "message_stop":
            self.ending = {"done": True}


def read_body(record: WireRecord, body: Mapping[str, Any]) -> Answer:
    """A whole JSON answer (no stream): its content blocks, usage and stop reason; its time is its last byte's."""
    builder = _MessagesBuilder()
    at = record.last_byte_at
    error = body.get("error") if body.get("type") == "error" or "error" in body else None
    if (error is not None or body.get("type") == "error") and not (isinstance(error, Mapping) and error):
        error = {"message": name_of(error) if error else "error body without details"}
    blocks = body.get("content")
    for place, block in enumerate(blocks if isinstance(blocks, list) else ()):
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            builder.delta({"type": "text_delta", "text": block.get("text")}, at)
        elif kind == "thinking":
            builder.delta({"type": "thinking_delta", "thinking": block.get("thinking")}, at)
        elif kind == "tool_use":  # a whole call, at its place: its input is the arguments (JSON text even if no object)
            builder.block_start(place, block)
            builder.block_stop(place, at)
    builder.message(body)
    if body.get("stop_reason"):
        builder.fields["finish_reason"] = name_of(body["stop_reason"])
    return builder.build(error=error, done=error is None and body.get("type") == "message")


def tokens(usage: Mapping[str, Any] | None, problems: list[str]) -> Tokens:
    """Input is what the API bills as input: the uncached tokens, the cache's reads and its writes together (none
    where one of them was sent as no count: no bill may rest on it)."""
    noted = len(problems)
    uncached = usage_count(usage, ("input_tokens",), problems)
    reads = usage_count(usage, ("cache_read_input_tokens",), problems)
    writes = usage_count(usage, ("cache_creation_input_tokens",), problems)
    input_tokens = None
    if uncached is not None and len(problems) == noted:
        input_tokens = uncached + (reads or 0) + (writes or 0)
        if input_tokens > MAX_COUNT:
            problems.append(f"usage input_tokens with the cache's = {input_tokens} is not a token count: left empty")
            input_tokens = None
    return Tokens(
        input_tokens=input_tokens,
        output_tokens=usage_count(usage, ("output_tokens",), problems),
        cached_tokens=reads,
        cache_write_tokens=writes,
        cache_write_1h_tokens=usage_count(usage, ("cache_creation", "ephemeral_1h_input_tokens"), problems),
        reasoning_tokens=usage_count(usage, ("output_tokens_details", "thinking_tokens"), problems),
    )


def in_body_failure(error: Mapping[str, Any], settings: ProviderSettings, model: str, request_id: str | None
                    ) -> Failure:
    """An error event inside an HTTP 200, typed as its twin HTTP status would be (overloaded_error as 529)."""
    kind_name = name_of(error.get("type") or "")
    kind = kind_for_status(ERROR_STATUS.get(kind_name, 500))
    message = error.get("message")
    text = f"HTTP 200 carrying error {kind_name or 'without a type'}: {message if message else dict(error)}"
    return Failure(kind, None, scrub(text + settings_hint(kind, settings, model), known_secrets(settings)),
                   request_id)


def judge(record: WireRecord | None, answer: Answer, error: BaseException | None, settings: ProviderSettings,
          model: str, endpoint: str) -> Failure | None:
    """How the attempt failed, if it did: an answer without message_stop, or without a stop reason, did not
    complete; a refusal with no output is no answer. stop_reason max_tokens is a success that was cut (as
    `length` is in Chat Completions), stored as sent."""
    failure = common.broken(record, answer, error, settings, model, endpoint, in_body_failure)
    if failure is not None:
        return failure
    request_id = request_id_of(record, answer)
    if settings.stream and answer.plain_json:
        return Failure("bad_response", None, "a stream was asked for, and a plain JSON answer came", request_id)
    # A stream cut short is the connection's failure, whatever came before: not the model's empty answer.
    if settings.stream and not answer.done:
        return Failure("incomplete", None, "stream ended before message_stop: the answer was not complete",
                       request_id)
    if not answer.has_output:
        said = "the model refused" if answer.finish_reason == "refusal" else "the answer had no output"
        return Failure("empty_answer", None, f"{said} (no text, thinking or tool input; stop_reason "
                       f"{answer.finish_reason!r})", request_id)
    if not answer.complete:
        return Failure("incomplete", None, "the answer ended without a stop_reason", request_id)
    return None
