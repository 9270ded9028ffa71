// Integration (issue 11): a batch's DeviceState rows go to storage in entity group transactions,
// against a real Azurite. A stale etag inside a transaction costs a read of that row only; a
// value the store refuses (Azure's 400, which Azurite does not give: a proxy stands in for Azure
// there, tests/lib/batchproxy.mjs) leaves the other rows committed; a batch of 250 devices spans
// three transactions, and a failure of the second is completed by the host's replay (played by
// this test, as Event Hubs cannot run here) without counting anything twice.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { batchOps, batchFailure, startTableProxy } from '../lib/batchproxy.mjs';
import * as h from '../lib/harness.mjs';

let az;
before(async () => { az = await h.startAzurite(); });
after(async () => { await az?.close(); });

const row = (id) => h.tableGet(az, 'DeviceState', 'Sydney', id);
const count = async (id) => Number((await row(id))?.Count ?? 0);
// These tests count the DeviceState calls; the history table's own transactions (on by default)
// are counted and tested in history.test.mjs, so history is off here.
const env = (extra = {}) => h.handlerEnv(az, { BackoffBaseMs: '1', BackoffCapMs: '5', HistoryEnabled: '0', ...extra });
const post = (url, events, partition) => h.invoke(url, 'EnvironmentEventTrigger', h.hostBatch(events, { partition }));
let seq = 1;
const batchOf = (ids, extra = {}) => ids.map((deviceId) => ({ deviceId, seq: seq++, body: { temperature: 21, ...extra[deviceId] } }));

const trips = (hd) => h.tableTrips(hd);

describe('optimistic concurrency inside a transaction', () => {
  let a, b;
  before(async () => {
    a = await h.startHandler(env());
    b = await h.startHandler(env());
  });
  after(async () => { await a?.stop(); await b?.stop(); });

  test('one row written by another process: one refused transaction, one read of that row, one commit', async () => {
    const ids = ['tx-s-0', 'tx-s-1', 'tx-s-2', 'tx-s-3', 'tx-s-4'];
    assert.equal((await post(a.url, batchOf(ids), 'sa')).status, 200);
    for (const id of ids) assert.equal(await count(id), 1);
    // another instance (its own partition) writes tx-s-2: a's etag for it is now stale
    assert.equal((await post(b.url, batchOf(['tx-s-2']), 'sb')).status, 200);
    const t0 = await trips(a);
    const r = await post(a.url, batchOf(ids), 'sa');
    assert.equal(r.status, 200, r.text);
    const spent = (await trips(a)) - t0;
    assert.equal(spent, 3, 'the refused transaction, a read of tx-s-2 only, the transaction again');
    for (const id of ids) assert.equal(await count(id), id === 'tx-s-2' ? 3 : 2, id);
    // and the next batch is one call again: the etags answered by the transaction are right
    const t1 = await trips(a);
    assert.equal((await post(a.url, batchOf(ids), 'sa')).status, 200);
    assert.equal((await trips(a)) - t1, 1);
    for (const id of ids) assert.equal(await count(id), id === 'tx-s-2' ? 4 : 3, id);
  });

  test('every row written by another process: the rows are read, counts exact', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `tx-m-${i}`);
    assert.equal((await post(a.url, batchOf(ids), 'ma')).status, 200);
    assert.equal((await post(b.url, batchOf(ids), 'mb')).status, 200);
    const t0 = await trips(a);
    assert.equal((await post(a.url, batchOf(ids), 'ma')).status, 200);
    // two refused transactions show memory is stale; then every row is read once
    assert.ok((await trips(a)) - t0 <= 2 + ids.length + 1);
    for (const id of ids) assert.equal(await count(id), 3, id);
    // replays of all three batches change nothing
    seq -= 30;
    assert.equal((await post(a.url, batchOf(ids), 'ma')).status, 200);
    assert.equal((await post(b.url, batchOf(ids), 'mb')).status, 200);
    assert.equal((await post(a.url, batchOf(ids), 'ma')).status, 200);
    for (const id of ids) assert.equal(await count(id), 3, id);
  });
});

