"""The alert rules: pure functions of rows, judged per provider and model over a window of live runs.

- outage: the newest N results (default 3) all failed, or the window's success rate is under the SLO's;
- slo_breach: the SLO's percentile of TTFT or latency in the window is above its target, or its decode speed at the
  other end (the (100 - percentile)th percentile: the slow tail) is under its minimum;
- regression: report/compare.py's bootstrap comparison of the window against the baseline before it (default 7 days)
  marks a change beyond the noise, slower by at least the threshold (default 20 %).
A rule that cannot be judged (no data in the window) gives no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..figures import percentile
from ..report.compare import Change, bootstrap_interval
from ..report.selection import Row
from ..settings.model import AlertRules, Watching
from ..slo import SloConfig

# (metric, lower is better): what slo_breach and regression judge.
METRICS = (("ttft_ms", True), ("latency_ms", True), ("tokens_per_second", False))
Pair = tuple[str, str]
Key = tuple[str, str, str, str | None]  # rule, provider, model, metric


@dataclass(frozen=True)
class Verdict:
    """One rule judged for one provider, model and metric: firing or not, with the figures behind it."""

    rule: str
    provider: str
    model: str
    metric: str | None
    firing: bool
    summary: str
    figures: dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.rule, self.provider, self.model, self.metric)


def _values(rows: Iterable[Row], metric: str) -> list[float]:
    return [v for row in rows if row.result.measurement.success
            and (v := getattr(row.result.measurement, metric)) is not None]


def judge_outage(pair: Pair, window: Sequence[Row], latest: Sequence[Row], slo: SloConfig, rules: AlertRules
                 ) -> Verdict | None:
    """N consecutive failures (newest first), or the window's success rate under the SLO's."""
    if not latest and not window:
        return None
    newest = latest[: rules.consecutive_failures]
    failed_in_a_row = len(newest) == rules.consecutive_failures and not any(r.result.measurement.success
                                                                           for r in newest)
    target = slo.for_model(*pair).success_rate
    rate = sum(r.result.measurement.success for r in window) / len(window) if window else None
    under = target is not None and rate is not None and rate < target
    errors = sorted({r.result.measurement.error_type or "unknown" for r in newest if not r.result.measurement.success})
    if failed_in_a_row:
        summary = f"the last {len(newest)} requests failed ({', '.join(errors)})"
    elif under:
        summary = f"success rate {rate:.1%} in the window, under the SLO's {target:.1%}"
    else:
        summary = "requests succeed"
    figures = {"consecutive_failures": sum(1 for _ in _leading_failures(latest)), "window_requests": len(window),
               "window_success_rate": None if rate is None else round(rate, 4), "success_rate_target": target}
    return Verdict("outage", *pair, None, failed_in_a_row or under, summary, figures)


def _leading_failures(latest: Sequence[Row]) -> Iterable[Row]:
    for row in latest:
        if row.result.measurement.success:
            return
        yield row


def judge_slo(pair: Pair, window: Sequence[Row], slo: SloConfig) -> list[Verdict]:
    """The SLO's percentile of TTFT and latency against their targets, the slow tail of decode speed against its
    minimum; a metric with fewer than 2 successes in the window is not judged."""
    targets = slo.for_model(*pair)
    verdicts = []
    for metric, lower_better in METRICS:
        target = getattr(targets, metric)
        q = targets.percentile if lower_better else 100 - targets.percentile
        observed = percentile(_values(window, metric), q) if target is not None else None
        if observed is None:
            continue
        firing = observed > target if lower_better else observed < target
        word = ("above" if firing else "within") if lower_better else ("under" if firing else "at least")
        summary = f"p{q:g} {metric} {observed:.1f} in the window, {word} the target {target:g}"
        figures = {"percentile": q, "observed": round(observed, 2), "target": target,
                   "samples": len(_values(window, metric))}
        verdicts.append(Verdict("slo_breach", *pair, metric, firing, summary, figures))
    return verdicts


def judge_regression(pair: Pair, window: Sequence[Row], baseline: Sequence[Row], rules: AlertRules
                     ) -> list[Verdict]:
    """Slower than the baseline by at least the threshold, and beyond the noise by report/compare.py's bootstrap.

    The medians are compared first: the bootstrap (the costly part) runs only when they differ by the threshold.
    """
    verdicts = []
    for metric, lower_better in METRICS:
        before, after = _values(baseline, metric), _values(window, metric)
        b, a = percentile(before, 50), percentile(after, 50)
        if b is None or a is None or b == 0:
            continue
        slower_by = (a - b) / b if lower_better else (b - a) / b
        firing = False
        if slower_by >= rules.regression_threshold:
            verdict = Change(metric, "", b, a, bootstrap_interval(before, after)).verdict
            firing = verdict == ("up" if lower_better else "down")
        summary = (f"median {metric} {b:.1f} -> {a:.1f} ({slower_by:+.0%} slower) against the baseline"
                   + ("" if firing else ", within the threshold or the noise"))
        figures = {"baseline_median": round(b, 2), "window_median": round(a, 2), "slower_by": round(slower_by, 4),
                   "threshold": rules.regression_threshold, "samples": [len(before), len(after)]}
        verdicts.append(Verdict("regression", *pair, metric, firing, summary, figures))
    return verdicts


def judge(window: Sequence[Row], baseline: Sequence[Row], latest: dict[Pair, list[Row]], pairs: Iterable[Pair],
          watching: Watching) -> list[Verdict]:
    """Every enabled rule for every pair."""
    rules = watching.alerts
    by_pair, base = _by_pair(window), _by_pair(baseline)
    verdicts: list[Verdict] = []
    for pair in sorted(set(pairs)):
        in_window = by_pair.get(pair, [])
        if "outage" in rules.rules:
            outage = judge_outage(pair, in_window, latest.get(pair, []), watching.slo, rules)
            verdicts += [outage] if outage else []
        if "slo_breach" in rules.rules:
            verdicts += judge_slo(pair, in_window, watching.slo)
        if "regression" in rules.rules:
            verdicts += judge_regression(pair, in_window, base.get(pair, []), rules)
    return verdicts


def _by_pair(rows: Iterable[Row]) -> dict[Pair, list[Row]]:
    groups: dict[Pair, list[Row]] = {}
    for row in rows:
        groups.setdefault((row.result.measurement.provider, row.result.measurement.model), []).append(row)
    return groups
