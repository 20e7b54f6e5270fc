"""What one request of agent-shaped traffic sends and what its answer called: a conversation so far (the earlier
user messages, the real answers and tool calls, the tool results), the tools offered, a JSON Schema for the answer.

One form for every API: each dialect (providers/dialects/) translates an Exchange into its own request body, and
reads the tool calls of its own stream into ToolCalls. The tools are in OpenAI's function-tool form, as a prompt file
gives them. Imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class ToolCall:
    """One tool call, as the model sent it."""

    name: str
    arguments: str  # the arguments' JSON text as it came (it may not parse: then the answer is not ok)
    call_id: str | None = None  # the provider's id for it, which the tool's result names (Chat, Responses, Messages)
    # Sent back with the call in the history, where the API asks for it (Gemini's thoughtSignature); never stored.
    signature: str | None = field(default=None, compare=False)

    def parsed_arguments(self) -> Any:
        """The arguments as JSON values; ValueError if they do not parse (an empty text reads as no arguments)."""
        return json.loads(self.arguments) if self.arguments.strip() else {}

    def stored(self) -> dict[str, str]:
        """As the `tool_calls` column keeps it: the name and the arguments' text, as sent."""
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Message:
    """One message of a conversation: a system or user message, an answer (text and any tool calls it made), or a
    tool's result (the call it answers, and the result's text)."""

    role: str  # 'system' | 'user' | 'assistant' | 'tool'
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant message's
    answers: ToolCall | None = None  # a tool message's: the call whose result it carries


@dataclass(frozen=True)
class Exchange:
    """What one request sends, whatever its API."""

    messages: tuple[Message, ...]
    tools: tuple[Mapping[str, Any], ...] = ()  # OpenAI's {"type": "function", "function": {name, description, ...}}
    tool_choice: str | Mapping[str, Any] | None = None  # 'auto' | 'required' | 'none' | {"type": "function", ...}
    schema: Mapping[str, Any] | None = None  # a JSON Schema the answer must follow (structured output)
    # The last message of the prefix to cache, by index, for an API that caches only where told (Anthropic's
    # cache_control); None: no breakpoint (the other APIs cache a repeated prefix by themselves).
    cache_through: int | None = None

    @property
    def plain(self) -> tuple[tuple[str, str], ...] | None:
        """The (role, content) pairs, where every message is plain text and nothing else is asked; else None."""
        if self.tools or self.tool_choice is not None or self.schema is not None or self.cache_through is not None:
            return None
        if any(m.tool_calls or m.answers or m.role not in ("system", "user", "assistant") for m in self.messages):
            return None
        return tuple((m.role, m.content) for m in self.messages)


# What a call sends: a prompt's text (one user message), its (role, content) messages, or an Exchange.
PromptInput = str | Sequence[tuple[str, str]] | Exchange


def exchange_of(prompt: PromptInput) -> Exchange:
    """Any prompt a call takes, as an Exchange."""
    if isinstance(prompt, Exchange):
        return prompt
    if isinstance(prompt, str):
        return Exchange((Message("user", prompt),))
    return Exchange(tuple(Message(role, content) for role, content in prompt))


def tool_name(tool: Mapping[str, Any]) -> str:
    """A tool's name, in OpenAI's function-tool form."""
    return str(tool["function"]["name"])


def stored_calls(calls: Sequence[ToolCall]) -> str:
    """The `tool_calls` column's JSON text: a list of {"name", "arguments"}, in the order they were sent."""
    return json.dumps([call.stored() for call in calls], ensure_ascii=False)
