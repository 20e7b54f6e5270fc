"""The site's compare page: the newest run against the one before, the last day and week against the ones before,
each with the medians, bootstrap intervals and verdicts `report --compare A B --format json` gives."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
import json
from typing import Any, Sequence

from ..report.compare import compare, comparison_json
from ..report.formats import title_for
from ..report.selection import Row, Selection

PERIODS = (("the last 24 hours against the 24 hours before", timedelta(days=1)),
           ("the last 7 days against the 7 days before", timedelta(days=7)))


def _side(rows: Sequence[Row], selection: Selection) -> tuple[Sequence[Row], str]:
    return rows, title_for(rows, selection) if rows else f"no results match {selection.describe()}"


def comparisons(rows: Sequence[Row], selection: Selection, end: datetime) -> list[dict[str, Any]]:
    """Each comparison as `report --compare --format json` gives it, with its name; rows oldest first."""
    pairs = []
    runs: dict[object, list[Row]] = {}
    for row in rows:
        runs.setdefault(row.run.info.id, []).append(row)
    newest = sorted(runs, key=lambda run_id: runs[run_id][0].run.info.started_at)[-2:]
    if len(newest) == 2:
        sides = [_side(runs[run_id], replace(selection, run_ids=frozenset({run_id}))) for run_id in newest]
        pairs.append(("the newest run against the one before", sides))
    for name, length in PERIODS:
        sides = []
        for since, until in ((end - 2 * length, end - length), (end - length, end)):
            within = [row for row in rows if since <= row.result.created_at <= until]
            sides.append(_side(within, replace(selection, since=since, until=until)))
        pairs.append((name, sides))
    found = []
    for name, ((before, title_a), (after, title_b)) in pairs:
        changes = compare(before, after) if before and after else []
        found.append({"name": name, **json.loads(comparison_json(changes, title_a, title_b))})
    return found
