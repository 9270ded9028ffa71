// Integration: the history table, format v2 (handler/history.c, README "History") against real
// Azurite: every accepted reading kept once, whatever the replays, crashes, failed transactions
// and competing writers. Event Hubs cannot run here, so this test plays the host: each batch is
// what the host would post, and a replay is the same batch posted again. A small HTTP proxy
// between the handler and Azurite fails or kills at a chosen transaction (a stand-in for a
// network or process fault; Azurite is real). What readers see is computed by tests/lib/history.mjs
// (the readers' rule, written independently of the handler's reader).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import * as h from '../lib/harness.mjs';
import { batchFailure } from '../lib/batchproxy.mjs';
import { readHistory, summaryOf, parseReading, pendingTexts } from '../lib/history.mjs';

const TABLE = 'ReadingHistory';
let az, proxy, handler;

/** A proxy to Azurite (it keeps the history $batch bodies it passed on, and their answers, in sent
 * and answers); onBatch(n) is asked for the n-th (1-based) history $batch, onDeviceBatch(n)
 * for the n-th DeviceState $batch: 'pass', 'fail' (a 503 answer), 'hang' (never answered) or
 * 'refuse' (Azure's 400 for operation 0's value: Azurite does not enforce Azure's entity limits,
 * so the proxy stands in for Azure). */
