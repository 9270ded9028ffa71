// The SignalR Service stand-in (build/signalr-standin) as its users see it: the official
// @microsoft/signalr client on one side, the REST API with independently minted tokens on the other.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { STANDIN_BIN, freePort, mintJwt, sleep, startStandin } from '../lib/harness.mjs';

const HUB = 'enviromon';
const now = () => Math.floor(Date.now() / 1000);
const clientLogLevel = process.env.ENVIROMON_TEST_VERBOSE ? signalR.LogLevel.Debug : signalR.LogLevel.None;


const clientUrl = (s, hub = HUB) => `${s.endpoint}/client/?hub=${hub}`;

function clientToken(s, { hub = HUB, user = null, userClaim = 'asrs.s.uid' } = {}) {
  const claims = { aud: clientUrl(s, hub), iat: now(), nbf: now(), exp: now() + 300 };
  if (user) claims[userClaim] = user;
  return mintJwt(s.accessKey, claims);
}

/** A hub connection through the official client, with a queue of what arrives on `newMessage`. */
function connection(s, { user = null, userClaim, reconnect = null, configure = null, transport = signalR.HttpTransportType.WebSockets } = {}) {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(clientUrl(s), {
      accessTokenFactory: () => clientToken(s, { user, userClaim }),
      transport,
    })
    .configureLogging(clientLogLevel);
  if (reconnect) builder = builder.withAutomaticReconnect(reconnect);
  const conn = builder.build();
  if (configure) configure(conn);
  const queue = [];
  const waiters = [];
  conn.on('newMessage', (...args) => {
    const w = waiters.shift();
    if (w) w(args);
    else queue.push(args);
  });
  conn.next = (timeoutMs = 10000) => {
    if (queue.length) return Promise.resolve(queue.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(done), 1);
        reject(new Error(`no newMessage within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (args) => { clearTimeout(timer); resolve(args); };
      waiters.push(done);
    });
  };
  return conn;
}

/** One REST call; by default with a valid token whose audience is the URL without query. */
async function rest(s, path, { method = 'POST', body, token, claims = {}, headers = {} } = {}) {
  const url = `${s.endpoint}${path}`;
  if (token === undefined) token = mintJwt(s.accessKey, { aud: url.split('?')[0], iat: now(), exp: now() + 60, ...claims });
  const res = await fetch(url, {
    method,
    headers: {
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}


/** Runs the stand-in to completion with the given arguments and environment. */
function runStandin(args, env = {}) {
  return new Promise((resolve) => {
    const proc = spawn(STANDIN_BIN, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (d) => { output += d; });
    proc.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.once('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, output }); });
  });
}

/** A stand-in for one suite (started before it, stopped after it) and a start(opts) that opens
 * an official client on it; every client opened is stopped after the suite. */
function suiteStandin(options = {}) {
  let s;
  const open = [];
  before(async () => { s = await startStandin(options); });
  after(async () => {
    await Promise.all(open.map((c) => c.stop().catch(() => {})));
    await s.stop();
  });
  const start = async (opts) => {
    const c = connection(s, opts);
    open.push(c);
    await c.start();
    return c;
  };
  return { start, standin: () => s };
}

describe('official client against the stand-in', () => {
  const { start, standin } = suiteStandin();
  let s;

  before(() => { s = standin(); });

  test('negotiates, connects over WebSockets and receives a REST broadcast', async () => {
    const c = await start();
    assert.equal(c.state, signalR.HubConnectionState.Connected);
    assert.match(c.connectionId, /^[A-Za-z0-9_-]{16,}$/);
    // The hub name in the REST path differs in case from the client's: hubs compare case-insensitively.
    const r = await rest(s, '/api/v1/hubs/Enviromon', { body: { target: 'newMessage', arguments: [{ deviceId: 'd1', temperature: 21.5 }, 'two'] } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await c.next(), [{ deviceId: 'd1', temperature: 21.5 }, 'two']);
  });

  test('a send to a connection id reaches that connection and not another', async () => {
    const a = await start();
    const b = await start();
    assert.notEqual(a.connectionId, b.connectionId);
    let r = await rest(s, `/api/v1/hubs/${HUB}/connections/${encodeURIComponent(a.connectionId)}`, { body: { target: 'newMessage', arguments: ['for-a'] } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await a.next(), ['for-a']);
    // Messages of one connection arrive in order: if b had been sent 'for-a', it would come first.
    r = await rest(s, `/api/v1/hubs/${HUB}`, { body: { target: 'newMessage', arguments: ['marker'] } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await b.next(), ['marker']);
    assert.deepEqual(await a.next(), ['marker']);
  });

  test('a send to a user reaches only that user\'s connection', async () => {
    const alice = await start({ user: 'alice@example.com' });
    const bob = await start({ user: 'bob', userClaim: 'nameid' });
    let r = await rest(s, `/api/v1/hubs/${HUB}/users/${encodeURIComponent('alice@example.com')}`, { body: { target: 'newMessage', arguments: ['for-alice'] } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await alice.next(), ['for-alice']);
    r = await rest(s, `/api/v1/hubs/${HUB}/users/bob`, { body: { target: 'newMessage', arguments: ['for-bob'] } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await bob.next(), ['for-bob']);
    r = await rest(s, `/api/v1/hubs/${HUB}`, { body: { target: 'newMessage', arguments: ['marker'] } });
    assert.deepEqual(await alice.next(), ['marker']);
    assert.deepEqual(await bob.next(), ['marker']);
    // The existence checks of the REST API agree.
    assert.equal((await rest(s, `/api/v1/hubs/${HUB}/users/bob`, { method: 'HEAD' })).status, 200);
    assert.equal((await rest(s, `/api/v1/hubs/${HUB}/users/carol`, { method: 'HEAD' })).status, 404);
    assert.equal((await rest(s, `/api/v1/hubs/${HUB}/connections/${bob.connectionId}`, { method: 'GET' })).status, 200);
  });

  test('the client follows a negotiate redirect ({url, accessToken}) to the stand-in', async () => {
    // A stand-in for the app's /api/negotiate, as the handler answers it in serverless mode.
    const app = http.createServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ url: clientUrl(s), accessToken: clientToken(s, { user: 'redirected' }) }));
    });
    await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
    const c = new signalR.HubConnectionBuilder()
      .withUrl(`http://127.0.0.1:${app.address().port}/api`, { transport: signalR.HttpTransportType.WebSockets })
      .configureLogging(clientLogLevel)
      .build();
    const got = new Promise((resolve) => c.on('newMessage', (...args) => resolve(args)));
    try {
      await c.start();
      const r = await rest(s, `/api/v1/hubs/${HUB}/users/redirected`, { body: { target: 'newMessage', arguments: ['via redirect'] } });
      assert.equal(r.status, 202, r.text);
      assert.deepEqual(await got, ['via redirect']);
    } finally {
      await c.stop();
      await new Promise((resolve) => app.close(resolve));
    }
  });

  test('negotiate refuses a bad client token', async () => {
    const bad = [
      mintJwt('not-the-key', { aud: clientUrl(s), exp: now() + 60 }),
      mintJwt(s.accessKey, { aud: clientUrl(s, 'otherhub'), exp: now() + 60 }),
      mintJwt(s.accessKey, { aud: clientUrl(s), exp: now() - 60 }),
      mintJwt(s.accessKey, { aud: `${s.endpoint}/api/v1/hubs/${HUB}`, exp: now() + 60 }),
    ];
    for (const token of bad) {
      const r = await fetch(`${s.endpoint}/client/negotiate?hub=${HUB}&negotiateVersion=1`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      assert.equal(r.status, 401, await r.text());
    }
  });
});

describe('the LongPolling fallback transport', () => {
  const { start, standin } = suiteStandin({ args: ['--ping-seconds', '2'] });
  let s;
  const lp = { transport: signalR.HttpTransportType.LongPolling };

  // Short polls (above), so that the keep-alive answers are exercised too.
  before(() => { s = standin(); });

  test('negotiate offers LongPolling after WebSockets', async () => {
    const r = await fetch(`${s.endpoint}/client/negotiate?hub=${HUB}&negotiateVersion=1`, { method: 'POST', headers: { Authorization: `Bearer ${clientToken(s)}` } });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.deepEqual(body.availableTransports.map((t) => t.transport), ['WebSockets', 'LongPolling']);
    assert.deepEqual(body.availableTransports[1].transferFormats, ['Text', 'Binary']);
  });

  test('a long-polling client connects, gets a broadcast and its own sends, and stops cleanly', async () => {
    const c = await start({ ...lp, user: 'poller' });
    const ws = await start();
    assert.equal(c.state, signalR.HubConnectionState.Connected);
    assert.match(c.connectionId, /^[A-Za-z0-9_-]{16,}$/);
    const closed = new Promise((resolve) => c.onclose(resolve));
    // Outlive a few poll timeouts: the connection stays up through the keep-alive answers.
    await sleep(5000);
    assert.equal(c.state, signalR.HubConnectionState.Connected);
    let r = await rest(s, `/api/v1/hubs/${HUB}`, { body: { target: 'newMessage', arguments: [{ deviceId: 'd1' }, 'broadcast'] } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await c.next(), [{ deviceId: 'd1' }, 'broadcast']);
    assert.deepEqual(await ws.next(), [{ deviceId: 'd1' }, 'broadcast']);
    r = await rest(s, `/api/v1/hubs/${HUB}/connections/${encodeURIComponent(c.connectionId)}`, { body: { target: 'newMessage', arguments: ['for-poller'] } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await c.next(), ['for-poller']);
    r = await rest(s, `/api/v1/hubs/${HUB}/users/poller`, { body: { target: 'newMessage', arguments: ['for-user'] } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await c.next(), ['for-user']);
    // In order per connection: had the WebSocket client been sent either, they would come first.
    r = await rest(s, `/api/v1/hubs/${HUB}`, { body: { target: 'newMessage', arguments: ['marker'] } });
    assert.deepEqual(await ws.next(), ['marker']);
    assert.deepEqual(await c.next(), ['marker']);
    assert.equal((await rest(s, `/api/v1/hubs/${HUB}/connections/${c.connectionId}`, { method: 'GET' })).status, 200);
    await c.stop(); // aborts the poll and sends DELETE
    assert.equal(await closed, undefined, 'closed without an error');
    assert.equal((await rest(s, `/api/v1/hubs/${HUB}/connections/${c.connectionId}`, { method: 'GET' })).status, 404);
  });

  test('a REST disconnect ends a long-polling connection', async () => {
    const c = await start(lp);
    const closed = new Promise((resolve) => c.onclose(resolve));
    const r = await rest(s, `/api/v1/hubs/${HUB}/connections/${c.connectionId}`, { method: 'DELETE' });
    assert.equal(r.status, 202, r.text);
    const err = await closed;
    assert.match(String(err), /closed by the server/);
    assert.equal(c.state, signalR.HubConnectionState.Disconnected);
  });

  test('a poll, send or delete for an unknown id gets 404; a poll after DELETE gets 404', async () => {
    const auth = { Authorization: `Bearer ${clientToken(s)}` };
    const url = `${s.endpoint}/client/?hub=${HUB}&id=no-such-connection-token`;
    assert.equal((await fetch(url, { headers: auth })).status, 404);
    assert.equal((await fetch(url, { method: 'POST', headers: auth, body: '{"protocol":"json","version":1}\x1e' })).status, 404);
    assert.equal((await fetch(url, { method: 'DELETE', headers: auth })).status, 404);
    // By hand: negotiate, connect poll, handshake, poll for its answer, DELETE ends a pending poll.
    const neg = await (await fetch(`${s.endpoint}/client/negotiate?hub=${HUB}&negotiateVersion=1`, { method: 'POST', headers: auth })).json();
    const conn = `${s.endpoint}/client/?hub=${HUB}&id=${encodeURIComponent(neg.connectionToken)}`;
    assert.equal((await fetch(conn)).status, 401, 'needs the token');
    let r = await fetch(conn, { headers: auth });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), '');
    r = await fetch(conn, { method: 'POST', headers: auth, body: '{"protocol":"json","version":1}\x1e' });
    assert.equal(r.status, 200);
    r = await fetch(conn, { headers: auth });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), '{}\x1e');
    const pending = fetch(conn, { headers: auth });
    r = await fetch(conn, { method: 'DELETE', headers: auth });
    assert.ok(r.status === 202 || r.status === 200, String(r.status));
    assert.equal((await pending).status, 204);
    assert.equal((await fetch(conn, { headers: auth })).status, 404);
  });
});

