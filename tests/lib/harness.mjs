// Test harness: starts real Azurite, the handler and the SignalR stand-in on free loopback ports,
// and talks to Table Storage with its own Shared Key client (independent of the handler's C code).
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BUILD = process.env.ENVIROMON_BUILD || path.join(ROOT, 'build');
export const HANDLER_BIN = path.join(BUILD, 'enviromon-handler');
export const STANDIN_BIN = path.join(BUILD, 'signalr-standin');

export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, timeoutMs = 20000, proc = null) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.exitCode !== null) throw new Error(`process exited (${proc.exitCode}) before listening on ${port}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
    await sleep(25);
  }
}

function track(proc, name) {
  const out = { text: '' };
  const keep = (d) => {
    out.text += d.toString();
    if (out.text.length > 1 << 20) out.text = out.text.slice(-(1 << 19));
    if (process.env.ENVIROMON_TEST_VERBOSE) process.stderr.write(`[${name}] ${d}`);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  return out;
}

function stopProc(proc, signal = 'SIGTERM', timeoutMs = 10000) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('exit', () => { clearTimeout(t); resolve(); });
    proc.kill(signal);
  });
}

/**
 * Starts Azurite's Table service on a free port. With persist: true its data lives in a temp
 * folder and survives stop()/start(); otherwise it is kept in memory.
 */
export async function startAzurite({ persist = false } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-azurite-'));
  const az = {
    port,
    dir,
    endpoint: `http://127.0.0.1:${port}/${DEV_ACCOUNT}`,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};` +
      `TableEndpoint=http://127.0.0.1:${port}/${DEV_ACCOUNT};`,
    proc: null,
    logs: null,
    async start() {
      const args = ['--tableHost', '127.0.0.1', '--tablePort', String(port),
        '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose'];
      args.push(...(persist ? ['--location', dir] : ['--inMemoryPersistence']));
      this.proc = spawn(path.join(ROOT, 'node_modules/.bin/azurite-table'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.logs = track(this.proc, 'azurite');
      await waitForPort(port, 30000, this.proc);
    },
    // SIGINT: Azurite's graceful close, which saves its database (SIGTERM loses recent writes).
    async stop() { await stopProc(this.proc, 'SIGINT'); },
    async close() { await this.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
  await az.start();
  return az;
}

/**
 * Starts the handler with the given settings (environment) on a free port and waits until it
 * answers GET /. Returns { url, port, proc, logs, stop(signal) }.
 */
export async function startHandler(env = {}, { bin = HANDLER_BIN, wait = true } = {}) {
  const port = await freePort();
  const proc = spawn(bin, [], {
    env: { PATH: process.env.PATH, FUNCTIONS_CUSTOMHANDLER_PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = track(proc, 'handler');
  const h = {
    port, proc, logs,
    url: `http://127.0.0.1:${port}`,
    exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
    stop: (signal = 'SIGTERM') => stopProc(proc, signal),
  };
  if (wait) {
    const deadline = Date.now() + 10000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`handler exited ${proc.exitCode}: ${logs.text}`);
      try {
        await fetch(`${h.url}/`);
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`handler not ready: ${logs.text}`);
        await sleep(10);
      }
    }
  }
  return h;
}

/**
 * Starts the SignalR Service stand-in on a free port (or the given one) with a random access key
 * (or the given one) and extra command-line arguments. stop() resolves with the exit
 * { code, signal }; start() runs it again on the same port with the same key.
 */
export async function startStandin({ port = null, accessKey = null, args = [] } = {}) {
  port = port || (await freePort());
  accessKey = accessKey || randomBytes(24).toString('base64');
  const connectionString = `Endpoint=http://127.0.0.1;Port=${port};AccessKey=${accessKey};Version=1.0;`;
  const s = {
    port, accessKey, connectionString, proc: null, logs: null, exited: null,
    endpoint: `http://127.0.0.1:${port}`,
    async start() {
      this.proc = spawn(STANDIN_BIN, ['--connection-string', connectionString, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.logs = track(this.proc, 'standin');
      const proc = this.proc;
      this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
      await waitForPort(port, 10000, this.proc);
    },
    async stop() { await stopProc(this.proc); return this.exited; },
  };
  await s.start();
  return s;
}

/** An HS256 JWT signed with the key's UTF-8 bytes, made here independently of the C code. */
export function mintJwt(key, claims, { alg = 'HS256' } = {}) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signed = `${part({ alg, typ: 'JWT' })}.${part(claims)}`;
  const sig = createHmac('sha256', Buffer.from(key, 'utf8')).update(signed).digest('base64url');
  return `${signed}.${sig}`;
}

/** A DateTime of unspecified kind as the host writes it (Newtonsoft round-trip format, no zone,
 * trailing zeros of the fraction dropped): "2026-11-27T08:00:00.521". See tests/fixtures/README.md. */
export function hostTime(iso) {
  const [date, rest] = iso.replace(/Z$/, '').split('T');
  const [hms, frac = ''] = rest.split('.');
  const f = frac.padEnd(7, '0').slice(0, 7).replace(/0+$/, '');
  return `${date}T${hms}${f ? '.' + f : ''}`;
}

/** Builds a host invocation body the way the Functions host sends an Event Hubs batch from IoT
 * Hub (dataType string: the arrays are JSON strings; the metadata the Event Hubs extension binds,
 * as in tests/fixtures). events: [{ body, deviceId?, seq?, enqueued? }]. */
export function hostBatch(events, { partition = '0', eventHub = 'enviromon-hub', namespace = 'enviromon-ns.servicebus.windows.net', wrap = true } = {}) {
  const bodies = events.map((e) => (typeof e.body === 'string' ? e.body : JSON.stringify(e.body)));
  const seqs = events.map((e) => e.seq ?? null);
  const times = events.map((e) => e.enqueued ?? new Date().toISOString());
  const offsets = events.map((e, i) => String((e.seq ?? i) * 120));
  const sys = events.map((e, i) => ({
    'x-opt-sequence-number': seqs[i],
    'x-opt-offset': offsets[i],
    'x-opt-enqueued-time': hostTime(times[i]) + '+00:00',
    ...(e.deviceId === undefined ? {} : {
      'iothub-connection-device-id': e.deviceId,
      'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
      'iothub-connection-auth-generation-id': '638663012345678901',
      'iothub-enqueuedtime': hostTime(times[i]) + 'Z',
      'iothub-message-source': 'Telemetry',
    }),
    SequenceNumber: seqs[i], Offset: Number(offsets[i]), PartitionKey: null, EnqueuedTimeUtc: hostTime(times[i]),
  }));
  const w = (v) => (wrap ? JSON.stringify(v) : v);
  const ctx = { FullyQualifiedNamespace: namespace, EventHubName: eventHub, ConsumerGroup: '$Default', PartitionId: partition, IsCheckpointingAfterInvocation: true };
  return {
    Data: { events: w(bodies) },
    Metadata: {
      TriggerPartitionContext: ctx,
      PartitionContext: { ...ctx },
      PartitionKeyArray: w(events.map(() => null)),
      OffsetArray: w(offsets),
      SequenceNumberArray: w(seqs),
      EnqueuedTimeUtcArray: w(times.map(hostTime)),
      PropertiesArray: w(events.map(() => ({}))),
      SystemPropertiesArray: w(sys),
      sys: { MethodName: 'EnvironmentEventTrigger', UtcNow: new Date().toISOString(), RandGuid: 'x' },
    },
  };
}

/** POSTs an invocation to the handler as the host does. Returns { status, json, text }. */
export async function invoke(handlerUrl, fn, body, { raw = false } = {}) {
  const res = await fetch(`${handlerUrl}/${fn}`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-Azure-Functions-InvocationId': randomBytes(8).toString('hex'),
      'X-Azure-Functions-HostVersion': '4.1040.0',
    },
    body: raw ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

// ---- An independent Table Storage client (Shared Key), for the tests' own reads and writes ----

function encodeKey(k) {
  return encodeURIComponent(k.replace(/'/g, "''")).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export function entityPath(table, pk, rk) {
  return `${table}(PartitionKey='${encodeKey(pk)}',RowKey='${encodeKey(rk)}')`;
}

/** One Table REST call against Azurite's dev account. Returns { status, headers, json }. */
export async function tableRequest(az, method, resource, { query = '', body = null, headers = {} } = {}) {
  const url = new URL(`${az.endpoint}/${resource}${query ? '?' + query : ''}`);
  const date = new Date().toUTCString();
  const ctype = body ? 'application/json' : '';
  const sts = `${method}\n\n${ctype}\n${date}\n/${DEV_ACCOUNT}${url.pathname}`;
  const sig = createHmac('sha256', Buffer.from(DEV_KEY, 'base64')).update(sts, 'utf8').digest('base64');
  const res = await fetch(url, {
    method,
    headers: {
      'x-ms-date': date, 'x-ms-version': '2019-02-02', Accept: 'application/json;odata=nometadata',
      DataServiceVersion: '3.0;NetFx', MaxDataServiceVersion: '3.0;NetFx',
      Authorization: `SharedKey ${DEV_ACCOUNT}:${sig}`,
      ...(body ? { 'Content-Type': 'application/json' } : {}),
      ...headers,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  return { status: res.status, headers: res.headers, json, text };
}

/** Every entity of a table (following continuation), or [] when the table does not exist. */
export async function tableAll(az, table, filter = '') {
  const rows = [];
  let next = '';
  for (;;) {
    const q = [filter ? `$filter=${encodeURIComponent(filter)}` : '', next].filter(Boolean).join('&');
    const r = await tableRequest(az, 'GET', `${table}()`, { query: q });
    if (r.status === 404) return rows;
    if (r.status !== 200) throw new Error(`query ${table}: ${r.status} ${r.text}`);
    rows.push(...r.json.value);
    const npk = r.headers.get('x-ms-continuation-nextpartitionkey');
    if (!npk) return rows;
    const nrk = r.headers.get('x-ms-continuation-nextrowkey');
    next = `NextPartitionKey=${encodeURIComponent(npk)}` + (nrk ? `&NextRowKey=${encodeURIComponent(nrk)}` : '');
  }
}

export async function tableGet(az, table, pk, rk) {
  const r = await tableRequest(az, 'GET', entityPath(table, pk, rk));
  return r.status === 200 ? r.json : null;
}

export async function tableCreate(az, table) {
  const r = await tableRequest(az, 'POST', 'Tables', { body: { TableName: table } });
  if (r.status !== 201 && r.status !== 204 && r.status !== 409) throw new Error(`create ${table}: ${r.status}`);
}

export async function tableUpsert(az, table, entity) {
  const r = await tableRequest(az, 'PUT', entityPath(table, entity.PartitionKey, entity.RowKey), { body: entity });
  if (r.status !== 204) throw new Error(`upsert: ${r.status} ${r.text}`);
}

/** Handler settings that point it at this Azurite. */
export function handlerEnv(az, extra = {}) {
  return { StorageConnectionString: az.connectionString, PartitionKey: 'Sydney', ...extra };
}

/** A TCP proxy on a free port to target, counting the connections it accepts. */
export async function startCountingProxy(targetPort) {
  const port = await freePort();
  const sockets = new Set();
  const p = { port, connections: 0 };
  const server = net.createServer((client) => {
    p.connections++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}); }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  p.close = () => { for (const s of sockets) s.destroy(); return new Promise((r) => server.close(r)); };
  return p;
}

/** A handler's own count of table round trips so far (it prints its counters on SIGUSR1). */
export async function tableTrips(hd) {
  const before = hd.logs.text.length;
  hd.proc.kill('SIGUSR1');
  for (let i = 0; i < 400; i++) {
    const m = /(\d+) table round trips so far/.exec(hd.logs.text.slice(before));
    if (m) return Number(m[1]);
    await sleep(5);
  }
  throw new Error('no counters from the handler');
}
