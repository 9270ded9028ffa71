// Integration: Table Storage goes away mid-run. The invocation fails (non-2xx, no crash); once
// storage is back and the host replays the batch, every event is counted exactly once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../lib/harness.mjs';

let az, handler;
before(async () => {
  az = await h.startAzurite({ persist: true });
  handler = await h.startHandler(h.handlerEnv(az, { BackoffBaseMs: '5', BackoffCapMs: '50' }));
});
after(async () => {
  await handler?.stop();
  await az?.close();
});

const batch = (seqs) => h.hostBatch(seqs.map((s) => ({ deviceId: `fail-${s % 3}`, seq: s, body: { temperature: 20 + s / 10 } })), { partition: 'f' });

test('storage stopped: the invocation fails; replayed after it is back: counted once', async () => {
  const first = await h.invoke(handler.url, 'EnvironmentEventTrigger', batch([1, 2, 3, 4, 5, 6]));
  assert.equal(first.status, 200, first.text);

  await az.stop();
  const during = batch([7, 8, 9, 10, 11, 12]);
  const failed = await h.invoke(handler.url, 'EnvironmentEventTrigger', during);
  assert.ok(failed.status >= 500, `expected a 5xx, got ${failed.status}`);
  assert.ok(failed.json.error, 'an error message');
  assert.equal(handler.proc.exitCode, null, 'the handler is still running');

  await az.start();
  // the host re-delivers the failed batch, and (at least once) the one before it
  const again = await h.invoke(handler.url, 'EnvironmentEventTrigger', during);
  assert.equal(again.status, 200, again.text);
  const older = await h.invoke(handler.url, 'EnvironmentEventTrigger', batch([1, 2, 3, 4, 5, 6]));
  assert.equal(older.status, 200);
  const rows = await h.tableAll(az, 'DeviceState', "RowKey ge 'fail-' and RowKey lt 'fail.'");
  assert.equal(rows.length, 3);
  for (const row of rows) assert.equal(Number(row.Count), 4, row.RowKey);
  assert.match(rows.find((r) => r.RowKey === 'fail-0').Watermarks, /^[0-9a-f]{16}\/f=12$/);
});

test('a write that fails half way through a batch is completed by the replay, not doubled', async () => {
  // Stop storage while a large batch is being written (BatchConcurrency 1 makes it slow enough):
  // some device rows commit, others do not; the replay completes the rest.
  const slow = await h.startHandler(h.handlerEnv(az, { BatchConcurrency: '1', BackoffAttempts: '2', BackoffBaseMs: '1', BackoffCapMs: '2' }));
  try {
    const events = Array.from({ length: 120 }, (_, i) => ({ deviceId: `half-${i % 40}`, seq: 1000 + i, body: { temperature: 21 } }));
    const body = h.hostBatch(events, { partition: 'half' });
    const pending = h.invoke(slow.url, 'EnvironmentEventTrigger', body);
    for (let i = 0; i < 400; i++) {
      if ((await h.tableAll(az, 'DeviceState', "RowKey ge 'half-' and RowKey lt 'half.'")).length >= 5) break;
      await h.sleep(2);
    }
    await az.stop();
    const r = await pending;
    await az.start();
    if (r.status === 200) {
      // The batch won the race; the replay must still change nothing.
      await h.invoke(slow.url, 'EnvironmentEventTrigger', body);
    } else {
      assert.ok(r.status >= 500);
      const again = await h.invoke(slow.url, 'EnvironmentEventTrigger', body);
      assert.equal(again.status, 200, again.text);
    }
    const rows = await h.tableAll(az, 'DeviceState', "RowKey ge 'half-' and RowKey lt 'half.'");
    assert.equal(rows.length, 40);
    for (const row of rows) assert.equal(Number(row.Count), 3, row.RowKey);
  } finally { await slow.stop(); }
});

