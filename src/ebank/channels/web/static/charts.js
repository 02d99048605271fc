// Report charts (ECharts, vendored): every element with data-chart="line" or "bar" draws the
// JSON data block named by its data-source, which a page writes as
//   <script type="application/json" id="...">{"labels": [...], "series": [{"name": "...",
//   "values": ["12.50", ...]}]}</script>
// Data, not script: the CSP allows it. Amounts come as exact decimal text and are plotted only.
(function () {
  "use strict";

  function draw(element) {
    var kind = element.dataset.chart === "bar" ? "bar" : "line";
    var block = document.getElementById(element.dataset.source || "");
    if (!block || typeof echarts === "undefined") return;
    var data;
    try {
      data = JSON.parse(block.textContent);
    } catch (error) {
      return;
    }
    var chart = echarts.init(element);
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 8, right: 8, bottom: 8, top: 40, containLabel: true },
      xAxis: { type: "category", data: data.labels || [] },
      yAxis: { type: "value" },
      series: (data.series || []).map(function (series) {
        return { name: series.name, type: kind, data: (series.values || []).map(Number) };
      }),
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(draw);
  });
})();
