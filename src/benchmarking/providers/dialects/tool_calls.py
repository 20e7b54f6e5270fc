"""Tool calls as an answer sends them, in pieces or whole: each call's name, id, arguments text and signature
gathered by the position the stream gives it (Chat Completions' `index`, Responses' `output_index`, a Messages
content block's `index`, a Gemini call's place among the answer's calls), kept within bounds a hostile server cannot
push past; and the ids a request's history gives the calls it replays, where a call came without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from typing import Any, Sequence

from ...dialogue import Message, ToolCall
from ..answer import KEPT_CHARS, MAX_NAME_CHARS, name_of

MAX_CALLS = 128  # calls kept of one answer; pieces of any further call are output, not kept
MAX_INDEX = 2 ** 16  # a call's position beyond this (or not an int) is no position: its pieces are not kept
# Characters of arguments kept over all calls of one answer (as the answer's text keeps KEPT_CHARS).
KEPT_ARGUMENT_CHARS = KEPT_CHARS


@dataclass
class _Call:
    name: str = ""
    call_id: str | None = None
    pieces: list[str] = field(default_factory=list)
    streamed: bool = False  # arguments came in pieces: a whole text sent after them is not another piece
    given: bool = False  # the pieces are the input its start gave, which its first piece replaces
    signature: str | None = None  # sent back with the call (Gemini's thoughtSignature)


def arguments_text(value: Any) -> str | None:
    """Arguments as sent: a text as it is; a JSON object or list (which some servers send) as its JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (RecursionError, TypeError, ValueError):
            return None
    return None


def position_of(value: Any) -> int | None:
    """A call's position, if it is one: a small non-negative int."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_INDEX:
        return value
    return None


class ToolCalls:
    """The tool calls of one answer as they arrive; `calls()` gives them whole, by position, and `last_at` is when
    the last piece of any of them came (its arguments' last piece, for a call streamed name first; its block's stop,
    for a Messages call)."""

    def __init__(self) -> None:
        self._calls: dict[int, _Call] = {}
        self._kept = 0
        self.last_at: float | None = None
        self.truncated = False  # calls past MAX_CALLS, or arguments (or signatures) past KEPT_ARGUMENT_CHARS

    def _call(self, position: Any) -> _Call | None:
        index = position_of(position)
        if index is None:
            return None
        call = self._calls.get(index)
        if call is None:
            if len(self._calls) >= MAX_CALLS:
                self.truncated = True  # a call past those kept: the answer's calls are cut
                return None
            call = self._calls[index] = _Call()
        return call

    def _keep(self, call: _Call, text: str) -> None:
        room = KEPT_ARGUMENT_CHARS - self._kept
        if len(text) > room:
            text = text[:max(room, 0)]
            self.truncated = True
        if text:
            call.pieces.append(text)
            self._kept += len(text)
            if len(call.pieces) >= 1024:  # a million one-character pieces would cost 50 bytes a character
                call.pieces[:] = ["".join(call.pieces)]

    def _named(self, call: _Call, name: Any, call_id: Any, signature: Any = None) -> None:
        # The first name, id and signature stand: a server that repeats them on every piece sends the same again.
        if not call.name and name is not None and name != "":
            call.name = name_of(name)
        if call.call_id is None and isinstance(call_id, str) and call_id:
            call.call_id = call_id[:MAX_NAME_CHARS]
        if call.signature is None and isinstance(signature, str) and signature:
            if len(signature) > KEPT_ARGUMENT_CHARS - self._kept:  # dropped whole: a part of one is worth nothing
                self.truncated = True
            else:
                call.signature = signature
                self._kept += len(signature)

    def _arguments(self, call: _Call, text: str) -> None:
        if call.given:  # the pieces replace the input its start gave
            self._kept -= sum(len(piece) for piece in call.pieces)
            call.pieces.clear()
            call.given = False
        call.streamed = True
        self._keep(call, text)

    def piece(self, position: Any, at: float | None, name: Any = None, call_id: Any = None,
              arguments: Any = None) -> None:
        """One streamed piece of the call at `position`: its name and id (on the first piece) and a part of its
        arguments' text."""
        self.last_at = at if at is not None else self.last_at
        call = self._call(position)
        if call is None:
            return
        self._named(call, name, call_id)
        text = arguments_text(arguments)
        if text:
            self._arguments(call, text)

    def whole(self, position: Any, at: float | None, name: Any = None, call_id: Any = None,
              arguments: Any = None, signature: Any = None) -> bool:
        """A call's whole arguments (a closing event, a whole body, a Gemini functionCall). They are its arguments,
        and a piece of output arriving now, unless they came in pieces already; True when they did not."""
        call = self._call(position)
        if call is not None:
            self._named(call, name, call_id, signature)
        if call is not None and call.streamed:
            return False
        text = arguments_text(arguments)
        if call is not None and text:
            self._arguments(call, text)
        self.last_at = at if at is not None else self.last_at
        return True

    def start(self, position: Any, name: Any = None, call_id: Any = None, given: Any = None) -> bool:
        """A call begun (a Messages tool_use block's start): its name, id, and the input it gives, its arguments
        unless pieces of them follow ({} if it gives none). True if the call is kept."""
        call = self._call(position)
        if call is None:
            return False
        self._named(call, name, call_id)
        if not call.streamed and not call.pieces:
            self._keep(call, arguments_text(given if given is not None else {}) or "")
            call.given = True
        return True

    def complete(self, position: Any, at: float | None) -> bool:
        """A call's arguments are complete now (a Messages block's stop). True when no piece carried them: then this
        is the call's piece of output, and `last_at`; else their last piece was (the one that ends the latency too,
        as on the other APIs: the stop may come in a later read)."""
        index = position_of(position)
        call = self._calls.get(index) if index is not None else None
        if call is None or call.streamed:
            return False
        self.last_at = at if at is not None else self.last_at
        return True

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(call.name, "".join(call.pieces), call.call_id, call.signature)
                     for _, call in sorted(self._calls.items()))

    def answer_fields(self) -> dict[str, Any]:
        """What an Answer says of the calls: them, when the last one's arguments were complete, whether any were cut."""
        return {"tool_calls": self.calls(), "tool_args_at": self.last_at, "tool_calls_truncated": self.truncated}


def replayed_ids(messages: Sequence[Message]) -> list[tuple[str, ...]]:
    """The ids a history's calls are replayed with, message by message: an assistant message's calls' (each its own,
    else a `call_<n>` no other call has, for a server that sent none), a tool message's one (the id of the earliest
    call it answers not yet answered), none for the others."""
    ids: list[tuple[str, ...]] = []
    waiting: list[tuple[ToolCall, str]] = []
    taken = {call.call_id for message in messages for call in message.tool_calls if call.call_id}
    made = 0
    for message in messages:
        if message.role == "tool":
            match = next((i for i, (call, _) in enumerate(waiting) if call == message.answers), None)
            if match is not None:
                ids.append((waiting.pop(match)[1],))
            else:
                answers = message.answers
                ids.append(((answers.call_id if answers is not None else None) or "call_unknown",))
            continue
        own = []
        for call in message.tool_calls:
            call_id = call.call_id
            while call_id is None:
                call_id = None if f"call_{made}" in taken else f"call_{made}"
                made += 1
            own.append(call_id)
            waiting.append((call, call_id))
        ids.append(tuple(own))
    return ids
