// The results site: draws window.BENCH_DATA (data.js, written by `report --site`) into the page.
// Every value goes in as text (textContent), never as markup: names and messages come from endpoints that may be
// hostile. No request leaves the site's directory; the page's Content-Security-Policy forbids it all the same.
"use strict";

(function () {
  const site = window.BenchSite;
  const {DATA, COLOURS, charts, el, shown, percent, drawChart} = site;
  const page = document.body.dataset.page;
  const windowSelect = document.getElementById("window");
  const percentileSelect = document.getElementById("percentile");
  let sortColumn = null;
  let sortDescending = false;

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
    list.push({name: "marks", value: (r) => [r.fastest ? "fastest" : "", r.cheapest ? "cheapest" : ""]
      .filter(Boolean).join(" ") || null});
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

  // What the charts draw: the median of each time bucket, or the rolling median at each bucket.
  // The whole history's chart (daily medians, or weekly) has no rolling median: its buckets are already long.
  function chartField(metric) {
    const rolling = document.getElementById("rolling").checked && DATA.windows[windowSelect.value].series.rolling_s;
    return metric + (rolling ? "_rolling_ms" : "_p50_ms");
  }

  function rollingLength() {
    const seconds = DATA.windows[windowSelect.value].series.rolling_s;
    const hours = seconds / 3600;
    document.getElementById("rolling").disabled = !seconds;
    const days = DATA.windows[windowSelect.value].series.step_s / 86400;
    document.getElementById("rolling-length").textContent = !seconds
      ? "(none here: the whole history's medians per " + (days === 1 ? "day" : days + " days") + ")"
      : hours < 1 ? Math.round(hours * 60) + " min" : hours + " h";
  }

  function drawIndexCharts() {
    const chosen = DATA.windows[windowSelect.value];
    const keys = chosen.models.map((r) => r.key);
    charts.splice(0).forEach((chart) => chart.destroy());
    drawChart("chart-ttft", chosen.series, keys, [{field: chartField("ttft")}], 280);
    drawChart("chart-latency", chosen.series, keys, [{field: chartField("latency")}], 280);
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
      {field: chartField("ttft"), label: "TTFT", colour: COLOURS[0]},
      {field: chartField("latency"), label: "latency", colour: COLOURS[1]},
    ], 300);
  }

  function draw() {
    rollingLength();
    const state = new URLSearchParams({window: windowSelect.value, percentile: percentileSelect.value});
    history.replaceState(null, "", "#" + state.toString());
    if (page === "load") {
      site.drawLoadPage();
    } else if (page === "compare") {
      site.drawComparePage();
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
    if (page === "load") site.setUpSliders();
    windowSelect.addEventListener("change", draw);
    const heatmapMetric = document.getElementById("heatmap-metric");
    if (heatmapMetric) heatmapMetric.addEventListener("change", drawHeatmap);
    percentileSelect.addEventListener("change", draw);
    document.getElementById("rolling").addEventListener("change", draw);
    draw();
    performance.mark("site-drawn");  // what benchmarks/site.py reads: the first render's time
  }

  start();
})();
