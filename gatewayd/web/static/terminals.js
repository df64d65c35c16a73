/* Terminals list, live: new pending terminals with their held-punch counter, approvals and
   rejections moving rows, Online/Offline badges and last seen. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const groups = {};
  for (const name of ["pending", "accepted"]) {
    const table = document.getElementById(name);
    groups[name] = { table, body: table.tBodies[0], count: document.getElementById(`${name}-count`),
      empty: document.getElementById(`${name}-empty`), template: document.getElementById(`${name}-row`) };
  }

  const rowOf = (name, sn) => groups[name].body.querySelector(`tr[data-sn="${CSS.escape(sn)}"]`);

  function recount(name) {
    const group = groups[name];
    const n = group.body.rows.length;
    group.count.textContent = String(n);
    group.table.closest(".table-wrap").hidden = n === 0;
    group.empty.hidden = n > 0;
  }

  function remove(name, sn) {
    const row = rowOf(name, sn);
    if (row) { row.remove(); recount(name); }
  }

  function addPending(event) {
    if (rowOf("pending", event.sn)) return;
    const row = groups.pending.template.content.firstElementChild.cloneNode(true);
    const path = `/terminals/${encodeURIComponent(event.sn)}`;
    row.dataset.sn = event.sn;
    row.className = "flash";
    const link = row.querySelector("a");
    link.href = path;
    link.querySelector("code").textContent = event.sn;
    row.cells[1].append(GW.timeElement(event.ts, true));
    row.querySelector('[data-role="via"]').textContent = event.connector || "\u2014";
    if (typeof event.held === "number") row.querySelector('[data-role="held"]').textContent = String(event.held);
    row.querySelector("form").action = `${path}/approve`;
    row.querySelector("button").setAttribute("aria-label", `Approve ${event.sn}`);
    const reject = row.querySelector("a.btn-danger");
    reject.href = `${path}/reject`;
    reject.setAttribute("aria-label", `Reject ${event.sn}`);
    groups.pending.body.append(row);
    recount("pending");
  }

  function addAccepted(event) {
    if (rowOf("accepted", event.sn)) return;
    const row = groups.accepted.template.content.firstElementChild.cloneNode(true);
    row.dataset.sn = event.sn;
    row.className = "flash";
    const link = row.querySelector("a");
    link.href = `/terminals/${encodeURIComponent(event.sn)}`;
    link.textContent = event.name || event.sn;
    if (event.connector) row.querySelector('[data-role="via"]').textContent = event.connector;
    groups.accepted.body.append(row);
    recount("accepted");
  }

  function presence(event) {
    const row = rowOf("accepted", event.sn);
    if (!row) return;
    if (typeof event.online === "boolean") {
      GW.setBadge(row.querySelector('[data-role="status"]'), event.online ? "online" : "offline");
    }
    if (event.connector) row.querySelector('[data-role="via"]').textContent = event.connector;
    const cell = row.querySelector('[data-role="last-seen"]');
    const seen = event.type === "terminal_offline" ? event.last_seen : event.ts;
    if (cell && seen) {
      const time = GW.timeElement(seen, true);
      time.dataset.role = "last-seen";
      cell.replaceWith(time);
    }
  }

  GW.live({ categories: "terminal", since: GW.pageSeq() + 1 }, {
    event(event) {
      if (!event.sn) return;
      switch (event.type) {
        case "terminal_pending": addPending(event); break;
        case "terminal_held": {
          const row = rowOf("pending", event.sn);
          if (row && typeof event.held === "number") row.querySelector('[data-role="held"]').textContent = String(event.held);
          break;
        }
        case "terminal_approved":
        case "terminal_added":
          remove("pending", event.sn);
          addAccepted(event);
          break;
        case "terminal_rejected":
        case "terminal_deleted":
          remove("pending", event.sn);
          remove("accepted", event.sn);
          break;
        case "terminal_online":
        case "terminal_offline":
        case "terminal_registered":
          presence(event);
          break;
        case "terminal_updated": {
          const row = rowOf("accepted", event.sn);
          if (row && event.name) row.querySelector("a").textContent = event.name;
          break;
        }
        default: break;
      }
    },
  });
});
