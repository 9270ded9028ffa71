// Integration: the EnvironmentEventTrigger pipeline through the handler's HTTP endpoint, against a
// real Azurite started here on a free port.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as h from '../lib/harness.mjs';

const FIX = path.join(h.ROOT, 'tests/fixtures/host');
let az, handler;
let seq = 1000;
const nextSeq = () => ++seq;

before(async () => {
  az = await h.startAzurite();
  handler = await h.startHandler(h.handlerEnv(az, { CalibrationCacheSeconds: '1' }));
});
after(async () => {
  await handler?.stop();
  await az?.close();
});

const device = (id) => h.tableGet(az, 'DeviceState', 'Sydney', id);
const post = (events, opts) => h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch(events, opts));

describe('EnvironmentEventTrigger', () => {
  test('readiness probe answers', async () => {
    const r = await fetch(`${handler.url}/`);
    assert.equal(r.status, 200);
  });

  test('a batch lands in DeviceState with the right values and counts', async () => {
    const body = readFileSync(path.join(FIX, 'eventhub-datatype-string.json'), 'utf8');
    const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', body, { raw: true });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.Outputs, {});
    assert.equal(r.json.ReturnValue, null);
    assert.match(r.json.Logs.join('\n'), /3 events, 3 valid readings, 2 devices updated, 0 rejected/);
    const kitchen = await device('pi-kitchen');
    assert.equal(Number(kitchen.Count), 2);
    assert.equal(kitchen.Celsius, 25.01);
    assert.equal(kitchen.Humidity, 70.8);
    assert.equal(kitchen.LastSeen, '2026-11-27T08:00:02.521Z');
    const garage = await device('pi-garage');
    assert.equal(Number(garage.Count), 1);
    assert.equal(garage.hPa, 1012.3);
    // the body's shared "Raspberry Pi Web Client" id is not a device: the system property wins
    assert.equal(await device('Raspberry Pi Web Client'), null);
  });

  test('every host encoding is accepted', async () => {
    for (const f of ['eventhub-datatype-binary.json', 'eventhub-no-datatype.json', 'eventhub-unwrapped.json']) {
      const doc = JSON.parse(readFileSync(path.join(FIX, f), 'utf8'));
      // a partition of its own, so that these events are new
      doc.Metadata.TriggerPartitionContext.PartitionId = `enc-${f.length}-${f[9]}`;
      doc.Metadata.PartitionContext.PartitionId = doc.Metadata.TriggerPartitionContext.PartitionId;
      const sys = (typeof doc.Metadata.SystemPropertiesArray === 'string')
        ? JSON.parse(doc.Metadata.SystemPropertiesArray) : doc.Metadata.SystemPropertiesArray;
      const ids = sys.map((s, i) => ({ ...s, 'iothub-connection-device-id': `enc-${f}-${i}` }));
      doc.Metadata.SystemPropertiesArray = typeof doc.Metadata.SystemPropertiesArray === 'string' ? JSON.stringify(ids) : ids;
      const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', doc);
      assert.equal(r.status, 200, `${f}: ${r.text}`);
      const row = await device(`enc-${f}-0`);
      assert.ok(row, f);
      assert.equal(row.Celsius, 24.93, f);
      assert.equal(Number(row.Count), 1, f);
    }
  });

  test('the host\'s batch of plain Event Hubs events: an array body and a body that is not JSON', async () => {
    const body = readFileSync(path.join(FIX, 'eventhub-array-body-and-garbage.json'), 'utf8');
    for (let i = 0; i < 2; i++) {
      const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', body, { raw: true });
      assert.equal(r.status, 200, r.text);
    }
    const row = await device('enviro-1');
    assert.equal(Number(row.Count), 2);
    assert.equal(row.Celsius, 22.6);
    assert.equal(row.LastMessageId, '100');
    const kept = await h.tableAll(az, 'RejectedTelemetry', "EventHubPartition eq '1' and SequenceNumber eq 1018L");
    assert.equal(kept.length, 1);
    assert.equal(kept[0].Body, 'not json');
  });

  test('a replayed batch changes nothing', async () => {
    const events = [
      { deviceId: 'replay-1', seq: nextSeq(), body: { temperature: 21.5, humidity: 60 } },
      { deviceId: 'replay-1', seq: nextSeq(), body: { temperature: 22.5, humidity: 61 } },
      { deviceId: 'replay-2', seq: nextSeq(), body: { temperature: 500 } },
    ];
    assert.equal((await post(events, { partition: 'r' })).status, 200);
    const before1 = await device('replay-1');
    const before2 = await device('replay-2');
    assert.equal(Number(before1.Count), 2);
    assert.equal(Number(before2.Rejected), 1);
    const again = await post(events, { partition: 'r' });
    assert.equal(again.status, 200);
    assert.match(again.json.Logs.join('\n'), /0 devices updated, 1 rejected, 3 replayed/);
    assert.deepEqual(await device('replay-1'), before1); // same Timestamp: not even rewritten
    assert.deepEqual(await device('replay-2'), before2);
    // a second handler process (no cache) replaying it changes nothing either
    const other = await h.startHandler(h.handlerEnv(az));
    try {
      assert.equal((await h.invoke(other.url, 'EnvironmentEventTrigger', h.hostBatch(events, { partition: 'r' }))).status, 200);
    } finally { await other.stop(); }
    assert.deepEqual(await device('replay-1'), before1);
    // partly new: only the new event counts
    const more = [...events, { deviceId: 'replay-1', seq: nextSeq(), body: { temperature: 23 } }];
    assert.equal((await post(more, { partition: 'r' })).status, 200);
    const after1 = await device('replay-1');
    assert.equal(Number(after1.Count), 3);
    assert.equal(after1.Celsius, 23);
    assert.equal(after1.Humidity, 61); // absent from the last reading: kept
  });

  test('calibration rows change the stored values, and a change is picked up after expiry', async () => {
    await h.tableUpsert(az, 'Calibration', {
      PartitionKey: 'Sydney', RowKey: 'cal-1',
      TemperatureSlope: 2, 'TemperatureSlope@odata.type': 'Edm.Double',
      TemperatureYIntercept: -10, 'TemperatureYIntercept@odata.type': 'Edm.Double',
      HumiditySlope: 0.5, 'HumiditySlope@odata.type': 'Edm.Double',
      PressureYIntercept: 3, 'PressureYIntercept@odata.type': 'Edm.Double',
    });
    const r = await post([{ deviceId: 'cal-1', seq: nextSeq(), body: { temperature: 20, humidity: 80, pressure: 1000 } }], { partition: 'c' });
    assert.equal(r.status, 200, r.text);
    let row = await device('cal-1');
    assert.equal(row.Celsius, 30);
    assert.equal(row.Humidity, 40);
    assert.equal(row.hPa, 1003);
    // a reading that is valid raw but not after calibration is rejected
    await post([{ deviceId: 'cal-1', seq: nextSeq(), body: { temperature: 50 } }], { partition: 'c' });
    row = await device('cal-1');
    assert.equal(Number(row.Rejected), 1);
    assert.equal(row.Celsius, 30);
    // change the calibration; the cache lifetime is 1 s in this test
    await h.tableUpsert(az, 'Calibration', { PartitionKey: 'Sydney', RowKey: 'cal-1', TemperatureSlope: 1, 'TemperatureSlope@odata.type': 'Edm.Double', TemperatureYIntercept: 1, 'TemperatureYIntercept@odata.type': 'Edm.Double' });
    await h.sleep(1200);
    await post([{ deviceId: 'cal-1', seq: nextSeq(), body: { temperature: 20 } }], { partition: 'c' });
    row = await device('cal-1');
    assert.equal(row.Celsius, 21);
    // a device without a calibration row keeps raw values
    await post([{ deviceId: 'cal-none', seq: nextSeq(), body: { temperature: 20 } }], { partition: 'c' });
    assert.equal((await device('cal-none')).Celsius, 20);
  });

  test('rejected readings are kept with their reason and counted on the device', async () => {
    const s = [nextSeq(), nextSeq(), nextSeq(), nextSeq(), nextSeq(), nextSeq()];
    const r = await post([
      { deviceId: 'rej-1', seq: s[0], body: { temperature: 500 } },
      { deviceId: 'rej-1', seq: s[1], body: 'not json at all' },
      { deviceId: 'rej-1', seq: s[2], body: { temperature: 'NaN' } },
      { deviceId: 'rej-1', seq: s[3], body: { light: 4 } },
      { deviceId: 'rej-1', seq: s[4], body: { temperature: 22, humidity: 65 } },
      { seq: s[5], body: { temperature: 22 } }, // no device id anywhere
    ], { partition: 'rej' });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.Logs.join('\n'), /5 rejected/);
    const row = await device('rej-1');
    assert.equal(Number(row.Count), 1);
    assert.equal(Number(row.Rejected), 4);
    const kept = await h.tableAll(az, 'RejectedTelemetry', "EventHubPartition eq 'rej'");
    assert.equal(kept.length, 5);
    const reasons = kept.map((k) => k.Reason).join('\n');
    assert.match(reasons, /temperature 500 is outside -40\.\.80/);
    assert.match(reasons, /not JSON/);
    assert.match(reasons, /temperature must be a number/);
    assert.match(reasons, /no temperature, humidity or pressure/);
    assert.match(reasons, /no device id/);
    assert.ok(kept.some((k) => k.Body === 'not json at all'));
    assert.ok(kept.every((k) => k.SequenceNumber !== undefined));
    assert.match(handler.logs.text, /rejected reading: device 'rej-1'/);
  });

  test('the device id comes from system properties, the body id only without them', async () => {
    await post([
      { deviceId: 'sys-dev', seq: nextSeq(), body: { deviceId: 'body-dev', temperature: 20 } },
      { seq: nextSeq(), body: { deviceId: 'body-only', temperature: 21 } },
      { seq: nextSeq(), body: { DeviceId: 'body-only-2', temperature: 22 } },
    ], { partition: 'sys' });
    assert.equal(Number((await device('sys-dev')).Count), 1);
    assert.equal(await device('body-dev'), null);
    assert.equal((await device('body-only')).Celsius, 21);
    assert.equal((await device('body-only-2')).Celsius, 22);
  });

  test('keys with quotes and non-ASCII work; forbidden characters are rejected cleanly', async () => {
    const good = ["O'Brien's sensor", '温度计-1', 'café "quoted" & spaced', "''"];
    const bad = ['a/b', 'a#b', 'a?b', 'a\\b', 'tab\there'];
    const events = [...good, ...bad].map((id) => ({ deviceId: id, seq: nextSeq(), body: { temperature: 20.5 } }));
    const r = await post(events, { partition: 'keys' });
    assert.equal(r.status, 200, r.text);
    for (const id of good) {
      const row = await device(id);
      assert.ok(row, id);
      assert.equal(row.RowKey, id);
      assert.equal(Number(row.Count), 1, id);
    }
    // a second batch goes through the merge path (escaped keys in the URL and the signature)
    const r2 = await post(good.map((id) => ({ deviceId: id, seq: nextSeq(), body: { temperature: 21.5 } })), { partition: 'keys' });
    assert.equal(r2.status, 200, r2.text);
    for (const id of good) assert.equal(Number((await device(id)).Count), 2, id);
    const all = await h.tableAll(az, 'DeviceState');
    for (const id of bad) assert.ok(!all.some((row) => row.RowKey === id), id);
    const kept = await h.tableAll(az, 'RejectedTelemetry', "EventHubPartition eq 'keys'");
    assert.equal(kept.length, bad.length);
    assert.ok(kept.every((k) => /forbids/.test(k.Reason)));
  });

  test('doubles stay doubles and counts are Int64', async () => {
    await post([{ deviceId: 'types-1', seq: nextSeq(), body: { temperature: 20.0, humidity: 50, pressure: 1000 } }], { partition: 't' });
    const r = await h.tableRequest(az, 'GET', h.entityPath('DeviceState', 'Sydney', 'types-1'), { headers: { Accept: 'application/json;odata=fullmetadata' } });
    // Azurite writes a Double as 20.0 (an Int32 would be 20) and annotates Int64
    assert.match(r.text, /"Celsius":20\.0[,}]/);
    assert.match(r.text, /"Humidity":50\.0[,}]/);
    assert.equal(r.json['Count@odata.type'], 'Edm.Int64');
  });
});

