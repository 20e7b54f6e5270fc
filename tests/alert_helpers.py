"""What the alert tests share: results written through the real storage, and a local receiver of Apprise's JSON."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
import signal
import threading
from uuid import UUID, uuid4

from benchmarking.measurement import Measurement
from benchmarking.storage import RunInfo, Storage

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def write_results(storage: Storage, provider: str, model: str, outcomes: list[dict], end: datetime,
                  mode: str = "live", spacing: timedelta = timedelta(minutes=1), kind: str = "sequential") -> UUID:
    """One run whose results (each a dict of Measurement fields; {} is a fast success) end at `end`, oldest first."""
    run_id = uuid4()
    first = end - spacing * (len(outcomes) - 1)
    storage.create_run(RunInfo(id=run_id, run_name="t", triggered_by="test", started_at=first - timedelta(seconds=1),
                               mode=mode, host="h", region=None, tool_version="0", settings={}, kind=kind))
    for index, outcome in enumerate(outcomes):
        created = first + spacing * index
        values = dict(success=True, ttft_ms=100.0, latency_ms=500.0, tokens_per_second=80.0, output_tokens=40)
        values.update(outcome)
        if not values["success"]:
            values.update(ttft_ms=None, latency_ms=None, tokens_per_second=None, output_tokens=None,
                          error_type=values.get("error_type", "server_error"))
        storage.save_result(run_id, uuid4(), created, Measurement(provider=provider, model=model, stream=True,
                                                                  started_at=created - timedelta(seconds=1), **values))
    storage.finish_run(run_id, "completed", end)
    return run_id


FAIL = {"success": False}


class Receiver:
    """A webhook on loopback that keeps every JSON body it gets; `status` is what it answers (503: refuse)."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.paths: list[str] = []  # of the messages taken, as requested
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.status == 200:
                    receiver.messages.append(json.loads(body))
                    receiver.paths.append(self.path)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self._server.server_address[1]}/{path}"

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class Trickler:
    """A webhook that never finishes answering: a body of a gigabyte, one byte every `byte_every_s`, until told to stop
    (or, so that a test without a bound ends, after `give_up_s`: then `stop` is set).

    Each byte comes well within Apprise's socket timeouts (4 s between bytes), so only a bound on the whole send
    ends the wait."""

    def __init__(self, give_up_s: float = 60, ctrl_c: bool = False, byte_every_s: float = 0.2) -> None:
        self.ctrl_c = ctrl_c  # press Ctrl-C (SIGINT to this process) once the answer has begun
        self.answering = threading.Event()
        self.hung_up = threading.Event()  # the sender closed the connection before the answer ended
        self.requests = 0
        self.stop = threading.Event()
        self._give_up = threading.Timer(give_up_s, self.stop.set)
        trickler = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                trickler.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                self.wfile.flush()
                trickler.answering.set()
                if trickler.ctrl_c:
                    os.kill(os.getpid(), signal.SIGINT)
                try:
                    while not trickler.stop.wait(byte_every_s):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                except OSError:
                    trickler.hung_up.set()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self._server.server_address[1]}/{path}"

    def __enter__(self) -> "Trickler":
        self._thread.start()
        self._give_up.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._give_up.cancel()
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()


class Flooder:
    """A webhook whose answer is a body of gigabytes, sent as fast as loopback takes it."""

    def __init__(self, gigabytes: int = 8) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", str(gigabytes << 30))
                self.end_headers()
                chunk = b"x" * (1 << 20)
                try:
                    for _ in range(gigabytes << 10):
                        self.wfile.write(chunk)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self._server.server_address[1]}/{path}"

    def __enter__(self) -> "Flooder":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
