"""`python -m benchmarking.simulator`: serve the simulator in the foreground."""

from __future__ import annotations

import argparse
from dataclasses import replace

from .profiles import DEFAULT_PROFILE
from .server import Simulator


def main(argv: list[str] | None = None) -> int:
    """Serve the simulator in the foreground, for trying the tool or another client against it."""
    # prog: the name its usage line had when the simulator was one file, simulator.py
    parser = argparse.ArgumentParser(
        prog="simulator.py",
        description="The providers' APIs (OpenAI Chat Completions and Responses, Anthropic Messages, Gemini) with "
                    "known timing.",
    )
    parser.add_argument("--port", type=int, default=8000, help="loopback port to listen on (default 8000)")
    parser.add_argument("--ttft-ms", type=float, help="TTFT for models not in the built-in table")
    parser.add_argument("--capacity", type=int, metavar="N",
                        help="serve at most N requests at once for models not in the table; more wait their turn "
                             "(a saturated server)")
    parser.add_argument("--over-capacity-429", action="store_true",
                        help="with --capacity: refuse requests over it with 429 (a provider's concurrency limit)")
    args = parser.parse_args(argv)
    if args.capacity is not None and args.capacity < 1:
        parser.error("--capacity takes a number of requests, 1 or more")
    if args.over_capacity_429 and args.capacity is None:
        parser.error("--over-capacity-429 needs --capacity N")
    default = replace(DEFAULT_PROFILE, ttft_ms=DEFAULT_PROFILE.ttft_ms if args.ttft_ms is None else args.ttft_ms,
                      capacity=args.capacity, over_capacity_429=args.over_capacity_429)
    sim = Simulator(default=default, port=args.port)
    print(f"simulator listening on {sim.url} (base URLs: OpenAI {sim.base_url('openai')}, Anthropic "
          f"{sim.base_url('anthropic')}, Gemini {sim.base_url('gemini')}); Ctrl-C stops it")
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
