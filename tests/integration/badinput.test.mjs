// Integration: no input can stop a partition (issue 9, sections 1, 4 and the NUL case of 5).
// The host retries a non-2xx answer forever (function.json: maxRetryCount -1), so every
// deterministic failure must answer 200: a reading is rejected (kept with its reason, counted in
// Rejected), a whole envelope is quarantined (kept whole). Each case is delivered several times,
// as the host would, and must answer 200 every time with exact counts. Real Azurite throughout;
// the one test double is a proxy that answers 400 the way Azure does for a row past its 1 MiB /
// 252-property limits, which Azurite does not enforce.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { batchOps, batchFailure } from '../lib/batchproxy.mjs';
import * as h from '../lib/harness.mjs';

const LIMIT = 65536;
let az, handler;
before(async () => {
  az = await h.startAzurite();
  handler = await h.startHandler(h.handlerEnv(az, { MaxRequestBodyBytes: String(LIMIT) }));
});
after(async () => {
  await handler?.stop();
  await az?.close();
});

const device = (id) => h.tableGet(az, 'DeviceState', 'Sydney', id);
const trigger = (body, opts) => h.invoke(handler.url, 'EnvironmentEventTrigger', body, opts);

/** Delivers the same body `times` times; every answer must be 200. Returns the last answer. */
async function deliver(body, { times = 3, raw = false, url = handler.url } = {}) {
  let r;
  for (let i = 0; i < times; i++) {
    r = await h.invoke(url, 'EnvironmentEventTrigger', body, { raw });
    assert.equal(r.status, 200, `delivery ${i + 1}: ${r.text.slice(0, 500)}`);
  }
  return r;
}

/** The rejected rows of a partition, with their whole Body put back together. */
async function rejectedIn(partition) {
  const rows = await h.tableAll(az, 'RejectedTelemetry', `EventHubPartition eq '${partition}'`);
  for (const row of rows) {
    if (row.BodyQuarantineId) {
      row.WholeBody = (await quarantined(row.BodyQuarantineId)).bytes.toString('utf8');
      continue;
    }
    const parts = Number(row.BodyParts || 1);
    row.WholeBody = row.Body + Array.from({ length: parts - 1 }, (_, i) => row[`Body${i + 2}`]).join('');
  }
  return rows;
}

/** A quarantined item: its header row and its bytes, from the chunk rows. */
async function quarantined(id) {
  const rows = await h.tableAll(az, 'QuarantinedBatches', `PartitionKey eq '${id}'`);
  const header = rows.find((r) => r.RowKey === 'batch');
  const chunks = rows.filter((r) => r.RowKey.startsWith('chunk-')).sort((a, b) => a.RowKey.localeCompare(b.RowKey));
  const bytes = Buffer.concat(chunks.flatMap((c) => Array.from({ length: 8 }, (_, i) => c[`Data${i}`]).filter((d) => d !== undefined).map((d) => Buffer.from(d, 'base64'))));
  return { header, bytes, chunks: chunks.length };
}

const quarantineId = (r) => {
  const m = /quarantined as (\S+) in QuarantinedBatches/.exec(r.text);
  assert.ok(m, `a quarantine id in the answer: ${r.text.slice(0, 300)}`);
  return m[1];
};

