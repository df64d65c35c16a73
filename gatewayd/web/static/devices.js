/* Devices list: instant filtering, live Online/Offline badges, last seen, new and removed devices.

   Live events are not applied one by one: they are merged per device and applied once per
   animation frame, touching only the rows that changed (in place), so a fleet sending 100
   messages a second costs the page a few row updates per frame, not a pass over every row per
   message. While the tab is hidden nothing is drawn and the merge keeps one entry per device. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("devices");
  if (!table) return;
  const body = table.tBodies[0];
  const controls = [...document.querySelectorAll("[data-filter]")];
  const rows = new Map([...body.rows].map((row) => [row.dataset.device, row]));
  let shown = 0;

  function wanted() {
    return Object.fromEntries(controls.map((c) => [c.dataset.filter, c.value.trim().toLowerCase()]));
  }

  function visible(row, want) {
    const tags = row.dataset.tags ? row.dataset.tags.toLowerCase().split(",") : [];
    return (!want.q || row.dataset.search.includes(want.q)) &&
      (!want.status || row.dataset.status === want.status) &&
      (!want.kind || row.dataset.kind === want.kind) &&
      (!want.tag || tags.includes(want.tag));
  }

  function showNoMatch() {
    document.getElementById("no-match").hidden = shown > 0 || body.rows.length === 0;
  }

  /* Every row (a filter changed), or only `changed` rows (live updates). */
  function applyFilters(changed) {
    const want = wanted();
    if (!changed) {
      shown = 0;
      for (const row of body.rows) {
        row.hidden = !visible(row, want);
        if (!row.hidden) shown += 1;
      }
    } else {
      for (const row of changed) {
        const hide = !visible(row, want);
        if (row.isConnected && hide !== row.hidden) shown += hide ? -1 : 1;
        row.hidden = hide;
      }
    }
    showNoMatch();
  }
  for (const control of controls) control.addEventListener("input", () => applyFilters());

  const count = document.getElementById("device-count");
  let total = Number(count.dataset.total || 0);
  function setTotal(n) {
    total = Math.max(0, n);
    count.dataset.total = String(total);
    count.textContent = `${total} device${total === 1 ? "" : "s"}`;
    document.getElementById("devices-empty").hidden = total > 0;
    table.closest(".table-wrap").hidden = total === 0;
  }

  function setStatus(row, status) {
    if (row.dataset.status === status) return;
    row.dataset.status = status;
    GW.setBadge(row.querySelector('[data-role="status"]'), status);
  }

  function setLastSeen(row, iso) {
    const cell = row.querySelector('[data-role="last-seen"]');
    if (!cell || !iso) return;
    if (cell.tagName === "TIME") {
      if (cell.getAttribute("datetime") === iso) return;
      cell.setAttribute("datetime", iso);
      GW.refreshTimes({ querySelectorAll: () => [cell] });
      return;
    }
    const time = GW.timeElement(iso, true);
    time.dataset.role = "last-seen";
    cell.replaceWith(time);
  }

  function addRow(event) {
    const link = GW.element("a", { href: `/devices/${encodeURIComponent(event.device_id)}` }, event.name);
    const tags = event.tags || [];
    const row = GW.element("tr", {
      "data-device": event.device_id, "data-status": "offline", "data-kind": event.kind || "ws",
      "data-tags": tags.join(","), "data-enabled": "true",
      "data-search": `${event.name} ${event.device_id} ${tags.join(" ")}`.toLowerCase(),
      className: "flash",
    },
    GW.element("td", {}, link),
    GW.element("td", {}, GW.element("span", { className: "badge badge-offline", "data-role": "status" }, "Offline")),
    GW.element("td", {}, GW.element("span", { className: "muted", "data-role": "last-seen" }, "never")),
    GW.element("td", {}, event.kind === "lorawan" ? "LoRaWAN" : "WebSocket"),
    GW.element("td", {}, ...tags.map((t) => GW.element("span", { className: "tag" }, t))),
    GW.element("td", {}, GW.element("code", { className: "id" }, event.device_id)));
    body.prepend(row);
    rows.set(event.device_id, row);
    row.hidden = true;  // counted as shown by applyFilters if it matches
    applyFilters([row]);
  }

  /* device id -> what the next frame applies to its row: {status, seen, enabled} (latest wins). */
  const due = new Map();
  let frame = 0;

  function merge(event) {
    const change = due.get(event.device_id) || {};
    switch (event.type) {
      case "device_disabled": change.enabled = false; change.status = "disabled"; break;
      case "device_enabled": change.enabled = true; change.status = "offline"; break;
      case "device_connected":
      case "device_online": change.status = "online"; change.seen = event.ts; break;
      case "device_offline": change.status = "offline"; change.seen = event.last_seen || change.seen; break;
      case "telemetry":
      case "device_event": change.seen = event.ts; break;
      default: return;
    }
    due.set(event.device_id, change);
    if (!frame) frame = requestAnimationFrame(flush);
  }

  function flush() {
    frame = 0;
    const changed = [];
    for (const [id, change] of due) {
      const row = rows.get(id);
      if (!row) continue;
      if (change.enabled !== undefined) row.dataset.enabled = change.enabled ? "true" : "false";
      const enabled = row.dataset.enabled === "true";
      if (change.enabled === false) setStatus(row, "disabled");
      else if (change.status && enabled) setStatus(row, change.status);
      if (change.seen) setLastSeen(row, change.seen);
      changed.push(row);
    }
    due.clear();
    applyFilters(changed);
  }

  GW.live({ categories: "presence,device,telemetry", since: GW.pageSeq() + 1 }, {
    event(event) {
      if (!event.device_id) return;
      if (event.type === "device_created") {
        if (!rows.has(event.device_id)) addRow(event);
        setTotal(total + 1);
        return;
      }
      if (event.type === "device_deleted") {
        setTotal(total - 1);
        const row = rows.get(event.device_id);
        due.delete(event.device_id);
        if (row) {
          if (!row.hidden) shown -= 1;
          row.remove();
          rows.delete(event.device_id);
          showNoMatch();
        }
        return;
      }
      merge(event);
    },
  });
  applyFilters();
});
