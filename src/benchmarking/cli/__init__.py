"""The command line: one module per command, and one place that maps exceptions to one line and an exit status.

main.py runs `main`, run_scheduled.py runs `scheduled_main`; `python main.py report|check|flush|serve|watch` pick
a subcommand.
"""

from __future__ import annotations

from importlib import import_module
import os
import sys
from typing import Callable, Sequence

from ..errors import BenchmarkError, EvaluationInterrupted, OutputUnwritable, RunInterrupted, StorageError
from ..redaction import scrubbed_output
from .common import ExitStatus

__all__ = ["ExitStatus", "main", "scheduled_main"]

# Each command's module is imported when it runs: `report` and `watch` start without loading the runner and every
# provider's HTTP code (a tenth of a second, on every report).
SUBCOMMANDS = ("check", "flush", "report", "serve", "watch")


def command(name: str) -> Callable[[list[str]], int] | None:
    """The `NAME_main` function of the module cli/NAME.py; None after a Ctrl-C while its modules load (said here in
    the line main.py says for its own)."""
    try:
        return getattr(import_module(f"{__name__}.{name}"), f"{name}_main")
    except KeyboardInterrupt:
        say("\ninterrupted while starting: nothing measured")
        return None


def guarded(prog: str, command: Callable[[], int], interrupted: str, traceback: bool = False) -> int:
    """Run a command; every exception becomes one line on stderr and an exit status, never a traceback.

    With `traceback` (--traceback) an unexpected error shows its traceback instead; `interrupted` is the line for a
    Ctrl-C that came before any run started (a run that was under way reports itself).
    """
    try:
        status = command()
        sys.stdout.flush()  # a closed pipe shows here, inside the guard, not in Python's own flush at exit
        return status
    except RunInterrupted as exc:
        outcome = exc.outcome
        say(f"\ninterrupted: run {outcome.run.id} marked interrupted; "
            f"{sum(r.storage_note is None for r in outcome.results)} results stored in the database")
        return ExitStatus.INTERRUPTED
    except EvaluationInterrupted as exc:
        say(f"\n{exc}")
        return ExitStatus.INTERRUPTED
    except KeyboardInterrupt:
        say(f"\n{interrupted}")
        return ExitStatus.INTERRUPTED
    except (StorageError, OutputUnwritable) as exc:  # the database or the disk, not the user's input: a failed run
        say(f"{prog}: error: {exc}")
        return ExitStatus.FAILURES
    except BenchmarkError as exc:
        say(f"{prog}: error: {exc}")
        return ExitStatus.USAGE
    except BrokenPipeError:
        # Whoever read stdout went away (a pipe into `head`). Point stdout at nothing, or Python's own flush of it at
        # exit fails once more with a message of its own.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (replaced, or closed): nothing will flush it at exit
            pass
        say(f"{prog}: error: the output was closed before the command finished (a pipe into head?)")
        return ExitStatus.FAILURES
    except Exception as exc:
        if traceback:  # printed here, while stderr is still scrubbed (Python's own print comes after the funnel)
            import traceback as tracebacks

            tracebacks.print_exc()
            return ExitStatus.FAILURES
        say(f"{prog}: unexpected error: {type(exc).__name__}: {exc} (run with --traceback for details)")
        return ExitStatus.FAILURES


def say(line: str) -> None:
    """One line on stderr; if stderr itself is gone there is nowhere left to say it, and that is no reason to crash."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """main.py: one run, or a subcommand; everything it prints is scrubbed of secrets and terminal escapes."""
    with scrubbed_output():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args
    if args and args[0] in SUBCOMMANDS:
        run, rest, interrupted = command(args[0]), [a for a in args[1:] if a != "--traceback"], "interrupted"
    else:
        run, rest, interrupted = command("run"), args, "interrupted before the run started: nothing measured"
    if run is None:
        return ExitStatus.INTERRUPTED
    return guarded("main.py", lambda: run(rest), interrupted, traceback)


def scheduled_main(argv: Sequence[str] | None = None) -> int:
    """run_scheduled.py: runs on the grid until done or stopped (printing through the same scrubber as main)."""
    with scrubbed_output():
        return _scheduled_main(argv)


def _scheduled_main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    schedule = command("schedule")
    if schedule is None:
        return ExitStatus.INTERRUPTED
    return guarded("run_scheduled.py", lambda: schedule(args), "interrupted between runs", "--traceback" in args)
