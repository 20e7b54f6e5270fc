"""What a person reads while a run goes: the MVP's lines per provider, then a summary table; and --json for machines."""

from __future__ import annotations

from collections import Counter
import json
import time
from typing import TYPE_CHECKING, Sequence, TextIO

from .benchmark_runner import Cell, CostBound, RunOutcome
from .settings.model import Settings
from .figures import number_text, quantiles, rate_text, round_ms, round_s
from .pricing import format_usd
from .measurement import Measurement
from .storage import RunInfo, Storage, StoredResult, StoredRun
from .scheduler import format_duration
from .storage.schema import json_default, result_row

if TYPE_CHECKING:
    from .load.levels import LevelStats, LoadSettings


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


class ConsoleReporter:
    """Progress lines in the format of the MVP's README, with TTFT and decode speed added."""

    def __init__(self, out: TextIO, settings_line: str = "") -> None:
        self.out = out
        self.settings_line = settings_line
        self._warned: set[tuple[str, str, str]] = set()  # each warning once per provider and model per run
        # On a terminal, one live line of progress under the others; in a log (cron, a pipe), none.
        self._live = bool(getattr(out, "isatty", lambda: False)())
        self._progress = ""
        self._requests = 0
        self._done = 0
        self._began = time.monotonic()
        self._show_prompts = False

    def say(self, line: str = "") -> None:
        if self._progress:  # the live line makes way, and comes back after
            self._erase_line()
        print(line, file=self.out, flush=True)
        if self._progress:
            self.out.write(self._progress)
            self.out.flush()

    def _show_progress(self) -> None:
        if not self._live or not self._requests or self._done >= self._requests:
            if self._progress:
                self._erase_line()
                self.out.flush()
            self._progress = ""
            return
        elapsed = time.monotonic() - self._began
        left = elapsed / self._done * (self._requests - self._done) if self._done else None
        eta = f", about {format_duration(left)} left" if left is not None else ""
        self._progress = f"[{self._done}/{self._requests} requests, {format_duration(elapsed)} elapsed{eta}]"
        self._erase_line()
        self.out.write(self._progress)
        self.out.flush()

    def _erase_line(self) -> None:
        # Our own control sequence: a scrubbed stream (redaction.ScrubbedStream) strips any it is given as text.
        getattr(self.out, "control", self.out.write)("\r\x1b[K")

    def run_started(self, run: RunInfo, storage: Storage, storage_note: str | None = None, requests: int = 0) -> None:
        self._requests, self._done, self._began = requests, 0, time.monotonic()
        self._show_prompts = "workload" in run.settings  # tiers or a prompt set: say which prompt each line is
        self.say("Benchmark Engine")
        self.say()
        self.say(f"Starting benchmark run: {run.run_name}")
        self.say(f"Triggered by: {run.triggered_by}")
        self.say(f"Mode: {run.mode} | storage: {storage.backend} ({storage.location}){self.settings_line}")
        self.say()
        self.say(f"Run started: {run.id}")
        if storage_note is not None:
            self.say(f" Run not in the database: {storage_note}")

    def testing(self, cell: Cell, round_number: int, rounds: int) -> None:
        self.say()
        prompt = f" · {cell.prompt.prompt_id}" if self._show_prompts else ""
        counter = f" ({round_number}/{rounds})" if rounds > 1 else ""
        self.say(f"Testing → {cell.provider} / {cell.model}{prompt}{counter}")

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
            self._agent_lines(m)
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
        self._done += 1
        self._show_progress()

    def _agent_lines(self, m: Measurement) -> None:
        """A conversation's request number and cached input, the tools called, and whether the answer was judged
        right (its `expect`, `expect_tool` and `schema`)."""
        if m.turn is not None:
            cached = f", {m.cached_tokens} input tokens cached" if m.cached_tokens else ""
            self.say(f"   Turn: {m.turn} (session {(m.session_id or '')[:8]}){cached}")
        if m.tool_calls is not None:
            names = [str(call.get("name")) for call in _calls(m.tool_calls)]
            args = f" (arguments complete at {_ms(m.tool_args_ms)})" if m.tool_args_ms is not None else ""
            self.say(f"   Tool calls: {', '.join(names) or 'none'}{args}")
        if m.json_valid is not None:
            self.say(f"   Schema: {'valid JSON' if m.json_valid else 'NOT valid'}")
        if m.answer_ok is not None:
            self.say(f"   Answer: {'as expected' if m.answer_ok else 'NOT as expected'}")

    def level_done(self, provider: str, model: str, stats: "LevelStats", stopped: str | None) -> None:
        """A load run's level: what the provider did under it (the figures `report --by concurrency` gives for the
        same rows), and what the harness did."""
        figures = stats.figures

        def pair(values: dict[int, float | None]) -> str:
            return f"p50 {number_text(round_ms(values[50]))} / p99 {number_text(round_ms(values[99]))} ms"

        self.say()
        at = f"rate {stats.rate:g}/s" if stats.rate is not None else f"concurrency {stats.concurrency}"
        self.say(f"Load → {provider} / {model} at {at}: {figures.requests} requests in "
                 f"{number_text(round_s(figures.wall_s))} s, {rate_text(figures.requests_per_s)} requests/s, "
                 f"{rate_text(figures.output_tokens_per_s)} output tokens/s")
        self.say(f"   TTFT {pair(figures.ttft_ms)}; latency {pair(figures.latency_ms)}")
        errors = ", ".join(f"{kind} {count}" for kind, count in stats.errors.most_common()) or "none"
        self.say(f"   Errors: {stats.error_rate:.0%} ({errors})")
        cpu = stats.harness_cpu_ms_per_request
        lag, steady = stats.start_lag_ms(99), quantiles(stats.steady_lags_ms, (99,))[99]
        self.say(f"   Harness: start lag p99 {'-' if lag is None else f'{number_text(round_ms(lag))} ms'} "
                 f"({'-' if steady is None else f'{number_text(round_ms(steady))} ms'} after the ramp), "
                 f"{'-' if cpu is None else f'{number_text(round_ms(cpu))} ms'} of CPU a request")
        if (why := stats.bottleneck()) is not None:
            self.say(f"   Warning: the harness may have set this level's pace ({why}): " + (
                "give a higher --max-concurrency or more --workers, or a lower --rate" if stats.rate is not None
                else "use more --workers, or --engine ray"))
        if (short := stats.short_of_level()) is not None:
            self.say(f"   Warning: this level was not held: {short} (the figures are those of a lighter load)")
        if stopped:
            self.say(f"   Sweep stopped: {stopped}")

    def run_finished(self, status: str, storage_note: str | None) -> None:
        if storage_note is not None:
            self.say()
            self.say(f"Run's end ({status}) not in the database: {storage_note}")


