"""`python main.py serve`: the results site over HTTP on this machine, rebuilt when new results are stored."""

from __future__ import annotations

import sys
import threading

from ..errors import ConfigError
from ..settings.values import shown
from .common import ExitStatus, Parser, storage_only_settings
from .outputs import own_files

DEFAULT_PORT = 8321
LOOPBACK = "127.0.0.1"


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:  # not "١٢٣": ASCII only
        raise ConfigError(f"--port takes a port number from 0 to 65535, like {DEFAULT_PORT}, not {shown(text)}")
    return int(text)


def _host(text: str) -> str:
    if not text.strip():  # an unset shell variable: the server would listen on every interface
        raise ConfigError("--host needs an address, like 127.0.0.1 (this machine only), ::1, or 0.0.0.0 (every one)")
    return text


def serve_main(argv: list[str]) -> int:
    """Build the site, serve it, rebuild it when the database has new results; Ctrl-C stops."""
    from ..durations import parse_duration
    from ..report.selection import Selection
    from ..site.serve import Rebuilder, bind, url_of
    from ..site.write import check_site_directory
    from ..storage import open_backend

    parser = Parser(prog="main.py serve", description=(
        "Serve the results site (as `report --site` writes it) on this machine, and rebuild it when the database "
        "has new results. Listens on loopback only unless --host says otherwise. Ctrl-C stops."))
    parser.add_argument("--site", metavar="DIR", default="site",
                        help="the site's directory (default ./site): new, empty, or an earlier site, replaced whole")
    parser.add_argument("--port", default=str(DEFAULT_PORT), help=f"the port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument("--host", default=LOOPBACK,
                        help="the address to listen on (default 127.0.0.1: this machine only; ::1 for IPv6; 0.0.0.0 or ::: "
                             "every one)")
    parser.add_argument("--every", default="30s", metavar="DURATION",
                        help="how often to look for new results (default 30s; like 10s, 5m)")
    parser.add_argument("--provider", action="append", default=[], help="only this provider; repeatable")
    parser.add_argument("--model", action="append", default=[], help="only this model; repeatable")
    parser.add_argument("--include-simulated", action="store_true", help="count simulated runs too")
    parser.add_argument("--config", metavar="PATH", help="benchmark.toml whose [slo] adds SLO attainment")
    args = parser.parse_args(argv)
    port = _port(args.port.strip())
    host = _host(args.host)
    every_s = parse_duration(args.every, "--every")
    settings = storage_only_settings(args.config, watching=True)
    check_site_directory(args.site, "--site", own_files(settings, args))
    selection = Selection(providers=frozenset(args.provider), models=frozenset(args.model),
                          include_simulated=args.include_simulated)
    rebuilder = Rebuilder(lambda: open_backend(settings), selection, settings.slo, args.site,
                          lambda line: print(line, file=sys.stderr, flush=True))
    results = rebuilder.build()
    server = bind(host, port, args.site)
    print(f"serving {args.site} ({results} results; {selection.describe()}) at {url_of(server)} "
          f"(Ctrl-C stops)", file=sys.stderr, flush=True)
    looker = threading.Thread(target=rebuilder.run, args=(every_s,), name="site-rebuilder", daemon=True)
    looker.start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        rebuilder.stopped.set()
        server.server_close()
        looker.join(timeout=5)
    return ExitStatus.OK
