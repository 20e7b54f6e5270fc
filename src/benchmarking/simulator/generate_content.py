"""Google's Gemini API as the simulator speaks it: `POST .../models/{model}:streamGenerateContent?alt=sse` (server-sent
events, each `data:` a whole GenerateContentResponse, no `[DONE]`), `POST .../models/{model}:generateContent` and
`GET .../models[/{model}]`, under any API version (v1, v1beta: the SDK chooses). The key comes in `x-goog-api-key`.

Each chunk carries `tokens_per_chunk` tokens (Gemini often sends many in one); `finishReason` comes on the last, with
the whole usageMetadata (promptTokenCount with the cached part in cachedContentTokenCount, candidatesTokenCount,
thoughtsTokenCount apart from it, totalTokenCount); earlier chunks carry only the prompt's count. Thinking is hidden
(counted, its time passing before the first text) unless the request sets thinkingConfig.includeThoughts, when it
comes as parts with `thought: true`. Faults as Google sends them: 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, an error
object inside the stream, finishReason SAFETY, a cut stream.
"""

from __future__ import annotations

import json
import time

from .exchange import Exchange, answer_time, flood, paced, sleep_until, words
from .calls import SIGNATURE, Asked
from .intake import MID_STREAM, Api, Request, admitted, dicts, played_whole, spelled, text_of
from .profiles import ModelProfile
from .state import RequestRecord

_STATUS = {  # fault -> (HTTP status, Google's status, message)
    "not_found": (404, "NOT_FOUND", "models/{model} is not found for API version {version}, or is not supported "
                                    "for generateContent."),
    "rate_limit": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "server": (500, "INTERNAL", "An internal error has occurred."),
    "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
}


def _model(path: str) -> str:
    """The model's name in a path like /v1beta/models/{model}:generateContent, without the `models/` prefix."""
    return path.split("?", 1)[0].split("/models/", 1)[-1].rsplit(":", 1)[0]


def _version(path: str) -> str:
    segments = path.split("?", 1)[0].split("/models", 1)[0].strip("/").split("/")
    return segments[-1] if segments and segments[-1] else "v1beta"


def _prompt(body: dict) -> str:
    """The tools, the system instruction, then every content in order, as spelled (calls and responses included)."""
    tools = spelled(body.get("tools"), keys=True)[0]
    return "\n".join((tools, spelled(body.get("systemInstruction"), body.get("contents"))[0]))


def _field(value: object, name: str) -> object:
    """A field by its JSON name, or in snake case (google-genai 3.6.1 sends a few so; Google's parsing takes both)."""
    if not isinstance(value, dict):
        return None
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
    return value.get(name, value.get(snake))


def _asks(body: dict) -> Asked:
    """Gemini's function declarations (parameters, or parametersJsonSchema), toolConfig's functionCallingConfig, and
    generationConfig's responseJsonSchema or responseSchema (or a JSON mime type alone: any object)."""
    contents = dicts(body.get("contents"))
    declarations = [d for tool in dicts(body.get("tools")) for d in dicts(_field(tool, "functionDeclarations"))]
    tools = tuple((str(d.get("name")), _field(d, "parametersJsonSchema") or d.get("parameters"))
                  for d in declarations)
    calling = _field(_field(body, "toolConfig"), "functionCallingConfig")
    mode = str(_field(calling, "mode") or "AUTO").upper()
    allowed = _field(calling, "allowedFunctionNames")
    choice = "none" if mode == "NONE" else "required" if mode in ("ANY", "VALIDATED") else "auto"
    if isinstance(allowed, list) and len(allowed) == 1 and mode != "NONE":
        choice = str(allowed[0])
    config = _config(body)
    schema = _field(config, "responseJsonSchema") or _field(config, "responseSchema")
    if schema is None and _field(config, "responseMimeType") == "application/json":
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    users = [c for c in contents if c.get("role", "user") == "user"]
    last = contents[-1].get("parts") if contents else None
    return Asked(
        entries=len(contents), tools=tools, choice=choice,
        after_result=any(_field(part, "functionResponse") is not None for part in dicts(last)),
        last_user=text_of(users[-1].get("parts")) if users else "", schema=schema,
    )


