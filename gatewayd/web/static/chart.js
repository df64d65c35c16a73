/* A small line chart on a <canvas>: one numeric series over time, drawn in the page. */
"use strict";

const LineChart = (() => {
  const COLORS = { line: "#1f6feb", fill: "rgba(31,111,235,0.10)", grid: "#e3e8ee", text: "#5d6b7a", dot: "#0f4c81" };

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = 10 ** Math.floor(Math.log10(raw));
    const unit = [1, 2, 2.5, 5, 10].find((m) => m * power >= raw) || 10;
    return unit * power;
  }

  function formatValue(v) {
    const abs = Math.abs(v);
    if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return v.toExponential(2);
    return String(Math.round(v * 1000) / 1000);
  }

  function formatTime(ms, span) {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, "0");
    const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
    if (span <= 2 * 3600 * 1000) return `${hm}:${p(d.getSeconds())}`;
    if (span <= 36 * 3600 * 1000) return hm;
    return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
  }

  /* points: [{t: epoch ms, v: number}], sorted by t. range: [fromMs, toMs] or null (fit the data). */
  function draw(canvas, points, range) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 400;
    const height = canvas.clientHeight || 200;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    if (!points.length) return;

    let t0 = range ? range[0] : points[0].t;
    let t1 = range ? range[1] : points[points.length - 1].t;
    if (t1 <= t0) { t0 -= 30000; t1 += 30000; }
    let lo = Math.min(...points.map((p) => p.v));
    let hi = Math.max(...points.map((p) => p.v));
    if (hi === lo) { hi += Math.abs(hi) * 0.1 || 1; lo -= Math.abs(lo) * 0.1 || 1; }
    const step = niceStep(hi - lo, 4);
    lo = Math.floor(lo / step) * step;
    hi = Math.ceil(hi / step) * step;

    const labelWidth = Math.max(...[lo, hi].map((v) => ctx.measureText(formatValue(v)).width)) + 10;
    const left = Math.max(36, labelWidth), right = 10, top = 8, bottom = 22;
    const plotW = width - left - right, plotH = height - top - bottom;
    const x = (t) => left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (v) => top + (1 - (v - lo) / (hi - lo)) * plotH;

    ctx.strokeStyle = COLORS.grid;
    ctx.fillStyle = COLORS.text;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = lo; v <= hi + step / 2; v += step) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(width - right, yy); ctx.stroke();
      ctx.fillText(formatValue(v), left - 6, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const ticks = Math.max(2, Math.floor(plotW / 110));
    for (let i = 0; i <= ticks; i += 1) {
      const t = t0 + ((t1 - t0) * i) / ticks;
      ctx.textAlign = i === 0 ? "left" : i === ticks ? "right" : "center";
      ctx.fillText(formatTime(t, t1 - t0), x(t), height - bottom + 6);
    }

    const visible = points.filter((p) => p.t >= t0 && p.t <= t1);
    if (!visible.length) return;
    ctx.beginPath();
    visible.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
    ctx.strokeStyle = COLORS.line;
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.stroke();
    ctx.lineTo(x(visible[visible.length - 1].t), top + plotH);
    ctx.lineTo(x(visible[0].t), top + plotH);
    ctx.closePath();
    ctx.fillStyle = COLORS.fill;
    ctx.fill();
    if (visible.length <= 60) {
      ctx.fillStyle = COLORS.dot;
      for (const p of visible) { ctx.beginPath(); ctx.arc(x(p.t), y(p.v), 2.5, 0, Math.PI * 2); ctx.fill(); }
    }
  }

  return { draw };
})();
