"""What every OpenAI-shaped API shares: client set-up, warm-up, the timed request, retries, and turning what came
back into a Measurement.

The real SDK makes each request and raises its own errors; the times, and what the answer said, are read from the
bytes on the wire under it (wire.py, answer.py), so that an SDK's parsing can neither delay the clock nor hide what a
provider sent.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from decimal import Decimal
import importlib
import json
import threading
from typing import Any, Iterator, Mapping, Sequence
import urllib.request
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..settings.model import ProviderSettings
from ..settings.urls import redact_url
from ..deferred import later
from ..measurement import Measurement, cap_text, decode_tokens_per_second, utc_now
from ..pricing import Price, cost_usd, missing_price_warning
from ..stopping import pause
from .answer import Answer, AnswerReader
from .failures import RETRYABLE, Failure, classify, in_body_failure, known_secrets, scrub, scrub_known
from .numbers import part_of, provider_cost, text_count, usage_count
from .tokenize import ServerCount, count_tokens
from .wire import TimedSection, WireClock, WireRecord, timing_transport

MAX_RETRY_WAIT_S = 60.0
BACKOFF_BASE_S = 0.5


# What a call sends: a prompt's text (one user message), or its (role, content) messages.
PromptInput = str | Sequence[tuple[str, str]]


def messages_of(prompt: PromptInput) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": role, "content": content} for role, content in prompt]


@dataclass(frozen=True)
class Wire:
    """How one SDK is built and spoken to."""

    sdk_module: str
    client_class: str
    httpx_module: str
    default_base_url: str
    api_root: str = ""  # what the SDK puts between base_url and /chat/completions
    usage_request: str = "stream_options"  # "stream_options" | "extra_body" | "none" (the API sends usage anyway)


def auth_headers(settings: ProviderSettings) -> dict[str, str]:
    """The headers the SDK would send for this provider's own requests (the key, and any configured ones)."""
    headers = {"Authorization": f"Bearer {settings.api_key.reveal()}"} if settings.api_key else {}
    return {**headers, **dict(settings.headers)}


def normalise_base_url(wire: Wire, base_url: str | None) -> str:
    """The base URL the SDK expects: a trailing copy of the SDK's own API root is removed (together's /v1), and the
    query string, which base_query keeps for every request."""
    parts = urlsplit(base_url or wire.default_base_url)
    url = urlunsplit(parts._replace(query="", fragment="")).rstrip("/")
    if wire.api_root and url.endswith(wire.api_root):
        url = url[: -len(wire.api_root)]
    return url


def base_query(base_url: str | None) -> list[tuple[str, str]]:
    """A base URL's query (Azure's ?api-version=...), sent with every request: the SDKs would put paths after it."""
    return parse_qsl(urlsplit(base_url or "").query, keep_blank_values=True)


def _proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) names for this URL, if any."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


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


def client_key(wire: Wire, settings: ProviderSettings) -> tuple[object, ...]:
    """What an SDK client is built from: requests that share these can share a client (and its connection)."""
    return (wire, settings.base_url, settings.api_key, settings.headers, settings.timeout_s)


