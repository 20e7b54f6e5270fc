"""What an answer said, whatever its API: when its first and last tokens came, its text, usage, how it ended, any
error; and the token counts its usage gives. A dialect (dialects/) reads them from the recorded wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping

from ..dialogue import ToolCall
from ..measurement import RESPONSE_TEXT_CAP_BYTES

if TYPE_CHECKING:
    from .wire import WireRecord

# Characters of text, and of reasoning, kept: enough to fill the stored text's cap (a character is 1 to 4 bytes).
KEPT_CHARS = RESPONSE_TEXT_CAP_BYTES
JOIN_PARTS = 1024  # kept pieces of text are joined into one this often
# A name the provider gives (an id, a finish_reason, an upstream provider) is kept up to this many characters.
MAX_NAME_CHARS = 256


@dataclass(frozen=True)
class Answer:
    """One answer, read from its bytes; times are time.perf_counter() seconds, None where nothing came."""

    first_output_at: float | None = None  # first content, reasoning, refusal or tool-call delta
    first_answer_at: float | None = None  # first content, refusal or tool-call delta (not reasoning)
    last_output_at: float | None = None
    output_events: int = 0
    text: str = ""  # the visible answer: content, and a refusal's text
    reasoning_text: str = ""  # kept only to be counted by a server's tokenizer; not stored
    reasoning_streamed: bool = False
    usage: Mapping[str, Any] | None = None
    response_id: str | None = None
    finish_reason: str | None = None
    done: bool = False  # the stream's closing `data: [DONE]` came
    upstream_provider: str | None = None  # OpenRouter: the provider that served the request
    error: Mapping[str, Any] | None = None  # an error the provider put inside the answer (HTTP 200)
    plain_json: bool = False  # a stream was asked for and a plain JSON body came
    unreadable: str | None = None  # the first event (or the plain body) that is not a JSON object, where it broke off
    text_truncated: bool = False  # the text went past what is kept (KEPT_CHARS)
    reasoning_truncated: bool = False  # so did the reasoning
    too_large: str | None = None  # what was too large to read (an event, a plain body), where the answer broke off
    tool_calls: tuple[ToolCall, ...] = ()  # the tool calls the answer made, in order, arguments whole
    tool_args_at: float | None = None  # when the last tool call's arguments were complete (its last piece came)
    tool_calls_truncated: bool = False  # the calls' arguments went past what is kept (tool_calls.KEPT_ARGUMENT_CHARS)

    @property
    def has_output(self) -> bool:
        return self.output_events > 0

    @property
    def complete(self) -> bool:
        """The model said it finished (a finish_reason): `[DONE]` alone ends a stream, it does not finish the answer
        (a llama-cpp-python server interrupting a generation sends a token or two and `[DONE]`)."""
        return self.finish_reason is not None


@dataclass(frozen=True)
class Tokens:
    """The counts an answer's usage gives (None where it gives none, or nonsense), and the cost it reports."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None  # read from the prompt cache, part of input_tokens
    cache_write_tokens: int | None = None  # written to the prompt cache, part of input_tokens (Anthropic)
    cache_write_1h_tokens: int | None = None  # the part of those writes kept for an hour (billed higher)
    reasoning_tokens: int | None = None
    reported_cost_usd: Decimal | None = None


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def name_of(value: Any) -> str:
    """A name as sent, or a short form of what came instead of one (a number, a list nested deep)."""
    try:
        text = value if isinstance(value, str) else str(value)
    except (RecursionError, ValueError):  # nested too deep; an int too long to print
        text = f"a {type(value).__name__}"
    return text[:MAX_NAME_CHARS]


def request_id_of(record: WireRecord | None, answer: Answer) -> str | None:
    """The request's id: the response headers' (x-request-id, request-id), else the one in the answer."""
    headers = record.headers if record is not None else {}
    return headers.get("x-request-id") or headers.get("request-id") or answer.response_id
