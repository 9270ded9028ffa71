// Integration: the history table (handler/history.c) against real Azurite: every accepted
// reading kept once, whatever the replays, crashes and failed transactions. Event Hubs cannot run
// here, so this test plays the host: each batch is what the host would post, and a replay is the
// same batch posted again. A small HTTP proxy between the handler and Azurite fails or kills at
// a chosen history transaction (a stand-in for a network or process fault; Azurite is real).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as h from '../lib/harness.mjs';
import { batchFailure } from '../lib/batchproxy.mjs';

const TABLE = 'ReadingHistory';
let az, proxy, handler;

/** A proxy to Azurite; onBatch(n) is asked for the n-th (1-based) history $batch: 'pass',
 * 'fail' (a 503 answer), 'hang' (never answered) or 'refuse' (Azure's 400 for operation 0's
 * value: Azurite does not enforce Azure's entity limits, so the proxy stands in for Azure). */
async function startProxy() {
  const port = await h.freePort();
  const p = { port, batches: 0, onBatch: () => 'pass' };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url.includes('$batch') && body.includes(TABLE)) {
        const what = p.onBatch(++p.batches);
        if (what === 'fail') { res.writeHead(503, { 'Content-Type': 'text/plain' }); res.end('down'); return; }
        if (what === 'hang') return;
        if (what === 'refuse') { batchFailure(res, 0, 400, 'EntityTooLarge', 'The entity is larger than allowed'); return; }
      }
      const up = http.request({ host: '127.0.0.1', port: az.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  p.close = () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); };
  return p;
}

const env = () => ({
  ...h.handlerEnv(az),
  StorageConnectionString: az.connectionString.replace(`:${az.port}/`, `:${proxy.port}/`),
  BackoffBaseMs: '5', BackoffCapMs: '50',
});

before(async () => {
  az = await h.startAzurite();
  proxy = await startProxy();
  handler = await h.startHandler(env());
});
after(async () => {
  await handler?.stop();
  await proxy?.close();
  await az?.close();
});

/** n readings for devices prefix-0..prefix-(d-1), seq from seq0, enqueued from t0 a second apart. */
function readings(prefix, n, { d = 5, seq0 = 1000, t0 = Date.parse('2026-11-30T09:58:00Z') } = {}) {
  return Array.from({ length: n }, (_, i) => ({
    deviceId: `${prefix}-${i % d}`, seq: seq0 + i, enqueued: new Date(t0 + i * 1000).toISOString(),
    body: { temperature: 20 + (i % 7), humidity: 50, pressure: 1000 + (i % 500) },
  }));
}
/** The readings' rows of devices prefix-*, and their hourly summary rows. */
const rowsOf = async (prefix) =>
  (await h.tableAll(az, TABLE)).filter((r) => r.DeviceId.startsWith(prefix + '-') && r.Time);
const summariesOf = async (prefix) =>
  (await h.tableAll(az, TABLE)).filter((r) => r.DeviceId.startsWith(prefix + '-') && !r.Time);
const post = (evs, opts = {}) => h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch(evs, { partition: '3', ...opts }));
const logsOf = (r) => (r.json?.Logs ?? []).join('\n');

