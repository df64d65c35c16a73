/* Devices list: instant filtering, live Online/Offline badges, last seen, new and removed devices. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("devices");
  if (!table) return;
  const body = table.tBodies[0];
  const controls = [...document.querySelectorAll("[data-filter]")];

  function applyFilters() {
    const wanted = Object.fromEntries(controls.map((c) => [c.dataset.filter, c.value.trim().toLowerCase()]));
    let shown = 0;
    for (const row of body.rows) {
      const tags = row.dataset.tags ? row.dataset.tags.toLowerCase().split(",") : [];
      const visible = (!wanted.q || row.dataset.search.includes(wanted.q)) &&
        (!wanted.status || row.dataset.status === wanted.status) &&
        (!wanted.kind || row.dataset.kind === wanted.kind) &&
        (!wanted.tag || tags.includes(wanted.tag));
      row.hidden = !visible;
      if (visible) shown += 1;
    }
    document.getElementById("no-match").hidden = shown > 0 || body.rows.length === 0;
  }
  for (const control of controls) control.addEventListener("input", applyFilters);

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
    row.dataset.status = status;
    GW.setBadge(row.querySelector('[data-role="status"]'), status);
  }

  function setLastSeen(row, iso) {
    const cell = row.querySelector('[data-role="last-seen"]');
    if (!cell || !iso) return;
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
  }

  GW.live({ categories: "presence,device,telemetry", since: GW.pageSeq() + 1 }, {
    event(event) {
      const row = event.device_id ? body.querySelector(`tr[data-device="${CSS.escape(event.device_id)}"]`) : null;
      if (event.type === "device_created") {
        if (!row) addRow(event);
        setTotal(total + 1);
        applyFilters();
        return;
      }
      if (event.type === "device_deleted") setTotal(total - 1);
      if (!row) return;
      const enabled = row.dataset.enabled === "true";
      switch (event.type) {
        case "device_deleted": row.remove(); break;
        case "device_disabled": row.dataset.enabled = "false"; setStatus(row, "disabled"); break;
        case "device_enabled": row.dataset.enabled = "true"; setStatus(row, "offline"); break;
        case "device_connected":
        case "device_online":
          if (enabled) setStatus(row, "online");
          setLastSeen(row, event.ts);
          break;
        case "device_offline":
          if (enabled) setStatus(row, "offline");
          setLastSeen(row, event.last_seen);
          break;
        case "telemetry":
        case "device_event":
          setLastSeen(row, event.ts);
          break;
        default: break;
      }
      applyFilters();
    },
  });
  applyFilters();
});