class _Client:
    """An SDK client on a timed transport, built and warmed before any clock starts.

    Built from the connection's settings (client_key); what varies by request (model, prompt, max_tokens, stream)
    comes with each request, so that one client serves every request of a run to one endpoint.
    """

    def __init__(self, wire: Wire, settings: ProviderSettings) -> None:
        self.wire = wire
        self.settings = settings
        self.rehearsed = False
        self.warmed = False
        self.clock = WireClock()
        self._untimed: Any = None
        self._untimed_lock = threading.Lock()
        self.base_url = normalise_base_url(wire, settings.base_url)
        sdk = importlib.import_module(wire.sdk_module)
        httpx = importlib.import_module(wire.httpx_module)
        httpcore = importlib.import_module(wire.httpx_module.replace("httpx", "httpcore"))  # httpx2 sits on httpcore2
        # identity: the transport reads the bytes as sent; a compressed stream could not be split into events.
        self.http = sdk.DefaultHttpxClient(
            transport=timing_transport(httpx, httpcore, self.clock, _proxy_for(self.base_url)),
            headers={"Accept-Encoding": "identity"},
            params=base_query(settings.base_url),  # on the SDK's requests, the warm-up and the tokenizer's alike
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
        response = self.http.get(self.models_url, headers=auth_headers(self.settings), timeout=self.settings.timeout_s)
        response.read()
        self.warmed = True
        return response

    def rehearse(self) -> None:
        """Run the SDK's request path once on a canned answer, offline, so its first-use set-up is done."""
        if self.rehearsed:
            return
        self.clock.canned = _REHEARSAL_STREAM
        try:
            self.send(model="rehearsal", prompt="rehearsal", stream=True, max_tokens=1)
        finally:
            self.clock.canned = None
        self.rehearsed = True

    def send(self, *, model: str, prompt: PromptInput, stream: bool, max_tokens: int) -> None:
        """The request, made and checked by the SDK (its URL, headers, body, and its error for an HTTP error status);
        the answer's bytes are read off as they come, unparsed: what they say is read from the wire afterwards
        (answer.py), which spares parsing every chunk into objects twice."""
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages_of(prompt),
            "max_tokens": max_tokens,
            "stream": stream,
        }
        if stream and self.wire.usage_request == "stream_options":
            kwargs["stream_options"] = {"include_usage": True}
        elif stream and self.wire.usage_request == "extra_body":
            kwargs["extra_body"] = {"stream_options": {"include_usage": True}}
        with self.sdk.chat.completions.with_streaming_response.create(**kwargs) as response:
            for _ in response.iter_bytes():
                pass

    def timed_request(self, model: str, prompt: PromptInput, settings: ProviderSettings, reader: AnswerReader
                      ) -> tuple[WireRecord | None, BaseException | None]:
        """Send the request through the SDK and read all of its answer; the wire records what came, and when, and
        the reader reads it (during the request only past wire.HOLD_BYTES)."""
        error: BaseException | None = None
        with TimedSection():
            self.clock.arm(settings.timeout_s, reader.take)
            try:
                self.send(model=model, prompt=prompt, stream=settings.stream, max_tokens=settings.max_tokens)
            except Exception as exc:
                error = _without_tracebacks(exc)
            finally:
                self.clock.disarm()
        return self.clock.record, error

    def untimed_http(self) -> Any:
        """A plain HTTP client beside the timed one, for calls that may overlap a measured request (a deferred
        count of tokens): the timed transport's clock records one request at a time."""
        with self._untimed_lock:
            if self._untimed is None:
                httpx = importlib.import_module(self.wire.httpx_module)
                httpcore = importlib.import_module(self.wire.httpx_module.replace("httpx", "httpcore"))
                # A clock of its own, never armed: it records nothing, and bounds each request in all.
                self._untimed = httpx.Client(
                    transport=timing_transport(httpx, httpcore, WireClock(), _proxy_for(self.base_url)),
                    headers={"Accept-Encoding": "identity"},
                    params=base_query(self.settings.base_url),
                    trust_env=False,
                )
            return self._untimed

    def close(self) -> None:
        self.sdk.close()
        self.http.close()
        if self._untimed is not None:
            self._untimed.close()


def _without_tracebacks(exc: BaseException) -> BaseException:
    """The exception with its chain's tracebacks dropped: they hold the SDK's stream generators, which would
    otherwise be finalised later by the garbage collector, at a random point (mid-import, even), with noise."""
    link: BaseException | None = exc
    visited: set[int] = set()
    while link is not None and id(link) not in visited:
        visited.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
    return exc


