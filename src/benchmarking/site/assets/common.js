// The results site's shared parts: the data, and the helpers every page's script uses (window.BenchSite).
// Every value goes in as text (textContent), never as markup: names and messages come from endpoints that may be
// hostile.
"use strict";

window.BenchSite = (function () {
  const DATA = window.BENCH_DATA;
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                   "#7f7f7f", "#bcbd22"];
  const charts = [];  // the charts drawn on the page, destroyed before they are drawn again

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

  // One uPlot chart over time in the element `target`: for each model key, a line per entry of `metric` ({field,
  // label, colour}) from the window's series (times in seconds, UTC).
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

  // A compared figure: two decimals, or three significant figures for a small one (a cost).
  function figure(value) {
    if (value === null || value === undefined) return null;
    return Math.abs(value) < 0.01 && value !== 0 ? value.toPrecision(3) : value.toFixed(2);
  }

  return {DATA, COLOURS, charts, el, shown, percent, modelColour, drawChart, figure};
})();