describe('history rows', () => {
  test('one row per reading, keyed by hour and device; split past 100 operations; a replay leaves the table byte-identical', async () => {
    // 250 readings a second apart from 09:58: two hours, 120 + 130 rows: 100+20, 100+30
    const evs = readings('hk', 250);
    const r = await post(evs);
    assert.equal(r.status, 200, r.text);
    assert.match(logsOf(r), /history: 250 rows written, 0 already kept, 0 without enqueued time, 4 transactions/);
    const rows = await rowsOf('hk');
    assert.equal(rows.length, 250);
    // one summary per device per hour, in the hour's partition, counting its readings
    const sums = await summariesOf('hk');
    assert.equal(sums.length, 10);
    assert.equal(sums.reduce((n, x) => n + Number(x.Count), 0), 250);
    const s0 = sums.find((x) => x.PartitionKey === 'h2026113009' && x.DeviceId === 'hk-0');
    assert.equal(s0.RowKey, '~~m hk-0');
    assert.equal(s0.M58, '12|12,20,26,276|12,50,50,600|12,1000,1055,12330|0,,,');
    const one = rows.find((x) => x.SequenceNumber == 1000 + 130);
    assert.equal(one.PartitionKey, 'h2026113010');
    assert.equal(one.RowKey, `hk-0 ${String(Date.parse('2026-11-30T10:00:10Z')).padStart(13, '0')} 3 ${String(1130).padStart(20, '0')} 0`);
    assert.equal(one.DeviceId, 'hk-0');
    assert.equal(one.Celsius, 20 + (130 % 7));
    assert.equal(one.Partition, '3');
    assert.equal(new Date(one.Time).toISOString(), '2026-11-30T10:00:10.000Z');
    // the replay, and a replay cut differently (the host may batch differently after a restart)
    const again = await post(evs);
    assert.equal(again.status, 200, again.text);
    assert.match(logsOf(again), /history: 0 rows written, 250 already kept/);
    const cut = await post(evs.slice(90, 180));
    assert.equal(cut.status, 200, cut.text);
    assert.deepEqual(await rowsOf('hk'), rows, 'rows, timestamps and etags unchanged');
    assert.deepEqual(await summariesOf('hk'), sums, 'summaries unchanged');
  });

  test('a batch with some rows new and some kept writes only the new ones', async () => {
    const evs = readings('hm', 60, { seq0: 5000 });
    assert.equal((await post(evs.slice(0, 30))).status, 200);
    const before = await rowsOf('hm');
    const r = await post(evs);
    assert.equal(r.status, 200, r.text);
    assert.match(logsOf(r), /history: 30 rows written, 30 already kept/);
    const after = await rowsOf('hm');
    assert.equal(after.length, 60);
    for (const b of before) assert.deepEqual(after.find((x) => x.RowKey === b.RowKey), b);
  });

  test('rejected readings are not history; an array body is one row per element', async () => {
    const evs = [
      { deviceId: 'hr-0', seq: 1, enqueued: '2026-11-30T08:00:00Z', body: { temperature: 500 } },
      { deviceId: 'hr-0', seq: 2, enqueued: '2026-11-30T08:00:01Z', body: [{ temperature: 1 }, { temperature: 2 }] },
    ];
    const r = await post(evs);
    assert.equal(r.status, 200, r.text);
    const rows = await rowsOf('hr');
    assert.deepEqual(rows.map((x) => x.Celsius).sort(), [1, 2]);
    assert.deepEqual(rows.map((x) => x.RowKey.split(' ').at(-1)).sort(), ['0', '1']);
  });

  test('a device id with quotes and spaces, and one over 256 bytes, are kept under their own names', async () => {
    const long = 'hl-' + 'x'.repeat(400);
    const evs = [
      { deviceId: "hq-o'brien x", seq: 1, enqueued: '2026-11-30T08:00:00Z', body: { temperature: 1 } },
      { deviceId: long, seq: 2, enqueued: '2026-11-30T08:00:00Z', body: { temperature: 2 } },
    ];
    const r = await post(evs);
    assert.equal(r.status, 200, r.text);
    assert.equal((await rowsOf('hq')).length, 1);
    const l = await rowsOf('hl');
    assert.equal(l.length, 1);
    assert.equal(l[0].DeviceId, long);
    assert.match(l[0].RowKey, /^~[0-9a-f]{64} /);
    assert.match(logsOf(await post(evs)), /0 rows written, 2 already kept/);
  });
});

describe('faults', () => {
  test('a failed transaction answers 500 and the replay completes it: every reading once', async () => {
    const evs = readings('hf', 250, { seq0: 9000 });
    proxy.batches = 0;
    proxy.onBatch = (n) => (n === 2 ? 'fail' : 'pass');
    const r = await post(evs);
    proxy.onBatch = () => 'pass';
    assert.equal(r.status, 500, r.text);
    // the first transaction only: 100 operations, four devices' 24 readings of the first hour
    // and their four summaries
    const first = (await rowsOf('hf')).length;
    assert.equal(first, 96);
    const again = await post(evs);
    assert.equal(again.status, 200, again.text);
    assert.match(logsOf(again), new RegExp(`history: ${250 - first} rows written, ${first} already kept`));
    const rows = await rowsOf('hf');
    assert.equal(rows.length, 250);
    assert.equal(new Set(rows.map((x) => x.SequenceNumber)).size, 250);
  });

  test('the handler killed between transactions, then the host replays: every reading once', async () => {
    const evs = readings('hc', 250, { seq0: 20000 });
    proxy.batches = 0;
    proxy.onBatch = (n) => {
      if (n < 3) return 'pass';
      handler.proc.kill('SIGKILL'); // after two transactions (the first hour) were applied
      return 'hang';
    };
    await post(evs).catch(() => null);
    await handler.exited;
    proxy.onBatch = () => 'pass';
    assert.equal((await rowsOf('hc')).length, 120);
    handler = await h.startHandler(env());
    const again = await post(evs);
    assert.equal(again.status, 200, again.text);
    assert.match(logsOf(again), /history: 130 rows written, 120 already kept/);
    // the summaries count every reading once
    const sums = await summariesOf('hc');
    assert.equal(sums.reduce((n, x) => n + Number(x.Count), 0), 250);
    const rows = await rowsOf('hc');
    assert.equal(rows.length, 250);
    assert.equal(new Set(rows.map((x) => x.SequenceNumber)).size, 250);
  });
});

