// The dashboard's data model: checks what arrives over the wire and keeps each device's latest
// state and a bounded history per metric. No DOM here, so Node tests can import it directly.

/** The metrics drawn over time, with the range the handler accepts (DESIGN.md, validation). */
export const METRICS = [
  { key: 'temperature', label: 'Temperature', unit: '°C', min: -40, max: 80 },
  { key: 'humidity', label: 'Humidity', unit: '%', min: 0, max: 100 },
  { key: 'pressure', label: 'Pressure', unit: 'hPa', min: 600, max: 1600 },
];

const MAX_ID_LENGTH = 128;
const MAX_GEO_LENGTH = 64;
const MAX_ITEMS_PER_MESSAGE = 5000;

function finiteIn(v, min, max) {
  return typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? v : null;
}

function counter(v) {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

function shortText(v, max) {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t.length === 0 ? null : t.slice(0, max);
}

function pick(obj, ...names) {
  for (const n of names) if (Object.hasOwn(obj, n)) return obj[n];
  return undefined;
}

/**
 * One device object as the handler sends it (camelCase; PascalCase tolerated). Returns null when
 * it is not a device: no usable deviceId, or a field that is present (not null) but of the wrong
 * type, not finite or outside the physical range, since such an object cannot come from the
 * handler and must not overwrite what is shown. Absent or null fields become null.
 */
export function parseDevice(x) {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return null;
  const id = pick(x, 'deviceId', 'DeviceId');
  if (typeof id !== 'string' || id.trim() === '' || id.length > MAX_ID_LENGTH) return null;
  const dev = { deviceId: id.trim() };
  let bad = false;
  const field = (raw, check) => {
    if (raw === undefined || raw === null) return null;
    const v = check(raw);
    if (v === null) bad = true;
    return v;
  };
  for (const m of METRICS) {
    const cap = m.key[0].toUpperCase() + m.key.slice(1);
    dev[m.key] = field(pick(x, m.key, cap), (v) => finiteIn(v, m.min, m.max));
  }
  dev.light = field(pick(x, 'light', 'Light'), (v) => finiteIn(v, 0, 1e7));
  const geo = field(pick(x, 'geo', 'Geo'), (v) => (typeof v === 'string' ? v : null));
  dev.geo = geo === null ? null : shortText(geo, MAX_GEO_LENGTH);
  dev.count = field(pick(x, 'count', 'Count'), counter);
  dev.rejected = field(pick(x, 'rejected', 'Rejected'), counter);
  dev.lastSeen = field(pick(x, 'lastSeen', 'LastSeen'), (v) => {
    const ms = typeof v === 'string' && v.length <= 64 ? Date.parse(v) : NaN;
    return Number.isFinite(ms) ? ms : null;
  });
  return bad ? null : dev;
}

/**
 * Everything a `newMessage` argument can be: one device object, an array of them, or anything
 * else (sendsignalrmessage broadcasts whatever was posted). Returns the devices found and how
 * many items were not devices.
 */
export function extractDevices(payload) {
  const items = Array.isArray(payload) ? payload.slice(0, MAX_ITEMS_PER_MESSAGE) : [payload];
  const devices = [];
  let ignored = Array.isArray(payload) ? payload.length - items.length : 0;
  for (const item of items) {
    const d = parseDevice(item);
    if (d) devices.push(d);
    else ignored++;
  }
  return { devices, ignored };
}

/** True when the device has not been heard from for longer than thresholdMs (or never). */
export function isStale(dev, now, thresholdMs) {
  return dev.lastSeen === null || now - dev.lastSeen > thresholdMs;
}

/** Latest state and bounded history of every device seen. */
export class DeviceStore {
  constructor({ historyMs = 10 * 60 * 1000, maxPoints = 2000, maxDevices = 500 } = {}) {
    this.historyMs = historyMs;
    this.maxPoints = maxPoints;
    this.maxDevices = maxDevices;
    this.map = new Map(); // deviceId -> { dev, order, history: { metric: [[t, v], ...] } }
    this.nextOrder = 0;
    this.pending = new Map(); // deviceId -> history read from storage before the device is known
  }

  /**
   * Takes points read from storage (gethistory's `points`: raw readings, or per-minute or
   * per-hour summaries whose metrics are { min, mean, max }; a summary is drawn at the middle of
   * its interval). Points of devices not yet seen wait until the device arrives. Anything
   * malformed is skipped. Returns how many points were taken.
   */
  preload(points, resolution = 'raw') {
    if (!Array.isArray(points)) return 0;
    const half = resolution === 'minute' ? 30000 : resolution === 'hour' ? 1800000 : 0;
    const fields = { temperature: 'celsius', humidity: 'humidity', pressure: 'hPa' };
    const now = Date.now();
    let taken = 0;
    for (const p of points) {
      if (p === null || typeof p !== 'object') continue;
      const t = typeof p.time === 'string' ? Date.parse(p.time) : NaN;
      if (!Number.isFinite(t)) continue;
      const hist = this.#historyFor(p.deviceId);
      if (!hist) continue;
      const at = Math.min(t + half, now); // the current minute's mean: not in the future
      for (const m of METRICS) {
        const raw = p[fields[m.key]];
        taken += this.#put(hist[m.key], at, finiteIn(raw !== null && typeof raw === 'object' ? raw.mean : raw, m.min, m.max));
      }
    }
    return taken;
  }

  /**
   * Takes one device's last hour as getdevicestate?history=1h gives it: { from, minute: [offset],
   * temperature: [mean|null], humidity, pressure, light }, each mean drawn at the middle of its
   * minute (the current minute's not in the future). Anything malformed is skipped. Returns how
   * many points were taken. (The page's first look: 50 devices make 3,000 minutes, so no
   * per-point objects or date strings.)
   */
  preloadMinutes(deviceId, lastHour) {
    if (typeof deviceId !== 'string' || lastHour === null || typeof lastHour !== 'object') return 0;
    const from = typeof lastHour.from === 'string' ? Date.parse(lastHour.from) : NaN;
    const minutes = lastHour.minute;
    if (!Number.isFinite(from) || !Array.isArray(minutes) || minutes.length > 1440) return 0;
    const now = Date.now();
    let hist = null;
    let taken = 0;
    for (let i = 0; i < minutes.length; i++) {
      const off = minutes[i];
      if (!Number.isInteger(off) || off < 0 || off >= 1440) continue;
      hist ??= this.#historyFor(deviceId);
      if (!hist) return 0;
      const at = Math.min(from + off * 60000 + 30000, now);
      for (const m of METRICS) {
        const arr = lastHour[m.key];
        if (Array.isArray(arr) && typeof arr[i] === 'number') taken += this.#put(hist[m.key], at, finiteIn(arr[i], m.min, m.max));
      }
    }
    return taken;
  }

  /** The history of id (known, or waiting for the device), or null for a bad id or too many. */
  #historyFor(deviceId) {
    const id = typeof deviceId === 'string' ? deviceId.trim() : '';
    if (!id || id.length > MAX_ID_LENGTH) return null;
    const entry = this.map.get(id);
    if (entry) return entry.history;
    let hist = this.pending.get(id);
    if (!hist) {
      if (this.pending.size >= this.maxDevices) return null;
      hist = {};
      for (const m of METRICS) hist[m.key] = [];
      this.pending.set(id, hist);
    }
    return hist;
  }

  /** Puts [at, v] into h in time order (not twice at one time); returns 1 if taken, else 0. */
  #put(h, at, v) {
    if (v === null) return 0;
    let i = h.length;
    while (i > 0 && h[i - 1][0] > at) i--;
    if (i > 0 && h[i - 1][0] === at) return 0;
    if (i === h.length) h.push([at, v]);
    else h.splice(i, 0, [at, v]);
    if (h.length > this.maxPoints) h.splice(0, h.length - this.maxPoints);
    return 1;
  }

  get size() {
    return this.map.size;
  }

  /**
   * Applies one parsed device. Returns 'new', 'updated', 'unchanged' or 'ignored' (an older
   * state than the one shown, e.g. a push that arrives after a fresher getdevicestate answer,
   * or one device too many).
   */
  apply(dev, receivedAt = Date.now()) {
    let entry = this.map.get(dev.deviceId);
    if (!entry) {
      if (this.map.size >= this.maxDevices) return 'ignored';
      entry = { dev, order: this.nextOrder++, history: this.pending.get(dev.deviceId) ?? {} };
      this.pending.delete(dev.deviceId);
      for (const m of METRICS) entry.history[m.key] ??= [];
      this.map.set(dev.deviceId, entry);
      this.#record(entry, dev, receivedAt);
      return 'new';
    }
    const cur = entry.dev;
    if (dev.count === null && cur.count !== null) return 'ignored'; // cannot be placed in time
    if (dev.count !== null && cur.count !== null && dev.count < cur.count) return 'ignored';
    const sameCount = dev.count !== null && dev.count === cur.count;
    if (sameCount && dev.lastSeen !== null && cur.lastSeen !== null && dev.lastSeen < cur.lastSeen) return 'ignored';
    const rejected = Math.max(dev.rejected ?? -1, cur.rejected ?? -1);
    const next = { ...dev, rejected: rejected < 0 ? null : rejected };
    const changed = METRICS.some((m) => next[m.key] !== cur[m.key]) ||
      ['light', 'geo', 'count', 'rejected', 'lastSeen'].some((k) => next[k] !== cur[k]);
    if (!changed) return 'unchanged';
    entry.dev = next;
    const newReading = dev.count === null ? dev.lastSeen !== cur.lastSeen : !sameCount;
    if (newReading) this.#record(entry, next, receivedAt);
    return 'updated';
  }

  #record(entry, dev, receivedAt) {
    const t = dev.lastSeen ?? receivedAt;
    for (const m of METRICS) {
      const v = dev[m.key];
      if (v === null) continue;
      const h = entry.history[m.key];
      let i = h.length;
      while (i > 0 && h[i - 1][0] > t) i--;
      h.splice(i, 0, [t, v]);
      if (h.length > this.maxPoints) h.splice(0, h.length - this.maxPoints);
    }
  }

  /** Drops history older than the window ending at now. */
  prune(now = Date.now()) {
    const from = now - this.historyMs;
    for (const entry of this.map.values()) {
      for (const m of METRICS) {
        const h = entry.history[m.key];
        let n = 0;
        while (n < h.length && h[n][0] < from) n++;
        if (n) h.splice(0, n);
      }
    }
  }

  /** Devices sorted by id (stable, locale-independent). */
  devices() {
    return [...this.map.values()].map((e) => e.dev)
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  }

  /** Devices in no particular order (cheaper than devices() when the order does not matter). */
  all() {
    return Array.from(this.map.values(), (e) => e.dev);
  }

  ids() {
    return this.map.keys();
  }

  get(deviceId) {
    return this.map.get(deviceId)?.dev ?? null;
  }

  /** Order of first appearance, used to give each device a stable colour. */
  order(deviceId) {
    return this.map.get(deviceId)?.order ?? 0;
  }

  /** A device's points; for one not seen yet, what storage gave for it (so a picked device is
   * drawn as soon as the stored hour arrives, before the device list). */
  history(deviceId, metric) {
    return this.map.get(deviceId)?.history[metric] ?? this.pending.get(deviceId)?.[metric] ?? [];
  }
}
