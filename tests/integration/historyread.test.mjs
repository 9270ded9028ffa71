// Integration: the readers of history format v2 (handler/fn_history.c, handler/historyread.c,
// getdevicestate?history=1h) against rows the real pipeline wrote into real Azurite. Event Hubs
// cannot run here, so the test plays the host (each batch what the host would post; a replay the
// same batch posted again). A small HTTP proxy between the handler and Azurite fails the
// DeviceState writes on request: a stand-in for a network fault, so that a chunk row is written
// and the device commit that would record it is not (an orphan chunk).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../lib/harness.mjs';
import { startTableProxy } from '../lib/batchproxy.mjs';
import { pendingTexts } from '../lib/history.mjs';

const HISTORY = 'ReadingHistory';
const DEVICES = 'DeviceState';
let az, proxy, handler;

/** The proxy (tests/lib/batchproxy.mjs) with one switch: failDevice answers 503 to every write
 * of a DeviceState row (alone or in a $batch), counted in failed. */
async function startProxy() {
  const p = { failDevice: false, failed: 0 };
  const proxy = await startTableProxy(az, (req, body, res) => {
    const write = req.method !== 'GET' && req.method !== 'HEAD';
    if (!p.failDevice || !write) return false;
    if (!req.url.includes(DEVICES) && !(req.url.includes('$batch') && body.includes(`${DEVICES}(`))) return false;
    p.failed++;
    res.writeHead(503, { 'Content-Type': 'text/plain' });
    res.end('down');
    return true;
  });
  return Object.assign(p, proxy);
}

before(async () => {
  az = await h.startAzurite();
  proxy = await startProxy();
  handler = await h.startHandler({
    ...h.handlerEnv(az),
    StorageConnectionString: proxy.connectionString,
    BackoffBaseMs: '5', BackoffCapMs: '20', BackoffAttempts: '2',
  });
});
after(async () => {
  await handler?.stop();
  await proxy?.close();
  await az?.close();
});

const post = (evs, partition) => h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch(evs, { partition }));
const get = async (path) => {
  const r = await fetch(`${handler.url}/api/${path}`);
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV */ }
  return { status: r.status, text, json };
};
const at = (iso, s) => new Date(Date.parse(iso) + s * 1000).toISOString();

