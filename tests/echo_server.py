"""A careless server on loopback: every answer echoes what it was sent (headers, path, query, body), in every form.

Each echoed value appears as sent, lower-cased, upper-cased, URL-encoded and cut in two halves, so a scrubber that
misses any of those forms shows the secret. POST .../chat/completions for a model whose name holds "ok" answers a
stream whose text is the echo (the echo stored as response_text); any other request gets `status` with the echo as
its error (providers, PostgREST, notification receivers alike).
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import threading
from urllib.parse import quote, unquote


def echo_forms(value: str) -> str:
    """The value as sent, in both cases, URL-encoded and decoded, and cut in two halves with a space between."""
    half = len(value) // 2
    return " | ".join((value, value.lower(), value.upper(), quote(value, safe=""), unquote(value),
                       value[:half] + " " + value[half:]))


class EchoServer:
    """Answers every request with an echo of it; `requests` counts them."""

    def __init__(self, status: int = 500, said: str = "") -> None:
        self.status = status
        self.said = said  # put in front of every error's message
        self.code = "XX000"  # the error's code (PostgREST's SQLSTATE): 22P02 makes the row's fault
        self.requests = 0
        self.bodies: list[str] = []  # every request's body, as received
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                server.requests += 1
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                server.bodies.append(body)
                # Headers first: an error message is cut at a few hundred characters, and they hold the keys.
                echo = " ; ".join([f"{k}: {echo_forms(v)}" for k, v in self.headers.items()
                                   if k.lower() not in ("host", "accept", "accept-encoding", "connection",
                                                        "content-length", "content-type", "user-agent")]
                                  + [f"path {echo_forms(self.path)}", f"body {echo_forms(body[:4000])}"])
                if self.command == "POST" and self.path.endswith("/chat/completions") and '"model": "echo-ok' in \
                        body.replace('":"', '": "'):
                    self._stream(echo)
                    return
                payload = json.dumps({"error": {"message": f"{server.said}rejected: {echo}", "code": "invalid_api_key"},
                                      "message": f"rejected: {echo}", "code": server.code, "details": echo,
                                      "hint": echo}).encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.send_header("x-request-id", echo_forms(self.headers.get("authorization", "none"))[:200])
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, echo: str) -> None:
                events = [{"id": "c1", "object": "chat.completion.chunk", "model": "echo-ok",
                           "choices": [{"index": 0, "delta": {"content": echo}, "finish_reason": None}]},
                          {"id": "c1", "object": "chat.completion.chunk", "model": "echo-ok",
                           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}]
                data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "EchoServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
