"""What every OpenAI-shaped API shares: client set-up, warm-up, the timed streaming loop, usage, errors, cost.

Where the clock reads: a thin wrapper around the HTTP transport under the SDK notes when the request leaves and when
each server-sent event's bytes arrive, before the SDK parses them. The SDK's parsing (pydantic models, first-use set-up)
can lag the wire by tens of milliseconds, so reading the clock where the SDK yields a chunk would report numbers that
are late; reading it at the transport keeps the real SDK in the loop and the numbers true.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
import gc
import importlib
import json
import re
import time
from types import ModuleType
import urllib.request
from urllib.parse import urlsplit
from typing import Any, Iterator, Mapping

from ..config import ProviderSettings, redact_url
from ..measurement import Measurement, cap_text, decode_tokens_per_second, utc_now
from ..pricing import Price, cost_usd, missing_price_warning

RETRYABLE = ("rate_limit", "server", "connection")
MAX_RETRY_WAIT_S = 60.0
BACKOFF_BASE_S = 0.5

# (pattern, replacement): provider error texts sometimes echo the credential they were sent.
_KEY_PATTERNS = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-*.]{6,}"), "****"),
    (re.compile(r"\bgsk_[A-Za-z0-9*]{6,}"), "****"),
    (re.compile(r"\bsb_secret_[A-Za-z0-9_\-]{6,}"), "****"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}(?:\.[A-Za-z0-9_\-]*)?"), "****"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s'\",}]+"), r"\1****"),
    (re.compile(r"(?i)\b(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s'\",}]+"), r"\1****"),
)


@dataclass(frozen=True)
class Wire:
    """How one SDK is built and spoken to."""

    sdk_module: str
    client_class: str
    httpx_module: str
    default_base_url: str
    api_root: str = ""  # what the SDK puts between base_url and /chat/completions
    usage_request: str = "stream_options"  # "stream_options" | "extra_body" | "none" (the API sends usage anyway)


def known_secrets(settings: ProviderSettings) -> tuple[str, ...]:
    """The values to scrub from anything this provider's answers put in front of a user."""
    return (settings.api_key.reveal(),) if settings.api_key else ()


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """One line, with every known key and anything key-shaped replaced by ****."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "****")
    for pattern, replacement in _KEY_PATTERNS:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."


def normalise_base_url(wire: Wire, base_url: str | None) -> str:
    """The base URL the SDK expects: a trailing copy of the SDK's own API root is removed (together's /v1)."""
    url = (base_url or wire.default_base_url).rstrip("/")
    if wire.api_root and url.endswith(wire.api_root):
        url = url[: -len(wire.api_root)]
    return url


class WireClock:
    """Times of the timed request, read at the transport: when it left, and when each SSE event's bytes arrived."""

    def __init__(self) -> None:
        self.canned: bytes | None = None
        self.reset()

    def reset(self) -> None:
        self.sent_at: float | None = None
        self.last_byte_at: float | None = None
        self.event_times: list[float] = []
        self.headers: Mapping[str, str] = {}
        self._pending = b""

    def request_sent(self) -> None:
        self.reset()
        self.sent_at = time.perf_counter()

    def bytes_arrived(self, data: bytes) -> None:
        now = time.perf_counter()
        self.last_byte_at = now
        self._pending = (self._pending + data).replace(b"\r\n", b"\n")
        while b"\n\n" in self._pending:
            event, self._pending = self._pending.split(b"\n\n", 1)
            # The SDKs yield one chunk per event that has data, and stop at [DONE]; count the same events.
            data_lines = [line for line in event.split(b"\n") if line.startswith(b"data:")]
            if data_lines and data_lines[0][5:].strip() != b"[DONE]":
                self.event_times.append(now)

    def event_time(self, index: int) -> float:
        """When the bytes of the index-th SSE event arrived; now, if the transport could not see it."""
        if index < len(self.event_times):
            return self.event_times[index]
        return time.perf_counter()


