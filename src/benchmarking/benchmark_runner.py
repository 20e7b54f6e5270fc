"""The linear runner: each provider in turn, one request at a time, every result stored as soon as it is measured."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
import os
from typing import Callable, Protocol
from uuid import UUID, uuid4

from . import __version__
from .config import ProviderSettings, Settings
from .errors import StorageError
from .measurement import Measurement, utc_now
from .providers.custom_provider import call_custom
from .providers.groq_provider import call_groq
from .providers.openai_provider import call_openai
from .providers.openrouter_provider import call_openrouter
from .providers.together_provider import call_together
from .storage import RunInfo, Storage

CallFn = Callable[[str, str, ProviderSettings], Measurement]

BENCHMARK_PROMPT = (
    "Explain in three short paragraphs how a hash map works, "
    "including what happens when two keys collide."
)

# (name, call_fn, default model). Sequential on purpose: one request at a time, so results do not disturb each other.
# The MVP's defaults were retired by their providers; README's "Supported providers" says which replaced which.
PROVIDERS: list[tuple[str, CallFn, str]] = [
    ("openai", call_openai, "gpt-4o-mini"),
    ("groq", call_groq, "openai/gpt-oss-20b"),
    ("together", call_together, "openai/gpt-oss-120b"),
    ("openrouter", call_openrouter, "openai/gpt-4o-mini"),
]


class Reporter(Protocol):
    """Where the runner says what it is doing (the console, or nothing)."""

    def run_started(self, run: RunInfo, storage: Storage, storage_note: str | None = None) -> None: ...

    def testing(self, provider: str, model: str, index: int, repeat: int) -> None: ...

    def measured(self, m: Measurement, storage_note: str | None) -> None: ...

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


class RunInterrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped the run; it is marked interrupted and what was measured is stored."""

    def __init__(self, outcome: RunOutcome) -> None:
        super().__init__(f"run {outcome.run.id} interrupted after {len(outcome.results)} measurements")
        self.outcome = outcome


def plan(settings: Settings) -> list[tuple[str, CallFn, str, ProviderSettings]]:
    """The run's (name, call_fn, model, provider settings), in PROVIDERS order, then benchmark.toml's endpoints."""
    call_fns = {name: fn for name, fn, _ in PROVIDERS}
    return [(p.name, call_fns.get(p.name, call_custom), settings.models[p.name], p) for p in settings.providers]


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
    notes = [storage.create_run(run)]
    reporter.run_started(run, storage, notes[0])
    results: list[SavedMeasurement] = []
    status = "failed"
    try:
        for name, call_fn, model, provider_settings in plan(settings):
            for index in range(settings.repeat):
                if stop_requested():
                    break
                reporter.testing(name, model, index, settings.repeat)
                measurement = call_fn(settings.prompt, model, provider_settings)
                results.append(_save(storage, run.id, measurement))
                reporter.measured(measurement, results[-1].storage_note)
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
