// Entity group transactions ($batch) through the handler's own Table client (build/tablebatch-tool
// drives handler/tablebatch.c) against a real Azurite; every check of the table's contents goes
// through the harness's independent REST client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import * as h from '../lib/harness.mjs';

const TOOL = path.join(h.BUILD, 'tablebatch-tool');
const TABLE = 'BatchTest';
let az;

before(async () => {
  az = await h.startAzurite();
  await h.tableCreate(az, TABLE);
});
after(async () => { await az?.close(); });

/** Runs the tool on one transaction spec; resolves with its JSON answer. */
function run(spec, storage = az.connectionString) {
  return new Promise((resolve, reject) => {
    const p = spawn(TOOL, ['run'], { env: { ...process.env, STORAGE: storage }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`tablebatch-tool exited ${code}: ${err}`));
      try { resolve(JSON.parse(out)); } catch (e) { reject(new Error(`${e.message}: ${out} ${err}`)); }
    });
    p.stdin.end(JSON.stringify({ table: TABLE, ...spec }));
  });
}

/** The row and its ETag, read independently. */
async function getRow(pk, rk) {
  const r = await h.tableRequest(az, 'GET', h.entityPath(TABLE, pk, rk));
  return r.status === 200 ? { row: r.json, etag: r.headers.get('etag') } : null;
}

async function seed(pk, rks, props = {}) {
  const etags = {};
  for (const rk of rks) {
    await h.tableUpsert(az, TABLE, { PartitionKey: pk, RowKey: rk, Count: 0, ...props });
    etags[rk] = (await getRow(pk, rk)).etag;
  }
  return etags;
}

test('inserts and merges apply together, in one request, and each answers its new etag', async () => {
  const pk = 'atomic';
  const etags = await seed(pk, ['m0', 'm1', 'm2']);
  const res = await run({
    pk,
    ops: [
      ...['m0', 'm1', 'm2'].map((rk, i) => ({ op: 'merge', rk, etag: etags[rk], props: { Count: i + 10, Note: `merged ${rk}` } })),
      { op: 'insert', rk: 'n0', props: { Count: 1 } },
      { op: 'insert', rk: "n'1 é", props: { Count: 2, Text: 'line\u2028sep é 🌡\n' } },
    ],
  });
  assert.equal(res.rc, 'ok', JSON.stringify(res));
  assert.equal(res.status, 202);
  assert.equal(res.requests, 1);
  assert.equal(res.ops.length, 5);
  const rks = ['m0', 'm1', 'm2', 'n0', "n'1 é"];
  for (let i = 0; i < rks.length; i++) {
    assert.ok(res.ops[i].status >= 200 && res.ops[i].status < 300, JSON.stringify(res.ops[i]));
    const got = await getRow(pk, rks[i]);
    assert.ok(got, `${rks[i]} exists`);
    assert.equal(res.ops[i].etag, got.etag, `${rks[i]}: the answered etag is the row's`);
    if (i === 4) assert.equal(got.row.Text, 'line\u2028sep é 🌡\n');
    if (i < 3) {
      assert.notEqual(got.etag, etags[rks[i]]);
      assert.equal(got.row.Count, i + 10);
      assert.equal(got.row.Note, `merged ${rks[i]}`);
    }
  }
  // The answered etags are usable: a second transaction with them is applied.
  const again = await run({ pk, ops: rks.map((rk, i) => ({ op: 'merge', rk, etag: res.ops[i].etag, props: { Count: 99 } })) });
  assert.equal(again.rc, 'ok', JSON.stringify(again));
  for (const rk of rks) assert.equal((await getRow(pk, rk)).row.Count, 99);
});

