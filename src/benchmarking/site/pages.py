"""The site's files: the pages (markup only, no data and no inline script), the data as a script and as JSON, the
script and styles, and the vendored chart library with its licence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).parent / "assets"
# Everything a page loads comes from its own directory: no inline script, no remote source, no request out.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
       "form-action 'none'")
ASSET_FILES = {  # in the site -> in the package
    "assets/bootstrap.js": "bootstrap.js",
    "assets/common.js": "common.js",
    "assets/compare.js": "compare.js",
    "assets/load.js": "load.js",
    "assets/site.js": "site.js",
    "assets/site.css": "site.css",
    "assets/uplot/uPlot.iife.min.js": "vendor/uplot/uPlot.iife.min.js",
    "assets/uplot/uPlot.min.css": "vendor/uplot/uPlot.min.css",
    "assets/uplot/LICENSE": "vendor/uplot/LICENSE",
}
WINDOW_LABELS = {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days",
                 "all": "all selected"}


def _page(title: str, body_attributes: str, main: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="assets/uplot/uPlot.min.css">
<link rel="stylesheet" href="assets/site.css">
</head>
<body {body_attributes}>
<header>
<h1><a href="index.html">Benchmark Engine</a> <span id="heading"></span></h1>
<p class="links"><a href="index.html">Leaderboard</a> · <a href="compare.html">Compare</a> ·
<a href="load.html">Load</a></p>
<p id="title"></p>
</header>
<nav id="controls">
<label>Window <select id="window">{_options(WINDOW_LABELS)}</select></label>
<label>Percentile <select id="percentile">{_options({f"p{q}": f"p{q}" for q in (50, 90, 95, 99)})}</select></label>
<label><input type="checkbox" id="rolling"> charts: rolling median over <span id="rolling-length"></span></label>
</nav>
<main>
{main}
</main>
<footer><p>Times in ms over successful requests; percentiles by linear interpolation, "-" below 2 samples (the median:
1). Costs to 3 significant figures; <a href="data.json">data.json</a> holds the exact values. Generated <span
id="generated"></span> from <span id="selection"></span>.</p></footer>
<script src="data.js"></script>
<script src="assets/uplot/uPlot.iife.min.js"></script>
<script src="assets/common.js"></script>
<script src="assets/bootstrap.js"></script>
<script src="assets/compare.js"></script>
<script src="assets/load.js"></script>
<script src="assets/site.js"></script>
</body>
</html>
"""


def _options(choices: dict[str, str]) -> str:
    return "".join(f'<option value="{value}">{label}</option>' for value, label in choices.items())


INDEX_MAIN = """<section>
<h2>Leaderboard</h2>
<p class="hint">Click a column to sort; a provider's name opens its page.</p>
<div class="scroll"><table id="leaderboard"><thead></thead><tbody></tbody></table></div>
<p id="empty" hidden>No results in this window.</p>
</section>
<section>
<h2>TTFT over time</h2>
<p class="hint">The median of each time bucket, or the rolling median (above); drag to zoom, double-click to reset.</p>
<div class="chart" id="chart-ttft"></div>
<h2>Latency over time</h2>
<div class="chart" id="chart-latency"></div>
</section>
<section>
<h2>By hour of day (UTC)</h2>
<p class="hint">The median of each hour over the window's days; green is the model's best hour, red its worst.
<label>Show <select id="heatmap-metric"><option value="ttft_p50_ms">TTFT ms</option>
<option value="latency_p50_ms">latency ms</option></select></label></p>
<div class="scroll"><table id="heatmap" class="heatmap"><thead></thead><tbody></tbody></table></div>
</section>"""

MODEL_MAIN = """<section>
<p id="alerts"></p>
<h2>Figures per window</h2>
<div class="scroll"><table id="windows"><thead></thead><tbody></tbody></table></div>
<h2>Uptime</h2>
<div class="scroll"><table id="uptime"><thead></thead><tbody></tbody></table></div>
</section>
<section>
<h2>TTFT and latency over time</h2>
<p class="hint">The median of each time bucket, or the rolling median (above); drag to zoom, double-click to reset.</p>
<div class="chart" id="chart-model"></div>
</section>
<section>
<h2>Recent failures</h2>
<div class="scroll"><table id="failures"><thead></thead><tbody></tbody></table></div>
<p id="no-failures" hidden>No failures in the selection.</p>
</section>"""


