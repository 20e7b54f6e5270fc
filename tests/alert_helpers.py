"""What the alert tests share: results written through the real storage, and a local receiver of Apprise's JSON."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
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
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.status == 200:
                    receiver.messages.append(json.loads(body))
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
