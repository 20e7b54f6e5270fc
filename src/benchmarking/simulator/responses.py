"""OpenAI's Responses API as the simulator speaks it: `POST .../responses`, streamed as named server-sent events (each
with its `type` and `sequence_number`) or one JSON body.

A stream is response.created, response.in_progress, then for the reasoning (if the profile has reasoning tokens) an
output item of type reasoning: hidden (its time passes, only the item's added and done events show) unless the request
asks for a summary (`reasoning.summary`), when its text comes as response.reasoning_summary_text.delta; then the
message item: output_item.added, content_part.added, response.output_text.delta..., output_text.done,
content_part.done, output_item.done; and response.completed with the usage (input_tokens with
input_tokens_details.cached_tokens, output_tokens with output_tokens_details.reasoning_tokens). An answer cut by
max_output_tokens ends in response.incomplete (reason max_output_tokens). Faults: response.failed, an `error` event,
response.incomplete (reason content_filter), a cut stream, and HTTP errors in OpenAI's shape.
"""

from __future__ import annotations

import itertools
import json
import time

from .exchange import Exchange, answer_time, flood, paced, sleep_until, words
from .calls import Asked, response_schema
from .intake import MID_STREAM, Api, Request, answered, dicts, played_whole, spelled, text_of
from .profiles import ModelProfile
from .state import RequestRecord

_STATUS = {  # fault -> (HTTP status, error type, code, message)
    "not_found": (404, "invalid_request_error", "model_not_found", "The model `{model}` does not exist."),
    "rate_limit": (429, "requests", "rate_limit_exceeded", "Rate limit reached, slow down."),
    "server": (500, "server_error", "server_error", "The server had an error while processing your request."),
    "overloaded": (503, "server_error", "overloaded", "The engine is currently overloaded, please try again later."),
}


def _prompt(body: dict) -> str:
    """The tools offered, the instructions, then the input (a text, or its items in order, as spelled)."""
    tools = spelled(body.get("tools"), keys=True)[0]
    return "\n".join((tools, spelled(body.get("instructions"), body.get("input"))[0]))


def _asks(body: dict) -> Asked:
    """Responses' tools (`tools[]` of type function), tool_choice, and text.format's schema."""
    given = body.get("input")
    items = [{"role": "user", "content": given}] if isinstance(given, str) else dicts(given)
    items = [item for item in items if item.get("role") not in ("system", "developer")]
    functions = [tool for tool in dicts(body.get("tools")) if tool.get("type") == "function"]
    tools = tuple((str(tool.get("name")), tool.get("parameters")) for tool in functions)
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = str(choice.get("name")) if choice.get("type") == "function" else "auto"
    users = [item for item in items if item.get("role") == "user"]
    text = body.get("text")
    return Asked(
        entries=len(items), tools=tools, choice=choice if isinstance(choice, str) else None,
        after_result=bool(items) and items[-1].get("type") == "function_call_output",
        last_user=text_of(users[-1].get("content")) if users else "",
        schema=response_schema(text.get("format")) if isinstance(text, dict) else None,
    )