@dataclass(frozen=True)
class _Attempt:
    """One try: what the wire recorded (None if the request never left), how it read, and how it failed if it did."""

    record: WireRecord | None
    answer: Answer
    failure: Failure | None


def _request_id(record: WireRecord | None, answer: Answer) -> str | None:
    headers = record.headers if record is not None else {}
    return headers.get("x-request-id") or headers.get("request-id") or answer.response_id


def _judge(record: WireRecord | None, answer: Answer, error: BaseException | None, settings: ProviderSettings,
           model: str, endpoint: str) -> Failure | None:
    """How the attempt failed, if it did: a request that did not complete is a failure, never a success."""
    if error is not None and isinstance(getattr(error, "status_code", None), int):
        return classify(error, settings, model, endpoint)  # an HTTP error status
    request_id = _request_id(record, answer)
    if answer.error is not None:
        return in_body_failure(answer.error, settings, model, request_id)
    if error is not None:
        failure = classify(error, settings, model, endpoint)
        return failure if failure.request_id else replace(failure, request_id=request_id)
    if answer.too_large is not None:
        return Failure("bad_response", None, f"unreadable response: {answer.too_large}, more than is read",
                       request_id)
    if answer.unreadable is not None:
        return Failure("bad_response", None, scrub(f"unreadable response: an event is not JSON: {answer.unreadable}",
                                                   known_secrets(settings)), request_id)
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


def _attempt(client: _Client, model: str, prompt: PromptInput, settings: ProviderSettings, endpoint: str
             ) -> _Attempt:
    if settings.warm_each_request or not client.warmed:
        try:
            client.warm()
        except Exception as exc:
            return _Attempt(None, Answer(), classify(exc, settings, model, endpoint))
    reader = AnswerReader(settings.stream)
    record, error = client.timed_request(model, prompt, settings, reader)
    answer = Answer()
    if record is not None and record.status is not None and record.status < 400:
        answer = reader.answer(record)
    return _Attempt(record, answer, _judge(record, answer, error, settings, model, endpoint))


def measure(
    provider: str,
    prompt: PromptInput,
    model: str,
    settings: ProviderSettings,
    *,
    wire: Wire,
    pricing: Mapping[str, Price],
    pricing_file: str,
) -> Measurement:
    """Make one timed request (plus the engine's own retries), and return what it measured or how it failed.

    Inside `kept_clients()` (a run), the client for this endpoint is built once and reused; else it is built for
    this request and closed after it.
    """
    pool = _kept.get()
    client = pool.client(wire, settings) if pool is not None else _Client(wire, settings)
    endpoint = redact_url(client.base_url)
    try:
        if settings.stream:
            client.rehearse()
        attempts = 0
        while True:
            attempts += 1
            started_at = utc_now()
            attempt = _attempt(client, model, prompt, settings, endpoint)
            failure = attempt.failure
            if failure is None or failure.error_type not in RETRYABLE or attempts > settings.retries:
                break
            wait = failure.retry_after_s
            if wait is None:
                wait = BACKOFF_BASE_S * 2 ** (attempts - 1)
            if pause(min(wait, MAX_RETRY_WAIT_S)):
                break  # a stop (Ctrl-C, SIGTERM) ends the back-off: the last failure is what is stored
        if pool is not None and _counts(attempt, settings):
            # The client stays open (a run's): the count may come later, off a load slot (deferred.later).
            def measured(counted: ServerCount | None) -> Measurement:
                return _measurement(provider, model, settings, pricing, pricing_file, endpoint, started_at,
                                    attempts, attempt, counted)

            return later(lambda: measured(_server_count(client, attempt, model, prompt, settings,
                                                        client.untimed_http())),
                         lambda: measured(None))
        counted = _server_count(client, attempt, model, prompt, settings)
    finally:
        if pool is None:
            client.close()
    return _measurement(provider, model, settings, pricing, pricing_file, endpoint, started_at, attempts, attempt,
                        counted)


