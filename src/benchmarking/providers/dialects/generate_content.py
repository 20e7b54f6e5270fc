"""Google's Gemini API (generate_content): the request the google-genai SDK takes, the stream's chunks read into an
Answer, the failures it carries (a finishReason other than STOP, a blocked prompt, an error object inside the
stream, the SDK's APIError), and its model listing's shape.

Each SSE `data:` is a whole response object: `candidates[].content.parts[]` (text; a thought when `thought` is true;
a `functionCall`), `finishReason` on the last, `usageMetadata` (cumulative, on every chunk) and `responseId`; no
`[DONE]` and no named events. One chunk often carries many tokens.
"""

from __future__ import annotations

import base64
from contextlib import contextmanager
from dataclasses import replace
import json
import re
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ...dialogue import Exchange, Message, ToolCall, exchange_of, tool_name
from ...errors import ConfigError
from ..answer import MAX_NAME_CHARS, Answer, Tokens, name_of, request_id_of, text_of
from ..failures import Failure, classify, kind_for_status, known_secrets, scrub, settings_hint
from ..numbers import usage_count
from ..sse import SseEvent
from ..wire import WireRecord
from . import PromptInput, common
from .tool_calls import ToolCalls

if TYPE_CHECKING:
    from ...settings.model import ProviderSettings

API = "generate_content"

REHEARSAL_STREAM = b"data: " + json.dumps({
    "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
    "modelVersion": "r", "responseId": "r",
}).encode() + b"\r\n\r\n"

# Gemini's finishReason, as the finish_reason stored (the other providers' words where they mean the same);
# any other reason is stored in lower case.
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}
# Reasons that mean the answer was stopped for what it said (not retried: the same prompt meets the same filter).
_FILTERED = ("SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
             "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE")
_BAD_TOOL_CALL = ("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
                  "MALFORMED_RESPONSE", "MISSING_THOUGHT_SIGNATURE")
# google.rpc status names, as an error object inside a stream may carry them without a number.
_STATUS_KINDS = {
    "RESOURCE_EXHAUSTED": "rate_limit", "UNAVAILABLE": "server", "INTERNAL": "server", "DEADLINE_EXCEEDED": "server",
    "UNKNOWN": "server", "ABORTED": "server", "INVALID_ARGUMENT": "bad_request", "FAILED_PRECONDITION":
    "bad_request", "OUT_OF_RANGE": "bad_request", "UNAUTHENTICATED": "auth", "PERMISSION_DENIED": "auth",
    "NOT_FOUND": "not_found",
}
MODEL_PREFIX = "models/"
# How Answer.error carries a failure that is no error object: a finishReason that is a failure, a blocked prompt.
STOPPED, BLOCKED = "finishReason (a failure)", "promptFeedback.blockReason"
_DELAY = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)s")  # a google.protobuf.Duration in JSON: "19s", "45.25s"


# A model's name is a segment of the request's path (models/{model}:streamGenerateContent): only the characters
# Gemini's model ids use, so that no name can reach another path (.., /, %2e), cut the URL (?, #) or a header.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def bare_model(model: str) -> str:
    """A Gemini model's name without the `models/` its listing puts before it: both forms name the same model.
    Any other name is refused (ConfigError): it would go into the URL's path."""
    bare = model[len(MODEL_PREFIX):] if model.startswith(MODEL_PREFIX) else model
    if not _MODEL_NAME.fullmatch(bare) or ".." in bare:
        raise ConfigError(f"gemini model {model!r} must be letters, digits, '.', '-' or '_', like "
                          "gemini-3.5-flash-lite (with or without models/ before it)")
    return bare


def auth_headers(api_key: str) -> dict[str, str]:
    return {"x-goog-api-key": api_key}


def request(model: str, prompt: PromptInput, max_tokens: int, stream: bool, usage_request: str) -> dict[str, Any]:
    """The SDK's arguments: the contents, a system instruction from a ("system", ...) message, and the output cap;
    an Exchange's tool calls, results, tools and schema in Gemini's forms (its cache breakpoint is not needed:
    Gemini caches a repeated prefix by itself). Usage always comes (usageMetadata): usage_request is not needed."""
    exchange = exchange_of(prompt)
    turns = exchange.plain
    if turns is None:
        system = "\n\n".join(m.content for m in exchange.messages if m.role == "system")
        contents = _contents(exchange)
    else:
        system = "\n\n".join(content for role, content in turns if role == "system")
        contents = [{"role": "model" if role == "assistant" else "user", "parts": [{"text": content}]}
                    for role, content in turns if role != "system"]
    # The SDK's own follow-ups (calling functions, continuing a stream) would be requests inside the timed one.
    config: dict[str, Any] = {"max_output_tokens": max_tokens, "automatic_function_calling": {"disable": True},
                              "automatic_continuation": False}
    if system:
        config["system_instruction"] = system
    if turns is None:
        config.update(_config(exchange))
    return {"model": bare_model(model), "contents": contents, "config": config, "stream": stream}


