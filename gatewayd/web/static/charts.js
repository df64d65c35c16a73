/* Telemetry charts of the device page, drawn by uPlot (static/vendor/uplot.min.js, see
   packaging/vendor.sh): one chart per numeric key, values on hover with their unit, drag to zoom,
   and a break in the line wherever the device sent nothing for much longer than usual. */
"use strict";

const TelemetryCharts = (() => {
  // Units by the key's last word (temp_c, battery_mv, co2_ppm) or by the whole key (humidity, rssi).
  const SUFFIX_UNITS = {
    c: "°C", celsius: "°C", degc: "°C", f: "°F", fahrenheit: "°F", k: "K", pct: "%", percent: "%", rh: "%",
    v: "V", mv: "mV", a: "A", ma: "mA", w: "W", kw: "kW", wh: "Wh", kwh: "kWh", va: "VA", hz: "Hz",
    pa: "Pa", hpa: "hPa", kpa: "kPa", bar: "bar", mbar: "mbar", ppm: "ppm", ppb: "ppb", lux: "lx", lx: "lx",
    db: "dB", dbm: "dBm", s: "s", sec: "s", ms: "ms", min: "min", h: "h", m: "m", mm: "mm", cm: "cm", km: "km",
    kmh: "km/h", mps: "m/s", rpm: "rpm", l: "L", ml: "mL", m3: "m³", g: "g", kg: "kg", deg: "°",
  };
  const NAME_UNITS = {
    temperature: "°C", temp: "°C", humidity: "%", moisture: "%", rssi: "dBm", snr: "dB", voltage: "V",
    current: "A", power: "W", energy: "kWh", pressure: "hPa", co2: "ppm", illuminance: "lx", lux: "lx",
    frequency: "Hz", uptime: "s", rpm: "rpm",
  };
  const DEFAULT_RANGE = 86400;
  const MAX_POINTS = 720;         // buckets asked per chart (the server picks the bucket width)
  const GAP_FACTOR = 3;           // a silence this many times the usual spacing breaks the line
  const plots = new Map();        // key -> its uPlot (for the page's tests and the console)

  /* The unit of a telemetry key: a device tag "unit:<key>=<unit>" first, then the key's name. */
  function unitOf(key, tags) {
    for (const tag of tags || []) {
      const m = /^unit:(.+)=(.+)$/.exec(tag);
      if (m && m[1] === key) return m[2] === "degC" ? "°C" : m[2] === "degF" ? "°F" : m[2];
    }
    const words = key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase().split(/[_\-.\s]+/).filter(Boolean);
    if (words.length > 1 && SUFFIX_UNITS[words[words.length - 1]]) return SUFFIX_UNITS[words[words.length - 1]];
    for (const word of words) if (NAME_UNITS[word]) return NAME_UNITS[word];
    return "";
  }

  function formatValue(v) {
    if (v == null || !isFinite(v)) return "—";
    const abs = Math.abs(v);
    if (abs !== 0 && (abs >= 1e7 || abs < 1e-3)) return v.toExponential(2);
    return String(Math.round(v * 1000) / 1000);
  }

  const withUnit = (v, unit) => (v == null ? "—" : unit ? `${formatValue(v)} ${unit}` : formatValue(v));

  /* points: [{t: epoch s, v, n?: values in the bucket}] sorted by t; every: the bucket width in s;
     offline: [[from, to], ...] in s, times the device is known to have been disconnected.
     Returns [xs, ys] for uPlot with a null point (a break in the line) where the device was
     offline, and where it sent nothing for longer than usual: GAP_FACTOR times the median spacing
     (at least two buckets), or a single empty bucket when its buckets usually hold several values. */
  function withGaps(points, every, offline) {
    const xs = [], ys = [];
    const steps = [];
    for (let i = 1; i < points.length; i += 1) steps.push(points[i].t - points[i - 1].t);
    const middle = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
    const median = steps.length ? middle(steps) : 0;
    const busy = points.length && middle(points.map((p) => p.n || 1)) >= 3;
    const limit = busy ? 1.5 * every : Math.max(GAP_FACTOR * median, 2 * (every || 0), 1);
    const outages = (offline || []).filter(([from, to]) => to > from);
    points.forEach((p, i) => {
      const before = i ? points[i - 1].t : null;
      if (before !== null) {
        const outage = outages.find(([from]) => from > before && from < p.t);
        if (outage) { xs.push(outage[0]); ys.push(null); } else if (p.t - before > limit) { xs.push(before + (every || 1)); ys.push(null); }
      }
      xs.push(p.t);
      ys.push(p.v);
    });
    return [xs, ys];
  }

  function chartOptions(key, unit, width, range, onZoom) {
    const style = getComputedStyle(document.body);
    const text = style.color || "#1d2733";
    const axis = { stroke: text, grid: { stroke: "#e3e8ee", width: 1 }, ticks: { stroke: "#dde3ea", width: 1 } };
    return {
      width, height: 220,
      scales: { x: { time: true, range: () => range() } },
      series: [
        { value: (u, v) => (v == null ? "—" : new Date(v * 1000).toLocaleString()) },
        { label: unit ? `${key} (${unit})` : key, stroke: "#1858c2", width: 2, fill: "rgba(24,88,194,0.08)",
          spanGaps: false, value: (u, v) => withUnit(v, unit), points: { size: 5 } },
      ],
      axes: [axis, { ...axis, size: 64, values: (u, splits) => splits.map(formatValue),
                     label: unit || undefined, labelSize: unit ? 18 : 0 }],
      cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: "telemetry" } },
      legend: { live: true },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 4) return;
          const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          onZoom(from * 1000, to * 1000);
        }],
      },
    };
  }

  /* The charts of one device: `root` holds one box per key; `controls` has #range, #custom-range
     (with #range-from/#range-to), #zoom-reset and #charts-empty; `offline()` gives the times the
     device is known to have been disconnected ([[from, to] in epoch s]). */
  function create({ deviceId, keys, tags, root, controls, offline }) {
    const charts = new Map();   // key -> {box, plot, points, every, unit}
    let rangeSeconds = DEFAULT_RANGE;
    let fixed = null;           // [fromMs, toMs] for a custom range or a zoom
    let beforeZoom = null;      // what "Reset zoom" goes back to
    let loading = 0;

    const window_ = () => (fixed || [Date.now() - rangeSeconds * 1000, Date.now()]);
    const xRange = () => window_().map((ms) => ms / 1000);
    const width = (holder) => Math.max(200, holder.clientWidth);

    function box(key) {
      let entry = charts.get(key);
      if (entry) return entry;
      const unit = unitOf(key, tags);
      const holder = GW.element("div", { className: "chart-plot" });
      const el = GW.element("div", { className: "chart", id: `chart-${key}`, "data-key": key },
        GW.element("h3", {}, GW.element("span", {}, key), GW.element("span", { className: "muted", "data-role": "summary" })),
        holder);
      const after = [...root.children].find((c) => c.dataset.key > key);
      root.insertBefore(el, after || null);
      const plot = new uPlot(chartOptions(key, unit, width(holder), xRange, zoom), [[], []], holder);
      plot.root.setAttribute("role", "img");
      plot.root.setAttribute("aria-label", `Chart of ${key}${unit ? ` in ${unit}` : ""} over time`);
      entry = { box: el, holder, plot, points: [], every: 60, unit };
      plots.set(key, plot);
      charts.set(key, entry);
      return entry;
    }

    function draw(entry) {
      const [from, to] = xRange();
      const visible = entry.points.filter((p) => p.t >= from && p.t <= to);
      entry.box.hidden = !visible.length;
      if (visible.length && Math.abs(entry.plot.width - width(entry.holder)) > 1) {
        entry.plot.setSize({ width: width(entry.holder), height: 220 });
      }
      entry.box.querySelector('[data-role="summary"]').textContent = visible.length
        ? `min ${withUnit(Math.min(...visible.map((p) => p.lo)), entry.unit)}`
          + ` · max ${withUnit(Math.max(...visible.map((p) => p.hi)), entry.unit)}`
        : "";
      entry.plot.setData(withGaps(visible, entry.every, offline ? offline() : []));
    }

    function drawAll() {
      let any = false;
      for (const entry of charts.values()) { draw(entry); any = any || !entry.box.hidden; }
      controls.empty.hidden = any || loading > 0;
    }

    async function loadKey(key) {
      const entry = box(key);
      const [from, to] = window_();
      const query = new URLSearchParams({ key, limit: String(MAX_POINTS), from: new Date(from).toISOString(),
                                          to: new Date(to).toISOString() });
      const data = await GW.getJson(`/api/devices/${encodeURIComponent(deviceId)}/telemetry?${query}`);
      entry.every = data.every_seconds || 1;
      entry.points = data.points.map((p) => ({ t: Date.parse(p.t) / 1000, v: p.mean, n: p.count, lo: p.min, hi: p.max }));
    }

    async function load() {
      loading += 1;
      controls.empty.textContent = "Loading…";
      controls.empty.hidden = false;
      try {
        await Promise.all([...new Set([...keys, ...charts.keys()])].map(loadKey));
        controls.empty.textContent = "No numeric telemetry in this range.";
      } catch (error) {
        controls.empty.textContent = `Could not load telemetry: ${error.message}`;
      } finally {
        loading -= 1;
      }
      drawAll();
    }

    function zoom(fromMs, toMs) {
      if (!beforeZoom) beforeZoom = { rangeSeconds, fixed };
      fixed = [fromMs, toMs];
      controls.zoomReset.hidden = false;
      load();
    }

    controls.zoomReset.addEventListener("click", () => {
      if (beforeZoom) ({ rangeSeconds, fixed } = beforeZoom);
      beforeZoom = null;
      controls.zoomReset.hidden = true;
      load();
    });
    controls.range.addEventListener("change", () => {
      const value = controls.range.value;
      controls.custom.hidden = value !== "custom";
      if (value === "custom") return;
      rangeSeconds = Number(value);
      fixed = null;
      beforeZoom = null;
      controls.zoomReset.hidden = true;
      load();
    });
    controls.custom.addEventListener("submit", (event) => {
      event.preventDefault();
      const from = Date.parse(controls.from.value), to = Date.parse(controls.to.value);
      const error = controls.custom.querySelector('[data-role="error"]');
      error.textContent = !isFinite(from) || !isFinite(to) ? "Enter both dates."
        : from >= to ? "From must be before To." : "";
      if (error.textContent) return;
      fixed = [from, to];
      beforeZoom = null;
      controls.zoomReset.hidden = true;
      load();
    });

    let resizePending = false;
    window.addEventListener("resize", () => {
      if (resizePending) return;
      resizePending = true;
      requestAnimationFrame(() => {
        resizePending = false;
        for (const entry of charts.values()) entry.plot.setSize({ width: width(entry.holder), height: 220 });
      });
    });
    // A sliding range moves with the clock; live values are added as they arrive.
    setInterval(() => { if (!fixed) drawAll(); }, 30000);
    let drawPending = false;

    return {
      load,
      add(ts, payload) {
        const t = Date.parse(ts) / 1000;
        for (const [key, value] of Object.entries(payload || {})) {
          if (typeof value !== "number" || !isFinite(value)) continue;
          const entry = box(key);
          const last = entry.points[entry.points.length - 1];
          if (last && Math.floor(last.t / entry.every) === Math.floor(t / entry.every)) {
            last.v = (last.v * last.n + value) / (last.n + 1);  // the bucket's mean, as the server gives it
            last.n += 1;
            last.lo = Math.min(last.lo, value);
            last.hi = Math.max(last.hi, value);
          } else if (!last || t > last.t) entry.points.push({ t, v: value, n: 1, lo: value, hi: value });
        }
        if (fixed || drawPending) return;
        drawPending = true;
        requestAnimationFrame(() => { drawPending = false; drawAll(); });
      },
    };
  }

  return { create, unitOf, withGaps, formatValue, plot: (key) => plots.get(key) };
})();
