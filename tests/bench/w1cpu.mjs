// Benchmark probe (figures, not pass/fail; not run by make bench): W1 as tests/bench/history.mjs
// runs it (2,000 messages, 50 devices, batches of 100; history on and off, two handlers on one
// Azurite, passes interleaved), with the CPU time of the handler and of Azurite per pass read from
// /proc (10 ms ticks), which varies less than wall time on a shared machine. Alone:
//   node tests/bench/w1cpu.mjs
// Env: HB_ROUNDS (8) measured pass pairs; ENVIROMON_BIN a handler binary (or a wrapper that runs
// it under valgrind or perf); W1_ONLY=on|off measured passes of one mode only; CPU_FIELD=u|s user
// or system time only; AZ_PROF=<dir> runs Azurite under node --cpu-prof into dir; EXP_* variables
// are passed to the handler with history on (for experiments).
import { readFileSync } from 'node:fs';
import * as h from '../lib/harness.mjs';
import { readings } from './w1data.mjs';
const ROUNDS = Number(process.env.HB_ROUNDS || 8);
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return process.env.CPU_FIELD === "u" ? Number(f[11]) * 10 : process.env.CPU_FIELD === "s" ? Number(f[12]) * 10 : (Number(f[11]) + Number(f[12])) * 10; };
async function send(url, evs) {
  for (let i = 0; i < evs.length; i += 100) {
    const r = await h.invoke(url, 'EnvironmentEventTrigger', h.hostBatch(evs.slice(i, i + 100), { partition: '0' }));
    if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  }
}
let az;
if (process.env.AZ_PROF) {
  const { spawn } = await import('node:child_process');
  const port = await h.freePort();
  const proc = spawn('node', ['--cpu-prof', `--cpu-prof-dir=${process.env.AZ_PROF}`, 'node_modules/azurite/dist/src/table/main.js', '--tableHost', '127.0.0.1', '--tablePort', String(port), '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose', '--inMemoryPersistence'], { stdio: 'inherit' });
  await h.waitForPort(port, 30000, proc);
  az = { proc, connectionString: `DefaultEndpointsProtocol=http;AccountName=${h.DEV_ACCOUNT};AccountKey=${h.DEV_KEY};TableEndpoint=http://127.0.0.1:${port}/${h.DEV_ACCOUNT};`,
    close: async () => { proc.kill('SIGINT'); await new Promise((r) => proc.once('exit', r)); } };
} else az = await h.startAzurite();
const bin = process.env.ENVIROMON_BIN;
const on = await h.startHandler(h.handlerEnv(az, { HistoryEnabled: '1', ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('EXP_'))) }), bin ? { bin } : {});
const off = await h.startHandler(h.handlerEnv(az, { HistoryEnabled: '0' }), bin ? { bin } : {});
let seq = 1;
const res = { on: [], off: [] };
const pass = async (hd, prefix) => {
  const evs = readings(prefix, 2000, 50, seq, Date.now() - 40000, 20);
  seq += 2000;
  const c0 = cpu(hd.proc.pid), a0 = cpu(az.proc.pid), s = process.hrtime.bigint();
  await send(hd.url, evs);
  return { ms: Number(process.hrtime.bigint() - s) / 1e6, hd: cpu(hd.proc.pid) - c0, az: cpu(az.proc.pid) - a0 };
};
const ONLY = process.env.W1_ONLY;
await pass(on, 'w1on'); await pass(off, 'w1off');
for (let r = 0; r < ROUNDS; r++) { if (ONLY !== 'off') res.on.push(await pass(on, 'w1on')); if (ONLY !== 'on') res.off.push(await pass(off, 'w1off')); }
if (ONLY) { res.on.push(...res.off); res.off = res.on; }
const med = (xs, k) => { const v = xs.map((x) => x[k]).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
const sum = (xs, k) => xs.reduce((a, x) => a + x[k], 0) / xs.length;
for (const m of ['on', 'off']) console.log(`${m}: wall med ${med(res[m], 'ms').toFixed(0)} min ${Math.min(...res[m].map((x) => x.ms)).toFixed(0)} ms; handler cpu mean ${sum(res[m], 'hd').toFixed(0)} ms; azurite cpu mean ${sum(res[m], 'az').toFixed(0)} ms`);
console.log(`ratio best ${(100 * Math.min(...res.off.map((x) => x.ms)) / Math.min(...res.on.map((x) => x.ms))).toFixed(1)} %, median ${(100 * med(res.off, 'ms') / med(res.on, 'ms')).toFixed(1)} %`);
await on.stop(); await off.stop(); await az.close();
const cs = (m) => sum(res[m], 'hd') + sum(res[m], 'az');
console.log(`cpu ratio ${(100 * cs('off') / cs('on')).toFixed(1)} % (handler+azurite ms per pass: off ${cs('off').toFixed(0)}, on ${cs('on').toFixed(0)})`);
