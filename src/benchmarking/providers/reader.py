"""Reading an answer's recorded bytes, whatever its API: split into server-sent events for a dialect to read, or
held whole as a plain JSON body, piece by piece with bounded memory.

Read from the recorded wire (see wire.py) after the request, the same way for every SDK and every server: what a
provider sent is what is stored, whatever an SDK skips, merges or fails to parse. Read piece by piece, keeping only
what an Answer keeps: text and reasoning up to a cap, one event and a plain body up to a bound.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from .answer import Answer
from .dialects import Dialect
from .sse import MAX_EVENT_BYTES, SseSplitter
from .json_text import json_object
from .wire import WireRecord


class AnswerReader:
    """Reads one answer's bytes as the wire holds them (WireRecord.digest), then gives the Answer they make.

    Streamed: events in order, up to the end the dialect reads in them (what comes after is not read); a plain JSON
    body instead of a stream is read as one. Not streamed: the body as one JSON object. Held meanwhile: the events'
    Answer, the body's first MAX_EVENT_BYTES while it may still be a plain body, and one event at most.
    """

    def __init__(self, stream: bool, dialect: Dialect) -> None:
        self.stream = stream
        self._dialect = dialect
        self._start(restarts=0)

    def _start(self, restarts: int) -> None:
        self._restarts = restarts
        self._splitter = SseSplitter()
        self._events = self._dialect.EventReader()
        self._head: list[bytes] | None = []  # the body so far, while it may be a plain JSON body
        self._head_bytes = 0
        self._head_over = False  # the body passed MAX_EVENT_BYTES before it was known to be a stream

    def take(self, record: WireRecord) -> None:
        """Read the pieces the record holds, and drop them."""
        if record.restarts != self._restarts:  # a redirect: the body read so far was not the answer
            self._start(record.restarts)
        pieces, arrived = record.take()
        json_type = record.content_type == "application/json"
        events = self._events
        for piece, at in zip(pieces, arrived):
            if self._head is not None:
                self._head_bytes += len(piece)
                self._head.append(piece)
                if self._head_bytes > MAX_EVENT_BYTES:
                    self._head, self._head_over = None, True
            if self.stream and events.ending is None:  # after the end, the rest is not read
                events.read(self._splitter.feed(piece, at))
                if events.events and not json_type:
                    self._head = None  # a stream: never a plain body
        del pieces

    def answer(self, record: WireRecord) -> Answer:
        """The Answer the whole body makes (what the record still holds is read first)."""
        self.take(record)
        if self.stream:
            self._events.read(self._splitter.close())
        body = self._plain_body()
        too_large = {"too_large": f"a body of more than {MAX_EVENT_BYTES // 2 ** 20} MiB"
                                  + (" that is not a stream" if self.stream else "")}
        if not self.stream:
            if self._head_over:
                return Answer(**too_large)
            if body is None:  # HTML, an empty body, a JSON array, a stream: no answer any dialect reads
                return Answer(unreadable=self._head_text()[:80] or "an empty body")
            return self._dialect.read_body(record, body)
        if body is not None and (not self._events.events or record.content_type == "application/json"):
            return replace(self._dialect.read_body(record, body), plain_json=True)
        if self._head_over and not self._events.events:
            return Answer(**too_large)
        return self._events.answer()

    def _head_text(self) -> str:
        return b"".join(self._head or ()).decode("utf-8", errors="replace")

    def _plain_body(self) -> Mapping[str, Any] | None:
        return None if self._head is None else json_object(self._head_text())
