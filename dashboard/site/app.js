// The dashboard page: connects to the SignalR hub through the Functions API and shows the fleet:
// a summary, cards (small fleets) or a sortable, filterable table (large ones), and charts of the
// devices a person picked (or the few that need attention). Updates are batched per animation
// frame and touch only what changed. Everything from the network is shown with textContent.
import { DeviceStore, METRICS, extractDevices, isStale } from './model.js';
import {
  CARD_LIMIT, PALETTE_SIZE, chartSelection, comparator, makeFilter, matches, parsePicks, parseSort, summarize,
} from './fleet.js';
import { drawChart } from './chart.js';
import { createDetail } from './detail.js';

const params = new URLSearchParams(location.search);

/** A positive number of seconds from the query string, else the default. */
function secondsParam(name, def) {
  const raw = params.get(name);
  const n = raw === null ? NaN : Number(raw);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 7 * 86400) : def;
}

const STALE_MS = secondsParam('stale', 60) * 1000;
const WINDOW_MS = secondsParam('window', 3600) * 1000;
const RECONNECT_DELAYS_MS = [0, 1000, 2000, 4000, 8000, 10000];
const RECONNECT_GIVE_UP_MS = 60000;
// Pushes are best effort (the handler drops them while SignalR is unreachable, and for a few
// seconds after), so the state is read again a little after each (re)connection, and now and then.
const FOLLOW_UP_READ_MS = 10000;
const REFRESH_MS = secondsParam('refresh', 300) * 1000;
const PERF_SAMPLES = 1000;
const RENDER_EVERY_MS = 200;

const store = new DeviceStore({ historyMs: WINDOW_MS });
const hiddenSeries = new Set();
const charts = new Map(); // metric key -> { svg, desc }
const $ = (id) => document.getElementById(id);

// The Intl formatters, made on first use: a page's first Intl object costs 30 to 45 ms here (ICU
// starting up in the new renderer process; any formatter, measured in Chromium, 2026-12-02), so
// the first charts are drawn without any (see textsWait) and the formatters are made after them.
let formats = null;
function fmt() {
  formats ??= {
    value: new Intl.NumberFormat(undefined, { maximumFractionDigits: 2, useGrouping: false }),
    count: new Intl.NumberFormat(undefined),
    rel: new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' }),
    date: new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }),
  };
  return formats;
}

let apiBase = '';
let ignoredItems = 0;
let lastStateLoad = 0;
let historyLoaded = null; // points read from storage on load, null until then
// The first look: getdevicestate?history=1h, sent as the page starts (beside negotiate): the
// devices and each one's last hour of per-minute means in one answer.
const firstLook = { pending: null, doneAt: 0, drawnAt: null }; // doneAt: when it was answered
// Resolved once the first look is drawn or its first attempt failed: then the page connects.
firstLook.whenSettled = new Promise((resolve) => { firstLook.settled = resolve; });
// The live connection waits for the first charts (at most this long): the SignalR client's
// evaluation, negotiate and the hub's handshake would otherwise share the main thread and the
// API with them. Pushes sent meanwhile are caught by the read a little after connecting.
const CONNECT_WAIT_MS = 1000;
// The texts that need a formatter (fmt) wait until the first look's charts are drawn (or its first
// attempt failed, or the first tick): the list and its summary (render), the chart note and the
// charts' descriptions. The first charts are then drawn without ICU's start-up, and the list is
// built in the task after them; endTextsWait writes them all.
let textsWait = true;
let detail = null; // the device detail view (detail.js)

// What a person chose; kept in the URL (history.replaceState), so a reload or a shared link
// shows the same: pick= (repeated, in pick order), q=, state=, sort=, view=.
const ui = {
  view: ['cards', 'table'].includes(params.get('view')) ? params.get('view') : 'auto',
  filter: makeFilter(params.get('q') ?? '', params.get('state') ?? 'all'),
  sort: parseSort(params.get('sort')),
};
const picks = new Map(); // deviceId -> colour slot, in pick order
for (const [i, id] of parsePicks(params.getAll('pick')).entries()) picks.set(id, i);

const perf = { render: [], draw: [] };
function sample(list, ms) {
  list.push(ms);
  if (list.length > PERF_SAMPLES) list.splice(0, list.length - PERF_SAMPLES);
}