describe('raw readings', () => {
  test('an orphan chunk, a chunk over the same readings and the pending ones: every reading once, in time order', async () => {
    const D = 'ro-1';
    // partition A: five readings at 10:30:00..04 (pending in the device row)
    const a = Array.from({ length: 5 }, (_, i) => ({ deviceId: D, seq: 1 + i, enqueued: at('2026-11-29T10:30:00Z', i), body: { temperature: 1 + i } }));
    assert.equal((await post(a, 'A')).status, 200);
    // partition B lags ten minutes behind: 72 readings at 10:20:00..10:21:11. The first delivery
    // writes the chunk [A1..A5, B1..B59] and then fails to commit the device row: an orphan.
    const b = Array.from({ length: 72 }, (_, i) => ({ deviceId: D, seq: 101 + i, enqueued: at('2026-11-29T10:20:00Z', i), body: { temperature: 10 + (i % 60), humidity: 50 } }));
    proxy.failDevice = true;
    const failed = await post(b, 'B');
    proxy.failDevice = false;
    assert.equal(failed.status, 500, failed.text);
    assert.ok(proxy.failed > 0);
    // A sends one more, so the replay of B folds a different pending list: a second chunk that
    // starts at the same reading with other readings in it
    assert.equal((await post([{ deviceId: D, seq: 6, enqueued: at('2026-11-29T10:30:00Z', 6), body: { temperature: 6 } }], 'A')).status, 200);
    const replay = await post(b, 'B');
    assert.equal(replay.status, 200, replay.text);

    // what storage holds: readings in more than one place
    const chunks = (await h.tableAll(az, HISTORY)).filter((r) => r.DeviceId === D && r.Readings);
    const stored = chunks.reduce((n, r) => n + r.Readings.split('\n').length, 0);
    const [row] = (await h.tableAll(az, DEVICES)).filter((r) => r.RowKey === D);
    const pending = pendingTexts(row).length;
    assert.ok(chunks.length >= 2, `an orphan chunk beside the committed one: ${chunks.map((c) => c.RowKey).join(' | ')}`);
    assert.ok(stored + pending > 78, `some readings stored twice (${stored} in chunks, ${pending} pending)`);
    assert.equal(Number(row.Count), 78);

    const r = await get(`gethistory?device=${D}&from=2026-11-29T10:00:00Z&to=2026-11-29T10:59:59Z`);
    assert.equal(r.status, 200, r.text);
    const pts = r.json.points;
    assert.equal(pts.length, 78);
    assert.equal(new Set(pts.map((p) => `${p.partition}/${p.sequenceNumber}`)).size, 78);
    assert.deepEqual(pts.map((p) => p.time), pts.map((p) => p.time).sort(), 'time order');
    assert.deepEqual(pts.map((p) => p.celsius), [...b.map((e) => e.body.temperature), 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(pts[0], { deviceId: D, time: '2026-11-29T10:20:00.000Z', celsius: 10, humidity: 50, partition: 'B', sequenceNumber: 101 });
    // the same as CSV, and a range inside the hour cuts by time (a chunk starting before it too)
    const csv = await get(`gethistory?device=${D}&from=2026-11-29T10:20:30Z&to=2026-11-29T10:30:02Z&format=csv`);
    const lines = csv.text.trimEnd().split('\r\n');
    assert.equal(lines.length, 1 + 42 + 3, csv.text);
    assert.equal(lines[1], `${D},2026-11-29T10:20:30.000Z,40,50,,,B,131`);
    assert.equal(lines.at(-1), `${D},2026-11-29T10:30:02.000Z,3,,,,A,3`);
    // every device's raw hour: the same 78 for this one
    const all = await get('gethistory?from=2026-11-29T10:00:00Z&to=2026-11-29T10:59:59Z');
    assert.equal(all.json.points.filter((p) => p.deviceId === D).length, 78);
    // the per-minute summaries count each reading once too (from the slots: hour 10 is HistHour)
    const m = await get(`gethistory?device=${D}&from=2026-11-29T10:00:00Z&to=2026-11-29T10:59:59Z&resolution=hour`);
    assert.deepEqual(m.json.points.map((p) => p.count), [78]);
  });
});

describe('summaries', () => {
  test('hours before HistHour from frozen hour rows, the hour HistHour from the device row\'s slots, each reading once', async () => {
    const D = 'rs-1';
    // 40 readings a minute apart at 08:10..08:49, then 16 at 09:05..09:20: hour 08 is frozen when
    // the first reading of 09 is folded; slots 05..20 then hold 09's minutes, 21..49 still 08's
    const h8 = Array.from({ length: 40 }, (_, i) => ({ deviceId: D, seq: 1000 + i, enqueued: at('2026-11-29T08:10:00Z', 60 * i), body: { temperature: 10 + (i % 5), pressure: 1000 } }));
    const h9 = Array.from({ length: 16 }, (_, i) => ({ deviceId: D, seq: 2000 + i, enqueued: at('2026-11-29T09:05:00Z', 60 * i), body: { temperature: 30 + (i % 3) } }));
    assert.equal((await post(h8, 'C')).status, 200);
    assert.equal((await post(h9, 'C')).status, 200);
    const frozen = (await h.tableAll(az, HISTORY)).filter((r) => r.DeviceId === D && r.RowKey.startsWith('~~m '));
    assert.deepEqual(frozen.map((r) => [r.PartitionKey, Number(r.Count)]), [['h2026112908', 40]]);
    const [row] = (await h.tableAll(az, DEVICES)).filter((r) => r.RowKey === D);
    assert.equal(Number(row.HistHour), Date.parse('2026-11-29T09:00:00Z') / 3600000);
    assert.match(row.Min30, /^\d+;1\|/, 'an hour-08 minute still in its slot');

    const range = 'from=2026-11-29T08:00:00Z&to=2026-11-29T09:59:59Z';
    const hour = await get(`gethistory?device=${D}&${range}&resolution=hour`);
    assert.equal(hour.status, 200, hour.text);
    assert.deepEqual(hour.json.points.map((p) => [p.time, p.count]), [['2026-11-29T08:00:00.000Z', 40], ['2026-11-29T09:00:00.000Z', 16]]);
    assert.deepEqual(hour.json.points[1].celsius, { min: 30, mean: (30 * 6 + 31 * 5 + 32 * 5) / 16, max: 32 });
    const minute = await get(`gethistory?device=${D}&${range}&resolution=minute`);
    const pts = minute.json.points;
    assert.equal(pts.length, 56);
    assert.equal(pts.reduce((n, p) => n + p.count, 0), 56);
    assert.equal(pts[0].time, '2026-11-29T08:10:00.000Z');
    assert.equal(pts[40].time, '2026-11-29T09:05:00.000Z');
    assert.equal(pts[40].celsius.mean, 30);
    assert.equal(pts[40].hPa, undefined);
    // every device at once: the same points for this device (its slots from the device table)
    const all = await get(`gethistory?${range}&resolution=minute`);
    assert.deepEqual(all.json.points.filter((p) => p.deviceId === D), pts);
    // CSV of the summaries
    const csv = await get(`gethistory?device=${D}&${range}&resolution=hour&format=csv`);
    assert.equal(csv.text.trimEnd().split('\r\n')[2], `${D},2026-11-29T09:00:00.000Z,16,30,${(30 * 6 + 31 * 5 + 32 * 5) / 16},32,,,,,,,,,`);
  });
});

describe('getdevicestate?history=1h', () => {
  test("each device's per-minute means over the last hour, compactly; nothing for a device silent that long", async () => {
    const D = 'rl-1';
    const now = Date.now();
    const m30 = Math.floor(now / 60000) * 60000 - 30 * 60000; // the start of the minute 30 minutes ago
    const evs = [
      { deviceId: D, seq: 1, enqueued: new Date(m30 + 1000).toISOString(), body: { temperature: 20, humidity: 50 } },
      { deviceId: D, seq: 2, enqueued: new Date(m30 + 11000).toISOString(), body: { temperature: 22.123456789 } },
      { deviceId: D, seq: 3, enqueued: new Date(m30 + 25 * 60000).toISOString(), body: { temperature: 30, light: 400 } },
    ];
    assert.equal((await post(evs, 'D')).status, 200);
    const r = await get('getdevicestate?history=1h');
    assert.equal(r.status, 200, r.text);
    const dev = r.json.find((d) => d.deviceId === D);
    const lh = dev.lastHour;
    const from = Date.parse(lh.from);
    assert.equal(from % 60000, 0);
    assert.ok(from <= m30 && m30 < from + 3600000);
    const off = (m30 - from) / 60000;
    assert.deepEqual(lh.minute, [off, off + 25]);
    assert.deepEqual(lh.temperature, [21.06, 30]); // means, two decimals
    assert.deepEqual(lh.humidity, [50, null]);
    assert.deepEqual(lh.light, [null, 400]);
    assert.equal(lh.pressure, undefined);
    assert.deepEqual(Object.keys(dev).filter((k) => k !== 'lastHour'), Object.keys((await get('getdevicestate')).json.find((d) => d.deviceId === D)));
    // devices whose readings are days old: no lastHour
    for (const old of ['ro-1', 'rs-1']) assert.equal(r.json.find((d) => d.deviceId === old).lastHour, undefined, old);
    // without the parameter nothing changes; a bad value is a 400 naming it
    assert.ok((await get('getdevicestate')).json.every((d) => d.lastHour === undefined));
    const bad = await get('getdevicestate?history=2h');
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /^history: /);
  });
});

describe('the readers after every batch', () => {
  // A batch that cuts no chunk leaves the minute slots alone (its readings wait in a group that
  // QLater marks); every reader of the slots must still see them at once. Two devices on two
  // partitions, batches of one to three readings (one of 70, which cuts a chunk), over the last
  // 55 minutes (so across an hour change most of the time): after each batch, gethistory's
  // per-minute summaries of every device equal what its raw readings make, and
  // getdevicestate?history=1h's lastHour holds the means of every minute.
  test('gethistory?resolution=minute agrees with raw, and lastHour holds the newest readings, after each batch', async () => {
    const devs = ['rx-1', 'rx-2'];
    const start = Math.floor(Date.now() / 60000) * 60000 - 55 * 60000;
    const range = `from=${new Date(start).toISOString()}&to=${new Date(start + 56 * 60000).toISOString()}`;
    let t = start, seq = 0, seed = 7, waiting = 0;
    const rnd = (n) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor(seed / 65536) % n;
    };
    for (let step = 0; step < 36; step++) {
      const n = step === 20 ? 70 : 1 + rnd(3);
      const evs = [];
      for (let i = 0; i < n; i++) {
        t += step === 20 ? 500 : 20000 + rnd(60000); // quarters: every sum and mean is exact
        evs.push({ deviceId: devs[rnd(3) === 0 ? 1 : 0], seq: ++seq, enqueued: new Date(t).toISOString(), body: { temperature: 15 + rnd(40) / 4 } });
      }
      assert.ok(t < start + 55 * 60000);
      assert.equal((await post(evs, step % 2 ? 'E' : 'F')).status, 200);

      const rows = (await h.tableAll(az, DEVICES)).filter((r) => devs.includes(r.RowKey));
      waiting += rows.some((r) => pendingTexts(r, { later: true }).length > 0);
      const raw = await get(`gethistory?${range}`);
      const minute = await get(`gethistory?${range}&resolution=minute`);
      const state = await get('getdevicestate?history=1h');
      assert.equal(raw.status, 200, raw.text);
      assert.equal(minute.status, 200, minute.text);
      for (const D of devs) {
        const want = new Map();
        for (const p of raw.json.points.filter((x) => x.deviceId === D)) {
          const m = Math.floor(Date.parse(p.time) / 60000) * 60000;
          const w = want.get(m) ?? { count: 0, min: Infinity, max: -Infinity, sum: 0 };
          w.count++;
          w.min = Math.min(w.min, p.celsius);
          w.max = Math.max(w.max, p.celsius);
          w.sum += p.celsius;
          want.set(m, w);
        }
        const got = minute.json.points.filter((x) => x.deviceId === D)
          .map((p) => [Date.parse(p.time), p.count, p.celsius.min, p.celsius.max, p.celsius.mean]);
        const exp = [...want].sort((a, b) => a[0] - b[0]).map(([m, w]) => [m, w.count, w.min, w.max, w.sum / w.count]);
        // the means as gethistory writes them (ten significant digits)
        assert.deepEqual(got.map((x) => x.slice(0, 4)), exp.map((x) => x.slice(0, 4)), `step ${step}, ${D}: per-minute summaries and raw`);
        got.forEach((x, i) => assert.ok(Math.abs(x[4] - exp[i][4]) < 1e-6, `step ${step}, ${D}: mean ${x[4]}, raw ${exp[i][4]}`));
        const lh = state.json.find((d) => d.deviceId === D)?.lastHour;
        if (!exp.length) continue;
        const from = Date.parse(lh?.from);
        const inHour = exp.filter(([m]) => m >= from);
        assert.deepEqual(lh.minute, inHour.map(([m]) => (m - from) / 60000), `step ${step}, ${D}: lastHour's minutes`);
        // two decimals (C's %.2f rounds a tie to even, JS's toFixed away from zero)
        assert.equal(lh.temperature.length, inHour.length);
        inHour.forEach((x, i) => assert.ok(Math.abs(lh.temperature[i] - x[4]) <= 0.005 + 1e-9, `step ${step}, ${D}: lastHour's mean ${lh.temperature[i]}, raw ${x[4]}`));
      }
    }
    // most steps had readings waiting in groups QLater marks (else this test proves nothing new)
    assert.ok(waiting > 20, `${waiting} steps with readings not in the slots yet`);
  });
});
