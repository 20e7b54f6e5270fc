"""A loopback HTTP server that answers chat requests with exact bytes: recorded provider streams, replayed as sent.

Each reply is a status, headers and a list of (delay, bytes) parts, written one by one (HTTP/1.1 chunked for streams,
Content-Length otherwise) and logged with the server's perf_counter time just before each write, so a test can tell
which part a measured time belongs to. GET .../models answers a model list; other POST paths (a tokenizer's) answer
from `routes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import re
import socket
import ssl
import threading
import time
from typing import Callable

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "wire"
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def sse_parts(body: bytes, gap_s: float = 0.002, first_s: float = 0.01) -> list[tuple[float, bytes]]:
    """A stream body cut after each blank line (each event, comment block or keep-alive), to send with gaps."""
    parts, start = [], 0
    for match in _EVENT_END.finditer(body):
        parts.append((first_s if not parts else gap_s, body[start : match.end()]))
        start = match.end()
    if start < len(body):
        parts.append((gap_s, body[start:]))
    return parts


@dataclass
class Reply:
    """One answer to a chat request."""

    parts: list[tuple[float, bytes]]
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    chunked: bool = True  # Transfer-Encoding: chunked (a stream); else Content-Length


def fixture_reply(entry: dict, gap_s: float = 0.002) -> Reply:
    """The manifest entry's recorded body, as its provider served it."""
    body = (FIXTURES / entry["file"]).read_bytes()
    headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
    if entry["file"].endswith(".sse"):
        return Reply(sse_parts(body, gap_s), entry["http_status"], headers, chunked=True)
    return Reply([(0.01, body)], entry["http_status"], headers or {"content-type": "application/json"}, chunked=False)


def manifest() -> list[dict]:
    return json.loads((FIXTURES / "manifest.json").read_text())


@dataclass
class Served:
    """What the server did for one chat request: the time just before each part was written."""

    path: str
    body: dict
    received_at: float
    part_sent_at: list[float] = field(default_factory=list)
    query: str = ""  # the request target's query string, as sent


class WireServer:
    """`with WireServer() as server: server.reply(Reply(...)); ... server.url`."""

    def __init__(self, tls: "ssl.SSLContext | None" = None) -> None:
        self.scheme = "https" if tls else "http"
        self.replies: list[Reply] = []  # served in order; the last one again and again
        self.routes: dict[str, Callable[[dict], tuple[int, object]]] = {}
        self.served: list[Served] = []
        self.models = ["m"]
        self.answer_paths = ("/chat/completions", "/responses", "/v1/messages")  # POSTs answered from `replies`
        self.listing: Callable[[list[str]], object] = lambda models: {
            "object": "list", "data": [{"id": m, "object": "model"} for m in models]}
        self.model_list: Callable[[str], object] | None = None  # GET .../models's answer by its path, if given
        self.listed: list[tuple[str, dict]] = []  # each GET .../models: its path and headers
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: object) -> None:
                pass

            def _json(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.split("?")[0].rstrip("/").endswith("/models"):
                    outer.listed.append((self.path, dict(self.headers)))
                    self._json(200, outer.model_list(self.path) if outer.model_list else outer.listing(outer.models))
                else:
                    self._json(404, {"error": {"message": f"no route for GET {self.path}"}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                received_at = time.perf_counter()
                body = json.loads(raw or b"{}")
                path = self.path.split("?")[0]
                if not path.endswith(outer.answer_paths):
                    route = outer.routes.get(path)
                    if route is None:
                        self._json(404, {"error": {"message": f"no route for POST {self.path}"}})
                    else:
                        self._json(*route(body))
                    return
                served = Served(path, body, received_at, query=self.path.partition("?")[2])
                outer.served.append(served)
                reply = outer.replies[min(len(outer.served) - 1, len(outer.replies) - 1)]
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunked:
                    self.send_header("transfer-encoding", "chunked")
                else:
                    self.send_header("content-length", str(sum(len(p) for _, p in reply.parts)))
                self.end_headers()
                self.wfile.flush()
                start = time.perf_counter()
                due = start
                for delay, part in reply.parts:
                    due += delay
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    framed = b"%x\r\n%s\r\n" % (len(part), part) if reply.chunked else part
                    served.part_sent_at.append(time.perf_counter())
                    self.wfile.write(framed)
                if reply.chunked:
                    self.wfile.write(b"0\r\n\r\n")

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hangs up (a timeout) is normal here

        self._server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def reply(self, *replies: Reply) -> "WireServer":
        self.replies = list(replies)
        return self

    def __enter__(self) -> "WireServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
