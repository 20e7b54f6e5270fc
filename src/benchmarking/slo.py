"""Service-level objectives: the targets a team holds a provider and model to, and whether a request met them.

Per request, a success meets the targets when its TTFT and latency are at most theirs and its decode speed at least
`tokens_per_second`; a target left unset is not checked. `success_rate` and `percentile` are judged over a window of
requests (by the alert rules and the report), never per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .measurement import Measurement


@dataclass(frozen=True)
class Targets:
    """One provider and model's objectives; None means not set."""

    ttft_ms: float | None = None
    latency_ms: float | None = None
    tokens_per_second: float | None = None  # a minimum
    success_rate: float | None = None  # 0..1, over a window
    percentile: int = 90  # which percentile of TTFT and latency a window is judged by

    @property
    def per_request(self) -> bool:
        """Whether any target is judged request by request (so that attainment and goodput mean something)."""
        return any(v is not None for v in (self.ttft_ms, self.latency_ms, self.tokens_per_second))

    def met_by(self, m: Measurement) -> bool:
        """A success within every per-request target; a failure never meets them."""
        if not m.success:
            return False
        if self.ttft_ms is not None and (m.ttft_ms is None or m.ttft_ms > self.ttft_ms):
            return False
        if self.latency_ms is not None and (m.latency_ms is None or m.latency_ms > self.latency_ms):
            return False
        if self.tokens_per_second is not None and (
            m.tokens_per_second is None or m.tokens_per_second < self.tokens_per_second
        ):
            return False
        return True


@dataclass(frozen=True)
class SloConfig:
    """`[slo]` defaults with `[slo."provider/model"]` overrides, as read from benchmark.toml."""

    defaults: Targets = Targets()
    # Keyed "provider/model"; each is complete: where its table left a key out, the default's value is filled in.
    overrides: Mapping[str, Targets] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return self.defaults != Targets() or bool(self.overrides)

    def for_model(self, provider: str, model: str) -> Targets:
        return self.overrides.get(f"{provider}/{model}", self.defaults)
