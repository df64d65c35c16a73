/* Attendance: punches stored after the page was shown appear at the top (newest first), fetched
   with the page's filters when the live feed reports new punches; one fetch at a time. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("punches");
  if (!table || !table.dataset.rows) return;
  const body = table.tBodies[0];
  const limit = Number(table.dataset.limit || 500);
  const count = document.getElementById("punch-count");
  let lastId = Number(table.dataset.lastId || 0);
  let more = count && count.dataset.more === "true";
  let fetching = false;
  let again = false;

  function shown() {
    while (body.rows.length > limit) { body.deleteRow(-1); more = true; }
    const n = body.rows.length;
    table.closest(".table-wrap").hidden = n === 0;
    document.getElementById("punches-empty").hidden = n > 0;
    if (!count) return;
    count.hidden = n === 0;
    count.textContent = (more
      ? `Showing the newest ${limit} punches; narrow the filters or download the CSV for all of them.`
      : `${n} punch${n === 1 ? "" : "es"}.`) + " New punches appear at the top as they arrive.";
  }

  async function fetchNew() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      do {
        again = false;
        const sep = table.dataset.rows.includes("?") ? "&" : "?";
        const page = await GW.getJson(`${table.dataset.rows}${sep}after=${lastId}`);
        const holder = document.createElement("tbody");
        holder.innerHTML = page.html;
        for (const row of [...holder.rows]) {
          if (Number(row.dataset.id) > lastId) body.prepend(row);
        }
        lastId = Math.max(lastId, page.last_id);
        GW.refreshTimes(body);
        shown();
        if (page.more) again = true;
      } while (again);
    } catch (e) {
      again = false;  // the next punch event tries again
    } finally {
      fetching = false;
    }
  }

  const sn = table.dataset.sn;
  GW.live({ categories: "attendance", sn, since: GW.pageSeq() + 1 }, {
    event(event) {
      if (event.type === "attendance_punches" && !event.held && event.count > 0) fetchNew();
    },
  });
});
