"""`python main.py report`: percentiles, success rates and costs per provider and model, on any backend."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import sys
from typing import TYPE_CHECKING, Callable

from ..errors import ConfigError
from ..safe_files import check_target
from .common import ExitStatus, Parser, storage_only_settings
from .outputs import own_files

if TYPE_CHECKING:
    from ..report.selection import Selection
    from ..slo import SloConfig


def _compare_side(text: str, base: "Selection") -> "Selection":
    """A run id, or a window START..END (END may be left out: until now)."""
    from ..measurement import utc_now
    from ..report.selection import ends_after_it_starts, parse_run_id, parse_time

    if ".." in text:
        start, _, end = text.partition("..")
        now = utc_now()  # one now for both ends: 4h..4h is empty, not a few microseconds long
        since, until = parse_time(start, "--compare", now), parse_time(end, "--compare", now) if end else None
        if not ends_after_it_starts(since, until, now):
            raise ConfigError(f"--compare {text} ends before it starts: give the earlier time first, like 8h..4h or "
                              "2026-11-01..2026-11-08")
        return replace(base, since=since, until=until)
    return replace(base, run_ids=frozenset({parse_run_id(text, "--compare")}))


def report_keys() -> list[str]:
    """What --by takes: the general grouping keys, then the keys that have a table of their own."""
    from ..report.groups import GROUP_KEYS

    return list(GROUP_KEYS) + list(OWN_TABLES)


def _concurrency_table(rows: list, fmt: str, title: str, selection: "Selection", slo: "SloConfig") -> str:
    from ..report.load import NO_LOAD_RUNS, load_rows, render

    if fmt in MACHINE_FORMATS and not load_rows(rows):
        print(NO_LOAD_RUNS, file=sys.stderr)  # stdout stays json or csv: no level
    return render(rows, fmt, title, selection, slo)


def _rate_table(rows: list, fmt: str, title: str, selection: "Selection", slo: "SloConfig") -> str:
    from ..report.rate import NO_RATE_RUNS, rate_rows, render

    if fmt in MACHINE_FORMATS and not rate_rows(rows):
        print(NO_RATE_RUNS, file=sys.stderr)  # stdout stays json or csv: no rate
    return render(rows, fmt, title, selection, slo)


def _turn_table(rows: list, fmt: str, title: str, selection: "Selection", slo: "SloConfig") -> str:
    from ..report.turns import NO_TURNS, render, turn_rows

    if fmt in MACHINE_FORMATS and not turn_rows(rows):
        print(NO_TURNS, file=sys.stderr)  # stdout stays json or csv: no turn
    return render(rows, fmt, title, selection)


def _itl_table(rows: list, fmt: str, title: str, selection: "Selection", slo: "SloConfig") -> str:
    from ..report.itl import render

    return render(rows, fmt, title, selection)


MACHINE_FORMATS = ("json", "csv")  # what a program reads: always printed whole, even with nothing in it


# --by keys whose report is a table of its own, not the summary per group: name -> function(rows, format, title,
# selection, SLOs) -> text.
OWN_TABLES: dict[str, Callable[[list, str, str, "Selection", "SloConfig"], str]] = {
    "concurrency": _concurrency_table, "turn": _turn_table, "itl": _itl_table, "rate": _rate_table}


def report_main(argv: list[str]) -> int:
    """Percentiles, success rates and costs per provider and model, on any backend."""
    from ..report.compare import compare, comparison_json, format_comparison
    from ..report.formats import export, format_csv, format_json, format_markdown, format_table, report_title, title_for
    from ..report.selection import (
        Selection, ends_after_it_starts, parse_duration, parse_run_id, parse_time, select, span_of, window_selection,
    )
    from ..report.views import summarise, summarise_stored, with_agent, with_slo
    from ..measurement import utc_now
    from ..storage import open_backend

    parser = Parser(prog="main.py report", description=(
        "Per provider and model: requests, success rate, TTFT and latency p50/p90/p95/p99, median tokens/s, "
        "mean and total cost, cost per 1M output tokens and the most common errors, sorted by median TTFT. "
        "Simulated runs are left out unless --include-simulated."))
    which = parser.add_argument_group("which results")
    which.add_argument("--run", metavar="ID", help="one run, by the id printed at its start")
    which.add_argument("--last", action="store_true", help="the newest run")
    which.add_argument("--since", metavar="WHEN", help="4h, 7d, 2w ago, or a date/time like 2026-11-01 (UTC)")
    which.add_argument("--until", metavar="WHEN", help="the same forms as --since")
    which.add_argument("--provider", action="append", default=[], help="only this provider; repeatable")
    which.add_argument("--model", action="append", default=[], help="only this model; repeatable")
    which.add_argument("--include-simulated", action="store_true", help="count simulated runs too")
    which.add_argument("--window", metavar="LENGTH",
                       help="the figures over the window of this length (72h, 30m, 7d, 2w, 1h30m; at most 365d) ending "
                            "now, or at --until, like a leaderboard's rolling median; --plot draws the rolling median "
                            "over time")
    out = parser.add_argument_group("output")
    out.add_argument("--by", choices=report_keys(), default="provider", metavar="KEY",
                     help="group the figures by KEY, per provider and model within each group: provider (default), "
                          "model, hour (of day, UTC), region, host, upstream (OpenRouter's serving provider), "
                          "tier (input tier), prompt (with tool-choice accuracy, tool-argument time, schema-valid rate and a "
                          "conversation's time end to end, where prompts have them), api (the API measured through); or concurrency: a table per "
                          "load level of each provider and model (requests/s, output tokens/s, TTFT and latency "
                          "p50/p90/p99, errors with 429s on their own, rate-limit headers, start lag, where a sweep "
                          "stopped, goodput where SLOs are set); or turn: a table per turn of the stored "
                          "conversations (TTFT p50/p90, input tokens, cached share, cost, the change against turn 1) "
                          "and what the prompt cache saved from turn 2 on; or rate: a table per open-loop arrival "
                          "rate (--rate runs: achieved requests/s, response time from the scheduled start, start "
                          "lag, harness-bound)")
    out.add_argument("--format", choices=("table", "json", "csv", "markdown"), default="table",
                     help="table (default), json, csv or markdown; json and csv carry the same fields; "
                          "--compare prints a table or json")
    out.add_argument("--export", metavar="PATH", help="write every matching result row to PATH (.csv or .jsonl)")
    out.add_argument("--plot", metavar="PATH", help="write a chart to PATH.png, or a self-contained PATH.html")
    out.add_argument("--site", metavar="DIR",
                     help="write a static results site to DIR (a new or empty directory, or an earlier site, "
                          "replaced whole) instead of printing: a leaderboard with 1h/24h/7d/30d windows and a "
                          "percentile selector, charts over time, a page per provider and model with its recent "
                          "failures; open DIR/index.html (docs/site.md)")
    out.add_argument("--config", metavar="PATH",
                     help="benchmark.toml whose [slo] adds SLO attainment and goodput per provider and model")
    out.add_argument("--compare", nargs=2, metavar=("A", "B"),
                     help="change from A to B per provider; each a run id or a window like 8h..4h or "
                          "2026-11-01..2026-11-08; changes beyond the noise are marked")
    args = parser.parse_args(argv)

    now = utc_now()  # one now for --since and --until: 1d..1d is empty, not a few microseconds long
    base = Selection(
        run_ids=frozenset({parse_run_id(args.run, "--run")}) if args.run is not None else None,
        last=args.last,
        since=parse_time(args.since, "--since", now) if args.since is not None else None,
        until=parse_time(args.until, "--until", now) if args.until is not None else None,
        providers=frozenset(args.provider),
        models=frozenset(args.model),
        include_simulated=args.include_simulated,
    )
    if args.since is not None and args.until is not None and not ends_after_it_starts(base.since, base.until):
        raise ConfigError(f"--since {args.since} is not before --until {args.until}: give the earlier time to --since")
    if args.window is not None:
        if args.compare:
            raise ConfigError("--window and --compare both choose the results: give the windows to --compare")
        base = window_selection(base, parse_duration(args.window, "--window"))
    outputs = (("--export", args.export, (".csv", ".jsonl")), ("--plot", args.plot, (".png", ".html")))
    for flag, path, suffixes in outputs:
        if path is not None and Path(path).suffix.lower() not in suffixes:
            raise ConfigError(f"{flag} writes {' or '.join(suffixes)} files, not {Path(path).name or path!r}")
    if args.compare and args.format in ("csv", "markdown"):
        raise ConfigError(f"--compare prints a table or json, not {args.format}")
    own_table = OWN_TABLES.get(args.by)
    by = "provider" if own_table else args.by  # the summary's grouping, also under a table of its own
    sides = [_compare_side(text, base) for text in args.compare] if args.compare else []
    settings = storage_only_settings(args.config, watching=True)
    own = own_files(settings, args)
    if args.site is not None:
        from .site import check_site_flags, site_main

        check_site_flags(args)
        return site_main(args.site, base, settings, own)
    for flag, path, _ in outputs:  # before anything is read: never over a file the tool keeps, nor a device
        if path is not None:
            check_target(path, flag, own)
    with open_backend(settings) as storage:
        if sides:
            before, after = (select(storage, side) for side in sides)
            for side, rows in zip(sides, (before, after)):
                if not rows:
                    note = f"no results match {side.describe()}: nothing to compare"
                    if args.format != "json":
                        print(note)
                        return ExitStatus.OK
                    print(note, file=sys.stderr)  # stdout stays json: no comparison
                    titles = tuple(title_for(r, s, by) if r else f"no results match {s.describe()}"
                                   for s, r in zip(sides, (before, after)))
                    print(comparison_json([], *titles))
                    return ExitStatus.OK
            comparisons = compare(before, after, by)
            titles = title_for(before, sides[0], by), title_for(after, sides[1], by)
            print((comparison_json if args.format == "json" else format_comparison)(comparisons, *titles))
            return ExitStatus.OK
        rows: list = []
        # The figures alone: the database gathers them. A chart or an export needs the rows themselves.
        # A table of its own and SLO attainment are computed from the rows too.
        # So is the per-prompt view's tool, schema and conversation figures.
        needs_rows = own_table or args.export or args.plot or settings.slo.configured or by == "prompt"
        if needs_rows or (gathered := summarise_stored(storage, base, by)) is None:
            rows = select(storage, base, with_text=bool(args.export))
            gathered = (summarise(rows, by), span_of(rows) if rows else None)
        summaries, span = gathered
    if span is None:
        hint = ""
        if not base.include_simulated:
            with open_backend(settings) as storage:
                if select(storage, replace(base, include_simulated=True)):
                    hint = " (simulated results match: add --include-simulated to see them)"
        note = f"no results match: {base.describe()}{hint}"
        if args.format not in MACHINE_FORMATS:
            print(note)
            return ExitStatus.OK
        print(note, file=sys.stderr)  # stdout stays json or csv: nothing in it
        if own_table:
            print(own_table([], args.format, note, base, settings.slo), end="")
        elif args.format == "json":
            print(format_json([], note, base, None, by))
        else:
            print(format_csv([], by), end="")
        return ExitStatus.OK
    if settings.slo.configured:
        summaries = with_slo(summaries, rows, settings.slo, by)
    if by == "prompt":
        summaries = with_agent(summaries, rows, by)
    title = report_title(span, base, by)
    if own_table:
        print(own_table(rows, args.format, title, base, settings.slo), end="")
    elif args.format == "json":
        print(format_json(summaries, title, base, span, by))
    elif args.format == "csv":
        print(format_csv(summaries, by), end="")
    elif args.format == "markdown":
        print(format_markdown(summaries, title))
    else:
        print(format_table(summaries, title))
    if args.export:
        count = export(rows, Path(args.export))
        print(f"exported {count} result rows to {args.export}", file=sys.stderr)
    if args.plot:
        from ..report.charts import plot

        plot(rows, summaries, title, Path(args.plot), base.window)
        print(f"chart written to {args.plot}", file=sys.stderr)
    return ExitStatus.OK
