// A device's detail view: its history over 1 h, 24 h or 7 d from gethistory (per-minute or
// per-hour summaries: the mean as a line, min to max as a band), and a CSV download link. Drawn
// with the page's own SVG charts (chart.js): at most 1,440 points a series, since the handler
// summarises.
import { drawChart } from './chart.js';
import { METRICS } from './model.js';

export const RANGES = {
  '1h': { ms: 3600000, resolution: 'minute', csv: 'raw', csvText: 'every reading' },
  '24h': { ms: 86400000, resolution: 'minute', csv: 'raw', csvText: 'every reading' },
  '7d': { ms: 7 * 86400000, resolution: 'hour', csv: 'minute', csvText: 'per-minute summary' },
};
const FIELD = { temperature: 'celsius', humidity: 'humidity', pressure: 'hPa' };
const HALF = { minute: 30000, hour: 1800000, raw: 0 };

/** gethistory's points (summaries of one device) as { metric: { mean: [[t, v]], band: [[t, lo, hi]] } }. */
export function seriesFrom(points, resolution) {
  const out = {};
  for (const m of METRICS) out[m.key] = { mean: [], band: [] };
  if (!Array.isArray(points)) return out;
  for (const p of points) {
    const t = typeof p?.time === 'string' ? Date.parse(p.time) + (HALF[resolution] ?? 0) : NaN;
    if (!Number.isFinite(t)) continue;
    for (const m of METRICS) {
      const s = p[FIELD[m.key]];
      const ok = (v) => typeof v === 'number' && Number.isFinite(v) && v >= m.min && v <= m.max;
      if (s !== null && typeof s === 'object') {
        if (!ok(s.mean)) continue;
        out[m.key].mean.push([t, s.mean]);
        if (ok(s.min) && ok(s.max)) out[m.key].band.push([t, s.min, s.max]);
      } else if (ok(s)) {
        out[m.key].mean.push([t, s]);
      }
    }
  }
  for (const m of METRICS) {
    out[m.key].mean.sort((a, b) => a[0] - b[0]);
    out[m.key].band.sort((a, b) => a[0] - b[0]);
  }
  return out;
}

/** The query strings the view uses (exported for tests). */
export function historyQuery(deviceId, range, csv = false) {
  const r = RANGES[range];
  const q = new URLSearchParams({ device: deviceId, last: range, resolution: csv ? r.csv : r.resolution });
  if (csv) q.set('format', 'csv');
  return q.toString();
}

/**
 * Wires the dialog (#detail). open(id) shows a device; the range buttons reload it. apiBase() is
 * read at each load. Returns { open, close, current() }.
 */
export function createDetail(apiBase, onChange = () => {}) {
  const dlg = document.getElementById('detail');
  const title = document.getElementById('detail-title');
  const status = document.getElementById('detail-status');
  const csv = document.getElementById('detail-csv');
  const box = document.getElementById('detail-charts');
  const svgs = new Map();
  for (const m of METRICS) {
    const fig = document.createElement('figure');
    fig.className = 'chart';
    fig.dataset.metric = m.key;
    const cap = document.createElement('figcaption');
    cap.textContent = `${m.label} (${m.unit}): mean, min to max`;
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('role', 'img');
    svg.setAttribute('preserveAspectRatio', 'none');
    cap.id = `detail-${m.key}-caption`;
    svg.setAttribute('aria-labelledby', cap.id);
    fig.append(cap, svg);
    box.append(fig);
    svgs.set(m.key, svg);
  }
  let device = null;
  let range = '1h';
  let seq = 0;
  let data = null;

  function draw() {
    if (!data) return;
    for (const m of METRICS) {
      drawChart(svgs.get(m.key), {
        from: data.from, to: data.to, emptyText: 'No readings in this range',
        series: [{ cls: 's0', dashed: false, points: data.series[m.key].mean, band: data.series[m.key].band }],
      });
    }
  }

  async function load() {
    const mine = ++seq;
    const r = RANGES[range];
    for (const b of dlg.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === range));
    csv.href = `${apiBase()}/api/gethistory?${historyQuery(device, range, true)}`;
    csv.textContent = `Download CSV (${r.csvText})`;
    status.textContent = 'Loading…';
    dlg.dataset.loaded = 'false';
    try {
      const res = await fetch(`${apiBase()}/api/gethistory?${historyQuery(device, range)}`, { cache: 'no-store' });
      const body = await res.json().catch(() => null);
      if (mine !== seq) return;
      if (!res.ok) throw new Error(body?.error ?? `HTTP ${res.status}`);
      const to = Date.parse(body.to);
      data = { from: to - r.ms, to, series: seriesFrom(body.points, r.resolution), count: 0 };
      for (const p of body.points ?? []) data.count += typeof p.count === 'number' ? p.count : 1;
      status.textContent = `${data.count} reading(s) over the last ${range}.`;
      dlg.dataset.loaded = 'true';
      dlg.dataset.readings = String(data.count);
      draw();
    } catch (err) {
      if (mine === seq) status.textContent = `History could not be read: ${err.message}`;
    }
  }

  for (const b of dlg.querySelectorAll('[data-range]')) {
    b.addEventListener('click', () => {
      range = b.dataset.range;
      onChange(device, range);
      load();
    });
  }
  document.getElementById('detail-close').addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => {
    device = null;
    onChange(null, range);
  });
  new ResizeObserver(draw).observe(box);

  return {
    open(id, r = '1h') {
      device = id;
      range = RANGES[r] ? r : '1h';
      title.textContent = id;
      data = null;
      if (!dlg.open) dlg.showModal();
      onChange(device, range);
      load();
    },
    close() { dlg.close(); },
    current: () => (device ? { device, range, loaded: dlg.dataset.loaded === 'true', readings: Number(dlg.dataset.readings ?? 0) } : null),
  };
}