describe('a reading the store would refuse is rejected, not retried', () => {
  test('a 40,000-character geo: 200 on every delivery, rejected with its reason, kept whole', async () => {
    const geo = 'g'.repeat(40000);
    const body = h.hostBatch([
      { deviceId: 'geo-1', seq: 1, body: { temperature: 20, geo } },
      { deviceId: 'geo-1', seq: 2, body: { temperature: 21, geo: 'Sydney' } },
    ], { partition: 'geo' });
    const r = await deliver(body);
    assert.match(r.text, /1 valid readings, 0 devices updated, 1 rejected/); // the replay
    const row = await device('geo-1');
    assert.equal(Number(row.Count), 1);
    assert.equal(Number(row.Rejected), 1);
    assert.equal(row.Geo, 'Sydney');
    const kept = await rejectedIn('geo');
    assert.equal(kept.length, 1);
    assert.match(kept[0].Reason, /geo is longer than 1024 characters/);
    assert.deepEqual(JSON.parse(kept[0].WholeBody), { temperature: 20, geo });
  });

  test('a geo of exactly 1,024 UTF-16 units (512 emoji) is accepted', async () => {
    const geo = '\u{1F321}'.repeat(512);
    await deliver(h.hostBatch([{ deviceId: 'geo-2', seq: 1, body: { temperature: 20, geo } }], { partition: 'geo2' }), { times: 1 });
    assert.equal((await device('geo-2')).Geo, geo);
    await deliver(h.hostBatch([{ deviceId: 'geo-2', seq: 2, body: { temperature: 20, geo: geo + 'x' } }], { partition: 'geo2' }), { times: 2 });
    assert.equal(Number((await device('geo-2')).Rejected), 1);
  });

  test('a messageId of 129 characters is rejected; 128 are kept', async () => {
    await deliver(h.hostBatch([
      { deviceId: 'mid-1', seq: 1, body: { temperature: 20, messageId: 'm'.repeat(128) } },
      { deviceId: 'mid-1', seq: 2, body: { temperature: 20, messageId: 'm'.repeat(129) } },
    ], { partition: 'mid' }));
    const row = await device('mid-1');
    assert.equal(Number(row.Count), 1);
    assert.equal(Number(row.Rejected), 1);
    assert.equal(row.LastMessageId, 'm'.repeat(128));
    assert.match((await rejectedIn('mid'))[0].Reason, /messageId is longer than 128 bytes/);
  });

  test('a body deviceId of 513 to 1,024 characters is rejected; 512 makes a row', async () => {
    const events = [512, 513, 700, 1024].map((n, i) => ({ seq: 10 + i, body: { deviceId: 'd'.repeat(n), temperature: 20 } }));
    await deliver(h.hostBatch(events, { partition: 'longid' }));
    assert.equal(Number((await device('d'.repeat(512))).Count), 1);
    for (const n of [513, 700, 1024]) assert.equal(await device('d'.repeat(n)), null);
    const kept = await rejectedIn('longid');
    assert.equal(kept.length, 3);
    for (const k of kept) {
      assert.match(k.Reason, /longer than 512 UTF-16 units/);
      assert.equal(k.DeviceId, '');
      assert.ok(JSON.parse(k.WholeBody).deviceId.length > 512);
    }
  });

  test('a device id of 256 emoji (512 units) makes a row; 257 (514 units) is rejected', async () => {
    const ok = '\u{1F600}'.repeat(256), long = '\u{1F600}'.repeat(257);
    await deliver(h.hostBatch([{ deviceId: ok, seq: 1, body: { temperature: 20 } }, { deviceId: long, seq: 2, body: { temperature: 20 } }], { partition: 'emoji' }));
    assert.equal(Number((await device(ok)).Count), 1);
    assert.equal((await rejectedIn('emoji')).length, 1);
  });

  test('14 new devices with 125-character ids full of quotes: one batch, every row, calibrated', async () => {
    const ids = Array.from({ length: 14 }, (_, i) => `q${String(i).padStart(2, '0')}` + "'".repeat(122));
    await h.tableCreate(az, 'Calibration');
    await h.tableUpsert(az, 'Calibration', { PartitionKey: 'Sydney', RowKey: ids[13], TemperatureSlope: 2, 'TemperatureSlope@odata.type': 'Edm.Double' });
    const events = ids.map((id, i) => ({ deviceId: id, seq: 100 + i, body: { temperature: 20 } }));
    await deliver(h.hostBatch(events, { partition: 'quotes' }));
    for (const id of ids) assert.equal(Number((await device(id)).Count), 1, id);
    assert.equal((await device(ids[13])).Celsius, 40);
    assert.equal((await device(ids[0])).Celsius, 20);
  });
});

