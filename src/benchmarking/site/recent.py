"""The last 30 days' rows, kept between builds in one process (`run_scheduled.py --site`, `main.py serve`): a
stored result never changes, so a rebuild reads only the results stored since the last (SQLite, by rowid: a result
an outbox replays late, with its older time, is read too), drops those now older than the window, and reads the runs
of what is left again (a run's status and summary are written after its results)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..report.selection import Row, Selection, rows_of, select
from ..storage import ResultFilters, Storage, StoredResult

KEPT_SELECTIONS = 4


@dataclass
class _Kept:
    mark: tuple[int, str, int]
    since: datetime
    results: list[StoredResult]


_KEPT: dict[tuple, _Kept] = {}


def recent_rows(storage: Storage, selection: Selection, keep: bool = False) -> list[Row]:
    """select(storage, selection) for a selection bounded in time, from what earlier builds read and what is new
    (with `keep`: a process that builds again)."""
    reader = getattr(storage, "read_report_results_after", None)
    if not keep or reader is None or selection.since is None or selection.run_ids is not None or selection.last:
        return select(storage, selection)
    key = (type(storage).__name__, getattr(storage, "location", None), selection.providers, selection.models)
    kept = _KEPT.pop(key, None)
    new = ResultFilters(providers=selection.providers, models=selection.models)  # any time: an outbox replays late
    read = reader(new, kept.mark) if kept is not None and kept.since <= selection.since else None
    if read is None:
        kept = None
        read = reader(ResultFilters(since=selection.since, providers=selection.providers, models=selection.models),
                      None)
    results, mark = read
    since, until = selection.since, selection.until
    kept_results = [r for r in (kept.results if kept is not None else []) + results if r.created_at >= since]
    _KEPT[key] = _Kept(mark, since, kept_results)
    while len(_KEPT) > KEPT_SELECTIONS:
        del _KEPT[next(iter(_KEPT))]
    return rows_of(storage, selection, [r for r in kept_results if until is None or r.created_at <= until])
