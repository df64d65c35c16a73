/* Event stream: every event and action, live, with type filters and a pause that loses nothing
   (resuming reconnects with since=<next seq>, and the server replays the gap from the journal). */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const list = $("event-list");
  const MAX_ROWS = 1000;
  const BACK = 200;  // records of history shown when the page opens
  const pageSeq = Number(document.body.dataset.seq || 0);
  const checks = [...document.querySelectorAll('#types input[name="category"]')];
  const hiddenCategories = () => new Set(checks.filter((c) => !c.checked).map((c) => c.value));

  function applyFilter() {
    const hidden = hiddenCategories();
    for (const row of list.rows) row.hidden = hidden.has(row.dataset.category);
    $("events-empty").hidden = [...list.rows].some((r) => !r.hidden);
  }
  for (const check of checks) check.addEventListener("change", applyFilter);

  function add(event) {
    const row = GW.element("tr", { "data-category": event.category, "data-type": event.type, "data-seq": event.seq },
      GW.element("td", {}, GW.timeElement(event.ts, false)),
      GW.element("td", {}, GW.element("code", {}, event.type), GW.element("span", { className: "cat" }, event.category)),
      GW.element("td", {}, event.text),
      GW.element("td", { className: "muted small" }, event.seq));
    row.hidden = hiddenCategories().has(event.category);
    list.prepend(row);
    while (list.rows.length > MAX_ROWS) list.deleteRow(-1);
    if (!row.hidden) $("events-empty").hidden = true;
  }

  const state = $("stream-state");
  const feed = GW.live({ since: Math.max(1, pageSeq - BACK + 1) }, {
    event: add,
    gap(info) {
      add({ category: "system", type: "gap", ts: new Date().toISOString(), seq: "",
        text: `Records ${info.from} to ${info.to} are no longer in the journal and cannot be shown.` });
    },
    state(name) {
      GW.setBadge(state, name === "live" ? "live" : name === "paused" ? "pending" : "offline", name);
    },
  });

  $("pause").addEventListener("click", () => {
    const pausing = !feed.paused;
    if (pausing) feed.pause(); else feed.resume();
    $("pause").textContent = pausing ? "Resume" : "Pause";
    $("pause").setAttribute("aria-pressed", pausing ? "true" : "false");
    $("paused-note").hidden = !pausing;
  });
  $("clear").addEventListener("click", () => { list.replaceChildren(); applyFilter(); });
});
