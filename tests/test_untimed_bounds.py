"""Requests that are not timed (the warm-up's GET /models, `check`'s model list, a server tokenizer's count) are
bounded in all by --timeout, like the timed one: a server that trickles a byte at a time holds nothing for long."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import threading
import time

import pytest

from test_cli import rows, run_main

TRICKLE_S = 0.2  # a byte this often: each read succeeds well within the read timeout, only the total is too long
TRICKLE_BYTES = 600  # two minutes of trickle, if nothing bounds it


class TrickleServer:
    """Answers `trickle` paths a byte at a time; a chat request with a plain stream (no usage)."""

    def __init__(self, trickle: str) -> None:
        stop = self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(TRICKLE_BYTES))
                self.end_headers()
                for _ in range(TRICKLE_BYTES):
                    if stop.wait(TRICKLE_S):
                        return
                    self.wfile.write(b" ")
                    self.wfile.flush()

            def do_GET(self) -> None:
                if trickle in self.path:
                    return self._trickle()
                body = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if trickle in self.path:
                    return self._trickle()
                events = [{"id": "c1", "object": "chat.completion.chunk", "model": "m",
                           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": reason}]}
                          for text, reason in (("one two", None), (" three", "stop"))]
                body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "TrickleServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def _endpoint(tmp_path, server: TrickleServer, extra: str = "") -> None:
    (tmp_path / "benchmark.toml").write_text(
        f'[[providers]]\nname = "trk"\nbase_url = "{server.url}"\nmodel = "m"\n{extra}')


def test_a_warm_up_that_trickles_ends_at_the_timeout_and_the_request_is_a_failure(tmp_path):
    with TrickleServer("/models") as server:
        _endpoint(tmp_path, server)
        began = time.monotonic()
        done = run_main(tmp_path, "--providers", "trk", "--timeout", "2", timeout=120)
        took = time.monotonic() - began
    # Unbounded, the warm-up took the trickle's two minutes; bounded, it takes its 2 s (and start-up around it).
    assert took < 60, f"the run took {took:.0f} s against a --timeout of 2 s"
    stored = rows(tmp_path / "benchmarks.db", "select success, error_type from benchmark_results")
    assert [(r["success"], r["error_type"]) for r in stored] == [(0, "timeout")], done.stdout + done.stderr


def test_check_against_a_model_list_that_trickles_ends_at_the_timeout(tmp_path):
    with TrickleServer("/models") as server:
        _endpoint(tmp_path, server)
        began = time.monotonic()
        done = run_main(tmp_path, "check", "--providers", "trk", "--timeout", "2", timeout=120)
        took = time.monotonic() - began
    assert took < 60, f"check took {took:.0f} s against a --timeout of 2 s"
    assert done.returncode == 1 and "trk" in done.stdout + done.stderr


@pytest.mark.parametrize("concurrency", [None, "2"])
def test_a_tokenizer_that_trickles_ends_at_the_timeout_and_the_tokens_are_unknown(tmp_path, concurrency):
    with TrickleServer("/tokenize") as server:
        _endpoint(tmp_path, server, 'token_count = "tokenize"\n')
        load = ["--concurrency", concurrency, "--requests", "2"] if concurrency else []
        began = time.monotonic()
        done = run_main(tmp_path, "--providers", "trk", "--timeout", "2", *load, timeout=180)
        took = time.monotonic() - began
    assert took < 90, f"the run took {took:.0f} s against a --timeout of 2 s"
    stored = rows(tmp_path / "benchmarks.db", "select success, output_tokens from benchmark_results")
    assert stored and all((r["success"], r["output_tokens"]) == (1, None) for r in stored), done.stderr
