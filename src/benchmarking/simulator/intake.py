"""A request's way in, the same for every API: its body read, logged, its model's profile, its prompt counted, the
fault to play and its place among the model's capacity. Each API's module says where its API keeps these, and how it
refuses a request."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import json
import time
from typing import Callable, Iterator

from .calls import Asked, Call, Planned, planned
from .exchange import BodyRefused, Exchange, ttft_ms, words
from .profiles import ModelProfile
from .state import RequestRecord

# Faults answered with an HTTP error before any token, by each API in its own shape.
REFUSED = ("auth", "not_found", "rate_limit", "server", "overloaded")
# Faults played in the stream once the profile's cut_after_tokens tokens are out (at its end, if the answer is shorter).
MID_STREAM = ("cut", "malformed", "stream_error", "failed", "refusal")


@dataclass
class Request:
    """An admitted request: what the model will answer, and the fault it plays."""

    record: RequestRecord
    profile: ModelProfile
    body: dict
    fault: str | None
    tokens: int  # output tokens to send, thinking included
    capped: bool  # the request's own cap cut the answer short
    planned: Planned | None = None  # a tool call or a JSON answer (calls.py); None: the profile's words

    @property
    def reasoning(self) -> int:
        return min(self.profile.reasoning_tokens, self.tokens)

    @property
    def call(self) -> Call | None:
        return None if self.planned is None else self.planned.call

    def text(self, start: int, end: int) -> str:
        """The text of output tokens start..end: thinking and a plain answer in the profile's words; a JSON answer's
        or a call's arguments' pieces (a call's first token is its name's event, with no text)."""
        if self.planned is None or end <= self.reasoning:
            return words(start, end)
        return self.planned.text(start - self.reasoning, end - self.reasoning)

    def arguments(self) -> str:
        """A call's arguments as sent: whole, or as far as the cap let them go."""
        return self.text(self.reasoning, self.tokens)


@dataclass(frozen=True)
class Api:
    """Where one API keeps what the intake needs, and how it refuses."""

    name: str  # as the `api` column names it
    model: Callable[[Exchange, dict], str | None]
    stream: Callable[[Exchange, dict], bool]
    prompt: Callable[[dict], str]  # the prompt's text, every entry in order as sent (spelled)
    cap: Callable[[dict], object]  # the request's output cap, None for none
    refuse: Callable[[Exchange, RequestRecord, ModelProfile, str], None]  # answer one of REFUSED, setting status
    bad_request: Callable[[Exchange, int, str], None]  # answer a status (400, 413) and a message, not logged
    asks: Callable[[dict], Asked]  # the tools, tool choice and schema asked, the conversation's shape
    # the prompt's text through its cache breakpoint, for an API that caches only there ("" for none); None: any prefix
    cacheable: Callable[[dict], str | None] = lambda body: None


@contextmanager
def admitted(http: Exchange, api: Api) -> Iterator[Request | None]:
    """The request, its body read and admitted, holding its place while the answer is sent; None if it was answered
    already (an error, a refusal, a hang)."""
    sim = http.simulator
    try:
        raw = http.read_body()
        received_at = time.perf_counter()  # its times start once it is all in, as a real server's do
        body = _parsed(raw)
    except BodyRefused as refused:
        api.bad_request(http, refused.status, refused.message)
        yield None
        return
    model = api.model(http, body)
    record = RequestRecord(
        request_id=http.request_id, path=http.path, model=model if isinstance(model, str) else None,
        stream=api.stream(http, body), received_at=received_at, client_port=http.client_address[1],
        authorization=http.credential(), body=body, api=api.name,
    )
    sim.record(record, len(raw))
    profile = sim.profile_for(record.model)
    if profile is None:
        api.refuse(http, record, sim.default or ModelProfile(), "not_found")
        yield None
        return
    record.prompt_tokens, record.cached_tokens, record.cacheable_tokens = sim.count_prompt(
        record.model, profile, api.prompt(body), api.cacheable(body))
    record.planned_ttft_ms = ttft_ms(record, profile)
    asked = api.asks(body)
    record.entries, record.tools, record.schema = asked.entries, len(asked.tools), asked.schema is not None
    answer = planned(asked, http.request_id)
    if answer is not None and answer.call is not None:
        record.tool_call = answer.call.name
    fault = sim.fault_for(record.model, profile)
    with sim.serving(record.model, profile) as place:
        if not place:
            fault = "rate_limit"
        if place and place is not True:  # it waited for a place: its times start now
            record.received_at = place
        if fault == "hang":
            sim.stopping.wait(profile.hang_s)
            http.close_connection = True
            yield None
            return
        if fault in REFUSED:
            api.refuse(http, record, profile, fault)
            yield None
            return
        tokens, capped = profile.output_tokens, False
        if answer is not None:  # thinking, then the call or the JSON, whatever the profile's answer length
            tokens = profile.reasoning_tokens + len(answer.pieces)
        cap = api.cap(body)
        if isinstance(cap, int) and not isinstance(cap, bool) and 0 < cap < tokens:
            tokens, capped = cap, True
        yield Request(record, profile, body, fault, tokens, capped, answer)


