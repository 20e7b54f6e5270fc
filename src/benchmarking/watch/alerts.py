"""Alert rules over the stored results, their state in the `alerts` table, and the notifications they send.

Three rules, judged per provider and model over the last window (default 1 h) of live runs:
- outage: the newest N results (default 3) all failed, or the window's success rate is under the SLO's;
- slo_breach: the SLO's percentile of TTFT or latency in the window is above its target, or its decode speed at the
  other end (the (100 - percentile)th percentile: the slow tail) is under its minimum;
- regression: report/compare.py's bootstrap comparison of the window against the baseline before it (default 7 days)
  marks a change beyond the noise, slower by at least the threshold (default 20 %).
A rule that cannot be judged (no data in the window) leaves its alert as it is. An alert is a row from firing to
resolved; several machines share the table, and the database decides who opens, resolves and announces each one
(the unique partial index on firing alerts, and updates that hold only if the row is still as it was read).
A notification goes out when an alert starts firing and when it resolves; one that cannot be sent stays pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Iterable, Sequence
from uuid import UUID, uuid4

from ..settings.model import AlertRules, Watching
from ..figures import percentile
from ..measurement import utc_now
from ..report.compare import Change, bootstrap_interval
from ..report.selection import Row
from ..slo import SloConfig
from ..storage import Storage, StoredAlert

# (metric, lower is better): what slo_breach and regression judge.
METRICS = (("ttft_ms", True), ("latency_ms", True), ("tokens_per_second", False))
# Resolved alerts shown by `watch`, and how long a resolved alert's pending notification is still worth sending.
RECENT = timedelta(hours=24)
# A window ends this long after the evaluation: a result stamped by a machine whose clock is a little ahead still
# counts. Bounding the window on both sides also lets PostgreSQL use the created_at index before it has statistics
# (with only a lower bound it guesses a third of the table and scans all of it: 0.5 s at 1,000,000 rows).
CLOCK_SLACK = timedelta(seconds=5)
# In an alert's details: per message (firing, resolved), the fingerprints of the notify URLs that took it, so that a
# message owed to one URL is not sent again to the others.
DELIVERED = "delivered_to"
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


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found and did."""

    opened: tuple[StoredAlert, ...]
    resolved: tuple[StoredAlert, ...]
    firing: tuple[StoredAlert, ...]
    recently_resolved: tuple[StoredAlert, ...]
    notes: tuple[str, ...] = ()


# ---- the rules: pure functions of rows ---------------------------------------------------------------------------
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


# ---- reading the windows ---------------------------------------------------------------------------------------
def _rows(storage: Storage, results: list, include_simulated: bool) -> list[Row]:
    """The results with their runs (read by id), of sequential runs only: a load run's requests wait on each other,
    so their times say how the provider copes with load, not how it serves one request, and would make the probe's
    rules fire. Simulated runs are left out unless asked for."""
    runs = {run.info.id: run for run in storage.read_runs_by_id({r.run_id for r in results})} if results else {}
    return [Row(r, runs[r.run_id]) for r in results if r.run_id in runs and runs[r.run_id].info.kind != "load"
            and (include_simulated or runs[r.run_id].info.mode != "simulated")]