async function startProxy() {
  const port = await h.freePort();
  const p = { port, batches: 0, deviceBatches: 0, onBatch: () => 'pass', onDeviceBatch: () => 'pass', sent: [], answers: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let what = 'pass';
      if (req.url.includes('$batch') && body.includes(TABLE)) what = p.onBatch(++p.batches);
      else if (req.url.includes('$batch') && body.includes('DeviceState')) what = p.onDeviceBatch(++p.deviceBatches);
      if (what === 'fail') { res.writeHead(503, { 'Content-Type': 'text/plain' }); res.end('down'); return; }
      if (what === 'hang') return;
      if (what === 'refuse') { batchFailure(res, 0, 400, 'EntityTooLarge', 'The entity is larger than allowed'); return; }
      const history = req.url.includes('$batch') && body.includes(TABLE);
      if (history) p.sent.push(body.toString());
      const up = http.request({ host: '127.0.0.1', port: az.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        if (history) {
          const got = [];
          ur.on('data', (c) => got.push(c));
          ur.on('end', () => p.answers.push(Buffer.concat(got).toString()));
        }
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
function readings(prefix, n, { d = 5, seq0 = 1000, t0 = Date.parse('2026-11-30T09:58:00Z'), step = 1000 } = {}) {
  return Array.from({ length: n }, (_, i) => ({
    deviceId: `${prefix}-${i % d}`, seq: seq0 + i, enqueued: new Date(t0 + i * step).toISOString(),
    body: { temperature: 20 + (i % 7), humidity: 50, pressure: 1000 + (i % 500) },
  }));
}
const post = (evs, opts = {}) => h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch(evs, { partition: '3', ...opts }));
const logsOf = (r) => (r.json?.Logs ?? []).join('\n');
const hour = (iso) => Date.parse(iso) / 3600000;
const chunksOf = (rows) => rows.filter((r) => typeof r.Readings === 'string');
const frozenOf = (rows) => rows.filter((r) => r.RowKey.startsWith('~~m '));
const hash8 = (text) => createHash('sha256').update(text).digest('hex').slice(0, 8);
const pad = (v, n) => String(v).padStart(n, '0');

/** Checks what the readers see for the devices of prefix: each device's readings are exactly
 * expected (events by device: [{ seq, partition?, enqueued, body }]) and its summaries (frozen
 * hours, slots of HistHour) plus its late readings add up to its Count. */
async function assertExact(prefix, evs, { partition = '3', copies = 'exact' } = {}) {
  const { rows, devices, readings: got, copies: n } = await readHistory(az, { prefix });
  const want = new Map();
  for (const e of evs) {
    if (!want.has(e.deviceId)) want.set(e.deviceId, new Set());
    want.get(e.deviceId).add(`${e.partition ?? partition}/${e.seq}`);
  }
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), 'devices with history');
  let total = 0;
  for (const [dev, set] of want) {
    const keys = got.get(dev).map((r) => `${r.partition}/${r.seq}`);
    assert.equal(keys.length, set.size, `${dev}: every reading once`);
    assert.deepEqual(new Set(keys), set, `${dev}: the readings sent`);
    total += keys.length;
    const row = devices.find((d) => d.RowKey === dev);
    assert.equal(Number(row.Count), set.size, `${dev}: Count`);
    const s = summaryOf(row, rows);
    assert.equal(s.total + s.late, Number(row.Count), `${dev}: summaries + late readings = Count`);
  }
  if (copies === 'exact') assert.equal(n, total, 'no reading kept twice');
  return { rows, devices, got };
}

describe('history rows (format v2)', () => {
  test('chunk rows, frozen hour rows, pending readings and minute slots across an hour boundary; a replay leaves both tables byte-identical', async () => {
    // 250 readings a second apart from 09:58: per device 24 in hour 9 and 26 in hour 10
    const evs = readings('hk', 250);
    const r = await post(evs);
    assert.equal(r.status, 200, r.text);
    assert.match(logsOf(r), /history: 10 rows written, 0 late readings/);
    const { rows, devices } = await assertExact('hk-', evs);
    assert.equal(chunksOf(rows).length, 5);
    assert.equal(frozenOf(rows).length, 5);
    const c0 = chunksOf(rows).find((x) => x.DeviceId === 'hk-0');
    assert.equal(c0.PartitionKey, 'h2026113009');
    assert.equal(c0.RowKey, `hk-0 ${pad(Date.parse('2026-11-30T09:58:00Z'), 13)} 3 ${pad(1000, 20)} 0 ${hash8(c0.Readings)}`);
    assert.equal(c0.Count, 24);
    assert.equal(new Date(c0.From).toISOString(), '2026-11-30T09:58:00.000Z');
    assert.equal(new Date(c0.To).toISOString(), '2026-11-30T09:59:55.000Z');
    assert.equal(c0.Readings.split('\n')[1], `${Date.parse('2026-11-30T09:58:05Z')};3;1005;0;25;50;1005;`);
    const f0 = frozenOf(rows).find((x) => x.DeviceId === 'hk-0');
    assert.deepEqual([f0.PartitionKey, f0.RowKey, Number(f0.Count)], ['h2026113009', '~~m hk-0', 24]);
    assert.equal(f0.M58, '12|12,20,26,276|12,50,50,600|12,1000,1055,12330|0,,,');
    const d0 = devices.find((x) => x.RowKey === 'hk-0');
    assert.equal(Number(d0.HistHour), hour('2026-11-30T10:00:00Z'));
    assert.equal(pendingTexts(d0).length, 26);
    assert.equal(pendingTexts(d0)[0], `${Date.parse('2026-11-30T10:00:00Z')};3;1120;0;21;50;1120;`);
    assert.equal(d0.Min00, `${Date.parse('2026-11-30T10:00:00Z') / 60000};12|12,20,26,274|12,50,50,600|12,1120,1175,13770|0,,,`);
    // slots of hour 9 stay until hour 10 needs them; readers take hour 9 from the frozen row
    assert.match(d0.Min58, new RegExp(`^${Date.parse('2026-11-30T09:58:00Z') / 60000};12\\|`));
    // the replay, and a replay cut differently (the host may batch differently after a restart)
    const tables = async () => [await h.tableAll(az, TABLE), await h.tableAll(az, 'DeviceState')];
    const before = await tables();
    const again = await post(evs);
    assert.equal(again.status, 200, again.text);
    assert.match(logsOf(again), /history: 0 rows written/);
    assert.equal((await post(evs.slice(90, 180))).status, 200);
    assert.deepEqual(await tables(), before, 'rows, timestamps and etags unchanged');
  });

  test('a device with 132 readings in one batch: two chunks of 64, four pending; the next batch fills the third chunk', async () => {
    const evs = readings('h100', 204, { d: 1, seq0: 3000, t0: Date.parse('2026-11-30T11:00:00Z') });
    assert.equal((await post(evs.slice(0, 132))).status, 200);
    let { rows, devices } = await assertExact('h100-', evs.slice(0, 132));
    assert.deepEqual(chunksOf(rows).map((c) => [c.Count, c.RowKey.split(' ')[3]]).sort(),
      [[64, pad(3000, 20)], [64, pad(3064, 20)]]);
    for (const c of chunksOf(rows)) assert.equal(c.RowKey.split(' ')[5], hash8(c.Readings));
    assert.deepEqual(pendingTexts(devices[0]).map((t) => parseReading(t).seq), [3128, 3129, 3130, 3131]);
    assert.equal(devices[0].Q01, undefined, 'one batch: one group');
    assert.equal((await post(evs.slice(132))).status, 200);
    ({ rows, devices } = await assertExact('h100-', evs));
    assert.equal(chunksOf(rows).length, 3);
    assert.equal(pendingTexts(devices[0]).length, 204 - 192);
    assert.equal(parseReading(pendingTexts(devices[0])[0]).seq, 3192);
    assert.equal(frozenOf(rows).length, 0, 'hour 11 is still open');
  });

  test('an hour boundary between batches: the pending readings of the closed hour become a chunk of their own', async () => {
    const evs = [...readings('hb', 10, { d: 1, seq0: 100, t0: Date.parse('2026-11-30T12:59:30Z') }),
      ...readings('hb', 5, { d: 1, seq0: 110, t0: Date.parse('2026-11-30T13:00:10Z') })];
    const a = await post(evs.slice(0, 10));
    assert.match(logsOf(a), /history: 0 rows written/);
    const b = await post(evs.slice(10));
    assert.match(logsOf(b), /history: 2 rows written/);
    const { rows, devices } = await assertExact('hb-', evs);
    assert.deepEqual(chunksOf(rows).map((c) => [c.PartitionKey, c.Count]), [['h2026113012', 10]]);
    assert.deepEqual(frozenOf(rows).map((c) => [c.PartitionKey, Number(c.Count), c.M59.split('|')[0]]), [['h2026113012', 10, '10']]);
    assert.equal(pendingTexts(devices[0]).length, 5);
    assert.equal(Number(devices[0].HistHour), hour('2026-11-30T13:00:00Z'));
  });

  test('a late reading (older than the slots can hold) is kept raw, counted in LateReadings, not in a summary', async () => {
    const now = readings('hlate', 5, { d: 1, seq0: 10, t0: Date.parse('2026-11-30T14:00:00Z') });
    const late = [
      { ...readings('hlate', 1, { d: 1, seq0: 7, t0: Date.parse('2026-11-30T12:30:00Z') })[0], partition: '5' },
      { ...readings('hlate', 1, { d: 1, seq0: 8, t0: Date.parse('2026-11-30T14:01:00Z') })[0], partition: '5' },
    ];
    assert.equal((await post(now)).status, 200);
    const r = await post(late, { partition: '5' });
    assert.equal(r.status, 200, r.text);
    assert.match(logsOf(r), /1 late readings/);
    const { devices } = await assertExact('hlate-', [...now, ...late]);
    assert.equal(Number(devices[0].LateReadings), 1);
    const s = summaryOf(devices[0], []);
    assert.equal(s.total, 6);
  });

  test('rejected readings are not history; an array body is one reading per element', async () => {
    const evs = [
      { deviceId: 'hr-0', seq: 1, enqueued: '2026-11-30T08:00:00Z', body: { temperature: 500 } },
      { deviceId: 'hr-0', seq: 2, enqueued: '2026-11-30T08:00:01Z', body: [{ temperature: 1 }, { temperature: 2 }] },
    ];
    const r = await post(evs);
    assert.equal(r.status, 200, r.text);
    const { readings: got } = await readHistory(az, { prefix: 'hr-' });
    assert.deepEqual(got.get('hr-0').map((x) => [x.seq, x.k, x.celsius]), [[2, 0, 1], [2, 1, 2]]);
  });

  test('a device id with quotes and spaces, and one over 256 bytes, are kept under their own names', async () => {
    const long = 'hl-' + 'x'.repeat(400);
    const evs = [
      ...readings("hq-o'brien x", 65, { d: 1, seq0: 1 }).map((e) => ({ ...e, deviceId: "hq-o'brien x" })),
      ...readings('hl', 65, { d: 1, seq0: 100 }).map((e) => ({ ...e, deviceId: long })),
    ];
    const r = await post(evs);
    assert.equal(r.status, 200, r.text);
    const mine = chunksOf(await h.tableAll(az, TABLE)).filter((c) => c.DeviceId === long || c.DeviceId === "hq-o'brien x");
    assert.equal(mine.length, 2);
    assert.match(mine.find((c) => c.DeviceId === long).RowKey, /^~[0-9a-f]{64} /);
    assert.match(mine.find((c) => c.DeviceId !== long).RowKey, /^hq-o'brien x \d{13} 3 /);
    assert.match(logsOf(await post(evs)), /history: 0 rows written/);
  });
});

/** Posts evs and kills the handler (SIGKILL) when its first DeviceState transaction arrives: the
 * history rows are written, the device rows not yet. */
async function crashBeforeDeviceCommit(evs) {
  proxy.onDeviceBatch = () => {
    handler.proc.kill('SIGKILL');
    return 'hang';
  };
  await post(evs).catch(() => null);
  await handler.exited;
  proxy.onDeviceBatch = () => 'pass';
}

describe('faults', () => {
  test('a failed history transaction answers 500, nothing of the devices is committed, and the replay completes it: every reading once', async () => {
    const evs = readings('hf', 250, { seq0: 9000 });
    proxy.batches = 0;
    proxy.onBatch = (n) => (n === 1 ? 'fail' : 'pass');
    const r = await post(evs);
    proxy.onBatch = () => 'pass';
    assert.equal(r.status, 500, r.text);
    assert.equal((await h.tableAll(az, 'DeviceState')).filter((d) => d.RowKey.startsWith('hf-')).length, 0);
    const again = await post(evs);
    assert.equal(again.status, 200, again.text);
    await assertExact('hf-', evs);
  });

  test('the handler killed between the history transaction and the device commit, then the host replays: every reading once', async () => {
    const evs = readings('hc', 250, { seq0: 20000 });
    proxy.batches = proxy.deviceBatches = 0;
    await crashBeforeDeviceCommit(evs);
    assert.ok(proxy.batches >= 1, 'the history transaction went first');
    assert.equal(chunksOf(await h.tableAll(az, TABLE)).filter((c) => c.DeviceId.startsWith('hc-')).length, 5);
    handler = await h.startHandler(env());
    // the host's replay, cut differently
    for (const part of [evs.slice(0, 70), evs.slice(70)]) {
      const again = await post(part);
      assert.equal(again.status, 200, again.text);
    }
    await assertExact('hc-', evs);
  });

  test('the same batch again after a crash: its chunk rows exist, their inserts answer 409 and the transaction goes again as insert-or-replace; the rows unchanged, every reading once', async () => {
    const evs = readings('hi', 250, { seq0: 40000 });
    proxy.batches = proxy.deviceBatches = 0;
    proxy.sent = [];
    proxy.answers = [];
    await crashBeforeDeviceCommit(evs);
    assert.equal(proxy.sent.length, 1);
    assert.match(proxy.sent[0], /\r\nPOST http[^\r]*ReadingHistory HTTP/, 'chunk rows go as plain inserts');
    assert.doesNotMatch(proxy.answers[0], /HTTP\/1.1 409/);
    const strip = ({ Timestamp, ...rest }) => rest;
    const mine = async () => chunksOf(await h.tableAll(az, TABLE)).filter((c) => c.DeviceId.startsWith('hi-')).map(strip);
    const first = await mine();
    assert.equal(first.length, 5);
    handler = await h.startHandler(env());
    const again = await post(evs); // the host's replay, the same batch
    assert.equal(again.status, 200, again.text);
    assert.equal(proxy.sent.length, 3, 'the inserts, then the same rows as insert-or-replace');
    assert.match(proxy.answers[1], /HTTP\/1.1 409/);
    assert.doesNotMatch(proxy.sent[2], /\r\nPOST http/);
    assert.match(proxy.sent[2], /\r\nPUT http[^\r]*ReadingHistory\(PartitionKey=/);
    assert.doesNotMatch(proxy.answers[2], /HTTP\/1.1 [45]\d\d/);
    assert.deepEqual(await mine(), first, 'the chunk rows as they were');
    await assertExact('hi-', evs);
  });

  test('a history row the store refuses every time: the device\'s readings are rejected, its row keeps its history as it was, the batch answers 200', async () => {
    const evs = readings('refused', 70, { d: 1, seq0: 70000, t0: Date.parse('2026-11-30T07:00:00Z') });
    assert.equal((await post(evs.slice(0, 5))).status, 200);
    const before = await h.tableGet(az, 'DeviceState', 'Sydney', 'refused-0');
    proxy.onBatch = () => 'refuse';
    try {
      const r = await post(evs.slice(5));
      assert.equal(r.status, 200, r.text);
      assert.match(logsOf(r), /65 rejected/);
      const again = await post(evs.slice(5)); // the host's next delivery: already applied
      assert.equal(again.status, 200, again.text);
      assert.match(logsOf(again), /65 replayed/);
    } finally {
      proxy.onBatch = () => 'pass';
    }
    const row = await h.tableGet(az, 'DeviceState', 'Sydney', 'refused-0');
    assert.equal(Number(row.Count), 5);
    assert.equal(Number(row.Rejected), 65);
    assert.deepEqual(pendingTexts(row), pendingTexts(before));
    for (const k of ['Q00', 'Q01', 'HistHour', 'Min00']) assert.deepEqual(row[k], before[k], k);
    const kept = (await h.tableAll(az, 'RejectedTelemetry')).filter((x) => x.DeviceId === 'refused-0');
    assert.equal(kept.length, 65);
    assert.match(kept[0].Reason, /EntityTooLarge/);
    assert.equal(chunksOf(await h.tableAll(az, TABLE)).filter((c) => c.DeviceId === 'refused-0').length, 0);
  });
});

describe('competing writers', () => {
  test('two handler processes writing one device in turn: counts and summaries exact', async () => {
    const other = await h.startHandler(env());
    try {
      const evs = readings('hw', 90, { d: 1, seq0: 40000, t0: Date.parse('2026-11-30T05:59:00Z') });
      const via = (hd, part) => h.invoke(hd.url, 'EnvironmentEventTrigger', h.hostBatch(part, { partition: '3' }));
      for (const [hd, part] of [[handler, evs.slice(0, 30)], [other, evs.slice(30, 60)], [handler, evs.slice(60, 90)]]) {
        const r = await via(hd, part);
        assert.equal(r.status, 200, r.text);
      }
      // the third batch closes hour 5: a fold that writes a frozen hour row is never made on
      // this process's memory of the row (30 readings old here), so it reads the row first and
      // writes no orphan
      await assertExact('hw-', evs);
      assert.match(logsOf(await via(other, evs.slice(0, 60))), /history: 0 rows written/);
    } finally {
      await other.stop();
    }
  });

  test('4 processes x 3 partitions over the same 10 devices, across an hour boundary, with duplicate deliveries: every reading once, summaries + late = Count', async () => {
    const others = await Promise.all([1, 2, 3].map(() => h.startHandler(env())));
    const procs = [handler, ...others];
    try {
      const t0 = Date.parse('2026-11-30T15:58:30Z');
      const parts = ['0', '1', '2'];
      const all = [];
      const batches = parts.map((p, pi) => {
        const evs = Array.from({ length: 240 }, (_, i) => ({
          deviceId: `c4-${i % 10}`, seq: 500 + i, partition: p, enqueued: new Date(t0 + i * 1000 + pi * 300).toISOString(),
          body: { temperature: 10 + pi + (i % 5), humidity: 40 },
        }));
        all.push(...evs);
        return Array.from({ length: 6 }, (_, b) => evs.slice(b * 40, b * 40 + 40));
      });
      let seed = 7;
      const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
      const deliver = deliverer(procs, rnd);
      await Promise.all(parts.map(async (p, pi) => {
        for (const batch of batches[pi]) {
          // sometimes delivered twice at once (a lease moving between instances)
          await Promise.all(rnd(3) === 0 ? [deliver(p, batch), deliver(p, batch)] : [deliver(p, batch)]);
        }
      }));
      await assertExact('c4-', all, { copies: 'orphans allowed' });
    } finally {
      await Promise.all(others.map((o) => o.stop()));
    }
  });
});

/** Posts a batch of partition p to a process picked by rnd until one answers 200 (the host
 * retries a failed invocation; any instance may hold the partition's lease). */
function deliverer(procs, rnd) {
  return async (p, batch) => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const r = await h.invoke(procs[rnd(procs.length)].url, 'EnvironmentEventTrigger', h.hostBatch(batch, { partition: p }));
      if (r.status === 200) return;
    }
    throw new Error(`partition ${p}: no 200 after 20 deliveries`);
  };
}

/** The DeviceState row of a device, with its types (fullmetadata), as a PUT would write it back. */
async function rowTyped(id) {
  const r = await h.tableRequest(az, 'GET', h.entityPath('DeviceState', 'Sydney', id), { headers: { Accept: 'application/json;odata=fullmetadata' } });
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(Object.entries(r.json).filter(([k]) => !k.startsWith('odata.') && k !== 'Timestamp' && k !== 'Timestamp@odata.type'));
}
const mergeRow = (id, props) => h.tableRequest(az, 'MERGE', h.entityPath('DeviceState', 'Sydney', id), { body: props, headers: { 'If-Match': '*' } });
const withSeq = (text, seq) => { const f = text.split(';'); f[2] = String(seq); return f.join(';'); };
const getHistory = async (q) => {
  const r = await fetch(`${handler.url}/api/gethistory?${q}`);
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV */ }
  return { status: r.status, text, json };
};

