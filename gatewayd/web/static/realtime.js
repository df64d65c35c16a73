/* Real Time Monitor: the ResIOT communications stream (/monitor/communications), readable.
   The dashboard session authenticates the socket; pausing and resuming uses since=<next Seq>. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const list = $("comm-list");
  const MAX_ROWS = 1000;
  let ws = null;
  // Start right after what the page saw when it was rendered, so nothing falls in between.
  let lastSeq = document.body.dataset.seq ? Number(document.body.dataset.seq) : null;
  let paused = false;
  let retry = 0;

  function fromHex(hex) {
    if (!hex || hex.length % 2) return "";
    const bytes = new Uint8Array(hex.match(/../g).map((b) => parseInt(b, 16)));
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      return /^[\x20-\x7e\u00a0-\uffff\t\r\n]*$/.test(text) ? text : "";
    } catch (e) { return ""; }
  }

  function matches(row) {
    const type = $("filter-type").value;
    const dev = $("filter-dev").value.trim().toLowerCase();
    return (!type || row.dataset.type === type) && (!dev || row.dataset.dev.includes(dev));
  }
  function applyFilter() {
    for (const row of list.rows) row.hidden = !matches(row);
    $("comms-empty").hidden = [...list.rows].some((r) => !r.hidden);
  }
  $("filter-type").addEventListener("change", applyFilter);
  $("filter-dev").addEventListener("input", applyFilter);

  function add(frame) {
    const type = frame.CommType || frame.MsgType || "";
    const connector = fromHex(frame.Connector) || frame.Connector || "";
    const text = fromHex(frame.Payload);
    const extra = Object.entries(frame.Extra || {}).map(([k, v]) => `${k}=${v}`).join("  ");
    const gateways = (frame.GatewayEUIs || []).join(", ");
    const dt = new Date(frame.DT);
    const dev = frame.DevEui || "";
    const details = [extra, gateways && `gateways: ${gateways}`, frame.Command && `command: ${frame.Command}`,
      frame.Reference && `reference: ${frame.Reference}`, frame.Error && `error: ${frame.Error}`].filter(Boolean).join("  ·  ");
    const row = GW.element("tr", { "data-type": type, "data-dev": `${dev} ${gateways}`.toLowerCase() },
      GW.element("td", { title: frame.DT }, isNaN(dt) ? frame.DT : GW.localTime(dt)),
      GW.element("td", {}, GW.element("code", {}, type)),
      GW.element("td", {}, connector),
      GW.element("td", {}, GW.element("code", {}, dev)),
      GW.element("td", {}, frame.Port || ""),
      GW.element("td", { className: "payload" }, text ? GW.element("span", { title: frame.Payload }, text) : (frame.Payload || "")),
      GW.element("td", { className: "extra" }, details));
    row.hidden = !matches(row);
    list.prepend(row);
    while (list.rows.length > MAX_ROWS) list.deleteRow(-1);
    if (!row.hidden) $("comms-empty").hidden = true;
  }

  function state(name) {
    GW.setBadge($("stream-state"), name === "live" ? "live" : name === "paused" ? "pending" : "offline", name);
  }

  function connect() {
    if (ws || paused) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const since = lastSeq === null ? "" : `?since=${lastSeq + 1}`;
    const socket = new WebSocket(`${scheme}//${location.host}/monitor/communications${since}`);
    ws = socket;
    state("connecting");
    socket.onopen = () => { retry = 0; state("live"); };
    socket.onmessage = (message) => {
      let frame;
      try { frame = JSON.parse(message.data); } catch (e) { return; }
      if (typeof frame.Seq === "number") {
        if (lastSeq !== null && frame.Seq <= lastSeq) return;
        lastSeq = frame.Seq;
      }
      if (frame.CommType || frame.MsgType) add(frame);
    };
    socket.onclose = () => {
      if (ws !== socket) return;
      ws = null;
      if (paused) { state("paused"); return; }
      state("reconnecting");
      setTimeout(connect, Math.min(10000, 500 * 2 ** retry++));
    };
  }

  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").textContent = paused ? "Resume" : "Pause";
    $("pause").setAttribute("aria-pressed", paused ? "true" : "false");
    if (paused && ws) { const socket = ws; ws = null; socket.close(1000, "paused"); state("paused"); }
    if (!paused) connect();
  });
  $("clear").addEventListener("click", () => { list.replaceChildren(); applyFilter(); });
  connect();
});
