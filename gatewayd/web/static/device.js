/* Device page: live status, latest values, charts (charts.js), events and command states. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const deviceId = document.body.dataset.device;
  const pageSeq = Number(document.body.dataset.seq || 0);
  const $ = (id) => document.getElementById(id);
  const charts = TelemetryCharts.create({
    deviceId,
    keys: JSON.parse($("charts").dataset.keys || "[]"),
    tags: JSON.parse($("charts").dataset.tags || "[]"),
    root: $("charts"),
    controls: { range: $("range"), custom: $("custom-range"), from: $("range-from"), to: $("range-to"),
                zoomReset: $("zoom-reset"), empty: $("charts-empty") },
    offline: offlineTimes,
  });

  /* Disconnected stretches from the connection history on this page (newest first): from each
     disconnection to the connection that followed it (or now). */
  function offlineTimes() {
    const spans = [];
    let connectedAt = Date.now() / 1000;
    for (const item of document.querySelectorAll("#history li")) {
      const time = Date.parse(item.querySelector("time")?.getAttribute("datetime") || "") / 1000;
      if (!isFinite(time)) continue;
      if (item.dataset.type === "device_disconnected") spans.push([time, connectedAt]);
      else connectedAt = time;
    }
    return spans;
  }

  function updateLatest(ts, payload) {
    const table = $("latest");
    const body = table.tBodies[0];
    for (const [field, value] of Object.entries(payload || {})) {
      let row = body.querySelector(`tr[data-field="${CSS.escape(field)}"]`);
      if (!row) {
        row = GW.element("tr", { "data-field": field }, GW.element("th", { scope: "row" }, field),
          GW.element("td", { className: "value" }), GW.element("td"));
        const after = [...body.rows].find((r) => r.dataset.field > field);
        body.insertBefore(row, after || null);
      }
      row.cells[1].textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
      row.cells[2].replaceChildren(GW.timeElement(ts, true));
      row.classList.remove("flash");
      void row.offsetWidth;
      row.classList.add("flash");
    }
    table.hidden = false;
    $("latest-empty").hidden = true;
  }

  function setStatus(online) {
    const badge = $("device-status");
    if (badge.dataset.enabled !== "true") return;
    GW.setBadge(badge, online ? "online" : "offline");
  }

  function setLastSeen(iso) {
    if (iso) $("last-seen").replaceChildren(GW.timeElement(iso, true));
  }

  function prependItem(listId, emptyId, item) {
    const list = $(listId);
    list.prepend(item);
    while (list.children.length > 50) list.lastElementChild.remove();
    $(emptyId).hidden = true;
  }

  function historyItem(event) {
    const online = event.type === "device_connected" || event.type === "device_online";
    const parts = [GW.element("span", { className: `badge badge-${online ? "online" : "offline"}` }, event.type.replace("device_", "")),
      GW.timeElement(event.ts, true)];
    if (event.remote) parts.push(GW.element("span", { className: "muted" }, `from ${event.remote}`));
    if (event.reason) parts.push(GW.element("span", { className: "muted" }, `(${event.reason})`));
    return GW.element("li", { "data-type": event.type }, ...parts);
  }

  function commandRow(event) {
    const body = $("command-table").tBodies[0];
    let row = body.querySelector(`tr[data-command="${CSS.escape(event.command_id)}"]`);
    if (!row && event.state === "queued") {
      row = GW.element("tr", { "data-command": event.command_id },
        GW.element("td", {}, GW.element("strong", {}, event.command), " ",
          GW.element("code", { className: "small" }, JSON.stringify(event.payload || {}))),
        GW.element("td", {}, GW.element("span", { className: "badge badge-queued", "data-role": "state" }, "queued")),
        GW.element("td", {}, GW.timeElement(event.ts, true)),
        GW.element("td", { "data-role": "result" }),
        GW.element("td", {}, GW.element("code", { className: "small" }, event.command_id)));
      body.prepend(row);
      $("command-table").hidden = false;
      $("commands-empty").hidden = true;
    }
    if (!row) return;
    const badge = row.querySelector('[data-role="state"]');
    const finished = ["acknowledged", "failed", "expired"];
    if (!(event.state === "sent" && finished.includes(badge.textContent))) GW.setBadge(badge, event.state, event.state);
    const result = row.querySelector('[data-role="result"]');
    if (event.error) result.replaceChildren(GW.element("span", { className: "error-text" }, event.error));
    else if (event.result !== undefined) result.replaceChildren(GW.element("code", { className: "small" }, JSON.stringify(event.result)));
    const pending = [...body.querySelectorAll('[data-role="state"]')].filter((b) => b.textContent === "queued").length;
    $("pending-count").textContent = String(pending);
  }

  GW.live({ device: deviceId, since: pageSeq + 1 }, {
    event(event) {
      switch (event.category) {
        case "telemetry":
          updateLatest(event.ts, event.payload);
          charts.add(event.ts, event.payload);
          setLastSeen(event.ts);
          break;
        case "presence":
          if (event.type === "device_online" || event.type === "device_connected") setStatus(true);
          if (event.type === "device_offline") setStatus(false);
          if (event.connector) $("connector").textContent = event.connector;
          setLastSeen(event.type === "device_connected" ? event.ts : event.last_seen);
          if (event.type === "device_connected" || event.type === "device_disconnected") {
            prependItem("history", "history-empty", historyItem(event));
          }
          break;
        case "event":
          setLastSeen(event.ts);
          prependItem("device-events", "events-empty", GW.element("li", {}, GW.element("strong", {}, event.event), " ",
            GW.timeElement(event.ts, true), " ", GW.element("code", { className: "small" }, JSON.stringify(event.payload || {}))));
          break;
        case "command":
          commandRow(event);
          break;
        case "device":
          if (event.type === "device_disabled") { $("device-status").dataset.enabled = "false"; GW.setBadge($("device-status"), "disabled"); }
          if (event.type === "device_deleted") GW.setBadge($("device-status"), "failed", "Deleted");
          break;
        default: break;
      }
    },
  });
  charts.load();
});
