"""The site's compare page: the newest run against the one before, with the medians, bootstrap intervals and
verdicts `report --compare A B --format json` gives.

Only runs: a bootstrap over a day or a week of results (2,000 resamples a metric, provider and model) took most of a
build at 100,000 stored results, and the site is rebuilt after every run; `report --compare 48h..24h 24h..` gives
those on demand."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
import json
from typing import Any, Sequence

from ..redaction import scrub
from ..report.compare import COMPARED, compare, comparison_json
from ..report.formats import title_for
from ..report.selection import Row, Selection

def _side(rows: Sequence[Row], selection: Selection) -> tuple[Sequence[Row], str]:
    return rows, title_for(rows, selection) if rows else f"no results match {selection.describe()}"


def comparisons(rows: Sequence[Row], selection: Selection) -> list[dict[str, Any]]:
    """Each comparison as `report --compare --format json` gives it, with its name; rows oldest first."""
    pairs = []
    runs: dict[object, list[Row]] = {}
    for row in rows:
        runs.setdefault(row.run.info.id, []).append(row)
    newest = sorted(runs, key=lambda run_id: (runs[run_id][0].run.info.started_at, str(run_id)))[-2:]  # ties: by id
    if len(newest) == 2:
        sides = [_side(runs[run_id], replace(selection, run_ids=frozenset({run_id}))) for run_id in newest]
        pairs.append(("the newest run against the one before", sides))
    found = []
    for name, ((before, title_a), (after, title_b)) in pairs:
        changes = compare(before, after) if before and after else []
        found.append({"name": name, **json.loads(comparison_json(changes, title_a, title_b))})
    return found


# The compare page's runs hold at most this many results, newest runs first: 30 days of 15-minute runs of six
# providers (17,280) is 1.5 MB of data.js; runs every minute would be fifteen times that.
SAMPLED_RESULTS = 20_000
_SAMPLED: dict[tuple[object, int], dict[str, Any]] = {}  # the runs of the last build in this process, by (id, results)
GETTERS = tuple((index, get) for index, (_, _, get) in enumerate(COMPARED, 1))  # what compare() resamples


def run_samples(rows: Sequence[Row], since: datetime) -> list[dict[str, Any]]:
    """Per run started at or after `since` (its results all among the rows), newest first, SAMPLED_RESULTS results in
    all: its id, start, number of results and, per (provider, model, input tier, load level), its requests and the
    successful ones' TTFT, latency and cost in the rows' order: what `compare` resamples, so that the compare page's
    script, with the same generator and seed, gives the intervals and verdicts `report --compare A B` gives for any
    two of them."""
    runs: dict[object, list[Row]] = {}
    for row in rows:
        if row.run.info.started_at >= since:
            runs.setdefault(row.run.info.id, []).append(row)
    def started(listed: list[Row]) -> tuple:
        return listed[0].run.info.started_at, str(listed[0].run.info.id)

    samples = []
    shipped = 0
    names: dict[str, str] = {}  # every string on a page is scrubbed; the same few names over thousands of runs
    kept = dict(_SAMPLED)
    _SAMPLED.clear()
    for run_rows in sorted(runs.values(), key=started, reverse=True):
        shipped += len(run_rows)
        if shipped > SAMPLED_RESULTS:
            break
        # A run's results never change, and a run only gains results: as many as an earlier build saw, the same ones
        known = (run_rows[0].run.info.id, len(run_rows))
        if known in kept:
            samples.append(_SAMPLED.setdefault(known, kept[known]))
            continue
        groups: dict[tuple, list] = {}
        for row in run_rows:
            m = row.result.measurement
            key = (m.provider, m.model, m.input_tier, m.concurrency)
            group = groups.get(key) or groups.setdefault(key, [0, [], [], []])
            group[0] += 1
            if m.success:
                for index, get in GETTERS:
                    if (value := get(m)) is not None:
                        group[index].append(value)
        info = run_rows[0].run.info
        samples.append(_SAMPLED.setdefault(known, {"id": str(info.id), "started": f"{info.started_at:%Y-%m-%d %H:%M:%S}",
                        "results": len(run_rows),
                        "groups": [[*(names.setdefault(name, scrub(name)) for name in key[:2]), *key[2:], *values]
                                   for key, values in groups.items()]}))
    return samples
