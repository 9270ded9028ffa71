// The device simulator against a recording stand-in for the handler: the batches have the host's
// shape, sequence numbers only grow per partition, one batch per partition is in flight at a time,
// values are realistic, bad readings are what they claim to be, and signals stop it cleanly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from '../lib/harness.mjs';

const SIM = path.join(ROOT, 'tools/simulator.mjs');

/** An HTTP server that records every invocation; answer(n) decides the status of the nth. */
function recorder(answer = () => 200) {
  const calls = [];
  const open = new Map(); // partition -> requests in flight
  let overlap = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const json = JSON.parse(body);
      const part = json.Metadata.TriggerPartitionContext.PartitionId;
      open.set(part, (open.get(part) ?? 0) + 1);
      if (open.get(part) > 1) overlap++;
      const status = answer(calls.length);
      calls.push({ path: req.url, headers: req.headers, json, status });
      setTimeout(() => {
        open.set(part, open.get(part) - 1);
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ Outputs: {}, Logs: [], ReturnValue: null }));
      }, 5);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      server, calls, url: `http://127.0.0.1:${server.address().port}`, overlap: () => overlap,
    }));
  });
}

function runSim(args) {
  const proc = spawn(process.execPath, [SIM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, stdout, get stderr() { return stderr; } })));
  return { proc, done, out: () => stdout };
}

/** Every event the recorder saw, decoded the way the handler decodes dataType string. */
function events(calls) {
  const all = [];
  for (const c of calls) {
    const m = c.json.Metadata;
    const bodies = JSON.parse(c.json.Data.events);
    const seqs = JSON.parse(m.SequenceNumberArray);
    const sys = JSON.parse(m.SystemPropertiesArray);
    const times = JSON.parse(m.EnqueuedTimeUtcArray);
    assert.equal(typeof c.json.Data.events, 'string');
    assert.equal(bodies.length, seqs.length);
    assert.equal(bodies.length, sys.length);
    assert.equal(bodies.length, times.length);
    assert.equal(JSON.parse(m.PropertiesArray).length, bodies.length);
    bodies.forEach((b, i) => all.push({
      body: b, seq: seqs[i], device: sys[i]['iothub-connection-device-id'], time: times[i],
      partition: m.TriggerPartitionContext.PartitionId, status: c.status,
    }));
  }
  return all;
}

let rec;
before(async () => { rec = await recorder(); });
after(() => rec.server.close());

test('batches have the host shape, and sequence numbers only grow per partition', async () => {
  rec.calls.length = 0;
  const t0 = Date.now();
  const sim = runSim(['--url', rec.url, '--devices', '5', '--partitions', '3', '--rate', '400',
    '--count', '600', '--seed', '7', '--prefix', 'unit-', '--json', '--quiet']);
  const r = await sim.done;
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout.trim().split('\n').at(-1));
  assert.equal(report.delivered, 600);
  assert.equal(report.bad, 0);
  assert.equal(rec.overlap(), 0, 'two batches of one partition were in flight at once');

  for (const c of rec.calls) {
    assert.equal(c.path, '/EnvironmentEventTrigger');
    assert.equal(c.headers['content-type'], 'application/json');
    assert.ok(c.headers['x-azure-functions-invocationid']);
    assert.equal(c.json.Metadata.sys.MethodName, 'EnvironmentEventTrigger');
  }
  const evs = events(rec.calls);
  assert.equal(evs.length, 600);
  const lastSeq = new Map();
  const partOf = new Map();
  for (const e of evs) {
    assert.ok(Number.isSafeInteger(e.seq));
    assert.ok(e.seq >= t0 * 1000, 'sequence numbers start from the current time x 1000');
    assert.ok(e.seq > (lastSeq.get(e.partition) ?? -1), `partition ${e.partition}: ${e.seq} after ${lastSeq.get(e.partition)}`);
    lastSeq.set(e.partition, e.seq);
    assert.ok(partOf.get(e.device) === undefined || partOf.get(e.device) === e.partition, 'a device keeps its partition');
    partOf.set(e.device, e.partition);
    assert.ok(Number.isFinite(Date.parse(e.time)));
    const b = JSON.parse(e.body);
    assert.equal(b.deviceId, e.device);
    assert.ok(b.temperature >= 20 && b.temperature <= 32, `temperature ${b.temperature}`);
    assert.ok(b.humidity >= 60 && b.humidity <= 80, `humidity ${b.humidity}`);
    assert.ok(b.pressure >= 980 && b.pressure <= 1045, `pressure ${b.pressure}`);
  }
  assert.deepEqual([...partOf.keys()].sort(), ['unit-01', 'unit-02', 'unit-03', 'unit-04', 'unit-05']);
  assert.equal(new Set(partOf.values()).size, 3);
  for (const [id, d] of Object.entries(report.devices)) {
    assert.equal(d.good, evs.filter((e) => e.device === id).length);
  }
});

