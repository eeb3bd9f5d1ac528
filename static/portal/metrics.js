/* The VM Metrics tab: uPlot charts from /api/v1/virtual-machines/{id}/metrics/.
   One request per chart per refresh; refreshes every collection interval while the page is
   visible; redraws on theme change and resize. Values on hover, with units. */
(function () {
  "use strict";
  var root = document.getElementById("metrics");
  if (!root || !window.uPlot) return;
  var RANGES = { "1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
  var range = "1h";
  var charts = [];
  var status = root.querySelector("[data-status]");
  var tz = root.dataset.tz || "UTC";

  function color(name) {
    var probe = document.createElement("span");
    probe.style.color = "var(" + name + ")";
    probe.hidden = true;
    root.appendChild(probe);
    var value = getComputedStyle(probe).color;
    probe.remove();
    return value;
  }

  function scaled(value, unit) {
    if (value == null || isNaN(value)) return "–";
    if (unit === "%") return value.toFixed(1) + " %";
    var base = unit === "B" ? 1024 : 1000;
    var prefixes = unit === "B" ? ["", "Ki", "Mi", "Gi", "Ti"] : ["", "k", "M", "G", "T"];
    var i = 0;
    while (Math.abs(value) >= base && i < prefixes.length - 1) { value /= base; i++; }
    var digits = value >= 100 || i === 0 && unit === "ops/s" ? 0 : 1;
    return value.toFixed(digits) + " " + prefixes[i] + unit;
  }

  function options(figure, body) {
    var unit = figure.dataset.unit;
    var palette = [color("--chart-1"), color("--chart-2")];
    var text = color("--muted"), grid = color("--border");
    var axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    var width = figure.querySelector(".plot").clientWidth || 320;
    return {
      width: width,
      height: width < 500 ? 160 : 200,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), tz); },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { y: unit === "%" ? { range: [0, 100] } : { range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
      axes: [
        Object.assign({}, axis),
        Object.assign({}, axis, { size: 84, values: function (u, ticks) { return ticks.map(function (v) { return scaled(v, unit); }); } }),
      ],
      series: [{ label: "Time (" + tz + ")" }].concat(body.series.map(function (s, i) {
        return {
          label: s.label,
          stroke: palette[i % palette.length],
          width: 1.5,
          fill: i === 0 ? palette[0].replace("rgb(", "rgba(").replace(")", ", 0.12)") : undefined,
          spanGaps: false,
          value: function (u, v) { return scaled(v, s.unit); },
        };
      })),
    };
  }

  function draw(figure, body) {
    var plot = figure.querySelector(".plot");
    var data = [body.t].concat(body.series.map(function (s) { return body.values[s.key]; }));
    var old = charts.find(function (c) { return c.figure === figure; });
    if (old) { old.chart.destroy(); charts.splice(charts.indexOf(old), 1); }
    plot.textContent = "";
    if (!body.t.length) { plot.textContent = "No data for this period yet."; }
    var chart = new uPlot(options(figure, body), data, plot);
    if (body.t.length) chart.setLegend({ idx: body.t.length - 1 });  // the latest values until hovered
    charts.push({ figure: figure, chart: chart, body: body });
  }

  function load() {
    var end = new Date();
    var start = new Date(end.getTime() - RANGES[range] * 1000);
    var figures = root.querySelectorAll("figure[data-metric]");
    status.textContent = "Loading…";
    var pending = figures.length, failed = false;
    figures.forEach(function (figure) {
      var url = root.dataset.url + "?metric=" + figure.dataset.metric +
        "&from=" + encodeURIComponent(start.toISOString()) + "&to=" + encodeURIComponent(end.toISOString());
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (body) { draw(figure, body); })
        .catch(function () { failed = true; })
        .finally(function () {
          pending -= 1;
          if (!pending) status.textContent = failed ? "Some charts could not be loaded; retrying at the next refresh." : "Updated " + end.toLocaleTimeString();
        });
    });
  }

  root.querySelectorAll("[data-range]").forEach(function (button) {
    button.addEventListener("click", function () {
      range = button.dataset.range;
      root.querySelectorAll("[data-range]").forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
      load();
    });
  });

  function redraw() { charts.slice().forEach(function (c) { draw(c.figure, c.body); }); }
  new MutationObserver(redraw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
  var resizeTimer;
  window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(redraw, 150); });

  var every = Math.max(15, parseInt(root.dataset.refresh, 10) || 60) * 1000;
  setInterval(function () { if (!document.hidden) load(); }, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) load(); });
  load();
})();
