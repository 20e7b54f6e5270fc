"""The figures every output shows (a run's console summary and load levels, `report` in every format), defined once.

Percentiles by linear interpolation between closest ranks (Hyndman and Fan's type 7, NumPy's default): a tail
percentile needs 2 samples, the median 1 (the median of one request is that request). Times and speeds count the
successful requests that have them. Times are rounded to 0.01 ms, wall times to 1 ms, rates to 4
significant digits. A level's wall time
runs from its first request's start to its last one's end, per run. An output token count that a successful request
did not report makes its level's token figures unknown (None), never 0.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
import math
from typing import Callable, Hashable, Iterable, Sequence

from .measurement import Measurement

RATE_DIGITS = 4  # significant digits of a rate: 0.4333 requests/s, 1235 output tokens/s
LEVEL_PERCENTILES = (50, 90, 99)  # of a load level's TTFT and latency


# From this many values on, the ranks a percentile needs are selected (numpy's partition, in linear time) instead of
# every value sorted: the same values at the same ranks, a fifth of the time over a long history's million results.
SELECTED_FROM = 2_000


def percentile(values: Sequence[float], q: float, presorted: bool = False) -> float | None:
    """The q-th percentile by linear interpolation between closest ranks; None for no value, and for one value at any
    percentile but the median (the median of one request is that request)."""
    if len(values) < 2:
        return values[0] if len(values) == 1 and q == 50 else None
    ordered = values if presorted else sorted(values)
    return _interpolated(ordered.__getitem__, len(ordered), q)


def _interpolated(ranked: Callable[[int], float], count: int, q: float) -> float:
    """The q-th percentile of `count` values (at least 2), `ranked(i)` giving the i-th smallest."""
    position = (count - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    lo, hi, fraction = ranked(low), ranked(high), position - low
    value = lo + (hi - lo) * fraction  # as PostgreSQL's percentile_cont, to the bit
    if math.isinf(value) and math.isfinite(lo) and math.isfinite(hi):
        # hi - lo overflowed (-1.5e308 and 1.5e308): a median between two finite values is finite
        value = lo * (1 - fraction) + hi * fraction
    return value


def quantiles(values: Iterable[float], qs: Sequence[int]) -> dict[int, float | None]:
    """The percentiles qs of the values, sorted once; from SELECTED_FROM floats in a list or array on, only the ranks
    they need are put in place."""
    if _many_floats(values):
        return _selected(values, qs)
    ordered = sorted(values)
    return {q: percentile(ordered, q, presorted=True) for q in qs}


def _many_floats(values: Iterable[float]) -> bool:
    """SELECTED_FROM values or more, all floats (an array of doubles, or a list): numpy would make ints floats
    (2**53 + 1 is no float) or overflow on them (10**309), where sorting keeps them exact."""
    if isinstance(values, array):
        return len(values) >= SELECTED_FROM and values.typecode == "d"
    return isinstance(values, list) and len(values) >= SELECTED_FROM and all(type(v) is float for v in values)


def _selected(values: list[float] | array, qs: Sequence[int]) -> dict[int, float | None]:
    """quantiles() of many floats: each rank a percentile needs selected into its sorted place, the rest unsorted."""
    import numpy  # here only: 0.1 s to import, for a long history

    ordered = numpy.array(values, dtype=float)
    if numpy.isnan(ordered).any():  # sorted() places a NaN where it meets it; keep its answer, whatever it is
        return {q: percentile(sorted(values), q, presorted=True) for q in qs}
    positions = [(len(values) - 1) * q / 100 for q in qs]
    ordered.partition(sorted({rank for p in positions for rank in (math.floor(p), math.ceil(p))}))
    return {q: _interpolated(lambda rank: float(ordered[rank]), len(values), q) for q in qs}


def round_ms(value: float | None) -> float | None:
    """A time (or a speed) as every output shows it: to 0.01."""
    return None if value is None else round(value, 2)


def round_s(value: float | None) -> float | None:
    """A wall time in seconds as every output shows it: to the ms."""
    return None if value is None else round(value, 3)


def round_rate(value: float | None) -> float | None:
    """A rate to RATE_DIGITS significant digits: 0.4333 -> 0.4333, 1234.56 -> 1235.0."""
    if value is None or value == 0 or not math.isfinite(value):
        return value
    return round(value, RATE_DIGITS - 1 - math.floor(math.log10(abs(value))))


def number_text(value: float | None, unknown: str = "-") -> str:
    """A figure as it is rounded, in plain digits (never an exponent, no trailing zeros): 0.4333, 1235, 12.5."""
    if value is None:
        return unknown
    return format(Decimal(repr(float(value))).normalize(), "f")


def rate_text(value: float | None, unknown: str = "unknown") -> str:
    """A rate as the console says it: round_rate's digits, 'unknown' where it is not known."""
    return number_text(round_rate(value), unknown)


class LevelRates:
    """Rates over a level's wall time, for any record with `wall_s`, `requests` and `output_tokens`."""

    wall_s: float
    requests: int
    output_tokens: int | None

    def rate(self, count: int | None) -> float | None:
        return None if count is None or self.wall_s <= 0 else count / self.wall_s

    @property
    def requests_per_s(self) -> float | None:
        return self.rate(self.requests)

    @property
    def output_tokens_per_s(self) -> float | None:
        return self.rate(self.output_tokens)


@dataclass(frozen=True)
class LevelFigures(LevelRates):
    """One provider and model at one load level: counts, wall time, and the percentiles of TTFT and latency."""

    requests: int
    successes: int
    wall_s: float
    output_tokens: int | None  # of the successful requests; None where one of them did not report its count
    ttft_ms: dict[int, float | None]
    latency_ms: dict[int, float | None]


LevelRow = tuple[Hashable, Measurement, datetime]  # (the run it belongs to, what was measured, when it was stored)


def request_end(m: Measurement, stored_at: datetime) -> datetime:
    """When a request ended: a success's start plus its latency; a failure's when it was stored. A failure's latency,
    where it has one, is when its last output came, not when it failed: a stream that stopped after its first token
    and timed out at 3 s has a latency of 45 ms, and ending it there made two waves of 3 s read as one."""
    if not m.success or m.latency_ms is None:
        return stored_at
    return m.started_at + timedelta(milliseconds=m.latency_ms)


def wall_seconds(rows: Iterable[LevelRow]) -> float:
    """Each run's span from its first request's start to its last one's end, added over the runs."""
    spans: dict[Hashable, tuple[datetime, datetime]] = {}
    for run, m, stored_at in rows:
        end = request_end(m, stored_at)
        first, last = spans.get(run, (m.started_at, end))
        spans[run] = (min(first, m.started_at), max(last, end))
    return sum((last - first).total_seconds() for first, last in spans.values())


def level_figures(rows: Sequence[LevelRow], qs: Sequence[int]) -> LevelFigures:
    """The figures of one level's rows: what the console prints when the level ends and `report --by concurrency`
    prints from the stored rows."""
    ok = [m for _, m, _ in rows if m.success]
    tokens = [m.output_tokens for m in ok]
    return LevelFigures(
        requests=len(rows),
        successes=len(ok),
        wall_s=wall_seconds(rows),
        output_tokens=None if None in tokens else sum(t for t in tokens if t is not None),
        ttft_ms=quantiles((m.ttft_ms for m in ok if m.ttft_ms is not None), qs),
        latency_ms=quantiles((m.latency_ms for m in ok if m.latency_ms is not None), qs),
    )
