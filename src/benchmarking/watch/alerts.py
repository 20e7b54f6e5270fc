"""Alerts over the stored results: the rules (rules.py) judged over the last window (default 1 h) of live runs, their
state in the `alerts` table, and the notifications they send.

A rule that cannot be judged (no data in the window) leaves its alert as it is. An alert is a row from firing to
resolved; several machines share the table, and the database decides who opens, resolves and announces each one
(the unique partial index on firing alerts, and updates that hold only if the row is still as it was read).
A notification goes out when an alert starts firing and when it resolves; one that cannot be sent stays pending.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable, Sequence
from uuid import UUID, uuid4

from ..measurement import utc_now
from ..report.selection import Row
from ..settings.model import AlertRules, Watching
from ..storage import Storage, StoredAlert
from .rules import Pair, Verdict, judge

# Resolved alerts shown by `watch`, and how long a resolved alert's pending notification is still worth sending.
RECENT = timedelta(hours=24)
# A window ends this long after the evaluation: a result stamped by a machine whose clock is a little ahead still
# counts. Bounding the window on both sides also lets PostgreSQL use the created_at index before it has statistics
# (with only a lower bound it guesses a third of the table and scans all of it: 0.5 s at 1,000,000 rows).
CLOCK_SLACK = timedelta(seconds=5)
# In an alert's details: per message (firing, resolved), the fingerprints of the notify URLs that took it, so that a
# message owed to one URL is not sent again to the others.
DELIVERED = "delivered_to"


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found and did."""

    opened: tuple[StoredAlert, ...]
    resolved: tuple[StoredAlert, ...]
    firing: tuple[StoredAlert, ...]
    recently_resolved: tuple[StoredAlert, ...]
    notes: tuple[str, ...] = ()


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
