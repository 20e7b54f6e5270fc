"""Prometheus metrics (prometheus-client): what the stored results say, per provider, model and mode.

One aggregate (`Metrics`) feeds both ways out: the live `/metrics` endpoint of `run_scheduled.py --metrics-port`,
which adds each result as it is stored, and the textfile of `--metrics-file`, written over the whole stored history
for node_exporter's textfile collector (both in exposition.py). Both therefore say the same thing in the same names
(docs/prometheus.md).

TTFT and latency are observed for successful requests only (a failure's time to its error is no latency), and every
request, failed or not, is counted in `benchmark_engine_requests_total` by outcome and error_type.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime
import math
import threading
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ..errors import StorageRejected
from ..measurement import Measurement
from ..redaction import scrub

if TYPE_CHECKING:
    from ..storage import Storage

PREFIX = "benchmark_engine"
# Seconds, doubling from 10 ms to 81.92 s: the boundaries OpenTelemetry's GenAI conventions prescribe for
# gen_ai.client.operation.duration and gen_ai.server.time_to_first_token. They resolve a fast TTFT (tens of ms) as
# well as a reasoning model's minute-long answer (the default request timeout is 60 s) with 14 buckets, and keep the
# histograms comparable with any GenAI instrumentation that follows the conventions.
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# Output tokens per second after the first: from a slow CPU-served model (a few) to specialised hardware (Groq,
# Cerebras: well over 1,000); about two buckets per doubling where hosted APIs sit (30 to 300).
# A request's median gap between output events (inter-token latency), in seconds: OpenTelemetry's GenAI boundaries for
# gen_ai.server.time_per_output_token (10 ms to 2.5 s), and 1, 2.5 and 5 ms below them for servers that decode faster.
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
DECODE_BUCKETS = (5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 4000.0)
# What the history read asks for: eleven narrow columns of benchmark_results, two of runs (never the answer text).
RESULT_COLUMNS = ("run_id", "provider", "model", "success", "error_type", "ttft_ms", "latency_ms",
                  "tokens_per_second", "cost_usd", "created_at", "itl_p50_ms")
ALERT_COLUMNS = ("rule", "provider", "model", "metric")


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; the last is +Inf
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1  # le is inclusive: a value on a bound counts in it
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        from prometheus_client.utils import floatToGoString

        running, out = 0, []
        for bound, count in zip((*map(floatToGoString, self.buckets), "+Inf"), self.counts):
            running += count
            out.append((bound, running))
        return out


@dataclass
class _Series:
    """What one provider, model and mode have measured."""

    ttft: _Histogram = field(default_factory=lambda: _Histogram(SECONDS_BUCKETS))
    latency: _Histogram = field(default_factory=lambda: _Histogram(SECONDS_BUCKETS))
    decode: _Histogram = field(default_factory=lambda: _Histogram(DECODE_BUCKETS))
    itl: _Histogram = field(default_factory=lambda: _Histogram(ITL_BUCKETS))
    requests: dict[tuple[str, str], int] = field(default_factory=lambda: {("success", ""): 0})
    last_cost: tuple[datetime, float] | None = None
    last_success: datetime | None = None


@dataclass(frozen=True)
class FiringAlert:
    """A row of the alerts table in state 'firing' (its columns as the shared contract names them)."""

    rule: str
    provider: str | None
    model: str | None
    metric: str | None


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


class Metrics:
    """The aggregate, safe to add to from one thread while a scrape reads it from another; a prometheus-client
    collector (`collect`) of its current state."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._alerts: tuple[FiringAlert, ...] = ()
        self._lock = threading.Lock()

    def declare(self, provider: str, model: str, mode: str) -> None:
        """A series that exists before its first result, so a scrape sees it at zero (not absent) from the start."""
        with self._lock:
            self._one((provider, model, mode))

    def _one(self, key: tuple[str, str, str]) -> _Series:
        series = self._series.get(key)  # not setdefault: that would build a _Series for every result
        if series is None:
            series = self._series[key] = _Series()
        return series

    def add(self, provider: str, model: str, mode: str, success: bool, error_type: str | None, ttft_ms: Any,
            latency_ms: Any, tokens_per_second: Any, cost_usd: Any, created_at: Any, itl_p50_ms: Any = None) -> None:
        """One stored result (values as any backend returns them: timestamps may be text, numbers Decimal)."""
        with self._lock:
            series = self._one((provider, model, mode))
            outcome = ("success", "") if success else ("failure", error_type or "unknown")
            series.requests[outcome] = series.requests.get(outcome, 0) + 1
            cost = _finite(cost_usd)
            moment = _moment(created_at) if success or cost is not None else None
            if cost is not None:
                if series.last_cost is None or moment >= series.last_cost[0]:
                    series.last_cost = (moment, cost)
            if not success:
                return
            if series.last_success is None or moment > series.last_success:
                series.last_success = moment
            for histogram, value, scale in ((series.ttft, ttft_ms, 1000), (series.latency, latency_ms, 1000),
                                            (series.decode, tokens_per_second, 1), (series.itl, itl_p50_ms, 1000)):
                number = _finite(value)
                if number is not None:
                    histogram.observe(number / scale)

    def add_measurement(self, created_at: datetime, m: Measurement, mode: str) -> None:
        self.add(m.provider, m.model, mode, m.success, m.error_type, m.ttft_ms, m.latency_ms, m.tokens_per_second,
                 m.cost_usd, created_at, m.itl_p50_ms)

    def set_alerts(self, alerts: Iterable[FiringAlert]) -> None:
        with self._lock:
            self._alerts = tuple(alerts)

    def collect(self) -> Iterator[Any]:
        """The metric families, as prometheus-client's registry asks a custom collector for them."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        labels = ["provider", "model", "mode"]
        with self._lock:
            # Label values are an output too: scrubbed once per series, not once per result.
            series = [(tuple(scrub(part) for part in key), one) for key, one in sorted(self._series.items())]
            alerts = self._alerts
            families = {
                "ttft": HistogramMetricFamily(
                    f"{PREFIX}_ttft_seconds", "Time to first token of successful requests", labels=labels),
                "latency": HistogramMetricFamily(
                    f"{PREFIX}_latency_seconds", "Start to last token of successful requests", labels=labels),
                "decode": HistogramMetricFamily(
                    f"{PREFIX}_decode_tokens_per_second",
                    "Decode speed after the first token: (output tokens - 1) / (latency - TTFT)", labels=labels),
                "itl": HistogramMetricFamily(
                    f"{PREFIX}_itl_p50_seconds", "Each successful streamed request's median gap between output "
                    "events (inter-token latency)", labels=labels),
            }
            requests = CounterMetricFamily(f"{PREFIX}_requests", "Requests measured, by outcome and error_type",
                                           labels=[*labels, "outcome", "error_type"])
            cost = GaugeMetricFamily(f"{PREFIX}_last_cost_usd", "Cost of the newest request with a cost, in USD",
                                     labels=labels)
            success = GaugeMetricFamily(f"{PREFIX}_last_success_timestamp_seconds",
                                        "When the newest successful request was stored (Unix time)", labels=labels)
            for key, one in series:
                for name, histogram in (("ttft", one.ttft), ("latency", one.latency), ("decode", one.decode),
                                        ("itl", one.itl)):
                    families[name].add_metric(list(key), histogram.cumulative(), histogram.total)
                for (outcome, error_type), count in sorted(one.requests.items()):
                    requests.add_metric([*key, outcome, error_type], count)
                if one.last_cost is not None:
                    cost.add_metric(list(key), one.last_cost[1])
                if one.last_success is not None:
                    success.add_metric(list(key), one.last_success.timestamp())
        firing = GaugeMetricFamily(f"{PREFIX}_alert_firing", "1 for each alert firing now (the alerts table)",
                                   labels=["rule", "provider", "model", "metric"])
        for alert in alerts:
            firing.add_metric([scrub(alert.rule), scrub(alert.provider or ""), scrub(alert.model or ""),
                               scrub(alert.metric or "")], 1)
        yield from (*families.values(), requests, cost, success, firing)

    def registry(self) -> Any:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return registry


# ---- reading the stored history -----------------------------------------------------------------------------------

def firing_alerts(storage: "Storage") -> list[FiringAlert]:
    """The alerts firing now, from the alerts table; [] where the table is not there (a database from before it)."""
    try:
        rows = storage.read_rows("alerts", ALERT_COLUMNS, {"state": "firing"})
    except StorageRejected:
        return []
    return sorted((FiringAlert(*row) for row in rows), key=lambda a: tuple(v or "" for v in (
        a.rule, a.provider, a.model, a.metric)))


def history_metrics(storage: "Storage") -> Metrics:
    """The metrics over every stored result, read narrowly (RESULT_COLUMNS and each run's mode), with the firing
    alerts."""
    modes = {str(run_id): mode or "live" for run_id, mode in storage.read_rows("runs", ("id", "mode"))}
    metrics = Metrics()
    for run_id, *values in storage.read_rows("benchmark_results", RESULT_COLUMNS):
        provider, model, success, *rest = values
        metrics.add(provider, model, modes.get(str(run_id), "live"), bool(success), *rest)
    metrics.set_alerts(firing_alerts(storage))
    return metrics