describe('summaries with two writers', () => {
  test('two handler processes writing one device-hour in turn: each refused summary is read again, the count stays exact', async () => {
    const other = await h.startHandler(env());
    try {
      const evs = readings('hw', 90, { d: 1, seq0: 40000, t0: Date.parse('2026-11-30T05:00:00Z') });
      const via = (hd, part) => h.invoke(hd.url, 'EnvironmentEventTrigger', h.hostBatch(part, { partition: '3' }));
      assert.equal((await via(handler, evs.slice(0, 30))).status, 200);
      const b = await via(other, evs.slice(30, 60)); // knows nothing: its insert is refused, it reads
      assert.equal(b.status, 200, b.text);
      assert.match(logsOf(b), /1 summary reads/);
      const c = await via(handler, evs.slice(60, 90)); // its etag is stale now: refused, it reads
      assert.equal(c.status, 200, c.text);
      assert.match(logsOf(c), /1 summary reads/);
      const [sum] = await summariesOf('hw');
      assert.equal(Number(sum.Count), 90);
      const r = await fetch(`${handler.url}/api/gethistory?device=hw-0&from=2026-11-30T05:00:00Z&to=2026-11-30T05:59:59Z&resolution=hour`);
      const j = await r.json();
      assert.equal(j.points[0].count, 90);
      assert.equal(j.points[0].celsius.min, 20);
      assert.equal(j.points[0].celsius.max, 26);
    } finally {
      await other.stop();
    }
  });
});

describe('a history row the store refuses every time', () => {
  test('is logged and the batch answers 200: the partition is never stopped by history', async () => {
    proxy.onBatch = () => 'refuse';
    try {
      const evs = readings('refused', 4, { d: 2, seq0: 70000, t0: Date.parse('2026-11-30T07:00:00Z') });
      for (let delivery = 0; delivery < 2; delivery++) {
        const r = await post(evs);
        assert.equal(r.status, 200, r.text);
        assert.match(logsOf(r), /EntityTooLarge/);
      }
      assert.equal((await rowsOf('refused')).length, 0);
    } finally {
      proxy.onBatch = () => 'pass';
    }
  });
});

describe('summaries with two writers, many devices', () => {
  test('two processes writing the same ten device-hours in turn: every answer 200, counts exact', async () => {
    // A refused transaction changes nothing on Azure; Azurite rewrites what it touched (new
    // etags), so re-reading only the refused summary was refused again at the next one until the
    // handler gave up with a 500 (found by transaction.test.mjs's two-process case).
    const other = await h.startHandler(env());
    try {
      const evs = readings('two10', 60, { d: 10, seq0: 50000, t0: Date.parse('2026-11-30T06:00:00Z') });
      const via = (hd, part) => h.invoke(hd.url, 'EnvironmentEventTrigger', h.hostBatch(part, { partition: '4' }));
      for (const [hd, part] of [[handler, evs.slice(0, 20)], [other, evs.slice(20, 40)], [handler, evs.slice(40, 60)]]) {
        const r = await via(hd, part);
        assert.equal(r.status, 200, r.text);
      }
      const sums = await summariesOf('two10');
      assert.equal(sums.length, 10);
      for (const sum of sums) assert.equal(Number(sum.Count), 6, sum.DeviceId);
      assert.equal((await rowsOf('two10')).length, 60);
    } finally {
      await other.stop();
    }
  });
});

