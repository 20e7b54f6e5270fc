"""The summaries as a table, markdown, csv or json, with their title; the selected rows exported whole."""

from __future__ import annotations

import csv
from dataclasses import replace
from decimal import Decimal
import io
import json
from pathlib import Path
from typing import Iterable, Sequence

from ..csv_cells import safe_records
from ..errors import ConfigError
from ..pricing import format_usd
from ..safe_files import atomic_file
from ..slo import Attainment
from ..storage import GroupValues, SelectionSpan
from ..storage.schema import plain, result_row
from .groups import GROUP_KEYS, group_label
from .selection import Row, Selection, span_of
from .statistics import AGENT_PERCENTILES, PERCENTILES, AgentFigures, Summary, summary_of


def summary_fields(s: Summary) -> dict[str, object]:
    """The fields json and csv carry, units in their names."""
    values: dict[str, object] = {}
    if s.group and s.group[0].column:
        values[s.group[0].name] = s.group[1]
    values |= {
        "provider": s.provider,
        "model": s.model,
        "requests": s.requests,
        "successes": s.successes,
        "success_rate": round(s.success_rate, 4),
    }
    for q in PERCENTILES:
        values[f"ttft_p{q}_ms"] = rounded(s.ttft_ms[q])
    for q in PERCENTILES:
        values[f"latency_p{q}_ms"] = rounded(s.latency_ms[q])
    values["tokens_per_second_p50"] = rounded(s.tokens_per_second_p50)
    values["cost_mean_usd"] = exact_text(s.cost_mean_usd)
    values["cost_total_usd"] = exact_text(s.cost_total_usd)
    values["cost_per_1k_output_tokens_usd"] = exact_text(s.cost_per_1k_output_tokens_usd)
    values["top_errors"] = _counts(s.top_errors)
    values["upstream_providers"] = _counts(s.upstream_providers)
    values["answers_judged"] = s.answers_judged
    values["correct_answer_rate"] = rounded(s.correct_rate, 4)
    if s.agent is not None:
        values |= agent_fields(s.agent)
    if s.slo is not None:
        values["slo_attainment"] = rounded(s.slo.attainment, 4)
        values["goodput_per_hour"] = rounded(s.slo.goodput_per_hour)
    values["fastest"] = s.fastest
    values["cheapest"] = s.cheapest
    return values


def agent_fields(a: AgentFigures) -> dict[str, object]:
    """Per prompt: tool choice, tool-argument times, schemas, conversations (json and csv)."""
    values: dict[str, object] = {"tool_choices_judged": a.tool_judged,
                                 "tool_choice_accuracy": rounded(a.tool_correct_rate, 4)}
    for q in AGENT_PERCENTILES:
        values[f"tool_args_p{q}_ms"] = rounded(a.tool_args_ms[q])
    values |= {"schema_answers": a.schema_judged, "schema_valid_rate": rounded(a.schema_valid_rate, 4),
               "conversations": a.conversations, "conversation_p50_ms": rounded(a.conversation_ms_p50)}
    return values


AGENT_NOTE = ("tool ok %: expect_tool met, over the entry's first answers judged against it; tool args: from the "
              "start until the last tool call's arguments were complete; schema ok %: answers that parsed and followed "
              "the prompt's schema; conversation: a session end to end, from its first request's start to its last "
              "one's end (think time included), the median over sessions whose every request has a latency")
NO_AGENT = AgentFigures(0, 0, {q: None for q in AGENT_PERCENTILES}, 0, 0, 0, None)


def _agent_cells(a: AgentFigures | None) -> list[str]:
    a = a or NO_AGENT
    return [_percent(a.tool_correct_rate), " / ".join(cell_text(a.tool_args_ms[q]) for q in AGENT_PERCENTILES),
            _percent(a.schema_valid_rate), cell_text(a.conversation_ms_p50)]


def _counts(counted: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in counted)


def rounded(value: float | None, digits: int = 2) -> float | None:
    """A figure as json and csv carry it: rounded, None kept."""
    return None if value is None else round(value, digits)