def _error(message: str, kind: str, code: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _refuse(http: Exchange, record: RequestRecord, profile: ModelProfile, fault: str) -> None:
    if fault == "auth":
        # Echo the credential the way careless servers do, so that the client's scrubbing is put to the test.
        record.status = 401
        key = (record.authorization or "").removeprefix("Bearer ")
        http.send_json(401, _error(f"Incorrect API key provided: {key}", "invalid_request_error", "invalid_api_key"))
        return
    status, kind, code, message = _STATUS[fault]
    record.status = status
    headers = {"retry-after-ms": str(profile.retry_after_ms), "retry-after": "1"} if status == 429 else None
    http.send_json(status, _error(message.format(model=record.model), kind, code), headers)


API = Api(
    name="responses",
    model=lambda http, body: body.get("model"),
    stream=lambda http, body: bool(body.get("stream")),
    prompt=_prompt,
    cap=lambda body: body.get("max_output_tokens"),
    refuse=_refuse,
    bad_request=lambda http, status, message: http.send_json(status, {"error": {"message": message}}),
    asks=_asks,
)


def _usage(request: Request, output_tokens: int) -> dict:
    record = request.record
    return {
        "input_tokens": record.prompt_tokens,
        "input_tokens_details": {"cached_tokens": record.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": min(request.reasoning, output_tokens)},
        "total_tokens": record.prompt_tokens + output_tokens,
    }


def _response(request: Request, http: Exchange, status: str, output: list, **fields: object) -> dict:
    body = request.body
    return {
        "id": f"resp_{http.request_id}", "object": "response", "created_at": int(time.time()), "status": status,
        "model": request.record.model, "output": output, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": [], "text": {"format": {"type": "text"}}, "error": None, "incomplete_details": None, "usage": None,
        **fields,
    }


def _reasoning_item(http: Exchange, summary: str | None) -> dict:
    parts = [] if summary is None else [{"type": "summary_text", "text": summary}]
    return {"id": f"rs_{http.request_id}", "type": "reasoning", "summary": parts}


def _message_item(http: Exchange, text: str, status: str) -> dict:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"id": f"msg_{http.request_id}", "type": "message", "status": status, "role": "assistant",
            "content": content if status == "completed" else []}


def _call_item(request: Request, http: Exchange, arguments: str, status: str) -> dict:
    call = request.call
    assert call is not None
    return {"id": f"fc_{http.request_id}", "type": "function_call", "status": status, "call_id": call.call_id,
            "name": call.name, "arguments": arguments}


def _summarised(request: Request) -> bool:
    reasoning = request.body.get("reasoning")
    return isinstance(reasoning, dict) and bool(reasoning.get("summary"))


def _end(request: Request, http: Exchange, tokens: int, output: list) -> tuple[str, dict]:
    """The last event's type and its response: completed, or incomplete when cut by the cap or a content filter."""
    usage = None if request.fault == "no_usage" else _usage(request, tokens)
    if request.fault == "refusal" or request.capped:
        reason = "content_filter" if request.fault == "refusal" else "max_output_tokens"
        return "response.incomplete", _response(request, http, "incomplete", output, usage=usage,
                                                incomplete_details={"reason": reason})
    return "response.completed", _response(request, http, "completed", output, usage=usage)


def responses(http: Exchange) -> None:
    """POST .../responses: the model's answer, its fault, or its place in the queue first."""
    answered(http, API, lambda http, request: _Stream(http, request).run(), _complete)


def _complete(http: Exchange, request: Request) -> None:
    if played_whole(http, request, API):
        return
    record, tokens = request.record, request.tokens
    sleep_until(answer_time(record, request.profile, tokens))
    if request.call:
        output = [_call_item(request, http, request.arguments(), "completed")]
    else:
        output = [_message_item(http, request.text(request.reasoning, tokens), "completed")]
    if request.reasoning:
        summary = words(0, request.reasoning) if _summarised(request) else None
        output.insert(0, _reasoning_item(http, summary))
    payload = _end(request, http, tokens, output)[1]
    record.first_token_at = record.first_answer_at = record.last_token_at = time.perf_counter()  # as it leaves
    record.output_tokens = tokens
    http.send_json(200, payload)


class _Stream:
    """One streamed answer: its events in order, each numbered."""

    def __init__(self, http: Exchange, request: Request) -> None:
        self.http, self.request, self.record = http, request, request.record
        self.numbers = itertools.count()
        self.output: list[dict] = []  # the items done so far
        self.item: str | None = None  # the open item: "reasoning" or "message"
        self.text = ""

    def emit(self, kind: str, **fields: object) -> float:
        return self.http.sse({"type": kind, "sequence_number": next(self.numbers), **fields}, kind)

    def run(self) -> None:
        request, record, fault = self.request, self.record, self.request.fault
        self.http.start_stream()
        self.emit("response.created", response=_response(request, self.http, "in_progress", []))
        self.emit("response.in_progress", response=_response(request, self.http, "in_progress", []))
        if fault in ("flood", "long_line"):
            self.open("message")
            index = len(self.output)
            flood(self.http, record, request.profile, fault, lambda text: self.text_event(index, text))
            self.finish(request.tokens)
            return
        for first, count in paced(record, request.profile, request.tokens):
            if fault in MID_STREAM and first >= request.profile.cut_after_tokens:
                self.play(first)
                return
            thinking = first < request.reasoning
            now = self.open("reasoning" if thinking else "function_call" if request.call else "message")
            text = request.text(first, first + count)
            self.text += text
            if thinking and not _summarised(request):
                continue  # hidden reasoning: its time passes, nothing is sent
            index = len(self.output)
            if thinking:
                now = self.emit("response.reasoning_summary_text.delta", item_id=self.item_id(), output_index=index,
                                summary_index=0, delta=text)
            elif self.item == "function_call":
                if text:  # the call's first token is its name, in the item added
                    now = self.emit("response.function_call_arguments.delta", item_id=self.item_id(),
                                    output_index=index, delta=text)
            else:
                now = self.http.write_chunk(self.text_event(index, text))
            record.sent(now, first + count, thinking=thinking)
        if fault in MID_STREAM:  # an answer shorter than cut_after_tokens plays it at the end
            self.play(request.tokens)
            return
        self.finish(request.tokens)

    def item_id(self) -> str:
        prefix = {"reasoning": "rs", "function_call": "fc"}.get(self.item or "", "msg")
        return f"{prefix}_{self.http.request_id}"

    def text_event(self, index: int, text: str) -> bytes:
        data = {"type": "response.output_text.delta", "sequence_number": next(self.numbers), "item_id": self.item_id(),
                "output_index": index, "content_index": 0, "delta": text, "logprobs": []}
        return b"event: response.output_text.delta\ndata: " + json.dumps(data).encode() + b"\n\n"

    def open(self, item: str) -> float | None:
        """Open the item if it is not the open one, closing the one before; the time its added event left."""
        if self.item == item:
            return None
        self.close()
        self.item, self.text = item, ""
        index = len(self.output)
        if item == "function_call":
            return self.emit("response.output_item.added", output_index=index,
                             item=_call_item(self.request, self.http, "", "in_progress"))
        if item == "reasoning":
            self.emit("response.output_item.added", output_index=index, item=_reasoning_item(self.http, None))
            if _summarised(self.request):
                part = {"type": "summary_text", "text": ""}
                self.emit("response.reasoning_summary_part.added", item_id=self.item_id(), output_index=index,
                          summary_index=0, part=part)
        else:
            self.emit("response.output_item.added", output_index=index,
                      item=_message_item(self.http, "", "in_progress"))
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            self.emit("response.content_part.added", item_id=self.item_id(), output_index=index, content_index=0,
                      part=part)

    def close(self) -> None:
        if self.item is None:
            return
        index, item_id = len(self.output), self.item_id()
        if self.item == "reasoning":
            summary = self.text if _summarised(self.request) else None
            if summary is not None:
                self.emit("response.reasoning_summary_text.done", item_id=item_id, output_index=index,
                          summary_index=0, text=summary)
                self.emit("response.reasoning_summary_part.done", item_id=item_id, output_index=index,
                          summary_index=0, part={"type": "summary_text", "text": summary})
            item = _reasoning_item(self.http, summary)
        elif self.item == "function_call":
            self.emit("response.function_call_arguments.done", item_id=item_id, output_index=index,
                      arguments=self.text)
            item = _call_item(self.request, self.http, self.text, "completed")
        else:
            self.emit("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                      text=self.text, logprobs=[])
            part = {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}
            self.emit("response.content_part.done", item_id=item_id, output_index=index, content_index=0, part=part)
            item = _message_item(self.http, self.text, "completed")
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)
        self.item = None

    def finish(self, tokens: int) -> None:
        self.close()
        kind, response = _end(self.request, self.http, tokens, self.output)
        self.emit(kind, response=response)
        self.http.end_stream(self.record)

    def play(self, sent: int) -> None:
        """The stream's fault, once cut_after_tokens tokens are out."""
        fault = self.request.fault
        if fault == "cut":
            self.http.cut(self.record)
            return
        if fault == "refusal":
            self.finish(sent)
            return
        if fault == "malformed":
            self.http.write_chunk(b'event: response.output_text.delta\ndata: {"type": "response.output_text.\n\n')
        elif fault == "failed":
            error = {"code": "server_error", "message": "The server had an error while processing your request."}
            self.emit("response.failed", response=_response(self.request, self.http, "failed", self.output,
                                                            error=error))
        else:  # stream_error
            self.emit("error", code="server_error", message="The server had an error while processing your request.",
                      param=None)
        self.http.end_stream(self.record)