test('a table deleted while the handler runs: the invocation fails, the retry creates it again', async () => {
  const ok = await h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch([{ deviceId: 'gone-1', seq: 1, body: { temperature: 20 } }], { partition: 'gone' }));
  assert.equal(ok.status, 200, ok.text);
  const del = await h.tableRequest(az, 'DELETE', "Tables('DeviceState')");
  assert.equal(del.status, 204);
  const batch = h.hostBatch([{ deviceId: 'gone-1', seq: 2, body: { temperature: 21 } }], { partition: 'gone' });
  const failed = await h.invoke(handler.url, 'EnvironmentEventTrigger', batch);
  assert.ok(failed.status >= 500, `${failed.status}`);
  const again = await h.invoke(handler.url, 'EnvironmentEventTrigger', batch);
  assert.equal(again.status, 200, again.text);
  const row = await h.tableGet(az, 'DeviceState', 'Sydney', 'gone-1');
  assert.equal(Number(row.Count), 1); // the table is new: only the retried batch is in it
  assert.equal(row.Celsius, 21);
});

// The same for each table the handler writes besides DeviceState: the "table is gone" status
// travels from the store's answer to the next invocation's re-creation of the tables, whichever
// path met it (calibration read, rejected reading kept, batch quarantined whole).
const dropTable = async (name) => {
  const del = await h.tableRequest(az, 'DELETE', `Tables('${name}')`);
  assert.equal(del.status, 204, `${name}: ${del.status}`);
};

test('the Calibration table deleted: the invocation fails, the retry creates it again', async () => {
  await dropTable('Calibration');
  // a device the handler has not seen, so its calibration is read from the table
  const batch = h.hostBatch([{ deviceId: 'calgone-1', seq: 1, body: { temperature: 22 } }], { partition: 'calgone' });
  const failed = await h.invoke(handler.url, 'EnvironmentEventTrigger', batch);
  assert.ok(failed.status >= 500, `${failed.status}`);
  assert.match(failed.text, /TableNotFound/);
  const again = await h.invoke(handler.url, 'EnvironmentEventTrigger', batch);
  assert.equal(again.status, 200, again.text);
  assert.equal(Number((await h.tableGet(az, 'DeviceState', 'Sydney', 'calgone-1')).Count), 1);
});

test('the RejectedTelemetry table deleted: the invocation fails, the retry keeps the reading', async () => {
  await dropTable('RejectedTelemetry');
  const batch = h.hostBatch([{ deviceId: 'rejgone-1', seq: 1, body: { temperature: 900 } }], { partition: 'rejgone' });
  const failed = await h.invoke(handler.url, 'EnvironmentEventTrigger', batch);
  assert.ok(failed.status >= 500, `${failed.status}`);
  const again = await h.invoke(handler.url, 'EnvironmentEventTrigger', batch);
  assert.equal(again.status, 200, again.text);
  const rows = await h.tableAll(az, 'RejectedTelemetry', "EventHubPartition eq 'rejgone'");
  assert.equal(rows.length, 1);
  assert.equal(rows[0].DeviceId, 'rejgone-1');
});

test('the quarantine table deleted: the invocation fails, the retry quarantines the batch', async () => {
  await dropTable('QuarantinedBatches');
  const body = '{"Data": {"events": 42}, "Metadata": {}}';
  const failed = await h.invoke(handler.url, 'EnvironmentEventTrigger', body, { raw: true });
  assert.ok(failed.status >= 500, `${failed.status}`);
  const again = await h.invoke(handler.url, 'EnvironmentEventTrigger', body, { raw: true });
  assert.equal(again.status, 200, again.text);
  const m = /quarantined as (\S+) in QuarantinedBatches/.exec(again.text);
  assert.ok(m, again.text.slice(0, 300));
  const rows = await h.tableAll(az, 'QuarantinedBatches', `PartitionKey eq '${m[1]}'`);
  assert.ok(rows.some((r) => r.RowKey === 'batch'), 'the header row');
});
