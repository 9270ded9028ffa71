#!/usr/bin/env node
// Device simulator: N devices with drifting temperature, humidity and pressure, delivered to the
// handler's EnvironmentEventTrigger exactly as the Functions host delivers IoT Hub events
// (one batch per partition at a time, growing sequence numbers, device id in the system
// properties). No dependencies beyond Node itself.
import { randomUUID } from 'node:crypto';

const HELP = `usage: node tools/simulator.mjs [options]
  --url URL           handler base URL (default http://127.0.0.1:7071)
  --devices N         number of devices (default 6)
  --interval-ms MS    each device sends every MS milliseconds (default 2000)
  --rate R            instead: R messages per second in total, spread over the devices
  --bad-fraction F    share of readings that are out of range or malformed (default 0)
  --partitions P      Event Hubs partitions; a device always uses the same one (default 4)
  --count N           stop after N readings (then wait until they are delivered)
  --duration S        stop after S seconds (then wait until they are delivered)
  --prefix TEXT       device id prefix (default sim-)
  --seed N            seed of the random numbers (default: random)
  --backfill S        first send the last S seconds of readings, enqueued in the past (at the
                      device interval, spaced out to at most 200,000 readings), then go live
  --batch-max N       most events in one batch (default 100)
  --retries N         times a failed batch is sent again before it is given up (default 5)
  --summary-ms MS     print a summary line every MS milliseconds, 0 for never (default 10000)
  --json              print the final summary as one JSON line on stdout (other output: stderr)
  --quiet             only the final summary
Exits 0 when stopped by SIGINT/SIGTERM or when every reading was delivered, 1 if some were not.`;

const BAD_KINDS = ['out-of-range', 'not-json', 'nan-string', 'missing-fields'];

function fail(msg) {
  process.stderr.write(`simulator: ${msg}\n${HELP}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    url: 'http://127.0.0.1:7071', devices: 6, intervalMs: 2000, rate: null, badFraction: 0,
    partitions: 4, count: null, duration: null, prefix: 'sim-', seed: null, batchMax: 100,
    retries: 5, summaryMs: 10000, json: false, quiet: false, backfill: 0,
  };
  const num = (flag, v, { min = 0, int = false } = {}) => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
      fail(`${flag} needs ${int ? 'an integer' : 'a number'} >= ${min}, got ${v}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const val = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--url': o.url = val(); break;
      case '--devices': o.devices = num(flag, val(), { min: 1, int: true }); break;
      case '--interval-ms': o.intervalMs = num(flag, val(), { min: 1 }); break;
      case '--rate': o.rate = num(flag, val(), { min: 0.001 }); break;
      case '--bad-fraction': o.badFraction = num(flag, val()); break;
      case '--partitions': o.partitions = num(flag, val(), { min: 1, int: true }); break;
      case '--count': o.count = num(flag, val(), { min: 1, int: true }); break;
      case '--duration': o.duration = num(flag, val(), { min: 0.001 }); break;
      case '--prefix': o.prefix = val() ?? fail('--prefix needs a value'); break;
      case '--seed': o.seed = num(flag, val(), { int: true }); break;
      case '--backfill': o.backfill = num(flag, val(), { min: 0 }); break;
      case '--batch-max': o.batchMax = num(flag, val(), { min: 1, int: true }); break;
      case '--retries': o.retries = num(flag, val(), { int: true }); break;
      case '--summary-ms': o.summaryMs = num(flag, val()); break;
      case '--json': o.json = true; break;
      case '--quiet': o.quiet = true; break;
      case '--help': case '-h': process.stdout.write(`${HELP}\n`); process.exit(0); break;
      default: fail(`unknown argument ${argv[i]}`);
    }
  }
  if (o.badFraction > 1) fail('--bad-fraction must be between 0 and 1');
  try {
    const u = new URL(o.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    fail(`--url is not an http(s) URL: ${o.url}`);
  }
  o.url = o.url.replace(/\/+$/, '');
  return o;
}