test('a stale etag fails the whole transaction, naming that operation; nothing is applied', async () => {
  const pk = 'stale';
  const etags = await seed(pk, ['s0', 's1', 's2']);
  // Another writer changes s1: the etag we hold for it is stale.
  const w = await h.tableRequest(az, 'MERGE', h.entityPath(TABLE, pk, 's1'), { body: { Count: 5 }, headers: { 'If-Match': etags.s1 } });
  assert.equal(w.status, 204);
  const ops = [
    { op: 'merge', rk: 's0', etag: etags.s0, props: { Count: 1 } },
    { op: 'merge', rk: 's1', etag: etags.s1, props: { Count: 1 } },
    { op: 'merge', rk: 's2', etag: etags.s2, props: { Count: 1 } },
    { op: 'insert', rk: 's3', props: { Count: 1 } },
  ];
  const res = await run({ pk, ops });
  assert.equal(res.rc, 'precondition', JSON.stringify(res));
  assert.equal(res.unknown, false);
  assert.equal(res.failed, 1);
  assert.equal(res.failedStatus, 412);
  assert.equal(res.code, 'UpdateConditionNotSatisfied');
  assert.match(res.message, /^1:/);
  const s0 = await getRow(pk, 's0');
  assert.equal(s0.row.Count, 0, 's0 not merged');
  assert.equal(s0.etag, etags.s0);
  assert.equal((await getRow(pk, 's1')).row.Count, 5, 's1 keeps the other writer\'s value');
  assert.equal((await getRow(pk, 's2')).row.Count, 0, 's2 not merged');
  assert.equal(await getRow(pk, 's3'), null, 's3 not inserted');
  // Re-read only the failed row and retry: applied.
  ops[1].etag = (await getRow(pk, 's1')).etag;
  const retry = await run({ pk, ops });
  assert.equal(retry.rc, 'ok', JSON.stringify(retry));
  for (const rk of ['s0', 's1', 's2', 's3']) assert.equal((await getRow(pk, rk)).row.Count, 1);
});

test('an insert of an existing row is a conflict at its index; a delete with If-Match applies', async () => {
  const pk = 'conflict';
  const etags = await seed(pk, ['c0', 'c1']);
  const res = await run({ pk, ops: [{ op: 'delete', rk: 'c0', etag: etags.c0 }, { op: 'insert', rk: 'c1', props: { Count: 3 } }] });
  assert.equal(res.rc, 'conflict', JSON.stringify(res));
  assert.equal(res.failed, 1);
  assert.equal(res.code, 'EntityAlreadyExists');
  assert.ok(await getRow(pk, 'c0'), 'the delete was not applied');
  const del = await run({ pk, ops: [{ op: 'delete', rk: 'c0', etag: '*' }, { op: 'update', rk: 'c1', etag: etags.c1, props: { Other: 'x' } }] });
  assert.equal(del.rc, 'ok', JSON.stringify(del));
  assert.equal(await getRow(pk, 'c0'), null);
  const c1 = (await getRow(pk, 'c1')).row;
  assert.equal(c1.Other, 'x');
  assert.equal(c1.Count, undefined, 'UPDATE replaced the row');
});

test('100 operations are one transaction; the 101st is refused by the writer, nothing sent', async () => {
  const pk = 'hundred';
  const ops = Array.from({ length: 100 }, (_, i) => ({ op: 'insert', rk: `r${String(i).padStart(3, '0')}`, props: { N: i } }));
  const res = await run({ pk, ops });
  assert.equal(res.rc, 'ok', JSON.stringify(res).slice(0, 500));
  assert.equal(res.ops.length, 100);
  assert.equal((await h.tableAll(az, TABLE, `PartitionKey eq '${pk}'`)).length, 100);

  const pk2 = 'hundredone';
  const ops2 = Array.from({ length: 101 }, (_, i) => ({ op: 'insert', rk: `r${i}`, props: { N: i } }));
  const res2 = await run({ pk: pk2, ops: ops2 });
  assert.equal(res2.sent, false);
  assert.equal(res2.added[100], 'full');
  assert.equal(res2.added.filter((a) => a === 'added').length, 100);
  assert.match(res2.addError, /100 operations/);
  assert.equal(res2.requests, undefined);
  assert.equal((await h.tableAll(az, TABLE, `PartitionKey eq '${pk2}'`)).length, 0);
});

