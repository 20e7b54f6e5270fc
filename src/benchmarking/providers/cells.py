"""A cell of a plan (one provider, model and prompt) and how one request of it is prepared and measured: what the
sequential runner and the load executors share, below both."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from ..agent_workloads import judged
from ..deferred import finishing_now
from ..dialogue import Exchange, Message
from ..expectations import Expectation
from ..measurement import Measurement
from ..pricing import Price
from ..settings.model import ProviderSettings
from ..workloads import Prompt, cache_marker
from .client import PromptInput, prepare_client
from .registry import provider_module, provider_wire

# A call function takes the prompt (text, or (role, content) messages), the model and the provider's settings.
CallFn = Callable[[PromptInput, str, ProviderSettings], Measurement]


@dataclass(frozen=True)
class Cell:
    """One provider, model and prompt: what one request of each round measures."""

    provider: str
    call_fn: CallFn
    model: str
    settings: ProviderSettings  # with max_tokens fitted to the prompt
    prompt: Prompt


def price_of(cell: Cell) -> Price | None:
    return cell.settings.price or provider_module(cell.provider).PRICING.get(cell.model)


def prepare_cell(cell: Cell) -> None:
    """Build, rehearse and warm the cell's client before any clock starts (inside kept_clients: kept for later)."""
    prepare_client(provider_wire(cell.provider, cell.settings), cell.settings)


def sent_output_cap(cell: Cell, max_tokens: int) -> int:
    """The output cap a request goes with: raised to the least its API takes (the Responses API's 16)."""
    return max(max_tokens, getattr(provider_wire(cell.provider, cell.settings).dialect, "MIN_OUTPUT_TOKENS", 1))


def sent(prompt: Prompt, messages: tuple[Message, ...], cache_through: int | None = None) -> PromptInput:
    """What a call sends for a prompt's messages: an Exchange with its tools and schema, or the plain (role, content)
    pairs where nothing else is asked (what every dialect has always taken)."""
    exchange = Exchange(messages, tuple(prompt.tools), prompt.tool_choice, prompt.schema, cache_through)
    plain = exchange.plain
    return plain if plain is not None else exchange


def with_judgement(measurement: Measurement, prompt: Prompt, *, first: bool = True, final: bool = True,
                   expect: Expectation | None = None) -> Measurement:
    """A request's row with answer_ok and json_valid judged (agent_workloads.judged), and tool_calls "[]" where tools
    were offered and none was called. `first`: the entry's first request (expect_tool is judged there); `final`: the
    last of its user turn (its text is judged there: `expect`, else the prompt's, and the schema)."""
    expect = (expect or prompt.expect) if final else None
    expect_tool = prompt.expect_tool if first else None
    schema = prompt.schema if final else None
    if not measurement.success:  # no answer: it met none of what was asked of it
        judging = expect is not None or expect_tool is not None or schema is not None
        return replace(measurement, answer_ok=False if judging else None)
    # Calls cut by what is kept (too many, arguments too long) are not the model's to answer for: left unjudged
    cut = measurement.response_truncated and bool(measurement.calls)
    judgement = judged(measurement.response_text, () if cut else measurement.calls, expect=expect,
                       expect_tool=None if cut else expect_tool, schema=schema)
    tool_calls = measurement.tool_calls if measurement.tool_calls is not None or not prompt.tools else "[]"
    return replace(measurement, answer_ok=judgement.answer_ok, json_valid=judgement.json_valid,
                   tool_ok=judgement.tool_ok, tool_calls=tool_calls)


def measure_cell(cell: Cell, cache_mode: str) -> Measurement:
    """One timed request of a cell (a single-request entry), with the prompt cache busted, warmed first, or left
    alone. Not judged here: the caller judges the whole measurement (with_judgement), after any step left for later."""
    prompt = cell.prompt.with_marker(cache_marker()) if cache_mode == "bust" else cell.prompt
    request = sent(prompt, tuple(Message(role, content) for role, content in prompt.messages))
    if cache_mode == "warm":  # the same prompt once, untimed and one token long, so that the timed one finds it cached
        with finishing_now():  # nothing of it is kept, nor left for later
            cell.call_fn(request, cell.model, replace(cell.settings, max_tokens=1, retries=0))
    return cell.call_fn(request, cell.model, cell.settings)
