// Concurrency: 4 handler processes, each fed concurrent invocations over the same 10 devices
// (one Event Hubs partition per stream, as the host does), with replays and retries as the host
// would make them. Every device's Count must end equal to the distinct valid events sent for it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../lib/harness.mjs';

const PROCESSES = 4;
const STREAMS_PER_PROCESS = 3;
const BATCHES = 12;
const EVENTS_PER_BATCH = 20;
const DEVICES = Array.from({ length: 10 }, (_, i) => `conc-${i}`);

let az;
const handlers = [];
before(async () => {
  az = await h.startAzurite();
  for (let i = 0; i < PROCESSES; i++) handlers.push(await h.startHandler(h.handlerEnv(az, { BackoffBaseMs: '10', BackoffCapMs: '200', BackoffAttempts: '10' })));
});
after(async () => {
  for (const x of handlers) await x.stop();
  await az?.close();
});

// A small deterministic generator, so that a failure can be replayed.
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

test('exact counts under contention from 4 processes with concurrent invocations', async () => {
  const expected = Object.fromEntries(DEVICES.map((d) => [d, 0]));
  const expectedRejected = Object.fromEntries(DEVICES.map((d) => [d, 0]));
  let retries = 0, replays = 0;

  async function deliver(handler, body) {
    // the host's retry policy: a failed invocation is delivered again until it succeeds
    for (let attempt = 0; ; attempt++) {
      const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', body);
      if (r.status === 200) return;
      assert.ok(attempt < 20, `batch still failing: ${r.text}`);
      retries++;
    }
  }

  async function stream(p, s) {
    const handler = handlers[p];
    const partition = `p${p}s${s}`;
    const rand = rng(p * 100 + s + 1);
    let seq = 1;
    let previous = null;
    for (let b = 0; b < BATCHES; b++) {
      const events = [];
      for (let e = 0; e < EVENTS_PER_BATCH; e++) {
        const d = DEVICES[Math.floor(rand() * DEVICES.length)];
        const bad = rand() < 0.1;
        events.push({ deviceId: d, seq: seq++, body: bad ? { temperature: 999 } : { temperature: 15 + rand() * 10, humidity: 40 + rand() * 20 } });
        if (bad) expectedRejected[d]++; else expected[d]++;
      }
      const body = h.hostBatch(events, { partition });
      await deliver(handler, body);
      // at-least-once: sometimes the host delivers a batch again
      if (previous && rand() < 0.3) { await deliver(handler, previous); replays++; }
      if (rand() < 0.2) { await deliver(handler, body); replays++; }
      previous = body;
    }
  }

  const runs = [];
  for (let p = 0; p < PROCESSES; p++) for (let s = 0; s < STREAMS_PER_PROCESS; s++) runs.push(stream(p, s));
  await Promise.all(runs);

  const rows = await h.tableAll(az, 'DeviceState', "RowKey ge 'conc-' and RowKey lt 'conc.'");
  assert.equal(rows.length, DEVICES.length);
  for (const row of rows) {
    assert.equal(Number(row.Count), expected[row.RowKey], `Count of ${row.RowKey}`);
    assert.equal(Number(row.Rejected), expectedRejected[row.RowKey], `Rejected of ${row.RowKey}`);
  }
  const total = Object.values(expected).reduce((a, b) => a + b, 0);
  console.log(`# ${total} valid events, ${replays} replayed batches, ${retries} retried invocations`);
  for (const x of handlers) assert.equal(x.proc.exitCode, null);
});
