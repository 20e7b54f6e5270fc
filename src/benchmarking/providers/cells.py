"""A cell of a plan (one provider, model and prompt) and how one request of it is prepared and measured: what the
sequential runner and the load executors share, below both."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from ..deferred import finishing_now
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


def measure_cell(cell: Cell, cache_mode: str) -> Measurement:
    """One timed request of a cell, with the prompt cache busted, warmed first, or left alone."""
    prompt = cell.prompt.with_marker(cache_marker()) if cache_mode == "bust" else cell.prompt
    if cache_mode == "warm":  # the same prompt once, untimed and one token long, so that the timed one finds it cached
        with finishing_now():  # nothing of it is kept, nor left for later
            cell.call_fn(prompt.messages, cell.model, replace(cell.settings, max_tokens=1, retries=0))
    return cell.call_fn(prompt.messages, cell.model, cell.settings)