def _proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) names for this URL, if any."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def _timing_transport(httpx: ModuleType, clock: WireClock, proxy: str | None) -> Any:
    """An httpx (or httpx2) transport that reports to `clock`, around the library's own HTTP transport.

    The proxy is given here rather than left to the client's environment handling: the client would route proxied
    requests around this transport, and their times would go unread.
    """

    class TimedStream(httpx.SyncByteStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __iter__(self) -> Iterator[bytes]:
            for data in self._inner:
                clock.bytes_arrived(data)
                yield data

        def close(self) -> None:
            self._inner.close()

    class TimedTransport(httpx.BaseTransport):
        def __init__(self) -> None:
            self._inner = httpx.HTTPTransport(proxy=proxy)

        def handle_request(self, request: Any) -> Any:
            if clock.canned is not None:  # rehearsal: the SDK's code path runs, nothing leaves the process
                headers = {"content-type": "text/event-stream"}
                return httpx.Response(200, headers=headers, content=clock.canned, request=request)
            clock.request_sent()
            response = self._inner.handle_request(request)
            clock.headers = response.headers
            response.stream = TimedStream(response.stream)
            return response

        def close(self) -> None:
            self._inner.close()

    return TimedTransport()


_REHEARSAL_STREAM = b"".join(
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


class _DeadlineExceeded(Exception):
    """The whole request took longer than its timeout, although bytes kept coming."""


class _Client:
    """An SDK client on a timed transport, built and warmed before any clock starts."""

    def __init__(self, wire: Wire, settings: ProviderSettings) -> None:
        self.wire = wire
        self.settings = settings
        self.clock = WireClock()
        self.base_url = normalise_base_url(wire, settings.base_url)
        sdk = importlib.import_module(wire.sdk_module)
        httpx = importlib.import_module(wire.httpx_module)
        # identity: the transport reads the bytes as sent; a compressed stream could not be split into events.
        self.http = sdk.DefaultHttpxClient(
            transport=_timing_transport(httpx, self.clock, _proxy_for(self.base_url)),
            headers={"Accept-Encoding": "identity"},
            trust_env=False,
        )
        self.sdk = getattr(sdk, wire.client_class)(
            api_key=settings.api_key.reveal() if settings.api_key else "not-needed",
            base_url=self.base_url,
            timeout=settings.timeout_s,
            max_retries=0,  # the SDKs' silent retries would hide inside the latency; ours are counted
            default_headers=dict(settings.headers) or None,
            http_client=self.http,
        )

    @property
    def models_url(self) -> str:
        return self.base_url + self.wire.api_root + "/models"

    def warm(self) -> Any:
        """Open the connection with a free GET /models; any HTTP answer will do, no answer raises. Returns it."""
        headers = {"Authorization": f"Bearer {self.settings.api_key.reveal() if self.settings.api_key else ''}"}
        headers.update(self.settings.headers)
        response = self.http.get(self.models_url, headers=headers, timeout=self.settings.timeout_s)
        response.read()
        return response

    def rehearse(self) -> None:
        """Run the SDK's streaming code path once on a canned answer, offline, so its first-use set-up is done."""
        self.clock.canned = _REHEARSAL_STREAM
        try:
            for _ in self._create(model="rehearsal", prompt="rehearsal", stream=True):
                pass
        finally:
            self.clock.canned = None

    def _create(self, *, model: str, prompt: str, stream: bool) -> Any:
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.settings.max_tokens,
            "stream": stream,
        }
        if stream and self.wire.usage_request == "stream_options":
            kwargs["stream_options"] = {"include_usage": True}
        elif stream and self.wire.usage_request == "extra_body":
            kwargs["extra_body"] = {"stream_options": {"include_usage": True}}
        return self.sdk.chat.completions.create(**kwargs)

    def close(self) -> None:
        self.sdk.close()
        self.http.close()


@dataclass
class _Reading:
    """What one attempt saw, before cost; times are perf_counter seconds."""

    sent_at: float
    first_token_at: float | None = None
    first_answer_at: float | None = None
    last_token_at: float | None = None
    usage: Any = None
    text: str = ""
    finish_reason: str | None = None
    response_id: str | None = None


def _reasoning_text(delta: Any) -> str | None:
    for name in ("reasoning", "reasoning_content"):
        value = getattr(delta, name, None)
        if value:
            return value
    return None


def _stream_once(client: _Client, model: str, prompt: str) -> _Reading:
    stream = client._create(model=model, prompt=prompt, stream=True)
    clock = client.clock
    reading = _Reading(sent_at=clock.sent_at if clock.sent_at is not None else time.perf_counter())
    deadline = reading.sent_at + client.settings.timeout_s
    parts: list[str] = []
    try:
        for index, chunk in enumerate(stream):
            arrived = clock.event_time(index)
            if arrived > deadline:
                raise _DeadlineExceeded()
            reading.response_id = reading.response_id or getattr(chunk, "id", None)
            x_groq = getattr(chunk, "x_groq", None)
            usage = getattr(chunk, "usage", None) or getattr(x_groq, "usage", None)
            if usage is not None:
                reading.usage = usage
            for choice in chunk.choices or ():
                delta = choice.delta
                content = getattr(delta, "content", None)
                reasoning = _reasoning_text(delta)
                if content or reasoning or getattr(delta, "tool_calls", None):
                    if reading.first_token_at is None:
                        reading.first_token_at = arrived
                    reading.last_token_at = arrived
                if content:
                    parts.append(content)
                    if reading.first_answer_at is None:
                        reading.first_answer_at = arrived
                if choice.finish_reason:
                    reading.finish_reason = choice.finish_reason
    finally:
        stream.close()
    reading.text = "".join(parts)
    return reading


def _complete_once(client: _Client, model: str, prompt: str) -> _Reading:
    completion = client._create(model=model, prompt=prompt, stream=False)
    clock = client.clock
    reading = _Reading(sent_at=clock.sent_at if clock.sent_at is not None else time.perf_counter())
    reading.last_token_at = clock.last_byte_at or time.perf_counter()
    reading.usage = completion.usage
    reading.response_id = completion.id
    if completion.choices:
        choice = completion.choices[0]
        reading.text = choice.message.content or ""
        reading.finish_reason = choice.finish_reason
    return reading


def _timed(client: _Client, model: str, prompt: str) -> _Reading:
    """The timed request, with garbage collection held off: a collection would delay reading the socket."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return (_stream_once if client.settings.stream else _complete_once)(client, model, prompt)
    finally:
        if gc_was_enabled:
            gc.enable()


@dataclass(frozen=True)
class _Failure:
    error_type: str
    http_status: int | None
    message: str
    request_id: str | None
    retry_after_s: float | None


def _status_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(getattr(exc, "message", None) or exc)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return None


def classify(exc: BaseException, settings: ProviderSettings, model: str, endpoint: str) -> _Failure:
    """Map any SDK's exception to one error_type, an HTTP status and a one-line, scrubbed message."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    response = getattr(exc, "response", None)
    headers: Mapping[str, str] = getattr(response, "headers", None) or {}
    request_id = getattr(exc, "request_id", None) or headers.get("x-request-id") or headers.get("request-id")
    status = getattr(exc, "status_code", None)
    retry_after = None
    # groq's and together's streams let httpx's own errors through unwrapped, so both families are named here.
    if isinstance(exc, _DeadlineExceeded) or names & {"APITimeoutError", "TimeoutException"}:
        kind, message = "timeout", f"no complete answer within {settings.timeout_s:g} s"
    elif status is not None:
        message = f"HTTP {status}: {_status_message(exc)}"
        if status in (401, 403):
            kind = "auth"
            message += f" (check {settings.key_env})" if settings.key_env else ""
        elif status == 404:
            kind = "not_found"
            message += f" (model {model!r} may be retired: {settings.model_hint})"
        elif status == 429:
            kind, retry_after = "rate_limit", _retry_after(headers)
        elif status >= 500:
            kind, retry_after = "server", _retry_after(headers)
        else:
            kind = "bad_request"
    elif names & {"APIConnectionError", "TransportError"}:
        cause = exc if "TransportError" in names else (exc.__cause__ or exc.__context__)
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        kind, message = "connection", f"connection to {endpoint} failed: {detail}"
    else:
        kind, message = "bad_response", f"unreadable response: {type(exc).__name__}: {exc}"
    return _Failure(kind, status, scrub(message, known_secrets(settings)), request_id, retry_after)


def _usage_int(usage: Any, *path: str) -> int | None:
    value = usage
    for name in path:
        value = getattr(value, name, None)
        if value is None:
            return None
    return int(value)


def _cost(
    provider: str, model: str, settings: ProviderSettings, pricing: Mapping[str, Price], pricing_file: str,
    usage: Any, input_tokens: int | None, output_tokens: int | None, cached_tokens: int | None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    p = settings.price or pricing.get(model)
    fields: dict[str, Any] = {}
    warnings: tuple[str, ...] = ()
    if p is not None:
        fields.update(
            price_input_per_mtok=p.input,
            price_cached_input_per_mtok=p.cached_input,
            price_output_per_mtok=p.output,
            price_as_of=p.as_of,
        )
    reported = getattr(usage, "cost", None) if usage is not None else None
    if isinstance(reported, (int, float, str)) and not isinstance(reported, bool):
        fields.update(cost_usd=Decimal(str(reported)), cost_source="provider")
    elif p is not None and input_tokens is not None and output_tokens is not None:
        fields.update(cost_usd=cost_usd(p, input_tokens, output_tokens, cached_tokens or 0), cost_source="pricing")
    elif p is None:
        where = "benchmark.toml (input_price, output_price)" if not pricing else f"PRICING in {pricing_file}"
        warnings = (missing_price_warning(provider, model, where),)
    return fields, warnings


def measure(
    provider: str,
    prompt: str,
    model: str,
    settings: ProviderSettings,
    *,
    wire: Wire,
    pricing: Mapping[str, Price],
    pricing_file: str,
) -> Measurement:
    """Make one timed request (plus the engine's own retries), and return what it measured or how it failed."""
    base = dict(provider=provider, model=model, stream=settings.stream)
    client = _Client(wire, settings)
    base["endpoint"] = redact_url(client.base_url)
    try:
        if settings.stream:
            client.rehearse()
        attempt = 0
        while True:
            attempt += 1
            started_at = utc_now()
            try:
                client.warm()
                reading = _timed(client, model, prompt)
                break
            except Exception as exc:
                failure = classify(exc, settings, model, base["endpoint"])
            if failure.error_type not in RETRYABLE or attempt > settings.retries:
                return Measurement(
                    **base,
                    started_at=started_at,
                    success=False,
                    attempts=attempt,
                    error_type=failure.error_type,
                    http_status=failure.http_status,
                    error_message=failure.message,
                    request_id=failure.request_id,
                )
            wait = failure.retry_after_s if failure.retry_after_s is not None else BACKOFF_BASE_S * 2 ** (attempt - 1)
            time.sleep(min(wait, MAX_RETRY_WAIT_S))
    finally:
        client.close()

    def ms(at: float | None) -> float | None:
        return None if at is None else (at - reading.sent_at) * 1000

    usage = reading.usage
    input_tokens = _usage_int(usage, "prompt_tokens")
    output_tokens = _usage_int(usage, "completion_tokens")
    cached_tokens = _usage_int(usage, "prompt_tokens_details", "cached_tokens")
    ttft_ms = ms(reading.first_token_at) if settings.stream else None
    latency_ms = ms(reading.last_token_at)
    text, truncated = cap_text(reading.text)
    cost_fields, warnings = _cost(
        provider, model, settings, pricing, pricing_file, usage, input_tokens, output_tokens, cached_tokens
    )
    if usage is None:
        warnings += (f"{provider} sent no token usage: tokens, speed and cost are left empty",)
    headers = client.clock.headers
    return Measurement(
        **base,
        started_at=started_at,
        success=True,
        attempts=attempt,
        ttft_ms=ttft_ms,
        answer_ttft_ms=ms(reading.first_answer_at) if settings.stream else None,
        latency_ms=latency_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=_usage_int(usage, "completion_tokens_details", "reasoning_tokens"),
        tokens_per_second=decode_tokens_per_second(output_tokens, ttft_ms, latency_ms),
        finish_reason=reading.finish_reason,
        request_id=headers.get("x-request-id") or headers.get("request-id") or reading.response_id,
        response_text=text,
        response_truncated=truncated,
        warnings=warnings,
        **cost_fields,
    )


class ModelListError(Exception):
    """GET /models did not answer with a list of models (no answer, an HTTP error, or something else)."""


def list_models(wire: Wire, settings: ProviderSettings) -> list[str]:
    """The model ids the provider's free GET /models lists (no tokens spent)."""
    client = _Client(wire, settings)
    try:
        try:
            response = client.warm()
        except Exception as exc:
            failure = classify(exc, settings, "", redact_url(client.models_url))
            raise ModelListError(
                f"{failure.error_type}: {failure.message} (check the base URL, the network, and that it is up)"
            ) from None
        if response.status_code >= 400:
            detail = scrub(response.text, known_secrets(settings))[:200]
            fix = {401: f"check {settings.key_env}", 403: f"check {settings.key_env}",
                   404: "this endpoint lists no models: check its base URL"}.get(response.status_code, "try again")
            raise ModelListError(
                f"GET {redact_url(client.models_url)} answered HTTP {response.status_code}: {detail} ({fix})"
            )
        try:
            return [str(item["id"]) for item in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise ModelListError(f"GET {redact_url(client.models_url)} did not answer with a model list") from None
    finally:
        client.close()
