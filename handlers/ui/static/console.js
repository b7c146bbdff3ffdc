// infleet console: charts, the live job list and copy buttons. No inline script anywhere: the
// pages carry their data in data- attributes and this file reads them.
(function () {
  "use strict";

  function el(id) { return document.getElementById(id); }

  // Charts of the overview, from the GET /v1/stats JSON the page was rendered with, then
  // refreshed every 10 seconds through the console's pass-through to the same route.
  function charts() {
    var box = el("charts");
    if (!box || typeof uPlot === "undefined") { return; }
    var plots = [];
    function width(node) { return Math.max(280, node.clientWidth || 600); }
    function draw(stats) {
      var s = stats.series;
      plots.forEach(function (p) { p.destroy(); });
      plots = [];
      if (!s) {
        el("chart-throughput").textContent = "This job store keeps no figures (use the SQLite or PostgreSQL store).";
        return;
      }
      var tp = el("chart-throughput"), lat = el("chart-latency");
      plots.push(new uPlot({
        width: width(tp), height: 220, scales: { x: { time: true } },
        series: [{}, { label: "accepted", stroke: "#2563eb", width: 2 },
          { label: "completed", stroke: "#16a34a", width: 2 },
          { label: "failed", stroke: "#dc2626", width: 2 }],
        axes: [{}, { label: "jobs/min" }]
      }, [s.t, s.accepted, s.completed, s.failed], tp));
      plots.push(new uPlot({
        width: width(lat), height: 220, scales: { x: { time: true } },
        series: [{}, { label: "p50 ms", stroke: "#7c3aed", width: 2 },
          { label: "p95 ms", stroke: "#ea580c", width: 2 }],
        axes: [{}, { label: "ms" }]
      }, [s.t, s.latency_p50_ms, s.latency_p95_ms], lat));
      box.setAttribute("data-drawn", String(s.t.length));
    }
    try { draw(JSON.parse(box.getAttribute("data-stats"))); } catch (e) { box.setAttribute("data-error", String(e)); }
    setInterval(function () {
      fetch("/ui/api/v1/stats?window=1h", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (st) { if (st) { draw(st); } })
        .catch(function () {});
    }, 10000);
  }

  // The live job list: the first page's rows, replaced whenever the server says they changed.
  function liveJobs() {
    var body = el("jobs-rows");
    if (!body || !body.getAttribute("data-stream") || typeof EventSource === "undefined") { return; }
    var status = el("live-status");
    var es = new EventSource(body.getAttribute("data-stream"));
    es.addEventListener("rows", function (e) {
      body.innerHTML = e.data;
      body.setAttribute("data-updated", String(Date.now()));
      if (status) { status.textContent = "live: updated " + new Date().toLocaleTimeString(); }
    });
    es.addEventListener("problem", function (e) {
      if (status) { status.textContent = "live updates paused: " + e.data; }
    });
    es.onerror = function () {
      if (status) { status.textContent = "live updates reconnecting…"; }
    };
    window.addEventListener("pagehide", function () { es.close(); });
  }

  // Copy buttons: data-copy names the element whose text is copied.
  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var src = el(btn.getAttribute("data-copy"));
        var status = el("copy-status");
        if (!src) { return; }
        var text = src.textContent;
        function done(msg) { if (status) { status.textContent = msg; } }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(function () { done("Copied."); },
            function () { select(src); done("Selected: press Ctrl+C to copy."); });
        } else {
          select(src);
          done("Selected: press Ctrl+C to copy.");
        }
      });
    });
  }

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  document.addEventListener("DOMContentLoaded", function () {
    charts();
    liveJobs();
    copyButtons();
  });
})();
