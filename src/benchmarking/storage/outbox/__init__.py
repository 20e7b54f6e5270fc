"""The outbox: writes the database could not take wait in local JSON lines until a later run or `flush` replays them.

pending.jsonl holds writes that failed because the database was unavailable; every run replays them first.
rejected.jsonl holds writes the database refused (bad column, constraint): they are kept and reported, and only an
explicit `python main.py flush` tries them again, so nothing is retried forever and nothing is dropped.
corrupt.jsonl receives, as they were, lines that cannot be read back (cut short, not JSON, not an outbox entry), so
that one bad line never stops the others.

Each entry records the database it was meant for (`database`, its URL without secrets): it is replayed there and
nowhere else. Entries written before that field existed are replayed only by `flush`, into the database it is set to.

entries.py: what a line holds; files.py: the files; replay.py: what waits for which database, and replaying it;
resilient.py: a backend behind the outbox.
"""

from .files import CORRUPT, PENDING, REJECTED
from .replay import FlushReport, Outbox, OutboxContents, ReplayInterrupted
from .resilient import ResilientStorage

__all__ = ["CORRUPT", "PENDING", "REJECTED", "FlushReport", "Outbox", "OutboxContents", "ReplayInterrupted",
           "ResilientStorage"]
