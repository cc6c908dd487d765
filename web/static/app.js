// Foundry dashboard behaviour: local times, clickable rows, the live traffic
// table, and uPlot charts drawn from the JSON the server puts in
// <script type="application/json" id="chart-data">. No inline scripts: the
// page's Content-Security-Policy allows only files served by Foundry.
(function () {
  "use strict";

  // --- Times: the server writes UTC; show the viewer's local time. ---------
  const sameDay = (a, b) => a.toDateString() === b.toDateString();
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const dateTimeFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  function localizeTimes(root) {
    const now = new Date();
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.title = d.toISOString();
      el.textContent = sameDay(d, now) ? timeFmt.format(d) : dateTimeFmt.format(d);
    });
  }

  // --- Clicks: whole table rows open their call; older pages stop "live". --
  document.addEventListener("click", (e) => {
    if (e.target.closest("#older")) {
      const live = document.getElementById("live");
      if (live) live.checked = false; // a poll would replace the older rows
    }
    const tr = e.target.closest("tr[data-href]");
    if (!tr || e.target.closest("a, button, input")) return;
    if (e.metaKey || e.ctrlKey) window.open(tr.dataset.href, "_blank");
    else window.location.href = tr.dataset.href;
  });
  document.addEventListener("change", (e) => {
    if (e.target.matches("select[data-autosubmit]")) e.target.form.submit();
  });

  // --- Traffic: poll the first page while "Live" is on. ---------------------
  function setupTraffic() {
    const form = document.getElementById("filters");
    const live = document.getElementById("live");
    if (!form || !live || !window.htmx) return;
    // The form owns every request for the table (hx-sync="this:replace"), so
    // a poll never lands after, and overwrites, a newer filter's answer.
    const refresh = () => htmx.trigger(form, "refresh");
    document.getElementById("refresh").addEventListener("click", refresh);
    // Poll only while the newest calls are in view: a swap would reset the
    // reader's scroll position in the table.
    setInterval(() => {
      const wrap = document.querySelector("#results .table-wrap");
      if (!live.checked || document.visibilityState !== "visible" || (wrap && wrap.scrollTop > 0)) return;
      refresh();
    }, 5000);
  }

  // --- Charts ---------------------------------------------------------------
  const palette = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#ec4899", "#14b8a6", "#64748b"];
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const alpha = (hex, a) => hex + Math.round(a * 255).toString(16).padStart(2, "0");
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  const usd = (v) => v == null ? "—" : v === 0 ? "$0" : Math.abs(v) < 0.01 ? "$" + v.toFixed(5) : "$" + v.toFixed(2);
  const num = (v) => v == null ? "—" : compact.format(v);
  const pct = (v) => v == null ? "—" : (v * 100).toFixed(1) + "%";
  const ms = (v) => v == null ? "—" : v < 1000 ? Math.round(v) + " ms" : (v / 1000).toFixed(2) + " s";

  // Axis labels: dollars with as many decimals as the tick step needs,
  // counts compact (12K), rates as percentages.
  const decimals = (vals) => {
    const step = vals.length > 1 ? Math.abs(vals[1] - vals[0]) : 1;
    if (!(step > 0)) return 0;
    // As many as the step needs: 2.5 needs one, 0.02 two.
    let d = Math.max(0, -Math.floor(Math.log10(step)));
    while (d < 6 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6 * 10 ** d) d++;
    return d;
  };
  const axisFmt = {
    usd: (vals) => { const d = decimals(vals); return vals.map((v) => "$" + v.toFixed(d)); },
    num: (vals) => vals.map((v) => compact.format(v)),
    pct: (vals) => { const d = Math.max(0, decimals(vals) - 2); return vals.map((v) => (v * 100).toFixed(d) + "%"); },
    ms: (vals) => vals.map((v) => (v >= 1000 ? compact.format(v / 1000) + " s" : compact.format(v) + " ms")),
  };
  function axes(kind) {
    const grid = { stroke: css("--line"), width: 1 };
    const stroke = css("--muted");
    return [
      { stroke, grid, ticks: grid },
      { stroke, grid, ticks: grid, size: 64, values: (u, vals) => axisFmt[kind](vals) },
    ];
  }

  // stacked turns per-series values into bars that sit on each other: series
  // i is drawn at the sum of itself and every series after it, tallest first,
  // so each later (shorter) bar covers the top of the one before.
  function stacked(rows) {
    const out = rows.map((r) => r.slice());
    for (let i = out.length - 2; i >= 0; i--) out[i] = out[i].map((v, j) => v + out[i + 1][j]);
    return out;
  }

  function barChart(el, t, names, rows, fmt, kind, colors, extra) {
    colors = colors || palette;
    const tops = stacked(rows);
    const bars = uPlot.paths.bars({ size: [0.8, 48], gap: 1 });
    const series = [{}].concat(names.map((name, i) => ({
      label: name,
      fill: colors[i % colors.length],
      stroke: colors[i % colors.length],
      width: 0,
      paths: bars,
      points: { show: false },
      value: (u, v, si, idx) => idx == null ? "—" : fmt(rows[i][idx]),
    })));
    return plot(el, [t].concat(tops), series, axes(kind), extra);
  }

  function lineChart(el, t, names, rows, fmt, kind, colors) {
    const series = [{}].concat(names.map((name, i) => {
      const c = (colors || palette)[i % palette.length];
      return { label: name, stroke: c, width: 2, fill: alpha(c, 0.12), spanGaps: false, points: { show: false }, value: (u, v) => fmt(v) };
    }));
    // A rate with no errors at all still gets a readable axis (0–5%, not 0–10000%).
    const extra = kind === "pct" ? { scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, 0.05)] } } } : undefined;
    return plot(el, [t].concat(rows), series, axes(kind), extra);
  }

  function plot(el, data, series, ax, extra) {
    const legendH = extra && extra.legend && extra.legend.show === false ? 0 : 40;
    const opts = Object.assign({
      width: Math.max(el.clientWidth, 200),
      height: Math.max(el.clientHeight - legendH, 80),
      series, axes: ax,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
    }, extra || {});
    const u = new uPlot(opts, data, el);
    new ResizeObserver(() => u.setSize({ width: Math.max(el.clientWidth, 200), height: u.height })).observe(el);
    return u;
  }

  function sparkline(el, t, values, color) {
    const u = new uPlot({
      width: Math.max(el.clientWidth, 60), height: el.clientHeight || 36,
      legend: { show: false }, cursor: { show: false }, select: { show: false },
      axes: [{ show: false }, { show: false }],
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(max, 1e-9)] } },
      series: [{}, { stroke: color, width: 1.5, fill: alpha(color, 0.15), points: { show: false } }],
    }, [t, values], el);
    new ResizeObserver(() => u.setSize({ width: Math.max(el.clientWidth, 60), height: u.height })).observe(el);
  }

  // --- Category charts: x is an index, the axis shows each one's name. ----
  function categoryOpts(labels, kind, yRange, xLabel) {
    const ax = axes(kind);
    ax[0] = Object.assign({}, ax[0], {
      splits: () => labels.map((_, i) => i),
      values: (u, vals) => vals.map((v) => labels[v] ?? ""),
      grid: { show: false },
    });
    return {
      axes: ax,
      scales: { x: { time: false, range: () => [-0.5, labels.length - 0.5] }, y: { range: yRange } },
      x: { label: xLabel || "Candidate", value: (u, v) => (v == null ? "—" : labels[v] ?? "") },
    };
  }

  // histogram draws counts per bucket (the dataset's token lengths).
  function histogram(el, labels, counts) {
    if (!counts.length) return empty(el, "No rows.");
    const o = categoryOpts(labels, "num", (u, min, max) => [0, Math.max(max, 1)]);
    const series = [{ label: "Tokens", value: (u, v) => (v == null ? "—" : labels[v] ?? "") }, { label: "Examples", fill: alpha(palette[0], 0.85), stroke: palette[0], width: 0,
      paths: uPlot.paths.bars({ size: [0.9, 80], gap: 1 }), points: { show: false }, value: (u, v) => num(v) }];
    return plot(el, [labels.map((_, i) => i), counts], series, o.axes, { scales: o.scales });
  }

  // ciBars draws one bar per candidate with its 95% interval as a whisker
  // and the mean written above it; colors[i] is candidate i's palette index
  // (the page's legend row names them); ref, when set, is a dashed line
  // (50% for win rates).
  function ciBars(el, names, stats, kind, opt) {
    opt = opt || {};
    const fmt = kind === "usd" ? usd : pct;
    const color = (i) => palette[(opt.colors ? opt.colors[i] : i) % palette.length];
    const top = Math.max(...stats.map((s) => (s ? s.hi : 0)), opt.ref || 0);
    const o = categoryOpts(names, kind, kind === "pct" ? () => [0, 1.12] : () => [0, top > 0 ? top * 1.25 : 1]);
    if (opt.hideNames) o.axes[0] = Object.assign({}, o.axes[0], { values: (u, vals) => vals.map(() => ""), size: 12 });
    if (kind === "pct") o.axes[1] = Object.assign({}, o.axes[1], { splits: () => [0, 0.25, 0.5, 0.75, 1] });
    const xs = names.map((_, i) => i);
    const bars = uPlot.paths.bars({ size: [0.6, 72], gap: 2 });
    const series = [o.x].concat(names.map((name, i) => ({
      label: name, fill: alpha(color(i), 0.85), stroke: color(i), width: 0, paths: bars, points: { show: false },
    })));
    const data = [xs].concat(names.map((_, i) => xs.map((x) => (x === i && stats[i] ? stats[i].mean : null))));
    const whiskers = (u) => {
      const c = u.ctx;
      const px = devicePixelRatio;
      c.save();
      c.strokeStyle = c.fillStyle = css("--ink");
      c.lineWidth = 1.5 * px;
      c.font = `600 ${11 * px}px system-ui, sans-serif`;
      c.textAlign = "center";
      stats.forEach((s, i) => {
        const x = u.valToPos(i, "x", true);
        if (!s) {
          c.fillText("n/a", x, u.valToPos(0, "y", true) - 4 * px);
          return;
        }
        const lo = u.valToPos(s.lo, "y", true), hi = u.valToPos(s.hi, "y", true);
        const w = 6 * px;
        c.beginPath();
        c.moveTo(x, lo); c.lineTo(x, hi);
        c.moveTo(x - w, lo); c.lineTo(x + w, lo);
        c.moveTo(x - w, hi); c.lineTo(x + w, hi);
        c.stroke();
        c.fillText(fmt(s.mean), x, hi - 5 * px);
      });
      if (opt.ref != null) {
        const y = u.valToPos(opt.ref, "y", true);
        c.setLineDash([4 * px, 4 * px]);
        c.strokeStyle = css("--muted");
        c.beginPath(); c.moveTo(u.bbox.left, y); c.lineTo(u.bbox.left + u.bbox.width, y); c.stroke();
      }
      c.restore();
    };
    return plot(el, data, series, o.axes, { scales: o.scales, legend: { show: false }, hooks: { draw: [whiskers] } });
  }

  // groupedBars draws several values per category side by side (latency p50 and p95).
  function groupedBars(el, labels, names, rows, fmt, kind) {
    const o = categoryOpts(labels, kind, (u, min, max) => [0, Math.max(max, 1) * 1.1]);
    const n = names.length;
    const series = [o.x].concat(names.map((name, i) => ({
      label: name, fill: alpha(palette[i + 1], 0.85), stroke: palette[i + 1], width: 0, points: { show: false },
      paths: uPlot.paths.bars({ size: [0.7 / n, 48], gap: 2, align: n === 1 ? 0 : (i === 0 ? -1 : 1) }),
      value: (u, v, si, idx) => (idx == null ? rows[i].map(fmt).join(" / ") : fmt(v)),
    })));
    return plot(el, [labels.map((_, i) => i)].concat(rows), series, o.axes, { scales: o.scales });
  }

  // markers draws labelled vertical lines at x values (route version changes, N*).
  function markers(list) {
    return (u) => {
      const c = u.ctx;
      c.save();
      c.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
      list.forEach((m) => {
        const x = u.valToPos(m.x, "x", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        c.strokeStyle = c.fillStyle = m.color;
        c.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        c.lineWidth = 1.5 * devicePixelRatio;
        c.beginPath(); c.moveTo(x, u.bbox.top); c.lineTo(x, u.bbox.top + u.bbox.height); c.stroke();
        c.fillText(m.label, x + 4 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
      });
      c.restore();
    };
  }

  // lossCurves draws a training job's train and validation loss by step.
  function lossCurves(el, d) {
    if (!d.steps.length) return empty(el, "No steps yet: the curves appear after the first optimizer step.");
    const series = [
      { label: "Step", value: (u, v) => (v == null ? "—" : "step " + v) },
      { label: "Train", stroke: palette[0], width: 1.5, points: { show: false }, spanGaps: true, value: (u, v) => (v == null ? "—" : v.toFixed(4)) },
      { label: "Validation", stroke: palette[3], width: 2, spanGaps: true, points: { show: true, size: 6, fill: palette[3] }, value: (u, v) => (v == null ? "—" : v.toFixed(4)) },
    ];
    const ax = axes("num");
    ax[1] = Object.assign({}, ax[1], { values: (u, vals) => vals.map((v) => v.toFixed(2)) });
    const u = plot(el, [d.steps, d.train, d.val], series, ax, { scales: { x: { time: false } } });
    el.loss = u;
    return u;
  }

  // A running job's page polls #job-live (htmx); each answer carries the
  // curves' data in data-loss, and the chart takes it without redrawing the page.
  document.addEventListener("htmx:afterSwap", () => {
    const live = document.getElementById("job-live");
    const el = document.querySelector("[data-chart=loss]");
    if (!live || !el || !live.dataset.loss) return;
    const d = JSON.parse(live.dataset.loss);
    if (el.loss) el.loss.setData([d.steps, d.train, d.val]);
    else if (d.steps.length) { el.textContent = ""; lossCurves(el, d); }
  });

  // breakEven draws the cumulative cost of N requests on the teacher alone
  // against training plus N requests on the student; they cross at N*.
  function breakEven(el, b) {
    let xmax = b.n_star != null ? Math.max(2 * b.n_star, 10) : Math.max(30 * b.requests_per_day, 1000);
    xmax = Math.ceil(xmax);
    const xs = [0];
    if (b.n_star != null && b.n_star > 0) xs.push(b.n_star);
    xs.push(xmax);
    const teacher = xs.map((x) => x * b.teacher_per_request);
    const student = xs.map((x) => b.training_usd + x * b.student_per_request);
    const series = [
      { label: "Requests", value: (u, v) => (v == null ? "—" : num(v)) },
      { label: "Teacher only (" + b.teacher + ")", stroke: palette[4], width: 2, points: { show: false }, value: (u, v) => usd(v) },
      { label: "Training + student (" + b.student + ")", stroke: palette[2], width: 2, points: { show: false }, value: (u, v) => usd(v) },
    ];
    const ax = axes("usd");
    ax[0] = Object.assign({}, ax[0], { values: (u, vals) => vals.map((v) => compact.format(v)) });
    const list = b.n_star != null ? [{ x: b.n_star, label: "N* = " + compact.format(Math.ceil(b.n_star)), color: css("--ink") }] : [];
    return plot(el, [xs, teacher, student], series, ax, { scales: { x: { time: false } }, hooks: { draw: [markers(list)] } });
  }

  function drawCharts() {
    const src = document.getElementById("chart-data");
    if (!src || !window.uPlot) return;
    const d = JSON.parse(src.textContent);
    const t = d.t;
    const total = (rows) => t.map((_, j) => rows.reduce((s, r) => s + r[j], 0));
    const charts = {
      // Overview and Costs
      spend: (el) => d.models.length
        ? barChart(el, t, d.models, d.cost, usd, "usd")
        : empty(el, "No spend in this window yet."),
      requests: (el) => barChart(el, t, ["OK", "Errors"], [d.requests.map((n, i) => n - d.errors[i]), d.errors], num, "num", [palette[0], palette[4]]),
      tokens: (el) => lineChart(el, t, ["Prompt tokens", "Completion tokens"], [d.prompt, d.completion], num, "num", [palette[0], palette[1]]),
      errorrate: (el) => lineChart(el, t, ["Error rate"], [d.error_rate], pct, "pct", [palette[4]]),
      breakeven: (el) => breakEven(el, d.breakeven),
      // Datasets
      histogram: (el) => histogram(el, d.labels, d.counts),
      // Training
      loss: (el) => lossCurves(el, d),
      // Evals
      metric: (el) => { const m = d.metrics[Number(el.dataset.index)]; return ciBars(el, m.names, m.stats, m.kind, { hideNames: true }); },
      winrate: (el) => ciBars(el, d.win_rate.names, d.win_rate.stats, "pct", { ref: 0.5, colors: d.win_rate.names.map((n) => d.candidates.indexOf(n)) }),
      latency: (el) => groupedBars(el, d.candidates, ["p50", "p95"], [d.p50, d.p95], ms, "ms"),
      // Routes
      split: (el) => {
        if (!d.arms.length) return empty(el, "No calls to this route in this window.");
        const list = d.versions.map((v) => ({ x: v.t, label: v.label, color: v.kind === "rollback" ? palette[4] : css("--muted") }));
        return barChart(el, t, d.arms, d.calls, num, "num", null, { hooks: { draw: [markers(list)] } });
      },
      escalations: (el) => barChart(el, t, ["Escalations"], [d.escalations], num, "num", [palette[3]]),
    };
    document.querySelectorAll("[data-chart]").forEach((el) => {
      const draw = charts[el.dataset.chart];
      if (draw) draw(el);
    });
    const sparks = {
      requests: () => [d.requests, palette[0]],
      cost: () => [d.cost.length ? total(d.cost) : t.map(() => 0), palette[2]],
      p95: () => [d.p95_ms, palette[3]],
    };
    document.querySelectorAll("[data-spark]").forEach((el) => {
      const s = sparks[el.dataset.spark];
      if (s) sparkline(el, t, ...s());
    });
  }

  function empty(el, msg) {
    const p = document.createElement("div");
    p.className = "chart-empty";
    p.textContent = msg;
    el.appendChild(p);
  }

  function start() {
    localizeTimes(document);
    if (window.htmx) htmx.onLoad(localizeTimes);
    setupTraffic();
    drawCharts();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
