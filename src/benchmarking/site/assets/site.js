// The results site: draws window.BENCH_DATA (data.js, written by `report --site`) into the page.
// Every value goes in as text (textContent), never as markup: names and messages come from endpoints that may be
// hostile. No request leaves the site's directory; the page's Content-Security-Policy forbids it all the same.
"use strict";

(function () {
  const DATA = window.BENCH_DATA;
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                   "#7f7f7f", "#bcbd22"];
  const page = document.body.dataset.page;
  const windowSelect = document.getElementById("window");
  const percentileSelect = document.getElementById("percentile");
  let sortColumn = null;
  let sortDescending = false;
  const charts = [];

  function el(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  }

  function shown(value) {
    return value === null || value === undefined || value === "" ? "-" : String(value);
  }

  function percent(share) {
    return share === null || share === undefined ? "-" : (share * 100).toFixed(1);
  }

  function modelColour(key) {
    return COLOURS[Object.keys(DATA.models).indexOf(key) % COLOURS.length];
  }

  // The leaderboard's columns: header, the value to sort by, the text shown (q: the chosen percentile).
  function columns(q, withSlo) {
    const list = [
      {name: "provider", value: (r) => r.provider, link: true},
      {name: "model", value: (r) => r.model},
      {name: "requests", value: (r) => r.requests},
      {name: "ok %", value: (r) => r.success_rate, text: (r) => percent(r.success_rate)},
      {name: "TTFT ms " + q, value: (r) => r["ttft_" + q + "_ms"], id: "ttft"},
      {name: "latency ms " + q, value: (r) => r["latency_" + q + "_ms"], id: "latency"},
      {name: "tokens/s p50", value: (r) => r.tokens_per_second_p50, id: "speed"},
      {name: "$ per request", value: (r) => num(r.cost_mean_usd), text: (r) => r.cost_mean_text, id: "cost"},
      {name: "$ per 1M out", value: (r) => num(r.cost_per_1k_output_tokens_usd),
       text: (r) => r.cost_per_1m_output_tokens_text, id: "cost1m"},
      {name: "up 5m %", value: (r) => uptime(r, "5m"), text: (r) => percent(uptime(r, "5m"))},
      {name: "up 30m %", value: (r) => uptime(r, "30m"), text: (r) => percent(uptime(r, "30m"))},
      {name: "up 1d %", value: (r) => uptime(r, "1d"), text: (r) => percent(uptime(r, "1d"))},
    ];
    if (withSlo) {
      list.push({name: "SLO met %", value: (r) => r.slo_attainment, text: (r) => percent(r.slo_attainment)});
    }
    list.push({name: "firing alerts", value: (r) => alertText(r.key), id: "alerts"});
    list.push({name: "errors", value: (r) => r.top_errors});
    return list;
  }

  function alertText(key) {
    const model = DATA.models[key];
    const alerts = model && model.alerts ? model.alerts : [];
    return alerts.map((a) => a.rule + (a.metric ? " " + a.metric : "") + " since " + a.since).join(", ") || null;
  }

  function num(text) {
    return text === null || text === undefined ? null : Number(text);
  }

  function uptime(row, span) {
    const model = DATA.models[row.key];
    const value = model && model.uptime ? model.uptime[span] : undefined;
    return value === undefined ? null : value;
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined || a === "") return 1;  // unknown last, either way
    if (b === null || b === undefined || b === "") return -1;
    const order = typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
    return sortDescending ? -order : order;
  }

  function drawLeaderboard() {
    const chosen = DATA.windows[windowSelect.value];
    const q = percentileSelect.value;
    const rows = chosen.models.slice();
    const cols = columns(q, rows.some((r) => r.slo_attainment !== undefined));
    const table = document.getElementById("leaderboard");
    const head = el("tr");
    cols.forEach((column, index) => {
      const th = el("th", column.name, {"data-column": String(index), "tabindex": "0"});
      if (sortColumn === column.name) th.setAttribute("aria-sort", sortDescending ? "descending" : "ascending");
      th.addEventListener("click", () => {
        sortDescending = sortColumn === column.name ? !sortDescending : false;
        sortColumn = column.name;
        drawLeaderboard();
      });
      head.appendChild(th);
    });
    table.tHead.replaceChildren(head);
    const sorting = cols.find((c) => c.name === sortColumn);
    if (sorting) rows.sort((a, b) => compare(sorting.value(a), sorting.value(b)));
    const body = rows.map((row) => {
      const tr = el("tr", null, {"data-key": row.key});
      for (const column of cols) {
        const text = column.text ? shown(column.text(row)) : shown(column.value(row));
        const td = el("td", null, column.id ? {"data-field": column.id} : {});
        if (column.link) {
          td.appendChild(el("a", text, {href: "model-" + row.key + ".html" + location.hash}));
        } else {
          td.textContent = text;
        }
        tr.appendChild(td);
      }
      return tr;
    });
    table.tBodies[0].replaceChildren(...body);
    document.getElementById("empty").hidden = rows.length > 0;
    document.getElementById("title").textContent = chosen.title;
  }

  function drawChart(target, series, keys, metric, height) {
    const times = series.times;
    const data = [times];
    const lines = [{}];
    for (const key of keys) {
      const values = series.models[key];
      if (!values) continue;
      for (const m of metric) {
        data.push(values[m.field]);
        const model = DATA.models[key];
        lines.push({label: (m.label ? m.label + " " : "") + model.provider + " / " + model.model,
                    stroke: m.colour || modelColour(key), width: 1.5, spanGaps: true, points: {show: true, size: 4},
                    value: (u, v) => (v === null || v === undefined ? "-" : v.toFixed(2) + " ms")});
      }
    }
    const node = document.getElementById(target);
    node.replaceChildren();
    if (times.length === 0 || data.length < 2) {
      node.appendChild(el("p", "No successful requests in this window."));
      return;
    }
    const width = Math.max(320, Math.min(node.clientWidth || 900, 1200));
    const options = {
      width: width, height: height, series: lines,
      scales: {x: {time: true, range: [series.start, series.end]}},
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      axes: [{}, {label: "ms", size: 60}],
      cursor: {drag: {x: true, y: false}},
      legend: {live: true},
    };
    charts.push(new uPlot(options, data, node));
  }

  function drawIndexCharts() {
    const chosen = DATA.windows[windowSelect.value];
    const keys = chosen.models.map((r) => r.key);
    charts.splice(0).forEach((chart) => chart.destroy());
    drawChart("chart-ttft", chosen.series, keys, [{field: "ttft_p50_ms"}], 280);
    drawChart("chart-latency", chosen.series, keys, [{field: "latency_p50_ms"}], 280);
  }

  function drawHeatmap() {
    const chosen = DATA.windows[windowSelect.value];
    const metric = document.getElementById("heatmap-metric").value;
    const table = document.getElementById("heatmap");
    const head = el("tr");
    head.appendChild(el("th", "provider / model"));
    for (let hour = 0; hour < 24; hour++) head.appendChild(el("th", String(hour).padStart(2, "0")));
    table.tHead.replaceChildren(head);
    const body = chosen.models.map((row) => {
      const tr = el("tr", null, {"data-key": row.key});
      tr.appendChild(el("td", row.provider + " / " + row.model));
      const values = (chosen.hours[row.key] || {})[metric] || [];
      const known = values.filter((v) => v !== null && v !== undefined);
      const low = Math.min(...known);
      const high = Math.max(...known);
      for (let hour = 0; hour < 24; hour++) {
        const value = values[hour];
        const known = value !== null && value !== undefined;
        const td = el("td", known ? String(Math.round(value)) : "-", {"data-hour": String(hour), title: shown(value)});
        if (known) {
          const share = high > low ? (value - low) / (high - low) : 0;
          td.style.backgroundColor = "hsl(" + Math.round(120 * (1 - share)) + ", 65%, 82%)";
        }
        tr.appendChild(td);
      }
      return tr;
    });
    table.tBodies[0].replaceChildren(...body);
  }

  function drawModelPage() {
    const key = document.body.dataset.key;
    const model = DATA.models[key];
    if (!model) return;
    document.getElementById("heading").textContent = "\u2014 " + model.provider + " / " + model.model;
    document.title = "Benchmark Engine: " + model.provider + " / " + model.model;
    const q = percentileSelect.value;
    const windowTable = document.getElementById("windows");
    const header = ["window", "requests", "ok %", "TTFT ms " + q, "latency ms " + q, "tokens/s p50",
                    "$ per request", "$ per 1M out", "errors"];
    windowTable.tHead.replaceChildren(el("tr", null));
    header.forEach((name) => windowTable.tHead.rows[0].appendChild(el("th", name)));
    const rows = [];
    for (const [name, chosen] of Object.entries(DATA.windows)) {
      const row = chosen.models.find((r) => r.key === key);
      const tr = el("tr", null, {"data-window": name});
      const cells = row ? [name, row.requests, percent(row.success_rate), row["ttft_" + q + "_ms"],
                           row["latency_" + q + "_ms"], row.tokens_per_second_p50, row.cost_mean_text,
                           row.cost_per_1m_output_tokens_text, row.top_errors]
                        : [name, 0, "-", "-", "-", "-", "-", "-", "-"];
      cells.forEach((cell) => tr.appendChild(el("td", shown(cell))));
      if (name === windowSelect.value) tr.className = "chosen";
      rows.push(tr);
    }
    windowTable.tBodies[0].replaceChildren(...rows);
    const uptimeTable = document.getElementById("uptime");
    uptimeTable.tHead.replaceChildren(el("tr"));
    uptimeTable.tBodies[0].replaceChildren(el("tr"));
    for (const span of ["5m", "30m", "1d"]) {
      uptimeTable.tHead.rows[0].appendChild(el("th", "last " + span + " %"));
      uptimeTable.tBodies[0].rows[0].appendChild(el("td", percent(model.uptime[span] === undefined ? null
                                                                  : model.uptime[span])));
    }
    const failures = document.getElementById("failures");
    failures.tHead.replaceChildren(el("tr"));
    ["time (UTC)", "error type", "HTTP status", "message"].forEach((name) =>
      failures.tHead.rows[0].appendChild(el("th", name)));
    failures.tBodies[0].replaceChildren(...model.failures.map((failure) => {
      const tr = el("tr");
      [failure.time, failure.error_type, failure.http_status, failure.message].forEach((cell) =>
        tr.appendChild(el("td", shown(cell))));
      return tr;
    }));
    document.getElementById("no-failures").hidden = model.failures.length > 0;
    document.getElementById("alerts").textContent = "Firing alerts: " + (alertText(key) || "none");
    failures.hidden = model.failures.length === 0;
    const chosen = DATA.windows[windowSelect.value];
    document.getElementById("title").textContent = chosen.title;
    charts.splice(0).forEach((chart) => chart.destroy());
    drawChart("chart-model", chosen.series, [key], [
      {field: "ttft_p50_ms", label: "TTFT", colour: COLOURS[0]},
      {field: "latency_p50_ms", label: "latency", colour: COLOURS[1]},
    ], 300);
  }

  function drawComparePage() {
    document.getElementById("heading").textContent = "\u2014 what changed";
    document.getElementById("controls").hidden = true;
    document.getElementById("title").textContent = DATA.title;
    const blocks = DATA.comparisons.map((comparison) => {
      const block = el("section", null, {"class": "comparison"});
      block.appendChild(el("h2", comparison.name));
      block.appendChild(el("p", "A: " + comparison.a, {"class": "hint"}));
      block.appendChild(el("p", "B: " + comparison.b, {"class": "hint"}));
      if (comparison.comparisons.length === 0) {
        block.appendChild(el("p", "No provider and model appears in both A and B."));
        return block;
      }
      const table = el("table");
      const head = el("tr");
      ["provider", "model", "requests A \u2192 B", "metric", "median A", "median B", "difference",
       "95 % interval", "verdict"].forEach((name) => head.appendChild(el("th", name)));
      table.appendChild(el("thead")).appendChild(head);
      const body = table.appendChild(el("tbody"));
      for (const pair of comparison.comparisons) {
        for (const change of pair.changes) {
          const tr = el("tr", null, {"data-key": pair.provider + "\u0000" + pair.model, "data-metric": change.metric});
          const interval = change.interval ? change.interval.map(figure).join(" .. ") : "-";
          [pair.provider, pair.model + (pair.within ? " (" + pair.within + ")" : ""),
           pair.requests_a + " \u2192 " + pair.requests_b, change.metric + " (" + change.unit + ")",
           figure(change.median_a), figure(change.median_b), figure(change.difference), interval,
           change.verdict].forEach((cell) => tr.appendChild(el("td", shown(cell))));
          if (["slower", "dearer"].includes(change.verdict)) tr.className = "worse";
          if (["faster", "cheaper"].includes(change.verdict)) tr.className = "better";
          body.appendChild(tr);
        }
      }
      block.appendChild(el("div", null, {"class": "scroll"})).appendChild(table);
      return block;
    });
    document.getElementById("comparisons").replaceChildren(...blocks);
  }

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

  function figure(value) {
    if (value === null || value === undefined) return null;
    return Math.abs(value) < 0.01 && value !== 0 ? value.toPrecision(3) : value.toFixed(2);
  }

  function draw() {
    const state = new URLSearchParams({window: windowSelect.value, percentile: percentileSelect.value});
    history.replaceState(null, "", "#" + state.toString());
    if (page === "load") {
      drawLoadPage();
    } else if (page === "compare") {
      drawComparePage();
    } else if (page === "model") {
      drawModelPage();
    } else {
      drawLeaderboard();
      drawIndexCharts();
      drawHeatmap();
    }
  }

  function start() {
    document.getElementById("generated").textContent = DATA.generated_at;
    document.getElementById("selection").textContent = DATA.selection;
    const asked = new URLSearchParams(location.hash.slice(1));
    const firstWithResults = ["24h", "7d", "30d", "1h", "all"].find((name) => DATA.windows[name].results > 0);
    windowSelect.value = DATA.windows[asked.get("window")] ? asked.get("window") : (firstWithResults || "24h");
    const q = asked.get("percentile");
    if (q && Array.from(percentileSelect.options).some((o) => o.value === q)) percentileSelect.value = q;
    if (page === "load") setUpSliders();
    windowSelect.addEventListener("change", draw);
    const heatmapMetric = document.getElementById("heatmap-metric");
    if (heatmapMetric) heatmapMetric.addEventListener("change", drawHeatmap);
    percentileSelect.addEventListener("change", draw);
    draw();
    performance.mark("site-drawn");  // what benchmarks/site.py reads: the first render's time
  }

  start();
})();
