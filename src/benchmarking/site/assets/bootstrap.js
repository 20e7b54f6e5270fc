// report --compare in the browser: CPython's random.Random (MT19937, seeded as random.seed(0) seeds it, random()
// and choices() as CPython 3 makes them), statistics.median, figures.percentile and the verdict, step for step, so
// that any two runs give the intervals and verdicts `python main.py report --compare A B` gives (a browser test
// compares them). Only numbers come in and go out.
"use strict";

window.BenchBootstrap = (function () {
  const N = 624;
  const RESAMPLES = 2000;
  const MIN_RELATIVE_CHANGE = 0.05;

  // CPython's _random.Random(0): init_by_array([0]) over init_genrand(19650218).
  function generator(seed) {
    const mt = new Uint32Array(N);
    let index = N;
    mt[0] = 19650218;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    const key = [seed >>> 0];
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1664525)) + key[j] + j) >>> 0;
      i++; j++;
      if (i >= N) { mt[0] = mt[N - 1]; i = 1; }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) { mt[0] = mt[N - 1]; i = 1; }
    }
    mt[0] = 0x80000000;

    function next() {
      if (index >= N) {
        for (let kk = 0; kk < N; kk++) {
          const y = (mt[kk] & 0x80000000) | (mt[(kk + 1) % N] & 0x7fffffff);
          mt[kk] = (mt[(kk + 397) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0)) >>> 0;
        }
        index = 0;
      }
      let y = mt[index++];
      y ^= y >>> 11;
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      y ^= y >>> 18;
      return y >>> 0;
    }
    return function random() {  // genrand_res53
      const a = next() >>> 5;
      const b = next() >>> 6;
      return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    };
  }

  function sorted(values) {
    return Float64Array.from(values).sort();
  }

  // statistics.median
  function median(values) {
    const ordered = sorted(values);
    const n = ordered.length;
    const middle = Math.floor(n / 2);
    return n % 2 === 1 ? ordered[middle] : (ordered[middle - 1] + ordered[middle]) / 2;
  }

  // figures.percentile: linear interpolation between closest ranks
  function percentile(values, q, presorted) {
    if (values.length < 2) return values.length === 1 && q === 50 ? values[0] : null;
    const ordered = presorted ? values : sorted(values);
    const position = (ordered.length - 1) * q / 100;
    const low = Math.floor(position);
    const high = Math.ceil(position);
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low);
  }

  // compare.bootstrap_interval: random.Random(0), choices(after) then choices(before), 2,000 times
  function interval(before, after) {
    if (before.length < 2 || after.length < 2) return null;
    const random = generator(0);
    const differences = new Float64Array(RESAMPLES);
    const pickA = new Float64Array(after.length);
    const pickB = new Float64Array(before.length);
    for (let r = 0; r < RESAMPLES; r++) {
      for (let i = 0; i < after.length; i++) pickA[i] = after[Math.floor(random() * after.length)];
      for (let i = 0; i < before.length; i++) pickB[i] = before[Math.floor(random() * before.length)];
      differences[r] = median(pickA) - median(pickB);
    }
    differences.sort();
    return [percentile(differences, 2.5, true), percentile(differences, 97.5, true)];
  }

  function verdict(before, after, range, metric) {
    if (range === null || before === null || after === null) return null;
    const large = Math.abs(after - before) >= MIN_RELATIVE_CHANGE * Math.abs(before);
    const words = metric === "cost" ? ["dearer", "cheaper"] : ["slower", "faster"];
    if (range[0] > 0 && large) return words[0];
    if (range[1] < 0 && large) return words[1];
    return "within noise";
  }

  // None last, then by value: group_order over (tier, level, provider, model)
  function order(a, b) {
    for (let i = 0; i < a.length; i++) {
      const x = a[i], y = b[i];
      if (x === y) continue;
      if (x === null) return 1;
      if (y === null) return -1;
      if (typeof x === "number" && typeof y === "number") return x - y;
      return x < y ? -1 : 1;
    }
    return 0;
  }

  const METRICS = [["TTFT", "ms"], ["latency", "ms"], ["cost", "USD"]];

  // compare(before, after) over two runs' samples ({groups: [[provider, model, tier, level, requests, ttfts,
  // latencies, costs], ...]}): what comparison_json lists, per provider and model in both.
  function compareRuns(runA, runB) {
    const key = (g) => JSON.stringify([g[0], g[1], g[2], g[3]]);
    const inB = new Map(runB.groups.map((g) => [key(g), g]));
    const both = runA.groups.filter((g) => inB.has(key(g)));
    const tiers = [runA, runB].some((run) => run.groups.some((g) => g[2] !== null));
    const levels = [runA, runB].some((run) => run.groups.some((g) => g[3] !== null));
    both.sort((a, b) => order([a[2], a[3], a[0], a[1]], [b[2], b[3], b[0], b[1]]));
    return both.map((a) => {
      const b = inB.get(key(a));
      const within = [];
      if (tiers) within.push("input tier " + (a[2] === null ? "(none)" : a[2].toLocaleString("en-US")));
      if (levels) within.push(a[3] !== null ? "in flight " + a[3] : "one at a time");
      return {
        provider: a[0], model: a[1], within: within.join(", ") || null, requests_a: a[4], requests_b: b[4],
        changes: METRICS.map(([metric, unit], index) => {
          const xs = a[5 + index], ys = b[5 + index];
          const before = percentile(xs, 50), after = percentile(ys, 50);
          const range = interval(xs, ys);
          return {metric: metric, unit: unit, median_a: before, median_b: after,
                  difference: before === null || after === null ? null : after - before, interval: range,
                  verdict: verdict(before, after, range, metric)};
        }),
      };
    });
  }

  return {generator, compareRuns};
})();
