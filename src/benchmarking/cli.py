"""Command line: flags -> Settings, one run, and every exception mapped to one line and an exit status."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from dataclasses import dataclass, replace
from enum import IntEnum
import os
from pathlib import Path
import sys
from typing import TYPE_CHECKING, Callable, Sequence, TextIO

from . import __version__
from .config import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_RUN_NAME,
    DEFAULT_TIMEOUT_S,
    Settings,
    load_dotenv_file,
    load_settings,
    positive_float,
    whole_number,
)
from .benchmark_runner import BENCHMARK_PROMPT, PROVIDERS, RunInterrupted, RunOutcome, run_benchmark
from .errors import BenchmarkError, ConfigError, NoProvidersError, StorageError
from .stopping import GracefulStop

if TYPE_CHECKING:
    from .report import Selection
    from .storage.outbox import ResilientStorage


class ExitStatus(IntEnum):
    OK = 0
    FAILURES = 1  # a provider failed, or a result could not be stored: cron and scripts notice
    USAGE = 2  # bad flag or configuration; nothing was measured
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitStatus.USAGE, f"{self.prog}: error: {message} (see --help)\n")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of one run, shared by main.py and run_scheduled.py."""
    what = parser.add_argument_group("what to measure")
    what.add_argument("--providers", metavar="LIST", help="comma-separated subset, e.g. openai,groq (default: all)")
    what.add_argument(
        "--model", action="append", default=[], metavar="PROVIDER=MODEL",
        help="use another model for one provider; repeatable (also OPENAI_MODEL, GROQ_MODEL, ...)",
    )
    prompt = what.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", metavar="TEXT", help="the prompt to send (default: BENCHMARK_PROMPT)")
    prompt.add_argument("--prompt-file", metavar="PATH", help="read the prompt from a file")
    what.add_argument(
        "--config", metavar="PATH",
        help="benchmark.toml with extra OpenAI-compatible endpoints (default: BENCHMARK_CONFIG or ./benchmark.toml)",
    )
    what.add_argument("--simulate", action="store_true", help="measure the built-in simulator instead (no keys needed)")

    how = parser.add_argument_group("how to measure")
    how.add_argument("--repeat", default="1", metavar="N", help="requests per provider in this run (default 1)")
    how.add_argument(
        "--max-tokens", default=str(DEFAULT_MAX_TOKENS), metavar="N",
        help=f"max_tokens for each request (default {DEFAULT_MAX_TOKENS})",
    )
    how.add_argument(
        "--timeout", default=str(DEFAULT_TIMEOUT_S), metavar="SECONDS",
        help=f"give up on a request after this long (default {DEFAULT_TIMEOUT_S:g})",
    )
    how.add_argument(
        "--retries", default="0", metavar="N",
        help="retry 429, 5xx and connection errors up to N times, honouring retry-after (default 0)",
    )
    how.add_argument(
        "--no-stream", dest="stream", action="store_false",
        help="plain request/response: latency only, no TTFT or tokens/s",
    )

    run = parser.add_argument_group("the run")
    run.add_argument("--run-name", default=DEFAULT_RUN_NAME,
                     help=f"stored as runs.run_name (default {DEFAULT_RUN_NAME})")
    run.add_argument("--triggered-by", default="cli", help="stored as runs.triggered_by (default cli)")
    run.add_argument("--json", dest="json_output", action="store_true", help="print the results as JSON on stdout")
    run.add_argument("--traceback", action="store_true", help="show the full traceback of an unexpected error")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="main.py",
        description=(
            "Benchmark AI model providers on the same prompt: time to first token, latency, tokens, "
            "decode speed and cost, every result stored (SQLite ./benchmarks.db by default)."
        ),
        epilog=(
            "Other commands: `main.py report` (percentiles, costs, charts, exports), `main.py check` (is everything "
            "ready?), `main.py flush` (write the outbox to the database); each has --help. "
            "Keys and storage come from the environment or .env (see .env.example). "
            "Exit status: 0 all succeeded and stored, 1 a provider failed or a result is only in the outbox, "
            "2 usage error, 130 Ctrl-C, 143 SIGTERM (the first one lets the request in flight finish)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_run_arguments(parser)
    return parser


def read_prompt(args: argparse.Namespace, default: str) -> str:
    if args.prompt_file:
        try:
            return Path(args.prompt_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read --prompt-file {args.prompt_file}: {exc.strerror}") from None
    return default if args.prompt is None else args.prompt


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags, environment and .env into one validated Settings."""
    load_dotenv_file()
    return load_settings(
        prompt=read_prompt(args, BENCHMARK_PROMPT),
        builtin=[(name, model) for name, _, model in PROVIDERS],
        environ=os.environ,
        provider_selection=args.providers,
        model_overrides=args.model,
        config_path=args.config,
        max_tokens=whole_number(args.max_tokens, "--max-tokens"),
        timeout_s=positive_float(args.timeout, "--timeout"),
        stream=args.stream,
        repeat=whole_number(args.repeat, "--repeat"),
        retries=whole_number(args.retries, "--retries", minimum=0),
        simulate=args.simulate,
        json_output=args.json_output,
        run_name=args.run_name,
        triggered_by=args.triggered_by,
    )


def open_storage(settings: Settings, stack: ExitStack, say: Callable[[str], None]) -> "ResilientStorage":
    """The selected backend behind the outbox, checked, with earlier runs' waiting writes replayed first."""
    from .errors import StorageRejected, StorageUnavailable
    from .storage import open_backend
    from .storage.outbox import Outbox, ResilientStorage

    backend = stack.enter_context(open_backend(settings))
    try:
        backend.prepare()
    except StorageRejected as exc:
        raise ConfigError(f"the database refused to set up: {exc}") from None
    except StorageUnavailable as exc:
        say(f"warning: {exc}; results will be kept in {settings.outbox_dir}/ until it is back")
    storage = ResilientStorage(backend, Outbox(settings.outbox_dir))
    pending, _ = storage.outbox.counts()
    if pending:
        report = storage.replay()
        say(f"outbox: wrote {report.written} earlier writes to the database, {report.pending} still waiting")
    return storage


@dataclass(frozen=True)
class RunContext:
    """What every run of a process shares: the final settings, the storage, where human lines go."""

    settings: Settings
    storage: "ResilientStorage"
    human: TextIO


def prepare_runs(settings: Settings, stack: ExitStack) -> RunContext:
    """Warnings printed, the simulator started if asked, a provider left to measure, storage opened and replayed."""
    human = sys.stderr if settings.json_output else sys.stdout
    for line in settings.warnings + settings.skipped:
        print(line, file=sys.stderr)
    if settings.simulate:
        from .simulator import Simulator

        sim = stack.enter_context(Simulator())
        settings = settings.pointed_at({p.name: sim.base_url(p.name) for p in settings.providers}, "sim-key")
    if not settings.providers:
        raise NoProvidersError(
            "no provider left to measure: put keys in .env (see .env.example), "
            "or run `python main.py --simulate` to try the tool without keys"
        )
    storage = open_storage(settings, stack, lambda line: print(line, file=sys.stderr))
    return RunContext(settings, storage, human)


def one_run(context: RunContext, settings: Settings, stop: GracefulStop) -> RunOutcome:
    """One run, its summary table, and its JSON if asked for."""
    from .console import ConsoleReporter, outcome_json, summary_table

    outcome = run_benchmark(settings, context.storage, ConsoleReporter(context.human), stop.requested)
    print(file=context.human)
    print(summary_table(outcome), file=context.human)
    if settings.json_output:
        print(outcome_json(outcome), flush=True)
    return outcome


def run_status(outcome: RunOutcome, stop: GracefulStop) -> int:
    if outcome.status == "interrupted":
        stored = sum(r.storage_note is None for r in outcome.results)
        print(f"stopped: run {outcome.run.id} marked interrupted; {stored} results stored in the database",
              file=sys.stderr)
        return stop.exit_status
    return ExitStatus.OK if outcome.all_succeeded and outcome.all_saved else ExitStatus.FAILURES


def execute_run(settings: Settings, stack: ExitStack) -> int:
    """One run of main.py."""
    stop = stack.enter_context(GracefulStop())
    context = prepare_runs(settings, stack)
    return run_status(one_run(context, context.settings, stop), stop)


def check_main(argv: Sequence[str]) -> int:
    """`main.py check`: storage, outbox, and each provider's key and model; exit 0 if all is ready."""
    from .check import run_check

    parser = _Parser(prog="main.py check", description=(
        "Preflight: which storage backend is selected and whether its tables are ready, whether the outbox is "
        "empty, and for each provider whether its key is set and its model is listed by its free GET /models. "
        "Exit 0 if all is ready, 1 if not, each problem on one line with its fix."))
    parser.add_argument("--providers", metavar="LIST", help="check only these providers, e.g. openai,groq")
    parser.add_argument("--model", action="append", default=[], metavar="PROVIDER=MODEL",
                        help="check another model for one provider; repeatable")
    parser.add_argument("--config", metavar="PATH", help="benchmark.toml with extra endpoints")
    parser.add_argument("--timeout", default="10", metavar="SECONDS", help="per request (default 10)")
    args = parser.parse_args(argv)
    load_dotenv_file()
    settings = load_settings(
        prompt=BENCHMARK_PROMPT, builtin=[(name, model) for name, _, model in PROVIDERS], environ=os.environ,
        provider_selection=args.providers, model_overrides=args.model, config_path=args.config,
        timeout_s=positive_float(args.timeout, "--timeout"),
    )
    for line in settings.warnings:
        print(line, file=sys.stderr)
    lines = run_check(settings)
    for line in lines:
        print(("ok       " if line.ok else "PROBLEM  ") + line.text)
    return ExitStatus.OK if all(line.ok for line in lines) else ExitStatus.FAILURES


def flush_main(argv: Sequence[str]) -> int:
    """`main.py flush`: write the outbox to the database now, rejected writes included."""
    from .storage import open_backend
    from .storage.outbox import PENDING, REJECTED, Outbox

    parser = _Parser(prog="main.py flush", description=(
        "Write the results waiting in the outbox (BENCHMARK_OUTBOX, default ./outbox/) to the database, keeping "
        "their ids and timestamps; writes the database rejected before are tried again too. Replaying twice "
        "inserts nothing twice. Exit 0 when the outbox is empty afterwards, 1 if not."))
    parser.parse_args(argv)
    load_dotenv_file()
    from .config import storage_settings

    settings = Settings(prompt="", providers=(), models={}, **storage_settings(os.environ))
    outbox = Outbox(settings.outbox_dir)
    with open_backend(settings) as backend:
        report = outbox.replay(backend, include_rejected=True)
        print(f"flush: {report.written} writes went through to {backend.backend} at {backend.location}; "
              f"{report.pending} still waiting in {outbox.directory / PENDING}; "
              f"{report.rejected} rejected, kept in {outbox.directory / REJECTED}")
    if report.last_error:
        print(f"last error: {report.last_error}", file=sys.stderr)
    return ExitStatus.OK if report.pending == 0 and report.rejected == 0 else ExitStatus.FAILURES


def _compare_side(text: str, base: "Selection") -> "Selection":
    """A run id, or a window START..END (END may be left out: until now)."""
    from .report import parse_run_id, parse_time

    if ".." in text:
        start, _, end = text.partition("..")
        return replace(base, since=parse_time(start, "--compare"), until=parse_time(end, "--compare") if end else None)
    return replace(base, run_ids=frozenset({parse_run_id(text, "--compare")}))


def report_main(argv: Sequence[str]) -> int:
    """`main.py report`: percentiles, success rates and costs per provider and model, on any backend."""
    from .config import storage_settings
    from .report import (
        Selection, compare, export, format_comparison, format_csv, format_json, format_markdown, format_table,
        parse_run_id, parse_time, select, summarise, title_for,
    )
    from .storage import open_backend

    parser = _Parser(prog="main.py report", description=(
        "Per provider and model: requests, success rate, TTFT and latency p50/p90/p95/p99, median tokens/s, "
        "mean and total cost, cost per 1k output tokens and the most common errors, sorted by median TTFT. "
        "Simulated runs are left out unless --include-simulated."))
    which = parser.add_argument_group("which results")
    which.add_argument("--run", metavar="ID", help="one run, by the id printed at its start")
    which.add_argument("--last", action="store_true", help="the newest run")
    which.add_argument("--since", metavar="WHEN", help="4h, 7d, 2w ago, or a date/time like 2026-11-01 (UTC)")
    which.add_argument("--until", metavar="WHEN", help="the same forms as --since")
    which.add_argument("--provider", action="append", default=[], help="only this provider; repeatable")
    which.add_argument("--model", action="append", default=[], help="only this model; repeatable")
    which.add_argument("--include-simulated", action="store_true", help="count simulated runs too")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=("table", "json", "csv", "markdown"), default="table",
                     help="table (default), json, csv or markdown; json and csv carry the same fields")
    out.add_argument("--export", metavar="PATH", help="write every matching result row to PATH (.csv or .jsonl)")
    out.add_argument("--plot", metavar="PATH", help="write a chart to PATH.png, or a self-contained PATH.html")
    out.add_argument("--compare", nargs=2, metavar=("A", "B"),
                     help="change from A to B per provider; each a run id or a window like 8h..4h or "
                          "2026-11-01..2026-11-08; changes beyond the noise are marked")
    args = parser.parse_args(argv)

    base = Selection(
        run_ids=frozenset({parse_run_id(args.run, "--run")}) if args.run else None,
        last=args.last,
        since=parse_time(args.since, "--since") if args.since else None,
        until=parse_time(args.until, "--until") if args.until else None,
        providers=frozenset(args.provider),
        models=frozenset(args.model),
        include_simulated=args.include_simulated,
    )
    outputs = (("--export", args.export, (".csv", ".jsonl")), ("--plot", args.plot, (".png", ".html")))
    for flag, path, suffixes in outputs:
        if path and Path(path).suffix.lower() not in suffixes:
            raise ConfigError(f"{flag} writes {' or '.join(suffixes)} files, not {Path(path).name!r}")
    sides = [_compare_side(text, base) for text in args.compare] if args.compare else []
    load_dotenv_file()
    settings = Settings(prompt="", providers=(), models={}, **storage_settings(os.environ))
    with open_backend(settings) as storage:
        if sides:
            before, after = (select(storage, side) for side in sides)
            for side, rows in zip(sides, (before, after)):
                if not rows:
                    print(f"no results match {side.describe()}: nothing to compare")
                    return ExitStatus.OK
            print(format_comparison(compare(before, after), title_for(before, sides[0]), title_for(after, sides[1])))
            return ExitStatus.OK
        rows = select(storage, base, with_text=bool(args.export))
    if not rows:
        hint = ""
        if not base.include_simulated:
            with open_backend(settings) as storage:
                if select(storage, replace(base, include_simulated=True)):
                    hint = " (simulated results match: add --include-simulated to see them)"
        print(f"no results match: {base.describe()}{hint}")
        return ExitStatus.OK
    summaries = summarise(rows)
    title = title_for(rows, base)
    if args.format == "json":
        print(format_json(summaries, title, base, rows))
    elif args.format == "csv":
        print(format_csv(summaries), end="")
    elif args.format == "markdown":
        print(format_markdown(summaries, title))
    else:
        print(format_table(summaries, title))
    if args.export:
        count = export(rows, Path(args.export))
        print(f"exported {count} result rows to {args.export}", file=sys.stderr)
    if args.plot:
        from .charts import plot

        plot(rows, summaries, title, Path(args.plot))
        print(f"chart written to {args.plot}", file=sys.stderr)
    return ExitStatus.OK


SUBCOMMANDS = {"check": check_main, "flush": flush_main, "report": report_main}


def build_scheduled_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="run_scheduled.py",
        description=(
            "Repeated benchmark runs on a fixed grid (start + k * interval): by default every 15 minutes for "
            "4 hours = 16 runs. A run that overruns its slot makes the next slots be skipped, never run back to back."
        ),
        epilog=(
            "Each run is stored like a single run, with triggered_by 'scheduler' and run_name NAME-03/16. "
            "Ctrl-C or SIGTERM: the request in flight finishes, the run is marked interrupted, exit 130 or 143. "
            "Exit status 0 if every run completed, 1 if any failed."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    timing = parser.add_argument_group("the schedule")
    timing.add_argument("--interval", default="15m", help="time between run starts, like 90s, 15m, 1h (default 15m)")
    timing.add_argument("--duration", default="4h", help="how long to keep going, like 30m, 4h (default 4h)")
    timing.add_argument("--runs", metavar="N", help="number of runs (default: as many intervals as fit the duration)")
    add_run_arguments(parser)
    return parser


def scheduled_main(argv: Sequence[str] | None = None) -> int:
    """run_scheduled.py: runs on the grid until done or stopped; failures of one run never stop the schedule."""
    from .scheduler import Schedule, parse_duration, run_schedule

    args = build_scheduled_parser().parse_args(argv)
    try:
        schedule = Schedule.from_flags(
            parse_duration(args.interval, "--interval"),
            parse_duration(args.duration, "--duration"),
            whole_number(args.runs, "--runs") if args.runs is not None else None,
        )
        if args.run_name == DEFAULT_RUN_NAME:
            args.run_name = "scheduled-run"
        with ExitStack() as stack:
            stop = stack.enter_context(GracefulStop())
            context = prepare_runs(settings_from_args(args), stack)
            print(f"schedule: {schedule.runs} runs, one every {args.interval} (Ctrl-C stops after the current request)",
                  file=context.human, flush=True)

            def guarded_run(settings: Settings) -> str:
                try:
                    return one_run(context, settings, stop).status
                except RunInterrupted:
                    raise
                except Exception as exc:  # one run's failure never stops the schedule
                    print(f"run {settings.run_name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                    return "failed"

            outcome = run_schedule(
                schedule, context.settings, guarded_run, stop.wait, stop.requested,
                lambda line: print(line, file=context.human, flush=True),
            )
    except RunInterrupted as exc:
        print(f"\ninterrupted: run {exc.outcome.run.id} marked interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except KeyboardInterrupt:
        print("\ninterrupted between runs", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except BenchmarkError as exc:
        print(f"run_scheduled.py: error: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    done = len(outcome.statuses)
    failed = sum(status != "completed" for status in outcome.statuses)
    print(f"schedule: {done} of {schedule.runs} runs made, {failed} not completed, "
          f"{len(outcome.skipped_slots)} slots skipped", file=sys.stderr)
    if outcome.stopped:
        return stop.exit_status
    return ExitStatus.OK if failed == 0 else ExitStatus.FAILURES


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in argv
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]]([a for a in argv[1:] if a != "--traceback"])
        args = build_parser().parse_args(argv)
        with ExitStack() as stack:
            return execute_run(settings_from_args(args), stack)
    except RunInterrupted as exc:
        outcome = exc.outcome
        print(
            f"\ninterrupted: run {outcome.run.id} marked interrupted; "
            f"{sum(r.storage_note is None for r in outcome.results)} results stored in the database",
            file=sys.stderr,
        )
        return ExitStatus.INTERRUPTED
    except KeyboardInterrupt:
        print("\ninterrupted before the run started: nothing measured", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except StorageError as exc:  # the database, not the user's input: like a failed run
        print(f"main.py: error: {exc}", file=sys.stderr)
        return ExitStatus.FAILURES
    except BenchmarkError as exc:
        print(f"main.py: error: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except Exception as exc:
        if traceback:
            raise
        print(f"main.py: unexpected error: {type(exc).__name__}: {exc} (run with --traceback for details)",
              file=sys.stderr)
        return ExitStatus.FAILURES
