"""A conversation, measured: an entry with `turns` (or `tool_results`) sent as one unit per round, each request
carrying the system message, the earlier user messages and the REAL earlier answers and tool calls, then the next
message (or the tool results that answer the calls). Each request is one row; the runner stores each as it comes.

What the sequential runner calls for a conversation cell (load runs refuse conversations). Here, below the runner:
no storage, no console; the generator yields each row, with the line to say when the conversation ends early.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import json
from typing import Callable, Iterator, Mapping
from uuid import uuid4

from ..agent_workloads import MAX_FOLLOW_UPS
from ..dialogue import Message, ToolCall
from ..expectations import Expectation
from ..measurement import Measurement
from ..stopping import pause
from ..workloads import Prompt, cache_marker
from .cells import Cell, sent, with_judgement

TEMPLATE_TOKENS = 8  # a message's role markers, at most, in any chat template this tool meets


@dataclass(frozen=True)
class Step:
    """One request of a conversation, as measured and judged; `ended` says why the conversation stops here early."""

    measurement: Measurement
    ended: str | None = None


def is_conversation(prompt: Prompt) -> bool:
    """Sent as several requests per round: turns, or canned tool results that a follow-up carries back."""
    return bool(prompt.turns or prompt.tool_results)


def user_steps(prompt: Prompt) -> tuple[tuple[tuple[Message, ...], tuple[Message, ...], Expectation | None], ...]:
    """(what comes before, the user turn's new messages, its expect) of each user turn: a conversation's turns after
    its system message, or an entry's whole messages as its one turn."""
    messages = tuple(Message(role, content) for role, content in prompt.messages)
    if not prompt.turns:
        return (((), messages, None),)
    base = messages[:len(messages) - len(prompt.turns)]  # the system message, if any
    users = messages[len(base):]
    return tuple((base if k == 0 else (), (users[k],), turn.expect) for k, turn in enumerate(prompt.turns))


def converse(cell: Cell, cache_mode: str, stop_requested: Callable[[], bool] = lambda: False) -> Iterator[Step]:
    """The conversation's requests in order, each a Step (session_id, turn from 1, judged). A failed request, a call
    with no canned result or too many follow-ups end it (the Step says so when later turns are left); a stop asked
    for (Ctrl-C, SIGTERM, or during think time) ends it after the request in flight."""
    prompt = cell.prompt.with_marker(cache_marker()) if cache_mode == "bust" else cell.prompt
    session_id = uuid4().hex
    history: list[Message] = []
    number = 0
    steps = user_steps(prompt)
    for index, (base, new, expect) in enumerate(steps):
        if index and (prompt.think_time_s and pause(prompt.think_time_s) or stop_requested()):
            return
        history.extend(base)
        left = len(steps) - index - 1
        follow_ups = 0
        while True:
            history.extend(new)
            number += 1
            # Warm: each request marks its last message as a cache breakpoint (Anthropic's cache_control), so that it
            # writes the conversation so far and the next request reads it (a mark on the last earlier message
            # instead would write nothing at turn 1 and read nothing before turn 3).
            through = len(history) - 1 if cache_mode == "warm" and history else None
            measurement = cell.call_fn(sent(prompt, tuple(history), through), cell.model, cell.settings)
            calls = measurement.calls if measurement.success else ()
            answered = bool(calls) and all(call.name in prompt.tool_results for call in calls)
            follow = measurement.success and answered and follow_ups < MAX_FOLLOW_UPS
            measurement = with_judgement(replace(measurement, session_id=session_id, turn=number), prompt,
                                         first=number == 1, final=not follow, expect=expect)
            ended = _ended(measurement, calls, prompt.tool_results, answered, follow, left, number)
            yield Step(measurement, ended)
            if ended or not measurement.success:
                return
            history.append(Message("assistant", measurement.response_text or "", tool_calls=calls))
            if not follow:
                break
            if stop_requested():
                return
            follow_ups += 1
            new = tuple(Message("tool", prompt.tool_results[call.name], answers=call) for call in calls)


def _ended(m: Measurement, calls: tuple[ToolCall, ...], results: Mapping[str, str], answered: bool, follow: bool,
           left: int, number: int) -> str | None:
    """The line that says why a conversation stops before its last turn, or None."""
    if not left:
        return None
    rest = f"{left} later turn{'s' if left != 1 else ''} not sent"
    if not m.success:
        return f"request {number} failed ({m.error_type}): the conversation ends here, {rest}"
    if calls and not answered:
        missing = ", ".join(sorted({call.name for call in calls} - set(results)))
        return f"request {number} called {missing}, with no result in tool_results: the conversation ends here, {rest}"
    if calls and not follow:
        return (f"request {number} still called tools after {MAX_FOLLOW_UPS} follow-ups: the conversation ends "
                f"here, {rest}")
    return None


def requests_per_round(prompt: Prompt) -> int:
    """The most requests one round of the entry makes: one per user turn, and its follow-ups where results are canned."""
    return len(user_steps(prompt)) * (1 + (MAX_FOLLOW_UPS if prompt.tool_results else 0))


def input_bounds(prompt: Prompt, output_cap: int) -> tuple[int, ...]:
    """An upper bound on each request's input tokens, in order: every byte a token, every message its template, the
    tools and schema sent with each, and every earlier answer as long as its output cap (a tool call a token at the
    least, so at most output_cap calls, each answered by the longest canned result)."""
    fixed = 16 + len(json.dumps([prompt.tools, prompt.tool_choice, prompt.schema], ensure_ascii=False).encode())
    longest_result = max((len(r.encode()) + TEMPLATE_TOKENS for r in prompt.tool_results.values()), default=0)
    bounds, history = [], fixed
    for base, new, _ in user_steps(prompt):
        history += sum(len(m.content.encode()) + TEMPLATE_TOKENS for m in (*base, *new))
        bounds.append(history)
        for _ in range(MAX_FOLLOW_UPS if prompt.tool_results else 0):
            history += output_cap + TEMPLATE_TOKENS + output_cap * longest_result
            bounds.append(history)
        history += output_cap + TEMPLATE_TOKENS
    return tuple(bounds)
