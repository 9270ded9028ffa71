// Integration: start-up errors, readiness, graceful stop with in-flight invocations.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import * as h from '../lib/harness.mjs';

let az;
before(async () => { az = await h.startAzurite(); });
after(async () => { await az?.close(); });

function runHandler(env) {
  return spawnSync(h.HANDLER_BIN, [], { env: { PATH: process.env.PATH, FUNCTIONS_CUSTOMHANDLER_PORT: '1', ...env }, encoding: 'utf8', timeout: 10000 });
}

const SECRET = 'c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk';

test('a malformed connection string stops the handler at start, naming the setting, not the key', () => {
  const bad = [
    [`AccountName=acct;AccountKey=${SECRET}!!`, /AccountKey is not valid base64/],
    [`AccountName=acct;AccountKey=${SECRET};Nonsense`, /has no '='/],
    [`AccountKey=${SECRET}`, /needs AccountName/],
    [`AccountName=acct;AccountKey=${SECRET};TableEndpoint=ftp://x`, /not an http\(s\) URL/],
  ];
  for (const [cs, says] of bad) {
    const r = runHandler({ StorageConnectionString: cs });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /StorageConnectionString/);
    assert.match(r.stderr, says);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET.slice(0, 20)), 'key printed');
  }
  const none = runHandler({});
  assert.equal(none.status, 2);
  assert.match(none.stderr, /StorageConnectionString \(or AzureWebJobsStorage\) is not set/);
  const fallback = runHandler({ AzureWebJobsStorage: 'AccountName=x', FUNCTIONS_CUSTOMHANDLER_PORT: '1' });
  assert.match(fallback.stderr, /AzureWebJobsStorage: needs AccountKey/);
});

test('bad numeric settings stop the handler with the setting named', () => {
  const r = runHandler({ StorageConnectionString: az.connectionString, BackoffAttempts: 'lots' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /BackoffAttempts must be a whole number/);
  const p = runHandler({ StorageConnectionString: az.connectionString, FUNCTIONS_CUSTOMHANDLER_PORT: '99999' });
  assert.match(p.stderr, /FUNCTIONS_CUSTOMHANDLER_PORT/);
});

test('a port in use gets a clear message', async () => {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const r = runHandler({ StorageConnectionString: az.connectionString, FUNCTIONS_CUSTOMHANDLER_PORT: String(srv.address().port) });
  srv.close();
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /cannot listen on 127\.0\.0\.1:\d+/);
});

test('the handler is ready with storage down, and creates its tables once storage is up', async () => {
  const port = await h.freePort();
  const handler = await h.startHandler({ StorageConnectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${h.DEV_KEY};TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1;` });
  try {
    const r = await fetch(`${handler.url}/`);
    assert.equal(r.status, 200);
    const inv = await h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch([{ deviceId: 'x', seq: 1, body: { temperature: 20 } }]));
    assert.equal(inv.status, 500);
    assert.match(inv.json.error, /cannot create table/);
    assert.equal(handler.proc.exitCode, null);
  } finally { await handler.stop(); }
});

test('SIGTERM lets in-flight invocations finish, then the handler exits 0', async () => {
  const handler = await h.startHandler(h.handlerEnv(az, { BatchConcurrency: '1' }));
  const events = Array.from({ length: 80 }, (_, i) => ({ deviceId: `term-${i}`, seq: i + 1, body: { temperature: 20 + (i % 10) } }));
  const pending = h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch(events, { partition: 'term' }));
  // wait until the invocation is being worked on (some rows exist), then stop the handler
  for (let i = 0; i < 400; i++) {
    if ((await h.tableAll(az, 'DeviceState', "RowKey ge 'term-' and RowKey lt 'term.'")).length > 0) break;
    await h.sleep(5);
  }
  handler.proc.kill('SIGTERM');
  const r = await pending;
  assert.equal(r.status, 200, r.text);
  const { code } = await handler.exited;
  assert.equal(code, 0);
  assert.match(handler.logs.text, /SIGTERM received/);
  const rows = await h.tableAll(az, 'DeviceState', "RowKey ge 'term-' and RowKey lt 'term.'");
  assert.equal(rows.length, 80);
  // after the stop nothing listens any more
  await assert.rejects(fetch(`${handler.url}/`));
});
