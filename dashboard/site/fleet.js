// The fleet view's rules, without the DOM (Node tests import it): the summary, filtering,
// sorting, and which devices the charts show. A device here is what model.js's parseDevice makes.
import { isStale } from './model.js';

/** Colours in the palette (style.css .s0 .. .s9); also the most devices charted at once. */
export const PALETTE_SIZE = 10;

/**
 * Up to this many devices the page shows cards, above it the table. A card is about 19rem by
 * 10rem: at 1280 px, 12 cards are three or four rows, about one screen; beyond that a person
 * scrolls past cards to find one device, while a table row is one line and can be sorted.
 */
export const CARD_LIMIT = 12;

export const STATES = ['all', 'live', 'stale', 'rejects'];

/** Columns that can be sorted, in the table's order. */
export const SORT_KEYS = ['deviceId', 'state', 'temperature', 'humidity', 'pressure', 'light', 'count', 'rejected', 'lastSeen'];

export const hasRejects = (dev) => (dev.rejected ?? 0) > 0;

/** Counts of the summary: devices, live, stale, with rejects, messages and rejected readings. */
export function summarize(devs, now, staleMs) {
  const s = { devices: 0, live: 0, stale: 0, rejects: 0, messages: 0, rejected: 0 };
  for (const d of devs) {
    s.devices++;
    if (isStale(d, now, staleMs)) s.stale++;
    else s.live++;
    if (hasRejects(d)) s.rejects++;
    s.messages += d.count ?? 0;
    s.rejected += d.rejected ?? 0;
  }
  return s;
}

/** A filter from what a person typed and chose; bad values become the defaults. */
export function makeFilter(text, state) {
  const t = typeof text === 'string' ? text.trim().toLowerCase().slice(0, 128) : '';
  return { text: t, state: STATES.includes(state) ? state : 'all' };
}

/** Whether dev passes the filter: the id contains the text (any case) and the state matches. */
export function matches(dev, filter, now, staleMs) {
  if (filter.text && !dev.deviceId.toLowerCase().includes(filter.text)) return false;
  switch (filter.state) {
    case 'live': return !isStale(dev, now, staleMs);
    case 'stale': return isStale(dev, now, staleMs);
    case 'rejects': return hasRejects(dev);
    default: return true;
  }
}

/** "temperature-desc" and the like; anything else is the default, by id ascending. */
export function parseSort(text) {
  const m = /^([A-Za-z]+)-(asc|desc)$/.exec(typeof text === 'string' ? text : '');
  return m && SORT_KEYS.includes(m[1]) ? { key: m[1], dir: m[2] } : { key: 'deviceId', dir: 'asc' };
}

const byId = (a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0);

/**
 * A comparator for sort {key, dir}. Missing values come last in both directions, ties are broken
 * by id, so the order is total and stable from one update to the next. 'state' puts stale first
 * when ascending (the ones to look at), then devices with rejects.
 */
export function comparator(sort, now, staleMs) {
  const sign = sort.dir === 'desc' ? -1 : 1;
  if (sort.key === 'deviceId') return (a, b) => sign * byId(a, b);
  const value = sort.key === 'state'
    ? (d) => (isStale(d, now, staleMs) ? 0 : 2) + (hasRejects(d) ? 0 : 1)
    : (d) => d[sort.key];
  return (a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === null || va === undefined) return vb === null || vb === undefined ? byId(a, b) : 1;
    if (vb === null || vb === undefined) return -1;
    return va !== vb ? sign * (va < vb ? -1 : 1) : byId(a, b);
  };
}

/**
 * The devices the charts show, and why: the picked ones (in pick order, present or not yet
 * seen); else, in a fleet that fits the palette, all of them; else the ones that need attention,
 * at most PALETTE_SIZE: those with rejected readings (most first), then the stale ones (most
 * recently heard first, so their last readings are still in the window). Never all of a fleet.
 * Returns { reason: 'picked'|'all'|'attention'|'none', ids, needing } (needing: how many need
 * attention in all).
 */
export function chartSelection(devs, picked, now, staleMs) {
  if (picked.length) return { reason: 'picked', ids: picked.slice(0, PALETTE_SIZE), needing: 0 };
  if (devs.length <= PALETTE_SIZE) return { reason: 'all', ids: devs.map((d) => d.deviceId).sort(), needing: 0 };
  const rej = [];
  const stale = [];
  for (const d of devs) {
    if (hasRejects(d)) rej.push(d);
    else if (isStale(d, now, staleMs)) stale.push(d);
  }
  rej.sort((a, b) => b.rejected - a.rejected || byId(a, b));
  stale.sort((a, b) => (b.lastSeen ?? -Infinity) - (a.lastSeen ?? -Infinity) || byId(a, b));
  const ids = [...rej, ...stale].slice(0, PALETTE_SIZE).map((d) => d.deviceId);
  return { reason: ids.length ? 'attention' : 'none', ids, needing: rej.length + stale.length };
}

/** Picked ids from the URL's repeated pick= values: trimmed, non-empty, unique, at most the palette. */
export function parsePicks(values) {
  const out = [];
  for (const v of values) {
    const id = typeof v === 'string' ? v.trim() : '';
    if (id && id.length <= 128 && !out.includes(id)) out.push(id);
    if (out.length === PALETTE_SIZE) break;
  }
  return out;
}
