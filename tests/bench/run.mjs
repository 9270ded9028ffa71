// Benchmark (make bench): figures, not pass/fail. The EnvironmentEventTrigger pipeline against
// Azurite on this machine: 2,000 messages from 50 devices in batches of 100.
//   - table round trips per message (the handler counts its own and prints them when it stops)
//   - the handler's table calls per second, against Azurite's own ceiling measured in the same
//     run by a tight client (concurrent keep-alive MERGEs, signed with Shared Key)
//   - the handler's peak resident memory (VmHWM) and start-to-ready time
// Options (env): BENCH_MESSAGES (2000), BENCH_DEVICES (50), BENCH_BATCH (100),
// BENCH_STREAMS (1: partitions posting at once), BENCH_CONCURRENCY (BatchConcurrency, 8: the default),
// BENCH_BASELINE (another build's enviromon-handler to compare, e.g. main's, in the same run),
// BENCH_CLIENT (fetch: the first client, envelopes built during the pass; see pass()).
import http from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as h from '../lib/harness.mjs';
import { transactionCeiling, printCeiling } from './tablebatch.mjs';

const MESSAGES = Number(process.env.BENCH_MESSAGES || 2000);
const DEVICES = Number(process.env.BENCH_DEVICES || 50);
const BATCH = Number(process.env.BENCH_BATCH || 100);
const STREAMS = Number(process.env.BENCH_STREAMS || 1);
// BENCH_HISTORY=0 runs the handler without the history table (issue 12), to compare the pipeline alone
// with builds that had none; history's own cost is measured by tests/bench/history.mjs.
const HISTORY = process.env.BENCH_HISTORY === '0' ? '0' : '1';
const CONCURRENCY = String(process.env.BENCH_CONCURRENCY || 8); // the handler's default
const CLIENT = process.env.BENCH_CLIENT === 'fetch' ? 'fetch' : 'prebuilt'; // see pass()

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(az, method, path, body, extraHeaders = {}) {
  const date = new Date().toUTCString();
  const full = `/${h.DEV_ACCOUNT}/${path}`;
  const sts = `${method}\n\n${body ? 'application/json' : ''}\n${date}\n/${h.DEV_ACCOUNT}${full}`;
  const sig = createHmac('sha256', Buffer.from(h.DEV_KEY, 'base64')).update(sts).digest('base64');
  const data = body ? JSON.stringify(body) : null;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: az.port, method, path: full, agent, headers: {
      'x-ms-date': date, 'x-ms-version': '2019-02-02', Accept: 'application/json;odata=nometadata',
      DataServiceVersion: '3.0;NetFx', MaxDataServiceVersion: '3.0;NetFx', Authorization: `SharedKey ${h.DEV_ACCOUNT}:${sig}`,
      ...(data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}), ...extraHeaders,
    } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/** POSTs an envelope's text to EnvironmentEventTrigger as the host does. Returns { status, text }. */