describe('pending groups attacked (rows written by hand where the writer cannot be driven there)', () => {
  test('a generation at its 18-digit top: the next one is new to the row, no stale group comes back', async () => {
    const evs = [...readings('hgw', 3, { d: 1, seq0: 500, t0: Date.parse('2026-11-30T15:10:00Z') }),
      ...readings('hgw', 1, { d: 1, seq0: 503, t0: Date.parse('2026-11-30T16:10:00Z') })];
    assert.equal((await post(evs.slice(0, 3))).status, 200);
    const texts = pendingTexts(await h.tableGet(az, 'DeviceState', 'Sydney', 'hgw-0'));
    assert.equal(texts.length, 3);
    // Q00 at the top generation, Q01 a stale group of generation 1 (a reading never sent)
    const m = await mergeRow('hgw-0', { Q00: `999999999999999999|${texts.join('\n')}`, Q01: `1|${withSeq(texts[0], 77)}` });
    assert.equal(m.status, 204, m.text);
    await assertExact('hgw-', evs.slice(0, 3));
    assert.equal((await post(evs.slice(3))).status, 200);
    const { devices } = await assertExact('hgw-', evs);
    assert.equal(pendingTexts(devices[0]).length, 1);
    const raw = await getHistory('device=hgw-0&from=2026-11-30T15:00:00Z&to=2026-11-30T16:59:59Z');
    assert.deepEqual(raw.json.points.map((p) => p.sequenceNumber), [500, 501, 502, 503]);
  });

  test('texts near their longest (a 63-byte partition id that all needs encoding, 16-digit sequence numbers, 24-character numbers): 64 in a chunk, 63 pending in groups, each property within a String\'s 32,768 UTF-16 units', async () => {
    const D = 'hlong';
    const part = ';%/'.repeat(21); // 63 bytes, 189 once percent-encoded
    const t0 = Date.parse('2026-11-30T21:00:00Z');
    const evs = Array.from({ length: 128 }, (_, i) => ({
      deviceId: D, seq: 9000000000000000 + i, partition: part, enqueued: new Date(t0 + i * 1000).toISOString(),
      body: { temperature: 20.123456789012345, humidity: 50.12345678901234, pressure: 1000.1234567890123, light: -1.2345678901234567e-300 },
    }));
    const send = async (a, b) => assert.equal((await post(evs.slice(a, b), { partition: part })).status, 200);
    await send(0, 100); // a chunk of 64, 36 pending in Q00
    for (let i = 100; i < 127; i++) await send(i, i + 1); // Q01..Q27: 63 pending
    let { rows, devices } = await assertExact(`${D}`, evs.slice(0, 127), { partition: part });
    const texts = pendingTexts(devices[0]);
    assert.equal(texts.length, 63);
    assert.ok(texts.every((t) => t.length >= 280), `texts of ${texts[0].length} characters`);
    // the longest a text can be: ms 13, partition 189, seq 19, k (an index in a body) 6, four
    // numbers of 24 (-1.2345678901234567e-300), 7 separators: the bounds hold with room
    const max = 13 + 189 + 19 + 6 + 4 * 24 + 7;
    assert.ok(64 * max + 63 <= 32767 && 63 * max + 62 + 19 <= 32767);
    const sizes = [...chunksOf(rows).map((c) => c.Readings), ...Object.keys(devices[0]).filter((k) => /^Q\d\d$/.test(k)).map((k) => devices[0][k])];
    for (const v of sizes) assert.ok(v.length <= 32768, `a property of ${v.length} UTF-16 units`);
    assert.ok(chunksOf(rows)[0].Readings.length > 64 * 280);
    await send(127, 128); // 64 pending: the second chunk
    ({ rows, devices } = await assertExact(`${D}`, evs, { partition: part }));
    assert.deepEqual(chunksOf(rows).map((c) => c.Count), [64, 64]);
    const csv = await getHistory(`device=${D}&from=2026-11-30T21:00:00Z&to=2026-11-30T21:59:59Z&format=csv`);
    const lines = csv.text.trimEnd().split('\r\n').slice(1);
    assert.equal(lines.length, 128);
    assert.ok(lines.every((l) => l.includes(part)), 'the partition id read back');
  });

  test('a row of format v2 (PendN, P00..P29) folded by the group writer: a chunk of 64, the rest in Q00, PendN 0; nothing lost, nothing twice', async () => {
    const evs = readings('hv2', 75, { d: 1, seq0: 700, t0: Date.parse('2026-11-30T17:00:00Z') });
    assert.equal((await post(evs.slice(0, 30))).status, 200);
    const row = await rowTyped('hv2-0');
    const texts = pendingTexts(row);
    assert.equal(texts.length, 30);
    delete row.Q00;
    row.PendN = '30';
    row['PendN@odata.type'] = 'Edm.Int64';
    texts.forEach((t, i) => { row[`P${pad(i, 2)}`] = t; });
    await h.tableUpsert(az, 'DeviceState', row);
    await assertExact('hv2-', evs.slice(0, 30));
    assert.equal((await post(evs.slice(30, 70))).status, 200);
    let { rows, devices } = await assertExact('hv2-', evs.slice(0, 70));
    assert.deepEqual(chunksOf(rows).map((c) => c.Count), [64]);
    assert.equal(Number(devices[0].PendN), 0);
    assert.deepEqual(pendingTexts(devices[0]).map((t) => parseReading(t).seq), [764, 765, 766, 767, 768, 769]);
    assert.equal((await post(evs.slice(70))).status, 200);
    ({ devices } = await assertExact('hv2-', evs));
    assert.equal(pendingTexts(devices[0]).length, 11);
    assert.ok(devices[0].Q01, 'the next batch: one group more');
  });

  test('32 groups, then the 33rd batch gathers them; 63 pending, then 64 cut a chunk and leave an empty Q00; every reader agrees at each step', async () => {
    const D = 'hg32';
    const evs = readings(D, 100, { d: 1, seq0: 900, t0: Date.parse('2026-11-30T18:00:00Z'), step: 10000 });
    let sent = 0;
    const send = async (n) => { assert.equal((await post(evs.slice(sent, sent + n))).status, 200); sent += n; };
    const check = async () => {
      const { rows, devices } = await assertExact(`${D}-`, evs.slice(0, sent));
      const raw = await getHistory(`device=${D}-0&from=2026-11-30T18:00:00Z&to=2026-11-30T18:59:59Z`);
      assert.equal(raw.json.points.length, sent, 'gethistory raw');
      const csv = await getHistory(`device=${D}-0&from=2026-11-30T18:00:00Z&to=2026-11-30T18:59:59Z&format=csv`);
      assert.equal(csv.text.trimEnd().split('\r\n').length, sent + 1, 'gethistory CSV');
      const min = await getHistory(`device=${D}-0&from=2026-11-30T18:00:00Z&to=2026-11-30T18:59:59Z&resolution=minute`);
      assert.equal(min.json.points.reduce((n, p) => n + p.count, 0), sent, 'gethistory minute');
      const hr = await getHistory(`device=${D}-0&from=2026-11-30T18:00:00Z&to=2026-11-30T18:59:59Z&resolution=hour`);
      assert.deepEqual(hr.json.points.map((p) => p.count), [sent], 'gethistory hour');
      return { rows, dev: devices[0] };
    };
    for (let i = 0; i < 32; i++) await send(1);
    let { dev } = await check();
    assert.ok(dev.Q31, '32 groups');
    await send(1);
    ({ dev } = await check());
    assert.equal(pendingTexts(dev).length, 33);
    assert.equal(dev.Q00.split('\n').length, 33, 'gathered into Q00');
    for (let i = 0; i < 30; i++) await send(1);
    ({ dev } = await check());
    assert.equal(pendingTexts(dev).length, 63);
    await send(1);
    let rows;
    ({ rows, dev } = await check());
    assert.deepEqual(chunksOf(rows).map((c) => c.Count), [64]);
    assert.match(dev.Q00, /^[1-9][0-9]*\|$/, 'an empty Q00 of a new generation');
    await send(2);
    ({ dev } = await check());
    assert.equal(pendingTexts(dev).length, 2);
  });
});

