"""The summary of one provider and model: percentiles (figures.py's), success, cost; fastest and cheapest marked."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Callable, Iterable, Sequence

from ..figures import quantiles
from ..measurement import Measurement
from ..slo import Attainment
from ..storage import GroupValues
from .groups import GroupKey, group_order


PERCENTILES = (50, 90, 95, 99)


def rolling_median(points: Sequence[tuple[float, float]], window_s: float) -> list[tuple[float, float]]:
    """For each (time in s, value), oldest first: the median of the values in the window [time - window_s, time].

    What a leaderboard's "median over the past 72 hours" shows at each moment. One pass, the window's values kept
    sorted: fast on a year of rows.
    """
    window: list[float] = []
    rolled = []
    oldest = 0
    for when, value in points:
        insort(window, value)
        while points[oldest][0] < when - window_s:
            del window[bisect_left(window, points[oldest][1])]
            oldest += 1
        middle = len(window) // 2
        rolled.append((when, window[middle] if len(window) % 2 else (window[middle - 1] + window[middle]) / 2))
    return rolled


@dataclass(frozen=True)
class AgentFigures:
    """Per prompt: how the tools and schemas of agent-shaped prompts went, and a conversation's time end to end."""

    tool_judged: int  # the entry's first requests judged against its expect_tool (tool_ok set)
    tool_correct: int
    tool_args_ms: dict[int, float | None]
    schema_judged: int  # requests with a schema (json_valid set)
    schema_valid: int
    conversations: int  # sessions whose every request has a latency
    conversation_ms_p50: float | None  # a session end to end: its first request's start to its last one's end

    @property
    def tool_correct_rate(self) -> float | None:
        return self.tool_correct / self.tool_judged if self.tool_judged else None

    @property
    def schema_valid_rate(self) -> float | None:
        return self.schema_valid / self.schema_judged if self.schema_judged else None


AGENT_PERCENTILES = (50, 90)


def agent_figures(measurements: Iterable[Measurement]) -> AgentFigures:
    """The AgentFigures of one prompt's requests to one provider and model."""
    tool_judged = tool_correct = schema_judged = schema_valid = 0
    args_ms: list[float] = []
    sessions: dict[str, list[tuple[float, float] | None]] = {}  # each request's (start, end), epoch seconds
    for m in measurements:
        if m.tool_ok is not None:
            tool_judged += 1
            tool_correct += m.tool_ok
        if m.tool_args_ms is not None:
            args_ms.append(m.tool_args_ms)
        if m.json_valid is not None:
            schema_judged += 1
            schema_valid += m.json_valid
        if m.session_id is not None:
            start = m.started_at.timestamp() if m.started_at is not None else None
            span = None if start is None or m.latency_ms is None else (start, start + m.latency_ms / 1000)
            sessions.setdefault(m.session_id, []).append(span)
    # End to end: the requests, the think time between them and the tool's own time between them (the wall clock of
    # the rows' starts; a session with a request that has no latency is left out)
    whole = [(max(end for _, end in spans) - min(start for start, _ in spans)) * 1000  # type: ignore[misc]
             for spans in sessions.values() if None not in spans]
    return AgentFigures(tool_judged, tool_correct, quantiles(args_ms, AGENT_PERCENTILES), schema_judged,
                        schema_valid, len(whole), quantiles(whole, (50,))[50])


