// The HTTP functions' rejections and the local-mode static files, without a SignalR Service:
// no connection string (503, not a crash), a malformed one (the handler stops at start without
// showing the key), bodies that are not JSON (400) or too large for SignalR (413), wrong methods
// (405), storage down (5xx), and the dashboard folder served without path traversal.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, handlerEnv, startAzurite, startHandler } from '../lib/harness.mjs';

const SIGNALR_BODY_MAX = 1000000;

let az;
let plain; // no SignalR configured
let dead; // SignalR configured at a port where nothing listens
let local; // local mode: serves a dashboard folder
let dir;

before(async () => {
  az = await startAzurite();
  plain = await startHandler(handlerEnv(az));
  const port = await freePort();
  dead = await startHandler(handlerEnv(az, {
    AzureSignalRConnectionString: `Endpoint=http://127.0.0.1;Port=${port};AccessKey=k3y=with=equals;Version=1.0;`,
  }));
  dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-static-'));
  mkdirSync(path.join(dir, 'site', 'sub'), { recursive: true });
  writeFileSync(path.join(dir, 'site', 'index.html'), '<!doctype html><title>Enviromon</title>');
  writeFileSync(path.join(dir, 'site', 'app.js'), 'console.log(1);');
  writeFileSync(path.join(dir, 'site', 'style.CSS'), 'body{}');
  writeFileSync(path.join(dir, 'site', 'sub', 'index.html'), 'sub');
  writeFileSync(path.join(dir, 'site', 'data.bin'), Buffer.from([0, 1, 2]));
  writeFileSync(path.join(dir, 'site', 'empty.txt'), '');
  writeFileSync(path.join(dir, 'secret.txt'), 'top secret');
  symlinkSync(path.join(dir, 'secret.txt'), path.join(dir, 'site', 'link.txt'));
  local = await startHandler(handlerEnv(az, { EnviromonDashboardDir: path.join(dir, 'site') }));
});

after(async () => {
  for (const h of [plain, dead, local]) await h?.stop();
  await az?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A raw request: the path goes out exactly as given (fetch would normalise '..'). */
function raw(url, method, reqPath) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: reqPath }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('negotiate without a SignalR connection string: a clear 503, and the handler lives on', async () => {
  for (const method of ['GET', 'POST']) {
    const res = await fetch(`${plain.url}/api/negotiate`, { method });
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.match(body.error, /SignalR is not configured: set AzureSignalRConnectionString/);
  }
  const send = await fetch(`${plain.url}/api/sendsignalrmessage`, { method: 'POST', body: '{"a":1}' });
  assert.equal(send.status, 503);
  // getdevicestate still answers the state; the header says nothing was sent.
  const gs = await fetch(`${plain.url}/api/getdevicestate?connectionId=abc`);
  assert.equal(gs.status, 200);
  assert.deepEqual(await gs.json(), []);
  assert.equal(gs.headers.get('x-enviromon-signalr'), 'not sent: SignalR is not configured');
  assert.equal((await fetch(`${plain.url}/`)).status, 200);
  assert.equal(plain.proc.exitCode, null);
});

test('sendsignalrmessage: not JSON is 400, too large for SignalR is 413, GET is 405', async () => {
  for (const body of ['', 'not json', '{"a":', '{"a":1} trailing', '\u00ff']) {
    const res = await fetch(`${dead.url}/api/sendsignalrmessage`, { method: 'POST', body });
    assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
    assert.match((await res.json()).error, /^the body must be JSON/);
  }
  // Past the limit before parsing.
  const huge = JSON.stringify('x'.repeat(SIGNALR_BODY_MAX));
  let res = await fetch(`${dead.url}/api/sendsignalrmessage`, { method: 'POST', body: huge });
  assert.equal(res.status, 413);
  assert.match((await res.json()).error, /at most 1000000 bytes/);
  // Under the limit itself, over it once wrapped as {"target":...,"arguments":[...]}.
  const edge = JSON.stringify('x'.repeat(SIGNALR_BODY_MAX - 20));
  res = await fetch(`${dead.url}/api/sendsignalrmessage`, { method: 'POST', body: edge });
  assert.equal(res.status, 413);
  assert.match((await res.json()).error, /larger than SignalR Service accepts/);
  // Valid JSON with the service down: 502 with the service's status (0: no answer).
  res = await fetch(`${dead.url}/api/sendsignalrmessage`, { method: 'POST', body: '[1,2]' });
  assert.equal(res.status, 502);
  assert.equal((await res.json()).signalrStatus, 0);
  res = await fetch(`${dead.url}/api/sendsignalrmessage`);
  assert.equal(res.status, 405);
  assert.equal(res.headers.get('allow'), 'POST');
});

test('negotiate and getdevicestate take GET and POST only; bad input is 400', async () => {
  for (const fn of ['negotiate', 'getdevicestate']) {
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${dead.url}/api/${fn}`, { method });
      assert.equal(res.status, 405, `${method} ${fn}`);
      assert.equal(res.headers.get('allow'), 'GET, POST');
    }
  }
  for (const body of ['{nope', '[1]', '{"connectionId": 5}']) {
    const res = await fetch(`${dead.url}/api/getdevicestate`, { method: 'POST', body });
    assert.equal(res.status, 400, body);
  }
  const long = 'c'.repeat(257);
  assert.equal((await fetch(`${dead.url}/api/getdevicestate?connectionId=${long}`)).status, 400);
  // An authenticated user id that is too long: 400 where App Service authentication is on; ignored
  // (like any identity header a caller sends) where it is off.
  const authed = await startHandler(handlerEnv(az, { AzureSignalRConnectionString: `Endpoint=http://127.0.0.1;Port=${await freePort()};AccessKey=k;Version=1.0;`, WEBSITE_AUTH_ENABLED: 'true' }));
  try {
    const res = await fetch(`${authed.url}/api/negotiate`, { headers: { 'x-ms-client-principal-id': 'u'.repeat(300) } });
    assert.equal(res.status, 400);
  } finally {
    await authed.stop();
  }
  const res = await fetch(`${dead.url}/api/negotiate`, { headers: { 'x-ms-client-principal-id': 'u'.repeat(300) } });
  assert.equal(res.status, 200);
  // Empty body or no connectionId: fine.
  assert.equal((await fetch(`${dead.url}/api/getdevicestate`, { method: 'POST', body: ' \n' })).status, 200);
  assert.equal((await fetch(`${dead.url}/api/getdevicestate`, { method: 'POST', body: '{}' })).status, 200);
});

test('a malformed AzureSignalRConnectionString stops the handler at start, without showing the key', async () => {
  const key = 'Sup3rS3cretKeyValue';
  const bad = [
    `Endpoint=http://127.0.0.1;AccessKey=${key};Port=notaport;Version=1.0;`,
    `Endpoint=127.0.0.1;AccessKey=${key};Version=1.0;`,
    `Endpoint=http://127.0.0.1;${key}==;Version=1.0;`,
    `Endpoint=http://127.0.0.1;Version=1.0;`,
  ];
  for (const cs of bad) {
    const h = await startHandler(handlerEnv(az, { AzureSignalRConnectionString: cs }), { wait: false });
    const { code } = await h.exited;
    assert.equal(code, 2, cs);
    assert.match(h.logs.text, /cannot start: AzureSignalRConnectionString/);
    assert.ok(!h.logs.text.includes(key), `the key shows in: ${h.logs.text}`);
  }
});

test('local mode: the dashboard folder is served, without escaping it', async () => {
  let r = await raw(local.url, 'GET', '/');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-cache');
  assert.match(r.body, /Enviromon/);
  r = await raw(local.url, 'GET', '/app.js');
  assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(r.body, 'console.log(1);');
  assert.equal((await raw(local.url, 'GET', '/style.CSS')).headers['content-type'], 'text/css; charset=utf-8');
  assert.equal((await raw(local.url, 'GET', '/data.bin')).headers['content-type'], 'application/octet-stream');
  r = await raw(local.url, 'GET', '/empty.txt');
  assert.equal(r.status, 200);
  assert.equal(r.body, '');
  assert.equal((await raw(local.url, 'GET', '/sub/')).body, 'sub');
  r = await raw(local.url, 'HEAD', '/app.js');
  assert.equal(r.status, 200);
  assert.equal(r.body, '');
  for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/sub/../../secret.txt', '/link.txt',
    '/nothing-here.html', '/sub', '//etc/passwd', '/..%2fsecret.txt']) {
    r = await raw(local.url, 'GET', p);
    assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
    assert.ok(!r.body.includes('top secret'), p);
  }
  // The API is still the API; other methods are not static.
  assert.equal((await raw(local.url, 'GET', '/api/negotiate')).status, 503);
  assert.equal((await raw(local.url, 'GET', '/api/nothing')).status, 404);
  assert.equal((await raw(local.url, 'POST', '/app.js')).status, 404);
  // Without a dashboard folder, GET / is the readiness answer.
  r = await raw(plain.url, 'GET', '/');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { status: 'ready' });
});