# ---- state and notifications -------------------------------------------------------------------------------------
def _window_text(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def _details(verdict: Verdict, window: tuple[datetime, datetime], run_id: UUID | None, rules: AlertRules
             ) -> dict[str, object]:
    details: dict[str, object] = {"summary": verdict.summary, **verdict.figures,
                                  "window": _window_text(*window), "run_id": str(run_id) if run_id else None}
    if verdict.rule == "regression":
        details["baseline"] = _window_text(window[0] - timedelta(seconds=rules.baseline_s), window[0])
    return details


def apply(storage: Storage, verdicts: Sequence[Verdict], alerts: Sequence[StoredAlert], now: datetime,
          details: Callable[[Verdict], dict[str, object]], run_id: UUID | None, host: str
          ) -> tuple[list[StoredAlert], list[StoredAlert]]:
    """Open alerts whose rule fires, touch those still firing, resolve those whose rule no longer fires.

    Returns (opened, resolved) by this call; another machine's evaluation may have done either first, and then this
    one does nothing (the database's conditions decide).
    """
    firing = {(a.rule, a.provider, a.model, a.metric): a for a in alerts if a.state == "firing"}
    opened, resolved = [], []
    for verdict in verdicts:
        alert = firing.get(verdict.key)
        if verdict.firing and alert is not None:
            kept = {DELIVERED: alert.details[DELIVERED]} if DELIVERED in alert.details else {}
            storage.update_alert(alert.id, {"last_seen_at": now, "details": {**details(verdict), **kept}},
                                 {"state": "firing"})
        elif verdict.firing:
            row = {"id": uuid4(), "rule": verdict.rule, "provider": verdict.provider, "model": verdict.model,
                   "metric": verdict.metric, "state": "firing", "started_at": now, "last_seen_at": now,
                   "details": details(verdict), "run_id": run_id, "host": host, "notify_attempts": 0}
            if storage.insert_alert(row):
                opened.append(_stored(row))
        elif alert is not None:
            values = {"state": "resolved", "resolved_at": now, "details": {**alert.details, **details(verdict)}}
            if storage.update_alert(alert.id, values, {"state": "firing"}):
                resolved.append(replace(alert, **values))
    return opened, resolved


def _stored(row: dict[str, object]) -> StoredAlert:
    return StoredAlert(**{k: row.get(k) for k in ("id", "rule", "provider", "model", "metric", "state",
                                                  "started_at", "last_seen_at", "details", "run_id", "host")},
                       resolved_at=None)


def describe(alert: StoredAlert) -> str:
    """One line: what fired, for whom, on what metric, and why."""
    what = alert.rule + (f" {alert.metric}" if alert.metric else "")
    return f"{what} on {alert.provider}/{alert.model}: {alert.details.get('summary', '')}"


def message(alert: StoredAlert) -> tuple[str, str]:
    """(title, body) of an alert's notification: what fired, the figures, the window, the run id; no secret."""
    state = "FIRING" if alert.state == "firing" else "RESOLVED"
    title = f"[benchmark-engine] {state}: {alert.rule}{' ' + alert.metric if alert.metric else ''} " \
            f"{alert.provider}/{alert.model}"
    lines = [describe(alert), f"started {alert.started_at:%Y-%m-%d %H:%M:%S} UTC"]
    if alert.resolved_at:
        lines.append(f"resolved {alert.resolved_at:%Y-%m-%d %H:%M:%S} UTC")
    skip = {"summary", "window", "run_id", "baseline", DELIVERED}
    figures = ", ".join(f"{k}={v}" for k, v in alert.details.items() if k not in skip and v is not None)
    lines += [f"figures: {figures}", f"window: {alert.details.get('window')}"]
    if alert.details.get("baseline"):
        lines.append(f"baseline: {alert.details['baseline']}")
    lines.append(f"run: {alert.details.get('run_id') or 'none (python main.py watch)'}")
    return title, "\n".join(lines)


def notify_pending(storage: Storage, alerts: Sequence[StoredAlert], urls: Sequence[str], now: datetime,
                   say: Callable[[str], None]) -> None:
    """Send each notification still owed (firing, then resolved), once, by whichever machine takes it first.

    Taking it is an update that holds only while it is still owed; one that cannot be sent is given back (pending,
    with its error) for the next evaluation. With no URL set, taking it is all there is to do.
    """
    from ..settings.notify_urls import scheme_of
    from .notify import fingerprint, send

    # A URL that did not take a message is not tried again in this evaluation: a receiver that hangs or trickles
    # costs one bound, not one per alert. What it is owed stays pending for the next evaluation.
    unreachable: set[str] = set()
    for alert in alerts:
        which = "firing" if alert.state == "firing" else "resolved"
        column = f"notified_{which}_at"
        if getattr(alert, column) is not None:
            continue
        if which == "resolved" and alert.resolved_at and alert.resolved_at < now - RECENT:
            continue  # a day late is too late to announce
        values: dict[str, object] = {column: now}
        if which == "resolved" and alert.notified_firing_at is None:
            values["notified_firing_at"] = now  # its firing was never announced: the resolved message says both
        if not storage.update_alert(alert.id, values, {column: None, "state": which}):
            continue  # another machine took it
        if not urls:
            continue
        delivered = alert.details.get(DELIVERED, {})
        owed = [url for url in urls if fingerprint(url) not in delivered.get(which, ())]
        title, body = message(alert)
        try:
            failed = send([url for url in owed if url not in unreachable], title, body, kind=which)
            failed += [url for url in owed if url in unreachable]
            unreachable.update(failed)
        except BaseException:  # Ctrl-C mid-send: given back, or it would stay marked sent and never go out
            storage.update_alert(alert.id, {name: None for name in values}, {})
            raise
        if failed:
            took = [*delivered.get(which, ()), *(fingerprint(url) for url in owed if url not in failed)]
            schemes = ", ".join(scheme_of(url) for url in failed)
            storage.update_alert(alert.id, {**{name: None for name in values},
                                            "notify_attempts": alert.notify_attempts + 1,
                                            "notify_error": f"not delivered to {schemes}",
                                            "details": {**alert.details, DELIVERED: {**delivered, which: took}}}, {})
            say(f"alerts: the {which} notification of {alert.rule} {alert.provider}/{alert.model} could not be "
                f"sent to {schemes}: kept pending, retried at the next evaluation")


def evaluate(storage: Storage, watching: Watching, now: datetime | None = None, run_id: UUID | None = None,
             host: str = "", include_simulated: bool = False, say: Callable[[str], None] = print) -> Evaluation:
    """Judge every rule over the last window, update the alerts table, and send what is owed.

    Reads only what the rules need: the window, the baseline before it (regression), the newest N results of each
    provider and model in the window or with a firing alert (outage), and the alerts.
    """
    storage = getattr(storage, "backend_storage", storage)  # behind the outbox: the database itself
    now = now or utc_now()
    rules = watching.alerts
    start = now - timedelta(seconds=rules.window_s)
    window = _rows(storage, storage.read_results_between(start, now + CLOCK_SLACK), include_simulated)
    baseline = []
    if "regression" in rules.rules:
        results = storage.read_results_between(start - timedelta(seconds=rules.baseline_s), start)
        baseline = _rows(storage, results, include_simulated)
    alerts = storage.read_alerts(now - RECENT)
    pairs = {(r.result.measurement.provider, r.result.measurement.model) for r in window}
    pairs |= {(a.provider, a.model) for a in alerts if a.state == "firing"}
    latest: dict[Pair, list[Row]] = {}
    if "outage" in rules.rules:
        for pair in pairs:
            latest[pair] = _rows(storage, storage.read_latest_results(*pair, rules.consecutive_failures),
                                 include_simulated)
    verdicts = judge(window, baseline, latest, pairs, watching)
    opened, resolved = apply(storage, verdicts, alerts, now, lambda v: _details(v, (start, now), run_id, rules),
                             run_id, host)
    current = storage.read_alerts(now - RECENT)
    urls = [url.reveal() for url in watching.notify_urls]
    notify_pending(storage, current, urls, now, say)
    return Evaluation(
        opened=tuple(opened), resolved=tuple(resolved),
        firing=tuple(a for a in current if a.state == "firing"),
        recently_resolved=tuple(a for a in current if a.state == "resolved" and a.resolved_at
                                and a.resolved_at >= now - RECENT),
    )


def test_message(urls: Sequence[str]) -> list[str]:
    """`watch --test-notify`: one message to every URL; those that did not take it."""
    from .notify import send

    return send(urls, "[benchmark-engine] test notification",
                "A test message from `python main.py watch --test-notify`: alerts will arrive here.", kind="test")


test_message.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test
