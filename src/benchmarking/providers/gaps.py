"""The gaps between one stream's output events (inter-token latency), kept in a fixed logarithmic histogram.

Exact percentiles of a stream need every gap (the p99 of a million gaps is the 10,000th largest), so memory would
grow with the stream. Here each gap falls in a bucket 2 % wide (from 1 us up: bucket k holds [1 us * 1.02^k,
1 us * 1.02^(k+1))), read back as the bucket's geometric middle: every ranked gap is true to within 1 % or 1 us,
whichever is larger, and a stream holds at most one counter per bucket it touched (about 1,300 from 1 us to a day),
however long it runs. Gaps under 1 us (events read from the socket together share one arrival time: their gap is 0)
count as 0. The longest and shortest gaps are kept exactly, and no percentile is read outside them. Percentiles are
figures.py's (linear between closest ranks), each rank read from the histogram.
"""

from __future__ import annotations

import math

FLOOR_S = 1e-6  # gaps below this count as 0
RATIO = 1.02  # each bucket's upper bound over its lower: ranked gaps true to within 1 %
_LOG_RATIO = math.log(RATIO)
_ZERO = -1  # the bucket of gaps under FLOOR_S


class Gaps:
    """The gaps between successive output events' arrival times, in seconds."""

    def __init__(self) -> None:
        self._last: float | None = None
        self._counts: dict[int, int] = {}
        self.count = 0
        self.longest = 0.0
        self.shortest = math.inf

    def arrived(self, at: float | None) -> None:
        """An output event arrived at `at` (perf_counter seconds; None: no time, nothing is counted)."""
        if at is None:
            return
        last, self._last = self._last, at
        if last is None:
            return
        gap = max(at - last, 0.0)
        bucket = _ZERO if gap < FLOOR_S else int(math.log(gap / FLOOR_S) / _LOG_RATIO)
        self._counts[bucket] = self._counts.get(bucket, 0) + 1
        self.count += 1
        self.longest = max(self.longest, gap)
        self.shortest = min(self.shortest, gap)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile of the gaps (linear between closest ranks); None when there is no gap."""
        if not self.count:
            return None
        position = (self.count - 1) * q / 100
        low, high = math.floor(position), math.ceil(position)
        low_value, high_value = self._ranked(low), self._ranked(high)
        return low_value + (high_value - low_value) * (position - low)

    def _ranked(self, rank: int) -> float:
        """The gap of this rank (from 0, shortest first), as its bucket reads, within the exact shortest and longest."""
        seen = 0
        for bucket in sorted(self._counts):
            seen += self._counts[bucket]
            if seen > rank:
                value = 0.0 if bucket == _ZERO else FLOOR_S * RATIO ** (bucket + 0.5)
                return min(max(value, self.shortest), self.longest)
        return self.longest

    def figures(self) -> tuple[float, float, float] | None:
        """(p50, p99, longest) in seconds; None when there is no gap (fewer than two timed output events)."""
        p50, p99 = self.percentile(50), self.percentile(99)
        if p50 is None or p99 is None:
            return None
        return p50, p99, self.longest
