"""The simulator's HTTP server: the table of routes to each API's handler, and `Simulator`, which serves them on a
loopback port in a background thread.

Every request is logged with the server's own perf_counter times (same clock as the client, same process), taken
just before each token's bytes are written, so a measurement can be compared with the truth: a client can never see a
token earlier than its logged time.
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer
import re
import sys
import threading
import time
from typing import Callable

from .chat_completions import chat_completions, list_models as chat_models
from .exchange import Exchange
from .generate_content import generate_content, get_model as gemini_model, list_models as gemini_models
from .generate_content import stream_generate_content
from .messages import get_model as anthropic_model, list_models as anthropic_models, messages
from .profiles import DEFAULT_PROFILE, ModelProfile
from .responses import responses
from .state import RequestRecord, SimulatorState

Handler = Callable[[Exchange], None]  # a POST's handler reads its body through intake.admitted


def _api(http: Exchange) -> str:
    """Which API a GET of the models speaks: the path's first segment, else the headers only its SDK sends."""
    first = http.path.lstrip("/").split("/", 1)[0]
    if first == "anthropic" or http.headers.get("anthropic-version"):
        return "messages"
    if first == "gemini" or http.headers.get("x-goog-api-key"):
        return "generate_content"
    return "chat_completions"


def list_models(http: Exchange) -> None:
    listing = {"messages": anthropic_models, "generate_content": gemini_models}
    listing.get(_api(http), chat_models)(http)


def get_model(http: Exchange) -> None:
    api = _api(http)
    if api == "messages":
        anthropic_model(http)
    elif api == "generate_content":
        gemini_model(http)
    else:  # OpenAI's models.retrieve: no client of ours asks
        http.send_json(404, {"error": {"message": f"no route for GET {http.path}"}})


# (method, how the path ends (a regular expression; the query string aside), handler): the first match answers,
# anything else is a 404. The path may carry any prefix: its first segment picks a provider's habits (see
# chat_completions and _api). An API is one module and its rows here.
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", r"/models", list_models),
    ("GET", r"/models/[^:]+", get_model),  # Gemini's models.get, Anthropic's models.retrieve
    ("POST", r"/chat/completions", chat_completions),
    ("POST", r"/v1/messages", messages),
    ("POST", r"/responses", responses),
    ("POST", r"/models/.+:streamGenerateContent", stream_generate_content),
    ("POST", r"/models/.+:generateContent", generate_content),
)
_COMPILED = tuple((method, re.compile(f"(?:{ending})$"), handler) for method, ending, handler in ROUTES)


def route(method: str, path: str) -> Handler | None:
    path = path.split("?", 1)[0].rstrip("/")
    return next((handler for m, ending, handler in _COMPILED if m == method and ending.search(path)), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: "Simulator") -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up (a timeout, a closed stream) is normal here; anything else is a bug worth showing.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(Exchange):
    def do_GET(self) -> None:
        sim = self.simulator
        self.request_id = sim.next_request_id()
        received_at = time.perf_counter()
        # Every GET is logged, routed or not: a client's warm-up shows in the log.
        sim.record(
            RequestRecord(
                path=self.path, model=None, stream=False, received_at=received_at,
                client_port=self.client_address[1], authorization=self.credential(), api=_api(self),
            )
        )
        handler = route("GET", self.path)
        if handler is None:
            self.send_json(404, {"error": {"message": f"no route for GET {self.path}"}})
            return
        handler(self)

    def do_POST(self) -> None:
        self.request_id = self.simulator.next_request_id()
        handler = route("POST", self.path)
        if handler is None:
            self.close_connection = self.unread_body = True  # its body, unread, is no request of its own
            self.send_json(404, {"error": {"message": f"no route for POST {self.path}"}})
        else:
            handler(self)  # which reads the body (intake.admitted), within its bounds
        if self.unread_body:
            self.discard_body()


class Simulator(SimulatorState):
    """Run the server on a free loopback port in a background thread: `with Simulator(...) as sim: sim.url`."""

    def __init__(
        self,
        profiles: dict[str, ModelProfile] | None = None,
        default: ModelProfile | None = DEFAULT_PROFILE,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(profiles, default)
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="simulator", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, provider: str) -> str:
        """The base URL to give each provider's SDK so that its requests land on its own flavour."""
        # anthropic's SDK appends /v1/messages to its base URL, google-genai /{version}/models/...
        suffix = {
            "openai": "/v1", "groq": "/groq", "together": "/together", "openrouter": "/openrouter/api/v1",
            "anthropic": "/anthropic", "gemini": "/gemini",
        }
        return self.url + suffix.get(provider, "/v1")

    def start(self) -> "Simulator":
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted, then close the socket (the command line's way)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
