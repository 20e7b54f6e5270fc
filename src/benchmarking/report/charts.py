"""`report --plot`: one picture to read at a glance, as PNG or as a self-contained HTML page.

Four panels: latency and TTFT over time per provider (the scheduled runs' story), the latency distribution per
provider, and cost against latency. Below them, panels drawn only when the data has something to show: median TTFT
and latency by hour of day (UTC, when the rows span more than one hour of day), TTFT against input tokens (prefill:
runs at several input sizes), throughput against latency (load runs, one point per level), latency against achieved
requests/s (open-loop runs and traces, one point per arrival rate) and TTFT by turn (conversations). The HTML page embeds the same picture and the summary table; it loads nothing from the network.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
import html
from dataclasses import dataclass
import functools
import io
from pathlib import Path
from statistics import median
from typing import Any, Callable, Sequence
import warnings

from ..errors import ConfigError
from ..redaction import scrub
from ..safe_files import write_file
from .formats import summary_fields
from .load import LevelReport, by_concurrency
from .rate import RateReport, by_rate
from .selection import Row, window_text
from .statistics import PERCENTILES, Summary, rolling_median
from .turns import TurnFigures, by_turn

PLOT_SUFFIXES = (".png", ".html")


# ---- panels drawn only when the data has them ---------------------------------------------------------------------

@dataclass(frozen=True)
class Panel:
    """A chart below the four standard ones: its title, and how to draw it on a matplotlib Axes."""

    title: str
    draw: Callable[[Any], None]


@dataclass(frozen=True)
class LevelPoint:
    """One load level of one provider and model on the throughput-against-latency chart."""

    concurrency: int
    output_tokens_per_s: float | None  # None: a request did not report its output tokens
    requests_per_s: float
    latency_p50_ms: float
    latency_p90_ms: float | None
    error_rate: float


def throughput_latency_points(levels: Sequence[LevelReport]) -> dict[str, list[LevelPoint]]:
    """Per provider and model, a point per level in level order (a level with no latency p50 has none)."""
    series: dict[str, list[LevelPoint]] = {}
    for level in levels:
        p50 = level.latency_ms[50]
        if p50 is None or level.requests_per_s is None:
            continue
        series.setdefault(f"{level.provider} / {level.model}", []).append(LevelPoint(
            level.concurrency, level.output_tokens_per_s, level.requests_per_s, p50, level.latency_ms[90],
            level.error_rate))
    return series


def throughput_latency_panel(rows: Sequence[Row]) -> Panel | None:
    """Latency p50 (solid) and p90 (dashed) against throughput, a point per load level labelled with its concurrency."""
    series = throughput_latency_points(by_concurrency(rows))
    if not series:
        return None
    # Output tokens/s where every level has them; else (a server that sends no usage) requests/s.
    tokens = all((p.output_tokens_per_s or 0) > 0 for points in series.values() for p in points)
    unit = "output tokens/s" if tokens else "requests/s"

    def draw(ax: Any) -> None:
        for index, (label, points) in enumerate(sorted(series.items())):
            colour = f"C{index % 10}"
            xs = [p.output_tokens_per_s if tokens else p.requests_per_s for p in points]
            ax.plot(xs, [p.latency_p50_ms for p in points], marker="o", color=colour, label=f"{label} p50")
            p90 = [(x, p.latency_p90_ms) for x, p in zip(xs, points) if p.latency_p90_ms is not None]
            if p90:
                ax.plot(*zip(*p90), marker=".", linestyle="--", color=colour, alpha=0.6, label=f"{label} p90")
            for x, p in zip(xs, points):
                errors = f" ({p.error_rate:.0%} errors)" if p.error_rate else ""
                ax.annotate(f"{p.concurrency}{errors}", (x, p.latency_p50_ms), textcoords="offset points",
                            xytext=(-4, 6) if errors else (4, -10), ha="right" if errors else "left", fontsize=8,
                            color=colour)
        ax.set(xlabel=f"throughput ({unit}, the system's)", ylabel="latency (ms)")

    return Panel("Latency against throughput per load level (labels: requests in flight)", draw)


@dataclass(frozen=True)
class RatePoint:
    """One open-loop arrival rate of one provider and model on the rate chart."""

    request_rate: float  # asked (a trace's: its mean rate)
    achieved_requests_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float | None


def rate_latency_points(levels: Sequence[RateReport]) -> dict[str, list[RatePoint]]:
    """Per provider and model, a point per arrival rate in rate order (a rate with no achieved rate or latency p50,
    none)."""
    series: dict[str, list[RatePoint]] = {}
    for level in levels:
        p50, achieved = level.latency_ms[50], level.achieved_requests_per_s
        if p50 is None or achieved is None:
            continue
        series.setdefault(f"{level.provider} / {level.model}", []).append(
            RatePoint(level.request_rate, achieved, p50, level.latency_ms[99]))
    return series


def rate_latency_panel(rows: Sequence[Row]) -> Panel | None:
    """Latency p50 (solid) and p99 (dashed) against the achieved requests/s, a point per arrival rate labelled with
    the rate asked: where the achieved rate stops following the asked one, or latency climbs, the provider is full."""
    series = rate_latency_points(by_rate(rows))
    if not series:
        return None

    def draw(ax: Any) -> None:
        for index, (label, points) in enumerate(sorted(series.items())):
            colour = f"C{index % 10}"
            xs = [p.achieved_requests_per_s for p in points]
            ax.plot(xs, [p.latency_p50_ms for p in points], marker="o", color=colour, label=f"{label} p50")
            p99 = [(x, p.latency_p99_ms) for x, p in zip(xs, points) if p.latency_p99_ms is not None]
            if p99:
                ax.plot(*zip(*p99), marker=".", linestyle="--", color=colour, alpha=0.6, label=f"{label} p99")
            for x, p in zip(xs, points):
                ax.annotate(f"{p.request_rate:g}/s", (x, p.latency_p50_ms), textcoords="offset points",
                            xytext=(4, -10), fontsize=8, color=colour)
        ax.set(xlabel="achieved requests/s", ylabel="latency (ms)")

    return Panel("Latency against achieved requests/s per arrival rate (labels: the rate asked)", draw)


@dataclass(frozen=True)
class PrefillPoint:
    """One input size (a tier, or a prompt's token count) of one provider and model on the prefill chart."""

    input_tokens: float  # the median of the provider's counts; the tier's size where none was reported
    ttft_p50_ms: float
    requests: int
    input_tier: int | None


def prefill_points(rows: Sequence[Row]) -> dict[str, list[PrefillPoint]]:
    """Per provider and model, TTFT p50 at each distinct input size, smallest first.

    Requests made one at a time only (sequential, or a load level of 1): under load, queueing would be read as
    prefill. A size is a tier where the row has one, else its input token count; a point of one request is that
    request's TTFT.
    """
    groups: dict[tuple[str, str], dict[tuple[str, int], list]] = {}
    for row in rows:
        m = row.result.measurement
        if not m.success or m.ttft_ms is None or (m.concurrency or 1) != 1:
            continue
        size = ("tier", m.input_tier) if m.input_tier is not None else ("tokens", m.input_tokens)
        if size[1] is None:
            continue
        groups.setdefault((m.provider, m.model), {}).setdefault(size, []).append(m)  # type: ignore[arg-type]
    series: dict[str, list[PrefillPoint]] = {}
    for (provider, model), sizes in sorted(groups.items()):
        points = []
        for (_, size), measured in sizes.items():
            counts = [m.input_tokens for m in measured if m.input_tokens is not None]
            points.append(PrefillPoint(median(counts) if counts else size, median(m.ttft_ms for m in measured),
                                       len(measured), measured[0].input_tier))
        series[f"{provider} / {model}"] = sorted(points, key=lambda p: p.input_tokens)
    return series


def prefill_panel(rows: Sequence[Row]) -> Panel | None:
    """TTFT p50 against input tokens per provider and model: drawn where one has been measured at two sizes or more."""
    series = {label: points for label, points in prefill_points(rows).items() if len(points) > 1}
    if not series:
        return None
    spread = max(p.input_tokens for ps in series.values() for p in ps) / max(
        1.0, min(p.input_tokens for ps in series.values() for p in ps))

    def draw(ax: Any) -> None:
        for index, (label, points) in enumerate(series.items()):
            ax.plot([p.input_tokens for p in points], [p.ttft_p50_ms for p in points], marker="o",
                    color=f"C{index % 10}", label=label)
        if spread > 20:  # tiers like 100, 1k, 10k: spaced evenly on a log scale
            ax.set_xscale("log")
        ax.set(xlabel="input tokens (the provider's count)", ylabel="TTFT p50 (ms)")

    return Panel("Time to first token against input tokens (prefill), one request at a time", draw)


def turn_panel(rows: Sequence[Row]) -> Panel | None:
    """TTFT p50 (solid) and p90 (dashed) by turn of the stored conversations, per provider and model (turns.by_turn's
    figures): drawn where rows with a turn exist."""
    series: dict[str, list[TurnFigures]] = {}
    for figures in by_turn(rows):
        if figures.ttft_ms[50] is not None:
            series.setdefault(f"{figures.provider} / {figures.model}", []).append(figures)
    if not series:
        return None

    def draw(ax: Any) -> None:
        for index, (label, turns) in enumerate(series.items()):
            colour = f"C{index % 10}"
            ax.plot([f.turn for f in turns], [f.ttft_ms[50] for f in turns], marker="o", color=colour,
                    label=f"{label} p50")
            p90 = [(f.turn, f.ttft_ms[90]) for f in turns if f.ttft_ms[90] is not None]
            if p90:
                ax.plot(*zip(*p90), marker=".", linestyle="--", color=colour, alpha=0.6, label=f"{label} p90")
        ax.set(xlabel="turn of the conversation", ylabel="TTFT (ms)")
        ax.xaxis.get_major_locator().set_params(integer=True)

    return Panel("Time to first token by turn of the conversations (report --by turn)", draw)


def extra_panels(rows: Sequence[Row]) -> list[Panel]:
    """The panels this data has something to show in, in the order they are drawn."""
    optional = (prefill_panel(rows), throughput_latency_panel(rows), rate_latency_panel(rows), turn_panel(rows))
    return hour_of_day_panels(rows) + [panel for panel in optional if panel is not None]


def hour_of_day_panels(rows: Sequence[Row]) -> list[Panel]:
    """Median TTFT and latency per provider and model by hour of day (UTC): when is each fastest? Drawn when the rows
    span more than one hour of day."""
    if len({row.result.created_at.hour for row in rows}) < 2:
        return []
    medians: dict[str, dict[str, dict[int, float]]] = {"ttft_ms": {}, "latency_ms": {}}
    for metric, series in medians.items():
        hours: dict[str, dict[int, list[float]]] = {}
        for row in rows:
            m = row.result.measurement
            if m.success and (value := getattr(m, metric)) is not None:
                by_hour = hours.setdefault(f"{m.provider} / {m.model}", {})
                by_hour.setdefault(row.result.created_at.hour, []).append(value)
        for label, values in hours.items():
            series[label] = {hour: median(values[hour]) for hour in sorted(values)}

    def drawer(metric: str, name: str) -> Callable[[Any], None]:
        def draw(ax: Any) -> None:
            for index, (label, by_hour) in enumerate(sorted(medians[metric].items())):
                ax.plot(list(by_hour), list(by_hour.values()), marker="o", markersize=4, linewidth=1,
                        color=f"C{index % 10}", label=label)
            ax.set(xlabel="hour of day (UTC)", ylabel=f"{name} (ms)", xlim=(-0.5, 23.5), xticks=range(0, 24, 2))
        return draw

    return [Panel(f"Median {name} by hour of day (UTC)", drawer(metric, name))
            for metric, name in (("ttft_ms", "TTFT"), ("latency_ms", "latency"))]


def _over_time(ax, points: list[tuple[datetime, float]], colour: str, label: str, window: timedelta | None) -> None:
    """Every request as a point joined by a line; with a window, faint points under the rolling median's line."""
    if window is None:
        ax.plot(*zip(*points), marker="o", markersize=3, linewidth=1, color=colour, label=label)
        return
    ax.scatter(*zip(*points), s=6, alpha=0.25, color=colour)
    rolled = rolling_median([(t.timestamp(), v) for t, v in points], window.total_seconds())
    ax.plot([t for t, _ in points], [v for _, v in rolled], linewidth=1.5, color=colour, label=label)


def _plain_text(draw: Callable[..., bytes]) -> Callable[..., bytes]:
    """Draw with every text taken as it is: names come from the database, and matplotlib would read `$...$` in one
    as mathtext (a stored `$\\frac{a}{$` broke every chart), and warn on stderr of a control character that has no
    glyph (it is drawn as a box). Only this figure: the process's settings stay."""

    @functools.wraps(draw)
    def drawn(*args: Any, **kwargs: Any) -> bytes:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from", category=UserWarning)
            return draw(*args, **kwargs)

    return drawn


@_plain_text
def _figure(
    rows: Sequence[Row], title: str, extras: Sequence[Panel] = (), window: timedelta | None = None
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt

    series: dict[str, list] = {}
    for row in rows:
        m = row.result.measurement
        series.setdefault(f"{m.provider} / {m.model}", []).append((row.result.created_at, m))
    extra_rows = -(-len(extras) // 2)
    figure, axes = plt.subplots(2 + extra_rows, 2, figsize=(14, 4.5 * (2 + extra_rows)), constrained_layout=True,
                                squeeze=False)
    (latency_ax, ttft_ax), (box_ax, cost_ax) = axes[:2]
    extra_axes = list(axes[2:].flat)
    for panel, ax in zip(extras, extra_axes):
        panel.draw(ax)
        ax.set_title(panel.title)
    for ax in extra_axes[len(extras):]:
        ax.set_visible(False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels, distributions = [], []
    for index, (label, points) in enumerate(sorted(series.items())):
        colour = colours[index % len(colours)]
        ok = [(t, m) for t, m in points if m.success]
        latency = [(t, m.latency_ms) for t, m in ok if m.latency_ms is not None]
        ttft = [(t, m.ttft_ms) for t, m in ok if m.ttft_ms is not None]
        if latency:
            _over_time(latency_ax, latency, colour, label, window)
            labels.append(label)
            distributions.append([v for _, v in latency])
        if ttft:
            _over_time(ttft_ax, ttft, colour, label, window)
        failures = [t for t, m in points if not m.success]
        if failures:
            latency_ax.scatter(failures, [0] * len(failures), marker="x", color=colour, s=30)
        costed = [(m.latency_ms, float(m.cost_usd)) for _, m in ok if m.cost_usd is not None and m.latency_ms]
        if costed:
            cost_ax.scatter(*zip(*costed), s=18, alpha=0.7, color=colour, label=label)

    rolling = f", line: rolling {window_text(window)} median" if window else ""
    latency_ax.set(title=f"Latency over time (x at 0: failed request{rolling})", xlabel="time (UTC)",
                   ylabel="latency (ms)")
    ttft_ax.set(title=f"Time to first token over time{' (' + rolling[2:] + ')' if window else ''}",
                xlabel="time (UTC)", ylabel="TTFT (ms)")
    if distributions:
        box_ax.boxplot(distributions, orientation="horizontal", showfliers=True)
        box_ax.set_yticks(range(1, len(labels) + 1), labels)
    box_ax.set(title="Latency distribution (box: p25-p75, line: median)", xlabel="latency (ms)")
    cost_ax.set(title="Cost against latency, per request", xlabel="latency (ms)", ylabel="cost (USD)")
    cost_ax.yaxis.set_major_formatter(lambda value, _: f"${value:.6f}")
    for ax in (latency_ax, ttft_ax, cost_ax, *extra_axes[:len(extras)]):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in (latency_ax, ttft_ax):
        ax.tick_params(axis="x", labelrotation=20)
    figure.suptitle(title, fontsize=11)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _html(png: bytes, summaries: Sequence[Summary], title: str, extras: Sequence[Panel] = ()) -> str:
    records = [summary_fields(s) for s in summaries]
    header = "".join(f"<th>{html.escape(name)}</th>" for name in records[0]) if records else ""
    body = scrub("".join(
        "<tr>" + "".join(f"<td>{html.escape('-' if v is None else str(v))}</td>" for v in r.values()) + "</tr>"
        for r in records
    ))
    image = base64.b64encode(png).decode()
    alt = "; ".join(["latency and TTFT over time, latency distribution, cost against latency"]
                    + [panel.title for panel in extras])
    quantiles = ", ".join(f"p{q}" for q in PERCENTILES)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Benchmark Engine report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.8rem; margin-top: 1rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }}
th {{ background: #f2f2f2; }}
td:nth-child(1), td:nth-child(2) {{ text-align: left; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>Benchmark Engine report</h1>
<p id="title">{html.escape(title)}</p>
<img id="chart" alt="{html.escape(alt)}"
     src="data:image/png;base64,{image}">
<div style="overflow-x: auto"><table id="summary"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>
<p>Times in ms over successful requests; {quantiles} by linear interpolation, "-" below 2 samples (the median: 1).</p>
</body>
</html>
"""


def plot(rows: Sequence[Row], summaries: Sequence[Summary], title: str, path: Path,
         window: timedelta | None = None) -> None:
    """Write the picture as PNG, or as a self-contained HTML page, by the file's extension; with a window (--window),
    the over-time panels draw the rolling median."""
    suffix = path.suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise ConfigError(f"--plot writes .png or .html, not {path.name!r}")
    extras = extra_panels(rows)
    title = scrub(title)  # the chart is an output like any other: no secret in what it says
    png = _figure(rows, title, extras, window)
    write_file(path, png if suffix == ".png" else _html(png, summaries, title, extras), "--plot")