test('values drift rather than jump', async () => {
  rec.calls.length = 0;
  const r = await runSim(['--url', rec.url, '--devices', '1', '--partitions', '1', '--interval-ms', '5',
    '--count', '200', '--seed', '3', '--quiet']).done;
  assert.equal(r.code, 0, r.stderr);
  const temps = events(rec.calls).map((e) => JSON.parse(e.body).temperature);
  assert.equal(temps.length, 200);
  for (let i = 1; i < temps.length; i++) assert.ok(Math.abs(temps[i] - temps[i - 1]) < 2, `${temps[i - 1]} -> ${temps[i]}`);
  assert.ok(new Set(temps).size > 10, 'the temperature moves');
});

test('bad readings are out of range or malformed, and the report counts them per device', async () => {
  rec.calls.length = 0;
  const r = await runSim(['--url', rec.url, '--devices', '4', '--rate', '500', '--count', '800',
    '--bad-fraction', '0.3', '--seed', '11', '--json', '--quiet']).done;
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout.trim().split('\n').at(-1));
  const kinds = { 'out-of-range': 0, 'not-json': 0, 'nan-string': 0, 'missing-fields': 0 };
  const badPer = {};
  for (const e of events(rec.calls)) {
    let b = null;
    try { b = JSON.parse(e.body); } catch { /* not JSON */ }
    let kind = null;
    if (b === null || typeof b !== 'object') kind = 'not-json';
    else if (b.temperature === 'NaN') kind = 'nan-string';
    else if (!('temperature' in b) && !('humidity' in b) && !('pressure' in b)) kind = 'missing-fields';
    else if (b.temperature > 80 || b.humidity > 100 || b.pressure < 600) kind = 'out-of-range';
    if (kind) {
      kinds[kind]++;
      badPer[e.device] = (badPer[e.device] ?? 0) + 1;
    } else {
      assert.ok(b.temperature >= 20 && b.temperature <= 32);
    }
  }
  for (const [k, n] of Object.entries(kinds)) assert.ok(n > 0, `no ${k} reading among 800`);
  const total = Object.values(kinds).reduce((a, b) => a + b, 0);
  assert.equal(report.bad, total);
  assert.ok(total > 150 && total < 330, `about 30% bad, got ${total}`);
  for (const [id, d] of Object.entries(report.devices)) {
    assert.equal(d.bad, badPer[id] ?? 0, id);
    assert.equal(Object.values(d.badKinds).reduce((a, b) => a + b, 0), d.bad);
  }
});

test('a failed batch is sent again with the same sequence numbers', async () => {
  const flaky = await recorder((n) => (n === 0 || n === 1 ? 500 : 200));
  try {
    const r = await runSim(['--url', flaky.url, '--devices', '1', '--partitions', '1', '--count', '1',
      '--retries', '3', '--json', '--quiet']).done;
    assert.equal(r.code, 0, r.stderr);
    const evs = events(flaky.calls);
    assert.equal(evs.length, 3);
    assert.equal(new Set(evs.map((e) => e.seq)).size, 1);
    assert.equal(new Set(evs.map((e) => e.body)).size, 1);
  } finally {
    flaky.server.close();
  }
});

test('SIGINT and SIGTERM stop it cleanly with a summary', async () => {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    rec.calls.length = 0;
    const sim = runSim(['--url', rec.url, '--devices', '3', '--interval-ms', '50', '--summary-ms', '0']);
    while (rec.calls.length < 3) await new Promise((r) => setTimeout(r, 20));
    sim.proc.kill(sig);
    const r = await sim.done;
    assert.equal(r.code, 0, `${sig}: ${r.stderr}`);
    assert.match(r.stdout, /readings delivered/);
  }
});

test('bad options are refused with a usage message', async () => {
  const r = await runSim(['--devices', '0']).done;
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--devices needs an integer >= 1/);
  const r2 = await runSim(['--url', 'ftp://x']).done;
  assert.equal(r2.code, 2);
});
