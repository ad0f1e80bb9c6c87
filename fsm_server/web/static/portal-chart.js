// Counter history charts: each element with class "chart" and a data-src URL gets a uPlot line
// chart of the JSON there ({"x": [unix seconds], "series": {name: [values or null]}}). The table
// in the <details> beside it shows the same data without script.
(function () {
  "use strict";
  var COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
                 "#7f7f7f", "#bcbd22"];

  function width(el) {
    return Math.max(280, Math.min(el.clientWidth || 600, 1100));
  }

  function draw(el, data) {
    var names = Object.keys(data.series);
    if (!data.x.length || !names.length) {
      el.textContent = "No counter readings in this period.";
      return;
    }
    var series = [{}];
    var columns = [data.x];
    names.forEach(function (name, i) {
      series.push({label: name, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true,
                   value: function (u, v) { return v == null ? "–" : v.toLocaleString(); }});
      columns.push(data.series[name]);
    });
    var opts = {
      width: width(el), height: 280, series: series,
      axes: [{}, {size: 70, values: function (u, ticks) { return ticks.map(function (t) { return t.toLocaleString(); }); }}],
      legend: {live: true}
    };
    el.textContent = "";
    var plot = new uPlot(opts, columns, el);
    el.setAttribute("data-drawn", "1");
    window.addEventListener("resize", function () { plot.setSize({width: width(el), height: 280}); });
  }

  function load(el) {
    fetch(el.getAttribute("data-src"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) { draw(el, data); })
      .catch(function (err) { el.textContent = "The chart could not be loaded (" + err.message + "); see the table."; });
  }

  function start() {
    if (typeof uPlot === "undefined") { return; }
    Array.prototype.forEach.call(document.querySelectorAll(".chart[data-src]"), load);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
