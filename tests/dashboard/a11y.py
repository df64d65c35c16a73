"""Checks run inside the page: text contrast (WCAG relative luminance) and touch target sizes."""

# Every visible element with its own text: its colour against the first opaque background found
# up its ancestors (semi-transparent layers blended in order). Returns the failures.
CONTRAST_JS = """
(minimum) => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const blend = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3]));
  function background(el) {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let color = [255, 255, 255];
    for (const layer of layers.reverse()) color = blend(layer, color);
    return color;
  }
  const failures = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.getClientRects().length || ["SCRIPT", "STYLE", "OPTION", "DATALIST"].includes(el.tagName)) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || Number(style.opacity) === 0) continue;
    const fg = parse(style.color); if (!fg) continue;
    const bg = background(el);
    const text = blend(fg, bg);
    const [a, b] = [lum(text), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < minimum) failures.push(`${ratio.toFixed(2)}:1 ${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}"`);
  }
  return failures;
}
"""

# Controls smaller than the minimum in either direction (visible ones only).
TARGETS_JS = """
(minimum) => {
  const failures = [];
  const controls = document.querySelectorAll('button, input:not([type=hidden]), select, textarea, a.btn, .nav a, [role=tab], summary, .chip');
  for (const el of controls) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).visibility === "hidden") continue;
    if ((el.type === "checkbox" || el.type === "radio") && el.closest("label")) continue;  // the label is the target
    if (r.width < minimum - 0.01 || r.height < minimum - 0.01)
      failures.push(`${Math.round(r.width)}x${Math.round(r.height)} ${el.tagName.toLowerCase()}.${el.className} "${(el.textContent || el.name || el.id).trim().slice(0, 30)}"`);
  }
  return failures;
}
"""
