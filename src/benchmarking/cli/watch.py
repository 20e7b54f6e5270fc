"""`python main.py watch`: judge the alert rules now, print the firing and recently resolved alerts."""

from __future__ import annotations

from datetime import datetime
import sys

from ..errors import ConfigError
from .common import ExitStatus, Parser, storage_only_settings


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


def watch_main(argv: list[str]) -> int:
    """Evaluate, print, and exit 3 with --fail-on-firing when an alert is firing."""
    from ..watch.alerts import describe, evaluate, test_message
    from ..scheduler import format_duration
    from ..storage import open_backend

    parser = Parser(prog="main.py watch", description=(
        "Judge the alert rules (outage, slo_breach, regression; see benchmark.example.toml) over the stored results "
        "now, update the alerts table, send the notifications that are owed (BENCHMARK_NOTIFY or [notify] urls), "
        "and print the firing and recently resolved alerts. The same evaluation runs after every run."),
        epilog="Exit status: 0, or 3 with --fail-on-firing when any alert is firing; 1 if the database cannot be "
               "read, 2 for a bad flag or setting.")
    parser.add_argument("--config", metavar="PATH", help="benchmark.toml with [slo], [alerts] and [notify]")
    parser.add_argument("--fail-on-firing", action="store_true", help="exit 3 when any alert is firing (CI, cron)")
    parser.add_argument("--test-notify", action="store_true",
                        help="send a test message to every notify URL and exit (0 if all took it, 1 if not)")
    parser.add_argument("--include-simulated", action="store_true", help="judge simulated runs' results too")
    args = parser.parse_args(argv)
    settings = storage_only_settings(args.config, watching=True, notify=True)
    watching = settings.watching
    if args.test_notify:
        from ..settings.notify_urls import scheme_of

        if not watching.notify_urls:
            raise ConfigError("--test-notify: no notify URL is set: set BENCHMARK_NOTIFY or [notify] urls in "
                              "benchmark.toml")
        urls = [url.reveal() for url in watching.notify_urls]
        failed = test_message(urls)
        for url in urls:
            print(f"test notification to {scheme_of(url)}: {'NOT delivered' if url in failed else 'sent'}")
        return ExitStatus.FAILURES if failed else ExitStatus.OK
    with open_backend(settings) as storage:
        storage.prepare()  # tables missing (Supabase set up before alerts): the line that says to run schema.sql
        evaluation = evaluate(storage, watching, host=settings.host, include_simulated=args.include_simulated,
                              say=lambda line: print(line, file=sys.stderr))
    rules = watching.alerts
    print(f"alerts: {len(evaluation.firing)} firing, {len(evaluation.recently_resolved)} resolved in the last 24 h "
          f"(rules: {', '.join(rules.rules) or 'none'}; window {format_duration(rules.window_s)})")
    for alert in evaluation.firing:
        print(f"FIRING    {describe(alert)} (since {_when(alert.started_at)})")
    for alert in evaluation.recently_resolved:
        print(f"resolved  {describe(alert)} ({_when(alert.started_at)} to {_when(alert.resolved_at)})")
    if args.fail_on_firing and evaluation.firing:
        return ExitStatus.FIRING
    return ExitStatus.OK
