/* Shared by every dashboard page: times, copy buttons, tabs, and the live-update socket. */
"use strict";

const GW = (() => {
  const pad = (n) => String(n).padStart(2, "0");

  function localTime(date) {
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
      `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  function relative(date) {
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 5) return "just now";
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return localTime(date);
  }

  /* <time datetime="..."> shows local time; with data-rel, "12 s ago" (local time in the tooltip).
     Text is written only when it changes: a new text costs the page a layout of its table. */
  function refreshTimes(root) {
    for (const el of (root || document).querySelectorAll("time[datetime]")) {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) continue;
      el.title = localTime(date);
      const text = el.hasAttribute("data-rel") ? relative(date) : localTime(date);
      if (el.textContent !== text) el.textContent = text;
    }
  }

  function timeElement(iso, rel) {
    const el = document.createElement("time");
    el.setAttribute("datetime", iso);
    if (rel) el.setAttribute("data-rel", "");
    refreshTimes({ querySelectorAll: () => [el] });
    return el;
  }

  function element(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") el.className = value;
      else if (key === "text") el.textContent = value;
      else el.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  function setBadge(el, status, label) {
    if (!el) return;
    el.className = `badge badge-${status}`;
    el.textContent = label || status.charAt(0).toUpperCase() + status.slice(1);
  }

  /* Copy buttons: data-copy="<selector>". The clipboard API needs a secure context, which a
     gateway on a LAN address often is not, so fall back to a selection and execCommand. */
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); return true; } catch (e) { /* fall back */ }
    }
    const area = element("textarea", { readonly: true, "aria-hidden": "true" });
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }

  function wireCopyButtons() {
    document.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-copy]");
      if (!button) return;
      const source = document.querySelector(button.getAttribute("data-copy"));
      if (!source) return;
      const ok = await copyText(source.textContent);
      const label = button.dataset.label || button.textContent;
      button.dataset.label = label;
      button.textContent = ok ? "Copied" : "Select and copy";
      if (!ok) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      setTimeout(() => { button.textContent = label; }, 1800);
    });
  }

  function wireTabs() {
    for (const tabs of document.querySelectorAll("[data-tabs]")) {
      const buttons = [...tabs.querySelectorAll('[role="tab"]')];
      const select = (button) => {
        for (const other of buttons) {
          const on = other === button;
          other.setAttribute("aria-selected", on ? "true" : "false");
          other.tabIndex = on ? 0 : -1;
          document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
        }
      };
      tabs.addEventListener("click", (event) => {
        const button = event.target.closest('[role="tab"]');
        if (button) select(button);
      });
      tabs.addEventListener("keydown", (event) => {
        const index = buttons.indexOf(document.activeElement);
        if (index < 0 || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
        const next = buttons[(index + (event.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length];
        select(next);
        next.focus();
      });
    }
  }

  /* The live-update socket (/dashboard/ws). Remembers the last sequence number it saw and, after a
     drop or a pause, reconnects with since=<next>, so the server replays what was missed. */
  class Live {
    constructor(params, handlers) {
      this.params = params || {};
      this.handlers = handlers || {};
      this.lastSeq = this.params.since ? Number(this.params.since) - 1 : null;
      this.paused = false;
      this.ws = null;
      this.retry = 0;
      this.pinger = null;
    }

    url() {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(this.params)) {
        if (key !== "since" && value) query.set(key, value);
      }
      if (this.lastSeq !== null) query.set("since", String(this.lastSeq + 1));
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${location.host}/dashboard/ws?${query}`;
    }

    start() {
      if (this.ws || this.paused) return;
      const ws = new WebSocket(this.url());
      this.ws = ws;
      this.state("connecting");
      ws.onmessage = (message) => {
        let data;
        try { data = JSON.parse(message.data); } catch (e) { return; }
        if (data.kind === "hello") {
          this.retry = 0;
          if (this.lastSeq === null || data.seq > this.lastSeq) this.lastSeq = data.seq;
          this.state("live");
          return;
        }
        if (data.kind === "pong") return;
        if (data.kind === "gap") { if (this.handlers.gap) this.handlers.gap(data); return; }
        if (typeof data.seq === "number") {
          if (this.lastSeq !== null && data.seq <= this.lastSeq) return;
          this.lastSeq = data.seq;
        }
        if (this.handlers.event) this.handlers.event(data);
      };
      ws.onopen = () => {
        this.pinger = setInterval(() => { if (ws.readyState === 1) ws.send('{"type":"ping"}'); }, 30000);
      };
      ws.onclose = () => {
        clearInterval(this.pinger);
        if (this.ws !== ws) return;
        this.ws = null;
        if (this.paused) { this.state("paused"); return; }
        this.state("reconnecting");
        const delay = Math.min(10000, 500 * 2 ** this.retry);
        this.retry += 1;
        setTimeout(() => this.start(), delay);
      };
    }

    pause() {
      this.paused = true;
      if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000, "paused"); }
      this.state("paused");
    }

    resume() {
      this.paused = false;
      this.start();
    }

    state(name) {
      const footer = document.getElementById("live-state");
      if (footer) footer.textContent = name === "live" ? "· live" : `· ${name}`;
      if (this.handlers.state) this.handlers.state(name);
    }
  }

  function live(params, handlers) {
    const feed = new Live(params, handlers);
    feed.start();
    return feed;
  }

  /* The journal position the page was rendered at: live updates start right after it. */
  function pageSeq() {
    return Number(document.body.dataset.seq || 0);
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    return response.json();
  }

  /* Names of devices, terminals and gateways by id, rendered into stream pages (#names). */
  let namesCache = null;
  function names() {
    if (namesCache) return namesCache;
    const el = document.getElementById("names");
    try { namesCache = el ? JSON.parse(el.textContent) : {}; } catch (e) { namesCache = {}; }
    for (const key of ["devices", "terminals", "gateways", "euis"]) namesCache[key] = namesCache[key] || {};
    return namesCache;
  }

  /* kind: "device" | "terminal" | "gateway". A link to its page showing the name, the id on hover. */
  const SUBJECT_PAGES = { device: "/devices/", terminal: "/terminals/", gateway: "/gateways#gw-" };
  function subjectLink(kind, id, name) {
    const known = names()[`${kind}s`] || {};
    const label = name || known[id] || id;
    return element("a", { href: SUBJECT_PAGES[kind] + encodeURIComponent(id), title: `${kind} ${id}`,
      "data-kind": kind, "data-id": id }, label);
  }

  /* A row that opens to the full object as formatted JSON (a row of its own under it). */
  function expandable(row, object, columns) {
    const button = element("button", { type: "button", className: "btn-open", "aria-expanded": "false",
      "aria-label": "Show the full frame" }, "\u25b8");
    row.cells[0].prepend(button);
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", open ? "false" : "true");
      button.textContent = open ? "\u25b8" : "\u25be";
      if (open) { if (row.nextElementSibling && row.nextElementSibling.classList.contains("frame")) row.nextElementSibling.remove(); return; }
      const detail = element("tr", { className: "frame" },
        element("td", { colspan: String(columns) }, element("pre", { className: "json" }, JSON.stringify(object, null, 2))));
      detail.hidden = row.hidden;
      row.after(detail);
    });
  }

  /* Filters of a stream page: inputs with data-filter="<key>" match the row's data-<key>
     (a choice: equal; typed text: contained, ignoring case), preset from ?<key>= in the page's
     address. Detail rows follow their row. */
  function streamFilter(list, onChange) {
    const inputs = [...document.querySelectorAll("[data-filter]")];
    const given = new URLSearchParams(location.search);  // e.g. /realtime?device=unknown&gateway=<eui>
    for (const input of inputs) if (given.get(input.dataset.filter)) input.value = given.get(input.dataset.filter);
    const matches = (row) => inputs.every((input) => {
      const want = input.value.trim().toLowerCase();
      const have = (row.dataset[input.dataset.filter] || "").toLowerCase();
      return !want || (input.tagName === "SELECT" ? have === want : have.includes(want));
    });
    function apply(rows) {
      for (const row of rows || list.rows) {
        if (row.classList.contains("frame")) continue;
        row.hidden = !matches(row) || (onChange && onChange.hides ? onChange.hides(row) : false);
        const next = row.nextElementSibling;
        if (next && next.classList.contains("frame")) next.hidden = row.hidden;
      }
    }
    for (const input of inputs) input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
      apply();
      if (onChange && onChange.after) onChange.after();
    });
    return { apply, matches };
  }

  /* Keeps a list at most `max` rows long, counting a detail row with its row. */
  function trim(list, max) {
    while (list.rows.length > max) list.deleteRow(-1);
  }

  /* Shows (or clears) a message next to a form field, in its #<id>-error element. */
  function fieldError(input, message) {
    const out = document.getElementById(`${input.id}-error`);
    if (!out) return false;
    out.textContent = message || "";
    if (message) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", out.id);
    } else {
      input.removeAttribute("aria-invalid");
    }
    return true;
  }

  function jsonObjectProblem(text) {
    if (!text.trim()) return "";
    let value;
    try { value = JSON.parse(text); } catch (error) { return `Not valid JSON: ${error.message}`; }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return 'The payload must be a JSON object, e.g. {"delay": 5}';
    }
    return "";
  }

  /* Checks in the browser before a form is sent, shown next to the field (the server checks again):
     the browser's own constraints (required, pattern; data-hint says what is expected) and
     textareas marked data-json-object. Typing in a field clears its message. */
  function wireFieldChecks() {
    for (const input of document.querySelectorAll("form input, form textarea, form select")) {
      input.addEventListener("invalid", (event) => {
        const message = input.validity.patternMismatch && input.dataset.hint ? input.dataset.hint : input.validationMessage;
        if (!fieldError(input, message)) return;
        event.preventDefault();  // the message shows next to the field, not in a bubble
        const first = input.form && input.form.querySelector(":invalid");
        if (first === input) input.focus();
      });
      input.addEventListener("input", () => { if (input.getAttribute("aria-invalid")) fieldError(input, ""); });
    }
    for (const area of document.querySelectorAll("textarea[data-json-object]")) {
      area.form.addEventListener("submit", (event) => {
        const problem = jsonObjectProblem(area.value);
        fieldError(area, problem);
        if (problem) { event.preventDefault(); area.focus(); }
      });
    }
    // A form refused by the server: its first field at fault gets the focus (once the page and
    // its #fragment have settled, which would take it away again).
    const first = document.querySelector('form [aria-invalid="true"]');
    if (first) window.addEventListener("load", () => first.focus({ preventScroll: false }));
  }

  document.addEventListener("DOMContentLoaded", () => {
    // This page answered a form itself (a refused login): Back and reload fetch it again with GET
    // rather than offer to send the form again.
    if ("afterPost" in document.body.dataset) history.replaceState(null, "", location.href);
    wireFieldChecks();
    refreshTimes();
    setInterval(() => refreshTimes(), 5000);
    wireCopyButtons();
    wireTabs();
    for (const button of document.querySelectorAll("[data-back]")) {
      button.addEventListener("click", () => history.back());
    }
  });

  return { element, live, localTime, pageSeq, refreshTimes, setBadge, timeElement, getJson, copyText, names,
    subjectLink, expandable, streamFilter, trim, fieldError };
})();
