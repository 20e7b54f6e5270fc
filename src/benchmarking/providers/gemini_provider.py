"""Google Gemini, through Google's `google-genai` SDK, in its own API (generate_content)."""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import Any

from ..settings.model import ProviderSettings
from ..measurement import Measurement
from .client import PromptInput, Wire, measure
from . import gemini_prices
from .dialects import generate_content
from .gemini_prices import DEFAULT_MODEL, PRICING

__all__ = ["DEFAULT_MODEL", "PRICING", "WIRE", "call_gemini"]


# The SDK warns on stderr of a value its enums do not know (a new finishReason): the answer's own bytes are what is
# read and stored (dialects/generate_content.py), so its parsing has nothing to say on the console.
warnings.filterwarnings("ignore", r".* is not a valid \w+$", UserWarning, r"google\.genai\.")
# Nor does its note, logged as it parses a chunk with a function call, that `.text` (which is not read) leaves it out.
logging.getLogger("google_genai.types").setLevel(logging.ERROR)


def build_client(sdk: Any, *, api_key: str, base_url: str, timeout: float, max_retries: int,
                 default_headers: dict[str, str] | None, http_client: Any) -> Any:
    """genai.Client on our HTTP client; one attempt only (max_retries is 0: the engine retries, counted)."""
    types = importlib.import_module("google.genai.types")
    return sdk.Client(api_key=api_key, http_options=types.HttpOptions(
        base_url=base_url, headers=default_headers, timeout=int(timeout * 1000), httpx_client=http_client,
        retry_options=types.HttpRetryOptions(attempts=max_retries + 1)))


def api_root_of(sdk_client: Any) -> str:
    """The API version the SDK chose (`/v1beta`, ...): the warm-up and `check` list models under it."""
    return "/" + sdk_client._api_client._http_options.api_version


WIRE = Wire(
    sdk_module="google.genai",
    client_class="Client",
    httpx_module="httpx",
    default_base_url="https://generativelanguage.googleapis.com",
    usage_request="none",
    dialect=generate_content,
    build_client=build_client,
    api_root_of=api_root_of,
    version_suffix=r"/v\d+(?:alpha|beta)?\d*",  # the SDK adds the version: .../v1beta/v1beta/models was a 404
)


def call_gemini(prompt: PromptInput, model: str, settings: ProviderSettings) -> Measurement:
    return measure("gemini", prompt, generate_content.bare_model(model), settings, wire=WIRE, pricing=PRICING,
                   pricing_file=gemini_prices.__file__)
