// The dashboard page: connects to the SignalR hub through the Functions API, keeps one card per
// device and draws every metric over time. Everything from the network is shown with textContent.
import { DeviceStore, METRICS, extractDevices, isStale } from './model.js';
import { drawChart } from './chart.js';

const params = new URLSearchParams(location.search);

/** A positive number of seconds from the query string, else the default. */
function secondsParam(name, def) {
  const raw = params.get(name);
  const n = raw === null ? NaN : Number(raw);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 7 * 86400) : def;
}

const STALE_MS = secondsParam('stale', 60) * 1000;
const WINDOW_MS = secondsParam('window', 600) * 1000;
const PALETTE_SIZE = 10;
const RECONNECT_DELAYS_MS = [0, 1000, 2000, 4000, 8000, 10000];
const RECONNECT_GIVE_UP_MS = 60000;
// Pushes are best effort (the handler drops them while SignalR is unreachable, and for a few
// seconds after), so the state is read again a little after each (re)connection, and now and then.
const FOLLOW_UP_READ_MS = 10000;
const REFRESH_MS = secondsParam('refresh', 300) * 1000;

const store = new DeviceStore({ historyMs: WINDOW_MS });
const hiddenSeries = new Set();
const cards = new Map(); // deviceId -> { li, stale, fields }
const charts = new Map(); // metric key -> { svg, desc }
const $ = (id) => document.getElementById(id);

const valueFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2, useGrouping: false });
const countFmt = new Intl.NumberFormat(undefined);
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

let apiBase = '';
let ignoredItems = 0;
let lastStateLoad = 0;

