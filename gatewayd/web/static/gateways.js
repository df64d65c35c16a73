/* Gateways list: live Online/Offline badges and last seen. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  GW.live({ categories: "gateway", since: GW.pageSeq() + 1 }, {
    event(event) {
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
