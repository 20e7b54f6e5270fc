// The compare page: report --compare's medians, intervals and verdicts, as data.js holds them.
"use strict";

(function (site) {
  const {DATA, el, shown, figure} = site;

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

  site.drawComparePage = drawComparePage;
})(window.BenchSite);
