"""Opening storage for a run or flush: the backend behind the outbox, checked, earlier runs' waiting writes replayed,
runs a dead process left running marked abandoned; and writes that nothing could take, said as lines so none is lost."""

from __future__ import annotations

from contextlib import ExitStack
import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..settings.model import Settings
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..storage import Storage
    from ..storage.outbox import OutboxContents, ResilientStorage


def outbox_lines(contents: "OutboxContents", directory: Path, flushing: bool = False) -> list[str]:
    """What a run or `flush` says about writes in the outbox that are not for its database."""
    lines = [
        f"outbox: {count} writes in {directory}/ are for {database}, not this database: left there; run "
        "`python main.py flush` with that database's settings to write them"
        for database, count in sorted(contents.other_databases.items())
    ]
    if contents.unowned and not flushing:
        lines.append(
            f"outbox: {contents.unowned} writes in {directory}/ were kept by an older version, which did not record "
            "their database: left there; `python main.py flush` writes them to the database it is set to"
        )
    return lines


def mark_abandoned_runs(storage: "Storage", host: str, say: Callable[[str], None]) -> None:
    """Runs of this host left `running` by a process that is gone become `abandoned`; each gets one line."""
    from ..errors import StorageError
    from ..storage.abandoned import abandon_dead_runs

    try:
        marked = abandon_dead_runs(storage, host)
    except StorageError:
        return  # the database does not answer now: the next run or flush looks again
    for run, finished_at in marked:
        when = "its start: it has no result" if finished_at == run.info.started_at else "its last result"
        say(f"run {run.info.id} ({run.info.run_name}) was left running by process {run.info.pid}, which is gone: "
            f"marked abandoned, finished at {finished_at.isoformat(timespec='seconds')} ({when})")


def open_storage(settings: Settings, stack: ExitStack, say: Callable[[str], None]) -> "ResilientStorage":
    """The selected backend behind the outbox, checked, with earlier runs' waiting writes replayed first, and runs
    that a dead process left running marked abandoned."""
    from ..errors import StorageRejected, StorageUnavailable
    from ..storage import open_backend
    from ..storage.outbox import Outbox, ResilientStorage

    backend = stack.enter_context(open_backend(settings))
    available = True
    try:
        backend.prepare()
    except StorageRejected as exc:
        raise ConfigError(f"the database refused to set up: {exc}") from None
    except StorageUnavailable as exc:
        available = False
        say(f"warning: {exc}; results will be kept in {settings.outbox_dir}/ until it is back")
    storage = ResilientStorage(backend, Outbox(settings.outbox_dir, warn=say))
    contents = storage.outbox.contents(backend.database)
    for line in outbox_lines(contents, storage.outbox.directory):
        say(line)
    if contents.pending:
        report = storage.replay()
        say(f"outbox: wrote {report.written} earlier writes to the database, {report.pending} still waiting")
        available = available and report.pending == 0
    if available:
        mark_abandoned_runs(backend, settings.host, say)
    return storage


def lost_lines(lost: list[dict[str, object]], outbox_dir: str) -> list[str]:
    """Writes that neither the database nor the outbox took, as outbox lines to say on stderr, so that nothing is
    lost."""
    return [f"error: {len(lost)} writes could be stored neither in the database nor in the outbox ({outbox_dir}/); "
            f"they follow, one JSON line each: once the outbox can be written, append them to "
            f"{outbox_dir}/pending.jsonl and run `python main.py flush`",
            *(json.dumps(entry) for entry in lost)]
