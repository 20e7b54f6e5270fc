"""The ways to split a report (`--by NAME`): provider, model, hour, region, host, upstream, tier, prompt, api."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .selection import Row


@dataclass(frozen=True)
class GroupKey:
    """One way to split a report (`--by NAME`): the figures per group, and per provider and model within it.

    `value` reads the group from a row (None where the row does not record it: one group, shown as NO_VALUE);
    `label` shows a value in the table; `column` is False where the table already shows the key (model).
    """

    name: str
    header: str
    value: Callable[["Row"], object] | None  # None: no grouping beyond provider and model
    sql: str = ""  # the same value in SQL over benchmark_results b joined to runs r; {hour}: the hour of day, UTC
    label: Callable[[object], str] = str
    column: bool = True


NO_VALUE = "(none)"
DEFAULT_API = "chat_completions"
GROUP_KEYS: dict[str, GroupKey] = {key.name: key for key in (
    GroupKey("provider", "", None),
    GroupKey("model", "model", lambda row: row.result.measurement.model, "b.model", column=False),
    GroupKey("hour", "hour UTC", lambda row: row.result.created_at.hour, "{hour}", label=lambda hour: f"{hour:02d}:00"),
    GroupKey("region", "region", lambda row: row.run.info.region, "r.region"),
    GroupKey("host", "host", lambda row: row.run.info.host, "r.host"),
    GroupKey("upstream", "served by", lambda row: row.result.measurement.upstream_provider, "b.upstream_provider"),
    GroupKey("tier", "input tier", lambda row: row.result.measurement.input_tier, "b.input_tier",
             label=lambda tier: f"{tier:,}"),
    GroupKey("prompt", "prompt", lambda row: row.result.measurement.prompt_id, "b.prompt_id"),
    # A provider's native API beside its OpenAI-compatible endpoint; rows stored before the column read as the one
    # API there was then.
    GroupKey("api", "api", lambda row: row.result.measurement.api or DEFAULT_API,
             f"coalesce(b.api, '{DEFAULT_API}')"),
)}
# Keys whose report is a table of its own (the load report's `concurrency`) are dispatched in cli/report.py.


def group_label(value: object, key: GroupKey) -> str:
    return NO_VALUE if value is None else key.label(value)


def group_order(value: object) -> tuple[bool, object]:
    """Groups in the key's natural order (hours and tiers as numbers), the rows without the key last."""
    return (value is None, value if value is not None else 0)
