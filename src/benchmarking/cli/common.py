"""What every command shares: exit statuses, the one-line usage error, the run flags and the settings they make."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from enum import IntEnum
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings.environment import load_dotenv_file
from ..settings.load import load_settings
from ..settings.model import Settings
from ..settings.values import DEFAULT_MAX_COST_USD, DEFAULT_MAX_TOKENS, DEFAULT_RUN_NAME, DEFAULT_TIMEOUT_S
from ..settings.values import positive_float, read_utf8, whole_number
from ..errors import ConfigError
from ..textfile import MAX_PROMPT_BYTES
from ..workloads import CACHE_MODES
from .arrival_flags import (
    add_arrival_arguments, closed_loop_refusal, open_load_from_args, repeated, trace_load_from_args, trace_of,
)

if TYPE_CHECKING:
    from ..load.levels import LoadSettings
    from ..workloads import Workload


class ExitStatus(IntEnum):
    OK = 0
    FAILURES = 1  # a provider failed, or a result could not be stored: cron and scripts notice
    USAGE = 2  # bad flag or configuration; nothing was measured
    FIRING = 3  # `watch --fail-on-firing`: an alert is firing
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitStatus.USAGE, f"{self.prog}: error: {message} (see --help)\n")


def add_run_arguments(parser: argparse.ArgumentParser, level_duration_flag: str = "--duration") -> None:
    """The flags of one run, shared by main.py and run_scheduled.py (whose own --duration is the schedule's: there a
    load level's time is --level-duration)."""
    what = parser.add_argument_group("what to measure")
    what.add_argument("--providers", metavar="LIST", help="comma-separated subset, e.g. openai,groq (default: all)")
    what.add_argument(
        "--model", action="append", default=[], metavar="PROVIDER=MODEL",
        help="use another model for one provider; repeatable (also OPENAI_MODEL, GROQ_MODEL, ...)",
    )
    what.add_argument(
        "--api", action="append", default=[], metavar="PROVIDER=API",
        help="the API a provider is measured through, e.g. openai=responses (also OPENAI_API; default "
             "chat_completions); repeatable",
    )
    prompt = what.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", metavar="TEXT", help="the prompt to send (default: a built-in one asking how a hash map works)")
    prompt.add_argument("--prompt-file", metavar="PATH", help="read the prompt from a file")
    prompt.add_argument("--input-tokens", metavar="LIST",
                        help="prompts of about these input sizes (tiers), e.g. 100,1000,10000 or 10k; each with an "
                             "output cap that fits (100: 300, 1k: 1000, 10k: 1500, 100k: 2000)")
    prompt.add_argument("--prompts", metavar="FILE",
                        help="a set of your own prompts: .txt (separated by lines of ---) or .jsonl (one object a "
                             "line: prompt or messages, or turns, and optional id, max_tokens, system, expect, tools, "
                             "tool_choice, expect_tool, tool_results, schema, think_time_s; docs/workloads.md)")
    what.add_argument(
        "--config", metavar="PATH",
        help="benchmark.toml with extra OpenAI-compatible endpoints (default: BENCHMARK_CONFIG or ./benchmark.toml)",
    )
    what.add_argument("--simulate", action="store_true", help="measure the built-in simulator instead (no keys needed)")

    how = parser.add_argument_group("how to measure")
    how.add_argument("--repeat", metavar="N",
                     help="rounds: each measures every provider, model and prompt once, in an order that rotates "
                          "from round to round (default 1; a load run sends --requests or --duration a level "
                          "instead)")
    how.add_argument(
        "--max-tokens", metavar="N",
        help=f"max_tokens for each request (default {DEFAULT_MAX_TOKENS}, or the tier's cap; a prompt file's own "
             "max_tokens wins)",
    )
    how.add_argument("--cache", choices=CACHE_MODES,
                     help="prompt caching: bust puts a unique marker in front of every prompt so that no cache serves "
                          "it (default for --input-tokens and --prompts); warm sends each prompt once untimed first; "
                          "off sends prompts as given (default for the one prompt)")
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

    load = parser.add_argument_group("load (opt-in): requests in flight together, per provider and model")
    load.add_argument("--concurrency", metavar="LIST",
                      help="keep this many requests in flight (closed loop), or sweep levels in order: 1,2,4,8,16")
    load.add_argument("--requests", metavar="N", help="requests per level (default 10 x the level)")
    load.add_argument(level_duration_flag, dest="level_duration", metavar="TIME",
                      help="run each level this long instead, like 30s or 2m")
    load.add_argument("--max-error-rate", metavar="RATE",
                      help="stop a sweep of several levels after one whose error rate is above this (default 0.1)")
    load.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="local worker processes (default), or Ray actors across a cluster")
    load.add_argument("--ray-address", metavar="ADDRESS",
                      help="the Ray cluster (default RAY_ADDRESS, else a local Ray)")
    load.add_argument("--workers", metavar="N", help="local worker processes (default: one per 16 slots, at most the "
                                                     "CPUs)")
    add_arrival_arguments(load)

    money = parser.add_argument_group("before spending money")
    money.add_argument("--dry-run", action="store_true",
                       help="print the plan (requests, and an upper bound on their cost) and send nothing")
    money.add_argument("--max-cost", default=str(DEFAULT_MAX_COST_USD), metavar="USD",
                       help=f"stop before sending anything if the run could cost more (default {DEFAULT_MAX_COST_USD})")

    run = parser.add_argument_group("the run")
    run.add_argument("--run-name", default=DEFAULT_RUN_NAME,
                     help=f"stored as runs.run_name (default {DEFAULT_RUN_NAME})")
    run.add_argument("--triggered-by", default="cli", help="stored as runs.triggered_by (default cli)")
    run.add_argument("--json", dest="json_output", action="store_true", help="print the results as JSON on stdout")
    run.add_argument("--traceback", action="store_true", help="show the full traceback of an unexpected error")