describe('gethistory', () => {
  const get = async (q) => {
    const r = await fetch(`${handler.url}/api/gethistory?${q}`);
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* CSV */ }
    return { status: r.status, text, json, headers: r.headers };
  };
  const range = 'from=2026-11-30T09:58:00Z&to=2026-11-30T10:03:00Z';

  test('raw readings of one device as JSON, in time order, across an hour boundary', async () => {
    const r = await get(`device=hk-1&${range}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.resolution, 'raw');
    assert.equal(r.json.points.length, 50);
    assert.ok(r.json.points.every((p) => p.deviceId === 'hk-1'));
    const times = r.json.points.map((p) => p.time);
    assert.deepEqual(times, [...times].sort());
    assert.equal(times[0], '2026-11-30T09:58:01.000Z');
    assert.deepEqual(Object.keys(r.json.points[0]).sort(), ['celsius', 'deviceId', 'hPa', 'humidity', 'partition', 'sequenceNumber', 'time']);
  });

  test('every device, per minute: count, min, mean and max', async () => {
    const r = await get(`${range}&resolution=minute`);
    assert.equal(r.status, 200, r.text);
    const mine = r.json.points.filter((p) => p.deviceId.startsWith('hk-'));
    assert.equal(mine.reduce((n, p) => n + p.count, 0), 250);
    const p = mine.find((x) => x.deviceId === 'hk-0' && x.time === '2026-11-30T09:58:00.000Z');
    assert.equal(p.count, 12); // seconds 0, 5, ..., 55
    assert.equal(p.celsius.min, 20);
    assert.equal(p.celsius.max, 26);
  });

  test('CSV: a header, one line per reading, a file to download', async () => {
    const r = await get(`device=hk-2&${range}&format=csv`);
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /^text\/csv/);
    assert.match(r.headers.get('content-disposition'), /attachment; filename="history.csv"/);
    const lines = r.text.trimEnd().split('\r\n');
    assert.equal(lines[0], 'deviceId,time,celsius,humidity,hPa,light,partition,sequenceNumber');
    assert.equal(lines.length, 51);
    assert.match(lines[1], /^hk-2,2026-11-30T09:58:02.000Z,22,50,1002,,3,1002$/);
  });

  test('a large answer is streamed whole (10,000 readings)', async () => {
    const evs = readings('hs', 10000, { d: 1, seq0: 100000, t0: Date.parse('2026-11-29T00:00:00Z') });
    for (let i = 0; i < evs.length; i += 1000) assert.equal((await post(evs.slice(i, i + 1000))).status, 200);
    const r = await get('device=hs-0&from=2026-11-29T00:00:00Z&to=2026-11-29T23:59:59Z&format=csv');
    assert.equal(r.status, 200);
    assert.equal(r.text.trimEnd().split('\r\n').length, 10001);
    const j = await get('device=hs-0&from=2026-11-29T00:00:00Z&to=2026-11-29T23:59:59Z&resolution=hour');
    assert.deepEqual(j.json.points.map((p) => p.count), [3600, 3600, 2800]);
  });

  test('bad parameters: a 400 naming the parameter, nothing read', async () => {
    const cases = [
      ['device=nobody-here', 'device'],
      ['device=a%2Fb', 'device'],
      ["device=hk-1'%20or%20DeviceId%20ne%20'x", 'device'],
      ["device=hk-1'%20or%20'1'%20eq%20'1", 'device'],
      ['from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z', 'from'],
      ['from=yesterday', 'from'],
      ['from=2026-02-31T00:00:00Z', 'from'],
      ['from=2026-11-30T10:00:00Z&to=10am', 'to'],
      ['to=2026-11-30T10:00:00Z', 'from'],
      ['last=2h', 'last'],
      ['last=1h&from=2026-11-30T10:00:00Z', 'last'],
      ['resolution=second', 'resolution'],
      ['format=xml', 'format'],
      ['last=24h', 'resolution'],
      ['device=hk-1&last=7d', 'resolution'],
      ['from=2026-01-01T00:00:00Z&to=2026-11-30T00:00:00Z&resolution=hour', 'resolution'],
    ];
    for (const [q, param] of cases) {
      const r = await get(q);
      assert.equal(r.status, 400, `${q}: ${r.status} ${r.text}`);
      assert.equal(r.json.parameter, param, q);
      assert.ok(r.json.error.startsWith(param + ':'), r.json.error);
    }
  });

  test('a device id that is a prefix of another reads only its own rows', async () => {
    const evs = ['hp', 'hp x', 'hpx'].map((d, i) => ({ deviceId: d, seq: 70000 + i, enqueued: '2026-11-30T07:00:00Z', body: { temperature: i } }));
    assert.equal((await post(evs)).status, 200);
    const r = await get('device=hp&from=2026-11-30T06:59:00Z&to=2026-11-30T07:01:00Z');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.points.map((p) => p.deviceId), ['hp']);
  });
});

describe('retention', () => {
  test('HistoryRetention deletes exactly the rows older than HistoryDays (3650 here: the other tests use fixed dates), in transactions, and says how many', async () => {
    const hd = await h.startHandler({ ...env(), HistoryDays: '3650' });
    const now = Date.now();
    const day = 86400000;
    const at = (ms, i) => ({ deviceId: `ht-${i % 3}`, seq: 300000 + i, enqueued: new Date(ms).toISOString(), body: { temperature: 5 } });
    const old = [
      ...Array.from({ length: 150 }, (_, i) => at(now - 4000 * day + i * 1000, i)), // 4000 days: 150 rows
      at(now - 3651 * day, 150),
      at(now - 3650 * day - 120000, 151), // two minutes before the cutoff
    ];
    const keep = [at(now - 3650 * day + 120000, 152), at(now - 3649 * day, 153), at(now - 60000, 154)];
    const r = await post([...old, ...keep]);
    assert.equal(r.status, 200, r.text);
    const others = (await h.tableAll(az, TABLE)).filter((x) => !x.DeviceId.startsWith('ht-'));
    assert.equal((await rowsOf('ht')).length, 155);
    const summariesBefore = await summariesOf('ht');
    // the host's timer invocation: POST /HistoryRetention with the TimerInfo under the binding's name
    const t = await h.invoke(hd.url, 'HistoryRetention', {
      Data: { timer: { Schedule: { AdjustForDST: true }, ScheduleStatus: null, IsPastDue: false } },
      Metadata: { sys: { MethodName: 'HistoryRetention', UtcNow: new Date().toISOString(), RandGuid: 'x' } },
    });
    assert.equal(t.status, 200, t.text);
    const left = await rowsOf('ht');
    assert.deepEqual(left.map((x) => Number(x.SequenceNumber)).sort(), [300152, 300153, 300154]);
    // the summaries of the hours wholly before the cutoff went with their readings; the cutoff
    // hour's stays (it counts readings on both sides)
    const summariesAfter = await summariesOf('ht');
    assert.ok(summariesBefore.length - summariesAfter.length >= 2);
    assert.ok(summariesAfter.every((x) => x.PartitionKey >= `h${new Date(now - 3650 * day).toISOString().slice(0, 13).replace(/\D/g, '')}`));
    assert.match(logsOf(t), new RegExp(`${152 + summariesBefore.length - summariesAfter.length} history rows older than \\S+ \\(HistoryDays 3650\\) deleted in \\d+ transactions`));
    // nothing else touched
    assert.deepEqual((await h.tableAll(az, TABLE)).filter((x) => !x.DeviceId.startsWith('ht-')), others);
    // a second run finds nothing
    const again = await h.invoke(hd.url, 'HistoryRetention', { Data: {}, Metadata: {} });
    assert.match(logsOf(again), /0 history rows older/);
    await hd.stop();
  });

  test('HistoryDays out of range stops the start with a message naming it', async () => {
    const bad = await h.startHandler({ ...env(), HistoryDays: '0' }, { wait: false });
    const exit = await bad.exited;
    assert.notEqual(exit.code, 0);
    assert.match(bad.logs.text, /HistoryDays must be a whole number from 1 to 36500/);
  });
});

describe('long device ids', () => {
  test('gethistory for a 500-character id of quotes reads its rows (the URL stays under its limit)', async () => {
    const id = "hy-" + "'".repeat(497);
    const evs = [{ deviceId: id, seq: 80000, enqueued: '2026-11-30T04:00:00Z', body: { temperature: 3 } },
      { deviceId: id, seq: 80001, enqueued: '2026-11-30T04:00:01Z', body: { temperature: 4 } }];
    const r = await post(evs);
    assert.equal(r.status, 200, r.text);
    assert.equal((await post(evs)).status, 200); // the replay's lookup fits in a URL too
    const q = new URLSearchParams({ device: id, from: '2026-11-30T03:59:00Z', to: '2026-11-30T04:01:00Z' });
    const g = await fetch(`${handler.url}/api/gethistory?${q}`);
    const j = await g.json();
    assert.equal(g.status, 200, JSON.stringify(j));
    assert.deepEqual(j.points.map((p) => p.celsius), [3, 4]);
    const m = await (await fetch(`${handler.url}/api/gethistory?${q}&resolution=minute`)).json();
    assert.equal(m.points[0].count, 2);
  });
});