_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def _contents(exchange: Exchange) -> list[dict[str, Any]]:
    """The conversation as Gemini's contents: a model turn's calls are functionCall parts (each with the
    thoughtSignature it came with, which Gemini 3 asks back), tool results functionResponse parts in a user turn
    (consecutive results in one), as the SDK's own function calling sends them."""
    contents: list[dict[str, Any]] = []
    results_open = False
    for message in exchange.messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            part = {"function_response": _function_response(message)}
            if results_open:
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
            results_open = True
            continue
        parts: list[dict[str, Any]] = [{"text": message.content}] if message.content or not message.tool_calls else []
        parts += [_function_call(call) for call in message.tool_calls]
        contents.append({"role": "model" if message.role == "assistant" else "user", "parts": parts})
        results_open = False
    return contents


def _function_call(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = call.parsed_arguments()
    except ValueError:
        arguments = {}
    function_call: dict[str, Any] = {"name": call.name, "args": arguments if isinstance(arguments, dict) else {}}
    if call.call_id:
        function_call["id"] = call.call_id
    part: dict[str, Any] = {"function_call": function_call}
    signature = _signature_bytes(call.signature)
    if signature is not None:
        part["thought_signature"] = signature  # the SDK sends bytes as base64 again
    return part


def _signature_bytes(signature: str | None) -> bytes | None:
    """A thoughtSignature as it came (base64, standard or URL-safe), as the bytes the SDK takes; None if none or
    not base64 (the SDK would refuse the request)."""
    if not signature:
        return None
    try:
        text = signature.replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:  # binascii.Error is one; so is a character that is not ASCII
        return None


def _function_response(message: Message) -> dict[str, Any]:
    """A tool's result: a JSON object as it is, any other result under "result" (as the SDK's function calling
    gives one); the call's name and its id where it had one."""
    call = message.answers
    try:
        result = json.loads(message.content)
    except ValueError:
        result = None
    response: dict[str, Any] = {"name": call.name if call is not None else "",
                                "response": result if isinstance(result, dict) else {"result": message.content}}
    if call is not None and call.call_id:
        response["id"] = call.call_id
    return response


def _config(exchange: Exchange) -> dict[str, Any]:
    """Tools as functionDeclarations (parameters as JSON Schema: parameters_json_schema), tool_choice as
    toolConfig.functionCallingConfig, a schema as a JSON answer following responseJsonSchema (JSON Schema as it is;
    responseSchema takes only Gemini's OpenAPI subset)."""
    config: dict[str, Any] = {}
    if exchange.tools:
        config["tools"] = [{"function_declarations": [_declaration(tool) for tool in exchange.tools]}]
    choice = exchange.tool_choice
    if isinstance(choice, str):
        config["tool_config"] = {"function_calling_config": {"mode": _MODES[choice]}}
    elif choice is not None:
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        config["tool_config"] = {"function_calling_config": {"mode": "ANY", "allowed_function_names": [name]}}
    if exchange.schema is not None:
        config["response_mime_type"] = "application/json"
        config["response_json_schema"] = dict(exchange.schema)
    return config


def _declaration(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    declaration: dict[str, Any] = {"name": tool_name(tool)}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters"):
        declaration["parameters_json_schema"] = function["parameters"]
    return declaration


class _Response:
    """What client.send reads: the SDK's stream of parsed chunks (read to its end), as bytes it need not look at."""

    def __init__(self, sdk: Any, request: Mapping[str, Any]) -> None:
        self._sdk, self._request = sdk, request

    def iter_bytes(self) -> Iterator[bytes]:
        args = {k: v for k, v in self._request.items() if k != "stream"}
        if not self._request["stream"]:
            self._sdk.models.generate_content(**args)
            return
        for _ in self._sdk.models.generate_content_stream(**args):
            yield b""


@contextmanager
def open_stream(sdk: Any, request: Mapping[str, Any]) -> Iterator[_Response]:
    """The request, made by the SDK as its users make it (the wire records the bytes under its parsing)."""
    yield _Response(sdk, request)


def error_in(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The error object a chunk or body carries (`{"error": {"code", "message", "status"}}`), or a blocked prompt
    (`promptFeedback.blockReason`, given as an error under BLOCKED); None if neither."""
    error = payload.get("error")
    if isinstance(error, Mapping) and error:
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    feedback = payload.get("promptFeedback")
    if isinstance(feedback, Mapping) and feedback.get("blockReason"):
        message = feedback.get("blockReasonMessage")
        return {BLOCKED: name_of(feedback["blockReason"]),
                "message": name_of(message) if message else "the prompt was blocked"}
    return None


class _Builder(common.Accumulated):
    """Accumulates an Answer chunk by chunk (a chunk: one event's JSON, or the whole body when not streamed). Each
    functionCall is a whole call, at its place among the answer's calls."""

    finish: str | None = None  # the last finishReason, as Gemini named it

    def __init__(self) -> None:
        super().__init__()
        self.calls = ToolCalls()
        self.calls_seen = 0

    def chunk(self, payload: Mapping[str, Any], at: float | None) -> None:
        f = self.fields
        if isinstance(payload.get("responseId"), str) and payload["responseId"]:
            f.setdefault("response_id", payload["responseId"][:MAX_NAME_CHARS])
        if isinstance(payload.get("usageMetadata"), Mapping):
            f["usage"] = payload["usageMetadata"]  # cumulative: the last one counts
        candidates = payload.get("candidates")
        carried_output = False
        for candidate in candidates if isinstance(candidates, list) else ():
            if not isinstance(candidate, Mapping):
                continue
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, Mapping) else None
            for part in parts if isinstance(parts, list) else ():
                if not isinstance(part, Mapping):
                    continue
                text = text_of(part.get("text"))
                if part.get("thought") is True:
                    if text:
                        self._keep(self.reasoning, text)
                        f["reasoning_streamed"] = True
                        carried_output = True
                    continue
                call = part.get("functionCall")
                if text:
                    self._keep(self.parts, text)
                if isinstance(call, Mapping) and call:
                    self._call(call, part.get("thoughtSignature"), at)
                if text or (isinstance(call, Mapping) and call):
                    f.setdefault("first_answer_at", at)
                    carried_output = True
            reason = candidate.get("finishReason")
            if reason:
                name = name_of(reason)
                f["finish_reason"] = FINISH_REASONS.get(name, name.lower())
                self.finish = name
        if carried_output:
            self.output_events += 1
            f.setdefault("first_output_at", at)
            f["last_output_at"] = at

    def _call(self, call: Mapping[str, Any], signature: Any, at: float | None) -> None:
        """A whole functionCall (its arguments an object, JSON text as kept; the signature sent back with it)."""
        args = call.get("args")
        self.calls.whole(self.calls_seen, at, call.get("name") or "", call.get("id"),
                         args if args is not None else {}, signature)
        self.calls_seen += 1

    def build(self, **extra: Any) -> Answer:
        extra.update(self.calls.answer_fields())
        if extra.get("error") is None and self.finish is not None and self.finish not in FINISH_REASONS:
            extra["error"] = {STOPPED: self.finish}  # a stop that is a failure; judged below
        return super().build(**extra)


class EventReader(common.EventReader):
    """A stream's chunks in order, up to an error or an unreadable event (what comes after is not read)."""

    def __init__(self) -> None:
        super().__init__(_Builder())

    def take(self, payload: Mapping[str, Any], event: SseEvent) -> None:
        self._builder.chunk(payload, event.arrived_at)
        error = error_in(payload)
        if error is not None:
            self.ending = {"error": error}


def read_body(record: WireRecord, body: Mapping[str, Any]) -> Answer:
    """A whole JSON answer (generateContent, or a stream answered as one body)."""
    builder = _Builder()
    builder.chunk(body, record.last_byte_at)
    return builder.build(error=error_in(body), done=True)


def tokens(usage: Mapping[str, Any] | None, problems: list[str]) -> Tokens:
    """usageMetadata's counts: thoughts are counted apart from candidates, and both are output. Gemini leaves out a
    count that is 0; a count sent that makes no sense is left empty, and so is a sum that needs it."""
    counts = {key: usage_count(usage, (key,), problems) for key in
              ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "cachedContentTokenCount")}
    sent = usage if isinstance(usage, Mapping) else {}
    bad = {key for key, count in counts.items() if count is None and sent.get(key) is not None}

    def absent_is_zero(key: str) -> int | None:
        return None if usage is None or key in bad else counts[key] or 0

    candidates, thoughts = counts["candidatesTokenCount"], counts["thoughtsTokenCount"]
    output = None
    if not {"candidatesTokenCount", "thoughtsTokenCount"} & bad and (candidates is not None or thoughts is not None):
        output = (candidates or 0) + (thoughts or 0)
    return Tokens(
        input_tokens=counts["promptTokenCount"],
        output_tokens=output,
        cached_tokens=absent_is_zero("cachedContentTokenCount"),
        reasoning_tokens=absent_is_zero("thoughtsTokenCount"),
    )


def listed_models(body: Any) -> dict[str, str | None]:
    """GET {version}/models: {"models": [{"name": "models/..."}]}, names without their prefix; no shutdown dates.
    An item without a name is passed over."""
    names = [item["name"] for item in body["models"] if isinstance(item, Mapping) and isinstance(item.get("name"), str)]
    return {name[len(MODEL_PREFIX):] if name.startswith(MODEL_PREFIX) else name: None for name in names}


def next_page(body: Any) -> dict[str, object] | None:
    """The query of the listing's next page (Gemini's come 50 at a time with a nextPageToken), or None."""
    token = body.get("nextPageToken")
    return {"pageToken": token, "pageSize": 1000} if isinstance(token, str) and token else None


def retry_delay_s(error: Any) -> float | None:
    """The wait a Google error object asks for (`details: [{"@type": ".../google.rpc.RetryInfo", "retryDelay":
    "19s"}]`, its Retry-After), or None."""
    details = error.get("details") if isinstance(error, Mapping) else None
    for item in details if isinstance(details, list) else ():
        if isinstance(item, Mapping) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DELAY.fullmatch(str(item.get("retryDelay", "")))
            return float(match.group(1)) if match else None
    return None


def _error_failure(error: Mapping[str, Any], settings: ProviderSettings, model: str, request_id: str | None
                   ) -> Failure:
    secrets = known_secrets(settings)
    if STOPPED in error:
        reason = error[STOPPED]
        kind = ("bad_request" if reason in _FILTERED else "bad_response" if reason in _BAD_TOOL_CALL else "server")
        return Failure(kind, None, scrub(f"the answer was stopped with finishReason {reason}", secrets), request_id)
    if BLOCKED in error:
        return Failure("bad_request", None, scrub(f"the prompt was blocked (blockReason {error[BLOCKED]}): "
                                                  f"{error.get('message')}", secrets), request_id)
    code, status = error.get("code"), error.get("status")
    if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
        kind, number = kind_for_status(code), code
    else:
        kind, number = _STATUS_KINDS.get(str(status), "server"), None
    label = " ".join(str(x) for x in (number, status) if x is not None)
    message = f"HTTP 200 carrying error{' ' + label if label else ''}: {error.get('message') or dict(error)}"
    return Failure(kind, number, scrub(message + settings_hint(kind, settings, model), secrets), request_id,
                   retry_delay_s(error) if kind in ("rate_limit", "server") else None)


def _status_error(error: BaseException) -> BaseException:
    """The SDK's APIError carries its HTTP status as `.code` and its body as `.details`: named as classify reads
    them (status_code, body)."""
    code = getattr(error, "code", None)
    if isinstance(code, int) and not isinstance(code, bool) and getattr(error, "status_code", None) is None:
        error.status_code = code  # type: ignore[attr-defined]
        error.body = getattr(error, "details", None)  # type: ignore[attr-defined]
    return error


def judge(record: WireRecord | None, answer: Answer, error: BaseException | None, settings: ProviderSettings,
          model: str, endpoint: str) -> Failure | None:
    """How the attempt failed, if it did: a request that did not complete is a failure, never a success."""
    request_id = request_id_of(record, answer)
    if answer.error is not None:  # read from a 200's bytes (the SDK raises an error object as if it were an HTTP error)
        return _error_failure(answer.error, settings, model, request_id)
    if error is not None:
        failure = classify(_status_error(error), settings, model, endpoint)
        if failure.retry_after_s is None and failure.error_type in ("rate_limit", "server"):
            body = getattr(error, "details", None)
            failure = replace(failure, retry_after_s=retry_delay_s(body.get("error") if isinstance(body, Mapping)
                                                                     else None))
        return failure if failure.request_id else replace(failure, request_id=request_id)
    return common.judge(record, answer, None, settings, model, endpoint)  # what every dialect judges alike
