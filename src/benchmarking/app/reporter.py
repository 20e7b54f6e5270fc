"""Lines out: everything app/ says goes through a Reporter that cli/ gives it (cli/lines.py: this process's stdout
and stderr), so that app/ never prints and a use case can be run with its lines kept (a test, a later service)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the engines load only where a run needs them, never at --help
    from ..benchmark_runner import Reporter as RunReporter
    from ..load.closed import LoadReporter

    class Progress(RunReporter, LoadReporter, Protocol):
        """What an engine calls while a run goes: the sequential runner's reporter and the load loop's, in one."""


class Reporter(Protocol):
    """Where a use case's lines go."""

    def say(self, line: str = "") -> None:
        """A line for people: on stdout, or on stderr when stdout carries --json."""

    def warn(self, line: str) -> None:
        """A line on stderr: warnings, and what is said beside the results."""

    def data(self, text: str) -> None:
        """Machine output (--json) on stdout, at once."""

    def progress(self) -> "Progress":
        """The reporter an engine calls while a run goes, writing where `say` does."""
