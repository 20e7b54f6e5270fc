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
import socket
import threading
from typing import Callable, ContextManager

from ..errors import ConfigError
from ..measurement import utc_now
from ..report.selection import Selection
from ..slo import SloConfig
from ..storage import Storage
from .build import build_site
from .pages import CSP

IDLE_TIMEOUT_S = 30  # a connection that sends nothing for this long is closed
MAX_CONNECTIONS = 64  # served at once, a thread each: a browser opens about six


class SiteHandler(SimpleHTTPRequestHandler):
    """Regular files inside the site's directory, nothing else: no directory listings, no link followed out of it, no
    log line per request; a request it cannot map to a file (a NUL byte, a bad encoding, an overlong name) is a 400 or
    404, never a traceback; an idle connection is closed after `timeout` seconds."""

    timeout = IDLE_TIMEOUT_S  # StreamRequestHandler sets it on the socket: a silent client holds no thread for good

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def send_head(self):  # type: ignore[no-untyped-def]
        try:
            path = self.translate_path(self.path)
            file = os.path.join(path, "index.html") if os.path.isdir(path) else path
            root = os.path.realpath(self.directory)
            found = os.path.realpath(file)
            if not found.startswith(root.rstrip(os.sep) + os.sep) or not os.path.isfile(found):
                self.send_error(404, "Not found")
                return None
            return super().send_head()
        except (ValueError, UnicodeError, OSError):  # a path no file system takes: NUL, lone surrogates, too long
            self.send_error(400, "Bad path")
            return None

    def list_directory(self, path: str | os.PathLike[str]) -> None:  # type: ignore[override]
        self.send_error(404, "No listing")
        return None

    def log_message(self, format: str, *args: object) -> None:
        pass


class SiteServer(ThreadingHTTPServer):
    """At most MAX_CONNECTIONS connections at once (one thread each); past that a connection is closed at once. A
    connection that fails (a client gone, a timeout) is never a traceback on the console."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Callable[..., SiteHandler], family: int) -> None:
        self.address_family = family
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass


class Rebuilder:
    """Rebuild the site whenever the database holds a result stored since the last build began (a result replayed
    from an outbox keeps its older time: the next new result brings it in)."""

    def __init__(self, open_storage: Callable[[], ContextManager[Storage]], selection: Selection, slo: SloConfig,
                 directory: str, say: Callable[[str], None]) -> None:
        self.open_storage, self.selection, self.slo, self.directory, self.say = (
            open_storage, selection, slo, directory, say)
        self.built_at: datetime | None = None
        # Results dated after the last build that it already held: a result dated in the future (a host whose clock
        # runs ahead, an outbox replaying from one) is "after" every build until its time comes; without this, each
        # look rebuilt the whole site for it.
        self.seen_ahead: set[object] = set()
        self.stopped = threading.Event()

    def build(self) -> int:
        started = utc_now()
        with self.open_storage() as storage:
            # Dated after the build's start and stored before it: the build holds them. What is stored while it
            # builds is not among them, and comes again next time (one build too many at worst).
            seen_ahead = {result.id for result in storage.read_results_between(started)}
            results = build_site(storage, self.selection, self.slo, self.directory, "serve --site", keep=True)
        self.built_at, self.seen_ahead = started, seen_ahead
        return results

    def changed(self) -> bool:
        if self.built_at is None:
            return True
        with self.open_storage() as storage:
            return any(result.id not in self.seen_ahead for result in storage.read_results_between(self.built_at))

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
    """The server, listening on an IPv4 or IPv6 address or a host name; a port in use or an address not of this
    machine is one line."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return SiteServer((host, port), partial(SiteHandler, directory=directory), family)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte; UnicodeError (one): a label over 63 bytes
        raise ConfigError(f"serve: cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}: choose "
                          "another --port or --host") from None


def url_of(server: ThreadingHTTPServer) -> str:
    """http://host:port/ of a listening server; an IPv6 address in brackets."""
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in str(host) else f"http://{host}:{port}/"
