"""What a person reads while a run goes: the MVP's lines per provider, then a summary table; and --json for machines."""

from __future__ import annotations

from collections import Counter
import json
from statistics import median
from typing import TextIO

from .benchmark_runner import RunOutcome
from .measurement import Measurement
from .storage import RunInfo, Storage
from .storage.schema import json_default, result_row


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


class ConsoleReporter:
    """Progress lines in the format of the MVP's README, with TTFT and decode speed added."""

    def __init__(self, out: TextIO, settings_line: str = "") -> None:
        self.out = out
        self.settings_line = settings_line
        self._warned: set[tuple[str, str, str]] = set()  # each warning once per provider and model per run

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def run_started(self, run: RunInfo, storage: Storage, storage_note: str | None = None) -> None:
        self.say("Benchmark Engine")
        self.say()
        self.say(f"Starting benchmark run: {run.run_name}")
        self.say(f"Triggered by: {run.triggered_by}")
        self.say(f"Mode: {run.mode} | storage: {storage.backend} ({storage.location}){self.settings_line}")
        self.say()
        self.say(f"Run started: {run.id}")
        if storage_note is not None:
            self.say(f" Run not in the database: {storage_note}")

    def testing(self, provider: str, model: str, index: int, repeat: int) -> None:
        self.say()
        counter = f" ({index + 1}/{repeat})" if repeat > 1 else ""
        self.say(f"Testing → {provider} / {model}{counter}")

    def measured(self, m: Measurement, storage_note: str | None) -> None:
        if m.success:
            self.say(f"Success ({m.provider})")
            if m.ttft_ms is not None:
                self.say(f"   TTFT: {_ms(m.ttft_ms)}")
            self.say(f"   Latency: {_ms(m.latency_ms)}")
            tokens_in = "-" if m.input_tokens is None else m.input_tokens
            tokens_out = "-" if m.output_tokens is None else m.output_tokens
            self.say(f"   Tokens: {tokens_in} in / {tokens_out} out")
            if m.tokens_per_second is not None:
                self.say(f"   Speed: {m.tokens_per_second:.1f} tokens/s")
            cost = "unknown" if m.cost_usd is None else f"${m.cost_usd:.6f}"
            source = " (reported by provider)" if m.cost_source == "provider" else ""
            self.say(f"   Cost: {cost}{source}")
        else:
            self.say(f"Failed ({m.provider}): {m.error_type}")
            self.say(f"   {m.error_message}")
        if m.attempts > 1:
            self.say(f"   Attempts: {m.attempts}")
        for warning in m.warnings:
            if (m.provider, m.model, warning) not in self._warned:
                self._warned.add((m.provider, m.model, warning))
                self.say(f"   Warning: {warning}")
        self.say(" Saved to DB" if storage_note is None else f" Not in the database: {storage_note}")

    def run_finished(self, status: str, storage_note: str | None) -> None:
        if storage_note is not None:
            self.say()
            self.say(f"Run's end ({status}) not in the database: {storage_note}")


def summary_table(outcome: RunOutcome) -> str:
    """One line per provider and model: successes, and medians of TTFT, latency, speed and cost."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for saved in outcome.results:
        m = saved.measurement
        groups.setdefault((m.provider, m.model), []).append(m)

    def med(values: list[float | None], fmt: str) -> str:
        present = [v for v in values if v is not None]
        return format(median(present), fmt) if present else "-"

    header = ("provider", "model", "ok", "TTFT ms", "latency ms", "tokens/s", "cost USD", "errors")
    rows = [header]
    for (provider, model), ms in groups.items():
        ok = [m for m in ms if m.success]
        errors = sorted({m.error_type for m in ms if m.error_type})
        rows.append(
            (
                provider,
                model,
                f"{len(ok)}/{len(ms)}",
                med([m.ttft_ms for m in ok], ".1f"),
                med([m.latency_ms for m in ok], ".1f"),
                med([m.tokens_per_second for m in ok], ".1f"),
                med([float(m.cost_usd) if m.cost_usd is not None else None for m in ok], ".6f"),
                ",".join(errors) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6}
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    succeeded = sum(1 for r in outcome.results if r.measurement.success)
    title = (
        f"Summary: run {outcome.run.id} {outcome.status}, "
        f"{succeeded}/{len(outcome.results)} requests succeeded (medians of successful requests)"
    )
    return "\n".join([title, *lines, *repeated_warnings(outcome)])


def repeated_warnings(outcome: RunOutcome) -> list[str]:
    """A warning that came with more than one request, once, with how many (it was shown at its first request)."""
    counts = Counter(
        (r.measurement.provider, r.measurement.model, warning) for r in outcome.results for warning in
        dict.fromkeys(r.measurement.warnings)
    )
    totals = Counter((r.measurement.provider, r.measurement.model) for r in outcome.results)
    return [f"Warning ({provider} / {model}, {count} of {totals[provider, model]} requests): {warning}"
            for (provider, model, warning), count in counts.items() if count > 1]


def outcome_json(outcome: RunOutcome) -> str:
    """The run and its results with the stored column names (prices as exact decimal strings)."""
    run = outcome.run
    payload = {
        "run": {
            "id": run.id,
            "run_name": run.run_name,
            "triggered_by": run.triggered_by,
            "started_at": run.started_at,
            "status": outcome.status,
            "mode": run.mode,
            "host": run.host,
            "region": run.region,
            "tool_version": run.tool_version,
            "settings": run.settings,
        },
        "results": [
            {**result_row(run.id, r.id, r.created_at, r.measurement), "saved": r.storage_note is None}
            for r in outcome.results
        ],
    }
    return json.dumps(payload, indent=2, default=json_default)