describe('REST API rejections and CORS', () => {
  let s;
  const path = `/api/v1/hubs/${HUB}`;
  const body = { target: 'newMessage', arguments: [1] };
  before(async () => { s = await startStandin(); });
  after(async () => { await s.stop(); });

  test('a valid call is accepted, and health needs no token', async () => {
    assert.equal((await rest(s, path, { body })).status, 202);
    assert.equal((await rest(s, '/api/v1/health', { method: 'GET', token: null })).status, 200);
  });

  test('wrong key, wrong audience, expired, not yet valid, unsigned or missing token: 401', async () => {
    const url = `${s.endpoint}${path}`;
    const cases = {
      'wrong key': mintJwt('wrong-key', { aud: url, exp: now() + 60 }),
      'key base64-decoded': mintJwt(Buffer.from(s.accessKey, 'base64').toString('latin1'), { aud: url, exp: now() + 60 }),
      'other hub': mintJwt(s.accessKey, { aud: `${s.endpoint}/api/v1/hubs/otherhub`, exp: now() + 60 }),
      'client audience': mintJwt(s.accessKey, { aud: clientUrl(s), exp: now() + 60 }),
      'Host-based audience': mintJwt(s.accessKey, { aud: `http://localhost:${s.port}${path}`, exp: now() + 60 }),
      'connection audience': mintJwt(s.accessKey, { aud: `${url}/connections/x`, exp: now() + 60 }),
      'no audience': mintJwt(s.accessKey, { exp: now() + 60 }),
      expired: mintJwt(s.accessKey, { aud: url, exp: now() - 60 }),
      'no expiry': mintJwt(s.accessKey, { aud: url }),
      'not yet valid': mintJwt(s.accessKey, { aud: url, nbf: now() + 600, exp: now() + 900 }),
      'alg none': mintJwt(s.accessKey, { aud: url, exp: now() + 60 }, { alg: 'none' }),
      garbage: 'not.a.token',
      missing: null,
    };
    // Non-canonical base64url of a valid token: '=' padding on the signature (43 characters + '='),
    // or the signature's last character with its unused low bits set. Both decode to the same
    // bytes, so a lenient decoder would accept them.
    const good = mintJwt(s.accessKey, { aud: url, exp: now() + 60 });
    const sig = good.split('.')[2];
    assert.equal(sig.length, 43);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(sig[42]);
    cases['padded signature'] = `${good}=`;
    cases['signature with nonzero trailing bits'] = `${good.slice(0, -1)}${alphabet[last ^ 1]}`;
    assert.equal((await rest(s, path, { body, token: good })).status, 202, 'the canonical token is accepted');
    for (const [name, token] of Object.entries(cases)) {
      const r = await rest(s, path, { body, token });
      assert.equal(r.status, 401, `${name}: ${r.status} ${r.text}`);
    }
    // Audience by meaning: the hub's case does not matter.
    const r = await rest(s, path, { body, token: mintJwt(s.accessKey, { aud: `${s.endpoint}/api/v1/hubs/ENVIROMON`, exp: now() + 60 }) });
    assert.equal(r.status, 202, r.text);
  });

  test('malformed body: 400; oversized body: 413; unknown route: 404', async () => {
    for (const bad of ['{"target":', '[1,2]', '{"arguments":[]}', '{"target":"t","arguments":{}}', '']) {
      const r = await rest(s, path, { body: bad });
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.status} ${r.text}`);
    }
    const big = JSON.stringify({ target: 'newMessage', arguments: ['x'.repeat(1024 * 1024)] });
    const r = await rest(s, path, { body: big });
    assert.equal(r.status, 413, r.text);
    // The connection is still usable afterwards.
    assert.equal((await rest(s, path, { body })).status, 202);
    assert.equal((await rest(s, '/api/v1/nothing', { body })).status, 404);
    assert.equal((await rest(s, `/api/v1/hubs/${HUB}/groups/g`, { body })).status, 404);
  });

  test('CORS preflight answers with the origin and credentials', async () => {
    const origin = 'http://localhost:4280';
    const res = await fetch(`${s.endpoint}/client/negotiate?hub=${HUB}&negotiateVersion=1`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'x-requested-with,x-signalr-user-agent,authorization' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), origin);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    assert.match(res.headers.get('vary') || '', /Origin/);
    assert.match(res.headers.get('access-control-allow-methods'), /POST/);
    const allowed = res.headers.get('access-control-allow-headers').toLowerCase();
    for (const h of ['x-requested-with', 'x-signalr-user-agent', 'authorization', 'content-type']) assert.ok(allowed.includes(h), allowed);
    // Actual requests carry the same answer, errors included.
    const r = await rest(s, path, { body, token: null, headers: { Origin: origin } });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('access-control-allow-origin'), origin);
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
  });
});

describe('settings', () => {
  test('a malformed connection string exits non-zero without printing the key', async () => {
    const key = `SECRET${randomBytes(12).toString('hex')}`;
    const cases = [
      `Endpoint=http://127.0.0.1;Port=notaport;AccessKey=${key};Version=1.0;`,
      `Endpoint=http://127.0.0.1;Port=8888;${key};Version=1.0;`,
      `Endpoint=http://127.0.0.1;Port=8888;Version=1.0;`,
      `Endpoint=https://127.0.0.1;Port=8888;AccessKey=${key};Version=1.0;`,
      `Port=8888;AccessKey=${key};Version=1.0;`,
      `Endpoint=http://127.0.0.1;Port=8888;AccessKey=${key};Version=2.0;`,
    ];
    for (const cs of cases) {
      const r = await runStandin(['--connection-string', cs]);
      assert.notEqual(r.code, 0, cs);
      assert.equal(r.code, 2, r.output);
      assert.ok(r.output.trim().length > 0, 'says what is wrong');
      assert.ok(!r.output.includes(key), `key printed: ${r.output}`);
    }
    const fromEnv = await runStandin([], { AzureSignalRConnectionString: `Endpoint=http://127.0.0.1;AccessKey=${key};Port=0;` });
    assert.equal(fromEnv.code, 2, fromEnv.output);
    assert.match(fromEnv.output, /Port/);
    assert.ok(!fromEnv.output.includes(key));
    const none = await runStandin([]);
    assert.equal(none.code, 2);
    assert.match(none.output, /AzureSignalRConnectionString/);
  });

  test('keys are case-insensitive, pairs split at the first "=", SIGTERM exits 0', async () => {
    const port = await freePort();
    const key = 'abc=def==';
    const s = await new Promise((resolve, reject) => {
      const proc = spawn(STANDIN_BIN, [], {
        env: { PATH: process.env.PATH, AzureSignalRConnectionString: `endpoint=http://127.0.0.1;PORT=${port};accesskey=${key};version=1.0` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      proc.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve({ proc, out });
      });
      proc.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const exited = new Promise((resolve) => s.proc.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      assert.match(s.out, new RegExp(`^signalr-standin listening on http://127\\.0\\.0\\.1:${port}\\n`));
      const r = await rest({ endpoint: `http://127.0.0.1:${port}`, accessKey: key }, `/api/v1/hubs/${HUB}`, { body: { target: 't', arguments: [] } });
      assert.equal(r.status, 202, r.text);
    } finally {
      s.proc.kill('SIGTERM');
    }
    assert.deepEqual(await exited, { code: 0, signal: null });
  });
});

describe('keep-alive and reconnect', () => {
  test('the connection stays up across several ping intervals', { timeout: 60000 }, async () => {
    const s = await startStandin({ args: ['--ping-seconds', '1'] });
    let closed = null;
    const c = connection(s, {
      configure: (conn) => {
        // The client gives up on a server silent for 2.5 s: only the stand-in's pings keep it.
        conn.serverTimeoutInMilliseconds = 2500;
        conn.keepAliveIntervalInMilliseconds = 1000;
        conn.onclose((e) => { closed = e || new Error('closed'); });
      },
    });
    try {
      await c.start();
      await new Promise((r) => setTimeout(r, 6000)); // several ping intervals, several client timeouts
      assert.equal(closed, null, `closed: ${closed}`);
      assert.equal(c.state, signalR.HubConnectionState.Connected);
      const r = await rest(s, `/api/v1/hubs/${HUB}`, { body: { target: 'newMessage', arguments: ['still here'] } });
      assert.equal(r.status, 202);
      assert.deepEqual(await c.next(), ['still here']);
    } finally {
      await c.stop();
      assert.deepEqual(await s.stop(), { code: 0, signal: null });
    }
  });

  test('automatic reconnect after the stand-in restarts on the same port', { timeout: 60000 }, async () => {
    const s = await startStandin();
    const c = connection(s, { reconnect: { nextRetryDelayInMilliseconds: (ctx) => (ctx.elapsedMilliseconds < 30000 ? 200 : null) } });
    let reconnecting = 0;
    c.onreconnecting(() => { reconnecting++; });
    const reconnected = new Promise((resolve, reject) => {
      c.onreconnected(resolve);
      c.onclose((e) => reject(new Error(`closed for good instead of reconnecting: ${e}`)));
    });
    try {
      await c.start();
      const firstId = c.connectionId;
      await s.stop(); // SIGTERM: the stand-in closes the WebSocket, allowing a reconnect
      assert.equal(s.proc.exitCode, 0, s.logs.text);
      await s.start();
      const id = await reconnected;
      assert.ok(reconnecting >= 1);
      assert.equal(c.state, signalR.HubConnectionState.Connected);
      assert.notEqual(id, firstId);
      const r = await rest(s, `/api/v1/hubs/${HUB}`, { body: { target: 'newMessage', arguments: ['after restart'] } });
      assert.equal(r.status, 202);
      assert.deepEqual(await c.next(), ['after restart']);
    } finally {
      await c.stop();
      await s.stop();
    }
  });
});