def summary_table(outcome: RunOutcome) -> str:
    """One line per provider and model (and prompt, where a run had several): successes, the medians of TTFT, latency
    and speed and the mean cost, as `report` computes them for the same rows, and the answers that met their
    `expect`."""
    from .report.formats import summary_fields
    from .report.selection import Row
    from .report.views import summarise

    run = StoredRun(outcome.run, outcome.status, None)
    rows = [Row(StoredResult(r.id, run.info.id, r.created_at, r.measurement), run) for r in outcome.results]
    by_prompt = len({r.measurement.prompt_id or "" for r in outcome.results}) > 1
    order: dict[tuple[str | None, str, str], int] = {}  # groups in the order the run met them
    errors: dict[tuple[str | None, str, str], set[str]] = {}
    for r in outcome.results:
        key = (r.measurement.prompt_id if by_prompt else None, r.measurement.provider, r.measurement.model)
        order.setdefault(key, len(order))
        errors.setdefault(key, set()).update([r.measurement.error_type] if r.measurement.error_type else [])
    summaries = sorted(summarise(rows, "prompt" if by_prompt else "provider"),
                       key=lambda s: order[(s.group[1] if s.group else None, s.provider, s.model)])  # type: ignore
    checked = any(s.answers_judged for s in summaries)
    header = ("provider", "model", *(("prompt",) if by_prompt else ()), "ok", "TTFT ms", "latency ms", "tokens/s",
              "mean USD", *(("correct",) if checked else ()), "errors")
    table = [header]
    for s in summaries:
        fields = summary_fields(s)
        key = (s.group[1] if s.group else None, s.provider, s.model)
        table.append(
            (
                s.provider,
                s.model,
                *((str(s.group[1] or ""),) if by_prompt and s.group else ()),
                f"{s.successes}/{s.requests}",
                *(number_text(fields[name]) for name in ("ttft_p50_ms", "latency_p50_ms", "tokens_per_second_p50")),
                "-" if s.cost_mean_usd is None else format_usd(s.cost_mean_usd),
                *((f"{s.answers_correct}/{s.answers_judged}" if s.answers_judged else "-",) if checked else ()),
                ",".join(sorted(errors[key])) or "-",  # type: ignore[index]
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    numeric = {i for i, name in enumerate(header) if name not in ("provider", "model", "prompt", "errors")}
    lines = []
    for row in table:
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    succeeded = sum(1 for r in outcome.results if r.measurement.success)
    title = (
        f"Summary: run {outcome.run.id} {outcome.status}, {succeeded}/{len(outcome.results)} requests succeeded "
        "(medians of successful requests and their mean cost, as `report --run` gives them)"
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


def outcome_json(outcome: RunOutcome, indent: int | None = 2) -> str:
    """The run and its results with the stored column names (prices as exact decimal strings); indent None: one
    line."""
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
    return json.dumps(payload, indent=indent, default=json_default)


def plan_lines(settings: Settings, cells: Sequence[Cell], bound: CostBound | None, runs: int = 1,
               load: "LoadSettings | None" = None) -> list[str]:
    """What --dry-run prints: the cells, rounds (or load levels) and requests, and the most they could cost."""
    workload = settings.measured_workload
    providers = list(dict.fromkeys(cell.provider for cell in cells))
    models = list(dict.fromkeys((cell.provider, cell.model) for cell in cells))
    schedule = f" x {runs} runs" if runs > 1 else ""
    if load is None:
        how = f"{settings.repeat} rounds{schedule}"
    else:
        each = load.planned()
        at = (f"{load.arrivals} arrivals at {', '.join(f'{rate:g}' for rate in load.rates)} requests/s, at most "
              f"{load.max_concurrency} in flight" if load.rates else f"concurrency {', '.join(map(str, load.levels))}")
        how = (f"load at {at} (" + (
            f"{', '.join(map(str, each))} requests" if None not in each else f"{load.duration_s:g} s")
            + f" a level, per model){schedule}")
    total = f" = {bound.requests} requests" if bound is not None else ""
    warm = " (and as many untimed warm-ups, one token each)" if workload.cache_mode == "warm" else ""
    lines = [
        f"Plan ({workload.name} workload, cache {workload.cache_mode}): {len(providers)} providers, {len(models)} "
        f"models, {len(workload.prompts)} prompts = {len(cells)} cells; {how}{total}{warm}",
    ]
    if bound is None:
        lines.append("No upper bound on cost: --duration gives no count of requests (give --requests for one).")
        lines.append("Nothing was sent (--dry-run).")
        return lines
    width = max(len(f"{p} / {m}") for p, m, _, _ in bound.per_model)
    for provider, model, requests, usd in bound.per_model:
        cost = f"up to {format_usd(usd)}" if usd is not None else "unknown (no price)"
        lines.append(f"  {f'{provider} / {model}':<{width}}  {requests:>5} requests  {cost}")
    unknown = "" if not bound.unpriced else (
        "; not counted, with no price: " + ", ".join(f"{p} / {m}" for p, m, _ in bound.unpriced))
    lines.append(f"Upper bound on cost: {format_usd(bound.usd)} (every prompt byte a token, every answer as long as "
                 f"its max_tokens){unknown}")
    if settings.simulate:
        lines.append("Simulated: nothing is spent, --max-cost does not apply.")
    elif bound.usd > settings.max_cost_usd:
        lines.append(f"That is more than --max-cost {format_usd(settings.max_cost_usd)}: a live run would stop before "
                     "sending anything; raise --max-cost to run it.")
    else:
        lines.append(f"Within --max-cost {format_usd(settings.max_cost_usd)}.")
    lines.append("Nothing was sent (--dry-run).")
    return lines


def plan_json(settings: Settings, cells: Sequence[Cell], bound: CostBound | None, runs: int = 1,
              load: "LoadSettings | None" = None) -> str:
    """What --dry-run --json prints: the plan_lines' figures for a program (amounts as exact decimal strings)."""
    workload = settings.measured_workload
    within = None if bound is None or settings.simulate else bound.usd <= settings.max_cost_usd
    return json.dumps({
        "dry_run": True,
        "workload": workload.name,
        "cache_mode": workload.cache_mode,
        "cells": len(cells),
        "prompts": len(workload.prompts),
        "runs": runs,
        "rounds": settings.repeat if load is None else None,
        "load_levels": list(load.levels) if load is not None else None,
        **({"load_rates": list(load.rates)} if load is not None and load.rates else {}),
        "requests": bound.requests if bound is not None else None,  # None: --duration gives no count
        "cost_bound_usd": str(bound.usd) if bound is not None else None,
        "models": [{"provider": p, "model": m, "requests": n, "cost_bound_usd": None if usd is None else str(usd)}
                   for p, m, n, usd in (bound.per_model if bound is not None else ())],
        "unpriced": [{"provider": p, "model": m} for p, m, _ in (bound.unpriced if bound is not None else ())],
        "max_cost_usd": str(settings.max_cost_usd),
        "simulated": settings.simulate,
        "within_max_cost": within,
    }, indent=2)


def _calls(text: str) -> list[dict[str, object]]:
    """The tool_calls column's calls, or none where it does not read as a list of them."""
    try:
        calls = json.loads(text)
    except ValueError:
        return []
    return [call for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []
