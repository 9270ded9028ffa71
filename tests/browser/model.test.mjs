// The dashboard's data model in Node (no browser): what it accepts from the wire, what it keeps,
// and the history window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceStore, extractDevices, isStale, parseDevice } from '../../dashboard/site/model.js';
import { niceStep, segments } from '../../dashboard/site/chart.js';

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