def read_prompt(args: argparse.Namespace, default: str) -> str:
    if args.prompt_file:
        return read_utf8(Path(args.prompt_file), "--prompt-file", max_bytes=MAX_PROMPT_BYTES)
    return default if args.prompt is None else args.prompt


def builtin_providers() -> list[tuple[str, str]]:
    """(name, default model) of each entry of PROVIDERS, in order."""
    from ..benchmark_runner import PROVIDERS  # the runner and the providers load only where a command needs them

    return [(name, model) for name, _, model in PROVIDERS]


def workload_from_args(args: argparse.Namespace, prompt: str) -> "Workload | None":
    """Tiers, a prompt file, or the one prompt (None: sent exactly as the MVP did, unless --cache says otherwise)."""
    from ..workloads import Workload, default_workload, load_prompt_file, parse_tiers, tier_workload

    if (trace := trace_of(args)) is not None:
        from ..load.trace import placeholder_prompt

        fallback = whole_number(args.max_tokens, "--max-tokens") if args.max_tokens is not None else DEFAULT_MAX_TOKENS
        return Workload(trace.name, (placeholder_prompt(trace, fallback),), args.cache or "bust")
    if args.input_tokens is not None:
        return tier_workload(parse_tiers(args.input_tokens), args.cache or "bust")
    if args.prompts is not None:
        return load_prompt_file(args.prompts, args.cache or "bust")
    if args.cache is not None:
        return Workload("default", default_workload(prompt).prompts, args.cache)
    return None


def load_from_args(args: argparse.Namespace, settings: Settings | None = None) -> "LoadSettings | None":
    """--concurrency and its company, checked (within what this machine can hold); None for a sequential run."""
    from ..executors.capacity import check_local_load
    from ..load.levels import LoadSettings
    from ..executors.tickets import SLOTS_PER_WORKER

    load_flags = {"requests": "--requests", "level_duration": "--duration", "workers": "--workers",
                  "ray_address": "--ray-address", "max_error_rate": "--max-error-rate"}
    trace = trace_of(args)
    if args.rate is None and trace is None and (refusal := closed_loop_refusal(args)) is not None:
        raise ConfigError(refusal)
    if args.concurrency is None and args.rate is None and trace is None:
        given = [flag for name, flag in load_flags.items() if getattr(args, name) is not None]
        if given or args.engine != "local":
            raise ConfigError(f"{(given or ['--engine'])[0]} is for load runs: give --concurrency too")
        return None
    loop = "--trace" if trace is not None else "--rate" if args.rate is not None else "--concurrency"
    if settings is not None and settings.workload is not None:
        from ..providers.conversation import is_conversation

        talk = next((p for p in settings.workload.prompts if is_conversation(p)), None)
        if talk is not None:
            raise ConfigError(f"{loop}: prompt {talk.prompt_id!r} is a conversation (turns or tool_results), "
                              f"which a load run does not send: measure it without {loop}")
    if trace is not None:
        return one_level_refused(args, trace_load_from_args(args, trace, settings, _max_error_rate(args)),
                                 "a --trace replay")
    if args.repeat is not None:  # a level's requests are its count or its time: rounds of them would be a new level
        raise ConfigError("--repeat is for sequential runs: a load run's requests are --requests or --duration a "
                          "level (drop --repeat)")
    levels = []
    for part in ([] if args.rate is not None else args.concurrency.split(",")):
        levels.append(whole_number(part.strip(), "--concurrency (each level)"))
    if (twice := repeated(levels)) is not None:
        raise ConfigError(f"--concurrency lists {twice:g} twice: each level of a sweep is measured once (drop one)")
    if args.requests is not None and args.level_duration is not None:
        raise ConfigError("give --requests or --duration, not both")
    requests = whole_number(args.requests, "--requests") if args.requests is not None else None
    if args.rate is not None:
        return one_level_refused(args, open_load_from_args(args, settings, requests, _duration(args),
                                                           _max_error_rate(args)), f"--rate {args.rate}")
    if requests is not None and requests < max(levels):
        raise ConfigError(f"--requests {requests} is below the concurrency {max(levels)}: a level could never have "
                          "that many in flight")
    max_error_rate = _max_error_rate(args)
    ray_address = None
    if args.engine == "ray":
        from ..executors.ray_cluster import parse_ray_address, require_ray

        if args.workers is not None:
            raise ConfigError("--workers is for --engine local: on Ray each node gets actors by its CPUs")
        ray_address = args.ray_address or os.environ.get("RAY_ADDRESS") or None
        parse_ray_address(ray_address)
        require_ray()
    elif args.ray_address is not None:
        raise ConfigError("--ray-address is for --engine ray")
    workers = whole_number(args.workers, "--workers") if args.workers is not None else None
    if args.engine == "local":
        check_local_load(max(levels), workers, SLOTS_PER_WORKER, max(1, len(settings.providers) if settings else 1))
    return one_level_refused(args, LoadSettings(
        levels=tuple(levels),
        requests=requests,
        duration_s=_duration(args),
        max_error_rate=max_error_rate,
        engine=args.engine,
        workers=workers,
        ray_address=ray_address,
    ), f"--concurrency {args.concurrency}")


