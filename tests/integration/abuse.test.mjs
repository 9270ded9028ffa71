// Bounded under abuse (issue 9, section 5): local clients that hold connections open, send one
// byte at a time, or frame a body in a way the server cannot read must not starve the host's
// invocations; getdevicestate answers a state far larger than one storage page. Everything binds
// 127.0.0.1; connection counts and waits are bounded.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import {
  handlerEnv, hostBatch, invoke, sleep, startAzurite, startHandler, tableCreate, tableUpsert,
} from '../lib/harness.mjs';

let az;
let seq = Date.now() * 1000;

before(async () => {
  az = await startAzurite();
});

after(async () => {
  await az?.close();
});

/** Opens a connection to the handler; resolves once connected. Tracks whether it was closed by
 * the server and whether any answer arrived. */
function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.answered = false;
    s.closedByServer = false;
    s.on('data', () => { s.answered = true; });
    s.on('end', () => { s.closedByServer = true; });
    s.on('close', () => { s.closedByServer = s.closedByServer || !s.destroyedByUs; });
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends a request one byte at a time, every intervalMs, until stopped or the socket closes. */
function dribble(s, text, intervalMs) {
  let i = 0;
  const t = setInterval(() => {
    if (s.destroyed || i >= text.length) { clearInterval(t); return; }
    s.write(text[i++]);
  }, intervalMs);
  s.stopDribble = () => clearInterval(t);
}

function closeAll(socks) {
  for (const s of socks) {
    s.stopDribble?.();
    s.destroyedByUs = true;
    s.destroy();
  }
}

test('2,000 idle and slow connections: invocations, GET / and getdevicestate are still answered', async () => {
  const h = await startHandler(handlerEnv(az));
  const socks = [];
  try {
    // 1,000 that say nothing, 1,000 that send a request one byte a second (past the old limit of
    // 1,000 connections, one thread each). Opened in slices so the listen backlog keeps up.
    const slowRequest = 'POST /EnvironmentEventTrigger HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789';
    for (let i = 0; i < 2000; i += 100) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => connect(h.port)));
      for (const s of batch) {
        if (socks.length % 2) dribble(s, slowRequest, 1000);
        socks.push(s);
      }
    }
    assert.equal(socks.length, 2000);
    await sleep(500);
    assert.equal(socks.filter((s) => s.closedByServer).length, 0, 'the server keeps them (they are within the deadline)');

    // The host's work goes on.
    const dev = `abuse-dev-${Date.now()}`;
    for (let i = 0; i < 5; i++) {
      const r = await invoke(h.url, 'EnvironmentEventTrigger', hostBatch([{ deviceId: dev, body: { temperature: 20 + i }, seq: ++seq }]));
      assert.equal(r.status, 200, r.text);
    }
    const ready = await fetch(`${h.url}/`, { signal: AbortSignal.timeout(10000) });
    assert.equal(ready.status, 200);
    const state = await fetch(`${h.url}/api/getdevicestate`, { signal: AbortSignal.timeout(10000) });
    assert.equal(state.status, 200);
    const mine = (await state.json()).find((d) => d.deviceId === dev);
    assert.equal(mine.count, 5);
    // Parallel invocations too.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => invoke(h.url, 'EnvironmentEventTrigger',
      hostBatch([{ deviceId: `${dev}-${i}`, body: { temperature: 21 }, seq: ++seq }]))));
    for (const r of many) assert.equal(r.status, 200, r.text);
    assert.equal(h.proc.exitCode, null);
  } finally {
    closeAll(socks);
    await h.stop();
  }
});

