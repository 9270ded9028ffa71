// The dashboard's data model in Node (no browser): what it accepts from the wire, what it keeps,
// the history window, and the fleet view's rules (summary, filter, sort, what is charted).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceStore, extractDevices, isStale, parseDevice } from '../../dashboard/site/model.js';
import { niceStep, segments } from '../../dashboard/site/chart.js';
import {
  PALETTE_SIZE, chartSelection, comparator, makeFilter, matches, parsePicks, parseSort, summarize,
} from '../../dashboard/site/fleet.js';

const T0 = Date.parse('2026-11-27T08:00:00Z');
const iso = (ms) => new Date(ms).toISOString();

test('a device object is read field by field; absent or null fields become null', () => {
  const d = parseDevice({
    deviceId: ' pi-1 ', temperature: 21.5, humidity: null, light: 120, geo: ' Sydney ',
    count: 3, rejected: 1, lastSeen: iso(T0), extra: { nested: true },
  });
  assert.deepEqual(d, {
    deviceId: 'pi-1', temperature: 21.5, humidity: null, pressure: null, light: 120, geo: 'Sydney',
    count: 3, rejected: 1, lastSeen: T0,
  });
  assert.equal(parseDevice({ DeviceId: 'x', Temperature: 20 }).temperature, 20);
});

test('things that are not devices, or devices with a bad field, are refused as a whole', () => {
  for (const x of [null, 1, 'text', [], {}, { deviceId: '' }, { deviceId: 7 }, { deviceId: 'x'.repeat(129) },
    { deviceId: 'x', temperature: NaN }, { deviceId: 'x', temperature: 500 }, { deviceId: 'x', temperature: 'NaN' },
    { deviceId: 'x', humidity: '70' }, { deviceId: 'x', pressure: 1e9 }, { deviceId: 'x', count: -4 },
    { deviceId: 'x', count: 1.5 }, { deviceId: 'x', rejected: '2' }, { deviceId: 'x', lastSeen: 'yesterday' },
    { deviceId: 'x', geo: 5 }]) {
    assert.equal(parseDevice(x), null, JSON.stringify(x));
  }
});

test('a message may be one device, an array, or anything else', () => {
  assert.equal(extractDevices({ deviceId: 'a' }).devices.length, 1);
  const r = extractDevices([{ deviceId: 'a' }, 'junk', null, { deviceId: 'b' }]);
  assert.deepEqual(r.devices.map((d) => d.deviceId), ['a', 'b']);
  assert.equal(r.ignored, 2);
  assert.deepEqual(extractDevices('hello'), { devices: [], ignored: 1 });
  assert.deepEqual(extractDevices({ text: 'maintenance at noon' }), { devices: [], ignored: 1 });
  assert.equal(extractDevices(new Array(6000).fill({ deviceId: 'a' })).ignored, 1000);
});

test('newer states replace older ones; an older push does not go back in time', () => {
  const s = new DeviceStore();
  const dev = (count, t, temp, rejected = 0) =>
    parseDevice({ deviceId: 'd', temperature: temp, count, rejected, lastSeen: iso(t) });
  assert.equal(s.apply(dev(5, T0, 20)), 'new');
  assert.equal(s.apply(dev(6, T0 + 2000, 21)), 'updated');
  assert.equal(s.apply(dev(5, T0, 20)), 'ignored');
  assert.equal(s.apply(dev(6, T0 + 2000, 21)), 'unchanged');
  assert.equal(s.apply(dev(6, T0 + 2000, 21, 2)), 'updated', 'a rejected reading changes only the rejected count');
  assert.equal(s.apply(parseDevice({ deviceId: 'd', temperature: 30 })), 'ignored', 'no count: cannot be placed in time');
  assert.equal(s.get('d').temperature, 21);
  assert.equal(s.get('d').rejected, 2);
  assert.deepEqual(s.history('d', 'temperature'), [[T0, 20], [T0 + 2000, 21]]);
});

test('history is kept in time order, pruned to the window and capped', () => {
  const s = new DeviceStore({ historyMs: 10000, maxPoints: 5 });
  for (let i = 0; i < 8; i++) s.apply(parseDevice({ deviceId: 'd', humidity: 60 + i, count: i + 1, lastSeen: iso(T0 + i * 1000) }));
  assert.deepEqual(s.history('d', 'humidity').map(([, v]) => v), [63, 64, 65, 66, 67]);
  s.prune(T0 + 15500);
  assert.deepEqual(s.history('d', 'humidity').map(([, v]) => v), [66, 67]);
  assert.deepEqual(s.history('d', 'temperature'), []);
  assert.deepEqual(s.history('nobody', 'humidity'), []);
});