// ---------------------------------------------------------------- formatting helpers

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.round(m / 60)} h`;
}

function ago(ms, now) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return relFmt.format(-s, 'second');
  const m = Math.floor(s / 60);
  if (m < 60) return relFmt.format(-m, 'minute');
  const h = Math.floor(m / 60);
  return h < 48 ? relFmt.format(-h, 'hour') : relFmt.format(-Math.floor(h / 24), 'day');
}

function make(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function colourClass(deviceId) {
  return `s${store.order(deviceId) % PALETTE_SIZE}`;
}

function dashed(deviceId) {
  return store.order(deviceId) >= PALETTE_SIZE;
}

// ---------------------------------------------------------------- device cards

let cardSeq = 0;

function createCard(dev) {
  const n = ++cardSeq;
  const li = make('li', 'card');
  li.dataset.deviceId = dev.deviceId;
  const article = make('article');
  article.setAttribute('aria-labelledby', `card-${n}-name`);
  const head = make('div', 'card-head');
  const swatch = make('span', `swatch ${colourClass(dev.deviceId)}`);
  swatch.setAttribute('aria-hidden', 'true');
  const name = make('h3', 'card-name', dev.deviceId);
  name.id = `card-${n}-name`;
  name.title = dev.deviceId;
  const badge = make('span', 'badge');
  head.append(swatch, name, badge);
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
  return { li, badge, geo, fields, stale: null };
}

function insertCard(card, deviceId) {
  const list = $('cards');
  for (const other of list.children) {
    if (other.dataset.deviceId > deviceId) {
      list.insertBefore(card.li, other);
      return;
    }
  }
  list.append(card.li);
}

function fillCard(card, dev, now) {
  for (const m of [...METRICS, { key: 'light' }]) {
    const f = card.fields[m.key];
    const v = dev[m.key];
    if (m.key === 'light') f.box.hidden = v === null;
    f.value.textContent = v === null ? '–' : valueFmt.format(v);
    f.unit.hidden = v === null;
    f.box.classList.toggle('missing', v === null);
  }
  card.fields.count.value.textContent = dev.count === null ? '–' : countFmt.format(dev.count);
  card.fields.rejected.value.textContent = dev.rejected === null ? '–' : countFmt.format(dev.rejected);
  card.fields.rejected.box.classList.toggle('has-rejected', (dev.rejected ?? 0) > 0);
  card.geo.textContent = dev.geo ?? '';
  card.geo.hidden = dev.geo === null;
  updateFreshness(card, dev, now);
}

function updateFreshness(card, dev, now) {
  const time = card.fields.lastSeen.value;
  if (dev.lastSeen === null) {
    time.textContent = 'never';
    time.removeAttribute('datetime');
    time.removeAttribute('title');
  } else {
    time.textContent = ago(Math.min(dev.lastSeen, now), now);
    const iso = new Date(dev.lastSeen).toISOString();
    if (time.getAttribute('datetime') !== iso) {
      time.setAttribute('datetime', iso);
      time.title = dateFmt.format(dev.lastSeen);
    }
  }
  const stale = isStale(dev, now, STALE_MS);
  if (stale !== card.stale) {
    card.stale = stale;
    card.li.classList.toggle('stale', stale);
    card.li.dataset.stale = String(stale);
    card.badge.textContent = stale ? 'Stale' : 'Live';
    card.badge.className = `badge ${stale ? 'badge-stale' : 'badge-live'}`;
    card.badge.title = stale ? `No reading for more than ${duration(STALE_MS)}` : 'Reporting';
  }
}

function renderDevice(deviceId, now) {
  const dev = store.get(deviceId);
  if (!dev) return;
  let card = cards.get(deviceId);
  if (!card) {
    card = createCard(dev);
    cards.set(deviceId, card);
    insertCard(card, deviceId);
    addLegendItem(deviceId);
    $('empty').hidden = true;
  }
  fillCard(card, dev, now);
}

function renderSummary(now) {
  const devs = store.devices();
  if (devs.length === 0) {
    $('summary').textContent = 'No devices yet';
    return;
  }
  const stale = devs.filter((d) => isStale(d, now, STALE_MS)).length;
  const plural = devs.length === 1 ? 'device' : 'devices';
  $('summary').textContent = `${devs.length} ${plural} · ${devs.length - stale} live · ${stale} stale`;
}

// ---------------------------------------------------------------- charts

function addLegendItem(deviceId) {
  const legend = $('legend');
  const b = make('button', 'legend-item');
  b.type = 'button';
  b.dataset.deviceId = deviceId;
  b.setAttribute('aria-pressed', 'true');
  const sw = make('span', `swatch ${colourClass(deviceId)}${dashed(deviceId) ? ' dashed' : ''}`);
  sw.setAttribute('aria-hidden', 'true');
  b.append(sw, make('span', null, deviceId));
  b.title = `Show or hide ${deviceId} in the charts`;
  b.addEventListener('click', () => {
    const shown = b.getAttribute('aria-pressed') === 'true';
    b.setAttribute('aria-pressed', String(!shown));
    if (shown) hiddenSeries.add(deviceId);
    else hiddenSeries.delete(deviceId);
    drawCharts();
  });
  const items = [...legend.children];
  const after = items.find((e) => e.dataset.deviceId > deviceId);
  legend.insertBefore(b, after ?? null);
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
    charts.set(m.key, { svg, desc, m, lastDesc: '' });
  }
  new ResizeObserver(() => drawCharts()).observe(box);
}

let lastDraw = 0;
let drawTimer = null;

function drawCharts() {
  clearTimeout(drawTimer);
  drawTimer = null;
  const now = Date.now();
  lastDraw = now;
  store.prune(now);
  const devs = store.devices();
  // The axis starts at the oldest point kept (at least half a minute back), so that a page that
  // has just opened does not squeeze its first readings into the right edge of the window.
  let oldest = now;
  for (const d of devs) for (const m of METRICS) oldest = Math.min(oldest, store.history(d.deviceId, m.key)[0]?.[0] ?? now);
  const from = Math.max(now - WINDOW_MS, Math.min(oldest, now - 30000));
  for (const { svg, desc, m } of charts.values()) {
    const series = devs.filter((d) => !hiddenSeries.has(d.deviceId)).map((d) => ({
      cls: colourClass(d.deviceId),
      dashed: dashed(d.deviceId),
      points: store.history(d.deviceId, m.key),
    }));
    drawChart(svg, { from, to: now, series });
    const latest = devs.filter((d) => d[m.key] !== null).slice(0, 20)
      .map((d) => `${d.deviceId} ${valueFmt.format(d[m.key])} ${m.unit}`);
    const text = latest.length ? `Latest ${m.label.toLowerCase()}: ${latest.join(', ')}.` : 'No readings yet.';
    const entry = charts.get(m.key);
    if (entry.lastDesc !== text) {
      desc.textContent = text;
      entry.lastDesc = text;
    }
  }
}

/** Redraws soon, at most four times a second however fast readings arrive. */
function scheduleCharts() {
  if (drawTimer !== null) return;
  drawTimer = setTimeout(drawCharts, Math.max(0, 250 - (Date.now() - lastDraw)));
}

// ---------------------------------------------------------------- incoming data

const dirty = new Set();
let renderQueued = false;

function render() {
  renderQueued = false;
  const now = Date.now();
  for (const id of dirty) renderDevice(id, now);
  dirty.clear();
  renderSummary(now);
  scheduleCharts();
}

/** Takes any newMessage argument or getdevicestate answer; never throws. */
function applyPayload(payload, source) {
  try {
    const now = Date.now();
    const { devices, ignored } = extractDevices(payload);
    ignoredItems += ignored;
    for (const d of devices) {
      const r = store.apply(d, now);
      if (r === 'new' || r === 'updated') dirty.add(d.deviceId);
    }
    if (devices.length === 0 && source === 'push') showNotice(payload);
    if (dirty.size && !renderQueued) {
      renderQueued = true;
      requestAnimationFrame(render);
      setTimeout(() => renderQueued && render(), 500); // rAF does not run in hidden tabs
    }
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

/** Negotiates and connects, retrying forever with a capped backoff; then loads every device. */
async function connect() {
  const gen = ++conn.gen;
  for (let attempt = 0; gen === conn.gen; attempt++) {
    setState('connecting');
    let hub = null;
    try {
      if (typeof signalR === 'undefined') throw new Error('the SignalR client did not load');
      const info = await negotiate();
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

/** Reads every device now, again a little later, then every REFRESH_MS while connected. */
function readAfterConnect(hub) {
  clearTimeout(refreshTimer);
  loadState(hub, true);
  let delay = FOLLOW_UP_READ_MS;
  const again = () => {
    if (conn.hub !== hub) return;
    loadState(hub, false);
    delay = REFRESH_MS;
    refreshTimer = setTimeout(again, delay);
  };
  refreshTimer = setTimeout(again, delay);
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

/** An http(s) base URL without trailing slashes, '' for same origin, or null when not usable. */
function apiBaseFrom(text) {
  const t = text.trim();
  if (t === '') return '';
  try {
    const u = new URL(t, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href.replace(/\/+$/, '') : null;
  } catch {
    return null;
  }
}

/** config.json's apiBaseUrl (written by the deployment), unless ?api= names another. */
async function loadConfig() {
  let base = '';
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (res.ok) {
      const cfg = await res.json();
      if (cfg && typeof cfg.apiBaseUrl === 'string') base = apiBaseFrom(cfg.apiBaseUrl) ?? '';
    }
  } catch {
    /* no config: same origin */
  }
  const override = params.get('api');
  if (override !== null) {
    const b = apiBaseFrom(override);
    if (b === null) console.warn('enviromon: ignoring ?api=, not an http(s) URL');
    else base = b;
  }
  return base;
}

// ---------------------------------------------------------------- start

function tick() {
  const now = Date.now();
  for (const [id, card] of cards) {
    const dev = store.get(id);
    if (dev) updateFreshness(card, dev, now);
  }
  renderSummary(now);
  drawCharts();
}

async function main() {
  $('window-text').textContent = `Last ${duration(WINDOW_MS)}, kept in this page`;
  createCharts();
  apiBase = await loadConfig();
  $('settings-text').textContent =
    `Devices are marked stale after ${duration(STALE_MS)} without a reading. ` +
    `API: ${apiBase || 'same origin as this page'}.`;
  $('retry').addEventListener('click', () => conn.wake?.());
  window.addEventListener('online', () => conn.wake?.());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && conn.hub && Date.now() - lastStateLoad > 30000) loadState(conn.hub, false);
  });
  setInterval(tick, 1000);
  tick();
  connect();
}

// Read-only view for tests and for poking around in the console.
window.enviromon = Object.freeze({
  state: () => conn.state,
  connectionId: () => conn.hub?.connectionId ?? null,
  devices: () => structuredClone(store.devices()),
  history: (id, metric) => structuredClone(store.history(id, metric)),
  ignored: () => ignoredItems,
});

main();