/** xorshift32 with a splitting of the seed; returns floats in [0, 1). */
function makeRandom(seed) {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 0x6d2b79f5;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  for (let i = 0; i < 8; i++) next();
  const gauss = () => {
    const u = Math.max(next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  return { next, gauss, pick: (arr) => arr[Math.floor(next() * arr.length)] };
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const round = (v, d) => Math.round(v * 10 ** d) / 10 ** d;

/** One simulated device: mean-reverting random walks around slowly moving set points. */
class Device {
  constructor(id, partition, rnd) {
    this.id = id;
    this.partition = partition;
    this.rnd = rnd;
    this.tempSet = 22 + rnd.next() * 7;
    this.temp = this.tempSet + rnd.gauss() * 0.5;
    this.humOffset = (rnd.next() - 0.5) * 6;
    this.hum = 70 + this.humOffset;
    this.pressSet = 1013 + (rnd.next() - 0.5) * 8;
    this.press = this.pressSet;
    this.messageId = 0;
    this.last = null;
    this.delivered = { good: 0, bad: 0, kinds: {} };
  }

  step(now) {
    const dt = this.last === null ? 1 : clamp((now - this.last) / 1000, 0.05, 60);
    this.last = now;
    const r = this.rnd;
    this.tempSet = clamp(this.tempSet + r.gauss() * 0.02 * Math.sqrt(dt), 21, 31);
    this.temp = clamp(this.temp + 0.08 * (this.tempSet - this.temp) * dt + r.gauss() * 0.12 * Math.sqrt(dt), 20, 32);
    const humTarget = 70 + this.humOffset - (this.temp - 26) * 1.2;
    this.hum = clamp(this.hum + 0.1 * (humTarget - this.hum) * dt + r.gauss() * 0.3 * Math.sqrt(dt), 60, 80);
    this.pressSet = clamp(this.pressSet + r.gauss() * 0.01 * Math.sqrt(dt), 1000, 1026);
    this.press = clamp(this.press + 0.05 * (this.pressSet - this.press) * dt + r.gauss() * 0.08 * Math.sqrt(dt), 995, 1030);
  }

  /** The event body as the device sends it, and which kind of bad reading it is (or null). */
  reading(badFraction) {
    this.messageId++;
    const good = {
      messageId: this.messageId,
      deviceId: this.id,
      temperature: round(this.temp, 2),
      humidity: round(this.hum, 1),
      pressure: round(this.press, 1),
    };
    const r = this.rnd;
    if (badFraction <= 0 || r.next() >= badFraction) return { body: JSON.stringify(good), bad: null };
    const kind = r.pick(BAD_KINDS);
    switch (kind) {
      case 'out-of-range': {
        const field = r.pick(['temperature', 'humidity', 'pressure']);
        const value = { temperature: 500, humidity: 140, pressure: 200 }[field];
        return { body: JSON.stringify({ ...good, [field]: value }), bad: kind };
      }
      case 'not-json':
        return { body: r.pick([`temperature=500;humidity=abc`, `{"deviceId":"${this.id}","temperature":21.5,`, '\u0000\u0001garbage']), bad: kind };
      case 'nan-string':
        return { body: JSON.stringify({ ...good, temperature: 'NaN' }), bad: kind };
      default:
        return { body: JSON.stringify({ messageId: this.messageId, deviceId: this.id }), bad: kind };
    }
  }
}

/** Events of one partition, delivered one batch at a time like the Event Hubs trigger does. */
class Partition {
  constructor(id, startSeq) {
    this.id = String(id);
    this.nextSeq = startSeq;
    this.queue = [];
    this.sending = null;
  }
}

const opts = parseArgs(process.argv.slice(2));
const out = opts.json ? process.stderr : process.stdout;
const say = (line) => { if (!opts.quiet) out.write(`${line}\n`); };
const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
const rnd = makeRandom(seed);
const endpoint = `${opts.url}/EnvironmentEventTrigger`;
const QUEUE_CAP = 10000;

const width = Math.max(2, String(opts.devices).length);
const startSeq = Date.now() * 1000; // grows across restarts, never reused (CONTRACTS.md)
const partitions = Array.from({ length: opts.partitions }, (_, i) => new Partition(i, startSeq));
const devices = Array.from({ length: opts.devices }, (_, i) =>
  new Device(`${opts.prefix}${String(i + 1).padStart(width, '0')}`, partitions[i % opts.partitions], rnd));

const stats = {
  generated: 0, delivered: 0, bad: 0, batches: 0, failedBatches: 0, failedEvents: 0, dropped: 0,
  lastError: null, startedAt: Date.now(),
};
let generating = true;
let stopping = false;
const inflight = new Set(); // AbortControllers of requests in flight

function enqueue(dev, now) {
  dev.step(now);
  const { body, bad } = dev.reading(opts.badFraction);
  const p = dev.partition;
  p.queue.push({ device: dev, body, bad, seq: p.nextSeq++, enqueued: new Date(now).toISOString() });
  if (p.queue.length > QUEUE_CAP) stats.dropped += p.queue.splice(0, p.queue.length - QUEUE_CAP).length;
  stats.generated++;
  pump(p);
}

/** The invocation body of one batch, encoded as the host encodes dataType string. */
function hostPayload(p, events) {
  return JSON.stringify({
    Data: { events: JSON.stringify(events.map((e) => e.body)) },
    Metadata: {
      TriggerPartitionContext: {
        EventHubName: 'enviromon-hub', ConsumerGroup: '$Default', PartitionId: p.id,
        IsCheckpointingAfterInvocation: true,
      },
      PartitionKeyArray: JSON.stringify(events.map(() => null)),
      OffsetArray: JSON.stringify(events.map((e) => String(e.seq * 120))),
      SequenceNumberArray: JSON.stringify(events.map((e) => e.seq)),
      EnqueuedTimeUtcArray: JSON.stringify(events.map((e) => e.enqueued)),
      PropertiesArray: JSON.stringify(events.map(() => ({}))),
      SystemPropertiesArray: JSON.stringify(events.map((e) => ({
        'iothub-connection-device-id': e.device.id,
        'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub"}',
        'iothub-enqueuedtime': e.enqueued,
        'iothub-message-source': 'Telemetry',
        'x-opt-sequence-number': e.seq,
      }))),
      sys: { MethodName: 'EnvironmentEventTrigger', UtcNow: new Date().toISOString(), RandGuid: randomUUID() },
    },
  });
}

async function post(body) {
  const ac = new AbortController();
  inflight.add(ac);
  const timer = setTimeout(() => ac.abort(new Error('timed out after 15 s')), 15000);
  try {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'X-Azure-Functions-InvocationId': randomUUID(),
        'X-Azure-Functions-HostVersion': '4.1040.300.25317',
      },
      body,
      signal: ac.signal,
    });
    const text = await res.text();
    if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status} ${text.slice(0, 200)}`);
  } finally {
    clearTimeout(timer);
    inflight.delete(ac);
  }
}

const sleepers = new Set();
/** A pause that a stop signal cuts short. */
function sleep(ms) {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(t); sleepers.delete(done); resolve(); };
    const t = setTimeout(done, ms);
    sleepers.add(done);
  });
}

function pump(p) {
  if (p.sending || p.queue.length === 0) return;
  p.sending = (async () => {
    while (p.queue.length > 0 && !stopping) {
      const events = p.queue.slice(0, opts.batchMax);
      const body = hostPayload(p, events);
      let ok = false;
      for (let attempt = 0; attempt <= opts.retries && !stopping; attempt++) {
        if (attempt > 0) await sleep(Math.min(5000, 250 * 2 ** attempt));
        if (stopping) break;
        try {
          await post(body);
          ok = true;
          break;
        } catch (err) {
          stats.lastError = err?.cause?.code ?? err?.message ?? String(err);
        }
      }
      if (stopping && !ok) break; // leave them queued; not counted as failed
      p.queue.splice(0, events.length);
      stats.batches++;
      if (!ok) {
        stats.failedBatches++;
        stats.failedEvents += events.length;
        continue;
      }
      for (const e of events) {
        stats.delivered++;
        if (e.bad) {
          stats.bad++;
          e.device.delivered.bad++;
          e.device.delivered.kinds[e.bad] = (e.device.delivered.kinds[e.bad] ?? 0) + 1;
        } else {
          e.device.delivered.good++;
        }
      }
    }
    p.sending = null;
  })();
}

function summaryLine() {
  const secs = Math.max(0.001, (Date.now() - stats.startedAt) / 1000);
  const queued = partitions.reduce((n, p) => n + p.queue.length, 0);
  let line = `simulator: ${opts.devices} devices, ${stats.delivered} readings delivered ` +
    `(${stats.bad} bad) in ${stats.batches} batches, ${(stats.delivered / secs).toFixed(1)}/s, ` +
    `${stats.failedEvents} failed, ${queued} queued`;
  if (stats.dropped) line += `, ${stats.dropped} dropped`;
  if (stats.lastError && (stats.failedEvents || queued)) line += `, last error: ${stats.lastError}`;
  return line;
}

function finalReport() {
  const report = {
    seed, url: opts.url, generated: stats.generated, delivered: stats.delivered, bad: stats.bad,
    batches: stats.batches, failedBatches: stats.failedBatches, failedEvents: stats.failedEvents,
    dropped: stats.dropped, undelivered: partitions.reduce((n, p) => n + p.queue.length, 0),
    lastError: stats.lastError,
    devices: Object.fromEntries(devices.map((d) => [d.id, {
      partition: d.partition.id, good: d.delivered.good, bad: d.delivered.bad, badKinds: d.delivered.kinds,
    }])),
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else out.write(`${summaryLine()}\n`);
  return report;
}

// ---------------------------------------------------------------- scheduling

let timer = null;
const deadline = opts.duration === null ? Infinity : stats.startedAt + opts.duration * 1000;
const nextDue = devices.map((_, i) => stats.startedAt + Math.floor((i * Math.min(opts.intervalMs, 2000)) / opts.devices));
let rrIndex = 0;

function limitReached() {
  return (opts.count !== null && stats.generated >= opts.count) || Date.now() >= deadline;
}

function schedule() {
  if (!generating) return;
  const now = Date.now();
  if (limitReached()) return finishGenerating();
  let wait;
  if (opts.rate !== null) {
    const due = Math.floor(((now - stats.startedAt) / 1000) * opts.rate) + 1;
    while (stats.generated < due && !limitReached()) {
      enqueue(devices[rrIndex], now);
      rrIndex = (rrIndex + 1) % devices.length;
    }
    wait = Math.min(50, Math.max(1, 1000 / opts.rate));
  } else {
    for (let i = 0; i < devices.length && !limitReached(); i++) {
      if (nextDue[i] <= now) {
        enqueue(devices[i], now);
        nextDue[i] = Math.max(nextDue[i] + opts.intervalMs, now + 1);
      }
    }
    wait = Math.max(1, Math.min(...nextDue) - Date.now());
  }
  if (limitReached()) return finishGenerating();
  timer = setTimeout(schedule, Math.min(wait, Math.max(1, deadline - Date.now())));
}

let summaryTimer = null;

async function finishGenerating() {
  if (!generating) return;
  generating = false;
  clearTimeout(timer);
  // Wait until every partition has delivered (or given up on) what was generated.
  for (;;) {
    const busy = partitions.filter((p) => p.sending);
    if (busy.length === 0) break;
    await Promise.all(busy.map((p) => p.sending));
  }
  clearInterval(summaryTimer);
  const report = finalReport();
  process.exit(report.failedEvents + report.dropped + report.undelivered > 0 ? 1 : 0);
}

/**
 * The past S seconds of readings, oldest first, with their past enqueued times, through the same
 * partitions and batches as live readings (the handler cannot tell them from a backlog the host
 * delivers after a pause). Queues are kept under half their cap while it runs.
 */
async function backfill(seconds) {
  const total = Math.floor((seconds * 1000) / opts.intervalMs) * opts.devices;
  const step = total > 200000 ? (seconds * 1000 * opts.devices) / 200000 : opts.intervalMs;
  const end = Date.now();
  let sent = 0;
  for (let t = end - seconds * 1000; t < end && !stopping; t += step) {
    for (const d of devices) enqueue(d, Math.floor(t));
    sent += devices.length;
    while (!stopping && partitions.some((p) => p.queue.length > QUEUE_CAP / 2)) await sleep(20);
  }
  say(`simulator: ${sent} past readings queued (the last ${seconds} s, one per device every ${Math.round(step)} ms)`);
}

let signalled = false;

async function onSignal(sig) {
  if (signalled) process.exit(0); // a second Ctrl-C: leave at once
  signalled = true;
  generating = false;
  clearTimeout(timer);
  clearInterval(summaryTimer);
  // Give the batches in flight a moment, then abort them.
  const busy = partitions.filter((p) => p.sending).map((p) => p.sending);
  stopping = true;
  for (const wake of [...sleepers]) wake();
  const grace = setTimeout(() => { for (const ac of inflight) ac.abort(new Error(`stopped by ${sig}`)); }, 2000);
  await Promise.all(busy);
  clearTimeout(grace);
  finalReport();
  process.exit(0);
}

process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

const pace = opts.rate !== null ? `${opts.rate} readings/s in total` : `every ${opts.intervalMs} ms per device`;
say(`simulator: ${opts.devices} devices (${devices[0].id} .. ${devices.at(-1).id}) on ${opts.partitions} ` +
  `partitions, ${pace}, ${Math.round(opts.badFraction * 100)}% bad, seed ${seed} -> ${endpoint}`);
if (opts.summaryMs > 0 && !opts.quiet) summaryTimer = setInterval(() => say(summaryLine()), opts.summaryMs);
if (opts.backfill > 0) backfill(opts.backfill).then(() => schedule());
else schedule();
