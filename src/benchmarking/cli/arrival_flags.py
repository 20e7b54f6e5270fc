"""The open loop's flags (--rate and its company), each checked at its edges: one line and exit status 2."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from ..errors import ConfigError
from ..load.arrivals import MAX_RATE, MIN_RATE
from ..settings.model import Settings
from ..settings.values import number_within, whole_number

if TYPE_CHECKING:
    from ..load.levels import LoadSettings
    from ..load.trace import Trace

MIN_BURSTINESS, MAX_BURSTINESS = 0.01, 100.0  # gamma's shape: from very bursty to nearly constant
MAX_SEED = 2**63 - 1
OPEN_ONLY = {"arrivals": "--arrivals", "burstiness": "--burstiness", "seed": "--seed",
             "max_concurrency": "--max-concurrency"}


def add_arrival_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--rate", metavar="LIST",
                       help="open loop: send this many requests a second whatever earlier answers do, or sweep rates "
                            "in order: 1,5,20 (instead of --concurrency)")
    group.add_argument("--arrivals", choices=("constant", "poisson", "gamma"),
                       help="how --rate's requests arrive: evenly (constant, default), poisson, or gamma")
    group.add_argument("--burstiness", metavar="B",
                       help="gamma arrivals' shape: 1 is Poisson, below 1 burstier, above 1 more even (default 1)")
    group.add_argument("--seed", metavar="S",
                       help="the arrival schedule's seed: the same seed, the same schedule (default a fixed one, "
                            "stored with the run)")
    group.add_argument("--max-concurrency", metavar="N",
                       help="--rate's most requests in flight; one due while all are busy waits for a free slot, "
                            "counted, its wait part of its response time (default: 10 s of the highest rate, 16 "
                            "to 256)")
    group.add_argument("--trace", metavar="FILE",
                       help="replay a trace (JSONL: timestamp in ms, and input_length/output_length with Mooncake's "
                            "hash_ids, or messages; docs/load.md): each request starts at its trace time")
    group.add_argument("--time-scale", metavar="F",
                       help="--trace's time stretched (F above 1) or compressed (below 1) (default 1)")


def _rate(text: str) -> float:
    return number_within(text, "--rate", MIN_RATE, MAX_RATE, "requests per second like 5 or 0.5",
                         " requests per second")


def _burstiness(text: str) -> float:
    return number_within(text, "--burstiness", MIN_BURSTINESS, MAX_BURSTINESS, "a number like 0.5 or 2")


# What a trace sets itself: its prompts, its times, its requests (each sent once).
TRACE_EXCLUDES = {"rate": "--rate", "concurrency": "--concurrency", "prompts": "--prompts",
                  "input_tokens": "--input-tokens", "prompt": "--prompt", "prompt_file": "--prompt-file",
                  "requests": "--requests", "level_duration": "--duration", "arrivals": "--arrivals",
                  "burstiness": "--burstiness", "seed": "--seed", "repeat": "--repeat"}


def repeated(values: Sequence[float]) -> float | None:
    """The first value a sweep lists twice (its levels are measured once each, in order); None if none is."""
    seen: set[float] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def open_loop_refusal(args: argparse.Namespace, loop: str) -> str | None:
    """What an open loop (--rate, --trace) cannot honour beside it, as a refusal; None if nothing."""
    if getattr(args, "ray_address", None) is not None:
        return f"{loop} runs on --engine local (Ray nodes keep clocks of their own): drop --ray-address"
    if getattr(args, "cache", None) == "warm":  # measure_cell's warm request runs inside the slot, after the due time
        return (f"--cache warm sends an untimed request before each one, which would start {loop}'s requests off "
                "their schedule: use --cache off (a prompt sent again finds the cache warm) or bust")
    return None


def trace_of(args: argparse.Namespace) -> "Trace | None":
    """--trace's trace, read and checked once (kept on args: the workload and the load both need it); None without
    --trace."""
    if getattr(args, "trace", None) is None:
        if getattr(args, "time_scale", None) is not None:
            raise ConfigError("--time-scale stretches a trace: give --trace too")
        return None
    if (kept := getattr(args, "trace_read", None)) is not None:
        return kept
    for name, flag in TRACE_EXCLUDES.items():
        if getattr(args, name, None) is not None:
            raise ConfigError(f"--trace sets its own requests, times and prompts: drop {flag}")
    if getattr(args, "engine", "local") == "ray":
        raise ConfigError("--trace runs on --engine local (Ray nodes keep clocks of their own): drop --engine ray")
    if (refusal := open_loop_refusal(args, "--trace")) is not None:
        raise ConfigError(refusal)
    from ..load.trace import MAX_TIME_SCALE, MIN_TIME_SCALE, read_trace

    scale = (number_within(args.time_scale, "--time-scale", MIN_TIME_SCALE, MAX_TIME_SCALE, "a factor like 0.5 or 2")
             if args.time_scale is not None else 1.0)
    trace = read_trace(args.trace, scale)
    # A flag every line overrides would be dropped unseen: refused. Where some line leaves it open, it applies there.
    if getattr(args, "max_tokens", None) is not None and all(r.output_length is not None for r in trace.requests):
        raise ConfigError(f"--trace {args.trace} gives every request its output_length (its max_tokens): "
                          "drop --max-tokens")
    if getattr(args, "cache", None) is not None and all(r.hash_ids is not None for r in trace.requests):
        raise ConfigError(f"--trace {args.trace} gives every request hash_ids, which set its caching (shared "
                          "prefixes, as in the trace): drop --cache")
    args.trace_read = trace
    return trace


def trace_load_from_args(args: argparse.Namespace, trace: "Trace", settings: Settings | None,
                         max_error_rate: float) -> "LoadSettings":
    """--trace's load: one level at the trace's mean rate, as many requests as it holds, on --max-concurrency slots
    (default: 10 s of its busiest second)."""
    from ..executors.capacity import check_local_load
    from ..executors.tickets import SLOTS_PER_WORKER
    from ..load.levels import LoadSettings
    from ..load.open import default_max_concurrency

    requests = len(trace.requests)
    if args.max_concurrency is not None:  # never more slots than the trace's requests
        slots = min(whole_number(args.max_concurrency, "--max-concurrency"), requests)
    else:
        slots = default_max_concurrency((max(trace.mean_rate, trace.peak_rate),), requests)
    workers = whole_number(args.workers, "--workers") if args.workers is not None else None
    check_local_load(slots, workers, SLOTS_PER_WORKER, max(1, len(settings.providers) if settings else 1),
                     flag="--max-concurrency")
    return LoadSettings(levels=(), requests=requests, max_error_rate=max_error_rate, engine="local", workers=workers,
                        rates=(trace.mean_rate,), arrivals="trace", max_concurrency=slots, trace=trace)


def closed_loop_refusal(args: argparse.Namespace) -> str | None:
    """The first open-loop flag given without --rate, as a refusal; None if there is none."""
    for name, flag in OPEN_ONLY.items():
        if getattr(args, name, None) is not None:
            return f"{flag} is for open-loop runs: give --rate too"
    return None


def open_load_from_args(args: argparse.Namespace, settings: Settings | None, requests: int | None,
                        duration_s: float | None, max_error_rate: float) -> "LoadSettings":
    """--rate and its company, checked (within what this machine can hold)."""
    from ..executors.capacity import check_local_load
    from ..executors.tickets import SLOTS_PER_WORKER
    from ..load.arrivals import DEFAULT_SEED
    from ..load.levels import MAX_SCHEDULED, LoadSettings
    from ..load.open import default_max_concurrency

    if args.concurrency is not None:
        raise ConfigError("give --rate (an open loop) or --concurrency (a closed loop), not both")
    if args.engine == "ray":
        raise ConfigError("--rate runs on --engine local (Ray nodes keep clocks of their own): drop --engine ray")
    if (refusal := open_loop_refusal(args, "--rate")) is not None:
        raise ConfigError(refusal)
    rates = tuple(_rate(part.strip()) for part in args.rate.split(","))
    if (twice := repeated(rates)) is not None:
        raise ConfigError(f"--rate lists {twice:g} requests/s twice: each rate of a sweep is measured once (drop one)")
    arrivals = args.arrivals or "constant"
    if args.burstiness is not None and arrivals != "gamma":
        raise ConfigError("--burstiness is gamma's shape: give --arrivals gamma too")
    burstiness = _burstiness(args.burstiness) if args.burstiness is not None else 1.0
    seed = whole_number(args.seed, "--seed", minimum=0) if args.seed is not None else DEFAULT_SEED
    if seed > MAX_SEED:
        raise ConfigError(f"--seed must be at most {MAX_SEED}, not {seed}")
    if args.seed is not None and arrivals == "constant":
        raise ConfigError("--seed draws poisson or gamma arrivals (constant ones are the same every time): give "
                          "--arrivals poisson or gamma, or drop --seed")
    workers = whole_number(args.workers, "--workers") if args.workers is not None else None
    asked = whole_number(args.max_concurrency, "--max-concurrency") if args.max_concurrency is not None else None
    load = LoadSettings(levels=(), requests=requests, duration_s=duration_s, max_error_rate=max_error_rate,
                        engine="local", workers=workers, rates=rates, arrivals=arrivals, burstiness=burstiness,
                        seed=seed, max_concurrency=asked or 1)
    planned = load.planned()
    for rate, count in zip(rates, planned):
        if count is None:  # a --duration's requests are counted ahead, for the cost bound and --dry-run
            raise ConfigError(f"--rate {rate:g} for --duration {duration_s:g} s schedules more than "
                              f"{MAX_SCHEDULED:,} requests per model: give --requests, or a shorter --duration")
    # Never more slots than a rate's requests (by --requests, --duration's schedule or the default): a slot is a
    # thread and a connection, warmed before the level starts.
    most = max([1, *(count for count in planned if count is not None)])
    slots = min(asked, most) if asked is not None else default_max_concurrency(rates, most)
    check_local_load(slots, workers, SLOTS_PER_WORKER, max(1, len(settings.providers) if settings else 1),
                     flag="--max-concurrency")
    return replace(load, max_concurrency=slots)
