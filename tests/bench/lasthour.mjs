// Probe (not part of make bench): getdevicestate?history=1h, the handler of ENVIROMON_BIN_A against
// that of ENVIROMON_BIN_B, each on its own Azurite holding the same readings as it wrote them:
// DEVICES device rows, BATCHES batches of one reading a device a minute over the last 40 minutes
// (most of them pending in small groups). Interleaved A/B requests; medians of the wall time, and
// the answer's size.
import * as h from '../lib/harness.mjs';
const DEVICES = Number(process.env.LH_DEVICES || 300), BATCHES = Number(process.env.LH_BATCHES || 30);
const ROUNDS = Number(process.env.LH_ROUNDS || 15);
const azA = await h.startAzurite(), azB = await h.startAzurite();
const a = await h.startHandler(h.handlerEnv(azA), { bin: process.env.ENVIROMON_BIN_A });
const b = await h.startHandler(h.handlerEnv(azB), { bin: process.env.ENVIROMON_BIN_B });
try {
  const t0 = Date.now() - 40 * 60000;
  let seq = 1;
  for (let k = 0; k < BATCHES; k++) {
    const evs = Array.from({ length: DEVICES }, (_, i) => ({ deviceId: `lh-${String(i).padStart(4, '0')}`, seq: seq++,
      enqueued: new Date(t0 + k * 60000 + i).toISOString(), body: { temperature: 20 + (i % 50) / 10, humidity: 50 + (k % 7) } }));
    for (let i = 0; i < evs.length; i += 100) {
      for (const hd of [a, b]) {
        const r = await h.invoke(hd.url, 'EnvironmentEventTrigger', h.hostBatch(evs.slice(i, i + 100), { partition: '0' }));
        if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
      }
    }
  }
  const res = { A: [], B: [] }, size = { A: 0, B: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, hd] of r % 2 ? [['B', b], ['A', a]] : [['A', a], ['B', b]]) {
      const s = process.hrtime.bigint();
      const resp = await fetch(`${hd.url}/api/getdevicestate?history=1h`);
      const text = await resp.text();
      res[name].push(Number(process.hrtime.bigint() - s) / 1e6);
      size[name] = text.length;
    }
  }
  const med = (v) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
  console.log(JSON.stringify({ devices: DEVICES, batches: BATCHES, rounds: ROUNDS,
    A: { medianMs: med(res.A), bytes: size.A }, B: { medianMs: med(res.B), bytes: size.B } }));
} finally {
  await a.stop();
  await b.stop();
  await azA.close();
  await azB.close();
}