describe('a store that refuses a device row does not stop the batch', () => {
  // Azure refuses a row past 1 MiB or 252 properties with a 400; Azurite does not check those
  // limits, so a proxy in front of it answers that 400 for the marked writes (test double for
  // Azure only). Writes holding Geo 'refuse-values' are refused; with 'refuse-all' every write
  // of that device is.
  let proxy, h2;
  before(async () => {
    proxy = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        const url = decodeURIComponent(req.url);
        const refuse = (/DeviceState/.test(req.url) && req.method !== 'GET' &&
          (text.includes('refuse-values') || text.includes('refuse-all-dev') || url.includes('refuse-all-dev'))) ||
          (/Calibration\(\)/.test(req.url) && url.includes('cal-refused'));
        // in a transaction ($batch), Azure names the refused operation by its index
        const refusedOp = req.method === 'POST' && req.url.includes('$batch')
          ? batchOps(text).findIndex((op) => /DeviceState/.test(op.url) &&
            (op.text.includes('refuse-values') || op.text.includes('refuse-all-dev') || op.url.includes('refuse-all-dev')))
          : -1;
        if (refusedOp >= 0) {
          batchFailure(res, refusedOp, 400, 'EntityTooLarge', 'The entity is larger than the maximum allowed size (1MB).');
          return;
        }
        if (refuse) {
          res.writeHead(400, { 'x-ms-error-code': 'EntityTooLarge', 'Content-Type': 'application/json' });
          res.end('{"odata.error":{"code":"EntityTooLarge"}}');
          return;
        }
        const up = http.request({ host: '127.0.0.1', port: az.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
          res.writeHead(ur.statusCode, ur.headers);
          ur.pipe(res);
        });
        up.on('error', () => { res.writeHead(502); res.end(); });
        up.end(body);
      });
    });
    await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
    const cs = az.connectionString.replace(/TableEndpoint=http:\/\/127\.0\.0\.1:\d+/, `TableEndpoint=http://127.0.0.1:${proxy.address().port}`);
    assert.notEqual(cs, az.connectionString, 'the proxy is in the connection string');
    h2 = await h.startHandler({ StorageConnectionString: cs, PartitionKey: 'Sydney', BackoffBaseMs: '1', BackoffCapMs: '2' });
  });
  after(async () => {
    await h2?.stop();
    await new Promise((r) => proxy?.close(r));
  });

  test('the refused readings are rejected with the store\'s reason; the row still advances', async () => {
    const body = h.hostBatch([
      { deviceId: 'refused-1', seq: 1, body: { temperature: 20, geo: 'refuse-values' } },
      { deviceId: 'refused-1', seq: 2, body: { temperature: 21, geo: 'refuse-values' } },
      { deviceId: 'fine-1', seq: 3, body: { temperature: 22 } },
    ], { partition: 'refused' });
    await deliver(body, { url: h2.url });
    const row = await device('refused-1');
    assert.equal(Number(row.Count), 0);
    assert.equal(Number(row.Rejected), 2);
    assert.equal(Number((await device('fine-1')).Count), 1);
    const kept = await rejectedIn('refused');
    assert.equal(kept.length, 2);
    for (const k of kept) assert.match(k.Reason, /Table Storage refuses the device's row: .*400 EntityTooLarge/);
    assert.match(h2.logs.text, /device 'refused-1': .*400 EntityTooLarge; its 2 reading\(s\) are rejected/);
  });

  test('a calibration query the store refuses: only that device\'s readings are rejected', async () => {
    const body = h.hostBatch([
      { deviceId: 'cal-refused', seq: 1, body: { temperature: 20 } },
      { deviceId: 'cal-fine', seq: 2, body: { temperature: 20 } },
    ], { partition: 'calref' });
    await deliver(body, { url: h2.url });
    assert.equal(Number((await device('cal-refused')).Rejected), 1);
    assert.equal(Number((await device('cal-refused')).Count), 0);
    assert.equal(Number((await device('cal-fine')).Count), 1);
    const kept = await rejectedIn('calref');
    assert.equal(kept.length, 1);
    assert.match(kept[0].Reason, /calibration cannot be read: .*400/);
  });

  test('a row that cannot be written at all: the readings are kept, the batch answers 200', async () => {
    const body = h.hostBatch([
      { deviceId: 'refuse-all-dev', seq: 1, body: { temperature: 20 } },
      { deviceId: 'fine-2', seq: 2, body: { temperature: 22 } },
    ], { partition: 'refall' });
    await deliver(body, { url: h2.url });
    assert.equal(await device('refuse-all-dev'), null);
    assert.equal(Number((await device('fine-2')).Count), 1);
    const kept = await rejectedIn('refall');
    assert.equal(kept.length, 1);
    assert.match(kept[0].Reason, /refuses the device's row/);
  });
});

