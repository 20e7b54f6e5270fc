"""Token counts from the server's own tokenizer, for servers that send no usage when streaming.

Asked for only by a benchmark.toml endpoint with `token_count = "tokenize"`, after the timed request. Three server
APIs are known, all beside /v1 rather than under it:
- vLLM: `POST /tokenize` with a prompt, or with messages to apply the model's chat template; answers `count`.
- llama.cpp's server: `POST /tokenize` with `content`, answering `tokens`; `POST /apply-template` gives the prompt as
  the chat template makes it.
- llama-cpp-python: `POST /extras/tokenize/count` with `input`, answering `count`; it has no chat-template endpoint,
  so the prompt's count would leave the template's tokens out: input tokens stay empty there.
Never a local estimate: if the server cannot count, the counts stay empty, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .answer import Answer
from .numbers import whole_count


@dataclass(frozen=True)
class ServerCount:
    """Tokens as the server's tokenizer counted them; `problem` is a warning for what it could not count."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    problem: str | None = None


def server_root(base_url: str) -> str:
    """http://host:8000/v1 -> http://host:8000: where the tokenizer endpoints are."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _count(body: Any) -> int | None:
    if not isinstance(body, dict):
        return None
    if "count" in body:
        return whole_count(body["count"])
    if isinstance(body.get("tokens"), list):
        return whole_count(len(body["tokens"]))
    return None


def _generated(text_count: int | None, empty_count: int | None) -> int | None:
    """The tokens of a text without those a tokenizer adds to every text (a beginning-of-sequence token): its count
    minus the count of an empty text. llama-cpp-python's count always adds them; others are asked not to, and the
    difference holds if one adds them anyway."""
    if text_count is None:
        return None
    return whole_count(text_count - (empty_count or 0))


def count_tokens(
    http: Any, base_url: str, headers: dict[str, str], timeout_s: float, model: str, messages: list[dict[str, str]],
    answer: Answer,
) -> ServerCount:
    """The prompt's and the answer's tokens, counted by the server."""
    root = server_root(base_url)
    if answer.text_truncated or answer.reasoning_truncated:
        return ServerCount(problem="the answer was longer than what is kept of it: its tokens cannot be counted, "
                                   "left empty")
    output_text = answer.reasoning_text + answer.text

    def post(path: str, payload: dict[str, Any]) -> Any:
        response = http.post(root + path, json=payload, headers=headers, timeout=timeout_s)
        if response.status_code >= 400:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def tokenize(text: str) -> Any:
        return post("/tokenize", {"model": model, "prompt": text, "content": text, "add_special_tokens": False,
                                  "add_special": False})

    try:
        first = tokenize(output_text)
        if _count(first) is None:
            extras = post("/extras/tokenize/count", {"input": output_text})
            if _count(extras) is None:
                return ServerCount(problem=f"{root} counted no tokens (POST /tokenize and /extras/tokenize/count): "
                                           "left empty")
            output_tokens = _generated(_count(extras), _count(post("/extras/tokenize/count", {"input": ""})))
            return ServerCount(None, output_tokens, "llama-cpp-python cannot apply the chat template: input tokens "
                                                    "left empty")
        output_tokens = _generated(_count(first), _count(tokenize("")))
        if "count" in first:  # vLLM: the chat template is applied to the messages
            prompt_body = post("/tokenize", {"model": model, "messages": messages, "add_generation_prompt": True})
        else:  # llama.cpp's server: the template first, then its tokens with the special ones
            templated = post("/apply-template", {"messages": messages})
            text = templated.get("prompt") if isinstance(templated, dict) else None
            prompt_body = post("/tokenize", {"content": text, "add_special": True}) if isinstance(text, str) else None
        counted = _count(prompt_body) is not None
        problem = None if counted else f"{root} did not count the prompt: input tokens left empty"
        return ServerCount(_count(prompt_body), output_tokens, problem)
    except Exception as exc:  # the measurement stands without counts; what went wrong is said once
        return ServerCount(problem=f"counting tokens at {root} failed ({type(exc).__name__}): left empty")
