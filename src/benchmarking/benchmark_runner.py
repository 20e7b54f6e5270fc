"""The linear runner: one request at a time, every result stored as soon as it is measured.

The plan is a list of cells (provider, model, prompt), in PROVIDERS order, then benchmark.toml's endpoints. A run is
`repeat` rounds; each round measures every cell once, and the order rotates from round to round (cell k runs at
position k + r, modulo the number of cells, in round r), so that no cell is always first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
import os
from typing import Callable, Iterator, Protocol, Sequence
from uuid import UUID, uuid4

from . import __version__
from .settings.model import Settings
from .errors import RunInterrupted, StorageError
from .measurement import Measurement, utc_now
from .pricing import upper_bound_usd
from .providers import anthropic_provider
from .providers.anthropic_provider import call_anthropic
from .providers import gemini_provider
from .providers.gemini_provider import call_gemini
from .providers.groq_provider import call_groq
from .providers.openai_provider import call_openai
from .providers.openrouter_provider import call_openrouter
from .providers.cells import CallFn, Cell, measure_cell, price_of, sent_output_cap, with_judgement
from .providers.conversation import Step, converse, input_bounds, is_conversation, requests_per_round
from .providers.client import kept_clients
from .providers.custom_provider import call_custom
from .providers.registry import model_name
from .providers.together_provider import call_together
from .storage import RunInfo, Storage
from .workloads import output_cap

BENCHMARK_PROMPT = (
    "Explain in three short paragraphs how a hash map works, "
    "including what happens when two keys collide."
)

# (name, call_fn, default model). Sequential on purpose: one request at a time, so results do not disturb each other.
# The MVP's defaults were retired by their providers; README's "Supported providers" says which replaced which.
PROVIDERS: list[tuple[str, CallFn, str]] = [
    ("openai", call_openai, "gpt-6-luna"),
    ("groq", call_groq, "openai/gpt-oss-20b"),
    ("together", call_together, "openai/gpt-oss-120b"),
    ("openrouter", call_openrouter, "openai/gpt-6-luna"),
    ("anthropic", call_anthropic, anthropic_provider.DEFAULT_MODEL),
    ("gemini", call_gemini, gemini_provider.DEFAULT_MODEL),
]


class Reporter(Protocol):
    """Where the runner says what it is doing (the console, or nothing)."""

    def run_started(self, run: RunInfo, storage: Storage, storage_note: str | None = None, requests: int = 0) -> None:
        ...

    def testing(self, cell: Cell, round_number: int, rounds: int) -> None: ...

    def measured(self, m: Measurement, storage_note: str | None) -> None: ...

    def say(self, line: str = "") -> None: ...

    def run_finished(self, status: str, storage_note: str | None) -> None: ...


@dataclass(frozen=True)
class SavedMeasurement:
    """A measurement with the id it was stored under; storage_note says where it went if not to the database."""

    id: UUID
    created_at: datetime
    measurement: Measurement
    storage_note: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended."""

    run: RunInfo
    status: str
    results: tuple[SavedMeasurement, ...]
    run_notes: tuple[str, ...] = ()  # where the run's own row or its finish went, if not to the database

    @property
    def all_succeeded(self) -> bool:
        return all(r.measurement.success for r in self.results)

    @property
    def all_saved(self) -> bool:
        return not self.run_notes and all(r.storage_note is None for r in self.results)


def plan(settings: Settings) -> list[Cell]:
    """The run's cells: each provider (PROVIDERS order, then benchmark.toml's), each of its models, each prompt."""
    call_fns = {name: fn for name, fn, _ in PROVIDERS}
    flag = settings.max_tokens if settings.max_tokens_given else None
    return [
        Cell(p.name, call_fns.get(p.name, call_custom), model_name(p, model),
             replace(p, max_tokens=output_cap(prompt, flag, settings.max_tokens)), prompt)
        for p in settings.providers
        for model in settings.models[p.name]
        for prompt in settings.measured_workload.prompts
    ]


def rounds(cells: Sequence[Cell], repeat: int) -> Iterator[tuple[int, int, Cell]]:
    """(round, position, cell), both from 1: in round r, position p measures cell (p - r) mod n."""
    count = len(cells)
    for round_index in range(repeat):
        for position in range(count):
            yield round_index + 1, position + 1, cells[(position - round_index) % count]


@dataclass(frozen=True)
class CostBound:
    """The most a run could cost, from the prices and the output caps; cells with no price are named instead."""

    requests: int
    usd: Decimal
    unpriced: tuple[tuple[str, str, int], ...]  # (provider, model, requests)
    per_model: tuple[tuple[str, str, int, Decimal | None], ...]  # (provider, model, requests, USD or None)


