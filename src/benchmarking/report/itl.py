"""`report --by itl`: inter-token latency per provider and model, from the rows' per-request figures.

A row stores its own gaps' p50, p99 and longest, not the gaps: the pooled percentiles of every gap (vLLM's) cannot be
rebuilt from them. What is given instead, and named so: the median of the requests' p50s and the p99 of the requests'
p99s, each request weighted by its number of gaps (output_events - 1), read at the lowest value whose cumulative
weight reaches the share. Where requests are alike (one model, one workload) the weighted median of p50s is close to
the pooled median; the p99 of p99s is no pooled p99 (it reads the tail of the requests' tails). Stalls: requests whose
longest gap passed 1 s. Tokens per event: output tokens over output events, over the streamed requests that have both: 1 where
each chunk carries a token, many where a provider sends large chunks (Gemini).
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from typing import Sequence

from .formats import aligned_lines, cell_text, csv_text, markdown_lines, rounded
from .selection import Row, Selection

STALL_MS = 1000.0
NO_ITL = "no streamed request with two output events or more: no inter-token latency"


@dataclass(frozen=True)
class ItlFigures:
    provider: str
    model: str
    requests: int  # successful streamed requests with at least one gap
    gaps: int
    itl_p50_of_request_p50s_ms: float | None
    itl_p99_of_request_p99s_ms: float | None
    longest_stall_ms: float | None
    stalls_over_1s: int
    tokens_per_event: float | None


def weighted_percentile(pairs: Sequence[tuple[float, int]], q: float) -> float | None:
    """The lowest value whose cumulative weight reaches q % of the whole."""
    total = sum(weight for _, weight in pairs)
    if not total:
        return None
    running = 0
    for value, weight in sorted(pairs):
        running += weight
        if running * 100 >= q * total:
            return value
    return None


def itl_figures(rows: Sequence[Row]) -> list[ItlFigures]:
    grouped: dict[tuple[str, str], list] = {}
    for row in rows:
        m = row.result.measurement
        grouped.setdefault((m.provider, m.model), []).append(m)
    figures = []
    for (provider, model), ms in sorted(grouped.items()):
        timed = [m for m in ms if m.success and m.itl_p50_ms is not None and (m.output_events or 0) >= 2]
        per_event = [m for m in ms if m.success and m.stream and m.output_tokens is not None and m.output_events]
        if not timed and not per_event:
            continue
        events = sum(m.output_events for m in per_event)
        figures.append(ItlFigures(
            provider, model, len(timed), sum(m.output_events - 1 for m in timed),
            weighted_percentile([(m.itl_p50_ms, m.output_events - 1) for m in timed], 50),
            weighted_percentile([(m.itl_p99_ms, m.output_events - 1) for m in timed if m.itl_p99_ms is not None], 99),
            max((m.itl_max_ms for m in timed if m.itl_max_ms is not None), default=None),
            sum(1 for m in timed if m.itl_max_ms is not None and m.itl_max_ms > STALL_MS),
            sum(m.output_tokens for m in per_event) / events if events else None))
    return figures


HEADER = ["provider", "model", "streams", "gaps", "ITL ms p50 (of request p50s)", "ITL ms p99 (of request p99s)",
          "longest stall ms", "stalls > 1 s", "tokens/event"]
NOTE = ("ITL: gaps between a stream's output events; p50 is the median of the requests' p50s and p99 the p99 of "
        "their p99s, each weighted by its gaps (the rows keep no single gap: no pooled percentile); a stall is a "
        "request whose longest gap passed 1 s")


def _record(f: ItlFigures) -> dict[str, object]:
    return {"provider": f.provider, "model": f.model, "requests": f.requests, "gaps": f.gaps,
            "itl_p50_of_request_p50s_ms": rounded(f.itl_p50_of_request_p50s_ms),
            "itl_p99_of_request_p99s_ms": rounded(f.itl_p99_of_request_p99s_ms),
            "longest_stall_ms": rounded(f.longest_stall_ms), "stalls_over_1s": f.stalls_over_1s,
            "tokens_per_event": rounded(f.tokens_per_event)}


def render(rows: Sequence[Row], output: str, title: str, selection: Selection) -> str:
    figures = itl_figures(rows)
    records = [_record(f) for f in figures]
    if output == "json":
        return json.dumps({"title": title, "note": NOTE, "itl": records}, indent=2) + "\n"
    if output == "csv":
        return csv_text(records, list(_record(ItlFigures("", "", 0, 0, None, None, None, 0, None))))
    if not figures:
        return NO_ITL + "\n"
    cells = [[cell_text(value) for value in record.values()] for record in records]
    if output == "markdown":
        return "\n".join(markdown_lines(title, HEADER, cells) + ["", NOTE]) + "\n"
    return "\n".join([title, "", *aligned_lines(HEADER, cells, ("model",)), "", NOTE]) + "\n"
