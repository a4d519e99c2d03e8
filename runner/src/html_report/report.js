// The report's charts: reads the data embedded in the page and draws each figure with uPlot.
// On the live dashboard (data-live names the event stream) each update replaces the text parts
// and the charts' data. Figures are marked with the points they drew and the page with any
// error and each update, so that a test in a headless browser can tell what rendered.
(function () {
  "use strict";
  var root = document.documentElement;
  var errors = [];
  function fail(message) {
    errors.push(message);
    root.setAttribute("data-errors", errors.join(" | "));
  }
  window.addEventListener("error", function (event) { fail(String(event.message)); });

  var palette = { vus: "#7c3aed", rps: "#2563eb", inFlight: "#64748b", p50: "#16a34a", p90: "#0891b2", p95: "#d97706", p99: "#dc2626",
                  failed: "#dc2626", dropped: "#7c3aed", dist: "#2563eb", iterations: "#0d9488",
                  client: "#ca8a04", server: "#9333ea", none: "#475569" };
  var codeShades = ["#0f766e", "#b45309", "#be185d", "#4338ca", "#15803d", "#7f1d1d"];
  var seconds = { label: "seconds since start" };

  // What the executors planned: dashed, behind what was achieved.
  function planned(label, color, scale) {
    var options = line(label, color, scale);
    options.dash = [6, 4];
    options.width = 1.5;
    options.points = { show: false };
    return options;
  }

  function line(label, color, scale) {
    var options = { label: label, stroke: color, width: 2 };
    if (scale) { options.scale = scale; }
    return options;
  }

  // One point per interval, ordered by throughput (uPlot's x values must ascend).
  function saturation(series) {
    var pairs = series.rps.map(function (rps, i) { return [rps, series.p95[i]]; })
      .filter(function (p) { return p[1] != null; })
      .sort(function (a, b) { return a[0] - b[0]; });
    return [pairs.map(function (p) { return p[0]; }), pairs.map(function (p) { return p[1]; })];
  }

  // Percentiles on a "nines" axis (0 = p0, 2 = p99, 4 = p99.99), durations on a log axis.
  function distribution(quantiles) {
    var shown = quantiles.filter(function (q) { return q.percentile < 100; });
    return [shown.map(function (q) { return -Math.log10(1 - q.percentile / 100); }),
            shown.map(function (q) { return Math.max(q.ms, 0.001); })];
  }
  function nines(v) {
    return v === 0 ? "p0" : "p" + (100 - 100 * Math.pow(10, -v)).toFixed(Math.max(0, v - 2));
  }

  // Each chart: its options and how its columns come from the data.
  var charts = {
    load: {
      options: { scales: { x: { time: false }, vus: {}, rps: {} },
        axes: [seconds, { scale: "vus", label: "VUs, requests in flight" },
               { scale: "rps", side: 1, label: "per second", grid: { show: false } }],
        series: [{ label: "s" }, line("VUs", palette.vus, "vus"),
                 planned("planned VUs", palette.vus, "vus"),
                 line("requests in flight", palette.inFlight, "vus"),
                 line("requests/s", palette.rps, "rps"),
                 line("iterations/s", palette.iterations, "rps"),
                 planned("planned arrival rate/s", palette.iterations, "rps")] },
      columns: function (d) {
        return [d.series.t, d.series.vus, d.series.plannedVus, d.series.inFlight, d.series.rps,
                d.series.iterations, d.series.plannedRate];
      }
    },
    latency: {
      options: { scales: { x: { time: false } }, axes: [seconds, { label: "ms" }],
        series: [{ label: "s" }, line("p50 ms", palette.p50), line("p90 ms", palette.p90), line("p95 ms", palette.p95),
                 line("p99 ms", palette.p99)] },
      columns: function (d) { return [d.series.t, d.series.p50, d.series.p90, d.series.p95, d.series.p99]; }
    },
    errors: {
      // One dashed line per k6 error_code of the requests with no response.
      optionsFor: function (d) {
        var series = [{ label: "s" }, line("failed requests/s", palette.failed),
                 line("4xx/s", palette.client), line("5xx/s", palette.server),
                 line("no response/s", palette.none), line("dropped iterations/s", palette.dropped)];
        d.series.noResponseByCode.forEach(function (code, i) {
          var shade = codeShades[i % codeShades.length];
          series.push({ label: code.label + "/s", stroke: shade, width: 1.5, dash: [4, 3],
                        points: { show: true, size: 4, fill: shade } });
        });
        return { scales: { x: { time: false } }, axes: [seconds, { label: "per second" }], series: series };
      },
      columns: function (d) {
        return [d.series.t, d.series.failed, d.series.clientErrors, d.series.serverErrors,
                d.series.noResponse, d.series.dropped].concat(
          d.series.noResponseByCode.map(function (code) { return code.perSecond; }));
      }
    },
    saturation: {
      options: { scales: { x: { time: false } },
        axes: [{ label: "requests/s in the interval" }, { label: "p95 ms" }],
        series: [{ label: "req/s" }, { label: "p95 ms", stroke: palette.p95, width: 0,
                  paths: function () { return null; }, points: { show: true, size: 6, fill: palette.p95 } }] },
      columns: function (d) { return saturation(d.series); }
    },
    distribution: {
      options: { scales: { x: { time: false }, y: { distr: 3 } },
        axes: [{ label: "percentile", splits: function () { return [0, 1, 2, 3, 4]; },
                 values: function (u, splits) { return splits.map(nines); } },
               { label: "ms" }],
        series: [{ label: "nines", value: function (u, v) { return v == null ? "" : nines(v); } },
                 { label: "duration ms", stroke: palette.dist, width: 2, points: { show: true, size: 5 } }] },
      columns: function (d) { return distribution(d.distribution); }
    }
  };

  function mark(id, columns) {
    var points = columns.length > 1 ? columns[1].filter(function (v) { return v != null; }).length : 0;
    var figure = document.getElementById("chart-" + id);
    figure.setAttribute("data-points", String(points));
    figure.setAttribute("data-rendered", "true");
  }

  function draw(id, data) {
    var chart = charts[id];
    var plot = document.getElementById("chart-" + id).querySelector(".plot");
    try {
      var options = chart.optionsFor ? chart.optionsFor(data) : chart.options;
      options.width = Math.max(320, plot.clientWidth || 860);
      options.height = 240;
      options.legend = { live: false };
      var columns = chart.columns(data);
      chart.plot = new uPlot(options, columns, plot);
      mark(id, columns);
    } catch (error) {
      fail(id + ": " + error.message);
    }
  }

  function redraw(id, data) {
    var chart = charts[id];
    try {
      var columns = chart.columns(data);
      if (columns.length !== chart.plot.series.length) {
        // A new series (an error code first seen): draw the chart again with it.
        chart.plot.destroy();
        draw(id, data);
        return;
      }
      chart.plot.setData(columns);
      mark(id, columns);
    } catch (error) {
      fail(id + ": " + error.message);
    }
  }

  var data = JSON.parse(document.getElementById("report-data").textContent);
  Object.keys(charts).forEach(function (id) { draw(id, data); });
  root.setAttribute("data-charts", errors.length ? "failed" : "done");

  var live = root.getAttribute("data-live");
  if (!live) { return; }
  var updates = 0;
  function apply(event) {
    var update = JSON.parse(event.data);
    Object.keys(update.sections).forEach(function (id) {
      var element = document.getElementById(id);
      if (element) { element.outerHTML = update.sections[id]; }
    });
    Object.keys(update.captions).forEach(function (id) {
      document.getElementById("chart-" + id).querySelector(".values").textContent = update.captions[id];
    });
    Object.keys(charts).forEach(function (id) { redraw(id, update.data); });
    updates += 1;
    root.setAttribute("data-updates", String(updates));
    root.setAttribute("data-requests", String(update.data.headline.requests));
    if (update.done) {
      root.setAttribute("data-final", "true");
      document.title = document.title.replace("RUNNING", update.data.passed ? "PASSED" : "FAILED");
    }
  }
  var source = new EventSource(live);
  source.addEventListener("update", apply);
  source.addEventListener("final", function (event) { apply(event); source.close(); });
  source.onerror = function () {
    // The run is over and its server gone: the page keeps the last update.
    if (root.getAttribute("data-final") !== "true") { root.setAttribute("data-disconnected", "true"); }
    source.close();
  };
})();