def cost_bound(cells: Sequence[Cell], repeat: int, cache_mode: str) -> CostBound:
    """An upper bound, never an estimate: a token is at least one byte of the prompt (in any tokenizer of bytes), a
    message adds a few tokens of template, and every request uses its whole output cap. `--cache warm` adds an
    untimed request of one output token per measured one (not for a conversation, which has none). A conversation
    counts each of its requests, its input growing by every earlier answer as long as its cap (input_bounds)."""
    per_model: dict[tuple[str, str], tuple[int, Decimal | None]] = {}
    for cell in cells:
        price = price_of(cell)
        output_tokens = sent_output_cap(cell, cell.settings.max_tokens)
        inputs = input_bounds(cell.prompt, output_tokens)
        cost = None
        if price is not None:
            cost = sum((upper_bound_usd(price, tokens, output_tokens) for tokens in inputs), Decimal(0)) * repeat
            if cache_mode == "warm" and not is_conversation(cell.prompt):
                cost += upper_bound_usd(price, inputs[0], sent_output_cap(cell, 1)) * repeat
        requests, total = per_model.get((cell.provider, cell.model), (0, Decimal(0)))
        per_model[cell.provider, cell.model] = (requests + len(inputs) * repeat, None if cost is None or total is None
                                                else total + cost)
    rows = tuple((provider, model, requests, usd) for (provider, model), (requests, usd) in per_model.items())
    return CostBound(
        requests=sum(requests for _, _, requests, _ in rows),
        usd=sum((usd for *_, usd in rows if usd is not None), Decimal(0)),
        unpriced=tuple((provider, model, requests) for provider, model, requests, usd in rows if usd is None),
        per_model=rows,
    )


def new_run(settings: Settings) -> RunInfo:
    return RunInfo(
        id=uuid4(),
        run_name=settings.run_name,
        triggered_by=settings.triggered_by,
        started_at=utc_now(),
        mode=settings.mode,
        host=settings.host,
        region=settings.region,
        tool_version=__version__,
        settings=settings.run_settings(),
        pid=os.getpid(),
    )


def run_benchmark(
    settings: Settings, storage: Storage, reporter: Reporter, stop_requested: Callable[[], bool] = lambda: False
) -> RunOutcome:
    """Create the run, measure each provider `repeat` times, store each result at once, and finish the run.

    When stop_requested() turns true (a signal), the request in flight is finished and stored, then the run ends
    as interrupted. A KeyboardInterrupt raised mid-request does the same without waiting, and raises RunInterrupted.
    """
    run = new_run(settings)
    cells = plan(settings)
    notes = [storage.create_run(run)]
    reporter.run_started(run, storage, notes[0], sum(requests_per_round(c.prompt) for c in cells) * settings.repeat)
    results: list[SavedMeasurement] = []
    status = "failed"
    workload = settings.measured_workload
    try:
        with kept_clients():  # one SDK client per endpoint for the whole run
            for round_number, position, cell in rounds(cells, settings.repeat):
                if stop_requested():
                    break
                reporter.testing(cell, round_number, settings.repeat)
                if is_conversation(cell.prompt):
                    steps: Iterator[Step] = converse(cell, workload.cache_mode, stop_requested)
                else:
                    steps = iter((Step(with_judgement(measure_cell(cell, workload.cache_mode), cell.prompt)),))
                for step in steps:
                    measurement = replace(
                        step.measurement, workload=workload.name, prompt_id=cell.prompt.prompt_id,
                        input_tier=cell.prompt.input_tier, round=round_number, position=position,
                        cache_mode=workload.cache_mode,
                    )
                    results.append(_save(storage, run.id, measurement))
                    reporter.measured(measurement, results[-1].storage_note)
                    if step.ended:
                        reporter.say(f"   Conversation {cell.prompt.prompt_id} ended: {step.ended}")
        if stop_requested():
            status = "interrupted"
        else:
            status = "completed" if all(r.measurement.success for r in results) else "failed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise RunInterrupted(RunOutcome(run=run, status=status, results=tuple(results))) from None
    finally:
        try:
            notes.append(storage.finish_run(run.id, status, utc_now()))
        except StorageError as exc:
            notes.append(str(exc))  # only the run's end is missing: its results are stored (README: troubleshooting)
        reporter.run_finished(status, notes[-1])
    return RunOutcome(run=run, status=status, results=tuple(results), run_notes=tuple(n for n in notes if n))


def _save(storage: Storage, run_id: UUID, measurement: Measurement) -> SavedMeasurement:
    result_id, created_at = uuid4(), utc_now()
    try:
        note = storage.save_result(run_id, result_id, created_at, measurement)
    except StorageError as exc:
        note = f"NOT saved: {exc}"
    return SavedMeasurement(result_id, created_at, measurement, storage_note=note)
