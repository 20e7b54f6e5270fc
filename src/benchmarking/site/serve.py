"""`python main.py serve`: the site over HTTP on this machine, rebuilt when the database has new results.

The server only reads the site's directory (the standard library's static handler, each response with the pages'
Content-Security-Policy); a thread looks for new results every few seconds and rebuilds the site, swapped in whole
as `report --site` does, so a request never sees half a site.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
import os
import threading
from typing import Callable, ContextManager

from ..errors import ConfigError
from ..measurement import utc_now
from ..report.selection import Selection
from ..slo import SloConfig
from ..storage import Storage
from .build import build_site
from .pages import CSP


class SiteHandler(SimpleHTTPRequestHandler):
    """Files of the site's directory, nothing else; no directory listings, no log line per request."""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def list_directory(self, path: str | os.PathLike[str]) -> None:  # type: ignore[override]
        self.send_error(404, "No listing")
        return None

    def log_message(self, format: str, *args: object) -> None:
        pass


class Rebuilder:
    """Rebuild the site whenever the database holds a result stored since the last build began (a result replayed
    from an outbox keeps its older time: the next new result brings it in)."""

    def __init__(self, open_storage: Callable[[], ContextManager[Storage]], selection: Selection, slo: SloConfig,
                 directory: str, say: Callable[[str], None]) -> None:
        self.open_storage, self.selection, self.slo, self.directory, self.say = (
            open_storage, selection, slo, directory, say)
        self.built_at: datetime | None = None
        self.stopped = threading.Event()

    def build(self) -> int:
        started = utc_now()
        with self.open_storage() as storage:
            results = build_site(storage, self.selection, self.slo, self.directory, "serve --site")
        self.built_at = started  # what was stored while it built comes again next time: one build too many at worst
        return results

    def changed(self) -> bool:
        if self.built_at is None:
            return True
        with self.open_storage() as storage:
            return bool(storage.read_results_between(self.built_at))

    def run(self, every_s: float) -> None:
        """Until stopped: look every `every_s` seconds, rebuild when something is new; a failure is one line."""
        while not self.stopped.wait(every_s):
            try:
                if self.changed():
                    results = self.build()
                    self.say(f"serve: site rebuilt ({results} results)")
            except Exception as exc:  # noqa: BLE001 - the last site keeps being served; the next look tries again
                self.say(f"warning: serve: site not rebuilt: {exc}")


def bind(host: str, port: int, directory: str) -> ThreadingHTTPServer:
    """The server, listening; a port in use or an address not of this machine is one line."""
    try:
        return ThreadingHTTPServer((host, port), partial(SiteHandler, directory=directory))
    except OSError as exc:
        raise ConfigError(f"serve: cannot listen on {host}:{port}: {exc.strerror or exc}: choose another --port "
                          "or --host") from None
