// The load page: the load runs' levels, judged against the TTFT and latency targets set on the sliders.
"use strict";

(function (site) {
  const {DATA, charts, el, shown, percent, modelColour} = site;

  // A level holds when its TTFT and latency at percentile q are within the targets and at most 1 % failed.
  function holds(level, q, ttftTarget, latencyTarget) {
    const ttft = level["ttft_" + q + "_ms"];
    const latency = level["latency_" + q + "_ms"];
    return ttft !== null && latency !== null && ttft <= ttftTarget && latency <= latencyTarget &&
      level.error_rate <= 0.01;
  }

  function loadModels() {
    const models = new Map();
    for (const level of DATA.load) {
      if (!models.has(level.key)) models.set(level.key, []);
      models.get(level.key).push(level);
    }
    for (const levels of models.values()) levels.sort((a, b) => a.concurrency - b.concurrency);
    return models;
  }

  function setUpSliders() {
    const highest = (name) => Math.max(1, ...DATA.load.map((l) => l[name] || 0));
    for (const [id, field] of [["ttft-target", "ttft_p99_ms"], ["latency-target", "latency_p99_ms"]]) {
      const slider = document.getElementById(id);
      slider.max = String(Math.ceil(highest(field) * 1.2));
      slider.value = String(Math.ceil(highest(field) * 0.75));
      slider.addEventListener("input", drawLoadPage);
    }
    document.getElementById("load-percentile").addEventListener("change", drawLoadPage);
  }

  function drawLoadPage() {
    document.getElementById("heading").textContent = "\u2014 load";
    document.getElementById("controls").hidden = true;
    document.getElementById("title").textContent = DATA.title;
    document.getElementById("no-load").hidden = DATA.load.length > 0;
    document.getElementById("sweep").hidden = DATA.load.length === 0;
    document.getElementById("sliders").hidden = DATA.load.length === 0;
    const q = document.getElementById("load-percentile").value;
    const ttftTarget = Number(document.getElementById("ttft-target").value);
    const latencyTarget = Number(document.getElementById("latency-target").value);
    document.getElementById("ttft-target-text").textContent = String(ttftTarget);
    document.getElementById("latency-target-text").textContent = String(latencyTarget);
    const models = loadModels();
    const holdsTable = document.getElementById("holds");
    const head = el("tr");
    ["provider", "model", "in flight held", "requests/s there", "output tokens/s there", "TTFT ms " + q,
     "latency ms " + q].forEach((name) => head.appendChild(el("th", name)));
    holdsTable.tHead.replaceChildren(head);
    const summary = [];
    for (const [key, levels] of models) {
      let held = null;
      for (const level of levels) {
        if (!holds(level, q, ttftTarget, latencyTarget)) break;
        held = level;
      }
      const tr = el("tr", null, {"data-key": key});
      const first = levels[0];
      [first.provider, first.model, held ? held.concurrency : "none", held ? held.requests_per_s : null,
       held ? held.output_tokens_per_s : null, held ? held["ttft_" + q + "_ms"] : null,
       held ? held["latency_" + q + "_ms"] : null].forEach((cell) => tr.appendChild(el("td", shown(cell))));
      summary.push(tr);
    }
    holdsTable.tBodies[0].replaceChildren(...summary);
    const levelsTable = document.getElementById("levels");
    const levelHead = el("tr");
    ["provider", "model", "in flight", "requests", "requests/s", "TTFT ms " + q, "latency ms " + q, "errors %",
     "holds"].forEach((name) => levelHead.appendChild(el("th", name)));
    levelsTable.tHead.replaceChildren(levelHead);
    levelsTable.tBodies[0].replaceChildren(...DATA.load.map((level) => {
      const ok = holds(level, q, ttftTarget, latencyTarget);
      const tr = el("tr", null, {"class": ok ? "better" : "worse"});
      [level.provider, level.model, level.concurrency, level.requests, level.requests_per_s,
       level["ttft_" + q + "_ms"], level["latency_" + q + "_ms"], percent(level.error_rate), ok ? "yes" : "no"]
        .forEach((cell) => tr.appendChild(el("td", shown(cell))));
      return tr;
    }));
    charts.splice(0).forEach((chart) => chart.destroy());
    drawPrefill();
    drawTurns();
    const levelsSeen = [...new Set(DATA.load.map((l) => l.concurrency))].sort((a, b) => a - b);
    const node = document.getElementById("chart-load");
    node.replaceChildren();
    if (levelsSeen.length === 0) return;
    const data = [levelsSeen];
    const lines = [{label: "in flight"}];
    for (const [key, levels] of models) {
      const byLevel = new Map(levels.map((l) => [l.concurrency, l["latency_" + q + "_ms"]]));
      data.push(levelsSeen.map((c) => (byLevel.has(c) ? byLevel.get(c) : null)));
      lines.push({label: levels[0].provider + " / " + levels[0].model, stroke: modelColour(key), width: 1.5,
                  spanGaps: true, points: {show: true, size: 6}});
    }
    charts.push(new uPlot({width: Math.max(320, Math.min(node.clientWidth || 900, 1200)), height: 280,
                           series: lines, scales: {x: {time: false, distr: 3, log: 2}},
                           axes: [{label: "requests in flight", splits: () => levelsSeen},
                                                                            {label: "ms", size: 60}]},
                          data, node));
  }

  function drawPrefill() {
    document.getElementById("no-prefill").hidden = DATA.prefill.length > 0;
    const table = document.getElementById("prefill");
    const head = el("tr");
    ["provider / model", "input tokens", "input tier", "requests", "TTFT ms p50"].forEach((name) =>
      head.appendChild(el("th", name)));
    table.tHead.replaceChildren(head);
    const rows = [];
    for (const series of DATA.prefill) {
      for (const point of series.points) {
        const tr = el("tr");
        [series.label, point.input_tokens, point.input_tier, point.requests, point.ttft_p50_ms].forEach((cell) =>
          tr.appendChild(el("td", shown(cell))));
        rows.push(tr);
      }
    }
    table.tBodies[0].replaceChildren(...rows);
    const node = document.getElementById("chart-prefill");
    node.replaceChildren();
    if (DATA.prefill.length === 0) return;
    const sizes = [...new Set(DATA.prefill.flatMap((s) => s.points.map((p) => p.input_tokens)))].sort((a, b) => a - b);
    const data = [sizes];
    const lines = [{label: "input tokens"}];
    DATA.prefill.forEach((series, index) => {
      const bySize = new Map(series.points.map((p) => [p.input_tokens, p.ttft_p50_ms]));
      data.push(sizes.map((size) => (bySize.has(size) ? bySize.get(size) : null)));
      lines.push({label: series.label, stroke: site.COLOURS[index % site.COLOURS.length], width: 1.5,
                  spanGaps: true, points: {show: true, size: 6}});
    });
    const spread = sizes[sizes.length - 1] / Math.max(sizes[0], 1);
    charts.push(new uPlot({width: Math.max(320, Math.min(node.clientWidth || 900, 1200)), height: 280,
                           series: lines, scales: {x: spread > 20 ? {time: false, distr: 3} : {time: false}},
                           axes: [{label: "input tokens"}, {label: "TTFT ms", size: 60}]}, data, node));
  }

  // The conversations by turn: every value inserted as text.
  function drawTurns() {
    const turns = DATA.conversations.turns;
    document.getElementById("no-turns").hidden = turns.length > 0;
    const table = document.getElementById("turns");
    table.hidden = turns.length === 0;
    const head = el("tr");
    ["provider", "model", "turn", "requests", "sessions", "TTFT ms p50", "TTFT ms p90", "input tokens p50",
     "cached %", "mean cost $", "TTFT p50 vs turn 1 ms", "cost vs turn 1"].forEach((name) =>
      head.appendChild(el("th", name)));
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(...turns.map((t) => {
      const tr = el("tr");
      [t.provider, t.model, t.turn, t.requests, t.sessions, t.ttft_p50_ms, t.ttft_p90_ms, t.input_tokens_p50,
       percent(t.cached_input_share), t.cost_mean_usd, t.turn === 1 ? null : t.ttft_p50_change_ms,
       t.turn === 1 ? null : percent(t.cost_mean_change)].forEach((cell) => tr.appendChild(el("td", shown(cell))));
      return tr;
    }));
    document.getElementById("turn-cache").replaceChildren(
      ...DATA.conversations.cache_from_turn_2.map((saving) => el("li", saving.line)));
  }

  site.drawPrefill = drawPrefill;
  site.setUpSliders = setUpSliders;
  site.drawLoadPage = drawLoadPage;
})(window.BenchSite);