def _config(body: dict) -> dict:
    config = body.get("generationConfig")
    return config if isinstance(config, dict) else {}


def _error(status: int, code: str, message: str) -> dict:
    return {"error": {"code": status, "message": message, "status": code}}


def _refuse(http: Exchange, record: RequestRecord, profile: ModelProfile, fault: str) -> None:
    if fault == "auth":
        # Google answers a bad key with 400 API_KEY_INVALID; the key is echoed so that scrubbing is put to the test.
        record.status = 400
        message = f"API key not valid: {record.authorization}. Please pass a valid API key."
        error = _error(400, "INVALID_ARGUMENT", message)
        reason = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
        error["error"]["details"] = [{**reason, "domain": "googleapis.com"}]
        http.send_json(400, error)
        return
    status, code, message = _STATUS[fault]
    record.status = status
    error = _error(status, code, message.format(model=record.model, version=_version(record.path)))
    if status == 429:
        delay = f"{max(1, -(-profile.retry_after_ms // 1000))}s"
        error["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
    http.send_json(status, error)


def _bad_request(http: Exchange, status: int, message: str) -> None:
    http.send_json(status, _error(status, "INVALID_ARGUMENT", message))


def _api(stream: bool) -> Api:
    return Api(
        name="generate_content",
        model=lambda http, body: _model(http.path),
        stream=lambda http, body: stream,
        prompt=_prompt,
        cap=lambda body: _config(body).get("maxOutputTokens"),
        refuse=_refuse,
        bad_request=_bad_request,
        asks=_asks,
    )


STREAMED, WHOLE = _api(True), _api(False)


def _model_object(name: str) -> dict:
    return {
        "name": f"models/{name}", "displayName": name, "version": "001", "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536, "supportedActions": ["generateContent", "countTokens"],
    }


def list_models(http: Exchange) -> None:
    """GET .../models: every model the simulator has a profile for, one page."""
    http.send_json(200, {"models": [_model_object(name) for name in sorted(http.simulator.profiles)]})


def get_model(http: Exchange) -> None:
    """GET .../models/{model}: a model with a profile, else 404."""
    name = _model(http.path)
    if name in http.simulator.profiles:
        http.send_json(200, _model_object(name))
    else:
        http.send_json(404, _error(404, "NOT_FOUND", f"models/{name} is not found for API version "
                                                     f"{_version(http.path)}."))


def _usage(request: Request, output_tokens: int) -> dict:
    record = request.record
    thoughts = min(request.reasoning, output_tokens)
    usage = {
        "promptTokenCount": record.prompt_tokens,
        "candidatesTokenCount": output_tokens - thoughts,
        "totalTokenCount": record.prompt_tokens + output_tokens,
    }
    if record.cached_tokens:
        usage["cachedContentTokenCount"] = record.cached_tokens
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _answer_parts(request: Request) -> list[dict]:
    """The answer's parts, whole: its text, or its call (args as far as the cap let them go, else none)."""
    call = request.call
    if call is None:
        return [{"text": request.text(request.reasoning, request.tokens)}]
    try:
        arguments = json.loads(request.arguments())
    except ValueError:
        arguments = {}
    return [{"functionCall": {"name": call.name, "args": arguments}, "thoughtSignature": SIGNATURE}]


def _finish_reason(request: Request) -> str:
    return "SAFETY" if request.fault == "refusal" else "MAX_TOKENS" if request.capped else "STOP"


def _response(request: Request, parts: list[dict], finish: str | None = None, usage: dict | None = None) -> dict:
    candidate: dict[str, object] = {"index": 0}
    if parts:  # a chunk that only stops (a safety stop) has no content
        candidate["content"] = {"parts": parts, "role": "model"}
    if finish:
        candidate["finishReason"] = finish
    payload: dict[str, object] = {
        "candidates": [candidate], "modelVersion": request.record.model,
        "responseId": f"resp_{request.record.request_id}",
    }
    if request.fault != "no_usage":
        payload["usageMetadata"] = usage or {"promptTokenCount": request.record.prompt_tokens,
                                             "totalTokenCount": request.record.prompt_tokens}
    return payload


def generate_content(http: Exchange) -> None:
    """POST .../models/{model}:generateContent: the whole answer at once."""
    with admitted(http, WHOLE) as request:
        if request is None or played_whole(http, request, WHOLE):
            return
        record, tokens = request.record, request.tokens
        sleep_until(answer_time(record, request.profile, tokens))
        parts = _answer_parts(request)
        if request.reasoning and _shows_thoughts(request):
            parts.insert(0, {"text": words(0, request.reasoning), "thought": True})
        payload = _response(request, parts, _finish_reason(request), _usage(request, tokens))
        record.first_token_at = record.first_answer_at = record.last_token_at = time.perf_counter()  # as it leaves
        record.output_tokens = tokens
        http.send_json(200, payload)


def _shows_thoughts(request: Request) -> bool:
    thinking = _config(request.body).get("thinkingConfig")
    # google-genai 3.6.1 sends this one field in snake case; Google's JSON parsing takes either spelling
    return isinstance(thinking, dict) and bool(thinking.get("includeThoughts") or thinking.get("include_thoughts"))


def stream_generate_content(http: Exchange) -> None:
    """POST .../models/{model}:streamGenerateContent?alt=sse: the answer in chunks of tokens_per_chunk tokens."""
    with admitted(http, STREAMED) as request:
        if request is None:
            return
        _stream(http, request)


def _stream(http: Exchange, request: Request) -> None:
    record, fault, tokens = request.record, request.fault, request.tokens
    http.start_stream()
    if fault in ("flood", "long_line"):
        flood(http, record, request.profile, fault,
              lambda text: b"data: " + json.dumps(_response(request, [{"text": text}])).encode() + b"\n\n")
        http.sse(_response(request, [], _finish_reason(request), _usage(request, tokens)))
        http.end_stream(record)
        return
    shows_thoughts = _shows_thoughts(request)
    for first, count in paced(record, request.profile, tokens):
        if fault in MID_STREAM and first >= request.profile.cut_after_tokens:
            _play(http, request, first)
            return
        thought = first < request.reasoning
        last = first + count >= tokens
        if thought and not shows_thoughts or request.call and not thought and not last:
            continue  # hidden thinking, or a call before its last token: its time passes, nothing is sent
        parts: list[dict] = [{"text": request.text(first, first + count)}]
        if thought:
            parts[0]["thought"] = True
        elif request.call:  # Gemini sends a call whole, once its arguments are done
            parts = _answer_parts(request)
        if last and fault not in MID_STREAM:
            payload = _response(request, parts, _finish_reason(request), _usage(request, tokens))
        else:
            payload = _response(request, parts)
        now = http.sse(payload)
        record.sent(now, first + count, thinking=thought)
    if fault in MID_STREAM:  # an answer shorter than cut_after_tokens plays it at the end
        _play(http, request, tokens)
        return
    http.end_stream(record)


def _play(http: Exchange, request: Request, sent: int) -> None:
    """The stream's fault, once cut_after_tokens tokens are out."""
    fault, record = request.fault, request.record
    if fault == "cut":
        http.cut(record)
        return
    if fault == "malformed":
        http.write_chunk(b'data: {"candidates": [{"content": \n\n')
    elif fault == "refusal":  # a safety stop: the finish reason on a chunk with no text
        http.sse(_response(request, [], "SAFETY", _usage(request, sent)))
    else:  # stream_error, failed: an error object inside the 200 stream
        http.sse(_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
    http.end_stream(record)
