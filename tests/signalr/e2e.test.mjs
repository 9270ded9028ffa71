// End to end with the official @microsoft/signalr client: it negotiates through the handler's
// /api/negotiate, connects to the SignalR stand-in, and receives a sendsignalrmessage broadcast, a
// device update after a telemetry batch, and getdevicestate sent to its own connection only. Then
// the stand-in goes away and invocations must still succeed, quickly, with the rows written.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  handlerEnv, hostBatch, invoke, sleep, startAzurite, startHandler, startStandin, tableGet,
} from '../lib/harness.mjs';
import { claims, connectClient } from './lib.mjs';

let az;
let standin;
let handler;
let a;
let b;
let seq = Date.now() * 1000;

before(async () => {
  az = await startAzurite();
  standin = await startStandin();
  handler = await startHandler(handlerEnv(az, { AzureSignalRConnectionString: standin.connectionString }));
  a = await connectClient(handler.url);
  b = await connectClient(handler.url);
});

after(async () => {
  await a?.stop().catch(() => {});
  await b?.stop().catch(() => {});
  await handler?.stop();
  await standin?.stop();
  await az?.close();
});

test('both clients got distinct connection ids through the handler', () => {
  assert.ok(a.id && b.id);
  assert.notEqual(a.id, b.id);
});

test('sendsignalrmessage broadcasts the posted JSON as newMessage with one argument', async () => {
  const nonce = Math.random().toString(36).slice(2);
  const payload = { hello: 'world', nonce, n: [1, 2.5, null], ü: 'ü' };
  const got = [a, b].map((c) => c.waitFor((args) => args[0]?.nonce === nonce));
  const res = await fetch(`${handler.url}/api/sendsignalrmessage`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(payload),
  });
  assert.equal(res.status, 202, await res.clone().text());
  for (const m of await Promise.all(got)) {
    assert.equal(m.args.length, 1);
    assert.deepEqual(m.args[0], payload);
  }
  // Any JSON value, not only objects.
  const str = b.waitFor((args) => args[0] === `just a string ${nonce}`);
  const r2 = await fetch(`${handler.url}/api/sendsignalrmessage`, { method: 'POST', body: JSON.stringify(`just a string ${nonce}`) });
  assert.equal(r2.status, 202);
  await str;
});