// ---------------------------------------------------------------- formatting helpers

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.round(m / 60)} h`;
}

function ago(ms, now) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return fmt().rel.format(-s, 'second');
  const m = Math.floor(s / 60);
  if (m < 60) return fmt().rel.format(-m, 'minute');
  const h = Math.floor(m / 60);
  return h < 48 ? fmt().rel.format(-h, 'hour') : fmt().rel.format(-Math.floor(h / 24), 'day');
}

function make(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Writes text only when it differs, so an unchanged value costs no DOM work. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

const fmtValue = (v) => (v === null ? '–' : fmt().value.format(v));
const fmtCount = (v) => (v === null ? '–' : fmt().count.format(v));
const plural = (n, one, many) => `${fmt().count.format(n)} ${n === 1 ? one : many}`;

// ---------------------------------------------------------------- devices: cards and table rows
// Each device has a card and a table row, each made when first needed. Only the visible layout
// is kept up to date; the other catches up (from its own dirty set) when a person switches.

const items = new Map(); // deviceId -> { card, row }
const dirty = { cards: new Set(), table: new Set() };
let shownView = null; // 'cards' or 'table' once something was drawn
let orderDirty = true; // order or visibility of the list may be wrong
let orderForced = false; // a person asked for it: reorder even under the pointer
let pointerInList = false;
let chartState = { key: '', reason: 'none', ids: [], needing: 0, slots: new Map() };
let cardSeq = 0;

const activeView = () => (ui.view !== 'auto' ? ui.view : store.size <= CARD_LIMIT ? 'cards' : 'table');
const listOf = (view) => (view === 'cards' ? $('cards') : $('rows'));
const partOf = (view) => (view === 'cards' ? 'card' : 'row');

function swatchClass(slot) {
  return slot === null ? 'swatch none' : `swatch s${slot}`;
}

function createCard(dev) {
  const n = ++cardSeq;
  const li = make('li', 'card');
  li.dataset.deviceId = dev.deviceId;
  const article = make('article');
  article.setAttribute('aria-labelledby', `card-${n}-name`);
  const head = make('div', 'card-head');
  const swatch = make('span', swatchClass(null));
  swatch.setAttribute('aria-hidden', 'true');
  const name = make('h3', 'card-name', dev.deviceId);
  name.id = `card-${n}-name`;
  name.title = dev.deviceId;
  const badge = make('span', 'badge');
  const pick = make('button', 'pick-btn', 'Chart');
  pick.type = 'button';
  pick.setAttribute('aria-pressed', 'false');
  pick.setAttribute('aria-describedby', name.id);
  const more = make('button', 'detail-btn', 'History');
  more.type = 'button';
  more.setAttribute('aria-describedby', name.id);
  more.setAttribute('aria-haspopup', 'dialog');
  head.append(swatch, name, badge, pick, more);
  const geo = make('p', 'card-geo');

  const metrics = make('dl', 'metrics');
  const fields = {};
  for (const m of [...METRICS, { key: 'light', label: 'Light', unit: 'lx' }]) {
    const box = make('div', `metric metric-${m.key}`);
    const dd = make('dd');
    dd.dataset.metric = m.key;
    const value = make('span', 'value');
    const unit = make('span', 'unit', m.unit);
    dd.append(value, unit);
    box.append(make('dt', null, m.label), dd);
    metrics.append(box);
    fields[m.key] = { box, value, unit };
  }
  const meta = make('dl', 'meta');
  for (const [key, label] of [['count', 'Messages'], ['rejected', 'Rejected'], ['lastSeen', 'Last seen']]) {
    const box = make('div');
    const dd = make('dd');
    dd.dataset.field = key;
    const value = key === 'lastSeen' ? make('time') : make('span');
    dd.append(value);
    box.append(make('dt', null, label), dd);
    meta.append(box);
    fields[key] = { box, value };
  }
  article.append(head, geo, metrics, meta);
  li.append(article);
  return { el: li, badge, geo, fields, swatch, pick, time: fields.lastSeen.value, stale: null, slot: undefined, picked: undefined };
}

function fillCard(card, dev, now) {
  for (const key of ['temperature', 'humidity', 'pressure', 'light']) {
    const f = card.fields[key];
    const v = dev[key];
    if (key === 'light') f.box.hidden = v === null;
    setText(f.value, fmtValue(v));
    f.unit.hidden = v === null;
    f.box.classList.toggle('missing', v === null);
  }
  setText(card.fields.count.value, fmtCount(dev.count));
  setText(card.fields.rejected.value, fmtCount(dev.rejected));
  card.fields.rejected.box.classList.toggle('has-rejected', (dev.rejected ?? 0) > 0);
  setText(card.geo, dev.geo ?? '');
  card.geo.hidden = dev.geo === null;
}

const ROW_NUMBERS = ['temperature', 'humidity', 'pressure', 'light', 'count', 'rejected'];

function createRow(dev) {
  // Roles spelled out: the rows are laid out as grids (style.css), which may hide the native ones.
  const tr = make('tr');
  tr.setAttribute('role', 'row');
  tr.dataset.deviceId = dev.deviceId;
  const cell = (cls) => {
    const td = make('td', cls);
    td.setAttribute('role', 'cell');
    return td;
  };
  const pickCell = cell('col-pick');
  const label = make('label', 'pick');
  const box = make('input');
  box.type = 'checkbox';
  box.setAttribute('aria-label', `Chart ${dev.deviceId}`);
  const swatch = make('span', swatchClass(null));
  swatch.setAttribute('aria-hidden', 'true');
  label.append(box, swatch);
  pickCell.append(label);
  const name = make('th', 'col-id', dev.deviceId);
  name.scope = 'row';
  name.setAttribute('role', 'rowheader');
  name.title = dev.deviceId;
  const stateCell = cell();
  const badge = make('span', 'badge');
  stateCell.append(badge);
  tr.append(pickCell, name, stateCell);
  const cells = {};
  for (const key of ROW_NUMBERS) {
    const td = cell('num');
    td.dataset.field = key;
    cells[key] = td;
    tr.append(td);
  }
  const seenCell = cell();
  seenCell.dataset.field = 'lastSeen';
  const time = make('time');
  seenCell.append(time);
  const detailCell = cell('col-detail');
  const more = make('button', 'detail-btn', 'History');
  more.type = 'button';
  more.setAttribute('aria-label', `History of ${dev.deviceId}`);
  more.setAttribute('aria-haspopup', 'dialog');
  detailCell.append(more);
  tr.append(seenCell, detailCell);
  return { el: tr, badge, cells, swatch, pick: box, time, stale: null, slot: undefined, picked: undefined };
}

function fillRow(row, dev) {
  for (const key of ROW_NUMBERS) {
    const v = dev[key];
    setText(row.cells[key], key === 'count' || key === 'rejected' ? fmtCount(v) : fmtValue(v));
  }
  row.cells.rejected.classList.toggle('has-rejected', (dev.rejected ?? 0) > 0);
}

/** Last seen and the live/stale badge; returns true when the device changed between the two. */
function updateFreshness(part, dev, now) {
  const time = part.time;
  if (dev.lastSeen === null) {
    setText(time, 'never');
    time.removeAttribute('datetime');
    time.removeAttribute('title');
  } else {
    setText(time, ago(Math.min(dev.lastSeen, now), now));
    const iso = new Date(dev.lastSeen).toISOString();
    if (time.getAttribute('datetime') !== iso) {
      time.setAttribute('datetime', iso);
      time.title = fmt().date.format(dev.lastSeen);
    }
  }
  const stale = isStale(dev, now, STALE_MS);
  if (stale === part.stale) return false;
  const flipped = part.stale !== null;
  part.stale = stale;
  part.el.classList.toggle('stale', stale);
  part.el.dataset.stale = String(stale);
  part.badge.textContent = stale ? 'Stale' : 'Live';
  part.badge.className = `badge ${stale ? 'badge-stale' : 'badge-live'}`;
  part.badge.title = stale ? `No reading for more than ${duration(STALE_MS)}` : 'Reporting';
  return flipped;
}

/** The pick box or button and the colour swatch, from picks and what the charts show. */
function updatePickState(id, part) {
  const picked = picks.has(id);
  const slot = chartState.slots.get(id) ?? null;
  // The box is compared with itself: a click toggles it before the page decides (a refused pick).
  if (part.pick.type === 'checkbox' && part.pick.checked !== picked) part.pick.checked = picked;
  if (picked !== part.picked) {
    part.picked = picked;
    // A toggle button keeps its label; aria-pressed (and its look) carries the state.
    if (part.pick.type !== 'checkbox') part.pick.setAttribute('aria-pressed', String(picked));
    part.el.classList.toggle('picked', picked);
  }
  if (slot !== part.slot) {
    part.slot = slot;
    part.swatch.className = swatchClass(slot);
    part.swatch.title = slot === null ? '' : 'Colour of this device in the charts';
  }
}

/** Brings the device's element in view up to date, making it if needed. */
function renderItem(id, view, now) {
  const dev = store.get(id);
  if (!dev) return;
  let it = items.get(id);
  if (!it) {
    it = { card: null, row: null };
    items.set(id, it);
  }
  const key = partOf(view);
  if (!it[key]) {
    it[key] = view === 'cards' ? createCard(dev) : createRow(dev);
    it[key].el.hidden = true; // until reorder() places it
    listOf(view).append(it[key].el);
    orderDirty = true;
  }
  if (view === 'cards') fillCard(it.card, dev, now);
  else fillRow(it.row, dev, now);
  if (updateFreshness(it[key], dev, now)) orderDirty = true;
  updatePickState(id, it[key]);
}

/** Whether the list may move now: not under the pointer or keyboard focus, unless asked for. */
function listMayMove(view) {
  if (orderForced) return true;
  if (pointerInList) return false;
  const a = document.activeElement;
  return !(a && listOf(view).contains(a) && a.matches(':focus-visible'));
}

/** Shows the devices that pass the filter, in the chosen order, moving only what is out of place. */
function reorder(view, now) {
  orderDirty = false;
  orderForced = false;
  const list = listOf(view);
  const key = partOf(view);
  const shown = [];
  const all = store.all();
  for (const d of all) {
    const part = items.get(d.deviceId)?.[key];
    if (!part) continue;
    const ok = matches(d, ui.filter, now, STALE_MS);
    if (part.el.hidden === ok) part.el.hidden = !ok;
    if (ok) shown.push(d);
  }
  shown.sort(comparator(ui.sort, now, STALE_MS));
  const kids = list.children;
  for (let i = 0; i < shown.length; i++) {
    const el = items.get(shown[i].deviceId)[key].el;
    if (kids[i] !== el) list.insertBefore(el, kids[i] ?? null);
  }
  const filtered = ui.filter.text !== '' || ui.filter.state !== 'all';
  setText($('shown'), all.length === 0 ? '' : filtered
    ? `Showing ${fmt().count.format(shown.length)} of ${plural(all.length, 'device', 'devices')}`
    : plural(all.length, 'device', 'devices'));
  $('no-match').hidden = !(all.length > 0 && shown.length === 0);
}

function switchView(view) {
  shownView = view;
  pointerInList = false; // a list that is hidden under the pointer gets no pointerleave
  $('cards').hidden = view !== 'cards';
  $('table-wrap').hidden = view !== 'table';
  for (const b of document.querySelectorAll('.view-toggle button')) b.setAttribute('aria-pressed', String(b.dataset.view === view));
  for (const id of store.ids()) dirty[view].add(id);
  orderDirty = true;
  orderForced = true;
}

function renderSummary(now) {
  const s = summarize(store.all(), now, STALE_MS);
  $('empty').hidden = s.devices > 0;
  setText($('summary'), s.devices === 0 ? 'No devices yet'
    : `${plural(s.devices, 'device', 'devices')} · ${fmt().count.format(s.live)} live · ${fmt().count.format(s.stale)} stale · ` +
      `${fmt().count.format(s.rejects)} with rejects`);
  for (const k of ['all', 'live', 'stale', 'rejects', 'messages', 'rejected']) {
    setText($(`n-${k}`), fmt().count.format(k === 'all' ? s.devices : s[k]));
  }
}

function renderSortHeaders() {
  for (const b of document.querySelectorAll('#table thead button[data-sort]')) {
    const th = b.parentElement;
    if (b.dataset.sort === ui.sort.key) th.setAttribute('aria-sort', ui.sort.dir === 'asc' ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
}

function renderFilterControls() {
  for (const b of document.querySelectorAll('#tiles button')) b.setAttribute('aria-pressed', String(b.dataset.state === ui.filter.state));
}

/** Writes what a person chose into the URL, keeping every other parameter. */
function saveUrl() {
  const p = new URLSearchParams(location.search);
  p.delete('pick');
  for (const id of picks.keys()) p.append('pick', id);
  const set = (k, v, def) => (v === def ? p.delete(k) : p.set(k, v));
  set('q', ui.filter.text, '');
  set('state', ui.filter.state, 'all');
  set('sort', `${ui.sort.key}-${ui.sort.dir}`, 'deviceId-asc');
  set('view', ui.view, 'auto');
  set('detail', ui.detail?.device ?? '', '');
  set('range', ui.detail ? ui.detail.range : '1h', '1h');
  const q = p.toString();
  history.replaceState(history.state, '', `${location.pathname}${q ? `?${q}` : ''}${location.hash}`);
}

function pickNote(text) {
  setText($('pick-note'), text);
}

function togglePick(id) {
  if (picks.has(id)) {
    picks.delete(id);
    pickNote('');
  } else if (picks.size >= PALETTE_SIZE) {
    pickNote(`At most ${PALETTE_SIZE} devices are charted at once: unpick one first.`);
  } else {
    const used = new Set(picks.values());
    let slot = 0;
    while (used.has(slot)) slot++;
    picks.set(id, slot);
    pickNote('');
  }
  saveUrl();
  refreshSelection(Date.now(), true);
  const part = items.get(id)?.[partOf(shownView ?? activeView())];
  if (part) updatePickState(id, part); // a refused pick puts the box back
  drawCharts();
}

/** Works out which devices the charts show; when that changed, updates legend, swatches and note. */
function refreshSelection(now, force = false) {
  const sel = chartSelection(store.all(), [...picks.keys()], now, STALE_MS);
  // Picked devices keep the colour they were picked with; otherwise a device keeps its colour while
  // it stays charted (the attention set changes as rejects and silences come and go), and a
  // newcomer takes the first free one.
  const slots = new Map();
  if (sel.reason === 'picked') {
    for (const id of sel.ids) slots.set(id, picks.get(id));
  } else {
    const keep = chartState.reason === sel.reason ? chartState.slots : new Map();
    const used = new Set();
    for (const id of sel.ids) {
      if (keep.has(id)) {
        slots.set(id, keep.get(id));
        used.add(keep.get(id));
      }
    }
    let free = 0;
    for (const id of sel.ids) {
      if (slots.has(id)) continue;
      while (used.has(free)) free++;
      slots.set(id, free);
      used.add(free);
    }
  }
  const key = `${sel.reason} ${[...slots].map(([id, s]) => `${s}:${id}`).join('\u0000')}`;
  if (key === chartState.key && !force) {
    if (sel.needing !== chartState.needing) {
      chartState.needing = sel.needing;
      renderChartNote();
    }
    return;
  }
  const before = chartState.slots;
  chartState = { key, reason: sel.reason, ids: sel.ids, needing: sel.needing, slots };
  const view = shownView ?? activeView();
  for (const id of new Set([...before.keys(), ...slots.keys(), ...picks.keys()])) {
    const part = items.get(id)?.[partOf(view)];
    if (part) updatePickState(id, part);
  }
  renderLegend();
  renderChartNote();
  $('clear-picks').hidden = picks.size === 0;
  scheduleCharts();
}

function renderChartNote() {
  if (textsWait) return; // endTextsWait writes it
  const n = chartState.ids.length;
  let text;
  switch (chartState.reason) {
    case 'picked':
      text = `Charting the ${plural(n, 'device', 'devices')} you picked (at most ${PALETTE_SIZE}). ` +
        'Pick or unpick devices in the list above.';
      break;
    case 'all':
      text = n === 0 ? 'The charts fill in as readings arrive.'
        : `Charting all ${plural(n, 'device', 'devices')}. Pick devices in the list above to chart only those.`;
      break;
    case 'attention':
      text = `No device picked: charting ${fmt().count.format(n)} of the ${plural(chartState.needing, 'device', 'devices')} ` +
        'that need attention (rejected readings first, then stale). Pick devices in the list above to chart those instead.';
      break;
    default:
      text = 'No device picked, and none needs attention. Pick devices in the list above (click a row) to chart them.';
  }
  setText($('chart-note'), text);
}

// ---------------------------------------------------------------- charts

function renderLegend() {
  const legend = $('legend');
  const buttons = [];
  for (const id of chartState.ids) {
    const b = make('button', 'legend-item');
    b.type = 'button';
    b.dataset.deviceId = id;
    b.setAttribute('aria-pressed', String(!hiddenSeries.has(id)));
    const sw = make('span', swatchClass(chartState.slots.get(id)));
    sw.setAttribute('aria-hidden', 'true');
    b.append(sw, make('span', null, id));
    b.title = `Show or hide ${id} in the charts`;
    buttons.push(b);
  }
  // Keep keyboard focus on the same device's button when the legend is rebuilt.
  const focused = legend.contains(document.activeElement) ? document.activeElement.dataset.deviceId : null;
  legend.replaceChildren(...buttons);
  if (focused !== null) buttons.find((b) => b.dataset.deviceId === focused)?.focus();
}

function createCharts() {
  const box = $('charts');
  for (const m of METRICS) {
    const fig = make('figure', 'chart');
    fig.dataset.metric = m.key;
    const cap = make('figcaption', null, `${m.label} (${m.unit})`);
    cap.id = `chart-${m.key}-caption`;
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-labelledby', cap.id);
    svg.setAttribute('aria-describedby', `chart-${m.key}-desc`);
    svg.setAttribute('preserveAspectRatio', 'none');
    const desc = make('p', 'visually-hidden');
    desc.id = `chart-${m.key}-desc`;
    fig.append(cap, svg, desc);
    box.append(fig);
    charts.set(m.key, { svg, desc, m, lastDesc: '', size: null });
  }
  // Each chart's size, kept from the observer, so drawing never has to ask for a layout.
  const bySvg = new Map([...charts.values()].map((c) => [c.svg, c]));
  const ro = new ResizeObserver((entries) => {
    for (const e of entries) {
      const c = bySvg.get(e.target);
      if (c) c.size = { width: e.contentRect.width, height: e.contentRect.height };
    }
    drawCharts();
  });
  for (const c of charts.values()) ro.observe(c.svg);
  // The sizes now, while the first look is still on its way (main() makes the charts first): the
  // layout this asks for is then done before the answer is in, not when the charts are drawn (the
  // observer's first sizes come only with the next frame).
  for (const c of charts.values()) c.size = { width: c.svg.clientWidth, height: c.svg.clientHeight };
}

let lastDraw = 0;
let drawTimer = null;

function drawCharts() {
  clearTimeout(drawTimer);
  drawTimer = null;
  const t0 = performance.now();
  const now = Date.now();
  lastDraw = now;
  store.prune(now);
  const ids = chartState.ids;
  // The axis starts at the oldest point kept (at least half a minute back), so that a page that
  // has just opened does not squeeze its first readings into the right edge of the window.
  let oldest = now;
  for (const id of ids) for (const m of METRICS) oldest = Math.min(oldest, store.history(id, m.key)[0]?.[0] ?? now);
  const from = Math.max(now - WINDOW_MS, Math.min(oldest, now - 30000));
  const emptyText = ids.length ? 'No readings in this window yet' : 'No device to chart';
  for (const entry of charts.values()) {
    const { svg, m } = entry;
    const series = ids.filter((id) => !hiddenSeries.has(id)).map((id) => ({
      cls: `s${chartState.slots.get(id)}`,
      dashed: false,
      points: store.history(id, m.key),
    }));
    drawChart(svg, { from, to: now, series, emptyText, size: entry.size });
    if (!textsWait) describeChart(entry, ids);
  }
  sample(perf.draw, performance.now() - t0);
}

/** A chart's description for screen readers: the charted devices' latest values. */
function describeChart(entry, ids) {
  const { desc, m } = entry;
  const latest = [];
  for (const id of ids) {
    const v = store.get(id)?.[m.key] ?? null;
    if (v !== null) latest.push(`${id} ${fmt().value.format(v)} ${m.unit}`);
  }
  const text = latest.length ? `Latest ${m.label.toLowerCase()}: ${latest.join(', ')}.` : 'No readings yet.';
  if (entry.lastDesc !== text) {
    desc.textContent = text;
    entry.lastDesc = text;
  }
}

/** Ends textsWait: the chart note, the charts' descriptions, the list and its summary. */
function endTextsWait() {
  if (!textsWait) return;
  textsWait = false;
  renderChartNote();
  for (const entry of charts.values()) describeChart(entry, chartState.ids);
  render();
}

/** Redraws soon, at most four times a second however fast readings arrive. */
function scheduleCharts() {
  if (drawTimer !== null) return;
  drawTimer = setTimeout(drawCharts, Math.max(0, 250 - (Date.now() - lastDraw)));
}

// ---------------------------------------------------------------- incoming data

let renderQueued = false;
let renderTimer = null;
let lastRender = 0;

/**
 * Renders on an animation frame (or within half a second in a hidden tab). Live data renders at
 * most every RENDER_EVERY_MS: with a fleet pushing all the time, every frame would mean a layout
 * of the whole list 60 times a second for changes nobody can read that fast. A person's own
 * action (now = true) renders on the next frame.
 */
function queueRender(now = false) {
  if (renderQueued) return;
  const wait = now ? 0 : RENDER_EVERY_MS - (performance.now() - lastRender);
  if (wait > 0) {
    if (renderTimer === null) renderTimer = setTimeout(() => { renderTimer = null; queueRender(true); }, wait);
    return;
  }
  clearTimeout(renderTimer);
  renderTimer = null;
  renderQueued = true;
  requestAnimationFrame(render);
  setTimeout(() => renderQueued && render(), 500); // rAF does not run in hidden tabs
}

/** One frame's work: the changed devices, the list order if needed, the summary, the chart set. */
function render() {
  renderQueued = false;
  if (textsWait) return; // endTextsWait renders
  const t0 = performance.now();
  lastRender = t0;
  const now = Date.now();
  const view = activeView();
  if (view !== shownView) switchView(view);
  const ids = dirty[view];
  if (ids.size && (ui.sort.key !== 'deviceId' || ui.filter.state !== 'all')) orderDirty = true;
  for (const id of ids) renderItem(id, view, now);
  ids.clear();
  if (orderDirty && listMayMove(view)) reorder(view, now);
  renderSummary(now);
  refreshSelection(now);
  scheduleCharts();
  sample(perf.render, performance.now() - t0);
}

/** Takes any newMessage argument or getdevicestate answer; never throws. */
function applyPayload(payload, source) {
  try {
    const now = Date.now();
    const { devices, ignored } = extractDevices(payload);
    ignoredItems += ignored;
    for (const d of devices) {
      const r = store.apply(d, now);
      if (r === 'new' || r === 'updated') {
        dirty.cards.add(d.deviceId);
        dirty.table.add(d.deviceId);
      }
    }
    // An empty array is an empty device list (getdevicestate sent to this connection before any
    // device reported), not a broadcast worth showing.
    const empty = Array.isArray(payload) && payload.length === 0;
    if (devices.length === 0 && source === 'push' && !empty) showNotice(payload);
    if (dirty[activeView()].size) queueRender(); // the other layout catches up when shown
  } catch (err) {
    console.warn('enviromon: ignored a message', err);
  }
}

function showNotice(payload) {
  let text;
  try {
    text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  } catch {
    text = String(payload);
  }
  if (text === undefined) text = String(payload);
  if (text.length > 400) text = `${text.slice(0, 400)}…`;
  $('notice-text').textContent = text;
  const t = $('notice-time');
  t.setAttribute('datetime', new Date().toISOString());
  t.textContent = `Received ${new Date().toLocaleTimeString()}`;
  $('notice').hidden = false;
}

// ---------------------------------------------------------------- connection

const conn = { gen: 0, hub: null, token: null, tokenExp: 0, state: 'connecting', wake: null };

function setState(state, detail = '') {
  conn.state = state;
  const p = $('conn');
  p.dataset.state = state;
  const labels = {
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    disconnected: 'Disconnected',
  };
  $('conn-text').textContent = labels[state] ?? state;
  const d = $('conn-detail');
  d.textContent = detail;
  d.hidden = detail === '';
  $('retry').hidden = state !== 'disconnected';
}

function jwtExpiry(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(part)).exp;
    return typeof exp === 'number' ? exp * 1000 : Infinity;
  } catch {
    return Infinity;
  }
}

async function negotiate() {
  const res = await fetch(`${apiBase}/api/negotiate`, { method: 'POST', cache: 'no-store' });
  if (!res.ok) throw new Error(`negotiate answered HTTP ${res.status}`);
  const info = await res.json().catch(() => null);
  if (!info || typeof info.url !== 'string' || typeof info.accessToken !== 'string') {
    throw new Error('negotiate answered without url and accessToken');
  }
  conn.token = info.accessToken;
  conn.tokenExp = jwtExpiry(info.accessToken);
  return info;
}

/** Called by the SignalR client before every (re)connection: a token that is about to expire is renewed. */
async function accessToken() {
  if (!conn.token || Date.now() > conn.tokenExp - 60000) await negotiate();
  return conn.token;
}

const reconnectPolicy = {
  nextRetryDelayInMilliseconds(ctx) {
    if (ctx.elapsedMilliseconds > RECONNECT_GIVE_UP_MS) return null; // our own loop takes over
    const base = RECONNECT_DELAYS_MS[Math.min(ctx.previousRetryCount, RECONNECT_DELAYS_MS.length - 1)];
    return base + Math.floor(Math.random() * 500);
  },
};

function pause(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      conn.wake = null;
      resolve();
    }
    conn.wake = done;
  });
}

/**
 * Fetches and runs the SignalR client the first time it is needed (after the first charts); resolves once it
 * has run, rejects when it failed to load (a later call tries again).
 */
let signalrScript = null;
function signalrLoaded() {
  if (typeof signalR !== 'undefined') return Promise.resolve();
  signalrScript ??= new Promise((resolve, reject) => {
    const el = document.createElement('script');
    el.src = 'signalr.min.js';
    el.addEventListener('load', () => resolve(), { once: true });
    el.addEventListener('error', () => {
      signalrScript = null;
      el.remove();
      reject(new Error('the SignalR client did not load'));
    }, { once: true });
    document.head.append(el);
  });
  return signalrScript;
}

/** Negotiates and connects, retrying forever with a capped backoff; then loads every device. */
async function connect() {
  const gen = ++conn.gen;
  for (let attempt = 0; gen === conn.gen; attempt++) {
    setState('connecting');
    let hub = null;
    try {
      const [info] = await Promise.all([negotiate(), signalrLoaded()]);
      hub = new signalR.HubConnectionBuilder()
        .withUrl(info.url, { accessTokenFactory: accessToken })
        .withAutomaticReconnect(reconnectPolicy)
        .configureLogging(signalR.LogLevel.Warning)
        .build();
      hub.on('newMessage', (...args) => {
        for (const a of args) applyPayload(a, 'push');
      });
      hub.onreconnecting(() => {
        if (conn.hub === hub) setState('reconnecting');
      });
      hub.onreconnected(() => {
        if (conn.hub !== hub) return;
        setState('connected');
        readAfterConnect(hub);
      });
      hub.onclose(() => {
        if (conn.hub !== hub) return;
        conn.hub = null;
        connect();
      });
      await hub.start();
      if (gen !== conn.gen) {
        hub.stop().catch(() => {});
        return;
      }
      conn.hub = hub;
      setState('connected');
      readAfterConnect(hub);
      return;
    } catch (err) {
      if (hub) hub.stop().catch(() => {});
      const delay = Math.min(30000, 1000 * 2 ** Math.min(attempt, 5)) + Math.floor(Math.random() * 1000);
      const why = String(err?.message ?? err).replace(/\.$/, '');
      setState('disconnected', `Could not connect (${why}). Trying again in ${Math.round(delay / 1000)} s.`);
      await pause(delay);
    }
  }
}

let refreshTimer = null;

/**
 * Reads every device now, again a little later, then every REFRESH_MS while connected. Right
 * after the first look (in flight, or answered less than FIRST_LOOK_FRESH_MS ago) the read now is
 * left out: that answer is the state, and the read a little later catches what was pushed while
 * the hub was connecting.
 */
const FIRST_LOOK_FRESH_MS = 5000;
function readAfterConnect(hub) {
  clearTimeout(refreshTimer);
  if (!firstLook.pending && Date.now() - firstLook.doneAt > FIRST_LOOK_FRESH_MS) loadState(hub, true);
  let delay = FOLLOW_UP_READ_MS;
  const again = () => {
    if (conn.hub !== hub) return;
    loadState(hub, false);
    delay = REFRESH_MS;
    refreshTimer = setTimeout(again, delay);
  };
  refreshTimer = setTimeout(again, delay);
}

/** The parsed body of an answer, or an Error naming its status (as boot.js reads it). */
function bodyOf(res) {
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

/**
 * The first look: one request for every device and its last hour of per-minute means
 * (getdevicestate?history=1h, from the minute slots of each device's row), sent as the page
 * starts, so that a reload shows at once what came before it; the charts are drawn as soon as it
 * is in. Live points then arrive as before. A failure leaves the charts to live points and to the
 * reads after connecting (and says so).
 */
async function loadFirstLook() {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // the first attempt's request went out from boot.js as the page started (which parsed
      // its answer too)
      const sent = attempt === 0 ? window.enviromonBoot?.firstLook : null;
      const body = await (sent ?? fetch(`${apiBase}/api/getdevicestate?history=1h`, { cache: 'no-store' }).then(bodyOf));
      performance.mark('enviromon:first-look-answered');
      applyPayload(body, 'state');
      lastStateLoad = Date.now();
      // The charts first: the chart set, the charted devices' hours, the charts. The other
      // devices' hours, the texts and the list come in the next task, once the charts can be
      // painted.
      refreshSelection(Date.now(), true);
      const charted = new Set(chartState.ids);
      const later = [];
      let taken = 0;
      for (const d of Array.isArray(body) ? body : []) {
        if (typeof d?.deviceId === 'string' && charted.has(d.deviceId.trim())) taken += store.preloadMinutes(d.deviceId, d.lastHour);
        else later.push(d);
      }
      drawCharts();
      firstLook.drawnAt ??= performance.now();
      firstLook.doneAt = Date.now(); // answered: the read right after connecting is not needed
      performance.mark('enviromon:first-look-drawn');
      setTimeout(() => {
        for (const d of later) taken += store.preloadMinutes(d?.deviceId, d?.lastHour);
        historyLoaded = (historyLoaded ?? 0) + taken;
        store.prune();
        endTextsWait();
        firstLook.settled();
      });
      return;
    } catch (err) {
      $('window-text').textContent = `Last ${duration(WINDOW_MS)}: history could not be read (${err.message})`;
      endTextsWait();
      firstLook.settled();
      await new Promise((r) => setTimeout(r, 2000 * (attempt + 1)));
    }
  }
}

/**
 * For a window longer than the hour the first look holds (?window=): per-hour or per-minute
 * means from gethistory, one request.
 */
async function loadHistory() {
  const res = WINDOW_MS > 3600000 ? 'hour' : 'minute';
  const last = WINDOW_MS > 86400000 ? '7d' : WINDOW_MS > 3600000 ? '24h' : '1h';
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const r = await fetch(`${apiBase}/api/gethistory?last=${last}&resolution=${res}`, { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const body = await r.json();
      historyLoaded = store.preload(body?.points, res);
      store.prune();
      scheduleCharts();
      return;
    } catch (err) {
      $('window-text').textContent = `Last ${duration(WINDOW_MS)}: history could not be read (${err.message})`;
      await new Promise((r) => setTimeout(r, 2000 * (attempt + 1)));
    }
  }
}

/** Reads every device; withConnection also asks the API to send the same to this connection. */
async function loadState(hub, withConnection = false) {
  for (let attempt = 0; attempt < 6; attempt++) {
    if (conn.hub !== hub || hub.state !== 'Connected') return;
    const id = hub.connectionId;
    const q = withConnection && id ? `?connectionId=${encodeURIComponent(id)}` : '';
    try {
      const res = await fetch(`${apiBase}/api/getdevicestate${q}`, { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      applyPayload(await res.json(), 'state');
      lastStateLoad = Date.now();
      if (conn.state === 'connected') setState('connected');
      return;
    } catch (err) {
      if (conn.hub === hub) setState('connected', `Could not load the device list (${err.message}); trying again.`);
      await new Promise((r) => setTimeout(r, 1500 * (attempt + 1)));
    }
  }
}

/**
 * config.json's API base (boot.js reads it as the page starts); same origin when boot.js did not
 * run.
 */
function loadConfig() {
  return window.enviromonBoot?.config ?? Promise.resolve('');
}

// ---------------------------------------------------------------- start

/** Once a second: "last seen" texts, stale badges, the summary, the chart set, the charts. */
function tick() {
  endTextsWait(); // (once) the first look has not drawn the charts within a second: the list first
  const now = Date.now();
  const view = shownView;
  if (view) {
    const key = partOf(view);
    for (const [id, it] of items) {
      const dev = store.get(id);
      if (dev && it[key] && updateFreshness(it[key], dev, now)) orderDirty = true;
    }
    if (orderDirty) queueRender();
  }
  renderSummary(now);
  refreshSelection(now);
  drawCharts();
}

function setFilter(text, state) {
  const f = makeFilter(text, state);
  if (f.text === ui.filter.text && f.state === ui.filter.state) return;
  ui.filter = f;
  renderFilterControls();
  saveUrl();
  orderDirty = true;
  orderForced = true;
  queueRender(true);
}

/** Whether the person is selecting text inside el (then a click is not a pick). */
function selectingIn(el) {
  const s = getSelection();
  return !!s && !s.isCollapsed && el.contains(s.anchorNode);
}

function wireControls() {
  $('find').value = ui.filter.text;
  $('find').addEventListener('input', (e) => setFilter(e.target.value, ui.filter.state));
  $('tiles').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-state]');
    if (b) setFilter(ui.filter.text, b.dataset.state);
  });
  $('clear-filter').addEventListener('click', () => {
    $('find').value = '';
    setFilter('', 'all');
  });
  for (const b of document.querySelectorAll('.view-toggle button')) {
    b.addEventListener('click', () => {
      ui.view = b.dataset.view;
      saveUrl();
      queueRender(true);
    });
  }
  $('table').querySelector('thead').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-sort]');
    if (!b) return;
    const key = b.dataset.sort;
    // First click: highest first for numbers, A to Z for ids, stale first for state, longest
    // silent first for last seen; a second click reverses.
    const first = ['deviceId', 'state', 'lastSeen'].includes(key) ? 'asc' : 'desc';
    const dir = ui.sort.key === key ? (ui.sort.dir === 'asc' ? 'desc' : 'asc') : first;
    ui.sort = { key, dir };
    renderSortHeaders();
    saveUrl();
    orderDirty = true;
    orderForced = true;
    queueRender(true);
  });
  // Picking: a row's box (keyboard: Tab to it, Space), a click anywhere else on the row, a
  // card's Chart button (Enter or Space), or a click anywhere else on the card.
  $('rows').addEventListener('change', (e) => {
    const tr = e.target.closest('tr[data-device-id]');
    if (tr && e.target.type === 'checkbox') togglePick(tr.dataset.deviceId);
  });
  $('rows').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-device-id]');
    if (tr && e.target.closest('.detail-btn')) {
      detail.open(tr.dataset.deviceId);
      return;
    }
    if (!tr || e.target.closest('label.pick') || selectingIn(tr)) return;
    togglePick(tr.dataset.deviceId);
  });
  $('cards').addEventListener('click', (e) => {
    const li = e.target.closest('li[data-device-id]');
    if (li && e.target.closest('.detail-btn')) {
      detail.open(li.dataset.deviceId);
      return;
    }
    if (!li || (!e.target.closest('.pick-btn') && selectingIn(li))) return;
    togglePick(li.dataset.deviceId);
  });
  for (const list of [$('rows'), $('cards')]) {
    list.addEventListener('pointerenter', () => { pointerInList = true; });
    list.addEventListener('pointerleave', () => {
      pointerInList = false;
      if (orderDirty) queueRender();
    });
    list.addEventListener('focusout', () => orderDirty && queueRender());
  }
  $('clear-picks').addEventListener('click', () => {
    picks.clear();
    pickNote('');
    saveUrl();
    refreshSelection(Date.now(), true);
    drawCharts();
  });
  $('legend').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-device-id]');
    if (!b) return;
    const id = b.dataset.deviceId;
    const shown = b.getAttribute('aria-pressed') === 'true';
    b.setAttribute('aria-pressed', String(!shown));
    if (shown) hiddenSeries.add(id);
    else hiddenSeries.delete(id);
    drawCharts();
  });
}

async function main() {
  // The first look goes out before anything else is set up (its answer is handled once main()
  // has built the page: promise callbacks run after this synchronous part).
  performance.mark('enviromon:main');
  const config = loadConfig();
  firstLook.pending = config.then((base) => {
    apiBase = base;
    return loadFirstLook();
  }).finally(() => {
    firstLook.pending = null;
  });
  $('window-text').textContent = `Last ${duration(WINDOW_MS)}: per-minute means from storage, then every reading`;
  createCharts();
  wireControls();
  renderSortHeaders();
  renderFilterControls();
  apiBase = await config;
  detail = createDetail(() => apiBase, (device, range) => {
    ui.detail = device ? { device, range } : null;
    saveUrl();
  });
  const asked = params.get('detail');
  if (asked && asked.length <= 128) detail.open(asked, params.get('range') ?? '1h');
  $('settings-text').textContent =
    `Devices are marked stale after ${duration(STALE_MS)} without a reading. ` +
    `API: ${apiBase || 'same origin as this page'}.`;
  $('retry').addEventListener('click', () => conn.wake?.());
  window.addEventListener('online', () => conn.wake?.());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && conn.hub && Date.now() - lastStateLoad > 30000) loadState(conn.hub, false);
  });
  setInterval(tick, 1000);
  render();
  // The charts are drawn when the first look is in (moments away): drawing them empty first
  // would cost a layout of the page on the way there. The once-a-second tick draws them anyway.
  if (!firstLook.pending) tick();
  Promise.race([firstLook.whenSettled, new Promise((r) => setTimeout(r, CONNECT_WAIT_MS))]).then(() => connect());
  if (WINDOW_MS > 3600000) loadHistory();
}

const quantile = (xs, q) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

// Read-only view for tests and for poking around in the console.
window.enviromon = Object.freeze({
  state: () => conn.state,
  connectionId: () => conn.hub?.connectionId ?? null,
  devices: () => structuredClone(store.devices()),
  history: (id, metric) => structuredClone(store.history(id, metric)),
  historyLoaded: () => historyLoaded,
  /** performance.now() (ms after navigation started) when the first look's charts were drawn. */
  firstLookDrawn: () => firstLook.drawnAt,
  detail: () => detail?.current() ?? null,
  ignored: () => ignoredItems,
  view: () => shownView,
  charted: () => ({ reason: chartState.reason, ids: [...chartState.ids], needing: chartState.needing }),
  picked: () => [...picks.keys()],
  /** Milliseconds per frame's render and per chart redraw (the last 1000 of each). */
  perf: () => {
    const f = (xs) => ({ count: xs.length, p50: quantile(xs, 0.5), p95: quantile(xs, 0.95), max: xs.length ? Math.max(...xs) : null });
    return { render: f(perf.render), draw: f(perf.draw) };
  },
});

main();
