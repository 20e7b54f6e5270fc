"""What an API dialect is: the request body one API takes, and how its recorded events read into an Answer.

A dialect is a module (chat_completions is the first); its module-level names are what Dialect lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ContextManager, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from ...config import ProviderSettings
    from ..answer import Answer, Tokens
    from ..failures import Failure
    from ..sse import SseEvent
    from ..wire import WireRecord

# What a call sends: a prompt's text (one user message), or its (role, content) messages.
PromptInput = str | Sequence[tuple[str, str]]


class EventReading(Protocol):
    """One streamed answer's events, read in order as they are split from the wire."""

    ending: Mapping[str, Any] | None  # how the events ended, once they did: nothing after it is read
    events: int  # events seen so far

    def read(self, events: list[SseEvent]) -> None: ...

    def answer(self) -> Answer: ...


class Dialect(Protocol):
    """The names a dialect module defines."""

    REHEARSAL_STREAM: bytes  # a canned streamed answer, to run an SDK's request path once offline

    def EventReader(self) -> EventReading: ...  # noqa: N802  (a class in the module)

    def request(self, model: str, prompt: PromptInput, max_tokens: int, stream: bool, usage_request: str
                ) -> dict[str, Any]: ...

    def open_stream(self, sdk: Any, request: Mapping[str, Any]) -> ContextManager[Any]: ...

    def read_body(self, record: WireRecord, body: Mapping[str, Any]) -> Answer: ...

    def judge(self, record: WireRecord | None, answer: Answer, error: BaseException | None,
              settings: ProviderSettings, model: str, endpoint: str) -> Failure | None: ...

    def tokens(self, usage: Mapping[str, Any] | None, problems: list[str]) -> Tokens: ...
