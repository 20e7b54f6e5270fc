"""Which results a report covers: the time, run and window flags read, and the stored rows they select."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
import re
from typing import Sequence
from uuid import UUID

from ..durations import parse_window
from ..errors import ConfigError
from ..measurement import utc_now
from ..storage import ResultFilters, SelectionSpan, Storage, StoredResult, StoredRun


_AGO = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_AGO_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, flag: str, now: datetime | None = None) -> datetime:
    """'4h', '30m', '7d', '2w' ago, or an ISO date/time (UTC when no zone is given)."""
    now = now or utc_now()
    match = _AGO.match(text.strip())
    try:
        if match:
            return now - timedelta(**{_AGO_UNITS[match.group(2)]: float(match.group(1))})
        moment = datetime.fromisoformat(text.strip())
        # In UTC at once: a time near year 1 or 9999 in another zone overflows here, not later in a comparison.
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise ConfigError(f"{flag} takes a time like 4h, 7d or 2026-11-01 (UTC), not {text!r}") from None
    except OverflowError:
        raise ConfigError(f"{flag} {text} is out of the calendar's range (years 1 to 9999): give a later or shorter "
                          "time, like 4h, 7d or 2026-11-01") from None


def ends_after_it_starts(since: datetime | None, until: datetime | None, now: datetime | None = None) -> bool:
    """Whether the span from `since` to `until` (None: now) can hold a result: a reversed one selects nothing."""
    return since is None or since < (until or now or utc_now())


def parse_duration(text: str, flag: str) -> timedelta:
    """A window's length: '72h', '30m', '7d', '2w', '90s', '1h30m', as every window takes it (durations.py)."""
    return parse_window(text, flag)


def parse_run_id(text: str, flag: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ConfigError(f"{flag} takes a run id (a UUID, as printed by `Run started:`), not {text!r}") from None


@dataclass(frozen=True)
class Selection:
    """Which results a report covers."""

    run_ids: frozenset[UUID] | None = None
    last: bool = False
    since: datetime | None = None
    until: datetime | None = None
    providers: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    include_simulated: bool = False
    window: timedelta | None = None  # --window: since and until are the window ending now (or at --until)

    def describe(self) -> str:
        parts = []
        if self.run_ids:
            parts.append("run " + ", ".join(sorted(str(r) for r in self.run_ids)))
        if self.last:
            parts.append("the newest run")
        if self.window and self.until:
            parts.append(f"the {window_text(self.window)} window to {self.until:%Y-%m-%d %H:%M} UTC")
        else:
            if self.since:
                parts.append(f"since {self.since:%Y-%m-%d %H:%M} UTC")
            if self.until:
                parts.append(f"until {self.until:%Y-%m-%d %H:%M} UTC")
        if self.providers:
            parts.append("provider " + ", ".join(sorted(self.providers)))
        if self.models:
            parts.append("model " + ", ".join(sorted(self.models)))
        parts.append("live and simulated runs" if self.include_simulated else "live runs only")
        return "; ".join(parts)


def window_text(window: timedelta) -> str:
    """72 h, 30 min: a window's length as a title shows it."""
    hours = window.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{window.total_seconds() / 60:g} min"


def window_selection(selection: Selection, window: timedelta, now: datetime | None = None) -> Selection:
    """The selection narrowed to the window ending at its --until, or now: the figures a user sees "over the past
    72 hours" on a leaderboard."""
    if selection.since is not None:
        raise ConfigError("--window and --since both set where the report starts: give one of them")
    end = selection.until or now or utc_now()
    try:
        since = end - window
    except OverflowError:
        raise ConfigError(f"--window reaches back before year 1 from {end.date().isoformat()}: give a shorter "
                          "window or a later --until") from None
    return replace(selection, since=since, until=end, window=window)


@dataclass(frozen=True)
class Row:
    """One stored result with the run it belongs to."""

    result: StoredResult
    run: StoredRun


NARROW_RUNS = 5000  # a selection bounded in time whose results come from at most this many runs reads only those


def _select_in_time(storage: Storage, selection: Selection) -> list[Row]:
    """A selection bounded in time (--since, --window, the site's windows): its results first, then only their runs,
    where the backend reads runs by id: a day of results no longer reads a year of runs (250,000 at 1,000,000
    results: most of the time of a site's build)."""
    results = storage.read_report_results(ResultFilters(since=selection.since, until=selection.until,
                                                        providers=selection.providers, models=selection.models))
    return rows_of(storage, selection, results)


def rows_of(storage: Storage, selection: Selection, results: Sequence[StoredResult]) -> list[Row]:
    """The results (in the selection's time, providers and models) with their runs, read now by id; those of
    simulated runs left out unless chosen; oldest first."""
    run_ids = {result.run_id for result in results}
    try:
        runs = storage.read_runs_by_id(run_ids) if len(run_ids) <= NARROW_RUNS else storage.read_report_runs()
    except NotImplementedError:
        runs = storage.read_report_runs()
    eligible = {run.info.id: run for run in runs if selection.include_simulated or run.info.mode != "simulated"}
    rows = [Row(result, eligible[result.run_id]) for result in results if result.run_id in eligible]
    rows.sort(key=lambda row: row.result.created_at)
    return rows


def select(storage: Storage, selection: Selection, with_text: bool = False) -> list[Row]:
    """The stored results the selection covers, oldest first.

    A report reads only the columns it needs (REPORT_COLUMNS), with the database filtering by run, time, provider
    and model; an export (with_text) reads every column, answer texts too.
    """
    if not with_text and selection.since is not None and selection.run_ids is None and not selection.last:
        return _select_in_time(storage, selection)
    runs = storage.read_runs() if with_text else storage.read_report_runs()
    eligible = {run.info.id: run for run in runs if selection.include_simulated or run.info.mode != "simulated"}
    wanted = set(eligible)
    if selection.run_ids is not None:
        wanted &= set(selection.run_ids)
    if selection.last and wanted:
        wanted = {max(wanted, key=lambda run_id: eligible[run_id].info.started_at)}
    if not wanted:
        return []
    filters = ResultFilters(
        run_id=next(iter(wanted)) if len(wanted) == 1 else None, since=selection.since, until=selection.until,
        providers=selection.providers, models=selection.models,
    )
    if with_text:
        results = [r for r in storage.read_results(filters.run_id, filters.since) if filters.admits(r)]
    else:
        results = storage.read_report_results(filters)
    rows = [Row(result, eligible[result.run_id]) for result in results if result.run_id in wanted]
    rows.sort(key=lambda row: row.result.created_at)
    return rows


def span_of(rows: Sequence[Row]) -> SelectionSpan:
    """How many results and runs the rows (oldest first) hold, and from when to when."""
    return SelectionSpan(len(rows), len({row.run.info.id for row in rows}), rows[0].result.created_at,
                         rows[-1].result.created_at)
