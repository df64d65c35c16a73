/* Gateways list: live Online/Offline badges, last seen, and the count of unknown devices' frames. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const rowOf = (eui) => document.querySelector(`#gateways tr[data-eui="${CSS.escape(eui)}"]`);
  GW.live({ categories: "gateway,lorawan", since: GW.pageSeq() + 1 }, {
    event(event) {
      if (event.type === "lorawan_foreign_uplink") {
        for (const eui of event.gateways || []) {
          const cell = rowOf(eui) && rowOf(eui).querySelector('[data-role="foreign"]');
          if (cell) cell.textContent = String(Number(cell.textContent) + 1);
        }
        return;
      }
      if (!event.eui) return;
      const row = document.querySelector(`#gateways tr[data-eui="${CSS.escape(event.eui)}"]`);
      if (!row) return;
      if (typeof event.online === "boolean") {
        GW.setBadge(row.querySelector('[data-role="status"]'), event.online ? "online" : "offline");
      }
      if (event.online) {
        const time = GW.timeElement(event.ts, true);
        time.dataset.role = "last-seen";
        row.querySelector('[data-role="last-seen"]').replaceWith(time);
      }
    },
  });
});
