"""Service-level objectives: the targets a team holds a provider and model to, and whether a request met them.

Per request, a success meets the targets when its TTFT and latency are at most theirs and its decode speed at least
`tokens_per_second`; a target left unset is not checked. `success_rate` and `percentile` are judged over a window of
requests (by the alert rules and the report), never per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping, Protocol

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


class _Row(Protocol):
    """What is read of report.Row here (a Protocol: this module imports nothing of storage or report)."""

    @property
    def result(self): ...  # StoredResult: .measurement, .created_at


@dataclass(frozen=True)
class Attainment:
    """One provider and model against its per-request targets, over a selection of results."""

    requests: int
    met: int  # successes within every per-request target
    wall_hours: float | None  # the selection's wall time (see wall_hours); None when it has none

    @property
    def attainment(self) -> float | None:
        """The fraction of requests (failures included) that met every per-request target."""
        return self.met / self.requests if self.requests else None

    @property
    def goodput_per_hour(self) -> float | None:
        """Requests that met every target per hour of the selection's wall time (vLLM's goodput, for a probe)."""
        return self.met / self.wall_hours if self.wall_hours else None


def wall_hours(rows: Iterable[_Row]) -> float | None:
    """The selection's wall time in hours: from the earliest request's start (its result's time when the start is
    not stored) to the latest result's time, over every provider and model in it; None for an instant."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for row in rows:
        starts.append(row.result.measurement.started_at or row.result.created_at)
        ends.append(row.result.created_at)
    if not starts:
        return None
    seconds = (max(ends) - min(starts)).total_seconds()
    return seconds / 3600 if seconds > 0 else None


def attainment_by_model(rows: Iterable[_Row], slo: SloConfig) -> dict[tuple[str, str], Attainment]:
    """Per provider and model with a per-request target: how many requests met every one of them."""
    rows = list(rows)
    hours = wall_hours(rows)
    counts: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        m = row.result.measurement
        targets = slo.for_model(m.provider, m.model)
        if not targets.per_request:
            continue
        count = counts.setdefault((m.provider, m.model), [0, 0])
        count[0] += 1
        count[1] += targets.met_by(m)
    return {pair: Attainment(requests, met, hours) for pair, (requests, met) in counts.items()}
