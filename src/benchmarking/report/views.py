"""The summaries per group of `--by`, from the rows or gathered by the database, with their SLO attainment."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Sequence

from ..slo import SloConfig, attainment_by_model
from ..storage import ResultFilters, SelectionSpan, Storage
from ..storage.report_read import gather_group_values
from .groups import GROUP_KEYS, GroupKey
from .selection import Row, Selection
from .statistics import Summary, agent_figures, arrange


def _gathered(row: Row, key: GroupKey) -> tuple:
    """What gather_group_values takes of a row: the row path's counterpart of SQLite's read over the index."""
    m = row.result.measurement
    return (key.value(row) if key.value else None, m.provider, m.model, m.success, m.ttft_ms, m.latency_ms,
            m.tokens_per_second, m.cost_usd, m.output_tokens, m.error_type, m.upstream_provider, m.answer_ok,
            row.result.run_id, row.result.created_at)


def summarise(rows: Iterable[Row], by: str = "provider") -> list[Summary]:
    """One Summary per (provider, model), within each group of `by`; fastest and cheapest marked within each group.

    Groups come in the key's order; within one, sorted by median TTFT (undefined last). Fastest: the lowest median
    latency (the whole answer). Cheapest: the lowest mean cost per request.
    """
    key = GROUP_KEYS[by]
    return arrange(gather_group_values(_gathered(row, key) for row in rows)[0], key)


def summarise_stored(
    storage: Storage, selection: Selection, by: str = "provider"
) -> tuple[list[Summary], SelectionSpan | None] | None:
    """The summaries of a selection and its span (None: nothing matches), with the database gathering each group's
    values: what `report` prints, fast over a long history. None where the backend cannot gather (Supabase): then
    select() and summarise() read the rows."""
    key = GROUP_KEYS[by]
    filters = ResultFilters(since=selection.since, until=selection.until, providers=selection.providers,
                            models=selection.models, run_ids=selection.run_ids, newest_run=selection.last,
                            include_simulated=selection.include_simulated)
    gathered = storage.read_group_values(filters, key.sql if key.value else None)
    if gathered is None:
        return None
    values, span = gathered
    return arrange(values, key), span


def with_slo(summaries: Sequence[Summary], rows: Sequence[Row], slo: SloConfig, by: str = "provider") -> list[Summary]:
    """The summaries with their SLO attainment and goodput, each over the rows of its group of `by`.

    Goodput is per hour of the group's wall time; an hour of day recurs across days, so by hour there is none.
    """
    key = GROUP_KEYS[by]
    grouped: dict[object, list[Row]] = {}
    for row in rows:
        grouped.setdefault(key.value(row) if key.value else None, []).append(row)
    figures = {group: attainment_by_model(group_rows, slo) for group, group_rows in grouped.items()}
    if by == "hour":
        figures = {group: {pair: replace(a, wall_hours=None) for pair, a in by_model.items()}
                   for group, by_model in figures.items()}
    return [replace(s, slo=figures.get(s.group[1] if s.group else None, {}).get((s.provider, s.model)))
            for s in summaries]


def with_agent(summaries: Sequence[Summary], rows: Sequence[Row], by: str = "prompt") -> list[Summary]:
    """The summaries with their tool-choice accuracy, tool-argument times, schema-valid rate and conversation time,
    each over the rows of its group of `by` and provider/model."""
    key = GROUP_KEYS[by]
    grouped: dict[tuple[object, str, str], list] = {}
    for row in rows:
        m = row.result.measurement
        grouped.setdefault((key.value(row) if key.value else None, m.provider, m.model), []).append(m)
    return [replace(s, agent=agent_figures(grouped.get((s.group[1] if s.group else None, s.provider, s.model), ())))
            for s in summaries]