test('a committed telemetry batch reaches the client as one device object per newMessage', async () => {
  const from = a.inbox.length;
  const batch = hostBatch([
    { deviceId: 'e2e-dev-1', body: { temperature: 21.5, humidity: 40.25 }, seq: ++seq },
    { deviceId: 'e2e-dev-2', body: { temperature: 18, pressure: 1010 }, seq: ++seq },
  ]);
  const got1 = a.waitFor((args) => args[0]?.deviceId === 'e2e-dev-1', 5000, from);
  const got2 = a.waitFor((args) => args[0]?.deviceId === 'e2e-dev-2', 5000, from);
  const r = await invoke(handler.url, 'EnvironmentEventTrigger', batch);
  assert.equal(r.status, 200, r.text);
  const [m1, m2] = await Promise.all([got1, got2]);
  for (const m of [m1, m2]) assert.equal(m.args.length, 1);
  assert.equal(m1.args[0].temperature, 21.5);
  assert.equal(m1.args[0].humidity, 40.25);
  assert.equal(m1.args[0].count, 1);
  assert.equal(m1.args[0].geo, 'Sydney');
  assert.match(m1.args[0].lastSeen, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.equal(m2.args[0].pressure, 1010);
  assert.ok(await tableGet(az, 'DeviceState', 'Sydney', 'e2e-dev-1'));
});

test('getdevicestate answers every device and sends the array to the named connection only', async () => {
  const fromB = b.inbox.length;
  const got = a.waitFor((args) => Array.isArray(args[0]));
  const res = await fetch(`${handler.url}/api/getdevicestate?connectionId=${encodeURIComponent(a.id)}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-enviromon-signalr'), 'sent');
  const list = await res.json();
  assert.ok(Array.isArray(list));
  assert.deepEqual(list.map((d) => d.deviceId).sort(), ['e2e-dev-1', 'e2e-dev-2']);
  for (const d of list) {
    for (const k of ['deviceId', 'temperature', 'humidity', 'pressure', 'light', 'geo', 'count', 'rejected', 'lastSeen']) {
      assert.ok(k in d, `${k} missing from ${JSON.stringify(d)}`);
    }
  }
  const m = await got;
  assert.equal(m.args.length, 1);
  assert.deepEqual(m.args[0], list);

  // The same through a JSON body, to b this time.
  const gotB = b.waitFor((args) => Array.isArray(args[0]), 5000, fromB);
  const r2 = await fetch(`${handler.url}/api/getdevicestate`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ connectionId: b.id }),
  });
  assert.equal(r2.status, 200);
  assert.deepEqual((await gotB).args[0], list);

  // a's array went to a alone: b, which did get a broadcast sent after it, got no array before b's own.
  const marker = `marker-${Math.random()}`;
  const seen = b.waitFor((args) => args[0] === marker, 5000, fromB);
  await fetch(`${handler.url}/api/sendsignalrmessage`, { method: 'POST', body: JSON.stringify(marker) });
  await seen;
  await sleep(200);
  const arrays = b.inbox.slice(fromB).filter((x) => Array.isArray(x.args[0]));
  assert.equal(arrays.length, 1, 'b received only the array sent to its own connection');

  // Without a connection id: the answer only, no push.
  const fromA = a.inbox.length;
  const r3 = await fetch(`${handler.url}/api/getdevicestate`);
  assert.equal(r3.status, 200);
  assert.equal(r3.headers.get('x-enviromon-signalr'), null);
  await sleep(200);
  assert.equal(a.inbox.slice(fromA).filter((x) => Array.isArray(x.args[0])).length, 0);
});

test('negotiate gives the stand-in URL and a token valid for it; an authenticated user is in the token', async () => {
  for (const method of ['GET', 'POST']) {
    const res = await fetch(`${handler.url}/api/negotiate`, { method });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const n = await res.json();
    assert.equal(n.url, `http://127.0.0.1:${standin.port}/client/?hub=enviromon`);
    const c = claims(n.accessToken);
    assert.equal(c.aud, n.url);
    assert.equal(c.exp - c.iat, 3600);
    assert.ok(Math.abs(c.iat - Date.now() / 1000) < 5);
    assert.equal(c['asrs.s.uid'], undefined);
    // The signature is the stand-in's key over the first two parts.
    const [h, p, s] = n.accessToken.split('.');
    assert.equal(s, createHmac('sha256', Buffer.from(standin.accessKey, 'utf8')).update(`${h}.${p}`).digest('base64url'));
  }
  // App Service authentication off (no WEBSITE_AUTH_ENABLED): nothing strips the identity headers,
  // so a caller could name any user; they are ignored and the token names nobody.
  let res = await fetch(`${handler.url}/api/negotiate`, {
    method: 'POST',
    headers: { 'x-ms-client-principal-id': 'u-1234', 'x-ms-client-principal-name': 'alice@example.com' },
  });
  let c = claims((await res.json()).accessToken);
  assert.equal(c['asrs.s.uid'], undefined);
  assert.equal(c.nameid, undefined);

  // Authentication on: the platform sets WEBSITE_AUTH_ENABLED and the headers come from it. (A test
  // double for the platform: this test plays App Service by setting the variable and the headers.)
  const authed = await startHandler(handlerEnv(az, { AzureSignalRConnectionString: standin.connectionString, WEBSITE_AUTH_ENABLED: 'True' }));
  try {
    res = await fetch(`${authed.url}/api/negotiate`, {
      method: 'POST',
      headers: { 'x-ms-client-principal-id': 'u-1234', 'x-ms-client-principal-name': 'alice@example.com' },
    });
    c = claims((await res.json()).accessToken);
    assert.equal(c['asrs.s.uid'], 'u-1234');
    assert.equal(c.nameid, 'u-1234');
    res = await fetch(`${authed.url}/api/negotiate`, { headers: { 'x-ms-client-principal-name': 'alice@example.com' } });
    c = claims((await res.json()).accessToken);
    assert.equal(c['asrs.s.uid'], 'alice@example.com');

    // A client negotiated as a user connects with that token.
    const u = await connectClient(authed.url, { headers: { 'x-ms-client-principal-id': 'u-1234' } });
    assert.ok(u.id);
    await u.stop();
  } finally {
    await authed.stop();
  }
});

test('with the SignalR endpoint down, invocations still succeed quickly and rows are written', async () => {
  await standin.stop();
  const times = [];
  for (let i = 0; i < 3; i++) {
    const batch = hostBatch([{ deviceId: `down-dev-${i}`, body: { temperature: 20 + i }, seq: ++seq }]);
    const t0 = performance.now();
    const r = await invoke(handler.url, 'EnvironmentEventTrigger', batch);
    times.push(performance.now() - t0);
    assert.equal(r.status, 200, r.text);
    const row = await tableGet(az, 'DeviceState', 'Sydney', `down-dev-${i}`);
    assert.ok(row, `row down-dev-${i} written`);
    assert.equal(row.Celsius, 20 + i);
  }
  assert.ok(Math.max(...times) < 2500, `invocation times ${times.map(Math.round)} ms`);
  // One warning for the burst, not one per push.
  const warnings = handler.logs.text.split('\n').filter((l) => l.includes('live push:') && l.includes('[warn]'));
  assert.equal(warnings.length, 1, warnings.join('\n'));
  // negotiate does not need the service.
  assert.equal((await fetch(`${handler.url}/api/negotiate`)).status, 200);
  // A send the caller waits for reports the failure.
  const res = await fetch(`${handler.url}/api/sendsignalrmessage`, { method: 'POST', body: '{"x":1}' });
  assert.equal(res.status, 502);
  const body = await res.json();
  assert.equal(body.signalrStatus, 0);
  assert.match(body.error, /did not answer/);
  // getdevicestate still answers the state; the header says the send failed.
  const gs = await fetch(`${handler.url}/api/getdevicestate?connectionId=${encodeURIComponent(a.id)}`);
  assert.equal(gs.status, 200);
  assert.match(gs.headers.get('x-enviromon-signalr'), /^not sent: SignalR Service did not answer/);
  assert.ok((await gs.json()).length >= 5);

  // Back up: after the pause, pushes flow again and the recovery is logged. A client connected
  // now gets the states that could not be pushed during the outage with the next batch.
  await standin.start();
  const c = await connectClient(handler.url);
  try {
    await sleep(5200);
    const r = await invoke(handler.url, 'EnvironmentEventTrigger', hostBatch([{ deviceId: 'down-dev-0', body: { temperature: 30 }, seq: ++seq }]));
    assert.equal(r.status, 200);
    assert.match(handler.logs.text, /accepts pushes again/);
    const got = new Map();
    for (let i = 0; i < 100 && got.size < 3; i++) {
      for (const m of c.inbox) for (const d of m.args) if (d && String(d.deviceId).startsWith('down-dev-')) got.set(d.deviceId, d);
      if (got.size < 3) await sleep(20);
    }
    assert.deepEqual([...got.keys()].sort(), ['down-dev-0', 'down-dev-1', 'down-dev-2']);
    assert.equal(got.get('down-dev-0').temperature, 30); // the newer state, not the missed one
    assert.equal(got.get('down-dev-2').temperature, 22);
  } finally {
    await c.stop().catch(() => {});
  }
});