test('devices are listed by id, coloured by first appearance, and capped in number', () => {
  const s = new DeviceStore({ maxDevices: 3 });
  for (const id of ['c', 'a', 'b', 'd']) s.apply(parseDevice({ deviceId: id, count: 1 }));
  assert.deepEqual(s.devices().map((d) => d.deviceId), ['a', 'b', 'c']);
  assert.equal(s.order('c'), 0);
  assert.equal(s.order('b'), 2);
  assert.equal(s.size, 3);
});

test('stale after the threshold, or when never seen', () => {
  const d = parseDevice({ deviceId: 'd', lastSeen: iso(T0) });
  assert.equal(isStale(d, T0 + 59000, 60000), false);
  assert.equal(isStale(d, T0 + 61000, 60000), true);
  assert.equal(isStale(parseDevice({ deviceId: 'd' }), T0, 60000), true);
});

test('axis steps are 1, 2 or 5 times a power of ten', () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(3, 4), 1);
  assert.equal(niceStep(0.7, 4), 0.2);
  assert.equal(niceStep(400, 4), 100);
  assert.equal(niceStep(26, 4), 10);
});

test('a long silence splits a line into segments', () => {
  const pts = (times) => times.map((t) => [t * 1000, 1]);
  assert.deepEqual(segments(pts([0, 2, 4, 6])).length, 1);
  const s = segments(pts([0, 2, 4, 6, 40, 42, 44]));
  assert.deepEqual(s.map((x) => x.length), [4, 3]);
  assert.deepEqual(segments(pts([0, 30])).length, 1, 'too few points to know the usual interval');
});

// ---- fleet.js: the fleet view's rules

const fleetDevs = (now) => [
  parseDevice({ deviceId: 'b', temperature: 25, count: 10, rejected: 0, lastSeen: iso(now - 1000) }),
  parseDevice({ deviceId: 'a', temperature: 21, count: 5, rejected: 2, lastSeen: iso(now - 2000) }),
  parseDevice({ deviceId: 'c', temperature: null, count: 7, rejected: 5, lastSeen: iso(now - 120000) }),
  parseDevice({ deviceId: 'd', temperature: 30, count: 1, rejected: null, lastSeen: iso(now - 90000) }),
  parseDevice({ deviceId: 'e', count: null }),
];

test('the summary counts devices, live, stale, with rejects, messages and rejected readings', () => {
  assert.deepEqual(summarize(fleetDevs(T0), T0, 60000), { devices: 5, live: 2, stale: 3, rejects: 2, messages: 23, rejected: 7 });
  assert.deepEqual(summarize([], T0, 60000), { devices: 0, live: 0, stale: 0, rejects: 0, messages: 0, rejected: 0 });
});

test('a filter matches part of the id in any case, and a state', () => {
  const devs = fleetDevs(T0);
  const ids = (f) => devs.filter((d) => matches(d, f, T0, 60000)).map((d) => d.deviceId);
  assert.deepEqual(ids(makeFilter(' A ', 'all')), ['a']);
  assert.deepEqual(ids(makeFilter('', 'live')), ['b', 'a']);
  assert.deepEqual(ids(makeFilter('', 'stale')), ['c', 'd', 'e']);
  assert.deepEqual(ids(makeFilter('', 'rejects')), ['a', 'c']);
  assert.deepEqual(makeFilter(42, 'nonsense'), { text: '', state: 'all' });
  assert.equal(makeFilter('x'.repeat(500), 'all').text.length, 128);
});

test('sorting: missing values last both ways, ties by id, unknown keys fall back to the id', () => {
  const devs = fleetDevs(T0);
  const order = (text) => [...devs].sort(comparator(parseSort(text), T0, 60000)).map((d) => d.deviceId);
  assert.deepEqual(order('temperature-asc'), ['a', 'b', 'd', 'c', 'e']);
  assert.deepEqual(order('temperature-desc'), ['d', 'b', 'a', 'c', 'e']);
  assert.deepEqual(order('rejected-desc'), ['c', 'a', 'b', 'd', 'e']);
  assert.deepEqual(order('state-asc'), ['c', 'd', 'e', 'a', 'b'], 'stale with rejects, stale, live with rejects, live');
  assert.deepEqual(order('deviceId-desc'), ['e', 'd', 'c', 'b', 'a']);
  assert.deepEqual(parseSort('constructor-asc'), { key: 'deviceId', dir: 'asc' });
  assert.deepEqual(parseSort(null), { key: 'deviceId', dir: 'asc' });
});