def _parsed(raw: bytes) -> dict:
    """The body's JSON object, else BodyRefused (400): not JSON, nested past the parser's stack, not an object."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BodyRefused(400, "request body is nested too deeply") from None
    except ValueError:
        raise BodyRefused(400, "request body is not JSON") from None
    if not isinstance(body, dict):
        raise BodyRefused(400, "request body is not a JSON object")
    return body


def answered(http: Exchange, api: Api, stream: Callable[[Exchange, Request], None],
             whole: Callable[[Exchange, Request], None]) -> None:
    """A request to an API whose one path answers streamed or whole, as the request asks: admitted (its fault, its
    place in the queue first), then `stream` or `whole`."""
    with admitted(http, api) as request:
        if request is not None:
            (stream if request.record.stream else whole)(http, request)


def played_whole(http: Exchange, request: Request, api: Api) -> bool:
    """A stream's fault as a non-streamed answer has it: a cut closes the connection with no answer, a malformed one
    is broken JSON, an error in the stream is a 500. True if one was played (the answer is not to be sent)."""
    fault = request.fault
    if fault == "cut":
        http.cut(request.record)
    elif fault == "malformed":
        body = b'{"id": "broken", '
        http.send_response(200)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)
        http.wfile.flush()
    elif fault in ("stream_error", "failed"):
        api.refuse(http, request.record, request.profile, "server")
    else:
        return False
    return True


def dicts(value: object) -> list[dict]:
    """The objects of a list in a request's body (messages, parts): anything else in it, or no list, is nothing."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


SILENT_KEYS = frozenset({"type", "role", "cache_control"})  # a body's keys whose values are no text of the prompt


def spelled(*values: object, keys: bool = False) -> tuple[str, str | None]:
    """The prompt's text as the simulated model reads it: every string and number in the values, in order, nothing
    else (a content's text reads the same as a string or as a list of text parts; a tool call's name and arguments
    and a tool's result count). With `keys`, an object's keys too (tools' parameters). Also the text through the
    last object that carries a `cache_control` (Anthropic's breakpoint), None if none does."""
    pieces: list[str] = []
    mark: int | None = None
    stack: list[tuple[object, bool]] = [(value, False) for value in reversed(values)]
    while stack:  # not recursive: a body nests as deep as the JSON parser let it
        value, closing = stack.pop()
        if closing:
            mark = len(pieces)
        elif isinstance(value, str):
            pieces.append(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            pieces.append(str(value))
        elif isinstance(value, list):
            stack.extend((item, False) for item in reversed(value))
        elif isinstance(value, dict):
            if "cache_control" in value:
                stack.append((None, True))
            for key, item in reversed(value.items()):
                if key not in SILENT_KEYS:
                    stack.append((item, False))
                    if keys:
                        stack.append((key, False))
    return "\n".join(pieces), (None if mark is None else "\n".join(pieces[:mark]))


def text_of(content: object) -> str:
    """A message's content as text: a string, or a list of parts each with a `text`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in dicts(content))
    return ""