def one_level_refused(args: argparse.Namespace, load: "LoadSettings", what: str) -> "LoadSettings":
    """The load, unless --max-error-rate is given for one level: it stops a sweep between levels, so there it would
    do nothing."""
    if args.max_error_rate is not None and len(load.steps) < 2:
        raise ConfigError(f"--max-error-rate stops a sweep between its levels, and {what} is one level: give a list "
                          "of levels, or drop --max-error-rate")
    return load


def _max_error_rate(args: argparse.Namespace) -> float:
    from ..load.levels import DEFAULT_MAX_ERROR_RATE

    if args.max_error_rate is None:
        return DEFAULT_MAX_ERROR_RATE
    try:
        max_error_rate = float(args.max_error_rate)
    except ValueError:
        raise ConfigError(f"--max-error-rate takes a fraction like 0.1, not {args.max_error_rate!r}") from None
    if not 0 <= max_error_rate <= 1:
        raise ConfigError(f"--max-error-rate is a fraction from 0 to 1, not {args.max_error_rate}")
    return max_error_rate


def _duration(args: argparse.Namespace) -> float | None:
    from ..scheduler import parse_duration

    return parse_duration(args.level_duration, "--duration") if args.level_duration is not None else None


def connect_engine(load: "LoadSettings | None") -> None:
    """--engine ray: connect to the cluster before storage is opened, so that one that is not there (or not Ray)
    costs one line and leaves nothing behind."""
    if load is not None and load.engine == "ray":
        from ..executors.ray_cluster import connect

        connect(load.ray_address)


MAX_USD = Decimal(1_000_000_000)  # a bound on cost above this bounds nothing: refused like inf


def positive_usd(text: str, flag: str) -> Decimal:
    try:
        value = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation:
        raise ConfigError(f"{flag} takes an amount of USD like 1.50, not {text!r}") from None
    if not value.is_finite() or value <= 0 or value > MAX_USD:  # 1e999 is a Decimal, but no amount anyone means
        raise ConfigError(f"{flag} must be more than 0 USD and at most {MAX_USD:,} USD, not {text!r}")
    return value


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags, environment and .env into one validated Settings."""
    from ..benchmark_runner import BENCHMARK_PROMPT

    load_dotenv_file()
    prompt = read_prompt(args, BENCHMARK_PROMPT)
    return load_settings(
        prompt=prompt,
        builtin=builtin_providers(),
        environ=os.environ,
        provider_selection=args.providers,
        model_overrides=args.model,
        api_overrides=args.api,
        config_path=args.config,
        max_tokens=whole_number(args.max_tokens, "--max-tokens") if args.max_tokens is not None else None,
        timeout_s=positive_float(args.timeout, "--timeout"),
        stream=args.stream,
        repeat=whole_number(args.repeat, "--repeat") if args.repeat is not None else 1,
        retries=whole_number(args.retries, "--retries", minimum=0),
        simulate=args.simulate,
        json_output=args.json_output,
        run_name=args.run_name,
        triggered_by=args.triggered_by,
        workload=workload_from_args(args, prompt),
        dry_run=args.dry_run,
        max_cost_usd=positive_usd(args.max_cost, "--max-cost"),
    )


def storage_only_settings(config_path: str | None = None, watching: bool = False, notify: bool = False
                          ) -> Settings:
    """Settings that name only where results are stored (report, flush): .env and the environment; with `watching`,
    benchmark.toml's [slo] and [alerts] too (report, watch), and with `notify` its notify URLs (watch)."""
    from ..settings.load import load_storage_settings

    load_dotenv_file()
    return load_storage_settings(os.environ, config_path, watching, notify)
