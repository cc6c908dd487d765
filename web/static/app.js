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

  // Axis labels: dollars with as many decimals as the tick step needs,
  // counts compact (12K), rates as percentages.
  const decimals = (vals) => {
    const step = vals.length > 1 ? Math.abs(vals[1] - vals[0]) : 1;
    return step > 0 ? Math.min(6, Math.max(0, -Math.floor(Math.log10(step)))) : 0;
  };
  const axisFmt = {
    usd: (vals) => { const d = decimals(vals); return vals.map((v) => "$" + v.toFixed(d)); },
    num: (vals) => vals.map((v) => compact.format(v)),
    pct: (vals) => { const d = Math.max(0, decimals(vals) - 2); return vals.map((v) => (v * 100).toFixed(d) + "%"); },
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

  function barChart(el, t, names, rows, fmt, kind, colors) {
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
    return plot(el, [t].concat(tops), series, axes(kind));
  }

  function lineChart(el, t, names, rows, fmt, kind, colors) {
    const series = [{}].concat(names.map((name, i) => {
      const c = (colors || palette)[i % palette.length];
      return { label: name, stroke: c, width: 2, fill: alpha(c, 0.12), spanGaps: false, points: { show: false }, value: (u, v) => fmt(v) };
    }));
    return plot(el, [t].concat(rows), series, axes(kind));
  }

  function plot(el, data, series, ax, extra) {
    const legendH = 40;
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

  function drawCharts() {
    const src = document.getElementById("chart-data");
    if (!src || !window.uPlot) return;
    const d = JSON.parse(src.textContent);
    const t = d.t;
    const total = (rows) => t.map((_, j) => rows.reduce((s, r) => s + r[j], 0));
    const ok = d.requests.map((n, i) => n - d.errors[i]);
    const charts = {
      spend: (el) => d.models.length
        ? barChart(el, t, d.models, d.cost, usd, "usd")
        : empty(el, "No spend in this window yet."),
      requests: (el) => barChart(el, t, ["OK", "Errors"], [ok, d.errors], num, "num", [palette[0], palette[4]]),
      tokens: (el) => lineChart(el, t, ["Prompt tokens", "Completion tokens"], [d.prompt, d.completion], num, "num", [palette[0], palette[1]]),
      errorrate: (el) => lineChart(el, t, ["Error rate"], [d.error_rate], pct, "pct", [palette[4]]),
    };
    document.querySelectorAll("[data-chart]").forEach((el) => {
      const draw = charts[el.dataset.chart];
      if (draw) draw(el);
    });
    const sparks = {
      requests: [d.requests, palette[0]],
      cost: [d.cost.length ? total(d.cost) : t.map(() => 0), palette[2]],
      p95: [d.p95_ms, palette[3]],
    };
    document.querySelectorAll("[data-spark]").forEach((el) => {
      const s = sparks[el.dataset.spark];
      if (s) sparkline(el, t, s[0], s[1]);
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
