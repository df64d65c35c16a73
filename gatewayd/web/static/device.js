/* Device page: live status, latest values, charts per numeric field, events and command states. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const deviceId = document.body.dataset.device;
  const pageSeq = Number(document.body.dataset.seq || 0);
  const $ = (id) => document.getElementById(id);
  const series = new Map();   // field -> [{t, v, seq}]
  const seen = new Set();     // telemetry seqs already charted
  let rangeSeconds = Number($("range").value) || 0;
  let custom = null;          // [from, to] in ms when the range is "custom"
  let drawPending = false;
  const RAW_UP_TO = 86400;    // up to a day: every message; longer: the server's time buckets (mean)

  const isNumber = (v) => typeof v === "number" && isFinite(v);

  function addPoint(field, t, v, seq) {
    if (!series.has(field)) series.set(field, []);
    const points = series.get(field);
    points.push({ t, v, seq });
    if (points.length > 1 && points[points.length - 2].t > t) points.sort((a, b) => a.t - b.t);
    if (points.length > 20000) points.shift();
  }

  function addTelemetry(ts, payload, seq) {
    if (seq !== undefined) { if (seen.has(seq)) return; seen.add(seq); }
    const t = Date.parse(ts);
    for (const [field, value] of Object.entries(payload || {})) {
      if (isNumber(value)) addPoint(field, t, value, seq);
    }
  }

  function chartFor(field) {
    const id = `chart-${field}`;
    let box = document.getElementById(id);
    if (!box) {
      const canvas = GW.element("canvas", { role: "img", "aria-label": `Chart of ${field} over time` });
      box = GW.element("div", { className: "chart", id },
        GW.element("h3", {}, GW.element("span", {}, field), GW.element("span", { className: "muted", "data-role": "summary" })),
        canvas);
      $("charts").append(box);
    }
    return box;
  }

  function drawAll() {
    drawPending = false;
    const now = Date.now();
    const range = custom || (rangeSeconds ? [now - rangeSeconds * 1000, now] : null);
    let any = false;
    for (const field of [...series.keys()].sort()) {
      const points = series.get(field).filter((p) => !range || (p.t >= range[0] && p.t <= range[1]));
      const box = document.getElementById(`chart-${field}`);
      if (!points.length) { if (box) box.hidden = true; continue; }
      any = true;
      const chart = chartFor(field);
      chart.hidden = false;
      const values = points.map((p) => p.v);
      chart.querySelector('[data-role="summary"]').textContent =
        `latest ${values[values.length - 1]} · min ${Math.min(...values)} · max ${Math.max(...values)} · ${points.length} points`;
      LineChart.draw(chart.querySelector("canvas"), points, range);
    }
    $("charts-empty").hidden = any;
  }

  function redraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(drawAll);
  }

  async function load() {
    series.clear();
    seen.clear();
    const url = `/api/devices/${encodeURIComponent(deviceId)}/telemetry`;
    const [from, to] = custom || [rangeSeconds ? Date.now() - rangeSeconds * 1000 : null, null];
    try {
      if (!custom && rangeSeconds && rangeSeconds <= RAW_UP_TO) {
        const query = new URLSearchParams({ limit: "10000", from: new Date(from).toISOString() });
        const data = await GW.getJson(`${url}?${query}`);
        for (const item of data.items) addTelemetry(item.ts, item.payload, item.seq);
      } else {
        const fields = [...document.querySelectorAll("#latest tr[data-field]")].map((row) => row.dataset.field);
        for (const field of fields) {
          const query = new URLSearchParams({ key: field, limit: "1000" });
          query.set("from", new Date(from ?? Date.now() - 400 * 86400 * 1000).toISOString());
          if (to) query.set("to", new Date(to).toISOString());
          const data = await GW.getJson(`${url}?${query}`);
          for (const p of data.points) addPoint(field, Date.parse(p.t), p.mean);
        }
      }
      redraw();
    } catch (error) {
      $("charts-empty").textContent = `Could not load telemetry: ${error.message}`;
    }
  }

  $("range").addEventListener("change", () => {
    const value = $("range").value;
    $("custom-range").hidden = value !== "custom";
    if (value === "custom") return;
    custom = null;
    rangeSeconds = Number(value);
    load();
  });
  $("custom-range").addEventListener("submit", (event) => {
    event.preventDefault();
    const from = Date.parse($("range-from").value), to = Date.parse($("range-to").value);
    if (!isFinite(from) || !isFinite(to) || from >= to) return;
    custom = [from, to];
    load();
  });
  window.addEventListener("resize", redraw);
  setInterval(() => { if (rangeSeconds && !custom) redraw(); }, 30000);  // the window slides with time

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
    return GW.element("li", {}, ...parts);
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
          addTelemetry(event.ts, event.payload, event.seq);
          setLastSeen(event.ts);
          redraw();
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
  load();
});