test('the charts show the picked devices, a small fleet whole, else the few needing attention', () => {
  const devs = fleetDevs(T0);
  assert.deepEqual(chartSelection(devs, ['d', 'zz'], T0, 60000), { reason: 'picked', ids: ['d', 'zz'], needing: 0 });
  assert.deepEqual(chartSelection(devs, [], T0, 60000).reason, 'all');
  const many = [];
  for (let i = 0; i < 40; i++) {
    many.push(parseDevice({ deviceId: `n${String(i).padStart(2, '0')}`, count: 1, rejected: i % 10 === 0 ? i : 0,
      lastSeen: iso(T0 - (i % 7 === 1 ? 100000 + i * 1000 : 0)) }));
  }
  const sel = chartSelection(many, [], T0, 60000);
  assert.equal(sel.reason, 'attention');
  assert.deepEqual(sel.ids, ['n30', 'n20', 'n10', 'n01', 'n08', 'n15', 'n22', 'n29', 'n36'], 'rejects (most first), then stale (latest first)');
  assert.equal(sel.needing, 9);
  const flood = many.map((d) => ({ ...d, rejected: 1 }));
  assert.equal(chartSelection(flood, [], T0, 60000).ids.length, PALETTE_SIZE);
  const calm = many.map((d) => ({ ...d, rejected: 0, lastSeen: T0 }));
  assert.deepEqual(chartSelection(calm, [], T0, 60000), { reason: 'none', ids: [], needing: 0 });
});

test('picks from the URL: trimmed, unique, non-empty, at most the palette', () => {
  assert.deepEqual(parsePicks([' a ', 'a', '', 'b', 'x'.repeat(129)]), ['a', 'b']);
  assert.equal(parsePicks(Array.from({ length: 30 }, (_, i) => `d${i}`)).length, PALETTE_SIZE);
});

test("a device's last hour from getdevicestate?history=1h: means at the middle of their minutes, malformed parts skipped", () => {
  const s = new DeviceStore({ historyMs: 3600000 });
  // the live point a second back: the current minute's mean, drawn at the latest at the time of
  // the preload, never lands on the same millisecond (where it would be dropped as a duplicate)
  const now = Date.now() - 1000;
  const from = Math.floor(now / 60000) * 60000 - 59 * 60000;
  s.apply(parseDevice({ deviceId: 'a', temperature: 25, count: 3, lastSeen: new Date(now).toISOString() }), now);
  const taken = s.preloadMinutes('a', {
    from: new Date(from).toISOString(),
    minute: [0, 1, 2, 'x', -1, 2000, 59],
    temperature: [20, null, 'hot', 1, 1, 1, 22],
    humidity: [50, 500, 51],
    pressure: 'not an array',
  });
  assert.deepEqual(s.history('a', 'temperature')[0], [from + 30000, 20]);
  assert.deepEqual(s.history('a', 'humidity'), [[from + 30000, 50], [from + 2 * 60000 + 30000, 51]]); // 500 is out of range
  assert.ok(s.history('a', 'temperature').some(([t, v]) => v === 22 && t <= Date.now()), 'the current minute is not in the future');
  assert.equal(taken, 4); // temperature 20 and 22, humidity 50 and 51
  for (const bad of [null, 'x', {}, { from: 'yesterday', minute: [0] }, { from: new Date(from).toISOString() }]) {
    assert.equal(s.preloadMinutes('a', bad), 0);
  }
  assert.equal(s.preloadMinutes(42, { from: new Date(from).toISOString(), minute: [0], temperature: [1] }), 0);
  // a device not seen yet: kept until it arrives
  assert.equal(s.preloadMinutes('b', { from: new Date(from).toISOString(), minute: [3], pressure: [1000] }), 1);
  assert.deepEqual(s.history('b', 'pressure'), [[from + 3 * 60000 + 30000, 1000]]);
});
