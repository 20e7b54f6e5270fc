"""What an API dialect is: the request body one API takes, and how its recorded events read into an Answer.

A dialect is one module here (chat_completions is the first), whose module-level names are what Dialect lists, plus
its recorded fixtures in tests/fixtures/, and an entry in DIALECTS; a provider speaks it by naming it in its Wire.
common.py holds what the dialects share (the text kept as it streams, errors inside an HTTP 200, the judging).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Mapping, Protocol

from ...dialogue import PromptInput  # noqa: F401 (what a call sends: text, (role, content) pairs, an Exchange)

if TYPE_CHECKING:
    from ...settings.model import ProviderSettings
    from ..answer import Answer, Tokens
    from ..failures import Failure
    from ..sse import SseEvent
    from ..wire import WireRecord

# Each API, by the name rows store in `api` (and benchmark.toml's `api = ...` takes), and the module here that speaks
# it, imported when first spoken. settings/apis.py lists the same names for the settings to check (a test keeps them
# equal).
DIALECTS = {
    "chat_completions": "chat_completions",
    "responses": "responses",
    "messages": "messages",
    "generate_content": "generate_content",
}



class EventReading(Protocol):
    """One streamed answer's events, read in order as they are split from the wire."""

    ending: Mapping[str, Any] | None  # how the events ended, once they did: nothing after it is read
    events: int  # events seen so far

    def read(self, events: list[SseEvent]) -> None: ...

    def answer(self) -> Answer: ...


class Dialect(Protocol):
    """The names a dialect module defines."""

    API: str  # its name, stored in each row's `api` column: 'chat_completions', 'messages', ...
    REHEARSAL_STREAM: bytes  # a canned streamed answer, to run an SDK's request path once offline

    EventReader: Callable[[], EventReading]  # a class: one per streamed answer

    def auth_headers(self, api_key: str) -> dict[str, str]: ...  # the key, as this API's requests carry it

    def request(self, model: str, prompt: PromptInput, max_tokens: int, stream: bool, usage_request: str
                ) -> dict[str, Any]: ...

    def open_stream(self, sdk: Any, request: Mapping[str, Any]) -> ContextManager[Any]: ...

    def read_body(self, record: WireRecord, body: Mapping[str, Any]) -> Answer: ...

    def judge(self, record: WireRecord | None, answer: Answer, error: BaseException | None,
              settings: ProviderSettings, model: str, endpoint: str) -> Failure | None: ...

    def tokens(self, usage: Mapping[str, Any] | None, problems: list[str]) -> Tokens: ...


def dialect_named(api: str) -> Dialect:
    """The dialect module that speaks `api` (a key of DIALECTS)."""
    module: Dialect = importlib.import_module(f"{__name__}.{DIALECTS[api]}")  # type: ignore[assignment]
    return module