@dataclass(frozen=True)
class Summary:
    """One provider and model over the selected results (of one group with --by); times in ms, costs in USD."""

    provider: str
    model: str
    requests: int
    successes: int
    ttft_ms: dict[int, float | None]
    latency_ms: dict[int, float | None]
    tokens_per_second_p50: float | None
    cost_mean_usd: Decimal | None
    cost_total_usd: Decimal | None
    cost_per_1k_output_tokens_usd: Decimal | None
    top_errors: tuple[tuple[str, int], ...]
    upstream_providers: tuple[tuple[str, int], ...] = ()  # OpenRouter: who served the requests, most first
    slo: Attainment | None = None  # set when benchmark.toml has an [slo] with a per-request target for it
    fastest: bool = False
    cheapest: bool = False
    group: tuple[GroupKey, object] | None = None  # with --by: the key and this group's value (None: not recorded)
    answers_judged: int = 0  # requests whose prompt had an `expect`, and so an answer_ok
    answers_correct: int = 0
    agent: AgentFigures | None = None  # with --by prompt: tool choice, tool arguments, schemas, conversations

    @property
    def success_rate(self) -> float:
        return self.successes / self.requests if self.requests else 0.0

    @property
    def cost_per_1m_output_tokens_usd(self) -> Decimal | None:
        """What a leaderboard shows: the cost of a million output tokens."""
        per_1k = self.cost_per_1k_output_tokens_usd
        return None if per_1k is None else per_1k * 1000

    @property
    def correct_rate(self) -> float | None:
        """The share of judged answers that met their prompt's `expect`; None where nothing was judged."""
        return self.answers_correct / self.answers_judged if self.answers_judged else None


def _percentiles(values: list[float]) -> dict[int, float | None]:
    """Every PERCENTILES of the values."""
    return quantiles(values, PERCENTILES)


def _most_common(names: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """Counts, most first, ties by name: the same however the database ordered them."""
    return tuple(sorted(Counter(names).items(), key=lambda item: (-item[1], item[0])))


def summary_of(values: GroupValues, group: tuple[GroupKey, object] | None) -> Summary:
    """The Summary of one provider and model from the values gathered for it (in one group with --by)."""
    priced = sum(values.costs.values())
    total = sum((cost * count for (cost, _), count in values.costs.items()), Decimal(0)) if priced else None
    with_output = [(cost * count, tokens * count) for (cost, tokens), count in values.costs.items() if tokens]
    output_tokens = sum(tokens for _, tokens in with_output)
    per_1k = sum((cost for cost, _ in with_output), Decimal(0)) / output_tokens * 1000 if output_tokens else None
    return Summary(
        provider=values.provider,
        model=values.model,
        requests=values.requests,
        successes=values.successes,
        ttft_ms=_percentiles(values.ttft_ms),
        latency_ms=_percentiles(values.latency_ms),
        tokens_per_second_p50=quantiles(values.tokens_per_second, (50,))[50],
        cost_mean_usd=total / priced if priced else None,
        cost_total_usd=total,
        cost_per_1k_output_tokens_usd=per_1k,
        top_errors=_most_common(values.error_types)[:3],
        upstream_providers=_most_common(values.upstream_providers),
        group=group,
        answers_judged=values.answers_judged,
        answers_correct=values.answers_correct,
    )


def arrange(values: Sequence[GroupValues], key: GroupKey) -> list[Summary]:
    """Summaries in the key's group order, each group sorted and marked."""
    groups: dict[object, list[GroupValues]] = {}
    for value in values:
        groups.setdefault(value.group, []).append(value)
    summaries = []
    for group in sorted(groups, key=group_order):
        summaries += _marked([summary_of(v, (key, group) if key.value else None) for v in groups[group]])
    return summaries


def _marked(summaries: list[Summary]) -> list[Summary]:
    """One group's summaries, sorted by median TTFT (undefined last), fastest and cheapest marked."""
    def best(key: Callable[[Summary], object]) -> Summary | None:
        candidates = [s for s in summaries if key(s) is not None]
        return min(candidates, key=key) if len(candidates) > 1 else None  # type: ignore[arg-type, return-value]

    fastest = best(lambda s: (s.latency_ms[50], s.provider, s.model) if s.latency_ms[50] is not None else None)
    cheapest = best(lambda s: (s.cost_mean_usd, s.provider, s.model) if s.cost_mean_usd is not None else None)
    marked = [replace(s, fastest=s is fastest, cheapest=s is cheapest) for s in summaries]
    return sorted(marked, key=lambda s: (s.ttft_ms[50] is None, s.ttft_ms[50] or 0.0, s.provider, s.model))