describe('an envelope that cannot be read is quarantined whole', () => {
  let bigHandler; // the default body limit
  before(async () => { bigHandler = await h.startHandler(h.handlerEnv(az)); });
  after(async () => { await bigHandler?.stop(); });
  const good = (seq) => h.hostBatch([{ deviceId: 'bad-1', seq, body: { temperature: 20 } }], { partition: 'env' });
  const cases = [
    ['malformed JSON', '{"Data": {"events": [', /not valid JSON/],
    ['a JSON array', '[1,2,3]', /no 'Data'/],
    ['a missing Data', JSON.stringify({ Metadata: good(1).Metadata }), /no 'Data'/],
    ['Data of the wrong type', JSON.stringify({ Data: 'events' }), /no 'Data'/],
    ['events of the wrong type', JSON.stringify({ Data: { events: 42 } }), /must be an array/],
    ['a string that holds no array', JSON.stringify({ Data: { events: '{"a":1}' } }), /must be an array/],
    ['metadata arrays of another length', JSON.stringify({ ...good(2), Metadata: { ...good(2).Metadata, SequenceNumberArray: '[1,2,3]' } }), /one entry per event/],
    ['sequence numbers of the wrong type', JSON.stringify({ ...good(3), Metadata: { ...good(3).Metadata, SequenceNumberArray: '[{"n":1}]' } }), /must hold integers/],
    ['a PartitionId of the wrong type', JSON.stringify({ ...good(4), Metadata: { ...good(4).Metadata, TriggerPartitionContext: { PartitionId: [1] } } }), /PartitionId/],
  ];
  for (const [name, body, reason] of cases) {
    test(`${name}: 200 on every delivery, kept whole with its reason, no device touched`, async () => {
      const before = JSON.stringify(await h.tableAll(az, 'DeviceState'));
      const r = await deliver(body, { raw: true });
      const q = await quarantined(quarantineId(r));
      assert.match(q.header.Reason, /the envelope cannot be read/);
      assert.match(q.header.Reason, reason);
      assert.equal(q.bytes.toString('utf8'), body);
      assert.equal(Number(q.header.Bytes), Buffer.byteLength(body));
      assert.equal(JSON.stringify(await h.tableAll(az, 'DeviceState')), before);
      assert.match(handler.logs.text, /EnvironmentEventTrigger: batch quarantined as/);
    });
  }

  test('a large unreadable envelope is kept whole across chunk rows of 512 KiB', async () => {
    // 1.2 MB of ASCII, 2-, 3- and 4-byte UTF-8, cut off before its end (so not JSON)
    const text = JSON.stringify({ Data: { events: JSON.stringify(['x'.repeat(600000), '\u00ff\u4e2d\u{1F600}'.repeat(60000)]) } }).slice(0, -6);
    const r = await deliver(text, { raw: true, times: 2, url: bigHandler.url });
    const q = await quarantined(quarantineId(r));
    assert.equal(q.chunks, Math.ceil(Buffer.byteLength(text) / (512 * 1024)));
    assert.ok(q.chunks >= 3);
    assert.ok(q.bytes.equals(Buffer.from(text, 'utf8')), 'the bytes come back unchanged');
    assert.equal(Number(q.header.Chunks), q.chunks);
  });

  test('the partition and sequence range are kept when the metadata can be read', async () => {
    const doc = h.hostBatch([{ deviceId: 'x', seq: 41, body: {} }, { deviceId: 'x', seq: 43, body: {} }], { partition: '7' });
    doc.Metadata.EnqueuedTimeUtcArray = '["2026-11-27T08:00:00"]'; // one entry for two events
    const r = await deliver(doc, { times: 2 });
    const q = await quarantined(quarantineId(r));
    assert.equal(q.header.EventHubPartition, '7');
    assert.equal(Number(q.header.SequenceFirst), 41);
    assert.equal(Number(q.header.SequenceLast), 43);
    assert.ok(q.header.InvocationId);
  });

  test('a batch without sequence numbers is quarantined, not counted on every delivery', async () => {
    const doc = h.hostBatch([{ deviceId: 'noseq-1', body: { temperature: 20 } }], { partition: 'noseq' });
    const r = await deliver(doc);
    const q = await quarantined(quarantineId(r));
    assert.match(q.header.Reason, /without sequence numbers/);
    assert.equal(JSON.parse(q.bytes.toString('utf8')).Metadata.TriggerPartitionContext.PartitionId, 'noseq');
    assert.equal(await device('noseq-1'), null);
    // a re-delivery differs in sys.UtcNow / sys.RandGuid only: the same quarantine rows
    const again = await deliver({ ...doc, Metadata: { ...doc.Metadata, sys: { ...doc.Metadata.sys, RandGuid: 'other', UtcNow: '2030-01-01T00:00:00Z' } } }, { times: 1 });
    assert.equal(quarantineId(again), quarantineId(r));
    // one event of several without its number: the same
    const some = h.hostBatch([{ deviceId: 'noseq-2', seq: 5, body: { temperature: 20 } }, { deviceId: 'noseq-2', body: { temperature: 20 } }], { partition: 'noseq' });
    await deliver(some);
    assert.equal(await device('noseq-2'), null);
  });

  test('a batch without a partition is quarantined, not counted on every delivery', async () => {
    const doc = h.hostBatch([{ deviceId: 'nopart-1', seq: 1, body: { temperature: 20 } }]);
    delete doc.Metadata.TriggerPartitionContext;
    delete doc.Metadata.PartitionContext;
    const r = await deliver(doc);
    const q = await quarantined(quarantineId(r));
    assert.match(q.header.Reason, /no partition id/);
    assert.equal(Number(q.header.SequenceFirst), 1);
    assert.equal(await device('nopart-1'), null);
  });

  test('an empty batch needs neither: 200, nothing kept', async () => {
    const r = await deliver(h.hostBatch([], { partition: '' }), { times: 1 });
    assert.match(r.text, /0 events/);
  });
});

