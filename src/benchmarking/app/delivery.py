"""Where a run's writes ended up: a row kept in the outbox while the database was away, and replayed into it before
the run ended, is stored; only what still waits (or is nowhere) is not.

Each write's note says where it went when it was made; by the end of the run the outbox may have given the database
what it kept (every write first replays what waits). This reads the outbox once, at the end, and settles each note.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

from ..benchmark_runner import SavedMeasurement
from ..storage.outbox.entries import entry_id


@dataclass(frozen=True)
class Delivery:
    """A run's results with their notes settled, and how many passed through the outbox."""

    results: tuple[SavedMeasurement, ...]
    run_notes: tuple[str, ...]
    through_outbox: int  # results kept outside the database when measured
    waiting: int  # of those, still outside it at the end (in the outbox, or only printed)

    def stored_line(self, outbox_dir: str) -> str:
        """`N stored in the database` and, if any passed through the outbox, what became of them."""
        stored = sum(r.storage_note is None for r in self.results)
        line = f"{stored} stored in the database"
        if not self.through_outbox:
            return line
        if not self.waiting:
            return f"{line} ({self.through_outbox} of them through the outbox, all written to it before the end)"
        return (f"{line} ({self.through_outbox} through the outbox; {self.waiting} still waiting in {outbox_dir}/: "
                "`python main.py flush` writes them)")


def settle_notes(run_id: Any, results: Sequence[SavedMeasurement], run_notes: Iterable[str],
                 waiting_ids: set[str] | None, lost: Sequence[dict[str, Any]]) -> Delivery:
    """Notes of writes that reached the database after all (neither waiting in the outbox nor lost) dropped; none
    dropped if the outbox could not be read (waiting_ids None)."""
    if waiting_ids is None:
        through = sum(r.storage_note is not None for r in results)
        return Delivery(tuple(results), tuple(run_notes), through, through)
    outside = waiting_ids | {entry_id(entry) for entry in lost}
    settled = tuple(r if r.storage_note is None or str(r.id) in outside else replace(r, storage_note=None)
                    for r in results)
    through = sum(r.storage_note is not None for r in results)
    waiting = sum(r.storage_note is not None for r in settled)
    notes = tuple(run_notes) if str(run_id) in outside else ()
    return Delivery(settled, notes, through, waiting)
