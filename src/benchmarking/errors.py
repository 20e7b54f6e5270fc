"""The few exceptions the engine raises; each message tells the user what to do."""

from __future__ import annotations

from typing import Any, Protocol, Sequence


class StoppedRun(Protocol):
    """What RunInterrupted carries: the run's RunOutcome (benchmark_runner), named by its shape, since this module
    imports nothing of ours (everything imports it)."""

    run: Any
    results: Sequence[Any]


class BenchmarkError(Exception):
    """Base class: a problem the user can fix, reported as one line."""


class ConfigError(BenchmarkError):
    """A flag, environment variable or benchmark.toml value is invalid."""


class NoProvidersError(BenchmarkError):
    """Every selected provider was skipped, so there is nothing to measure."""


class StorageError(BenchmarkError):
    """The database could not be opened, or a write to it failed."""


class StorageUnavailable(StorageError):
    """The database did not answer (down, unreachable, timed out): the write may succeed later."""


class StorageRejected(StorageError):
    """The database refused the row (bad column, wrong type, constraint): retrying will not help."""


class OutboxUnwritable(StorageError):
    """The outbox could not take a write either (disk full, no permission): the write is held in memory."""


class OutputUnwritable(BenchmarkError):
    """An output file (export, chart, metrics) could not be written (disk full, read-only): the earlier one is kept."""


class RunInterrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped the run; it is marked interrupted and what was measured is stored."""

    def __init__(self, outcome: StoppedRun) -> None:
        super().__init__(f"run {outcome.run.id} interrupted after {len(outcome.results)} measurements")
        self.outcome = outcome


class EvaluationInterrupted(KeyboardInterrupt):
    """Ctrl-C twice while the alert rules were judged after a run: a Ctrl-C to every handler, but the run and its
    results are stored, so the last line says so (not "nothing measured")."""