test('a transaction over 4 MiB is refused before sending; what fits (just under 4 MiB) is accepted', async () => {
  const pk = 'big';
  // 60 kB a row (two strings: one string property holds at most 32K UTF-16 characters), 70 rows:
  // about 4.2 MB.
  const half = 'x'.repeat(30000);
  const ops = Array.from({ length: 70 }, (_, i) => ({ op: 'insert', rk: `b${i}`, props: { A: half, B: half } }));
  const res = await run({ pk, ops });
  assert.equal(res.sent, false);
  const firstFull = res.added.indexOf('full');
  assert.ok(firstFull > 0 && firstFull < 70, JSON.stringify(res.added));
  assert.match(res.addError, /would pass 4194304 bytes/);
  assert.ok(res.bytes <= 4 * 1024 * 1024 && res.bytes > 4 * 1024 * 1024 - 61000, String(res.bytes));
  assert.equal((await h.tableAll(az, TABLE, `PartitionKey eq '${pk}'`)).length, 0);

  // The part that fits is a transaction Azurite takes (its own limit is 4 MiB of body too).
  const fits = await run({ pk, ops, sendWhatFits: true });
  assert.equal(fits.rc, 'ok', JSON.stringify({ ...fits, ops: undefined }));
  assert.equal((await h.tableAll(az, TABLE, `PartitionKey eq '${pk}'`)).length, firstFull);
});

test('a value the store refuses fails the transaction at that operation, nothing applied', async () => {
  const pk = 'value';
  const res = await run({ pk, ops: [
    { op: 'insert', rk: 'v0', props: { N: 1 } },
    { op: 'insert', rk: 'v1', props: { Text: 'y'.repeat(33000) } }, // over 32K UTF-16 characters
    { op: 'insert', rk: 'v2', props: { N: 3 } },
  ] });
  assert.equal(res.rc, 'error', JSON.stringify(res));
  assert.equal(res.failed, 1);
  assert.equal(res.failedStatus, 400);
  assert.equal(res.code, 'PropertyValueTooLarge');
  assert.equal(res.unknown, false);
  assert.equal((await h.tableAll(az, TABLE, `PartitionKey eq '${pk}'`)).length, 0);
});

test('a SAS connection string signs the transaction too; a wrong SAS is refused as a whole', async () => {
  const expiry = new Date(Date.now() + 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
  const fields = { sv: '2019-02-02', ss: 't', srt: 'sco', sp: 'rwdlacu', se: expiry, spr: 'https,http' };
  const sts = [h.DEV_ACCOUNT, fields.sp, fields.ss, fields.srt, '', fields.se, '', fields.spr, fields.sv, ''].join('\n');
  const sig = createHmac('sha256', Buffer.from(h.DEV_KEY, 'base64')).update(sts, 'utf8').digest('base64');
  const sas = new URLSearchParams({ ...fields, sig }).toString();
  const res = await run({ pk: 'sas', ops: [{ op: 'insert', rk: 'a', props: { N: 1 } }, { op: 'merge', rk: 'b', props: { N: 2 } }] },
    `TableEndpoint=${az.endpoint};SharedAccessSignature=${sas}`);
  assert.equal(res.rc, 'ok', JSON.stringify(res));
  assert.equal((await getRow('sas', 'b')).row.N, 2);
  const bad = await run({ pk: 'sas', ops: [{ op: 'insert', rk: 'c', props: { N: 1 } }] },
    `TableEndpoint=${az.endpoint};SharedAccessSignature=${sas.replace(/sig=[^&]+/, 'sig=AAAA')}`);
  assert.equal(bad.rc, 'error');
  assert.equal(bad.status, 403);
  assert.equal(bad.failed, -1);
  assert.equal(await getRow('sas', 'c'), null);
});
