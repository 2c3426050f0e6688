// The console's only script: keeps the traffic charts live by fetching them again,
// server-rendered, every few seconds. Without it the page shows them as they were at load.
(function () {
  "use strict";
  var charts = document.getElementById("charts");
  if (!charts) { return; }
  var every = Number(charts.getAttribute("data-refresh-ms")) || 2000;
  function refresh() {
    fetch("/traffic/charts", {credentials: "same-origin", cache: "no-store"})
      .then(function (answer) { return answer.ok ? answer.text() : Promise.reject(answer.status); })
      .then(function (html) { charts.innerHTML = html; charts.setAttribute("data-live", "1"); })
      .catch(function () { charts.setAttribute("data-live", "0"); })
      .then(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
}());
