// The report's charts: reads the data embedded in the page and draws each figure with uPlot.
// Each figure is marked with the points it drew and the page with any error, so that a test in
// a headless browser can tell what rendered.
(function () {
  "use strict";
  var root = document.documentElement;
  var errors = [];
  function fail(message) {
    errors.push(message);
    root.setAttribute("data-errors", errors.join(" | "));
  }
  window.addEventListener("error", function (event) { fail(String(event.message)); });

  var data = JSON.parse(document.getElementById("report-data").textContent);
  var series = data.series;
  var palette = { vus: "#7c3aed", rps: "#2563eb", p50: "#16a34a", p95: "#d97706", p99: "#dc2626",
                  failed: "#dc2626", dropped: "#7c3aed", dist: "#2563eb" };

  function line(label, color, scale) {
    var options = { label: label, stroke: color, width: 2 };
    if (scale) { options.scale = scale; }
    return options;
  }

  function draw(id, options, columns) {
    var figure = document.getElementById("chart-" + id);
    var plot = figure.querySelector(".plot");
    try {
      options.width = Math.max(320, plot.clientWidth || 860);
      options.height = 240;
      options.legend = { live: false };
      new uPlot(options, columns, plot);
      var points = columns.length > 1 ? columns[1].filter(function (v) { return v != null; }).length : 0;
      figure.setAttribute("data-points", String(points));
      figure.setAttribute("data-rendered", "true");
    } catch (error) {
      fail(id + ": " + error.message);
    }
  }

  var seconds = { label: "seconds since start" };
  draw("load", {
    scales: { x: { time: false }, vus: {}, rps: {} },
    axes: [seconds, { scale: "vus", label: "VUs" },
           { scale: "rps", side: 1, label: "requests/s", grid: { show: false } }],
    series: [{ label: "s" }, line("VUs", palette.vus, "vus"), line("requests/s", palette.rps, "rps")]
  }, [series.t, series.vus, series.rps]);

  draw("latency", {
    scales: { x: { time: false } },
    axes: [seconds, { label: "ms" }],
    series: [{ label: "s" }, line("p50 ms", palette.p50), line("p95 ms", palette.p95),
             line("p99 ms", palette.p99)]
  }, [series.t, series.p50, series.p95, series.p99]);

  draw("errors", {
    scales: { x: { time: false } },
    axes: [seconds, { label: "per second" }],
    series: [{ label: "s" }, line("failed requests/s", palette.failed),
             line("dropped iterations/s", palette.dropped)]
  }, [series.t, series.failed, series.dropped]);

  // One point per interval, ordered by throughput (uPlot's x values must ascend).
  var pairs = series.rps.map(function (rps, i) { return [rps, series.p95[i]]; })
    .filter(function (p) { return p[1] != null; })
    .sort(function (a, b) { return a[0] - b[0]; });
  draw("saturation", {
    scales: { x: { time: false } },
    axes: [{ label: "requests/s in the interval" }, { label: "p95 ms" }],
    series: [{ label: "req/s" }, { label: "p95 ms", stroke: palette.p95, width: 0,
              paths: function () { return null; }, points: { show: true, size: 6, fill: palette.p95 } }]
  }, [pairs.map(function (p) { return p[0]; }), pairs.map(function (p) { return p[1]; })]);

  // Percentiles on a "nines" axis (0 = p0, 2 = p99, 4 = p99.99), durations on a log axis.
  var quantiles = data.distribution.filter(function (q) { return q.percentile < 100; });
  var nines = quantiles.map(function (q) { return -Math.log10(1 - q.percentile / 100); });
  var label = function (v) { return v === 0 ? "p0" : "p" + (100 - 100 * Math.pow(10, -v)).toFixed(Math.max(0, v - 2)); };
  draw("distribution", {
    scales: { x: { time: false }, y: { distr: 3 } },
    axes: [{ label: "percentile", splits: function () { return [0, 1, 2, 3, 4]; },
             values: function (u, splits) { return splits.map(label); } },
           { label: "ms" }],
    series: [{ label: "nines", value: function (u, v) { return v == null ? "" : label(v); } },
             { label: "duration ms", stroke: palette.dist, width: 2, points: { show: true, size: 5 } }]
  }, [nines, quantiles.map(function (q) { return Math.max(q.ms, 0.001); })]);

  root.setAttribute("data-charts", errors.length ? "failed" : "done");
})();
