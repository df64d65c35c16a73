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

  function showEmpty() { $("events-empty").hidden = [...list.rows].some((r) => !r.hidden); }
  const filter = GW.streamFilter(list, { hides: (row) => hiddenCategories().has(row.dataset.category), after: showEmpty });
  for (const check of checks) check.addEventListener("change", () => { filter.apply(); showEmpty(); });

  function subjectCell(event) {
    const cell = GW.element("td", {});
    if (event.device_id) cell.append(GW.subjectLink("device", event.device_id, event.name));
    else if (event.sn) cell.append(GW.subjectLink("terminal", event.sn));
    else if (event.dev_addr) {
      cell.append(GW.element("span", { className: "badge badge-foreign", title: event.reason_text || "" }, "unknown device"),
        " ", GW.element("code", { title: "DevAddr" }, event.dev_addr));
    } else if (event.eui) cell.append(GW.subjectLink("gateway", event.eui, event.name));
    return cell;
  }

  /* The device's name in place of its id in the line, when the line names the device by id. */
  function readable(event) {
    const names = GW.names();
    const name = event.device_id && (event.name || names.devices[event.device_id]);
    if (!name || name === event.device_id) return event.text;
    return String(event.text).split(event.device_id).join(name);
  }

  function add(event) {
    const names = GW.names();
    const label = (kind, id) => (id ? `${id} ${(names[`${kind}s`] || {})[id] || ""}` : "").toLowerCase();
    const row = GW.element("tr", { "data-category": event.category, "data-type": event.type, "data-seq": event.seq,
        "data-device": event.device_id ? `${label("device", event.device_id)} ${(event.name || "").toLowerCase()}`
          : event.dev_addr ? `unknown ${event.dev_addr}` : "",
        "data-terminal": label("terminal", event.sn),
        "data-gateway": (event.gateways || (event.eui ? [event.eui] : [])).map((eui) => label("gateway", eui)).join(" ")
          + (event.eui && event.name ? ` ${event.name.toLowerCase()}` : "") },
      GW.element("td", {}, GW.timeElement(event.ts, false)),
      GW.element("td", {}, GW.element("code", {}, event.type), GW.element("span", { className: "cat" }, event.category)),
      subjectCell(event),
      GW.element("td", {}, readable(event)),
      GW.element("td", { className: "muted small" }, event.seq));
    GW.expandable(row, event, row.cells.length);
    list.prepend(row);
    filter.apply([row]);
    GW.trim(list, MAX_ROWS);
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
  $("clear").addEventListener("click", () => { list.replaceChildren(); showEmpty(); });
});
