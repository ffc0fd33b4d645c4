// The console's few behaviours: each time in the viewer's zone, and the run page's live log.
// Loaded as a file (the pages' Content-Security-Policy allows no inline script).
"use strict";

(function () {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
  const local = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false, timeZoneName: "short",
  });

  // Each <time datetime=...> (printed in UTC by the server) gets the viewer's local time beside it.
  function localiseTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]:not([data-local])")) {
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      const span = document.createElement("span");
      span.className = "local-time";
      span.textContent = local.format(when);
      el.setAttribute("data-local", "");
      el.title = zone;
      el.after(span);
    }
  }

  // The run's log as server-sent events: "log" chunks (JSON text), then "end" or "failed".
  function followLog(pre) {
    const status = document.getElementById("log-state");
    const say = (text) => { if (status) status.textContent = text; };
    const source = new EventSource(pre.dataset.src);
    source.addEventListener("open", () => say("following the log live…"));
    source.addEventListener("log", (event) => {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(document.createTextNode(JSON.parse(event.data)));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("end", () => { source.close(); say("the run has ended; this is its whole log"); });
    source.addEventListener("failed", (event) => {
      source.close();
      say("log unavailable: " + JSON.parse(event.data).message);
    });
    source.addEventListener("closing", () => say("the catalog is restarting; reconnecting…"));
    // EventSource retries a broken connection by itself, resuming at the last offset.
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) say("log unavailable (refused)");
      else say("reconnecting…");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const zoneLabel = document.getElementById("viewer-zone");
    if (zoneLabel) zoneLabel.textContent = zone;
    localiseTimes(document);
    const pre = document.getElementById("log");
    if (pre && pre.dataset.src) followLog(pre);
  });
  // Parts htmx replaced (the run's status, the runs table) arrive with UTC times only.
  document.addEventListener("htmx:afterSettle", () => localiseTimes(document));
})();
