// Refreshes the page's live part (<main id="live" data-refresh="N">) every N seconds by
// asking the server for the same page's <main> only (header X-Dashboard-Live: 1). It
// waits while the hidden tab is hidden, or while a box in that part is ticked or focused.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var seconds = live ? Number(live.getAttribute("data-refresh")) : 0;
  if (!seconds) return;
  function busy() {
    var focused = document.activeElement;
    return live.querySelector("input:checked") !== null || (focused !== live && live.contains(focused));
  }
  function refresh() {
    if (document.hidden || busy()) return;
    fetch(window.location.href, { headers: { "X-Dashboard-Live": "1" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null && !busy()) {
          live.innerHTML = html;
          live.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, seconds * 1000);
})();