describe('through a proxy standing in for Azure', () => {
  let proxy, hd, mode = null, batches = [];
  before(async () => {
    proxy = await startTableProxy(az, (req, body, res, forward) => {
      if (!(req.method === 'POST' && req.url.includes('$batch'))) return false;
      const ops = batchOps(body.toString('utf8'));
      const device = ops.some((op) => /DeviceState/.test(op.url));
      if (device) batches.push(ops.length);
      if (device && mode === 'refuse') {
        // Azure refuses a value Azurite takes (e.g. a row past 1 MiB): 400 naming the operation
        const i = ops.findIndex((op) => op.text.includes('refuse-me'));
        if (i >= 0) {
          batchFailure(res, i, 400, 'EntityTooLarge', 'The entity is larger than the maximum allowed size (1MB).');
          return true;
        }
      }
      if (!device && mode === 'refuse') {
        const i = ops.findIndex((op) => /RejectedTelemetry/.test(op.url) && op.text.includes('refuse-me'));
        if (i >= 0) {
          batchFailure(res, i, 400, 'PropertyValueTooLarge', 'The property value exceeds the maximum allowed size (64KB).');
          return true;
        }
      }
      if (device && mode === 'contended') {
        // another writer wins every time: the first row's etag is always stale (nothing applied)
        batchFailure(res, 0, 412, 'UpdateConditionNotSatisfied', 'The update condition specified in the request was not satisfied.');
        return true;
      }
      if (device && mode === 'drop-second' && batches.length >= 2) {
        // applied by the store, but the answer never comes back (a connection lost); libcurl
        // sends a request again when a reused connection dies before answering, so every
        // transaction after the first is dropped until the handler gives up
        forward(() => { res.socket.destroy(); });
        return true;
      }
      if (device && mode === 'fail-second' && batches.length === 2) {
        res.writeHead(503, { 'Content-Type': 'application/json', 'x-ms-error-code': 'ServerBusy' });
        res.end('{"odata.error":{"code":"ServerBusy","message":{"lang":"en-US","value":"The server is busy."}}}');
        return true;
      }
      return false;
    });
    hd = await h.startHandler(env({ StorageConnectionString: proxy.connectionString }));
  });
  after(async () => { await hd?.stop(); await proxy?.close(); });

  test('an operation refused for its value: the others are committed, its readings rejected', async () => {
    mode = 'refuse';
    batches = [];
    const ids = ['tx-v-0', 'tx-v-1', 'tx-v-2', 'tx-v-3'];
    const r = await post(hd.url, batchOf(ids, { 'tx-v-2': { geo: 'refuse-me' } }), 'val');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(batches, [4, 3], 'the refused transaction, then the three others in one');
    for (const id of ids) assert.equal(await count(id), id === 'tx-v-2' ? 0 : 1, id);
    assert.equal(Number((await row('tx-v-2')).Rejected), 1);
    const kept = (await h.tableAll(az, 'RejectedTelemetry')).filter((k) => k.EventHubPartition === 'val');
    assert.equal(kept.length, 1);
    assert.match(kept[0].Reason, /refuses the device's row: .*400 EntityTooLarge/);
    mode = null;
  });

  test('a rejected reading the store refuses: the other rejected readings are kept, 200', async () => {
    mode = 'refuse';
    const events = [
      { deviceId: 'tx-r-0', seq: seq++, body: { temperature: 999, note: 'keep-1' } },
      { deviceId: 'tx-r-0', seq: seq++, body: { temperature: 999, note: 'refuse-me' } },
      { deviceId: 'tx-r-1', seq: seq++, body: { temperature: 999, note: 'keep-2' } },
    ];
    const r = await post(hd.url, events, 'rej');
    mode = null;
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /1 rejected reading\(s\) could not be kept: .*400 PropertyValueTooLarge/);
    const kept = (await h.tableAll(az, 'RejectedTelemetry')).filter((k) => k.EventHubPartition === 'rej');
    assert.deepEqual(kept.map((k) => JSON.parse(k.Body).note).sort(), ['keep-1', 'keep-2']);
    assert.equal(Number((await row('tx-r-0')).Rejected), 2);
  });

  test('transactions lost to contention every time: after three, the rows go one by one, exact', async () => {
    const ids = ['tx-c-0', 'tx-c-1', 'tx-c-2', 'tx-c-3'];
    assert.equal((await post(hd.url, batchOf(ids), 'cont')).status, 200);
    mode = 'contended';
    batches = [];
    const r = await post(hd.url, batchOf(ids), 'cont');
    mode = null;
    assert.equal(r.status, 200, r.text);
    // one refusal of a remembered etag (re-read at once), then three contended ones
    assert.equal(batches.length, 4);
    assert.match(hd.logs.text, /4 DeviceState row\(s\) committed one by one after 3 contended transaction\(s\)/);
    for (const id of ids) assert.equal(await count(id), 2, id);
  });

  test('250 devices: three transactions (100, 100, 50)', async () => {
    batches = [];
    const ids = Array.from({ length: 250 }, (_, i) => `tx-250a-${String(i).padStart(3, '0')}`);
    const r = await post(hd.url, batchOf(ids), 'big0');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(batches, [100, 100, 50]);
    const rows = await h.tableAll(az, 'DeviceState', "RowKey ge 'tx-250a-' and RowKey lt 'tx-250b'");
    assert.equal(rows.length, 250);
    assert.ok(rows.every((x) => Number(x.Count) === 1));
  });

  for (const [name, m, status] of [
    ['the second transaction applied but its answer lost: the host\'s replay completes the batch', 'drop-second', 500],
    ['the second transaction answered 503: its rows are read again and the batch completes', 'fail-second', 200],
  ]) {
    test(`250 devices, ${name}, nothing counted twice`, async () => {
      mode = m;
      batches = [];
      const tag = m === 'drop-second' ? 'tx-250d' : 'tx-250f';
      const ids = Array.from({ length: 250 }, (_, i) => `${tag}-${String(i).padStart(3, '0')}`);
      const events = batchOf(ids);
      let r = await post(hd.url, events, tag);
      assert.equal(r.status, status, r.text);
      mode = null;
      // the host delivers the batch again until it is answered 200, then once more (a replay)
      for (let i = 0; i < 3 && r.status !== 200; i++) r = await post(hd.url, events, tag);
      assert.equal(r.status, 200, r.text);
      assert.equal((await post(hd.url, events, tag)).status, 200);
      const rows = await h.tableAll(az, 'DeviceState', `RowKey ge '${tag}-' and RowKey lt '${tag}.'`);
      assert.equal(rows.length, 250);
      for (const x of rows) assert.equal(Number(x.Count), 1, x.RowKey);
    });
  }
});