test('connections to Table Storage are reused, not opened per request', async () => {
  const proxy = await h.startCountingProxy(az.port);
  const viaProxy = az.connectionString.replace(`127.0.0.1:${az.port}`, `127.0.0.1:${proxy.port}`);
  const x = await h.startHandler({ StorageConnectionString: viaProxy, PartitionKey: 'Sydney', BatchConcurrency: '1' });
  try {
    for (let b = 0; b < 20; b++) {
      const r = await h.invoke(x.url, 'EnvironmentEventTrigger', h.hostBatch([{ deviceId: 'reuse-1', seq: b + 1, body: { temperature: 20 + b / 10 } }], { partition: 'reuse' }));
      assert.equal(r.status, 200, r.text);
    }
    // 3 table creations + 1 calibration query + 20 writes over one kept-alive connection
    assert.ok(proxy.connections <= 2, `${proxy.connections} connections for 24 requests`);
    assert.equal(Number((await h.tableGet(az, 'DeviceState', 'Sydney', 'reuse-1')).Count), 20);
  } finally {
    await x.stop();
    await proxy.close();
  }
});

test('a SAS connection string works (account SAS made here with Node crypto)', async () => {
  const { createHmac } = await import('node:crypto');
  const expiry = new Date(Date.now() + 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
  const fields = { sv: '2019-02-02', ss: 't', srt: 'sco', sp: 'rwdlacu', se: expiry, spr: 'https,http' };
  const sts = [h.DEV_ACCOUNT, fields.sp, fields.ss, fields.srt, '', fields.se, '', fields.spr, fields.sv, ''].join('\n');
  const sig = createHmac('sha256', Buffer.from(h.DEV_KEY, 'base64')).update(sts, 'utf8').digest('base64');
  const sas = new URLSearchParams({ ...fields, sig }).toString();
  const x = await h.startHandler({ StorageConnectionString: `TableEndpoint=${az.endpoint};SharedAccessSignature=${sas}`, PartitionKey: 'Sydney' });
  try {
    const r = await h.invoke(x.url, 'EnvironmentEventTrigger', h.hostBatch([{ deviceId: 'sas-1', seq: 1, body: { temperature: 19.5 } }], { partition: 'sas' }));
    assert.equal(r.status, 200, r.text);
    const r2 = await h.invoke(x.url, 'EnvironmentEventTrigger', h.hostBatch([{ deviceId: 'sas-1', seq: 2, body: { temperature: 19.75 } }], { partition: 'sas' }));
    assert.equal(r2.status, 200, r2.text);
    const row = await h.tableGet(az, 'DeviceState', 'Sydney', 'sas-1');
    assert.equal(Number(row.Count), 2);
    assert.equal(row.Celsius, 19.75);
  } finally { await x.stop(); }
  // a SAS with a wrong signature is refused by storage: the invocation fails cleanly
  const bad = await h.startHandler({ StorageConnectionString: `TableEndpoint=${az.endpoint};SharedAccessSignature=${sas.replace(/sig=[^&]+/, 'sig=AAAA')}`, PartitionKey: 'Sydney' });
  try {
    const r = await h.invoke(bad.url, 'EnvironmentEventTrigger', h.hostBatch([{ deviceId: 'sas-2', seq: 1, body: { temperature: 19.5 } }], { partition: 'sas' }));
    assert.equal(r.status, 500);
    assert.match(r.json.error, /HTTP 403/);
  } finally { await bad.stop(); }
});
