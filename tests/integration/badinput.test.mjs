// Integration: bad input gets a clear 4xx and writes nothing (real Azurite).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../lib/harness.mjs';

let az, handler;
before(async () => {
  az = await h.startAzurite();
  handler = await h.startHandler(h.handlerEnv(az, { MaxRequestBodyBytes: '65536' }));
});
after(async () => {
  await handler?.stop();
  await az?.close();
});

async function snapshot() {
  return JSON.stringify([await h.tableAll(az, 'DeviceState'), await h.tableAll(az, 'RejectedTelemetry')]);
}

const good = (seq) => h.hostBatch([{ deviceId: 'bad-1', seq, body: { temperature: 20 } }]);

const cases = [
  ['malformed JSON', '{"Data": {"events": [', 400, /not valid JSON/],
  ['a JSON array', '[1,2,3]', 400, /no 'Data'/],
  ['a missing Data', JSON.stringify({ Metadata: good(1).Metadata }), 400, /no 'Data'/],
  ['Data of the wrong type', JSON.stringify({ Data: 'events' }), 400, /no 'Data'/],
  ['events of the wrong type', JSON.stringify({ Data: { events: 42 } }), 400, /must be an array/],
  ['a string that holds no array', JSON.stringify({ Data: { events: '{"a":1}' } }), 400, /must be an array/],
  ['metadata arrays of another length', JSON.stringify({ ...good(2), Metadata: { ...good(2).Metadata, SequenceNumberArray: '[1,2,3]' } }), 400, /one entry per event/],
  ['sequence numbers of the wrong type', JSON.stringify({ ...good(3), Metadata: { ...good(3).Metadata, SequenceNumberArray: '[{"n":1}]' } }), 400, /must hold integers/],
  ['a PartitionId of the wrong type', JSON.stringify({ ...good(4), Metadata: { ...good(4).Metadata, TriggerPartitionContext: { PartitionId: [1] } } }), 400, /PartitionId/],
];

for (const [name, body, status, message] of cases) {
  test(`${name}: ${status} with a clear message, nothing written`, async () => {
    const before = await snapshot();
    const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', body, { raw: true });
    assert.equal(r.status, status, r.text);
    assert.match(r.json.error, message);
    assert.equal(await snapshot(), before);
  });
}

test('an oversized body: 413 with a clear message, nothing written', async () => {
  const before = await snapshot();
  const events = Array.from({ length: 2000 }, (_, i) => ({ deviceId: `big-${i}`, seq: i, body: { temperature: 20, pad: 'x'.repeat(40) } }));
  const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch(events));
  assert.equal(r.status, 413);
  assert.match(r.json.error, /larger than MaxRequestBodyBytes \(65536 bytes\)/);
  assert.equal(await snapshot(), before);
  // the handler still serves the next request
  const ok = await h.invoke(handler.url, 'EnvironmentEventTrigger', good(10));
  assert.equal(ok.status, 200, ok.text);
});

test('an oversized chunked body (no Content-Length): 413, nothing written', async () => {
  const before = await snapshot();
  const chunk = 'x'.repeat(16384);
  const stream = new ReadableStream({
    start(c) { for (let i = 0; i < 8; i++) c.enqueue(new TextEncoder().encode(chunk)); c.close(); },
  });
  const res = await fetch(`${handler.url}/EnvironmentEventTrigger`, { method: 'POST', body: stream, duplex: 'half', headers: { 'Content-Type': 'application/json' } });
  assert.equal(res.status, 413);
  assert.match((await res.json()).error, /MaxRequestBodyBytes/);
  assert.equal(await snapshot(), before);
});

test('a wrong method and an unknown function get 405 and 404', async () => {
  const r = await fetch(`${handler.url}/EnvironmentEventTrigger`);
  assert.equal(r.status, 405);
  const n = await fetch(`${handler.url}/NoSuchFunction`, { method: 'POST', body: '{}' });
  assert.equal(n.status, 404);
});

test('a NUL character in one event fails that reading only, not the batch', async () => {
  const wrapped = h.hostBatch([
    { deviceId: 'nul-1', seq: 1, body: '\u0000x' },
    { deviceId: 'nul-1', seq: 2, body: { temperature: 20 } },
    { deviceId: 'nul\u0000evil', seq: 3, body: { temperature: 21 } },
  ], { partition: 'nul' });
  const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', wrapped);
  assert.equal(r.status, 200, r.text);
  const row = await h.tableGet(az, 'DeviceState', 'Sydney', 'nul-1');
  assert.equal(Number(row.Count), 1);
  assert.equal(Number(row.Rejected), 1);
  assert.equal(await h.tableGet(az, 'DeviceState', 'Sydney', 'nul'), null);
  const kept = await h.tableAll(az, 'RejectedTelemetry', "EventHubPartition eq 'nul'");
  assert.equal(kept.length, 2);
  assert.ok(kept.some((k) => /not JSON/.test(k.Reason) && k.Body.includes('\\u0000x')));
  assert.ok(kept.some((k) => /forbids/.test(k.Reason)));
  // the same in the unwrapped form, with a NUL inside a body's deviceId
  const unwrapped = h.hostBatch([{ seq: 4, body: { deviceId: 'b\u0000c', temperature: 20 } }], { partition: 'nul', wrap: false });
  unwrapped.Data.events = [{ deviceId: 'b\u0000c', temperature: 20 }];
  const u = await h.invoke(handler.url, 'EnvironmentEventTrigger', unwrapped);
  assert.equal(u.status, 200, u.text);
  assert.equal(await h.tableGet(az, 'DeviceState', 'Sydney', 'b'), null);
});
