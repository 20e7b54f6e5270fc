"""`report --compare A B`: the change in median TTFT, latency and cost, with bootstrap intervals and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import random
from statistics import median
from typing import Sequence

from ..figures import percentile
from .groups import GROUP_KEYS, group_label, group_order
from .selection import Row


BOOTSTRAP_RESAMPLES = 2000
MIN_RELATIVE_CHANGE = 0.05


def bootstrap_interval(
    before: Sequence[float], after: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """95 % bootstrap interval of median(after) - median(before); None with fewer than 2 samples on a side."""
    if len(before) < 2 or len(after) < 2:
        return None
    rng = random.Random(seed)  # a fixed seed: the same rows always give the same verdict
    differences = [
        median(rng.choices(after, k=len(after))) - median(rng.choices(before, k=len(before)))
        for _ in range(resamples)
    ]
    low, high = percentile(differences, 2.5), percentile(differences, 97.5)
    assert low is not None and high is not None
    return low, high


@dataclass(frozen=True)
class Change:
    """One metric of one provider and model, from selection A to B."""

    metric: str
    unit: str
    before: float | None
    after: float | None
    interval: tuple[float, float] | None

    @property
    def difference(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before

    @property
    def verdict(self) -> str:
        """'up' or 'down' beyond the noise, 'same' within it, '?' when undefined.

        Beyond the noise: the interval excludes 0 and the median moved by at least MIN_RELATIVE_CHANGE, so that a
        0.2 ms wobble on a steady provider is not called a slowdown.
        """
        if self.interval is None or self.before is None or self.after is None:
            return "?"
        low, high = self.interval
        large = abs(self.after - self.before) >= MIN_RELATIVE_CHANGE * abs(self.before)
        if low > 0 and large:
            return "up"
        if high < 0 and large:
            return "down"
        return "same"


@dataclass(frozen=True)
class Comparison:
    provider: str
    model: str
    requests: tuple[int, int]
    changes: tuple[Change, ...] = field(default=())
    within: str = ""  # the group compared within (--by, and the input tier where rows have one): "input tier 1,000"

COMPARED = (
    ("TTFT", "ms", lambda m: m.ttft_ms),
    ("latency", "ms", lambda m: m.latency_ms),
    ("cost", "$", lambda m: float(m.cost_usd) if m.cost_usd is not None else None),
)


def compare(before: Sequence[Row], after: Sequence[Row], by: str = "provider") -> list[Comparison]:
    """Per provider and model in both selections: the change in median TTFT, latency and cost, with intervals.

    Like is compared with like: within each group of `by`, within each input tier where the rows have tiers
    (a 10,000-token prompt's TTFT is no baseline for a 100-token one's), and within each load level where rows come
    from load runs (a request that queued behind seven others is no baseline for one sent alone).
    """
    key = GROUP_KEYS[by]
    rows = (*before, *after)
    tiers = by != "tier" and any(row.result.measurement.input_tier is not None for row in rows)
    levels = any(row.result.measurement.concurrency is not None for row in rows)

    def by_group(rows: Sequence[Row]) -> dict[tuple, list]:
        groups: dict[tuple, list] = {}
        for row in rows:
            m = row.result.measurement
            group = (key.value(row) if key.value else None, m.input_tier if tiers else None,
                     m.concurrency if levels else None, m.provider, m.model)
            groups.setdefault(group, []).append(m)
        return groups

    def within(group: object, tier: object, level: object) -> str:
        parts = [f"{key.header} {group_label(group, key)}"] if key.value and key.column else []
        parts += [f"input tier {group_label(tier, GROUP_KEYS['tier'])}"] if tiers else []
        parts += [f"in flight {level}" if level is not None else "one at a time"] if levels else []
        return ", ".join(parts)

    a, b = by_group(before), by_group(after)
    comparisons = []
    for group in sorted(set(a) & set(b), key=lambda parts: tuple(group_order(part) for part in parts)):
        changes = []
        for metric, unit, get in COMPARED:
            xs = [v for m in a[group] if m.success and (v := get(m)) is not None]
            ys = [v for m in b[group] if m.success and (v := get(m)) is not None]
            changes.append(Change(metric, unit, percentile(xs, 50), percentile(ys, 50), bootstrap_interval(xs, ys)))
        comparisons.append(Comparison(group[3], group[4], (len(a[group]), len(b[group])), tuple(changes),
                                      within(*group[:3])))
    return comparisons


def comparison_json(comparisons: Sequence[Comparison], title_a: str, title_b: str) -> str:
    """`--compare --format json`: the same changes as the text, each with its verdict named as in the text."""
    words = {"up": "slower", "down": "faster", "same": "within noise", "?": None}
    return json.dumps({
        "a": title_a,
        "b": title_b,
        "min_relative_change": MIN_RELATIVE_CHANGE,
        "comparisons": [
            {
                "provider": c.provider, "model": c.model, "within": c.within or None,
                "requests_a": c.requests[0], "requests_b": c.requests[1],
                "changes": [
                    {
                        "metric": change.metric, "unit": "USD" if change.unit == "$" else change.unit,
                        "median_a": change.before, "median_b": change.after, "difference": change.difference,
                        "interval": list(change.interval) if change.interval else None,
                        "verdict": ({**words, "up": "dearer", "down": "cheaper"} if change.metric == "cost"
                                    else words)[change.verdict],
                    }
                    for change in c.changes
                ],
            }
            for c in comparisons
        ],
    }, indent=2)


def format_comparison(comparisons: Sequence[Comparison], title_a: str, title_b: str) -> str:
    words = {"TTFT": ("SLOWER", "faster"), "latency": ("SLOWER", "faster"), "cost": ("DEARER", "cheaper")}
    lines = [f"A: {title_a}", f"B: {title_b}",
             "median A -> B (difference, 95 % bootstrap interval of it); marked when the interval excludes 0 "
             f"and the median moved by {MIN_RELATIVE_CHANGE:.0%} or more"]
    for c in comparisons:
        within = f", {c.within}" if c.within else ""
        lines.append(f"{c.provider} / {c.model}{within} ({c.requests[0]} -> {c.requests[1]} requests)")
        for change in c.changes:
            fmt = ".6f" if change.unit == "$" else ".1f"
            if change.before is None or change.after is None:
                lines.append(f"   {change.metric}: - (fewer than 2 samples on a side)")
                continue
            interval = (
                f", interval {change.interval[0]:+{fmt}}..{change.interval[1]:+{fmt}}" if change.interval else ""
            )
            verdict = {
                "up": words[change.metric][0], "down": words[change.metric][1], "same": "within noise", "?": "",
            }[change.verdict]
            lines.append(
                f"   {change.metric}: {change.before:{fmt}} -> {change.after:{fmt}} {change.unit} "
                f"({change.difference:+{fmt}}{interval}) {verdict}".rstrip()
            )
    if not comparisons:
        lines.append("no provider and model appears in both A and B "
                     "(in the same group, with --by, tiers or load levels)")
    return "\n".join(lines)