function post(url, text) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/EnvironmentEventTrigger`, { method: 'POST', agent, headers: {
      'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text),
      'X-Azure-Functions-InvocationId': randomBytes(8).toString('hex'), 'X-Azure-Functions-HostVersion': '4.1040.0',
    } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, text: body }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** Azurite's ceiling: the most MERGEs per second a tight client gets, 32 in flight, each merge
 * carrying the same properties as the handler's (so the two rates are comparable). */
async function ceiling(az, seconds = 4) {
  await h.tableCreate(az, 'Ceiling');
  for (let d = 0; d < DEVICES; d++) await h.tableUpsert(az, 'Ceiling', { PartitionKey: 'Sydney', RowKey: `dev-${d}`, Count: 0 });
  let done = 0;
  const until = Date.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 32 }, async (_, w) => {
    for (let i = w; Date.now() < until; i += 32) {
      const st = await request(az, 'MERGE', h.entityPath('Ceiling', 'Sydney', `dev-${i % DEVICES}`),
        deviceProps(i), { 'If-Match': '*' });
      if (st !== 204) throw new Error(`merge: ${st}`);
      done++;
    }
  }));
  return done / ((performance.now() - t0) / 1000);
}

function deviceProps(i) {
  const p = {};
  const typed = (name, value, type) => { p[name] = value; p[`${name}@odata.type`] = type; };
  typed('Count', String(i), 'Edm.Int64');
  typed('Rejected', '0', 'Edm.Int64');
  typed('SeqPs0', String(i), 'Edm.Int64');
  typed('LastSeen', new Date().toISOString(), 'Edm.DateTime');
  typed('Celsius', 21.5, 'Edm.Double');
  typed('Humidity', 61.5, 'Edm.Double');
  typed('hPa', 1011.5, 'Edm.Double');
  p.Geo = 'Sydney';
  return p;
}

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

function vmHWM(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Spawn to the first HTTP answer on GET /, polled with raw sockets as tightly as Node allows
 * (the host polls every 25 ms), and the handler's own figure from main() to listening. */
async function startToReady(az, runs = 20) {
  const { spawn } = await import('node:child_process');
  const net = await import('node:net');
  const probe = (port) => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('HTTP/1.')); });
    s.once('error', () => resolve(false));
  });
  const outside = [], inside = [];
  for (let i = 0; i < runs; i++) {
    const port = await h.freePort();
    const env = { PATH: process.env.PATH, FUNCTIONS_CUSTOMHANDLER_PORT: String(port), ...h.handlerEnv(az) };
    let out = '';
    const t0 = performance.now();
    const proc = spawn(h.HANDLER_BIN, [], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    proc.stdout.on('data', (d) => { out += d; });
    while (!(await probe(port))) { /* poll again at once */ }
    outside.push(performance.now() - t0);
    await new Promise((r) => { proc.once('exit', r); proc.kill('SIGTERM'); });
    const own = /after ([\d.]+) ms/.exec(out);
    if (own) inside.push(Number(own[1]));
  }
  const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  // Node's own spawn costs a few ms; a tight Python client measures the handler more closely.
  const { spawnSync } = await import('node:child_process');
  const py = spawnSync('python3', [new URL('./ready.py', import.meta.url).pathname, h.HANDLER_BIN, az.connectionString, String(runs)], { encoding: 'utf8' });
  const tight = py.status === 0 ? Number(py.stdout.trim()) : NaN;
  return { outside: med(outside), inside: med(inside), tight };
}

/** Median and 99th percentile of xs (nearest rank). */
function percentiles(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return { median: at(0.5), p99: at(0.99), n: s.length };
}

// A batch's phases in the handler's timing line (handler/fn_events.c): receive (header to the
// body's last byte), queued (waiting for a worker), decode (the host's envelope), fold (split,
// calibrate, validate, group), commit (rows folded and written: the $batch round trips), answer
// (the reply built, the batch freed).
const PHASES = [
  ['receive', /([\d.]+) ms to receive/g], ['queued', /([\d.]+) ms queued/g], ['decode', /([\d.]+) ms to decode/g],
  ['fold', /([\d.]+) ms to fold/g], ['commit', /([\d.]+) ms to commit/g], ['answer', /([\d.]+) ms to answer/g],
];

/** The cold and warm passes of the pipeline through the handler binary bin on Azurite az. */
async function pipeline(az, bin) {
  const handler = await h.startHandler(h.handlerEnv(az, { BatchConcurrency: CONCURRENCY, HistoryEnabled: HISTORY }), { bin });
  const seqs = Array.from({ length: STREAMS }, () => 1);
  const trips = async () => {
    const before = handler.logs.text.length;
    handler.proc.kill('SIGUSR1');
    for (let i = 0; i < 200; i++) {
      const m = /(\d+) table round trips so far/.exec(handler.logs.text.slice(before));
      if (m) return Number(m[1]);
      await h.sleep(5);
    }
    throw new Error('no counters from the handler');
  };

  // One pass: MESSAGES messages; every batch holds BATCH messages spread evenly over the devices
  // of its stream (a stream is an Event Hubs partition; the host posts a partition's batches one
  // after another, and different partitions at once).
  async function pass() {
    const perStream = Math.ceil(MESSAGES / BATCH / STREAMS);
    let sent = 0;
    const trips0 = await trips();
    const log0 = handler.logs.text.length;
    const cpuH0 = cpuSeconds(handler.proc.pid), cpuA0 = cpuSeconds(az.proc.pid);
    const invokes = []; // each POST as the client sees it: from sending to the parsed answer
    const build = (s) => {
      const devs = Array.from({ length: DEVICES }, (_, d) => d).filter((d) => d % STREAMS === s);
      const events = Array.from({ length: BATCH }, (_, i) => ({
        deviceId: `bench-${devs[i % devs.length]}`, seq: seqs[s]++,
        body: { temperature: 20 + (i % 10), humidity: 60 + (i % 20), pressure: 1000 + (i % 30) },
      }));
      return h.hostBatch(events, { partition: `s${s}` });
    };
    // BENCH_CLIENT=fetch: the client of the first figures (each envelope built while the pass
    // runs, posted with fetch). By default the host's part is kept out of the handler's time as
    // far as a client in the same machine can: each stream's envelopes are built as text before
    // the pass (the host has a batch in hand when it posts it), and posted on a keep-alive
    // node:http agent (fetch costs 0.6 ms more per 72 KB POST here).
    const prebuilt = CLIENT === 'fetch' ? null : Array.from({ length: STREAMS }, (_, s) =>
      Array.from({ length: perStream }, () => JSON.stringify(build(s))));
    const t0 = performance.now();
    await Promise.all(Array.from({ length: STREAMS }, async (_, s) => {
      for (let b = 0; b < perStream && sent < MESSAGES; b++) {
        sent += BATCH;
        const envelope = prebuilt ? prebuilt[s][b] : build(s);
        const tb = performance.now();
        const r = prebuilt ? await post(handler.url, envelope) : await h.invoke(handler.url, 'EnvironmentEventTrigger', envelope);
        invokes.push(performance.now() - tb);
        if (r.status !== 200) throw new Error(`batch failed: ${r.text}`);
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    const cpuH = cpuSeconds(handler.proc.pid) - cpuH0, cpuA = cpuSeconds(az.proc.pid) - cpuA0;
    // the phases of each batch, as the handler logs them ("0.41 ms to receive, ..., 4.21 ms to
    // commit, 0.12 ms to answer")
    const text = handler.logs.text.slice(log0);
    const phase = (re) => [...text.matchAll(re)].map((m) => Number(m[1]));
    const commit = percentiles(phase(/([\d.]+) ms to commit/g));
    const split = {};
    for (const [name, re] of PHASES) split[name] = percentiles(phase(re)).median;
    split.invoke = percentiles(invokes).median;
    split.perBatch = (seconds * 1000) / invokes.length;
    return { sent, seconds, trips: (await trips()) - trips0, cpuH, cpuA, commit, split };
  }

  const cold = await pass(); // rows inserted, calibration read, Azurite's code paths warmed
  const ceil1 = await ceiling(az);
  const warm = await pass(); // the steady state
  const ceil2 = await ceiling(az);
  const peak = vmHWM(handler.proc.pid);
  await handler.stop();
  const rows = await h.tableAll(az, 'DeviceState', "RowKey ge 'bench-' and RowKey lt 'bench.'");
  const counted = rows.reduce((a, r) => a + Number(r.Count), 0);
  return { cold, warm, ceilingRate: (ceil1 + ceil2) / 2, ceil1, ceil2, peak, counted };
}

function printPipeline(label, r) {
  console.log(`${label}:`);
  console.log(`  counted in DeviceState   ${r.counted} of ${r.cold.sent + r.warm.sent}`);
  console.log(`  Azurite ceiling merges/s ${r.ceilingRate.toFixed(0)} (after the cold pass ${r.ceil1.toFixed(0)}, after the warm pass ${r.ceil2.toFixed(0)})`);
  for (const [name, p] of [['cold pass', r.cold], ['warm pass', r.warm]]) {
    const calls = p.trips / p.seconds;
    console.log(`  ${name}:`);
    console.log(`    messages per second    ${(p.sent / p.seconds).toFixed(0)} (${p.seconds.toFixed(3)} s)`);
    console.log(`    table round trips      ${p.trips} (${(p.trips / p.sent).toFixed(3)} per message)`);
    console.log(`    handler table calls/s  ${calls.toFixed(0)} = ${(100 * calls / r.ceilingRate).toFixed(1)} % of the ceiling`);
    console.log(`    commit phase per batch median ${p.commit.median?.toFixed(2)} ms, p99 ${p.commit.p99?.toFixed(2)} ms (${p.commit.n} batches)`);
    // a baseline build may not log its phases: n/a
    const sp = p.split, inside = PHASES.reduce((a, [n]) => a + sp[n], 0), f = (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
    console.log(`    one batch (medians, ms) ${PHASES.map(([n]) => `${n} ${f(sp[n])}`).join(', ')}; ` +
      `outside the handler ${f(sp.invoke - inside)} (the POST as the client sees it, ${f(sp.invoke)}, less the phases); ` +
      `the client building the envelope and waiting ${f(sp.perBatch - sp.invoke)} (${f(sp.perBatch)} per batch in all${STREAMS > 1 ? ', streams at once' : ''})`);
    console.log(`    CPU                    handler ${(100 * p.cpuH / p.seconds).toFixed(0)} %, Azurite ${(100 * p.cpuA / p.seconds).toFixed(0)} % (of one core)`);
  }
  console.log(`  peak resident memory     ${r.peak.toFixed(2)} MiB (VmHWM)`);
}

// BENCH_BASELINE: another build's handler binary (e.g. main's), run on its own fresh Azurite
// right after this one, so the two are compared under the same load.
const BASELINE = process.env.BENCH_BASELINE || '';
const az = await h.startAzurite();
try {
  const ready = await startToReady(az);
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const mine = await pipeline(az, h.HANDLER_BIN);
  const txCeiling = await transactionCeiling(az); // issue 11: the ceiling beside the pipeline's
  let base = null;
  if (BASELINE) {
    const az2 = await h.startAzurite();
    try { base = await pipeline(az2, BASELINE); } finally { await az2.close(); }
  }
  const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

  console.log(`workload                 ${MESSAGES} messages per pass, ${DEVICES} devices, batches of ${BATCH}, ${STREAMS} stream(s), BatchConcurrency ${CONCURRENCY}, history ${HISTORY === '1' ? 'on' : 'off'}, client ${CLIENT === 'fetch' ? 'fetch, envelopes built during the pass' : 'node:http, envelopes built before the pass'}`);
  console.log(`load average             ${load0} before, ${load1} after (1, 5, 15 min; ${BASELINE ? 'both builds' : 'this build'} in this run)`);
  printPipeline(`this build (${h.HANDLER_BIN})`, mine);
  printCeiling(txCeiling);
  if (base) printPipeline(`baseline (${BASELINE})`, base);
  console.log(`start to ready           ${ready.tight.toFixed(2)} ms from fork/exec to the first HTTP answer (tight Python client), ${ready.outside.toFixed(2)} ms from Node's spawn; ${ready.inside.toFixed(2)} ms of it inside main() (medians of 20)`);
} finally {
  await az.close();
  agent.destroy();
}