test('a client sending one byte at a time is cut off at RequestDeadlineSeconds, not kept for ever', async () => {
  // Idle timeout and deadline are 2 s here; each client sends a byte every 300 ms, so it is never
  // idle long enough for an idle timeout, and its request would take a minute to arrive.
  const h = await startHandler(handlerEnv(az, { RequestDeadlineSeconds: '2' }));
  const socks = [];
  try {
    const request = `GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(200)}\r\n\r\n`;
    for (let i = 0; i < 20; i++) {
      const s = await connect(h.port);
      dribble(s, request, 300);
      socks.push(s);
    }
    // Bounded wait: 30 s at most for the server to close them all.
    for (let waited = 0; waited < 30000 && socks.some((s) => !s.closedByServer); waited += 250) await sleep(250);
    assert.equal(socks.filter((s) => !s.closedByServer).length, 0, 'every slow client was closed by the server');
    assert.equal(socks.filter((s) => s.answered).length, 0, 'none of them got to finish a request');
    assert.match(h.logs.text, /closed \d+ connection\(s\) that spent over 2 s/);
    // A normal client is unaffected.
    assert.equal((await fetch(`${h.url}/`)).status, 200);
  } finally {
    closeAll(socks);
    await h.stop();
  }
});

/** Sends raw bytes and resolves with the first line of the answer (or 'no answer' after 5 s). */
function rawRequest(port, text) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let got = '';
    const t = setTimeout(() => { s.destroy(); resolve({ line: 'no answer', closed: false }); }, 5000);
    s.on('data', (d) => { got += d; });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(t); resolve({ line: got.split('\r\n')[0], text: got, closed: true }); });
  });
}