def exact_text(value: Decimal | None) -> str | None:
    """Exact, as a plain decimal string (never 1E-7), trimmed to 12 places."""
    if value is None:
        return None
    return format(value.quantize(Decimal("1e-12")).normalize(), "f")


def usd_text(amount: Decimal | None) -> str:
    """An amount as a table shows it: three significant figures ($0.0000217, $0.339), '-' where unknown; json and
    csv keep the exact value."""
    return "-" if amount is None else format_usd(amount)


def cell_text(value: object) -> str:
    """A figure as a table shows it: '-' where undefined, a float to one decimal."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}"


def _quantiles(values: dict[int, float | None]) -> str:
    return " / ".join(cell_text(values[q]) for q in PERCENTILES)


def _table_rows(summaries: Sequence[Summary]) -> tuple[list[str], list[list[str]]]:
    quantiles = "/".join(f"p{q}" for q in PERCENTILES)
    served_by = any(s.upstream_providers for s in summaries)  # a column only where a router says who served
    judged = any(s.answers_judged for s in summaries)  # and only where prompts had an `expect`
    slo = any(s.slo for s in summaries)  # and only when an [slo] sets per-request targets
    agent = any(s.agent and (s.agent.tool_judged or s.agent.tool_args_ms[50] is not None or s.agent.schema_judged
                             or s.agent.conversations) for s in summaries)  # and where prompts were agent-shaped
    key = summaries[0].group[0] if summaries and summaries[0].group and summaries[0].group[0].column else None
    header = (([key.header] if key else []) + ["provider", "model", "requests", "ok %", f"TTFT ms {quantiles}",
              f"latency ms {quantiles}", "tokens/s", "mean $", "total $", "$ per 1M out", "errors"]
              + (["served by"] if served_by else []) + (["correct %"] if judged else [])
              + (["SLO met %", "goodput/h"] if slo else [])
              + (["tool ok %", "tool args ms p50/p90", "schema ok %", "conversation ms p50"]
                 if agent else []) + [""])
    rows = []
    for s in summaries:
        marks = " ".join(mark for mark, on in (("fastest", s.fastest), ("cheapest", s.cheapest)) if on)
        rows.append(
            ([group_label(s.group[1], key)] if key else [])
            + [s.provider, s.model, str(s.requests), f"{s.success_rate * 100:.0f}",
               _quantiles(s.ttft_ms), _quantiles(s.latency_ms), cell_text(s.tokens_per_second_p50)]
            + [usd_text(v) for v in (s.cost_mean_usd, s.cost_total_usd, s.cost_per_1m_output_tokens_usd)]
            + [_counts(s.top_errors) or "-"] + ([_counts(s.upstream_providers) or "-"] if served_by else [])
            + ([_percent(s.correct_rate)] if judged else []) + (_slo_cells(s.slo) if slo else [])
            + (_agent_cells(s.agent) if agent else []) + [marks]
        )
    return header, rows


def _slo_cells(slo: Attainment | None) -> list[str]:
    if slo is None:
        return ["-", "-"]
    percent = None if slo.attainment is None else slo.attainment * 100
    return [cell_text(percent), cell_text(slo.goodput_per_hour)]


def _one_line(cell: str, line_break: str) -> str:
    """A cell kept on its row: a model, region or host name is whatever the user set, line breaks included."""
    return cell.replace("\r\n", line_break).replace("\n", line_break).replace("\r", line_break)


def aligned_lines(header: Sequence[str], rows: Sequence[Sequence[str]], left: Iterable[str]) -> list[str]:
    """A table in columns for a terminal: the first column and those named in `left` aligned left, the rest (numbers)
    right."""
    rows = [[_one_line(cell, "\\n") for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    on_left = {0} | {i for i, name in enumerate(header) if name in set(left)}  # the first column names the row
    return ["  ".join(c.ljust(w) if i in on_left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in [header, *rows]]


def markdown_lines(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_one_line(cell.replace("|", "\\|"), "<br>") for cell in row) + " |"
                    for row in rows]


def csv_text(records: Sequence[dict[str, object]], header: Sequence[str] = ("provider",)) -> str:
    """Rows ending in \\n; a cell holding a \\r or \\n is quoted (the csv module quotes only the characters of its
    line terminator, so each row is written with \\r\\n and given \\n in its place)."""
    fieldnames = list(records[0]) if records else list(header)
    lines = []
    for record in [dict(zip(fieldnames, fieldnames)), *safe_records(records)]:
        out = io.StringIO()
        csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\r\n").writerow(record)
        lines.append(out.getvalue()[:-2] + "\n")
    return "".join(lines)


def format_table(summaries: Sequence[Summary], title: str) -> str:
    header, rows = _table_rows(summaries)
    lines = [title, *aligned_lines(header, rows, ("provider", "model", "errors", "served by", ""))]
    lines.append("times over successful requests; tokens/s is the median decode speed; percentiles by linear "
                 "interpolation, '-' below 2 samples (the median: 1); costs to 3 significant figures (json and csv: "
                 "exact); fastest = lowest median latency, cheapest = lowest mean cost")
    if any(s.agent for s in summaries):
        lines.append(AGENT_NOTE)
    return "\n".join(lines)


def format_markdown(summaries: Sequence[Summary], title: str) -> str:
    header, rows = _table_rows(summaries)
    header[-1] = "marks"
    return "\n".join(markdown_lines(title, header, rows))


def format_csv(summaries: Sequence[Summary], by: str = "provider") -> str:
    """The summaries as csv; none: the header alone, so that a machine still reads csv."""
    key = GROUP_KEYS[by]
    empty = summary_of(GroupValues(None, "", ""), (key, None) if key.value else None)
    if by == "prompt":  # the per-prompt view carries the agent figures
        empty = replace(empty, agent=NO_AGENT)
    return csv_text([summary_fields(s) for s in summaries], list(summary_fields(empty)))


def format_json(summaries: Sequence[Summary], title: str, selection: Selection, span: SelectionSpan | None,
                by: str = "provider") -> str:
    """The summaries as json; no span (nothing matched): no provider, 0 results."""
    return json.dumps(
        {
            "title": title,
            "selection": selection.describe(),
            "results": span.results if span else 0,
            "runs": span.runs if span else 0,
            "window_hours": selection.window.total_seconds() / 3600 if selection.window else None,
            "by": summaries[0].group[0].name if summaries and summaries[0].group else by,
            "providers": [summary_fields(s) for s in summaries],
        },
        indent=2,
    )


def title_for(rows: Sequence[Row], selection: Selection, by: str = "provider") -> str:
    return report_title(span_of(rows), selection, by)


def report_title(span: SelectionSpan, selection: Selection, by: str = "provider") -> str:
    times = f"{span.first:%Y-%m-%d %H:%M} to {span.last:%Y-%m-%d %H:%M} UTC"
    grouped = f", by {GROUP_KEYS[by].header or by}" if by != "provider" else ""
    return f"{span.results} results from {span.runs} run(s), {times}{grouped} ({selection.describe()})"


# ---- export -----------------------------------------------------------------------------------------------------

EXPORT_RUN_FIELDS = ("run_name", "triggered_by", "mode", "host", "region")


def export_records(rows: Iterable[Row]) -> Iterable[dict[str, object]]:
    for row in rows:
        r = row.result
        record = result_row(r.run_id, r.id, r.created_at, r.measurement)
        info = row.run.info
        record.update({name: getattr(info, name) for name in EXPORT_RUN_FIELDS})
        yield plain(record)


def export(rows: Sequence[Row], path: Path) -> int:
    """Every selected result row, as csv or jsonl by the file's extension. Returns the number of rows."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"--export writes .csv or .jsonl, not {path.name!r}")
    records = list(export_records(rows))
    with atomic_file(path, "--export") as out:
        if suffix == ".jsonl":
            for record in records:
                out.write(json.dumps(record) + "\n")
        else:
            fieldnames = list(records[0]) if records else []
            writer = csv.DictWriter(out, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(safe_records(records))
    return len(records)
