// A small SVG line chart: one line per device over a time window, with value and time axes.
// Built with createElementNS and textContent only; nothing from the data is parsed as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';
const MARGIN = { left: 52, right: 14, top: 12, bottom: 26 };
const TIME_STEPS_S = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

function el(name, attrs = {}, text = null) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== null) e.textContent = text;
  return e;
}

/** A step of 1, 2 or 5 times a power of ten giving about `count` intervals over span. */
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
}

function decimalsOf(step) {
  return step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
}

const pad2 = (n) => String(n).padStart(2, '0');

function clock(ms, withSeconds) {
  const d = new Date(ms);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

// Made on first use: the first Intl formatter of a page costs milliseconds, which loading the
// module should not.
let dayFmt = null;
function dayLabel(ms) {
  dayFmt ??= new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  return dayFmt.format(new Date(ms));
}

/**
 * Splits a series where the device was silent for much longer than it usually is (more than
 * five times its median interval and more than 10 s), so a gap is drawn as a gap, not a line.
 */
export function segments(pts) {
  if (pts.length < 3) return [pts];
  const gaps = [];
  for (let i = 1; i < pts.length; i++) gaps.push(pts[i][0] - pts[i - 1][0]);
  const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)];
  const limit = Math.max(10000, median * 5);
  const out = [];
  let start = 0;
  for (let i = 1; i < pts.length; i++) {
    if (gaps[i - 1] > limit) {
      out.push(pts.slice(start, i));
      start = i;
    }
  }
  if (start === 0) return [pts];
  out.push(pts.slice(start));
  return out;
}

let clipSeq = 0;

/**
 * Draws into svg (replacing what was there). opts: { from, to (ms), series: [{ cls, dashed,
 * points: [[t, v], ...] }], emptyText, size }. The size is the given one or the element's box, so
 * the caller redraws on resize.
 */
export function drawChart(svg, { from, to, series, emptyText = 'No readings in this window yet', size = null }) {
  // size: { width, height } known to the caller (e.g. from a ResizeObserver), which spares the
  // browser a forced layout here; without it the element's box is read.
  const width = Math.max(200, Math.round(size?.width || svg.clientWidth || 600));
  const height = Math.max(120, Math.round(size?.height || svg.clientHeight || 220));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const parts = [];

  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const [t, v] of s.points) {
      if (t < from || t > to) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    for (const [t, a, b] of s.band ?? []) {
      if (t < from || t > to) continue;
      if (a < lo) lo = a;
      if (b > hi) hi = b;
    }
  }

  // Time axis, always drawn so the window is visible even before data arrives.
  const span = Math.max(1, to - from);
  const maxTicks = Math.max(2, Math.floor(plotW / 80));
  const stepS = TIME_STEPS_S.find((s) => (span / 1000) / s <= maxTicks) ?? TIME_STEPS_S.at(-1);
  const stepMs = stepS * 1000;
  const x = (t) => MARGIN.left + ((t - from) / span) * plotW;
  const xAxis = el('g', { class: 'axis axis-x' });
  for (let t = Math.ceil(from / stepMs) * stepMs; t <= to; t += stepMs) {
    const px = x(t);
    xAxis.append(el('line', { class: 'grid', x1: px.toFixed(1), x2: px.toFixed(1), y1: MARGIN.top, y2: MARGIN.top + plotH }));
    const label = stepS >= 86400 ? dayLabel(t) : clock(t, stepS < 60);
    const half = label.length * 3.4; // about half the label's width at the axis font size
    if (px - half >= 2 && px + half <= width - 2) {
      xAxis.append(el('text', { x: px.toFixed(1), y: height - 8, 'text-anchor': 'middle' }, label));
    }
  }
  parts.push(xAxis);

  if (lo === Infinity) {
    parts.push(el('text', { class: 'empty', x: MARGIN.left + plotW / 2, y: MARGIN.top + plotH / 2, 'text-anchor': 'middle' }, emptyText));
    svg.replaceChildren(...parts);
    return;
  }

  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const padV = (hi - lo) * 0.08;
  lo -= padV;
  hi += padV;
  const vStep = niceStep(hi - lo, Math.max(2, Math.floor(plotH / 40)));
  lo = Math.floor(lo / vStep) * vStep;
  hi = Math.ceil(hi / vStep) * vStep;
  const y = (v) => MARGIN.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  const dec = decimalsOf(vStep);
  const yAxis = el('g', { class: 'axis axis-y' });
  for (let v = lo; v <= hi + vStep / 2; v += vStep) {
    const py = y(v).toFixed(1);
    yAxis.append(el('line', { class: 'grid', x1: MARGIN.left, x2: MARGIN.left + plotW, y1: py, y2: py }));
    yAxis.append(el('text', { x: MARGIN.left - 6, y: py, dy: '0.32em', 'text-anchor': 'end' }, v.toFixed(dec)));
  }
  parts.push(yAxis);

  const clipId = `plot-clip-${++clipSeq}`;
  const defs = el('defs');
  const clip = el('clipPath', { id: clipId });
  clip.append(el('rect', { x: MARGIN.left - 4, y: MARGIN.top - 4, width: plotW + 8, height: plotH + 8 }));
  defs.append(clip);
  parts.unshift(defs);

  const lines = el('g', { class: 'lines', 'clip-path': `url(#${clipId})` });
  for (const s of series) {
    const pts = s.points.filter(([t]) => t >= from - stepMs && t <= to);
    if (pts.length === 0) continue;
    const cls = `series ${s.cls}${s.dashed ? ' dashed' : ''}`;
    // min to max, a band under the line (summaries), split at the same gaps as the line
    const band = (s.band ?? []).filter(([t]) => t >= from - stepMs && t <= to);
    for (const seg of segments(band)) {
      if (seg.length < 2) continue;
      const up = seg.map(([t, , b]) => `${x(t).toFixed(1)},${y(b).toFixed(1)}`);
      const down = seg.map(([t, a]) => `${x(t).toFixed(1)},${y(a).toFixed(1)}`).reverse();
      lines.append(el('polygon', { class: `band ${s.cls}`, points: [...up, ...down].join(' ') }));
    }
    for (const seg of segments(pts)) {
      if (seg.length > 1) {
        const d = seg.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
        lines.append(el('polyline', { class: cls, points: d }));
      } else if (seg !== pts) {
        lines.append(el('circle', { class: `${cls} dot`, cx: x(seg[0][0]).toFixed(1), cy: y(seg[0][1]).toFixed(1), r: 2 }));
      }
    }
    const [lt, lv] = pts.at(-1);
    lines.append(el('circle', { class: `${cls} last`, cx: x(lt).toFixed(1), cy: y(lv).toFixed(1), r: 3.5 }));
  }
  parts.push(lines);
  parts.push(el('rect', { class: 'frame', x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH }));
  svg.replaceChildren(...parts);
}