describe('a body over MaxRequestBodyBytes', () => {
  test('the default limit holds the largest batch host.json lets the host send', () => {
    // 256 KiB: IoT Hub's device-to-cloud message limit; 7: a raw control character escaped twice
    // (README, "Request body limit"). If host.json's batch grows, MaxRequestBodyBytes must too.
    const hostJson = JSON.parse(readFileSync(path.join(h.ROOT, 'host.json'), 'utf8'));
    const worst = hostJson.extensions.eventHubs.maxEventBatchSize * 256 * 1024 * 7;
    assert.ok(worst + 8 * 1024 * 1024 <= 192 * 1024 * 1024, `worst case ${worst} bytes`);
  });

  test('is quarantined whole (spooled to disk) and answered 200 on every delivery', async () => {
    const events = Array.from({ length: 1500 }, (_, i) => ({ deviceId: `big-${i}`, seq: i, body: { temperature: 20, pad: 'x'.repeat(40) } }));
    const text = JSON.stringify(h.hostBatch(events, { partition: 'big' }));
    assert.ok(text.length > LIMIT * 2, String(text.length));
    const r = await deliver(text, { raw: true, times: 2 });
    const q = await quarantined(quarantineId(r));
    assert.match(q.header.Reason, new RegExp(`request body of ${text.length} bytes is over MaxRequestBodyBytes \\(${LIMIT}\\)`));
    assert.ok(q.bytes.equals(Buffer.from(text, 'utf8')), 'the body comes back unchanged');
    assert.equal(await device('big-0'), null);
    // the handler still serves the next request
    await deliver(h.hostBatch([{ deviceId: 'after-big', seq: 1, body: { temperature: 20 } }], { partition: 'big2' }), { times: 1 });
  });

  test('the same without Content-Length (chunked)', async () => {
    const text = JSON.stringify(h.hostBatch(Array.from({ length: 600 }, (_, i) => ({ deviceId: `chunk-${i}`, seq: i, body: { temperature: 20, pad: 'y'.repeat(40) } })), { partition: 'chunked' }));
    const stream = new ReadableStream({
      start(c) { for (let i = 0; i < text.length; i += 16384) c.enqueue(new TextEncoder().encode(text.slice(i, i + 16384))); c.close(); },
    });
    const res = await fetch(`${handler.url}/EnvironmentEventTrigger`, { method: 'POST', body: stream, duplex: 'half', headers: { 'Content-Type': 'application/json' } });
    const answer = await res.text();
    assert.equal(res.status, 200, answer);
    const q = await quarantined(quarantineId({ text: answer }));
    assert.ok(q.bytes.equals(Buffer.from(text, 'utf8')), 'the body comes back unchanged');
  });

  test('other functions still answer 413', async () => {
    const r = await fetch(`${handler.url}/api/sendsignalrmessage`, { method: 'POST', body: 'x'.repeat(LIMIT + 1) });
    assert.equal(r.status, 413);
  });
});

