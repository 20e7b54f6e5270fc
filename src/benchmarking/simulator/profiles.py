"""How each simulated model answers: its timing, token counts, capacity and the faults it can play."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

FAULTS = (
    "auth", "not_found", "rate_limit", "server", "overloaded", "hang", "malformed", "cut", "no_usage", "flood",
    "long_line", "stream_error", "failed", "refusal",
)


@dataclass(frozen=True)
class ModelProfile:
    """How the simulator answers for one model; times in milliseconds from the request's arrival."""

    ttft_ms: float = 50.0
    itl_ms: float = 5.0
    output_tokens: int = 20
    tokens_per_chunk: int = 1
    reasoning_tokens: int = 0
    input_tokens: int | None = None  # None: counted from the prompt, a word or punctuation mark a token
    cached_tokens: int = 0  # reported as cached whatever the prompt (a counted prompt uses the prefix cache instead)
    # reported as written to the cache (Anthropic's cache_creation_input_tokens) with a fixed input_tokens; a counted
    # prompt that asks for caching (cache_control) writes what was not read
    cache_write_tokens: int = 0
    prefill_tokens_per_s: float | None = None  # None: TTFT does not grow with the prompt
    shutdown_date: str | None = None  # announced in OpenAI's GET /models (`shutdown_date`, YYYY-MM-DD)
    # Requests the model serves at once; more wait their turn (a saturated server), or get 429 if over_capacity_429
    # (a provider's concurrency limit). None: no limit.
    capacity: int | None = None
    over_capacity_429: bool = False
    cache_window_s: float = 300.0  # how long a prompt's prefix stays cached
    fault: str | None = None
    fail_first: int = 0
    retry_after_ms: int = 50
    hang_s: float = 30.0
    cut_after_tokens: int = 3  # faults "cut", "stream_error", "failed" and "refusal" play after this many tokens
    cost_usd: Decimal = Decimal("0.000042")
    # fault "flood": an answer of this many bytes of content, in events of 64 KiB, as fast as the socket takes them;
    # fault "long_line": one event whose data line is this long (a client must not hold either whole)
    flood_bytes: int = 300_000_000

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; known: {', '.join(FAULTS)}")
        if not 0 <= self.reasoning_tokens <= self.output_tokens:
            raise ValueError("reasoning_tokens must be between 0 and output_tokens")
        if self.tokens_per_chunk < 1:
            raise ValueError("tokens_per_chunk must be 1 or more")


# What `python main.py --simulate` serves for the default models: distinct, realistic, and quick.
# Prompts are counted (a word or a punctuation mark a token, as the tier builder sizes them) and prefilled at a rate of
# the model's own, so TTFT grows with the prompt, and a repeated prefix is served from the cache.
DEFAULT_PROFILES: dict[str, ModelProfile] = {
    "gpt-6-luna": ModelProfile(ttft_ms=160, itl_ms=8, output_tokens=48, prefill_tokens_per_s=30_000),
    "gpt-4o-mini": ModelProfile(ttft_ms=180, itl_ms=12, output_tokens=48, prefill_tokens_per_s=20_000,
                                shutdown_date="2027-01-14"),
    "openai/gpt-oss-20b": ModelProfile(
        ttft_ms=60, itl_ms=2, output_tokens=64, tokens_per_chunk=2, reasoning_tokens=16,
        prefill_tokens_per_s=100_000,
    ),
    "openai/gpt-oss-120b": ModelProfile(
        ttft_ms=150, itl_ms=5, output_tokens=64, tokens_per_chunk=2, reasoning_tokens=16,
        prefill_tokens_per_s=50_000,
    ),
    "openai/gpt-6-luna": ModelProfile(ttft_ms=230, itl_ms=8, output_tokens=48, prefill_tokens_per_s=30_000),
    "openai/gpt-4o-mini": ModelProfile(ttft_ms=250, itl_ms=12, output_tokens=48, prefill_tokens_per_s=20_000),
    # The native APIs' defaults: Anthropic streams a token an event; Gemini sends several tokens a chunk.
    "claude-haiku-5-5": ModelProfile(ttft_ms=120, itl_ms=6, output_tokens=48, prefill_tokens_per_s=40_000),
    "gemini-3.5-flash-lite": ModelProfile(ttft_ms=90, itl_ms=12, output_tokens=60, tokens_per_chunk=6,
                                          prefill_tokens_per_s=60_000),
}
DEFAULT_PROFILE = ModelProfile(ttft_ms=100, itl_ms=5, output_tokens=32)