def _counts(attempt: _Attempt, settings: ProviderSettings) -> bool:
    """Whether the server's tokenizer is asked: only where asked for, and only if the provider sent no usage."""
    answer = attempt.answer
    return settings.token_count == "tokenize" and answer.usage is None and answer.has_output


def _server_count(client: _Client, attempt: _Attempt, model: str, prompt: PromptInput, settings: ProviderSettings,
                  http: Any = None) -> ServerCount | None:
    """Tokens counted by the server's own tokenizer, where _counts says so (through `http`, else the client's)."""
    answer = attempt.answer
    if not _counts(attempt, settings):
        return None
    return count_tokens(http or client.http, client.base_url, auth_headers(settings), settings.timeout_s, model,
                        messages_of(prompt), answer)


class _ClientPool:
    """The SDK clients of one run, one per endpoint (client_key), closed when the run ends."""

    def __init__(self) -> None:
        self._clients: dict[tuple[object, ...], _Client] = {}

    def client(self, wire: Wire, settings: ProviderSettings) -> _Client:
        key = client_key(wire, settings)
        if key not in self._clients:
            self._clients[key] = _Client(wire, settings)
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


_kept: ContextVar[_ClientPool | None] = ContextVar("kept_clients", default=None)


def prepare_client(wire: Wire, settings: ProviderSettings) -> None:
    """Within kept_clients(): build the endpoint's client, rehearse it and open its connection, untimed and
    unstored, so that its first measured request starts as the later ones do. A failure here is left for that
    request to meet and record."""
    pool = _kept.get()
    if pool is None:
        return
    client = pool.client(wire, settings)
    try:
        if settings.stream:
            client.rehearse()
        client.warm()
    except Exception:
        pass


@contextmanager
def kept_clients() -> Iterator[None]:
    """Within it, each endpoint's SDK client is built once and reused by every request (a run); closed after.

    Building a client costs milliseconds of CPU (an SSL context loads the CA bundle, even for http://): paid once per
    run and endpoint instead of once per request. Each request is still warmed and timed on its own.
    """
    pool = _ClientPool()
    token = _kept.set(pool)
    try:
        yield
    finally:
        _kept.reset(token)
        pool.close()


def _cost_fields(provider: str, model: str, settings: ProviderSettings, pricing: Mapping[str, Price],
                 pricing_file: str, reported: Decimal | None, input_tokens: int | None, output_tokens: int | None,
                 cached_tokens: int | None) -> tuple[dict[str, Any], tuple[str, ...]]:
    p = settings.price or pricing.get(model)
    fields: dict[str, Any] = {}
    if p is not None:
        fields.update(price_input_per_mtok=p.input, price_cached_input_per_mtok=p.cached_input,
                      price_output_per_mtok=p.output, price_as_of=p.as_of)
    if reported is not None:
        fields.update(cost_usd=reported, cost_source="provider")
    elif p is not None and input_tokens is not None and output_tokens is not None:
        fields.update(cost_usd=cost_usd(p, input_tokens, output_tokens, cached_tokens or 0), cost_source="pricing")
    elif p is None:
        where = "benchmark.toml (input_price, output_price)" if not pricing else f"PRICING in {pricing_file}"
        return fields, (missing_price_warning(provider, model, where),)
    return fields, ()