COMPARE_MAIN = """<section>
<p class="hint">Each change is the median of B minus the median of A, with the 95 % bootstrap interval of that
difference; it is marked slower, faster, dearer or cheaper when the interval excludes 0 and the median moved by 5 %
or more, as <code>report --compare A B</code> marks it.</p>
<div id="comparisons"></div>
</section>
<section>
<h2>Any two runs</h2>
<p class="hint">Two runs of the last 30 days, compared in this page by the same bootstrap as <code>report --compare
A B</code> (its generator and seed, 2,000 resamples): the same intervals and verdicts.</p>
<p class="sliders"><label>A <select id="run-a"></select></label> <label>B <select id="run-b"></select></label></p>
<div id="chosen"></div>
</section>"""


LOAD_MAIN = """<section>
<p class="hint">The levels of the load runs (<code>python main.py --concurrency 1,2,4,8</code>), as <code>report --by
concurrency</code> gives them. Set the targets: a level holds when its TTFT and latency at the chosen percentile are
within them and at most 1 % of its requests failed; a model holds a load when that level and every lighter one hold.</p>
<p class="sliders" id="sliders">
<label>Percentile <select id="load-percentile"><option value="p50">p50</option><option value="p90"
selected>p90</option><option value="p99">p99</option></select></label>
<label>TTFT target <input type="range" id="ttft-target" min="0" max="1000" step="1"> <output
id="ttft-target-text"></output> ms</label>
<label>latency target <input type="range" id="latency-target" min="0" max="1000" step="1"> <output
id="latency-target-text"></output> ms</label>
</p>
<p id="no-load" hidden>No load runs in the selection's last 30 days.</p>
<div id="sweep">
<h2>The highest load each model holds</h2>
<div class="scroll"><table id="holds"><thead></thead><tbody></tbody></table></div>
<h2>Latency by requests in flight</h2>
<div class="chart" id="chart-load"></div>
<h2>Every level</h2>
<div class="scroll"><table id="levels"><thead></thead><tbody></tbody></table></div>
</div>
</section>
<section>
<h2>Time to first token against input size (prefill)</h2>
<p class="hint">The median TTFT at each input size (<code>python main.py --input-tokens 100,1000,10000</code>), one
request at a time, as <code>report --plot</code> draws it; a model measured at one size is left out.</p>
<p id="no-prefill" hidden>No provider and model measured at two input sizes or more in the last 30 days.</p>
<div class="chart" id="chart-prefill"></div>
<div class="scroll"><table id="prefill"><thead></thead><tbody></tbody></table></div>
</section>
<section>
<h2>Conversations by turn</h2>
<p class="hint">Per turn of the stored conversations (prompt files with <code>turns</code>), as <code>report --by
turn</code> gives it: TTFT, the median input, the share of it read from the prompt cache, the mean cost, and the change
against turn 1; below, what the cache saved from turn 2 on, as measured.</p>
<p id="no-turns" hidden>No conversation in the last 30 days.</p>
<div class="scroll"><table id="turns"><thead></thead><tbody></tbody></table></div>
<ul id="turn-cache"></ul>
</section>"""


def data_script(data: dict[str, Any]) -> str:
    """The data as a script the pages load beside them (browsers refuse fetch() of file:// pages). JSON is a JS
    expression; `<`, `>` and `&` escaped all the same, so the text stays inert whatever a name holds."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"window.BENCH_DATA = {text};\n"


def site_files(data: dict[str, Any]) -> dict[str, bytes | str]:
    """Every file of the site, by its path in the site."""
    files: dict[str, bytes | str] = {
        "index.html": _page("Benchmark Engine results", 'data-page="index"', INDEX_MAIN),
        "data.js": data_script(data),
        # Compact: with an indent json runs its pure-Python encoder, a second over the compare page's samples
        "data.json": json.dumps(data, separators=(",", ":")) + "\n",
    }
    files["compare.html"] = _page("Benchmark Engine: what changed", 'data-page="compare"', COMPARE_MAIN)
    files["load.html"] = _page("Benchmark Engine: load", 'data-page="load"', LOAD_MAIN)
    for key in data["models"]:  # a hex digest: safe in a file name and in the markup
        files[f"model-{key}.html"] = _page("Benchmark Engine: provider and model",
                                           f'data-page="model" data-key="{key}"', MODEL_MAIN)
    for name, source in ASSET_FILES.items():
        files[name] = (ASSETS / source).read_bytes()
    return files
