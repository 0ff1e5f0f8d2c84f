/* Renkei console: draws the charts whose data the page embeds as JSON
   (<canvas data-chart="ID"> + <script type="application/json" id="ID">). No inline script: the
   Content-Security-Policy allows scripts from this origin only. Chart.js is vendored in this folder. */
(function () {
  "use strict";
  var COLORS = ["#2f5d8a", "#6aa84f", "#e69138", "#a64d79", "#999999", "#45818e", "#cc0000"];

  function yen(v) {
    var n = Math.round(Number(v) || 0);
    return (n < 0 ? "-¥" : "¥") + Math.abs(n).toLocaleString("en-US");
  }

  function monthLabel(m) {
    var r = /^(\d{4})-(\d{2})$/.exec(m);
    return r ? r[1] + "年" + Number(r[2]) + "月" : m;
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var money = spec.money !== false;
    var datasets = spec.series.map(function (s, i) {
      var c = COLORS[i % COLORS.length];
      return {
        label: s.label, data: s.data, type: s.type || "bar", borderColor: c,
        backgroundColor: s.type === "line" ? c : c + "cc", borderDash: s.dashed ? [6, 4] : [],
        tension: 0, pointRadius: 2, order: s.type === "line" ? 0 : 1, stack: spec.stacked ? "s" : undefined
      };
    });
    new Chart(canvas, {
      type: "bar",
      data: { labels: spec.labels.map(monthLabel), datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: !!spec.stacked },
          y: { stacked: !!spec.stacked, beginAtZero: true,
               ticks: { callback: function (v) { return money ? yen(v) : v; } } }
        },
        plugins: {
          tooltip: { callbacks: { label: function (ctx) {
            return ctx.dataset.label + ": " + (money ? yen(ctx.parsed.y) : ctx.parsed.y);
          } } }
        }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var canvases = document.querySelectorAll("canvas[data-chart]");
    for (var i = 0; i < canvases.length; i++) { draw(canvases[i]); }
    document.body.setAttribute("data-charts-ready", String(canvases.length));
  });
})();
