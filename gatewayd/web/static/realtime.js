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

  const TYPES = new Set([...$("filter-type").options].map((o) => o.value));
  const filter = GW.streamFilter(list, { after: showEmpty });
  function showEmpty() { $("comms-empty").hidden = [...list.rows].some((r) => !r.hidden); }

  /* Who a frame is about: a device (by id, or LoRaWAN DevEUI), a terminal (sn) or, for gateway
     keep-alives, a gateway. Unknown LoRaWAN devices keep their DevEUI. */
  function subject(frame, type) {
    const key = frame.DevEui || "";
    const names = GW.names();
    const extra = frame.Extra || {};
    if (extra.Mine === "false") return { kind: "foreign", id: extra.devaddr || "", reason: extra.reason || "" };
    if (!key) return null;
    if (type === "comm_gwalive") return { kind: "gateway", id: key };
    if (key in names.terminals) return { kind: "terminal", id: key };
    if (key in names.euis) return { kind: "device", id: names.euis[key], eui: key };
    if (key in names.devices) return { kind: "device", id: key };
    return { kind: "unknown", id: key };
  }

  const FOREIGN_REASONS = { unknown_devaddr: "no device of ours has this DevAddr",
    bad_mic: "the DevAddr is ours but the frame's MIC does not match its keys" };

  function subjectCell(who) {
    if (!who) return GW.element("td", {});
    if (who.kind === "foreign") {
      return GW.element("td", {}, GW.element("span", { className: "badge badge-foreign", title: FOREIGN_REASONS[who.reason] || who.reason },
        "unknown device"), " ", GW.element("code", { title: "DevAddr" }, who.id));
    }
    if (who.kind === "unknown") {
      return GW.element("td", {}, GW.element("code", { title: "not a device of this gateway" }, who.id),
        " ", GW.element("span", { className: "muted small" }, "unknown"));
    }
    return GW.element("td", {}, GW.subjectLink(who.kind, who.id), who.eui ? GW.element("span", { className: "muted small" }, ` ${who.eui}`) : null);
  }

  function add(frame) {
    const type = frame.CommType || frame.MsgType || "";
    const connector = fromHex(frame.Connector) || frame.Connector || "";
    const text = fromHex(frame.Payload);
    const extra = Object.entries(frame.Extra || {}).map(([k, v]) => `${k}=${v}`).join("  ");
    const gateways = frame.GatewayEUIs || [];
    const dt = new Date(frame.DT);
    const who = subject(frame, type);
    const names = GW.names();
    const label = (kind, id) => `${id} ${(names[`${kind}s`] || {})[id] || ""}`.toLowerCase();
    const gatewayIds = who && who.kind === "gateway" ? [who.id, ...gateways] : gateways;
    const details = [extra, frame.Command && `command: ${frame.Command}`,
      frame.Reference && `reference: ${frame.Reference}`, frame.Error && `error: ${frame.Error}`].filter(Boolean).join("  \u00b7  ");
    const gatewayCell = GW.element("td", {});
    gateways.forEach((eui, i) => { if (i) gatewayCell.append(", "); gatewayCell.append(GW.subjectLink("gateway", eui)); });
    const row = GW.element("tr", {
        "data-type": type,
        "data-device": !who ? "" : who.kind === "foreign" ? `unknown ${who.id}`
          : (who.kind === "device" || who.kind === "unknown") ? `${label("device", who.id)} ${who.eui || ""}` : "",
        "data-foreign": who && who.kind === "foreign" ? "true" : "false",
        "data-terminal": who && who.kind === "terminal" ? label("terminal", who.id) : "",
        "data-gateway": gatewayIds.map((eui) => label("gateway", eui)).join(" "),
        "data-seq": frame.Seq },
      GW.element("td", { title: frame.DT }, isNaN(dt) ? frame.DT : GW.localTime(dt)),
      GW.element("td", {}, GW.element("code", {}, type)),
      GW.element("td", {}, connector),
      who && who.kind === "gateway" ? GW.element("td", {}) : subjectCell(who),
      who && who.kind === "gateway" ? GW.element("td", {}, GW.subjectLink("gateway", who.id)) : gatewayCell,
      GW.element("td", {}, frame.Port || ""),
      GW.element("td", { className: "payload" }, text ? GW.element("span", { title: frame.Payload }, text) : (frame.Payload || "")),
      GW.element("td", { className: "extra" }, details));
    GW.expandable(row, frame, row.cells.length);
    if (type && !TYPES.has(type)) {
      TYPES.add(type);
      $("filter-type").append(GW.element("option", { value: type }, type));
    }
    list.prepend(row);
    filter.apply([row]);
    GW.trim(list, MAX_ROWS);
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
  $("clear").addEventListener("click", () => { list.replaceChildren(); showEmpty(); });
  connect();
});
