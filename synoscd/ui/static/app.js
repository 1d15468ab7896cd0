// SynosCD dashboard: optional auto-refresh of the page's live part, and instant name filtering on the
// apps page. Every page reads fine without this file; it only fetches pages from the same origin.
(function () {
  "use strict";
  var KEY = "synoscd.autoRefresh";
  var PERIOD = 10000;
  var timer = null;

  function say(text) {
    var el = document.getElementById("refresh-status");
    if (el) el.textContent = text;
  }

  function filterRows() {
    var input = document.getElementById("f-q");
    var table = document.getElementById("apps-table");
    if (!input || !table) return;
    var q = input.value.trim().toLowerCase();
    var rows = table.tBodies[0].rows, shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var name = rows[i].getAttribute("data-name");
      if (name === null) continue;
      var match = !q || name.indexOf(q) !== -1;
      rows[i].hidden = !match;
      if (match) shown++;
    }
    var count = document.querySelector("[data-testid=shown]");
    if (count) count.textContent = String(shown);
  }

  function refresh() {
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
        var live = document.getElementById("live");
        if (fresh && live) {
          live.innerHTML = fresh.innerHTML;
          filterRows();
        }
        say("Updated " + new Date().toLocaleTimeString());
      })
      .catch(function (err) {
        say("Refresh failed (" + err.message + "); showing the last answer");
      });
  }

  function schedule(on) {
    if (timer) window.clearInterval(timer);
    timer = on ? window.setInterval(refresh, PERIOD) : null;
    try {
      window.localStorage.setItem(KEY, on ? "1" : "0");
    } catch (e) {
      /* storage may be off: the choice lasts for this page only */
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("refresh");
    var auto = document.getElementById("auto-refresh");
    var now = document.getElementById("refresh-now");
    if (box && auto && now) {
      box.hidden = false;
      var stored = null;
      try {
        stored = window.localStorage.getItem(KEY);
      } catch (e) {
        stored = null;
      }
      auto.checked = stored === "1";
      schedule(auto.checked);
      auto.addEventListener("change", function () {
        schedule(auto.checked);
      });
      now.addEventListener("click", refresh);
    }
    var input = document.getElementById("f-q");
    if (input) {
      input.addEventListener("input", filterRows);
      filterRows();
    }
  });
})();
