/* Terminals list: live Online/Offline badges and last seen; a new pending terminal asks for a reload. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  GW.live({ categories: "terminal,attendance", since: GW.pageSeq() + 1 }, {
    event(event) {
      if (!event.sn) return;
      const row = document.querySelector(`#accepted tr[data-sn="${CSS.escape(event.sn)}"]`);
      if (event.type === "terminal_pending" && !document.querySelector(`tr[data-sn="${CSS.escape(event.sn)}"]`)) {
        const head = document.getElementById("h-pending");
        if (!document.getElementById("reload-note")) {
          head.after(GW.element("div", { className: "notice notice-warn", id: "reload-note", role: "status" },
            "A new terminal is waiting for approval. ", GW.element("a", { href: "/terminals" }, "Reload the list")));
        }
        return;
      }
      if (!row) return;
      if (typeof event.online === "boolean") {
        GW.setBadge(row.querySelector('[data-role="status"]'), event.online ? "online" : "offline");
      }
      const cell = row.querySelector('[data-role="last-seen"]');
      if (cell && event.type !== "terminal_offline") {
        const time = GW.timeElement(event.ts, true);
        time.dataset.role = "last-seen";
        cell.replaceWith(time);
      }
    },
  });
});