test('a Transfer-Encoding the server cannot read is answered at once (501, or 400 with Content-Length), and the connection closes', async () => {
  const h = await startHandler(handlerEnv(az));
  try {
    const cases = {
      'chunked, identity': 501,
      xchunked: 501,
      identity: 501,
      'gzip, chunked': 501,
      'chunked ;x': 501,
    };
    for (const [te, status] of Object.entries(cases)) {
      const r = await rawRequest(h.port, `POST /api/sendsignalrmessage HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      assert.equal(r.line, `HTTP/1.1 ${status} ${status === 501 ? 'Not Implemented' : 'Bad Request'}`, te);
      assert.ok(r.closed, `${te}: the connection is closed`);
    }
    // Two Transfer-Encoding headers, or chunked with a Content-Length.
    let r = await rawRequest(h.port, 'POST /EnvironmentEventTrigger HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.equal(r.line, 'HTTP/1.1 501 Not Implemented');
    r = await rawRequest(h.port, 'POST /EnvironmentEventTrigger HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n');
    assert.ok(r.line === 'HTTP/1.1 400 Bad Request', r.line);
    // Plain chunked still works (an empty body is a bad envelope for sendsignalrmessage: 400 from
    // the function itself, with its own message).
    r = await rawRequest(h.port, 'POST /api/sendsignalrmessage HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\n[1]\r\n0\r\n\r\n');
    assert.equal(r.line, 'HTTP/1.1 503 Service Unavailable', 'SignalR is not configured: the body was read');
  } finally {
    await h.stop();
  }
});

test('getdevicestate streams a state far larger than one storage page (300 devices with 30 KB of geo)', async () => {
  const table = `Big${Date.now()}`;
  await tableCreate(az, table);
  const geo = (i) => `${i}:${'g'.repeat(30000)}`;
  // Each row also holds a large property the answer does not use: only the needed columns are read.
  const rows = Array.from({ length: 300 }, (_, i) => ({
    PartitionKey: 'Sydney', RowKey: `big-${String(i).padStart(3, '0')}`, Geo: geo(i), Notes: 'n'.repeat(30000),
    Celsius: 20.5, 'Celsius@odata.type': 'Edm.Double', Count: '3', 'Count@odata.type': 'Edm.Int64',
  }));
  for (let i = 0; i < rows.length; i += 20) await Promise.all(rows.slice(i, i + 20).map((e) => tableUpsert(az, table, e)));
  const h = await startHandler(handlerEnv(az, { DeviceStateTable: table }));
  try {
    const res = await fetch(`${h.url}/api/getdevicestate`, { signal: AbortSignal.timeout(60000) });
    assert.equal(res.status, 200, await res.clone().text().then((t) => t.slice(0, 300)));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const list = await res.json();
    assert.equal(list.length, 300);
    for (let i = 0; i < 300; i++) {
      assert.equal(list[i].deviceId, `big-${String(i).padStart(3, '0')}`);
      assert.equal(list[i].geo, geo(i));
      assert.equal(list[i].count, 3);
      assert.equal(list[i].temperature, 20.5);
      assert.equal(list[i].notes, undefined);
    }
    // With a connectionId: too large for one SignalR message, so not sent, and the header says so.
    const r2 = await fetch(`${h.url}/api/getdevicestate?connectionId=abc`, { signal: AbortSignal.timeout(60000) });
    assert.equal(r2.status, 200);
    assert.match(r2.headers.get('x-enviromon-signalr'), /^not sent: the state is larger than one SignalR message/);
    assert.equal((await r2.json()).length, 300);
    // A client that goes away mid-stream: the handler stops reading storage and carries on.
    await new Promise((resolve) => {
      const req = http.get(`${h.url}/api/getdevicestate`, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', () => resolve());
    });
    await sleep(500);
    assert.equal((await fetch(`${h.url}/`)).status, 200);
    assert.equal((await (await fetch(`${h.url}/api/getdevicestate`)).json()).length, 300);
    assert.equal(h.proc.exitCode, null);
  } finally {
    await h.stop();
  }
});

/** Asks the handler for its counters (SIGUSR1) and parses the line it logs. */
async function counters(h) {
  const from = h.logs.text.length;
  h.proc.kill('SIGUSR1');
  for (let i = 0; i < 100 && !/row cache/.test(h.logs.text.slice(from)); i++) await sleep(50);
  const m = /(\d+) table round trips so far; row cache (\d+) rows, (\d+) bytes, (\d+) evicted; live push (\d+) sent, (\d+) failed, (\d+) skipped, (\d+) dropped/.exec(h.logs.text.slice(from));
  assert.ok(m, h.logs.text.slice(from));
  const [trips, rows, bytes, evicted, sent, failed, skipped, dropped] = m.slice(1).map(Number);
  return { trips, rows, bytes, evicted, sent, failed, skipped, dropped };
}

test('the row cache and the missed pushes stay within RowCacheBytes and MissedPushBytes; counts stay exact', async () => {
  const deadPort = await (await import('../lib/harness.mjs')).freePort();
  const h = await startHandler(handlerEnv(az, {
    RowCacheBytes: '65536',
    MissedPushBytes: '65536',
    // SignalR configured where nothing listens: every push fails and is remembered.
    AzureSignalRConnectionString: `Endpoint=http://127.0.0.1;Port=${deadPort};AccessKey=k;Version=1.0;`,
  }));
  try {
    const run = `mem-${Date.now()}`;
    const ids = Array.from({ length: 150 }, (_, i) => `${run}-${i}`);
    const geo = 'x'.repeat(900);
    for (let round = 0; round < 3; round++) {
      const r = await invoke(h.url, 'EnvironmentEventTrigger', hostBatch(ids.map((id) => ({ deviceId: id, body: { temperature: 20, geo }, seq: ++seq }))));
      assert.equal(r.status, 200, r.text);
    }
    const c = await counters(h);
    assert.ok(c.bytes <= 65536, `row cache holds ${c.bytes} bytes`);
    assert.ok(c.rows < 150 && c.evicted > 0, `rows ${c.rows}, evicted ${c.evicted}`);
    assert.ok(c.dropped > 0, `missed pushes dropped: ${c.dropped}`);
    assert.match(h.logs.text, /MissedPushBytes \(65536\) is full/);
    // Evicted rows were read again, not guessed: every count is exact.
    const state = await (await fetch(`${h.url}/api/getdevicestate`)).json();
    const mine = state.filter((d) => d.deviceId.startsWith(`${run}-`));
    assert.equal(mine.length, 150);
    for (const d of mine) assert.equal(d.count, 3, d.deviceId);
  } finally {
    await h.stop();
  }
});
