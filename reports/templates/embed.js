// Render every chart spec on the page with the inlined Vega-Embed (SVG, no action links: the page
// must never reach the network). body[data-charts] counts the charts drawn, for tests and printing.
(function () {
  "use strict";
  var specs = document.querySelectorAll("script.chart-spec");
  var options = {renderer: "svg", actions: false, mode: "vega-lite"};
  var drawn = 0;
  var jobs = Array.prototype.map.call(specs, function (node) {
    var target = document.getElementById(node.getAttribute("data-target"));
    return vegaEmbed(target, JSON.parse(node.textContent), options).then(function () {
      drawn += 1;
    }).catch(function (error) {
      target.textContent = "This chart could not be drawn: " + error;
      console.error(error);
    });
  });
  Promise.all(jobs).then(function () {
    document.body.setAttribute("data-charts", String(drawn) + "/" + String(specs.length));
  });
})();