describe('pending groups and a crash', () => {
  test('20 groups pending, a batch that cuts a chunk killed before its device commit, replayed cut in two: every reading once, no copy', async () => {
    const evs = readings('hgk', 70, { d: 1, seq0: 50, t0: Date.parse('2026-11-30T19:00:00Z') });
    for (let i = 0; i < 40; i += 2) assert.equal((await post(evs.slice(i, i + 2))).status, 200);
    const before = await h.tableGet(az, 'DeviceState', 'Sydney', 'hgk-0');
    assert.ok(before.Q19 && !before.Q20, '20 groups');
    proxy.batches = proxy.deviceBatches = 0;
    await crashBeforeDeviceCommit(evs.slice(40));
    assert.equal(chunksOf(await h.tableAll(az, TABLE)).filter((c) => c.DeviceId === 'hgk-0').length, 1);
    handler = await h.startHandler(env());
    for (const part of [evs.slice(40, 50), evs.slice(50)]) assert.equal((await post(part)).status, 200);
    const { rows, devices } = await assertExact('hgk-', evs);
    assert.deepEqual(chunksOf(rows).map((c) => c.Count), [64]);
    assert.equal(pendingTexts(devices[0]).length, 6);
  });
});

describe('pending groups under competing writers', () => {
  test('4 processes x 4 partitions, batches of 1 to 3 readings over 2 devices (groups pile up, 32 are gathered, 64 cut), duplicate deliveries, an hour boundary: every reading once in both readers', async () => {
    const others = await Promise.all([1, 2, 3].map(() => h.startHandler(env())));
    const procs = [handler, ...others];
    try {
      const t0 = Date.parse('2026-11-30T20:56:00Z');
      const parts = ['0', '1', '2', '3'];
      const all = [];
      let seed = 11;
      const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
      const batches = parts.map((p, pi) => {
        const evs = Array.from({ length: 150 }, (_, i) => ({
          deviceId: `cg-${(i + pi) % 2}`, seq: 100 + i, partition: p, enqueued: new Date(t0 + i * 2000 + pi * 500).toISOString(),
          body: { temperature: 10 + pi + (i % 5), humidity: 40 },
        }));
        all.push(...evs);
        const out = [];
        for (let i = 0; i < evs.length;) { const n = 1 + rnd(3); out.push(evs.slice(i, i + n)); i += n; }
        return out;
      });
      const deliver = deliverer(procs, rnd);
      await Promise.all(parts.map(async (p, pi) => {
        for (const batch of batches[pi]) await Promise.all(rnd(4) === 0 ? [deliver(p, batch), deliver(p, batch)] : [deliver(p, batch)]);
      }));
      await assertExact('cg-', all, { copies: 'orphans allowed' });
      for (const d of ['cg-0', 'cg-1']) {
        const r = await fetch(`${handler.url}/api/gethistory?device=${d}&from=2026-11-30T20:00:00Z&to=2026-11-30T21:59:59Z&format=csv`);
        const lines = (await r.text()).trimEnd().split('\r\n').slice(1);
        assert.equal(lines.length, 300, `${d}: gethistory CSV`);
        assert.equal(new Set(lines.map((l) => l.split(',').slice(-2).join('/'))).size, 300, `${d}: no reading twice`);
      }
    } finally {
      await Promise.all(others.map((o) => o.stop()));
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
      ['device=%00hk-1', 'device'], // a NUL is not decoded: never read as "no device, so all"
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
    const seqsOf = async () => [...(await readHistory(az, { prefix: 'ht-' })).readings.values()].flat().map((x) => x.seq).sort();
    assert.equal((await seqsOf()).length, 155);
    const cutoff = now - 3650 * day;
    const cutpk = `h${new Date(cutoff).toISOString().slice(0, 13).replace(/\D/g, '')}`;
    const mine = (await h.tableAll(az, TABLE)).filter((x) => x.DeviceId.startsWith('ht-'));
    // whole hours before the cutoff's (chunks and frozen hour rows), and the cutoff hour's chunks
    // whose newest reading is older than the cutoff; the cutoff hour's frozen rows stay
    const doomed = mine.filter((x) => x.PartitionKey < cutpk || (x.PartitionKey === cutpk && x.To && Date.parse(x.To) < cutoff));
    assert.ok(doomed.length >= 8, `${doomed.length} rows to delete`);
    // the host's timer invocation: POST /HistoryRetention with the TimerInfo under the binding's name
    const t = await h.invoke(hd.url, 'HistoryRetention', {
      Data: { timer: { Schedule: { AdjustForDST: true }, ScheduleStatus: null, IsPastDue: false } },
      Metadata: { sys: { MethodName: 'HistoryRetention', UtcNow: new Date().toISOString(), RandGuid: 'x' } },
    });
    assert.equal(t.status, 200, t.text);
    assert.deepEqual(await seqsOf(), [300152, 300153, 300154]);
    const left = (await h.tableAll(az, TABLE)).filter((x) => x.DeviceId.startsWith('ht-'));
    assert.deepEqual(left.map((x) => x.PartitionKey + ' ' + x.RowKey).sort(),
      mine.filter((x) => !doomed.includes(x)).map((x) => x.PartitionKey + ' ' + x.RowKey).sort());
    assert.match(logsOf(t), new RegExp(`${doomed.length} history rows older than \\S+ \\(HistoryDays 3650\\) deleted in \\d+ transactions`));
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