test('local mode: a FIFO, a socket or a device in the folder is not found, at once, and SIGTERM still stops', async () => {
  const site = mkdtempSync(path.join(os.tmpdir(), 'enviromon-fifo-'));
  writeFileSync(path.join(site, 'index.html'), 'home');
  writeFileSync(path.join(site, 'real.txt'), 'real');
  execFileSync('mkfifo', [path.join(site, 'pipe.js'), path.join(site, 'pipe2')]);
  mkdirSync(path.join(site, 'fifo-dir'));
  execFileSync('mkfifo', [path.join(site, 'fifo-dir', 'index.html')]);
  // Symbolic links are followed when they stay inside the folder: to a file it is served, to a
  // FIFO it is refused like the FIFO itself.
  symlinkSync('real.txt', path.join(site, 'alias.txt'));
  symlinkSync('pipe2', path.join(site, 'to-pipe.txt'));
  symlinkSync('/dev/zero', path.join(site, 'zero.bin'));
  const h = await startHandler(handlerEnv(az, { EnviromonDashboardDir: site }));
  try {
    for (const p of ['/pipe.js', '/to-pipe.txt', '/fifo-dir/', '/zero.bin']) {
      // A blocked open would never answer: the request gives up after 5 s and the test fails.
      const r = await fetch(`${h.url}${p}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(r.status, 404, p);
    }
    assert.equal(await (await fetch(`${h.url}/alias.txt`)).text(), 'real');
    assert.equal(await (await fetch(`${h.url}/`)).text(), 'home');
    // Nothing is left waiting inside the handler: SIGTERM ends it cleanly (stop() sends SIGKILL
    // after 10 s, which would leave no exit code).
    await h.stop('SIGTERM');
    assert.equal(h.proc.exitCode, 0, h.logs.text);
  } finally {
    h.proc.kill('SIGKILL');
    rmSync(site, { recursive: true, force: true });
  }
});

test('getdevicestate with Table Storage down: a 5xx with a message', async () => {
  const az2 = await startAzurite();
  const h = await startHandler(handlerEnv(az2));
  try {
    await az2.stop();
    const res = await fetch(`${h.url}/api/getdevicestate`);
    assert.ok(res.status === 503 || res.status === 502, String(res.status));
    assert.match((await res.json()).error, /cannot read the device states from Table Storage/);
  } finally {
    await h.stop();
    await az2.close();
  }
});