describe('NUL characters', () => {
  test('\\u0000 in a field the handler never reads is accepted', async () => {
    const body = h.hostBatch([{ deviceId: 'nul-ok', seq: 1, body: { temperature: 20, note: 'a\u0000b' } }], { partition: 'nulok' });
    await deliver(body);
    const row = await device('nul-ok');
    assert.equal(Number(row.Count), 1);
    assert.equal(Number(row.Rejected), 0);
  });

  test('\\u0000 in a used string rejects that reading only, with that reason', async () => {
    const body = h.hostBatch([
      { deviceId: 'nul-1', seq: 1, body: '\u0000x' },
      { deviceId: 'nul-1', seq: 2, body: { temperature: 20 } },
      { deviceId: 'nul\u0000evil', seq: 3, body: { temperature: 21 } },
      { deviceId: 'nul-1', seq: 4, body: { temperature: 22, geo: 'a\u0000b' } },
      { deviceId: 'nul-1', seq: 5, body: { temperature: 22, messageId: 'a\u0000b' } },
    ], { partition: 'nul' });
    await deliver(body);
    const row = await device('nul-1');
    assert.equal(Number(row.Count), 1);
    assert.equal(Number(row.Rejected), 3);
    assert.equal(await device('nul'), null);
    const kept = await rejectedIn('nul');
    assert.equal(kept.length, 4);
    assert.ok(kept.some((k) => /not JSON/.test(k.Reason) && k.Body.includes('\\u0000x')));
    assert.ok(kept.some((k) => /forbids/.test(k.Reason)));
    assert.ok(kept.some((k) => /geo must be a string without NUL/.test(k.Reason)));
    assert.ok(kept.some((k) => /messageId must be a string without NUL/.test(k.Reason)));
    // the same in the unwrapped form, with a NUL inside a body's deviceId
    const unwrapped = h.hostBatch([{ seq: 6, body: {} }], { partition: 'nul', wrap: false });
    unwrapped.Data.events = [{ deviceId: 'b\u0000c', temperature: 20 }];
    await deliver(unwrapped);
    assert.equal(await device('b'), null);
  });
});

test('a wrong method and an unknown function get 405 and 404', async () => {
  const r = await fetch(`${handler.url}/EnvironmentEventTrigger`);
  assert.equal(r.status, 405);
  const n = await fetch(`${handler.url}/NoSuchFunction`, { method: 'POST', body: '{}' });
  assert.equal(n.status, 404);
});

test('a rejected reading too large for one row is kept whole through the quarantine table', async () => {
  // 400,000 characters of an unread field plus a bad temperature: the text is past 12 String
  // parts of 32,000 units, so the row names a quarantined copy. (Below the 64 KiB body limit of
  // this handler only as a wrapped event: use a handler with the default limit.)
  const big = await h.startHandler(h.handlerEnv(az));
  try {
    const pad = 'p'.repeat(400000);
    const r = await deliver(h.hostBatch([{ deviceId: 'huge-1', seq: 1, body: { temperature: 500, pad } }], { partition: 'huge' }), { url: big.url, times: 2 });
    assert.match(r.text, /1 rejected/);
    const kept = await rejectedIn('huge');
    assert.equal(kept.length, 1);
    assert.ok(kept[0].BodyQuarantineId);
    assert.deepEqual(JSON.parse(kept[0].WholeBody), { temperature: 500, pad });
    assert.equal(Number((await device('huge-1')).Rejected), 1);
  } finally {
    await big.stop();
  }
});
