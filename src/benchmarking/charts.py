"""`report --plot`: one picture to read at a glance, as PNG or as a self-contained HTML page.

Four panels: latency and TTFT over time per provider (the scheduled runs' story), the latency distribution per
provider, and cost against latency; two more, median TTFT and latency by hour of day (UTC), when the rows span more
than one hour of day. The HTML page embeds the same picture and the summary table; it loads nothing
from the network.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
import html
import io
from pathlib import Path
from statistics import median
from typing import Sequence

from .errors import ConfigError
from .report import PERCENTILES, Row, Summary, rolling_median, summary_fields, window_text

PLOT_SUFFIXES = (".png", ".html")


def _over_time(ax, points: list[tuple[datetime, float]], colour: str, label: str, window: timedelta | None) -> None:
    """Every request as a point joined by a line; with a window, faint points under the rolling median's line."""
    if window is None:
        ax.plot(*zip(*points), marker="o", markersize=3, linewidth=1, color=colour, label=label)
        return
    ax.scatter(*zip(*points), s=6, alpha=0.25, color=colour)
    rolled = rolling_median([(t.timestamp(), v) for t, v in points], window.total_seconds())
    ax.plot([t for t, _ in points], [v for _, v in rolled], linewidth=1.5, color=colour, label=label)


def _hour_of_day(ttft_ax, latency_ax, series: dict[str, list], colours: list[str]) -> None:
    """Median TTFT and latency per provider and model by hour of day (UTC): when is each fastest?"""
    for index, (label, points) in enumerate(sorted(series.items())):
        for ax, metric in ((ttft_ax, "ttft_ms"), (latency_ax, "latency_ms")):
            hours: dict[int, list[float]] = {}
            for when, m in points:
                if m.success and (value := getattr(m, metric)) is not None:
                    hours.setdefault(when.hour, []).append(value)
            if hours:
                ordered = sorted(hours)
                ax.plot(ordered, [median(hours[hour]) for hour in ordered], marker="o", markersize=4, linewidth=1,
                        color=colours[index % len(colours)], label=label)
    for ax, name in ((ttft_ax, "TTFT"), (latency_ax, "latency")):
        ax.set(title=f"Median {name} by hour of day (UTC)", xlabel="hour of day (UTC)", ylabel=f"{name} (ms)",
               xlim=(-0.5, 23.5), xticks=range(0, 24, 2))


def _figure(rows: Sequence[Row], title: str, window: timedelta | None = None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt

    series: dict[str, list] = {}
    for row in rows:
        m = row.result.measurement
        series.setdefault(f"{m.provider} / {m.model}", []).append((row.result.created_at, m))
    by_hour = len({row.result.created_at.hour for row in rows}) > 1
    figure, axes = plt.subplots(3 if by_hour else 2, 2, figsize=(14, 13.5 if by_hour else 9), constrained_layout=True)
    (latency_ax, ttft_ax), (box_ax, cost_ax) = axes[:2]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if by_hour:
        _hour_of_day(*axes[2], series, colours)
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
    for ax in (latency_ax, ttft_ax, cost_ax, *(axes[2] if by_hour else ())):
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


def _html(png: bytes, summaries: Sequence[Summary], title: str) -> str:
    records = [summary_fields(s) for s in summaries]
    header = "".join(f"<th>{html.escape(name)}</th>" for name in records[0]) if records else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('-' if v is None else str(v))}</td>" for v in r.values()) + "</tr>"
        for r in records
    )
    image = base64.b64encode(png).decode()
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
<img id="chart" alt="latency and TTFT over time, latency distribution, cost against latency"
     src="data:image/png;base64,{image}">
<div style="overflow-x: auto"><table id="summary"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>
<p>Times in ms over successful requests; {quantiles} by linear interpolation, "-" below 2 samples.</p>
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
    png = _figure(rows, title, window)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        path.write_bytes(png)
    else:
        path.write_text(_html(png, summaries, title), encoding="utf-8")
