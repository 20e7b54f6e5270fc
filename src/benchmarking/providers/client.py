"""What every provider reached through an SDK shares, whatever its API: client set-up, warm-up, the timed request and
retries; the API it speaks is its Wire's dialect (dialects/), and what came back becomes a Measurement in outcome.py.

The real SDK makes each request and raises its own errors; the times, and what the answer said, are read from the
bytes on the wire under it (wire.py, reader.py, the dialect), so that an SDK's parsing can neither delay the clock
nor hide what a provider sent.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
import importlib
import re
import threading
from typing import Any, Callable, Iterator, Mapping
import urllib.request
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..settings.model import ProviderSettings
from ..settings.urls import redact_url
from ..deferred import later
from ..measurement import Measurement, utc_now
from ..pricing import Price
from ..stopping import pause
from .answer import Answer
from .dialects import Dialect, PromptInput, chat_completions
from .dialects.chat_completions import messages_of
from .failures import RETRYABLE, classify, known_secrets, scrub
from .outcome import Attempt, measurement_of
from .reader import AnswerReader
from .tokenize import ServerCount, count_tokens
from .wire import TimedSection, WireClock, WireRecord, timing_transport

MAX_RETRY_WAIT_S = 60.0
MAX_MODEL_PAGES = 20  # of a paged model listing: more models than any provider lists
BACKOFF_BASE_S = 0.5


@dataclass(frozen=True)
class Wire:
    """How one SDK is built and spoken to."""

    sdk_module: str
    client_class: str
    httpx_module: str
    default_base_url: str
    api_root: str = ""  # what the SDK puts between base_url and the API's paths (/chat/completions, /models)
    usage_request: str = "stream_options"  # "stream_options" | "extra_body" | "none" (the API sends usage anyway)
    dialect: Dialect = chat_completions  # the API it speaks: the request's body, how its answer reads
    models_path: str = "/models"  # the free model listing, after api_root: the warm-up's and `check`'s request
    # How the SDK's client is made, for an SDK whose constructor is not OpenAI's shape (api_key, base_url, timeout,
    # max_retries, default_headers, http_client): called with the module and those same keyword arguments.
    build_client: Callable[..., Any] | None = None
    # The API root the built SDK client chose, for an SDK that picks its API version itself (google-genai).
    api_root_of: Callable[[Any], str] | None = None
    # An API version the SDK puts itself after the base URL (Gemini's /v1beta): one ending a base URL is removed.
    version_suffix: str | None = None


def auth_headers(settings: ProviderSettings, dialect: Dialect = chat_completions) -> dict[str, str]:
    """The headers the SDK would send for this provider's own requests (the key in its API's header, and any
    configured ones)."""
    headers = dialect.auth_headers(settings.api_key.reveal()) if settings.api_key else {}
    return {**headers, **dict(settings.headers)}


def normalise_base_url(wire: Wire, base_url: str | None) -> str:
    """The base URL the SDK expects: a trailing copy of the SDK's own API root is removed (together's /v1), or of
    the API version it adds (Gemini's /v1beta), and the query string, which base_query keeps for every request."""
    parts = urlsplit(base_url or wire.default_base_url)
    url = urlunsplit(parts._replace(query="", fragment="")).rstrip("/")
    if wire.api_root and url.endswith(wire.api_root):
        url = url[: -len(wire.api_root)]
    if wire.version_suffix:
        url = re.sub(f"(?:{wire.version_suffix})$", "", url)
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
        # An SDK without a client class of its own (google-genai) takes a plain httpx client.
        self.http = getattr(sdk, "DefaultHttpxClient", httpx.Client)(
            # The base URL's query goes on the SDK's requests, the warm-up's and the tokenizer's alike.
            transport=timing_transport(httpx, httpcore, self.clock, _proxy_for(self.base_url),
                                       base_query(settings.base_url)),
            headers={"Accept-Encoding": "identity"},
            # A redirect is answered as what it is: followed, it would send the key and the headers elsewhere and
            # time two requests as one, under this endpoint's name.
            follow_redirects=False,
            trust_env=False,
        )
        make = getattr(sdk, wire.client_class) if wire.build_client is None else partial(wire.build_client, sdk)
        self.sdk = make(
            api_key=settings.api_key.reveal() if settings.api_key else "not-needed",
            base_url=self.base_url,
            timeout=settings.timeout_s,
            max_retries=0,  # the SDKs' silent retries would hide inside the latency; ours are counted
            default_headers=dict(settings.headers) or None,
            http_client=self.http,
        )
        self.api_root = wire.api_root if wire.api_root_of is None else wire.api_root_of(self.sdk)

    @property
    def models_url(self) -> str:
        return self.base_url + self.api_root + self.wire.models_path

    def warm(self) -> Any:
        """Open the connection with a free GET /models; any HTTP answer will do, no answer raises. Returns it."""
        response = self.http.get(self.models_url, headers=auth_headers(self.settings, self.wire.dialect),
                                 timeout=self.settings.timeout_s)
        response.read()
        self.warmed = True
        return response

    def rehearse(self) -> None:
        """Run the SDK's request path once on a canned answer, offline, so its first-use set-up is done."""
        if self.rehearsed:
            return
        self.clock.canned = self.wire.dialect.REHEARSAL_STREAM
        try:
            self.send(model="rehearsal", prompt="rehearsal", stream=True, max_tokens=1)
        finally:
            self.clock.canned = None
        self.rehearsed = True

    def send(self, *, model: str, prompt: PromptInput, stream: bool, max_tokens: int) -> None:
        """The request, made and checked by the SDK (its URL, headers, body, and its error for an HTTP error status);
        the answer's bytes are read off as they come, unparsed: what they say is read from the wire afterwards
        (reader.py and the dialect), which spares parsing every chunk into objects twice."""
        request = self.wire.dialect.request(model, prompt, max_tokens, stream, self.wire.usage_request)
        with self.wire.dialect.open_stream(self.sdk, request) as response:
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
                    transport=timing_transport(httpx, httpcore, WireClock(), _proxy_for(self.base_url),
                                               base_query(self.settings.base_url)),
                    headers={"Accept-Encoding": "identity"},
                    follow_redirects=False,
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


def _attempt(client: _Client, model: str, prompt: PromptInput, settings: ProviderSettings, endpoint: str
             ) -> Attempt:
    if settings.warm_each_request or not client.warmed:
        try:
            client.warm()
        except Exception as exc:
            return Attempt(None, Answer(), classify(exc, settings, model, endpoint))
    reader = AnswerReader(settings.stream, client.wire.dialect)
    record, error = client.timed_request(model, prompt, settings, reader)
    answer = Answer()
    if record is not None and record.status is not None and record.status < 400:
        answer = reader.answer(record)
    return Attempt(record, answer, client.wire.dialect.judge(record, answer, error, settings, model, endpoint))


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
                return measurement_of(provider, model, settings, pricing, pricing_file, endpoint, started_at,
                                      attempts, attempt, counted, wire.dialect)

            return later(lambda: measured(_server_count(client, attempt, model, prompt, settings,
                                                        client.untimed_http())),
                         lambda: measured(None))
        counted = _server_count(client, attempt, model, prompt, settings)
    finally:
        if pool is None:
            client.close()
    return measurement_of(provider, model, settings, pricing, pricing_file, endpoint, started_at, attempts,
                          attempt, counted, wire.dialect)


def _counts(attempt: Attempt, settings: ProviderSettings) -> bool:
    """Whether the server's tokenizer is asked: only where asked for, and only if the provider sent no usage."""
    answer = attempt.answer
    return settings.token_count == "tokenize" and answer.usage is None and answer.has_output


def _server_count(client: _Client, attempt: Attempt, model: str, prompt: PromptInput, settings: ProviderSettings,
                  http: Any = None) -> ServerCount | None:
    """Tokens counted by the server's own tokenizer, where _counts says so (through `http`, else the client's)."""
    answer = attempt.answer
    if not _counts(attempt, settings):
        return None
    return count_tokens(http or client.http, client.base_url, auth_headers(settings, client.wire.dialect),
                        settings.timeout_s, model,
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
            listed: dict[str, str | None] = {}
            listing = getattr(wire.dialect, "listed_models", chat_completions.listed_models)
            next_page = getattr(wire.dialect, "next_page", lambda body: None)  # Anthropic's and Gemini's page
            for _ in range(MAX_MODEL_PAGES):
                body = response.json()
                listed.update(listing(body))
                if (query := next_page(body)) is None:
                    break
                response = client.http.get(client.models_url, params=query,
                                           headers=auth_headers(settings, wire.dialect),
                                           timeout=settings.timeout_s)
                response.raise_for_status()
            return listed
        except Exception:
            raise ModelListError(f"GET {redact_url(client.models_url)} did not answer with a model list") from None
    finally:
        client.close()
