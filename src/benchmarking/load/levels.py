"""A load level: how a load run loads each provider and model (its levels, in order), what one level did (rates,
percentiles, start lags, the harness's own CPU), and when a sweep of levels stops early. Shared by every loop that
drives levels: the closed loop (closed.py) now, an open loop beside it later.

The harness never passes its own limit off as the provider's: each row stores its start lag (from when its slot was
free to when its request started), the workers report the CPU they used, and a level where either shows the harness
was busy says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
import math
from typing import Any, Sequence

from ..executors.tickets import Done
from .arrivals import DEFAULT_SEED, level_seed, scheduled_count
from ..figures import (
    LEVEL_PERCENTILES, LevelFigures, LevelRow, level_figures, quantiles, rate_text, round_ms, round_rate,
    round_s,
)

SATURATION_GAIN = 1.05  # a level whose throughput is not 5 % above the best before it: the provider is saturated
BOTTLENECK_LAG_P99_MS = 10.0  # start lags beyond this, or workers this busy, mean the harness held requests back
BOTTLENECK_CPU_SHARE = 0.8
IN_FLIGHT_SHARE = 0.9  # a level that kept fewer in flight on average than this share of it says so
LAG_GROWTH_MS = 5.0  # start lags whose median grew this much from a level's first quarter to its last
LAG_GROWTH_SAMPLES = 8  # fewer requests than this tell nothing of growth
OPEN_LOOP_DEFAULT_S = 10.0  # a rate's requests when neither --requests nor --duration is given: 10 s of arrivals
MAX_SCHEDULED = 1_000_000  # an open loop's requests a rate and model that --duration may schedule (counted ahead)
DEFAULT_MAX_ERROR_RATE = 0.1  # a sweep stops after a level whose error rate is above this


@dataclass(frozen=True)
class LoadSettings:
    """How a load run loads each provider and model."""

    levels: tuple[int, ...]  # requests in flight, in order
    requests: int | None = None  # per level; None: 10 x the level, unless duration_s is given
    duration_s: float | None = None  # per level, instead of a number of requests
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    engine: str = "local"  # 'local' (worker processes on this machine) | 'ray'
    workers: int | None = None  # local worker processes; None: one per SLOTS_PER_WORKER slots, at most the CPUs
    ray_address: str | None = None
    # An open loop (--rate): its arrival rates in requests/s, in order, instead of levels of requests in flight.
    rates: tuple[float, ...] = ()
    arrivals: str = "constant"  # arrivals.ARRIVALS
    burstiness: float = 1.0  # gamma's shape
    seed: int = DEFAULT_SEED
    max_concurrency: int | None = None  # an open loop's slots: the most requests in flight at once
    # A replayed trace (--trace: load/trace.py's Trace; its rates are its one mean rate, its requests its count).
    trace: Any = None

    @property
    def steps(self) -> tuple[float, ...]:
        """What a sweep walks through, in order: rates for an open loop, concurrency levels for a closed one."""
        return self.rates or tuple(float(level) for level in self.levels)

    @property
    def slots(self) -> int:
        """The executor's slots: the largest level, or an open loop's --max-concurrency."""
        return (self.max_concurrency or 1) if self.rates else max(self.levels)

    def requests_at(self, level: float) -> int | None:
        """A level's (or a rate's) requests; None where it runs for duration_s instead. A rate's default: its
        OPEN_LOOP_DEFAULT_S of arrivals, at least 10."""
        if self.duration_s is not None and self.requests is None:
            return None
        if self.requests is not None:
            return self.requests
        return max(10, math.ceil(level * OPEN_LOOP_DEFAULT_S)) if self.rates else 10 * int(level)

    def planned(self) -> list[int | None]:
        """Each step's requests, in order, as far as they are known before the run: an open loop timed by --duration
        sends what its schedule starts within it (counted here, as it will be drawn; None past MAX_SCHEDULED); a
        closed loop timed by --duration has no count."""
        counts = [self.requests_at(step) for step in self.steps]
        if self.rates and self.duration_s is not None and self.requests is None:
            counts = [scheduled_count(self.arrivals, rate, level_seed(self.seed, index), self.burstiness,
                                      self.duration_s, MAX_SCHEDULED) for index, rate in enumerate(self.rates)]
        return counts


def in_flight_s(done: Done) -> float:
    """How long a request itself was in flight: from when it left to its answer's last byte (a success's), else as
    long as it held its slot. A slot holds its request a little longer, to read the answer it recorded; on a worker
    short of CPU (1,024 long streams ending together) that took seconds the provider never saw, and a level held at
    the server for 32 s read as not held. 0 where the executor times no slots (Ray)."""
    m = done.measurement
    if done.busy_s <= 0 or not m.success or m.sent_at_s is None or m.answered_at_s is None:
        return done.busy_s
    return min(done.busy_s, max(0.0, m.answered_at_s - m.sent_at_s))


@dataclass
class LevelStats:
    """What one level of one provider and model did."""

    concurrency: int
    requests: int = 0
    successes: int = 0
    wall_s: float = 0.0  # from when the driver started the level to when its last row came back: the harness's time
    errors: Counter[str] = field(default_factory=Counter)
    start_lags_ms: list[float] = field(default_factory=list)
    steady_lags_ms: list[float] = field(default_factory=list)  # after the ramp: the loop's own pace
    cpu_s: dict[str, tuple[float, float]] = field(default_factory=dict)  # worker -> (first, last) CPU seen
    rows: list[LevelRow] = field(default_factory=list)  # the provider's figures come from these, as report's do
    busy_s: float = 0.0  # the requests' time in flight, summed
    held_s: float = 0.0  # from the level's start to its last request's end (before the counts that follow it)
    rate: float | None = None  # an open loop's arrival rate, requests/s (concurrency is then its slots)
    waited_for_slot: int = 0  # an open loop's requests due while every slot was busy
    scheduled_lags_ms: list[tuple[datetime, float]] = field(default_factory=list)  # (when due, start lag)

    def add(self, done: Done, stored_at: datetime) -> None:
        m = done.measurement
        self.rows.append((None, m, stored_at))
        self.requests += 1
        if m.success:
            self.successes += 1
        else:
            self.errors[m.error_type or "unknown"] += 1
        self.waited_for_slot += done.waited_for_slot
        if m.start_lag_ms is not None and m.scheduled_at is not None:
            self.scheduled_lags_ms.append((m.scheduled_at, m.start_lag_ms))
        if m.start_lag_ms is not None:
            self.start_lags_ms.append(m.start_lag_ms)
            if not done.ramp:
                self.steady_lags_ms.append(m.start_lag_ms)
        self.busy_s += in_flight_s(done)
        first, _ = self.cpu_s.get(done.worker, (done.worker_cpu_s, done.worker_cpu_s))
        self.cpu_s[done.worker] = (first, done.worker_cpu_s)

    def request_ended(self, done: Done, received: float, began: float, one_clock: bool) -> None:
        """The level's time runs to its last answer's end: by the worker's own clock where it is this host's
        (`one_clock`: local workers; perf_counter is one clock for a host's processes; and a count after the
        request, which only local workers make), else by when its row came back (a Ray actor's clock is its
        node's). The rows of a thousand requests that end together come back one by one, seconds apart: timed by
        their coming back, a level of 1,024 held for 33 s read as held for 40, and so as not held."""
        if one_clock or done.counted_later:
            answered = done.measurement.answered_at_s if done.measurement.success else None
            ended = done.ended if answered is None else min(done.ended, answered)
        else:
            ended = received
        self.held_s = max(self.held_s, ended - began)

    @property
    def error_rate(self) -> float:
        return (self.requests - self.successes) / self.requests if self.requests else 0.0

    @property
    def figures(self) -> LevelFigures:
        """The level's requests, rates, TTFT and latency by the function `report --by concurrency` uses."""
        return level_figures(self.rows, LEVEL_PERCENTILES)

    @property
    def output_tokens_per_s(self) -> float | None:
        return self.figures.output_tokens_per_s

    @property
    def requests_per_s(self) -> float | None:
        return self.figures.requests_per_s

    @property
    def in_flight(self) -> float | None:
        """Requests really kept in flight, on average over the level's wall time (their time in flight, summed,
        over it); None without a wall time."""
        window = self.held_s or self.wall_s
        return min(float(self.concurrency), self.busy_s / window) if window > 0 and self.busy_s > 0 else None

    def short_of_level(self) -> str | None:
        """Why the level kept fewer requests in flight than asked (under IN_FLIGHT_SHARE of it), if it did."""
        held = self.in_flight
        if self.rate is not None:  # an open loop holds what its arrivals bring, not a level
            return None
        if held is None or held >= IN_FLIGHT_SHARE * self.concurrency:
            return None
        # The share rounded down: a level held at 89.6 % never reads as the 90 % it fell short of.
        return (f"{held:.1f} requests in flight on average, {math.floor(held / self.concurrency * 100)}% of the "
                f"level's {self.concurrency}")

    def start_lag_ms(self, q: int) -> float | None:
        return quantiles(self.start_lags_ms, (q,))[q]

    @property
    def harness_cpu_ms_per_request(self) -> float | None:
        """The workers' CPU from the level's start (their last report before it) to their last report in it."""
        used = sum(last - first for first, last in self.cpu_s.values())
        return used / self.requests * 1000 if self.requests and used > 0 else None

    @property
    def busiest_worker_share(self) -> float:
        """The largest share of the level's wall time one worker process spent on the CPU."""
        if self.wall_s <= 0 or not self.cpu_s:
            return 0.0
        return max(last - first for first, last in self.cpu_s.values()) / self.wall_s

    def bottleneck(self) -> str | None:
        """Why the harness, not the provider, may have set this level's pace; None if it did not."""
        # The ramp (all of a level's first requests due at once) starts in a burst by design; the loop after it
        # should keep pace with the provider.
        lag = quantiles(self.steady_lags_ms, (99,))[99]
        reasons = []
        if lag is not None and lag > BOTTLENECK_LAG_P99_MS:
            reasons.append(f"requests started up to {lag:.0f} ms late (p99, after the ramp)")
        if (grew := lag_growth([lag for _, lag in sorted(self.scheduled_lags_ms)])) is not None:
            reasons.append(grew)
        if self.waited_for_slot:
            reasons.append(f"{self.waited_for_slot} requests were due while all {self.concurrency} slots were busy "
                           "(--max-concurrency)")
        if self.busiest_worker_share > BOTTLENECK_CPU_SHARE:
            reasons.append(f"a worker process was on the CPU {self.busiest_worker_share:.0%} of the time")
        return "; ".join(reasons) or None

    def summary(self) -> dict[str, object]:
        figures = self.figures
        return {
            **({"request_rate": self.rate, "waited_for_slot": self.waited_for_slot} if self.rate is not None else {}),
            "concurrency": self.concurrency,
            "requests": self.requests,
            "successes": self.successes,
            "wall_s": round_s(figures.wall_s),
            "requests_per_s": round_rate(figures.requests_per_s),
            "output_tokens_per_s": round_rate(figures.output_tokens_per_s),
            "error_rate": round(self.error_rate, 4),
            "errors": dict(self.errors),
            "ttft_p50_ms": round_ms(figures.ttft_ms[50]),
            "ttft_p99_ms": round_ms(figures.ttft_ms[99]),
            "latency_p50_ms": round_ms(figures.latency_ms[50]),
            "latency_p99_ms": round_ms(figures.latency_ms[99]),
            "start_lag_p50_ms": round_ms(self.start_lag_ms(50)),
            "start_lag_p99_ms": round_ms(self.start_lag_ms(99)),
            "start_lag_p99_after_ramp_ms": round_ms(quantiles(self.steady_lags_ms, (99,))[99]),
            "harness_cpu_ms_per_request": round_ms(self.harness_cpu_ms_per_request),
            "harness_bottleneck": self.bottleneck(),
            "in_flight_mean": None if self.in_flight is None else round(self.in_flight, 2),
        }


def lag_growth(lags_ms: Sequence[float]) -> str | None:
    """Whether start lags, in the order the requests were due, grew over the level: the median of its last quarter
    LAG_GROWTH_MS above that of its first (the harness fell further behind its schedule as it went); None if not."""
    if len(lags_ms) < LAG_GROWTH_SAMPLES:
        return None
    quarter = len(lags_ms) // 4
    first, last = quantiles(lags_ms[:quarter], (50,))[50], quantiles(lags_ms[-quarter:], (50,))[50]
    if first is None or last is None or last - first <= LAG_GROWTH_MS:
        return None
    return f"start lags grew over the level, from {first:.0f} ms (median, first quarter) to {last:.0f} ms (last)"


def level_name(level: LevelStats) -> str:
    return f"rate {level.rate:g}/s" if level.rate is not None else f"concurrency {level.concurrency}"


def sweep_stop(levels: Sequence[LevelStats], max_error_rate: float) -> str | None:
    """Why a sweep stops after its latest level, if it does."""
    last = levels[-1]
    if last.error_rate > max_error_rate:
        return (f"error rate {last.error_rate:.0%} at {level_name(last)} is above --max-error-rate "
                f"{max_error_rate:.0%}")
    earlier = [rate for level in levels[:-1] if (rate := level.output_tokens_per_s) is not None]
    throughput = last.output_tokens_per_s  # unknown where the provider did not say how many tokens it sent
    if earlier and throughput is not None and throughput < SATURATION_GAIN * max(earlier):
        return (f"throughput stopped rising at {level_name(last)}: {rate_text(throughput)} "
                f"output tokens/s, against {rate_text(max(earlier))} before (saturation)")
    return None
