"""Server-sent events, split from an answer's bytes piece by piece as they are recorded, with bounded memory.

Per the SSE spec: lines end with CRLF, LF or CR; `data:` lines add to the event, `event:` names it, a line starting
with `:` is a comment, and a blank line ends the event (one without data is no event). An event's time is when the
piece holding the end of its blank line arrived. A line or an event longer than the bound is not held: the event is
marked oversized, and what it said is lost (no client could read it either).
"""

from __future__ import annotations

from dataclasses import dataclass
import re

# The longest event (its data lines together) that is read: a whole answer of 1 MB in one event fits, escaped.
MAX_EVENT_BYTES = 8 * 1024 * 1024
_LINE_END = re.compile(rb"\r\n|\r|\n")
_FIELD_HEAD_BYTES = 16  # enough of an oversized line to tell its field


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event with data, and when its last byte (the blank line that ends it) arrived."""

    arrived_at: float
    event: str | None
    data: str
    oversized: bool = False  # its data passed MAX_EVENT_BYTES and was dropped: `data` is empty


class SseSplitter:
    """Fed an answer's bytes piece by piece, gives the events that each piece completes."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._line = bytearray()  # the line so far, while it is within the bound
        self._line_head = b""  # its first bytes, kept when the rest is dropped
        self._line_over = False
        self._cr_at: float | None = None  # a piece ended with CR, which arrived then: a LF next is part of it
        self._name: str | None = None
        self._data: list[str] = []
        self._data_bytes = 0
        self._over = False

    def feed(self, piece: bytes, arrived_at: float) -> list[SseEvent]:
        """The events this piece completes."""
        events: list[SseEvent] = []
        start = 0
        if self._cr_at is not None:
            cr_at, self._cr_at = self._cr_at, None
            if piece.startswith(b"\n"):  # CRLF across two pieces: the line ended when the LF came
                start = 1
                self._end_line(arrived_at, events)
            else:
                self._end_line(cr_at, events)
        for match in _LINE_END.finditer(piece, start):
            if match.group() == b"\r" and match.end() == len(piece):
                self._add(piece, start, match.start())
                self._cr_at = arrived_at
                return events
            self._add(piece, start, match.start())
            self._end_line(arrived_at, events)
            start = match.end()
        self._add(piece, start, len(piece))
        return events

    def close(self) -> list[SseEvent]:
        """The end of the body: a CR at its very end ends a line; an event without its blank line is dropped."""
        events: list[SseEvent] = []
        if self._cr_at is not None:
            cr_at, self._cr_at = self._cr_at, None
            self._end_line(cr_at, events)
        return events

    def _add(self, piece: bytes, start: int, end: int) -> None:
        if end <= start:
            return
        if self._line_over:
            return
        if len(self._line) + end - start > self._max:
            self._line_head = bytes(self._line[:_FIELD_HEAD_BYTES]) + piece[start:start + _FIELD_HEAD_BYTES]
            self._line = bytearray()
            self._line_over = True
            return
        self._line += piece[start:end]

    def _end_line(self, arrived_at: float, events: list[SseEvent]) -> None:
        over, self._line_over = self._line_over, False
        raw, self._line = (self._line_head if over else bytes(self._line)), bytearray()
        self._line_head = b""
        if over:
            if raw.startswith(b"data"):
                self._over = True
            return
        line = raw.decode("utf-8", errors="replace")
        if line:
            if line.startswith(":"):
                return
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "data":
                self._data_bytes += len(raw)
                if self._data_bytes > self._max:
                    self._over, self._data = True, []
                elif not self._over:
                    self._data.append(value)
            elif key == "event":
                self._name = value
            return
        if self._over:
            events.append(SseEvent(arrived_at=arrived_at, event=self._name or None, data="", oversized=True))
        elif self._data:
            events.append(SseEvent(arrived_at=arrived_at, event=self._name or None, data="\n".join(self._data)))
        self._name, self._data, self._data_bytes, self._over = None, [], 0, False