def _measurement(
    provider: str, model: str, settings: ProviderSettings, pricing: Mapping[str, Price], pricing_file: str,
    endpoint: str, started_at: Any, attempts: int, attempt: _Attempt, counted: ServerCount | None,
) -> Measurement:
    record, answer, failure = attempt.record, attempt.answer, attempt.failure
    secrets = known_secrets(settings)
    problems: list[str] = []
    usage = answer.usage
    input_tokens = usage_count(usage, ("prompt_tokens",), problems)
    output_tokens = usage_count(usage, ("completion_tokens",), problems)
    cached_tokens = usage_count(usage, ("prompt_tokens_details", "cached_tokens"), problems)
    if cached_tokens is None:  # Together puts it beside the other counts
        cached_tokens = usage_count(usage, ("cached_tokens",), problems)
    reasoning_tokens = usage_count(usage, ("completion_tokens_details", "reasoning_tokens"), problems)
    cached_tokens = part_of(cached_tokens, input_tokens, ("cached_tokens", "prompt_tokens"), problems)
    token_source = "usage" if usage is not None else None
    if counted is not None:
        if counted.output_tokens is not None:
            token_source, input_tokens, output_tokens = "tokenize", counted.input_tokens, counted.output_tokens

    def ms(at: float | None) -> float | None:
        return None if at is None or record is None else (at - record.sent_at) * 1000

    if settings.stream:
        ttft_ms, answer_ttft_ms, latency_ms = (
            ms(answer.first_output_at), ms(answer.first_answer_at), ms(answer.last_output_at)
        )
    else:
        ttft_ms = answer_ttft_ms = None
        latency_ms = ms(record.last_byte_at) if record is not None and answer.has_output else None
    cost_fields, warnings = _cost_fields(
        provider, model, settings, pricing, pricing_file, provider_cost(usage, problems),
        input_tokens, output_tokens, cached_tokens,
    )
    if failure is None and usage is None and token_source is None:
        warnings += (f"{provider} sent no token usage: tokens, speed and cost are left empty",)
    warnings += tuple(f"{provider} sent a value that makes no sense: {p}" for p in problems)
    if counted is not None and counted.problem:
        warnings += (counted.problem,)
    # Tokens the model generated before its first visible token and never streamed (OpenAI's reasoning models)
    # are not part of the decode that the stream shows.
    hidden = reasoning_tokens if reasoning_tokens and not answer.reasoning_streamed else 0
    decoded = None if output_tokens is None else output_tokens - hidden
    headers = record.headers if record is not None else {}
    text, truncated = cap_text(scrub_known(answer.text, secrets))
    truncated = truncated or answer.text_truncated
    request_id = _request_id(record, answer) or (failure.request_id if failure else None)
    return Measurement(
        provider=provider,
        model=model,
        stream=settings.stream,
        endpoint=endpoint,
        started_at=started_at,
        success=failure is None,
        attempts=attempts,
        ttft_ms=ttft_ms,
        answer_ttft_ms=answer_ttft_ms,
        latency_ms=latency_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
        tokens_per_second=decode_tokens_per_second(decoded, ttft_ms, latency_ms) if failure is None else None,
        finish_reason=answer.finish_reason,
        request_id=scrub_known(request_id, secrets) if request_id else None,
        response_text=(text or None) if failure is not None else text,
        response_truncated=truncated,
        error_type=failure.error_type if failure else None,
        http_status=failure.http_status if failure else None,
        error_message=failure.message if failure else None,
        upstream_provider=answer.upstream_provider,
        token_source=token_source,
        sent_at_s=record.sent_at if record is not None else None,
        ratelimit_remaining_requests=text_count(headers.get("x-ratelimit-remaining-requests")),
        ratelimit_remaining_tokens=text_count(headers.get("x-ratelimit-remaining-tokens")),
        warnings=warnings,
        **cost_fields,
    )


class ModelListError(Exception):
    """GET /models did not answer with a list of models (no answer, an HTTP error, or something else)."""


def list_models(wire: Wire, settings: ProviderSettings) -> dict[str, str | None]:
    """The model ids the provider's free GET /models lists (no tokens spent), each with the shutdown date it
    announces (OpenAI's `shutdown_date`, YYYY-MM-DD), else None."""
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
            return {str(item["id"]): item.get("shutdown_date") for item in response.json()["data"]}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ModelListError(f"GET {redact_url(client.models_url)} did not answer with a model list") from None
    finally:
        client.close()
