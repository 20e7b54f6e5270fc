// The compare page: report --compare's medians, intervals and verdicts, as data.js holds them; and any two runs of
// the last 30 days, compared here by bootstrap.js exactly as report --compare compares them.
"use strict";

(function (site) {
  const {DATA, el, shown, figure} = site;

  // One comparison (as comparison_json gives it) as a table; its cells hold the exact numbers for machines.
  function comparisonTable(pairs) {
    const table = el("table");
    const head = el("tr");
    ["provider", "model", "requests A \u2192 B", "metric", "median A", "median B", "difference",
     "95 % interval", "verdict"].forEach((name) => head.appendChild(el("th", name)));
    table.appendChild(el("thead")).appendChild(head);
    const body = table.appendChild(el("tbody"));
    for (const pair of pairs) {
      for (const change of pair.changes) {
        const tr = el("tr", null, {"data-key": pair.provider + "\u0000" + pair.model, "data-metric": change.metric,
                                   "data-within": pair.within || "", "data-verdict": change.verdict || "",
                                   "data-interval": JSON.stringify(change.interval),
                                   "data-medians": JSON.stringify([change.median_a, change.median_b])});
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
    const scroll = el("div", null, {"class": "scroll"});
    scroll.appendChild(table);
    return scroll;
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
      block.appendChild(comparisonTable(comparison.comparisons));
      return block;
    });
    document.getElementById("comparisons").replaceChildren(...blocks);
    chooser();
  }

  function runLabel(run) {
    return run.started + " UTC \u00b7 " + run.results + " results \u00b7 " + run.id.slice(0, 8);
  }

  // Two selects over the runs (newest first): B the newest, A the one before, until the reader chooses.
  function chooser() {
    const runs = DATA.runs || [];
    const selects = [document.getElementById("run-a"), document.getElementById("run-b")];
    selects.forEach((select, side) => {
      select.replaceChildren(...runs.map((run) => el("option", runLabel(run), {value: run.id})));
      if (runs.length > 1 - side) select.value = runs[1 - side].id;
      select.addEventListener("change", drawChosen);
    });
    drawChosen();
  }

  function drawChosen() {
    const runs = new Map((DATA.runs || []).map((run) => [run.id, run]));
    const a = runs.get(document.getElementById("run-a").value);
    const b = runs.get(document.getElementById("run-b").value);
    const target = document.getElementById("chosen");
    if (!a || !b) {
      target.replaceChildren(el("p", "Fewer than two runs in the last 30 days."));
      return;
    }
    const pairs = window.BenchBootstrap.compareRuns(a, b);
    const parts = [el("p", "A: run " + a.id + ", " + runLabel(a), {"class": "hint"}),
                   el("p", "B: run " + b.id + ", " + runLabel(b), {"class": "hint"})];
    parts.push(pairs.length ? comparisonTable(pairs) : el("p", "No provider and model appears in both A and B."));
    target.replaceChildren(...parts);
    target.dataset.pair = a.id + " " + b.id;
  }

  site.drawComparePage = drawComparePage;
})(window.BenchSite);
