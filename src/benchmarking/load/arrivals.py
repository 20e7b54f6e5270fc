"""When an open loop's requests are due: a pure schedule of offsets from a level's start, from a rate, a kind of
arrivals and a seed (the same seed, the same schedule).

- constant: one request every 1/rate seconds, the first at 0.
- poisson: gaps drawn from an exponential distribution of mean 1/rate (coefficient of variation 1).
- gamma: gaps drawn from a gamma distribution of shape B (--burstiness) and mean 1/rate, as vLLM's
  `--burstiness`: B = 1 is Poisson, B < 1 burstier (coefficient of variation 1/sqrt(B)), B > 1 more even.
The first request is due at the level's start for every kind, so a level of N requests has N - 1 gaps.
"""

from __future__ import annotations

import itertools
import random
from typing import Iterator

ARRIVALS = ("constant", "poisson", "gamma")
MIN_RATE, MAX_RATE = 0.01, 10_000.0  # requests/s: one every 100 s at least (a level must end), beyond any machine
DEFAULT_SEED = 20261207  # stored with the run, so its schedule can be drawn again


def gaps(kind: str, rate: float, seed: int, burstiness: float = 1.0) -> Iterator[float]:
    """The seconds between one request and the next, endless."""
    if kind not in ARRIVALS:
        raise ValueError(f"unknown arrivals {kind!r}")
    mean = 1.0 / rate
    if kind == "constant":
        return itertools.repeat(mean)
    draw = random.Random(seed)  # its own generator: nothing else moves it
    if kind == "poisson":
        return (draw.expovariate(rate) for _ in itertools.count())
    return (draw.gammavariate(burstiness, mean / burstiness) for _ in itertools.count())


def offsets(kind: str, rate: float, seed: int, burstiness: float = 1.0) -> Iterator[float]:
    """Each request's due time, in seconds from the level's start: 0 first, then the gaps added up, endless. Constant
    arrivals are i / rate, not 1 / rate added i times: the sum drifts below (ten gaps of 0.1 s add up to 0.9999999),
    and a --duration of 1 s at 10 requests/s sent 11."""
    if kind == "constant":
        yield from (index / rate for index in itertools.count())
        return
    due = 0.0
    yield due
    for gap in gaps(kind, rate, seed, burstiness):
        due += gap
        yield due


def schedule(kind: str, rate: float, seed: int, burstiness: float = 1.0, requests: int | None = None,
             duration_s: float | None = None) -> list[float]:
    """The first `requests` offsets, or those before `duration_s` (at least one of the two)."""
    if requests is None and duration_s is None:
        raise ValueError("a schedule needs a number of requests or a duration")
    found: list[float] = []
    for due in offsets(kind, rate, seed, burstiness):
        if (requests is not None and len(found) >= requests) or (duration_s is not None and due >= duration_s):
            break
        found.append(due)
    return found


def scheduled_count(kind: str, rate: float, seed: int, burstiness: float, duration_s: float, most: int) -> int | None:
    """How many requests the schedule starts before duration_s (what a --duration run sends at most); None when
    more than `most`."""
    for count, due in enumerate(offsets(kind, rate, seed, burstiness)):
        if due >= duration_s:
            return count
        if count >= most:
            return None
    raise AssertionError("offsets are endless")


def level_seed(seed: int, index: int) -> int:
    """Each rate of a sweep draws its own schedule, fixed by the run's seed and the rate's place in the sweep."""
    return seed * 1_000_003 + index
